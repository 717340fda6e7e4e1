//! restore-vm, issue 23's defects it showed, each test naming its defect; each was seen failing on
//! the code before its fix.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::pvenode::{Node, run};
use crate::support::scripted::assert_no_spoof;
use crate::support::{output_within, text};

pub const VOLID: &str = "local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst";

pub fn content(ctime: &str, vmid: u32, volid: &str, notes: &str) -> Vec<u8> {
    format!(
        r#"[{{"volid":"{volid}","content":"backup","format":"vma.zst","subtype":"qemu","vmid":{vmid},"ctime":{ctime},"size":65536,"notes":{}}}]"#,
        serde_json::to_string(notes).unwrap()
    )
    .into_bytes()
}

/// Defect 4: a tfvars file with a syntax error on the password's line.
#[test]
fn tfvars_syntax_error_does_not_print_the_secret() {
    let node = Node::start();
    let tfvars = node.dir.path().join("bad.tfvars");
    std::fs::write(
        &tfvars,
        "node_name = \"pve\"\nproxmox_password = \"hunter2-tfvars-SECRET\"x\n",
    )
    .unwrap();
    std::fs::set_permissions(&tfvars, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err) = run(node
        .restore_vm()
        .args(["100", "--list"])
        .arg("--tfvars")
        .arg(&tfvars));
    assert_eq!(code, Some(64), "{err}");
    assert!(
        !format!("{out}{err}").contains("hunter2"),
        "the secret was printed: {err}"
    );
    assert!(
        err.contains("bad.tfvars") && err.contains("line 2"),
        "{err}"
    );
}

/// Defect 9: a backup "from year 9999" is neither the newest nor fresh, and i64::MIN neither panics nor
/// passes as fresh.
#[test]
fn backup_times_from_the_future_are_not_trusted() {
    let node = Node::start();
    for ctime in ["253402300799", "-9223372036854775808"] {
        node.fake_pvesh("/storage/local/content", &content(ctime, 100, VOLID, ""));
        let (code, out, err) = run(node.restore_vm().args(["100", "--list", "--json"]));
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("skipping a backup"), "ctime {ctime}: {err}");
        assert!(!out.contains(VOLID), "ctime {ctime} was listed: {out}");
        assert!(matches!(code, Some(0 | 1)), "{err}");
        // rebuild-monitoring's freshness rule is restore-vm's: skipped, not restored as "0 s old".
        let (code, _, err) = run(&mut node.rebuild_from_backup());
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("skipping a backup"), "ctime {ctime}: {err}");
        assert_ne!(code, Some(0), "ctime {ctime} passed as fresh: {err}");
        assert!(
            node.journal().is_empty(),
            "ctime {ctime} was restored: {:?}",
            node.journal()
        );
    }
    assert!(pve_common_fresh_rule_refuses_the_future());
    assert!(node.journal().is_empty(), "{:?}", node.journal());
}

pub fn pve_common_fresh_rule_refuses_the_future() -> bool {
    let year_9999 = 253_402_300_799;
    !pve_restore::is_recent(year_9999, Duration::from_secs(3600))
        && !pve_restore::is_recent(i64::MIN, Duration::from_secs(3600))
}

/// Defect 10: durations past the cap are usage errors (64), before anything runs.
#[test]
fn huge_durations_are_usage_errors() {
    let node = Node::start();
    for flag in ["--verify-timeout", "--shutdown-timeout"] {
        for value in ["18446744073709551615", "3155760001"] {
            let (code, _, err) = run(node
                .restore_vm()
                .args(["100", "--yes", "--force", flag, value]));
            assert_eq!(code, Some(64), "{flag} {value}: {err}");
            assert!(err.contains("longest accepted"), "{err}");
        }
    }
    assert!(node.journal().is_empty(), "{:?}", node.journal());
}

/// Defect 19: `--at` at the end of the calendar is a usage error, not an internal overflow.
#[test]
fn at_the_end_of_the_calendar_is_a_usage_error() {
    let node = Node::start();
    for at in ["9999-12-31", "9999-12-31T23:59", "0000-01-01"] {
        let (code, _, err) = run(node.restore_vm().args(["100", "--dry-run", "--at", at]));
        assert_eq!(code, Some(64), "--at {at}: {err}");
        assert!(err.contains("--at"), "{err}");
    }
}

/// Defect 12: a node streaming endless `pvesh` output: a clear error, bounded memory (the run is held
/// under a 1 GiB address-space limit; it took 3.4 GB before).
#[test]
fn endless_remote_output_is_cut() {
    let node = Node::start();
    let script = "#!/bin/bash\nexec yes '{\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"},'\n";
    let path = node.bin.join("pvesh");
    let tmp = node.bin.join(".pvesh.tmp");
    std::fs::write(&tmp, script).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let cmd = node.restore_vm();
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(ToOwned::to_owned).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
        .collect();
    let mut limited = std::process::Command::new("prlimit");
    limited
        .arg("--as=1073741824")
        .arg("--")
        .arg(cmd.get_program())
        .args(&args)
        .args(["100", "--list"])
        .current_dir(node.dir.path())
        .stdin(std::process::Stdio::null());
    for (k, v) in envs {
        match v {
            Some(v) => limited.env(k, v),
            None => limited.env_remove(k),
        };
    }
    let started = std::time::Instant::now();
    let out = output_within(&mut limited, Duration::from_secs(120));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("wrote more than"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "{err}"
    );
    eprintln!("endless pvesh output cut after {:?}", started.elapsed());
    node.real_pvesh();
}

/// Defect 16: notes from the node are printed escaped (text table and log lines).
#[test]
fn node_strings_are_escaped() {
    let node = Node::start();
    let notes = "weekly\x1b]0;owned\x07\x1b[2J\u{202e}";
    node.fake_pvesh(
        "/storage/local/content",
        &content("1795140000", 100, VOLID, notes),
    );
    let (code, out, err) = run(node.restore_vm().args(["100", "--list"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("weekly\\e]0;owned"), "{out}");
    assert_no_spoof("restore-vm", &out);
    assert_no_spoof("restore-vm", &err);
}

/// Defect 18: a key marked `@revoked` is reported as revoked, with no advice to accept a new key.
#[test]
fn revoked_host_key_is_not_called_changed() {
    let node = Node::start();
    let recorded = std::fs::read_to_string(node.sshd.known_hosts()).unwrap();
    let pubkey = std::fs::read_to_string(node.sshd.host_key_pub_path()).unwrap();
    let mut fields = pubkey.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    let known = node.dir.path().join("known_hosts_revoked");
    let text = format!("@revoked * {kind} {key}\n{recorded}");
    std::fs::write(&known, &text).unwrap();
    for transport in ["libssh2", "openssh"] {
        let (code, _, err) = run(node
            .restore_vm()
            .args(["100", "--list", "--known-hosts"])
            .arg(&known)
            .env("PVE_SSH_TRANSPORT", transport));
        assert_eq!(code, Some(1), "{transport}: {err}");
        assert!(err.contains("REVOKED"), "{transport}: {err}");
        assert!(!err.contains("HAS CHANGED"), "{transport}: {err}");
        assert!(
            !err.contains("ssh-keygen -R") && !err.contains("accept the"),
            "{transport}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        text,
        "known_hosts was changed"
    );
}
