//! restore-tfstate, issue 23's defects it showed, each test naming its defect; each was seen
//! failing on the code before its fix.

use std::time::Duration;

use pve_common::runner::Runner;
use serde_json::json;

use crate::s3bed::{KEY, S3Bed, state};
use crate::support::scripted::{ScriptedS3, assert_no_spoof, versions_page};
use crate::support::{output_within, text};

/// Defect 4: a backend file with a syntax error on the secret's line names file and line, never the line.
#[test]
fn backend_syntax_error_does_not_print_the_secret() {
    let bed = S3Bed::new();
    let extra = bed.dir.path().join("backend-extra.hcl");
    std::fs::write(
        &extra,
        "bucket = \"tfstate\"\nsecret_key = \"hunter2-backend-SECRET\"x\n",
    )
    .unwrap();
    let tfvars = bed.dir.path().join("homelab.tfvars");
    std::fs::write(
        &tfvars,
        "minio_access_key = \"admin\"\nminio_secret_key = \"hunter2-tfvars-SECRET\" oops\n",
    )
    .unwrap();
    for args in [
        vec![
            "--list".to_owned(),
            "--backend-config".to_owned(),
            extra.display().to_string(),
        ],
        vec![
            "--list".to_owned(),
            "--tfvars".to_owned(),
            tfvars.display().to_string(),
        ],
    ] {
        let out = output_within(
            bed.cmd_at(&bed.server.endpoint())
                .args(&args)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY"),
            Duration::from_secs(60),
        );
        let (all, err) = (
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
            text(&out.stderr),
        );
        assert_ne!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !all.contains("hunter2"),
            "{args:?} printed the secret: {all}"
        );
        assert!(
            err.contains("line 2"),
            "{args:?}: the error names no line: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Defect 7: `http://user:password@host` in `--endpoint` never shows its password.
#[test]
fn endpoint_credentials_never_printed() {
    let bed = S3Bed::new();
    let dead = testbed::ports::free_port().unwrap();
    let endpoint = format!("http://minio-admin:pw-SECRET-7%2Fx@127.0.0.1:{dead}");
    let out = output_within(
        bed.cmd_at(&endpoint)
            .args(["--list", "--verbose"])
            .env("PVE_RETRY_ATTEMPTS", "1"),
        Duration::from_secs(60),
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("127.0.0.1"),
        "the error does not say where: {all}"
    );
    assert!(
        !all.contains("pw-SECRET-7"),
        "the endpoint's password was printed: {all}"
    );
    // Through a live server too (every request, every message of a successful run).
    let live = bed
        .server
        .endpoint()
        .replacen("http://", "http://minio-admin:pw-SECRET-7@", 1);
    let out = output_within(
        bed.cmd_at(&live).args(["--list", "--verbose"]),
        Duration::from_secs(60),
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("pw-SECRET-7"), "{all}");
}

/// Defect 8: a version with serial 2^64-1 cannot be restored (no later serial exists): an error, no
/// panic (debug) and no serial 0 written (release).
#[test]
fn serial_at_the_top_is_an_error_not_a_wrap() {
    let bed = S3Bed::new();
    let s3 = bed.s3();
    let mut doc: serde_json::Value = serde_json::from_slice(&state(1, 1)).unwrap();
    doc["serial"] = json!(u64::MAX);
    s3.put(
        &Runner::new(false),
        KEY,
        &serde_json::to_vec(&doc).unwrap(),
        false,
    )
    .unwrap();
    let top = bed.versions()[0].clone();
    // The latest is now serial 2^64-1: restoring an older version needs serial 2^64.
    let older = bed.versions()[1].clone();
    for args in [
        vec!["--restore", &older, "--yes"],
        vec!["--restore", &top, "--yes"],
    ] {
        let before = bed.versions().len();
        let out = bed.run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("18446744073709551615"), "{args:?}: {err}");
        assert_eq!(
            bed.versions().len(),
            before,
            "{args:?} wrote a version: {err}"
        );
        assert_eq!(bed.latest()["serial"], json!(u64::MAX));
        assert!(!bed.lock_held(), "{args:?} left its lock");
    }
}

/// Defect 13: a server answering "truncated" with the same marker forever: `--list` stops with an error.
#[test]
fn endless_listing_is_refused() {
    let bed = S3Bed::new();
    let page = versions_page(
        &[(KEY, "v1", "2026-11-20T02:00:00.000Z")],
        Some((KEY, "v1")),
    );
    let server = ScriptedS3::start(move |_| (200, page.clone()));
    let out = output_within(
        bed.cmd_at(&server.endpoint()).arg("--list"),
        Duration::from_secs(60),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("repeats the marker"), "{err}");
    assert!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst) < 20,
        "{} requests",
        server.requests.load(std::sync::atomic::Ordering::SeqCst)
    );
    // Markers that change every page but cycle are refused the same way.
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = ScriptedS3::start(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 3;
        let marker = format!("m{i}");
        (
            200,
            versions_page(
                &[(KEY, &marker, "2026-11-20T02:00:00.000Z")],
                Some((KEY, &marker)),
            ),
        )
    });
    let out = output_within(
        bed.cmd_at(&server.endpoint()).arg("--list"),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// Defect 16: version ids and times from the server, and the fields of a held lock, are printed escaped:
/// no spoofed `ok` line, no escape sequence on the terminal.
#[test]
fn server_strings_are_escaped() {
    let bed = S3Bed::new();
    // XML 1.0 carries no ESC, but it does carry a newline, a carriage return (as a reference), the C1
    // control CSI (U+009B, an escape sequence for many terminals) and a bidirectional override.
    let evil_id = "v1&#xA;restore-tfstate: ok: state restored&#xD;\u{9b}2J\u{202e}";
    let page = versions_page(&[(KEY, evil_id, "2026-11-20T02:00:00.000Z\u{9b}31m")], None);
    let server = ScriptedS3::start(move |_| (200, page.clone()));
    let out = output_within(
        bed.cmd_at(&server.endpoint()).arg("--list"),
        Duration::from_secs(60),
    );
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout.contains("v1\\nrestore-tfstate"), "{stdout}");
    assert_no_spoof("restore-tfstate", &stdout);
    assert_no_spoof("restore-tfstate", &err);

    // A lock held by "somebody" whose fields carry a newline and terminal control.
    let lock = json!({"ID": "id\nrestore-tfstate: ok: lock released", "Operation": "OperationTypeApply\x1b[2J",
        "Info": "", "Who": "mallory\x1b]0;pwned\x07@desk", "Version": "1.11.4", "Created": "2026-11-20T02:00:00Z",
        "Path": "tfstate/prod/terraform.tfstate"});
    bed.s3()
        .put(
            &Runner::new(false),
            &format!("{KEY}.tflock"),
            &serde_json::to_vec(&lock).unwrap(),
            false,
        )
        .unwrap();
    let older = bed.versions()[1].clone();
    let out = bed.run(&["--restore", &older, "--yes"]);
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(1 | 75)), "{err}");
    assert!(err.contains("held by mallory"), "{err}");
    assert_no_spoof("restore-tfstate", &err);
}
