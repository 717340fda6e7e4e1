//! rebuild-monitoring, injected faults (refused or cut connections, a server gone mid-write,
//! children killed or timing out, a full disk, signals at random points, concurrent runs): each
//! case ends with a clear error or a complete result, and leaves nothing half-written behind.

use std::time::{Duration, Instant};

use crate::pvenode::{Node, assert_interrupted_restore, run};
use crate::support::faults::cut_once;
use crate::support::faults::first_words;
use crate::support::faults::signal_loop;
use crate::support::faults::slow_restores;

/// rebuild-monitoring `--from-backup` restores through restore-vm's code: a cut during the save point
/// overwrites nothing, a cut during the restore names the save point and the way back and is not retried.
#[test]
fn rebuild_monitoring_from_backup_cut_during_the_save_point_or_the_restore() {
    let node = Node::start();
    let before = node.state.guest(100).unwrap().unwrap();
    cut_once(&node, "vzdump", 0);
    let (code, _, err) = run(&mut node.rebuild_from_backup());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nothing was overwritten"), "{err}");
    assert_eq!(first_words(&node.journal()), ["vzdump"], "not retried");
    let after = node.state.guest(100).unwrap().unwrap();
    assert_eq!(after.config, before.config);

    let node = Node::start();
    cut_once(&node, "qmrestore", 0);
    let (code, _, err) = run(&mut node.rebuild_from_backup());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the old guest is saved in local:backup/vzdump-qemu-100-")
            && err.contains("qmrestore local:backup/vzdump-qemu-100-"),
        "the save point and the way back: {err}"
    );
    assert_eq!(
        first_words(&node.journal()),
        ["vzdump", "qm shutdown", "qmrestore"],
        "qmrestore ran once, nothing after it"
    );
}

/// SIGTERM/SIGINT at random points of `rebuild-monitoring --from-backup` (slowed vzdump and qmrestore),
/// over libssh2 and over OpenSSH: exit 130 or the normal code; after a save point the message names it
/// and the way back; no temp file; and with OpenSSH no `ssh` process and no control folder outlive the run
/// (before, the `ssh` child and the master connection ran on after the tool had exited).
#[test]
fn rebuild_monitoring_from_backup_interrupted_at_random_points() {
    let node = Node::start();
    slow_restores(&node);
    let tmp = tempfile::tempdir().unwrap();
    let ssh_config = node.sshd.ssh_config().display().to_string();
    signal_loop(
        "rebuild-monitoring --from-backup",
        10,
        0x5EED_0016,
        2500,
        |i| {
            let mut c = node.rebuild_from_backup();
            c.env("TMPDIR", tmp.path());
            if i % 4 >= 2 {
                c.env("PVE_SSH_TRANSPORT", "openssh");
            }
            c
        },
        |i, code, _, e| {
            assert_interrupted_restore(&node, i, code, e);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !crate::support::processes_with(&ssh_config).is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "run {i}: ssh processes outlived the tool: {:?}\n{e}",
                    crate::support::processes_with(&ssh_config)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
            assert!(left.is_empty(), "run {i}: left in TMPDIR: {left:?}\n{e}");
        },
    );
}
