//! restore-vm, bad input: each case ends with a clear error naming the input, exit 64 (usage) or 1
//! (failure) as documented, and changes nothing.

use crate::pvenode::{Node, run};
use crate::support::bad_input::bad_vmids;
use crate::support::bad_input::names;
use crate::support::bad_input::tried;

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
