//! Several tools at once, injected faults (refused or cut connections, a server gone mid-write,
//! children killed or timing out, a full disk, signals at random points, concurrent runs): each
//! case ends with a clear error or a complete result, and leaves nothing half-written behind.

use pve_common::output::Document;
use restore_vm::report::BackupList;
use verify_backups::report::{Report as VerifyReport, Status};

use crate::pvenode::{Node, assert_interrupted_restore, run, temp_files};
use crate::support::faults::cut_once;
use crate::support::faults::signal_loop;
use crate::support::faults::slow_restores;
use crate::support::{self, fault};

#[test]
fn refused_twice_is_retried_and_refused_always_fails_after_three_attempts() {
    let node = Node::start();
    // restore-vm
    node.sshd.refuse_next(2);
    fault();
    fault();
    let (code, out, err) = run(node.restore_vm().args(["100", "--list", "--json"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("attempt 1/3") && err.contains("attempt 2/3"),
        "{err}"
    );
    let doc: Document<BackupList> = support::decoded(&out, &err);
    assert_eq!(doc.body.backups.len(), 2);
    let before = node.sshd.connections();
    node.sshd.refuse_next(1000);
    let (code, out, err) = run(node.restore_vm().args(["100", "--force", "--yes"]));
    let attempts = node.sshd.connections() - before;
    node.sshd.refuse_next(0);
    (0..attempts).for_each(|_| fault());
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty());
    assert_eq!(attempts, 3, "{err}");
    assert!(
        err.contains("3 attempts") || err.contains("attempt 3/3") || err.contains("after 3"),
        "{err}"
    );
    assert!(
        err.contains(&node.sshd.port().to_string()) || err.contains(node.sshd.alias()),
        "{err}"
    );

    // verify-backups (no test hook for the retry delay: 1 s + 2 s of real backoff)
    node.sshd.refuse_next(2);
    fault();
    fault();
    let (code, out, err) = run(node.verify_backups().arg("--json"));
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert!(err.contains("attempt 1/3"), "{err}");
    let before = node.sshd.connections();
    node.sshd.refuse_next(1000);
    let (code, out, err) = run(node.verify_backups().arg("--json"));
    let attempts = node.sshd.connections() - before;
    node.sshd.refuse_next(0);
    (0..attempts).for_each(|_| fault());
    assert_eq!(code, Some(2), "{err}\n{out}");
    assert_eq!(attempts, 3, "{err}");
    let doc: VerifyReport = support::decoded(&out, &err);
    assert_eq!(doc.status, Status::Fail);
    assert!(
        out.contains(&node.sshd.port().to_string()) || err.contains(&node.sshd.port().to_string()),
        "{out}\n{err}"
    );
    assert!(node.journal().is_empty());
}

#[test]
fn connection_cut_during_a_listing_is_retried() {
    let node = Node::start();
    for tool in ["restore-vm", "verify-backups"] {
        cut_once(&node, "pvesh get /nodes/pve/storage/local/content", 40);
        let (code, out, err) = if tool == "restore-vm" {
            run(node.restore_vm().args(["100", "--list", "--json"]))
        } else {
            run(node.verify_backups().arg("--json"))
        };
        assert_eq!(code, Some(0), "{tool}: {err}\n{out}");
        assert!(
            err.contains("retrying") || err.contains("attempt 1/3"),
            "{tool}: {err}"
        );
        if tool == "restore-vm" {
            let doc: Document<BackupList> = support::decoded(&out, &err);
            assert_eq!(doc.body.backups.len(), 2, "complete listing");
        } else {
            let doc: VerifyReport = support::decoded(&out, &err);
            assert_eq!(doc.backups.len(), 2, "{doc:#?}");
        }
    }
    assert!(node.journal().is_empty());
}

#[test]
fn signals_at_random_points_leave_no_partial_file() {
    let node = Node::start();
    let metrics = tempfile::tempdir().unwrap();
    let prom = metrics.path().join("pve_backup.prom");
    // verify-backups --record --textfile-dir: manifest and metrics complete or absent/previous.
    signal_loop(
        "verify-backups --record --textfile-dir",
        12,
        0x5EED_0012,
        900,
        |_| {
            let mut c = node.verify_backups();
            c.args(["--record", "--deep", "--textfile-dir"])
                .arg(metrics.path());
            c
        },
        |i, code, _, e| {
            assert!(matches!(code, Some(0 | 1 | 130)), "run {i}: {code:?} {e}");
            assert!(temp_files(metrics.path()).is_empty(), "run {i}");
            assert!(
                temp_files(node.dir.path()).is_empty(),
                "run {i}: {:?}",
                temp_files(node.dir.path())
            );
            if let Ok(t) = std::fs::read_to_string(&prom) {
                assert!(
                    t.ends_with('\n') && t.contains("pve_backup"),
                    "run {i}: complete metrics"
                );
            }
            if let Ok(t) = std::fs::read_to_string(node.manifest()) {
                assert!(
                    t.starts_with("# verify-backups") && t.ends_with('\n'),
                    "run {i}"
                );
                verify_backups::manifest::Manifest::parse(&t).unwrap();
            }
        },
    );
    // restore-vm: a slow restore (the simulator sleeps 1 s in qmrestore and vzdump) interrupted anywhere.
    slow_restores(&node);
    signal_loop(
        "restore-vm",
        10,
        0x5EED_0013,
        2500,
        |_| {
            let mut c = node.restore_vm();
            c.args(["100", "--force", "--yes", "--no-verify"]);
            c
        },
        |i, code, _, e| {
            assert_interrupted_restore(&node, i, code, e);
        },
    );
    let g = node.state.guest(100).unwrap();
    eprintln!(
        "guest 100 after the restore-vm signal loop: lock {:?}, status {:?}",
        g.as_ref().and_then(|g| g.lock.clone()),
        g.as_ref().map(|g| g.status.clone())
    );
    // rebuild-monitoring --verify-only against nothing (checks retry until the deadline) and
    // rebuild-minio's health check of an endpoint that never answers.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("monitoring")).unwrap();
    std::fs::write(root.path().join("monitoring/main.tf"), "").unwrap();
    let port = testbed::ports::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    signal_loop(
        "rebuild-monitoring --verify-only",
        6,
        0x5EED_0014,
        1500,
        |_| {
            let mut c = crate::support::tool("rebuild-monitoring");
            c.arg("--root")
                .arg(root.path())
                .args(["--verify-only", "--deadline", "20s"]);
            super::bad_input::stack_urls(&mut c, &url);
            c
        },
        |i, code, _, e| {
            assert_eq!(code, Some(130), "run {i}: {e}");
        },
    );
    assert_eq!(
        crate::support::walk(root.path()).len(),
        1,
        "nothing written"
    );
    // rebuild-minio with S3 down: it moves the MinIO environment to a local state (files written through
    // the runner) and runs (a slow fake) Terraform; interrupted anywhere, every file is whole.
    let (root, tfvars) = super::security::secret_root();
    let envs = root.path().join("envs");
    let save_points = root.path().join("save-points");
    std::fs::create_dir_all(&save_points).unwrap();
    std::fs::write(
        save_points.join("monitoring-20261121T000000Z.tfstate"),
        r#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"6f1e0c2a-hostile","outputs":{},"resources":[]}"#,
    )
    .unwrap();
    signal_loop(
        "rebuild-minio (S3 down)",
        8,
        0x5EED_0015,
        1200,
        |_| {
            let mut c = crate::support::tool("rebuild-minio");
            c.arg("--root")
                .arg(&envs)
                .args(["--env", "monitoring", "--yes", "--health-timeout", "3s"])
                .arg("--tfvars")
                .arg(&tfvars)
                .arg("--terraform-bin")
                .arg(root.path().join("terraform"))
                .arg("--state-from")
                .arg(&save_points)
                .env("PVE_RETRY_ATTEMPTS", "1");
            c
        },
        |i, code, _, e| {
            assert!(matches!(code, Some(1 | 130)), "run {i}: {code:?} {e}");
            assert!(
                temp_files(root.path()).is_empty(),
                "run {i}: {:?}",
                temp_files(root.path())
            );
            let local = envs.join("monitoring/terraform.tfstate");
            if let Ok(bytes) = std::fs::read(&local) {
                pve_tf::state::State::parse(&bytes).expect("whole local state");
            }
        },
    );
}
