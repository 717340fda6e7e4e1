//! verify-backups, attacks (secrets in outputs and on command lines, file modes, symlinks at
//! predictable paths, host keys, injection payloads through flags): nothing leaks, no link is
//! followed, no payload runs.

use crate::pvenode::{Node, run};
use crate::support::security::payloads;

#[test]
fn verify_backups_flags_carrying_payloads() {
    let node = Node::start();
    let canary = node.dir.path().join("pwned");
    let mut runs = 0;
    for p in payloads(&canary) {
        let cases: Vec<Vec<String>> = vec![
            vec!["--host".into(), p.clone()],
            vec!["--ssh-user".into(), p.clone()],
            vec![format!("--vmid={p}")],
            // The dump folder is the one value that reaches remote commands (stat, sha256sum, zstd -t...).
            vec!["--dump-dir".into(), format!("local=/{p}")],
            vec!["--deep".into(), "--dump-dir".into(), format!("local={p}")],
            vec![
                "--manifest".into(),
                node.dir.path().join(&p).display().to_string(),
            ],
            vec!["--minio-url".into(), p.clone()],
            vec!["--terraform-bin".into(), p.clone(), "--full".into()],
        ];
        for args in cases {
            runs += 1;
            let (code, _, err) = run(node.verify_backups().args(&args));
            assert!(
                matches!(code, Some(0 | 1 | 2 | 64)),
                "{args:?}: {code:?} {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(!canary.exists(), "{args:?} ran a command: {err}");
        }
    }
    assert!(node.journal().is_empty(), "{:?}", node.journal());
    eprintln!("verify-backups payload runs: {runs}");
}
