//! restore-vm, attacks (secrets in outputs and on command lines, file modes, symlinks at
//! predictable paths, host keys, injection payloads through flags): nothing leaks, no link is
//! followed, no payload runs.

use crate::pvenode::{Node, run};
use crate::support::security::payloads;

#[test]
fn restore_vm_flags_carrying_payloads() {
    let node = Node::start();
    let canary = node.dir.path().join("pwned");
    let before = node.guests();
    let flags: &[&str] = &[
        "VMID",
        "--backup",
        "--target-id",
        "--storage",
        "--save-storage",
        "--node",
        "--at",
        "--user",
        "--host",
    ];
    let mut runs = 0;
    for p in payloads(&canary) {
        for flag in flags {
            let mut c = node.restore_vm();
            match *flag {
                "VMID" => c.arg("--").arg(&p).arg("--yes"),
                // A backup id reaches qmrestore only from the listing; a payload must be refused first.
                "--backup" => c.args(["100", "--force", "--yes", "--backup", &p]),
                "--user" | "--host" => c.args(["100", "--list", flag, &p]),
                _ => c.args(["100", "--force", "--yes", "--no-verify", flag, &p]),
            };
            runs += 1;
            let (code, _, err) = run(&mut c);
            assert!(
                matches!(code, Some(0 | 1 | 64)),
                "restore-vm {flag} {p:?}: {code:?} {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(!canary.exists(), "{flag} {p:?} ran a command: {err}");
            // Only the empty --user/--host (ignored: the defaults apply) may get as far as the node.
            assert!(
                node.journal().is_empty(),
                "restore-vm {flag} {p:?} changed the node: {:?}\n{err}",
                node.journal()
            );
        }
    }
    assert_eq!(node.guests(), before);
    eprintln!("restore-vm payload runs: {runs}");
}
