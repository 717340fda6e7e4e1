//! verify-backups, bad input: each case ends with a clear error naming the input, exit 64 (usage)
//! or 1 (failure) as documented, and changes nothing.

use std::os::unix::fs::PermissionsExt;

use crate::check_drift::bad_input::unsafe_is_not_root;
use crate::pvenode::{Node, run, temp_files};
use crate::support::bad_input::bad_vmids;
use crate::support::bad_input::names;
use crate::support::bad_input::tried;
use crate::support::{self, Tmpfs, text};

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
