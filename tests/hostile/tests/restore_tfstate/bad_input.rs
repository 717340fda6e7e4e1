//! restore-tfstate, bad input: each case ends with a clear error naming the input, exit 64 (usage)
//! or 1 (failure) as documented, and changes nothing.

use std::time::Duration;

use pve_common::runner::Runner;

use crate::s3bed::{KEY, S3Bed};
use crate::support::bad_input::drift_root;
use crate::support::{self, output_within, text, walk};

#[test]
fn malformed_version_ids_are_usage_errors_before_any_connection() {
    // Port 9 (discard) is closed here: reaching it would be a connection error (exit 1), not 64.
    let root = drift_root();
    for id in ["a\nb", "a b", "", "\u{7f}x", "é"] {
        for flag in ["--restore", "--show"] {
            let out = output_within(
                support::tool("restore-tfstate")
                    .arg("--root")
                    .arg(root.path().join("envs"))
                    .args(["--env", "prod", "--endpoint", "http://127.0.0.1:9", "--yes"])
                    .arg(format!("{flag}={id}")),
                Duration::from_secs(20),
            );
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{flag} {id:?}: {err}");
            assert!(err.contains(flag), "{err}");
        }
    }
}

#[test]
fn version_ids_that_do_not_exist_or_carry_payloads_change_nothing() {
    let bed = S3Bed::new();
    let before = bed.versions();
    let latest = bed.latest();
    for id in [
        "no-such-version",
        "x;reboot",
        "'quoted'",
        "\"dq\"",
        "$(id)",
        "`id`",
        "../../etc/passwd",
        "a&versionId=b",
        "%00",
    ] {
        for args in [vec!["--restore", id, "--yes"], vec!["--show", id]] {
            let out = bed.run(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains(id) && (err.contains("does not exist") || err.contains("404")),
                "{args:?}: {err}"
            );
            assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        }
    }
    assert_eq!(bed.versions(), before);
    assert_eq!(bed.latest(), latest);
    assert!(!bed.lock_held(), "no lock left behind");
    assert!(walk(&bed.backups()).is_empty() || bed.backups().exists());
}

#[test]
fn bad_tfstate_versions_in_the_bucket_are_never_restored() {
    let bed = S3Bed::new();
    let runner = Runner::new(false);
    let s3 = bed.s3();
    let good = s3.get(KEY, None).unwrap();
    let mut bad_ids = Vec::new();
    for body in [
        &b""[..],
        b"{\"version\":3,\"serial\":9,\"lineage\":\"x\",\"modules\":[]}",
        b"{\"version\":4,\"serial\":9,\"resources\":[]}",
        b"\x00\x01\x02",
    ] {
        let put = s3.put(&runner, KEY, body, false).unwrap().unwrap();
        bad_ids.push(put.version_id.unwrap());
    }
    s3.put(&runner, KEY, &good, false).unwrap();
    let before = bed.versions();
    for id in &bad_ids {
        let out = bed.run(&["--restore", id, "--yes"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(id.as_str()), "names the version: {err}");
    }
    assert_eq!(bed.versions(), before, "nothing written");
    assert!(!bed.lock_held());
}
