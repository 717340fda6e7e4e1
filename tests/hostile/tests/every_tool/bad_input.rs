//! Several tools at once, bad input: each case ends with a clear error naming the input, exit 64
//! (usage) or 1 (failure) as documented, and changes nothing.

use std::path::Path;
use std::time::Duration;

use verify_backups::report::{Report, Status};

use crate::pvenode::{Node, run};
use crate::support::bad_input::drift_root;
use crate::support::bad_input::names;
use crate::support::bad_input::tried;
use crate::support::{self, output_within, text, walk};

pub fn bad_env_names() -> Vec<String> {
    vec![
        "../etc".into(),
        "a/b".into(),
        String::new(),
        "x".repeat(300),
        "prød".into(),
        "..".into(),
        "$(id)".into(),
        "a\nb".into(),
        "prod;reboot".into(),
        "/etc".into(),
    ]
}

pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn env_names_are_refused_with_64_by_every_tool_and_by_pve_common() {
    let root = drift_root();
    let before = snapshot(root.path());
    for name in bad_env_names() {
        assert!(
            pve_common::environments::validate_name(&name).is_err(),
            "pve_common accepted {name:?}"
        );
        // The fake terraform would log any call; /bin/false proves none is needed.
        let out = output_within(
            support::tool("check-drift")
                .arg("--root")
                .arg(root.path().join("envs"))
                .arg(format!("--env={name}"))
                .arg("--lock-file")
                .arg(root.path().join("run.lock"))
                .args(["--terraform-bin", "/bin/false"]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(64),
            "check-drift --env {name:?}: {err}"
        );
        assert!(err.contains("check-drift: error:"), "{err}");
        if !name.is_empty() {
            let shown = name.lines().next().unwrap_or_default();
            assert!(err.contains(shown), "error does not name {name:?}: {err}");
        }
        let out = output_within(
            support::tool("restore-tfstate")
                .arg("--root")
                .arg(root.path().join("envs"))
                .arg(format!("--env={name}"))
                .args(["--list", "--endpoint", "http://127.0.0.1:9"]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(64),
            "restore-tfstate --env {name:?}: {err}"
        );
        assert!(err.contains("invalid environment name"), "{err}");
    }
    assert_eq!(
        snapshot(root.path()),
        before,
        "nothing changed under the root"
    );
}

#[test]
fn missing_or_unusable_root_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    for root in [dir.path().join("missing"), file.clone(), dangling.clone()] {
        let out = output_within(
            support::tool("check-drift")
                .arg("--root")
                .arg(&root)
                .arg("--lock-file")
                .arg(dir.path().join("run.lock"))
                .args(["--terraform-bin", "/bin/false"]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert!(matches!(out.status.code(), Some(64 | 1)), "{root:?}: {err}");
        assert!(err.contains(&root.display().to_string()), "{err}");
        let out = output_within(
            support::tool("restore-tfstate")
                .arg("--root")
                .arg(&root)
                .args([
                    "--env",
                    "prod",
                    "--list",
                    "--endpoint",
                    "http://127.0.0.1:9",
                ]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert!(matches!(out.status.code(), Some(64 | 1)), "{root:?}: {err}");
        assert!(err.contains(&root.display().to_string()), "{err}");
    }
}

/// rebuild-monitoring's four service URLs, all `url`: no check reads tfvars for them.
pub fn stack_urls(c: &mut std::process::Command, url: &str) {
    for flag in [
        "--prometheus-url",
        "--alertmanager-url",
        "--grafana-url",
        "--node-exporter-url",
    ] {
        c.args([flag, url]);
    }
}

#[test]
fn env_names_are_refused_by_rebuild_minio_and_rebuild_monitoring() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("monitoring")).unwrap();
    std::fs::write(root.path().join("monitoring/main.tf"), "").unwrap();
    let mut n = 0;
    for tool in ["rebuild-minio", "rebuild-monitoring"] {
        for name in bad_env_names() {
            n += 1;
            let mut c = support::tool(tool);
            c.arg("--root")
                .arg(root.path())
                .arg(format!("--env={name}"))
                .args(["--terraform-bin", "/bin/false"]);
            if tool == "rebuild-monitoring" {
                c.arg("--verify-only").args(["--deadline", "1s"]);
                stack_urls(&mut c, "http://127.0.0.1:1");
            }
            let (code, out, err) = run(&mut c);
            assert_eq!(code, Some(64), "{tool} --env {name:?}: {err}");
            assert!(out.is_empty(), "{out}");
            assert!(
                err.contains("--env") || names(&err, &name) || err.contains("environment"),
                "{err}"
            );
        }
    }
    assert_eq!(support::walk(root.path()).len(), 1, "nothing written");
    eprintln!("rebuild-* env names: {} inputs", tried(n));
}

#[test]
fn missing_and_unusable_directories_are_clear_errors() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let missing = dir.path().join("missing");
    let mut n = 0;
    for bad in [&missing, &file] {
        for flag in ["--local-dir", "--root", "--textfile-dir"] {
            n += 1;
            let mut c = node.verify_backups();
            c.arg(flag).arg(bad);
            let (code, out, err) = run(&mut c);
            assert_eq!(
                code,
                Some(64),
                "verify-backups {flag} {}: {err}",
                bad.display()
            );
            assert!(out.is_empty());
            assert!(err.contains(&bad.display().to_string()), "{err}");
        }
        for tool in ["rebuild-minio", "rebuild-monitoring"] {
            n += 1;
            let mut c = support::tool(tool);
            c.arg("--root")
                .arg(bad)
                .args(["--terraform-bin", "/bin/false"]);
            if tool == "rebuild-monitoring" {
                // --verify-only reads no folder; --from-terraform needs the environment.
                c.args(["--from-terraform", "--deadline", "1s"]);
                stack_urls(&mut c, "http://127.0.0.1:1");
            }
            let (code, _, err) = run(&mut c);
            assert_eq!(code, Some(64), "{tool} --root {}: {err}", bad.display());
            assert!(err.contains(&bad.display().to_string()), "{err}");
        }
        n += 1;
        let (code, _, err) = run(node
            .restore_vm()
            .args(["100", "--list", "--tfvars"])
            .arg(bad));
        assert!(
            matches!(code, Some(64 | 1)),
            "restore-vm --tfvars {}: {err}",
            bad.display()
        );
        assert!(err.contains(&bad.display().to_string()), "{err}");
    }
    // The manifest in a folder that cannot be created: reported, exit 2 (an error), nothing else lost.
    n += 1;
    let mut c = node.verify_backups();
    c.args(["--record", "--deep", "--manifest"])
        .arg(file.join("manifest"));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, Some(2), "{err}\n{out}");
    assert!(
        out.contains(&file.display().to_string()) || err.contains(&file.display().to_string()),
        "{out}\n{err}"
    );
    assert!(node.journal().is_empty());
    eprintln!("directories: {} inputs", tried(n));
}

/// Answers of `pvesh get` that are not what Proxmox sends.
pub fn bad_pvesh_answers() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("not JSON", b"Use of uninitialized value in concatenation\n".to_vec()),
        ("empty", Vec::new()),
        ("truncated", br#"[{"volid":"local:backup/vzdump-qemu-100-2026_11_20-02_00_00.vma.zst","#.to_vec()),
        ("object, not a list", br#"{"data":[]}"#.to_vec()),
        ("wrong types", br#"[{"volid":5,"vmid":"abc","ctime":"yesterday","size":-1}]"#.to_vec()),
        ("null", b"null".to_vec()),
        ("binary", vec![0xff, 0xfe, 0, 1, 2, 0x80]),
        ("huge number", br#"[{"volid":"local:backup/vzdump-qemu-100-2026_11_20-02_00_00.vma.zst","vmid":100,"ctime":1e400,"size":99999999999999999999999}]"#.to_vec()),
        ("hostile volid", br#"[{"volid":"local:backup/x;touch /tmp/pwned-by-pvesh","vmid":100,"subtype":"qemu","ctime":1795140000,"size":1}]"#.to_vec()),
        ("nested garbage", br#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#.to_vec()),
    ]
}

#[test]
fn pvesh_output_that_is_not_what_proxmox_sends() {
    let node = Node::start();
    let before = node.guests();
    let mut n = 0;
    for (what, answer) in bad_pvesh_answers() {
        for matching in ["/storage/local/content", "/nodes/pve/storage --content"] {
            node.fake_pvesh(matching, &answer);
            // restore-vm --list and a real restore attempt, over every storage (by default only the
            // backup storage `local` is read, and `/nodes/pve/storage` is never asked).
            for args in [
                vec!["100", "--list", "--json", "--all-storages"],
                vec!["100", "--force", "--yes", "--no-verify", "--all-storages"],
            ] {
                n += 1;
                let (code, out, err) = run(node.restore_vm().args(&args));
                if what == "hostile volid" && matching.contains("/content") {
                    // Skipped with a warning (not a valid volid); the listing goes on without it.
                    assert!(err.contains("skipping a backup"), "{what}: {err}");
                    assert!(matches!(code, Some(0 | 1)), "{what}: {err}");
                } else {
                    assert_eq!(code, Some(1), "{what} at {matching} {args:?}: {err}\n{out}");
                    assert!(err.contains("pvesh get"), "names the query ({what}): {err}");
                }
                assert!(!err.contains("panicked"), "{err}");
            }
            n += 1;
            let (code, out, err) = run(node.verify_backups().arg("--json"));
            assert!(
                matches!(code, Some(2)),
                "verify-backups, {what} at {matching}: {err}\n{out}"
            );
            assert!(!err.contains("panicked"), "{err}");
            if !out.is_empty() {
                let doc: Report = support::decoded(&out, &err);
                assert_eq!(doc.status, Status::Fail, "{what}: {doc:#?}");
            }
        }
    }
    node.real_pvesh();
    assert!(!std::path::Path::new("/tmp/pwned-by-pvesh").exists());
    assert!(node.journal().is_empty(), "{:?}", node.journal());
    assert_eq!(node.guests(), before);
    eprintln!("bad pvesh answers: {} runs", tried(n));
}
