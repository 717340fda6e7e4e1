//! restore-vm with no --node on the fleet bed (one simulated node per environment): the node is the one of
//! the environment whose Terraform state manages the VMID, or the cluster member holding the guest now; a
//! VMID on two nodes is refused (64) with both named; --list shows the backups of every node.

use std::process::Output;

use pve_common::output::Document;
use restore_vm::report::{BackupList, Report};
use testbed::fleet::FleetLab;
use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};
use testbed::sim::{Guest, GuestType};

use super::{stderr, typed};

/// The three-node fleet (the last `cluster` nodes in one cluster, `down` started down), every state local.
fn lab(down: &[&str], cluster: usize) -> FleetLab {
    FleetLab::start(
        down,
        cluster,
        testbed::fixture::HomelabOptions {
            states: vec!["prod".into(), "lab".into(), "monitoring".into()],
            ..Default::default()
        },
    )
    .unwrap()
}

fn run(lab: &FleetLab, args: &[&str]) -> Output {
    crate::bin()
        .current_dir(lab.scripts_dir())
        .args(args)
        .envs(lab.env().unwrap())
        .env("RESTORE_VM_RETRY_DELAY_MS", "10")
        .output()
        .unwrap()
}

/// The state-changing commands each node ran: `(node, first words)`.
fn changes(lab: &FleetLab) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in &lab.bed.nodes {
        for argv in n.state.journal_argv().unwrap() {
            out.push((n.node.clone(), argv[..2.min(argv.len())].join(" ")));
        }
    }
    out
}

#[test]
fn a_lab_guest_is_restored_on_the_lab_node_with_no_node_while_another_is_down() {
    let lab = lab(&["pve-mon"], 0);
    // The lab's VM 200 is lost; its backups are on pve-lab, the node of the environment managing it.
    lab.bed
        .node("lab")
        .unwrap()
        .state
        .remove_guest(200)
        .unwrap();
    let out = run(&lab, &["200", "--no-verify", "--no-start", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report: Report = typed(&out);
    assert_eq!(report.schema, "pve-restore-vm/v2");
    assert_eq!(
        (
            report.node.as_str(),
            report.host.as_str(),
            report.environment.as_deref()
        ),
        ("pve-lab", "pve-lab", Some("lab")),
        "{err}"
    );
    assert!(
        changes(&lab).iter().all(|(n, _)| n == "pve-lab"),
        "only pve-lab changed: {:?}",
        changes(&lab)
    );
    let on_lab = lab.bed.node("lab").unwrap().state.journal_argv().unwrap();
    assert!(
        on_lab.iter().any(|a| a[0] == "qmrestore" && a[2] == "200"),
        "{on_lab:?}"
    );
    assert!(
        lab.bed
            .node("lab")
            .unwrap()
            .state
            .guest(200)
            .unwrap()
            .is_some()
    );
    // The node that is down is named once, with its environment; the run went on.
    assert_eq!(
        err.matches("pve-mon (environment monitoring)").count(),
        1,
        "{err}"
    );
}

#[test]
fn a_vmid_on_two_nodes_is_refused_naming_both_until_env_chooses() {
    let lab = lab(&[], 0);
    // A guest 100 on pve-lab too (made by hand there), with a backup of its own.
    let lab_node = lab.bed.node("lab").unwrap();
    let stray = Guest::new(
        100,
        GuestType::Qemu,
        "pve-lab",
        &[
            ("name", "stray"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=64M"),
        ],
    );
    lab_node.state.add_guest(&stray).unwrap();
    let now = testbed::sim::state::now_epoch();
    lab_node
        .state
        .add_backup(
            "local",
            &stray,
            &ArchiveSpec {
                size: 64 * 1024,
                ctime: now - 600,
                seed: 9,
            },
            &BackupOptions::default(),
        )
        .unwrap();

    let out = run(&lab, &["100", "--force", "--no-verify"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for needle in ["prod/pve-prod", "lab/pve-lab", "--node", "--env"] {
        assert!(err.contains(needle), "missing {needle:?}: {err}");
    }
    assert!(changes(&lab).is_empty(), "{:?}", changes(&lab));

    // --list shows both nodes' backups, each with its node and environment.
    let out = run(&lab, &["100", "--list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Document<BackupList> = typed(&out);
    assert_eq!(doc.body.node, None);
    let mut places: Vec<(Option<String>, Option<String>)> = doc
        .body
        .backups
        .iter()
        .map(|b| (b.node.clone(), b.environment.clone()))
        .collect();
    places.dedup();
    places.sort();
    assert_eq!(
        places,
        [
            (Some("pve-lab".into()), Some("lab".into())),
            (Some("pve-prod".into()), Some("prod".into()))
        ]
    );
    let out = run(&lab, &["100", "--list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap_or_default().starts_with("NODE"),
        "{text}"
    );

    // --env chooses: the lab's guest is overwritten there (after its save point), prod's is untouched.
    let out = run(
        &lab,
        &["100", "--env", "lab", "--force", "--no-verify", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Report = typed(&out);
    assert_eq!(report.node, "pve-lab");
    assert!(
        changes(&lab).iter().all(|(n, _)| n == "pve-lab"),
        "{:?}",
        changes(&lab)
    );
}

#[test]
fn in_a_cluster_a_moved_guest_is_restored_on_the_member_holding_it() {
    let lab = lab(&[], 2);
    let (lab_node, mon) = (
        lab.bed.node("lab").unwrap(),
        lab.bed.node("monitoring").unwrap(),
    );
    // Lab's CT 201 migrated to pve-mon; its backups are on the shared storage.
    let mut moved = lab_node.state.guest(201).unwrap().unwrap();
    lab_node.state.remove_guest(201).unwrap();
    moved.node = "pve-mon".into();
    mon.state.add_guest(&moved).unwrap();

    // Listed once, though both members list the shared storage.
    let out = run(&lab, &["201", "--list", "--all-storages", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Document<BackupList> = typed(&out);
    assert_eq!(doc.body.backups.len(), 1, "{:#?}", doc.body.backups);
    assert_eq!(doc.body.backups[0].storage, testbed::fleet::SHARED_STORAGE);

    let out = run(
        &lab,
        &["201", "--all-storages", "--force", "--no-verify", "--json"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report: Report = typed(&out);
    assert_eq!(
        (report.node.as_str(), report.environment.as_deref()),
        ("pve-mon", Some("lab")),
        "{err}"
    );
    let on_mon = mon.state.journal_argv().unwrap();
    assert!(
        on_mon
            .iter()
            .any(|a| a[0] == "pct" && a[1] == "restore" && a[2] == "201"),
        "{on_mon:?}"
    );
    assert!(lab_node.state.journal_argv().unwrap().is_empty());
}
