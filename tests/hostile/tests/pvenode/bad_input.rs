//! Bad input to restore-vm and verify-backups (and the folder/env flags of rebuild-minio and
//! rebuild-monitoring): a clear error naming the input, exit 64 or 1 as documented, nothing changed (the
//! simulator's journal empty, guests as they were).

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use verify_backups::report::{Report, Status};

use super::{Node, run, temp_files};
use crate::bad_input::{bad_env_names, unsafe_is_not_root};
use crate::support::{self, Tmpfs, text};

/// Inputs tried by this module (printed with `--nocapture`, quoted in docs/RELIABILITY.md).
static TRIED: AtomicUsize = AtomicUsize::new(0);

fn tried(n: usize) -> usize {
    TRIED.fetch_add(n, Ordering::SeqCst) + n
}

pub fn bad_vmids() -> Vec<String> {
    vec![
        "abc".into(),
        "-1".into(),
        "0".into(),
        "99".into(),
        "1e3".into(),
        "100;reboot".into(),
        "$(id)".into(),
        "1000000000".into(),
        "99999999999999999999999999999999".into(),
        " 100".into(),
        "100\n".into(),
        "+100".into(),
        "0x64".into(),
        String::new(),
    ]
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

/// `what` must be named in the message (newlines are shown escaped or raw; either names it).
fn names(err: &str, what: &str) -> bool {
    let first = what.lines().next().unwrap_or(what).trim();
    first.is_empty() || err.contains(first)
}

#[test]
fn restore_vm_refuses_bad_vmids_before_connecting() {
    let node = Node::start();
    let before = node.guests();
    let conns = node.sshd.connections();
    for vmid in bad_vmids() {
        for args in [
            vec!["--list".into(), "--".into(), vmid.clone()],
            vec![format!("--target-id={vmid}"), "100".into()],
        ] {
            let (code, out, err) = run(node.restore_vm().args(&args));
            assert_eq!(code, Some(64), "restore-vm {args:?}: {err}");
            assert!(out.is_empty(), "{out}");
            assert!(
                names(&err, &vmid),
                "restore-vm {args:?} names the input: {err}"
            );
            assert!(err.contains("error:"), "{err}");
        }
    }
    assert_eq!(node.sshd.connections(), conns, "no connection was made");
    assert!(node.journal().is_empty());
    assert_eq!(node.guests(), before);
    eprintln!("restore-vm vmids: {} inputs", tried(bad_vmids().len() * 2));
}

#[test]
fn verify_backups_refuses_bad_vmids() {
    let node = Node::start();
    // clap reads `+100` as 100, a valid id.
    for vmid in bad_vmids().into_iter().filter(|v| v != "+100") {
        let (code, out, err) = run(node.verify_backups().arg(format!("--vmid={vmid}")));
        assert_eq!(
            code,
            Some(64),
            "verify-backups --vmid {vmid:?}: {err}\n{out}"
        );
        assert!(out.is_empty(), "{out}");
        assert!(names(&err, &vmid), "--vmid {vmid:?} named: {err}");
    }
    assert!(node.journal().is_empty());
    assert!(!node.manifest().exists());
    eprintln!("verify-backups vmids: {} inputs", tried(bad_vmids().len()));
}

#[test]
fn restore_vm_refuses_bad_volids() {
    let node = Node::start();
    let before = node.guests();
    let malformed = [
        "local:backup/vzdump qemu 100.vma.zst",
        "local:backup/vzdump-'qemu'-100.vma.zst",
        "local:backup/\"x\".vma.zst",
        "local:backup/x;reboot",
        "local:backup/x\nqm destroy 100",
        "local:backup/$(id).vma",
        "local:backup/`id`.vma",
        "local:../../etc/shadow",
        "local:/etc/shadow",
        "local:",
        ":backup/x.vma",
        "no-storage",
        "loc al:backup/x.vma",
        "local:backup/x.vma\0",
    ];
    let mut n = 0;
    for volid in malformed {
        if volid.contains('\0') {
            continue; // an argv cannot hold NUL
        }
        n += 1;
        let (code, out, err) = run(node.restore_vm().args(["100", "--backup", volid, "--yes"]));
        assert_eq!(code, Some(64), "--backup {volid:?}: {err}");
        assert!(out.is_empty());
        assert!(names(&err, volid), "{volid:?} named: {err}");
    }
    // Well-formed but not in the listing: exit 1 after listing, naming it; nothing restored.
    for volid in [
        "local:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst",
        "local:backup/vzdump-qemu-101-2026_11_20-02_00_00.vma.zst",
        "nosuch:backup/vzdump-qemu-100-2026_11_20-02_00_00.vma.zst",
        "local-lvm:vm-100-disk-0",
    ] {
        n += 1;
        let (code, _, err) = run(node
            .restore_vm()
            .args(["100", "--backup", volid, "--force", "--yes"]));
        assert_eq!(code, Some(1), "--backup {volid}: {err}");
        assert!(err.contains(volid) && err.contains("--list"), "{err}");
    }
    assert!(node.journal().is_empty(), "{:?}", node.journal());
    assert_eq!(node.guests(), before);
    eprintln!("restore-vm volids: {} inputs", tried(n));
}

#[test]
fn restore_vm_refuses_bad_storage_node_and_time_values() {
    let node = Node::start();
    let cases: &[&[&str]] = &[
        &["100", "--storage", "local lvm"],
        &["100", "--storage", "local;reboot"],
        &["100", "--storage=-rf"],
        &["100", "--save-storage", "$(id)"],
        &["100", "--save-storage", ""],
        &["100", "--node", "pve;reboot"],
        &["100", "--node", "../pve"],
        &["100", "--node=-pve"],
        &["100", "--at", "yesterday"],
        &["100", "--at", "2026-13-01"],
        &["100", "--at", "2026-11-20T25:00"],
        &["100", "--list", "--backup", "local:backup/x.vma"],
        &["100", "--port", "99999"],
        &["100", "--verify-port=-1"],
        &["100", "--verify-timeout", "1e3"],
    ];
    for args in cases {
        let mut c = if args.contains(&"--node") || args.contains(&"--node=-pve") {
            node.restore_vm_without_node()
        } else {
            node.restore_vm()
        };
        let (code, out, err) = run(c.args(*args));
        assert_eq!(code, Some(64), "{args:?}: {err}");
        assert!(out.is_empty());
        let value = args.last().unwrap().rsplit('=').next().unwrap();
        assert!(
            names(&err, value) || err.contains("--list"),
            "{args:?} named: {err}"
        );
    }
    // --host values that are not hosts: refused before any connection (64), or a clear ssh failure (1).
    for host in ["-oProxyCommand=touch pwned", "a b", "$(id)"] {
        let mut c = node.restore_vm();
        c.args(["100", "--list", &format!("--host={host}")]);
        let (code, _, err) = run(&mut c);
        assert!(matches!(code, Some(64 | 1)), "--host {host:?}: {err}");
        assert!(names(&err, host) || err.contains("host"), "{err}");
    }
    assert!(!node.dir.path().join("pwned").exists());
    assert!(node.journal().is_empty());
    eprintln!("restore-vm other flags: {} inputs", tried(cases.len() + 3));
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

#[test]
fn unreadable_local_dir_for_an_unprivileged_user() {
    // Root reads any folder: the tool runs as `nobody` (setpriv) with a readable copy of the client key.
    if unsafe_is_not_root()
        || std::process::Command::new("setpriv")
            .arg("--help")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let local = dir.path().join("dump");
    std::fs::create_dir(&local).unwrap();
    let dump = node
        .state
        .dump_dir(&node.state.storage("local").unwrap().unwrap());
    for f in support::walk(&dump) {
        std::fs::copy(&f, local.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = dir.path().join("key");
    std::fs::copy(node.sshd.client_key(), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = crate::support::output_within(
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(support::bin("verify-backups"))
            .arg("--local-dir")
            .arg(&local)
            .args(["--deep", "--json", "--host", node.sshd.host()])
            .args(["--ssh-port", &node.sshd.port().to_string()])
            .args(["--ssh-user", node.sshd.user()])
            .arg("--identity")
            .arg(&key)
            .arg("--known-hosts")
            .arg(node.sshd.known_hosts())
            .arg("--manifest")
            .arg(dir.path().join("manifest"))
            .env("NO_COLOR", "1")
            .env("HOME", dir.path()),
        std::time::Duration::from_secs(60),
    );
    let (o, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{err}\n{o}");
    assert!(
        o.contains(&local.display().to_string()) && o.to_lowercase().contains("permission denied"),
        "the folder and the reason are named: {o}"
    );
    tried(1);
}

#[test]
fn textfile_dir_read_only_keeps_the_old_metrics() {
    let Some(fs) = Tmpfs::mount("size=256k,mode=0755") else {
        eprintln!("skipped: needs root (tmpfs)");
        return;
    };
    let node = Node::start();
    let prom = fs.path().join("pve_backup.prom");
    std::fs::write(&prom, b"pve_backup_old 1\n").unwrap();
    fs.remount("ro");
    let mut c = node.verify_backups();
    c.arg("--textfile-dir").arg(fs.path());
    let (code, out, err) = run(&mut c);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&prom.display().to_string()),
        "names the file: {err}"
    );
    assert!(!out.is_empty(), "the report itself was still printed");
    assert_eq!(std::fs::read(&prom).unwrap(), b"pve_backup_old 1\n");
    assert!(temp_files(fs.path()).is_empty());
    fs.remount("rw");
    tried(1);
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
