//! Faults while restore-vm and verify-backups talk to the node: refused and cut connections, a cut in
//! the middle of the save point and of the restore, and SIGTERM/SIGINT at random points.

use std::process::Stdio;
use std::time::{Duration, Instant};

use testbed::sim::{CutFault, DelayFault, Faults};

use super::{Node, run, temp_files};
use pve_common::output::Document;
use restore_vm::report::BackupList;
use verify_backups::report::{Report as VerifyReport, Status};

use crate::support::{self, Rng, fault, kill, text};

fn first_words(journal: &[Vec<String>]) -> Vec<String> {
    journal
        .iter()
        .map(|a| match a[0].as_str() {
            "qm" | "pct" => format!("{} {}", a[0], a[1]),
            _ => a[0].clone(),
        })
        .collect()
}

/// The simulator cuts the session of the next `command` after `after_bytes` of its output.
fn cut_once(node: &Node, command: &str, after_bytes: u64) {
    node.state
        .set_faults(&Faults {
            cut: vec![CutFault {
                command: command.into(),
                after_bytes,
                times: 1,
            }],
            ..Default::default()
        })
        .unwrap();
    fault();
}

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

/// The simulator takes 0.6 s for every `vzdump` and `qmrestore`, so a signal can land inside them.
fn slow_restores(node: &Node) {
    let slow = |command: &str| DelayFault {
        command: command.into(),
        seconds: 0.6,
        times: None,
    };
    node.state
        .set_faults(&Faults {
            delay: vec![slow("qmrestore"), slow("vzdump")],
            ..Default::default()
        })
        .unwrap();
}

/// A run ends with 130 (interrupted) or with its normal code; nothing half written stays behind.
fn signal_loop(
    name: &str,
    runs: usize,
    seed: u64,
    max_delay_ms: u64,
    mut start: impl FnMut(usize) -> std::process::Command,
    mut after: impl FnMut(usize, Option<i32>, &str, &str),
) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let mut interrupted = 0;
    for i in 0..runs {
        // At least 30 ms: before `main` installs the handler (the first milliseconds after exec) the
        // default action applies, and nothing has been done yet (docs/RELIABILITY.md, limits).
        let delay = Duration::from_millis(30 + rng.next() % max_delay_ms);
        let signal = if i % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let mut cmd = start(i);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let t = Instant::now();
        std::thread::sleep(delay);
        kill(pid, signal);
        fault();
        let out = child.wait_with_output().unwrap();
        assert!(t.elapsed() < Duration::from_secs(60), "{name}: ended");
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        let code = out.status.code();
        assert!(
            code.is_some(),
            "{name} run {i}: died by the signal instead of exiting 130: {:?}\n{e}",
            out.status
        );
        if code == Some(130) {
            interrupted += 1;
            assert!(e.contains("interrupted by SIG"), "{name} run {i}: {e}");
        }
        after(i, code, &o, &e);
    }
    eprintln!("{name}: {runs} signals, {interrupted} runs interrupted (130), the rest had ended");
    (runs, interrupted)
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
            assert!(matches!(code, Some(0 | 1 | 130)), "run {i}: {code:?} {e}");
            if code == Some(130) && e.contains("save point: local:") {
                assert!(
                    e.contains("to put it back run on node pve: qmrestore"),
                    "run {i}: {e}"
                );
            }
            assert!(temp_files(node.dir.path()).is_empty(), "run {i}");
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

#[test]
fn disk_full_while_verify_backups_writes_manifest_and_metrics() {
    let Some(fs) = crate::support::Tmpfs::mount("size=64k,mode=0755") else {
        eprintln!("skipped: needs root (tmpfs)");
        return;
    };
    let node = Node::start();
    let prom = fs.path().join("pve_backup.prom");
    let manifest = fs.path().join("sha256.manifest");
    std::fs::write(&prom, b"pve_backup_old 1\n").unwrap();
    std::fs::write(
        &manifest,
        b"# verify-backups SHA-256 manifest: <sha256>  <volid>\n",
    )
    .unwrap();
    // Fill the rest of the file system.
    let filler = fs.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);
    fault();
    let mut c = node.verify_backups();
    c.args(["--record", "--deep", "--json", "--textfile-dir"])
        .arg(fs.path())
        .arg("--manifest")
        .arg(&manifest);
    let (code, out, err) = run(&mut c);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&prom.display().to_string()),
        "names the metrics file: {err}"
    );
    assert!(
        out.contains(&manifest.display().to_string()),
        "the manifest failure is in the report"
    );
    assert_eq!(
        std::fs::read(&prom).unwrap(),
        b"pve_backup_old 1\n",
        "old metrics intact"
    );
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .starts_with("# verify-backups")
    );
    assert!(temp_files(fs.path()).is_empty(), "no temp file left");
}

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
            assert!(matches!(code, Some(0 | 1 | 130)), "run {i}: {code:?} {e}");
            if code == Some(130) && e.contains("save point: local:") {
                assert!(
                    e.contains("to put it back run on node pve: qmrestore"),
                    "run {i}: {e}"
                );
            }
            assert!(temp_files(node.dir.path()).is_empty(), "run {i}");
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
