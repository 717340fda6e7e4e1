//! restore-vm, injected faults (refused or cut connections, a server gone mid-write, children
//! killed or timing out, a full disk, signals at random points, concurrent runs): each case ends
//! with a clear error or a complete result, and leaves nothing half-written behind.

use crate::pvenode::{Node, run};
use crate::support::faults::cut_once;
use crate::support::faults::first_words;

#[test]
fn connection_cut_during_the_save_point_overwrites_nothing() {
    let node = Node::start();
    let before = node.state.guest(100).unwrap().unwrap();
    cut_once(&node, "vzdump", 0);
    let (code, _, err) = run(node
        .restore_vm()
        .args(["100", "--force", "--yes", "--no-verify"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nothing was overwritten"), "{err}");
    assert_eq!(
        first_words(&node.journal()),
        ["vzdump"],
        "not retried, nothing after it"
    );
    let after = node.state.guest(100).unwrap().unwrap();
    assert_eq!(after.config, before.config);
    assert_eq!(after.status, "running");
}

#[test]
fn connection_cut_during_the_restore_names_the_save_point_and_is_not_retried() {
    let node = Node::start();
    cut_once(&node, "qmrestore", 0);
    let (code, _, err) = run(node
        .restore_vm()
        .args(["100", "--force", "--yes", "--no-verify"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the old guest is saved in local:backup/vzdump-qemu-100-"),
        "{err}"
    );
    assert!(
        err.contains("qmrestore local:backup/vzdump-qemu-100-"),
        "the way back: {err}"
    );
    let words = first_words(&node.journal());
    assert_eq!(
        words,
        ["vzdump", "qm shutdown", "qmrestore"],
        "qmrestore ran once"
    );
}
