//! The whole homelab at once, on the fleet bed (one simulated node per environment): with no argument,
//! every environment's node is checked over its own SSH session, coverage is proven against each
//! environment's Terraform state (local file or MinIO), guests and backups no state manages are
//! "unmanaged", and a node that is down is reported once while the others are still checked.

use std::process::Output;

use serde_json::Value;
use testbed::fleet::{FleetLab, UNBACKED_VMID, UNMANAGED_BACKUP_VMID};
use testbed::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use verify_backups::report::{Check, CheckName, Report, Status};

use crate::bed::{component, guest, report_exiting};

struct Lab {
    fleet: FleetLab,
    envs: Vec<(String, String)>,
}

/// The fleet with `pve-mon` down; prod's and monitoring's states in MinIO (the homelab's `minio` block),
/// lab's in a local terraform.tfstate.
fn lab(s3: &S3Server) -> Lab {
    lab_with(s3, &["pve-mon"], 0)
}

fn lab_with(s3: &S3Server, down: &[&str], cluster: usize) -> Lab {
    let fleet = FleetLab::start(
        down,
        cluster,
        testbed::fixture::HomelabOptions {
            minio: Some(("127.0.0.1".into(), Some(s3.port()))),
            states: vec!["lab".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let c = s3.client();
    for env in ["prod", "lab", "monitoring"] {
        let bucket = format!("tfstate-{env}");
        c.create_bucket(&bucket).unwrap();
        c.set_versioning(&bucket, true).unwrap();
        let state = if env == "lab" {
            // MinIO's copy of lab names another guest: only the local state, the one read, is right.
            testbed::fleet::state_json("monitoring")
        } else {
            testbed::fleet::state_json(env)
        };
        c.put_object(&bucket, "terraform.tfstate", state.as_bytes())
            .unwrap();
    }
    let mut envs = fleet.env().unwrap();
    envs.extend([
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        (
            "PVE_VERIFY_MANIFEST".into(),
            fleet.dir().join("manifest").display().to_string(),
        ),
    ]);
    Lab { fleet, envs }
}

fn run(lab: &Lab, args: &[&str]) -> Output {
    crate::bed::bin()
        .current_dir(lab.fleet.scripts_dir())
        .args(args)
        .envs(lab.envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn coverage_checks(doc: &Report) -> &[Check] {
    &component(doc, "coverage").checks
}

#[test]
fn every_environment_checked_against_its_state_with_one_node_down() {
    let s3 = S3Server::start().unwrap();
    let lab = lab(&s3);
    let out = run(&lab, &["--json"]);
    let doc = report_exiting(&out, 2);

    // The managed guest without a backup: an error naming its environment and node.
    let missing = guest(&doc, UNBACKED_VMID);
    assert_eq!(missing.status, Status::Fail, "{missing:#?}");
    assert_eq!(missing.environment.as_deref(), Some("prod"));
    assert_eq!(missing.node.as_deref(), Some("pve-prod"));

    // The other two nodes were checked: every guest of their states, with its environment.
    for (vmid, env, node) in [
        (100, "prod", "pve-prod"),
        (101, "prod", "pve-prod"),
        (200, "lab", "pve-lab"),
        (201, "lab", "pve-lab"),
    ] {
        let g = guest(&doc, vmid);
        assert_eq!(
            (g.status, g.environment.as_deref(), g.node.as_deref()),
            (Status::Ok, Some(env), Some(node)),
            "{g:#?}"
        );
    }
    let backups = &doc.backups;
    assert!(
        backups.iter().any(|b| b.vmid == 200
            && b.node.as_deref() == Some("pve-lab")
            && b.environment.as_deref() == Some("lab")),
        "{backups:#?}"
    );

    let checks = coverage_checks(&doc);
    // The backup no guest and no state has: unmanaged, a warning.
    let unmanaged: Vec<_> = checks
        .iter()
        .filter(|c| c.check == CheckName::Unmanaged)
        .collect();
    assert_eq!(unmanaged.len(), 1, "{checks:#?}");
    assert_eq!(
        unmanaged[0].subject,
        format!("vmid {UNMANAGED_BACKUP_VMID}")
    );
    assert_eq!(unmanaged[0].status, Status::Warn);
    assert!(unmanaged[0].reason.contains("pve-prod"), "{unmanaged:?}");

    // The node that is down: once, with its environment; nothing of its guests invented.
    let down: Vec<_> = checks
        .iter()
        .filter(|c| c.node.as_deref() == Some("pve-mon") || c.subject == "pve-mon")
        .collect();
    assert_eq!(down.len(), 1, "{checks:#?}");
    assert_eq!(down[0].check, CheckName::Connect);
    assert_eq!(
        (down[0].subject.as_str(), down[0].environment.as_deref()),
        ("pve-mon", Some("monitoring"))
    );
    assert!(doc.guests.iter().all(|g| g.vmid != 300));

    // One SSH session per node that is up.
    for env in ["prod", "lab"] {
        let sshd = lab.fleet.bed.node(env).unwrap().sshd.as_ref().unwrap();
        assert_eq!(sshd.logins(), 1, "{env}");
    }

    // The text report: rows grouped by environment and node, in the scripts' words.
    let out = run(&lab, &["--lang", "fr"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(
            "vzdump | VM 102 (vaultwarden) @pve-prod [prod] | ERROR | - | Aucune sauvegarde"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("vzdump | vmid 150 | WARNING |"), "{stdout}");
    assert_eq!(
        stdout
            .matches(
                "vzdump | pve-mon | ERROR | - | Noeud injoignable: node of environment monitoring: "
            )
            .count(),
        1,
        "{stdout}"
    );
    let lab_row = stdout
        .find("VM 200 (runner) @pve-lab [lab]")
        .expect("lab's guest");
    let prod_row = stdout
        .find("VM 100 (jellyfin) @pve-prod [prod]")
        .expect("prod's guest");
    assert!(lab_row < prod_row, "grouped by environment: {stdout}");
}

#[test]
fn env_node_and_vmid_narrow_the_fleet() {
    let s3 = S3Server::start().unwrap();
    let lab = lab(&s3);
    // Only lab: its node alone, all its guests backed up, nothing unmanaged: OK.
    let out = run(&lab, &["--env", "lab", "--json"]);
    let doc = report_exiting(&out, 0);
    let vmids: Vec<u32> = doc.guests.iter().map(|g| g.vmid).collect();
    assert_eq!(vmids, [200, 201]);
    assert_eq!(doc.environments.len(), 1);
    assert_eq!(
        lab.fleet
            .bed
            .node("prod")
            .unwrap()
            .sshd
            .as_ref()
            .unwrap()
            .logins(),
        0
    );

    // --node pve-prod --vmid 102: that node, that guest, proven against prod's state.
    let out = run(&lab, &["--node", "pve-prod", "--vmid", "102", "--json"]);
    let doc = report_exiting(&out, 2);
    assert_eq!(doc.guests.len(), 1);
    assert_eq!(guest(&doc, 102).environment.as_deref(), Some("prod"));

    let out = run(&lab, &["--env", "staging"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known: lab, monitoring, prod"));
}

#[test]
fn in_a_cluster_a_moved_guest_is_found_and_a_shared_backup_counts_once() {
    let s3 = S3Server::start().unwrap();
    let lab = lab_with(&s3, &[], 2);
    let (lab_node, mon) = (
        lab.fleet.bed.node("lab").unwrap(),
        lab.fleet.bed.node("monitoring").unwrap(),
    );
    // The members answer for each other: pve-lab lists pve-mon's guests with their node.
    let out = std::process::Command::new(lab_node.dir.join("bin/pvesh"))
        .args([
            "get",
            "/cluster/resources",
            "--type",
            "vm",
            "--output-format",
            "json",
        ])
        .env("PVE_SIM_STATE", lab_node.state.dir())
        .output()
        .unwrap();
    let resources: Value = serde_json::from_slice(&out.stdout).unwrap();
    let on: Vec<(u64, String)> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["vmid"].as_u64().unwrap(),
                r["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        on.contains(&(300, "pve-mon".into())) && on.contains(&(200, "pve-lab".into())),
        "{on:?}"
    );

    // Lab's CT 201 migrates to pve-mon (its backups stay where they are, on the shared storage).
    let mut moved = lab_node.state.guest(201).unwrap().unwrap();
    lab_node.state.remove_guest(201).unwrap();
    moved.node = "pve-mon".into();
    mon.state.add_guest(&moved).unwrap();

    let out = run(
        &lab,
        &[
            "--env",
            "lab",
            "--env",
            "monitoring",
            "--all-storages",
            "--json",
        ],
    );
    let doc = report_exiting(&out, 0);
    let g = guest(&doc, 201);
    assert_eq!(
        (g.node.as_deref(), g.environment.as_deref(), g.status),
        (Some("pve-mon"), Some("lab"), Status::Ok),
        "found on the member that holds it: {g:#?}"
    );
    let guests = &doc.guests;
    assert_eq!(
        guests.iter().filter(|g| g.vmid == 201).count(),
        1,
        "{guests:#?}"
    );
    // Both members list the shared storage: each backup counts once.
    let backups = &doc.backups;
    for vmid in [200, 201, 300] {
        let of: Vec<_> = backups.iter().filter(|b| b.vmid == vmid).collect();
        assert_eq!(of.len(), 1, "{vmid}: {backups:#?}");
        assert_eq!(of[0].storage, testbed::fleet::SHARED_STORAGE);
    }
    assert!(
        !coverage_checks(&doc)
            .iter()
            .any(|c| c.check == CheckName::Unmanaged || c.check == CheckName::Orphan),
        "{:#?}",
        coverage_checks(&doc)
    );
}
