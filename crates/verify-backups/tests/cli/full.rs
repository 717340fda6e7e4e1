//! `--full` on the node, as the replaced script's `--full`: the backup jobs of `/cluster/backup` (a disabled
//! job and a guest in no enabled job are WARNINGs) and the connectivity of every running guest in a
//! section "Verification de la connectivite" (QEMU guest agent ping, `pct exec -- true`), all read-only;
//! `--dry-run --full` names those commands and contacts nothing.

use serde_json::{Value, json};
use testbed::sim::{Guest, GuestType};
use verify_backups::report::{Check, Status};

use crate::bed::{Node, component, run, run_json};

fn running(node: &Node, mut g: Guest, agent: Option<&str>, agent_runs: bool) -> Guest {
    g.status = "running".into();
    if let Some(a) = agent {
        g.config.insert("agent".into(), a.into());
    }
    if !agent_runs {
        g.extra.insert("agent_running".into(), Value::Bool(false));
    }
    node.state.save_guest(&g).unwrap();
    g
}

/// A node with a VM whose agent answers, a container, a VM without agent, a VM whose agent is down, a
/// stopped VM; every guest with a fresh backup; a daily job of four of them and a disabled weekly job.
fn homelab_node() -> Node {
    let node = Node::start();
    let vm = running(&node, node.vm(100, "jellyfin"), Some("1"), true);
    let ct = running(&node, node.ct(101, "pihole"), None, true);
    let bare = running(&node, node.vm(102, "bare"), None, true);
    let down = running(
        &node,
        node.vm(104, "agentdown"),
        Some("enabled=1,fstrim_cloned_disks=1"),
        false,
    );
    let stopped = node.vm(103, "stopped");
    for (i, g) in [&vm, &ct, &bare, &down, &stopped].iter().enumerate() {
        node.backup(g, 1, i as u64 + 1);
    }
    node.state
        .set_backup_jobs(&[
            json!({"id": "backup-daily", "type": "vzdump", "schedule": "21:00", "storage": "local",
                "mode": "snapshot", "enabled": 1, "vmid": "100,101,102,104", "next-run": 1_900_000_000}),
            json!({"id": "backup-weekly", "type": "vzdump", "schedule": "sun 01:00", "storage": "local",
                "mode": "stop", "enabled": 0, "all": 1}),
        ])
        .unwrap();
    node
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn full_lists_the_backup_jobs_and_checks_every_running_guest() {
    let node = homelab_node();
    let mut args = node.ssh_args();
    args.extend(["--full".into(), "--lang".into(), "fr".into()]);
    let out = run(&args, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "warnings only\n{stdout}\n{stderr}"
    );
    for needle in [
        "Jobs de sauvegarde\n",
        "Verification de la connectivite\n",
        "backup-daily | OK | planification 21:00, stockage local, mode snapshot, guests 100,101,102,104",
        "backup-weekly | WARNING | Job desactive: planification sun 01:00, stockage local, mode stop, tous les guests",
        "VM 103 (stopped) | WARNING | Dans aucun job de sauvegarde actif",
        "VM 100 (jellyfin) | OK | qm guest cmd 100 ping: repond",
        "CT 101 (pihole) | OK | pct exec 101 -- true: repond",
        "VM 102 (bare) | WARNING | Pas d'agent QEMU configure: connectivite non verifiable",
        "VM 104 (agentdown) | WARNING | Ne repond pas: qm guest cmd 104 ping: QEMU guest agent is not running",
        // The same findings are rows of the report, so RESUME counts them and the exit code says so.
        "job | backup-weekly | WARNING | - | Job desactive",
        "guest | VM 104 (agentdown) | WARNING | - | Ne repond pas",
        "RAPPORT DE VERIFICATION DES SAUVEGARDES",
        "Warnings: 4",
        "Erreurs: 0",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    // A stopped guest is not asked; the sections come before the report, whose RESUME ends stdout.
    assert!(!stdout.contains("qm guest cmd 103"), "{stdout}");
    let connectivity = stdout.find("Verification de la connectivite").unwrap();
    assert!(connectivity < stdout.find("RAPPORT DE VERIFICATION").unwrap());
    assert!(stdout.trim_end().ends_with("Erreurs: 0"), "{stdout}");
    // Every command was read-only: nothing journaled on the node, one SSH session.
    assert!(node.state.journal().unwrap().is_empty());
    assert_eq!(node.sshd.logins(), 1);

    // English; and the JSON keeps its schema: the findings are checks of the `services` component.
    let mut en = node.ssh_args();
    en.push("--full".into());
    let out = run(&en, &[]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("Connectivity check\n"), "{stdout}");
    assert!(stdout.contains("Backup jobs\n"), "{stdout}");
    let (code, doc) = run_json(&en, &[]);
    assert_eq!(code, 1, "{doc:#?}");
    let names: Vec<&str> = doc.components.iter().map(|c| c.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "coverage",
            "archives",
            "integrity",
            "bitrot",
            "pbs",
            "tfstate",
            "services"
        ]
    );
    let services = component(&doc, "services");
    let check = |subject: &str, check: &str| -> &Check {
        testbed::tool::entry(
            &services.checks,
            |c| c.subject == subject && c.check.as_ref() == check,
            format_args!("{subject} {check}"),
            services,
        )
    };
    assert_eq!(check("job backup-daily", "backup-job").status, Status::Ok);
    assert_eq!(
        check("job backup-weekly", "backup-job").status,
        Status::Warn
    );
    assert_eq!(
        check("qemu 103 (stopped)", "backup-job").status,
        Status::Warn
    );
    assert_eq!(
        check("qemu 100 (jellyfin)", "connectivity").status,
        Status::Ok
    );
    assert_eq!(check("lxc 101 (pihole)", "connectivity").status, Status::Ok);
    assert_eq!(
        check("qemu 102 (bare)", "connectivity").status,
        Status::Warn
    );
    assert_eq!(
        check("qemu 104 (agentdown)", "connectivity").reason,
        "qm guest cmd 104 ping: no answer: QEMU guest agent is not running"
    );
    // JSON does not change with the language.
    let mut fr = en.clone();
    fr.extend(["--lang".into(), "fr".into()]);
    let (_, doc_fr) = run_json(&fr, &[]);
    assert_eq!(
        component(&doc_fr, "services").checks,
        services.checks,
        "{doc_fr:#?}"
    );
}

#[test]
fn full_every_guest_covered_and_answering_is_ok_and_without_full_nothing_is_asked() {
    let node = Node::start();
    let vm = running(&node, node.vm(100, "jellyfin"), Some("1"), true);
    let ct = running(&node, node.ct(101, "pihole"), None, true);
    node.backup(&vm, 1, 1);
    node.backup(&ct, 1, 2);
    node.state
        .set_backup_jobs(&[
            json!({"id": "backup-all", "schedule": "21:00", "storage": "local",
            "all": 1, "enabled": 1}),
        ])
        .unwrap();
    let mut args = node.ssh_args();
    args.push("--full".into());
    let out = run(&args, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("backup-all | OK |"), "{stdout}");

    // No job at all: a WARNING naming it, and no guest reported as uncovered one by one.
    node.state.set_backup_jobs(&[]).unwrap();
    let out = run(&args, &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("| WARNING | No backup job"), "{stdout}");
    assert!(!stdout.contains("In no enabled backup job"), "{stdout}");

    // Without --full: no section, no job read, no guest asked (a fault on each would show).
    node.state
        .set_faults(
            &serde_json::from_value(json!({"fail": [
                {"command": "pvesh get /cluster/backup", "message": "asked", "times": 9},
                {"command": "qm guest", "message": "asked", "times": 9},
                {"command": "pct exec", "message": "asked", "times": 9}
            ]}))
            .unwrap(),
        )
        .unwrap();
    let out = run(&node.ssh_args(), &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("Connectivity check"), "{stdout}");
    assert!(!stdout.contains("asked"), "{stdout}");
    // With --full the same faults are met: an unreadable job list is an ERROR, a silent guest a WARNING.
    let out = run(&args, &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("| ERROR | Backup jobs unreadable:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CT 101 (pihole) | WARNING | Does not answer: pct exec 101 -- true: asked"),
        "{stdout}"
    );
}

#[test]
fn dry_run_full_names_the_jobs_and_connectivity_commands_and_contacts_nothing() {
    let node = homelab_node();
    let mut args = node.ssh_args();
    args.extend([
        "--full".into(),
        "--dry-run".into(),
        "--lang".into(),
        "fr".into(),
    ]);
    let out = run(&args, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(node.sshd.logins(), 0, "dry-run logged in to the node");
    for needle in [
        "pvesh get /cluster/backup --output-format json",
        "pvesh get /cluster/resources --type vm --output-format json",
        "qm guest cmd <vmid> ping",
        "pct exec <vmid> -- true",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("[DRY-RUN]") && l.contains(needle)),
            "{needle}: {stderr}"
        );
    }
    for needle in [
        "Verification de la connectivite",
        "RAPPORT DE VERIFICATION DES SAUVEGARDES",
        "Total verifie:",
        "Erreurs: 0",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}

#[test]
fn a_guest_of_a_cluster_job_on_another_node_is_not_covered() {
    let node = Node::start();
    let vm = running(
        &node,
        Guest::new(
            100,
            GuestType::Qemu,
            "pve",
            &[("name", "a"), ("agent", "1")],
        ),
        None,
        true,
    );
    node.backup(&vm, 1, 1);
    node.state
        .set_backup_jobs(&[
            json!({"id": "backup-other", "all": 1, "node": "pve2", "storage": "local"}),
        ])
        .unwrap();
    let mut args = node.ssh_args();
    args.push("--full".into());
    let out = run(&args, &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("VM 100 (a) | WARNING | In no enabled backup job"),
        "{stdout}"
    );
}
