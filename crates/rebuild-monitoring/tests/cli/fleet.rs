//! The monitoring VM's node on the three-node fleet bed: the node of the environment whose Terraform
//! state manages the VM (here lab's VM 200 stands for it), never the root's default node nor the
//! monitoring environment's when another environment owns the VM; an explicit --node still wins.

use rebuild_monitoring::Report;
use testbed::fleet::FleetLab;
use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};

use super::stack::Stack;

fn preview(lab: &FleetLab, stack: &Stack, extra: &[&str]) -> (i32, Report, String) {
    let mut cmd = super::bin();
    cmd.current_dir(lab.scripts_dir())
        .envs(lab.env().unwrap())
        .args(["--from-backup", "--preview"])
        .args(extra);
    super::run_cmd(cmd, stack, &[])
}

#[test]
fn the_node_is_the_one_of_the_environment_owning_the_vm_unless_node_is_given() {
    let lab = FleetLab::start(
        &[],
        0,
        testbed::fixture::HomelabOptions {
            states: vec!["prod".into(), "lab".into(), "monitoring".into()],
            // The monitoring block names VM 200, which lab's state manages on pve-lab.
            monitoring_vmid: Some(200),
            monitoring_ip: Some("127.0.0.1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let stack = Stack::start_without_daemons();

    let (code, doc, stderr) = preview(&lab, &stack, &[]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(
        doc.rebuild.restore.as_ref().map(|r| r.node.as_str()),
        Some("pve-lab"),
        "{stderr}\n{doc:#?}"
    );
    assert!(
        stderr.contains("would run: qmrestore local:backup/vzdump-qemu-200-"),
        "{stderr}"
    );
    for n in &lab.bed.nodes {
        assert!(n.state.journal_argv().unwrap().is_empty(), "{}", n.node);
    }

    // --node wins (reached at the endpoint of the environment whose node it is): a copy of VM 200's
    // backup on pve-prod is the one planned there.
    let prod = lab.bed.node("prod").unwrap();
    let copy = lab
        .bed
        .node("lab")
        .unwrap()
        .state
        .guest(200)
        .unwrap()
        .unwrap();
    prod.state
        .add_backup(
            "local",
            &copy,
            &ArchiveSpec {
                size: 64 * 1024,
                ctime: testbed::sim::state::now_epoch() - 600,
                seed: 7,
            },
            &BackupOptions::default(),
        )
        .unwrap();
    let (code, doc, stderr) = preview(&lab, &stack, &["--node", "pve-prod"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(
        doc.rebuild.restore.as_ref().map(|r| r.node.as_str()),
        Some("pve-prod"),
        "{stderr}\n{doc:#?}"
    );
}
