//! Usage errors exit 64, never 2 (2 means drift).

use crate::support::{Bed, bin, stderr};

#[test]
fn usage_errors_exit_64() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    bed.add_env("prod", "basic");
    let cases: &[&[&str]] = &[
        &["--env", "../etc"],
        &["--env", "a/b"],
        &["--env", ""],
        &["--jobs", "0"],
        &["--timeout", "soon"],
        &["--lock-timeout", "-1s"],
        &["--no-such-flag"],
        &["--color", "sometimes"],
    ];
    for args in cases {
        let out = bed.cmd().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    bed.add_env("prod", "basic");
    std::fs::create_dir(bed.root().join("not-an-env")).unwrap();
    let out = bed.cmd().args(["--env", "staging"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = stderr(&out);
    assert!(err.contains("unknown environment `staging`"), "{err}");
    assert!(err.contains("known environments: lab, prod"), "{err}");
}

#[test]
fn missing_root_is_a_usage_error() {
    let out = bin()
        .args(["--root", "/nonexistent/envs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn help_documents_exit_codes() {
    let out = bin().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--env",
        "--all",
        "--root",
        "--dry-run",
        "--json",
        "--jobs",
        "--timeout",
        "--lock-timeout",
        "--ignore-file",
        "--terraform-bin",
        "--wait-lock",
        "Exit status:",
        "75",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
}
