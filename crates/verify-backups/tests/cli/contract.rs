//! The command-line contract: help, version, usage errors (64), and what a run without a node or root says.

use crate::bed::run;

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

#[test]
fn help_and_version_exit_0() {
    let out = run(&s(&["--help"]), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: verify-backups"));
    let out = run(&s(&["--version"]), &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_64_before_any_connection() {
    for args in [
        vec!["--no-such-flag"],
        vec!["--max-age", "soon"],
        vec!["--max-age", "0s"],
        vec!["--dump-dir", "nodir"],
        vec!["--local-dir", "/nonexistent/dump"],
        vec!["--host", "user@"],
        vec!["--grafana-url", "grafana:3000"],
        vec!["--jobs", "0"],
        // Regression: without a node there is no list of backups, so these checked nothing and ended "OK".
        vec!["--deep"],
        vec!["--record"],
    ] {
        let out = run(&s(&args), &[]);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// Regression: with no argument (as the TUI menu calls it) and no homelab to read the nodes from, the
/// tool checked nothing and said OK (exit 0). It now says so, and exits 2.
#[test]
fn nothing_to_check_is_an_error_not_ok() {
    let out = run(&s(&["--json"]), &[]);
    assert_eq!(out.status.code(), Some(2));
    for c in crate::bed::report(&out).components {
        assert!(c.skipped.is_some(), "{c:#?}");
    }
    let out = run(&s(&["--lang", "fr"]), &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Total verifie: 1") && text.contains("Erreurs: 1"),
        "{text}"
    );
    assert!(text.contains("Rien n'a pu etre verifie"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Aucun noeud trouve"), "{err}");
}

#[test]
fn unreachable_node_fails() {
    let port = testbed::ports::free_port().unwrap();
    let out = run(
        &s(&["--json", "--host", &format!("127.0.0.1:{port}")]),
        &[("PVE_SSH_TRANSPORT".into(), "libssh2".into())],
    );
    assert_eq!(out.status.code(), Some(2));
    let doc = crate::bed::report(&out);
    assert_eq!(
        doc.components[0].status,
        verify_backups::report::Status::Fail
    );
}

#[test]
fn vmid_not_a_number_is_refused_in_the_scripts_words() {
    let out = run(&s(&["--vmid", "abc", "--lang", "fr"]), &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("VMID invalide: doit etre un nombre"), "{err}");
}
