//! Components 1 to 5 against the simulated node: coverage, soundness, integrity (remote and local), bit-rot,
//! PBS, and the metrics file.

use testbed::sim;
use verify_backups::report::{Report, Status};

use crate::bed::*;

fn good_node() -> (Node, Vec<sim::Guest>) {
    let node = Node::start();
    let a = node.vm(100, "jellyfin");
    let b = node.ct(101, "pihole");
    let c = node.vm(102, "monitoring");
    node.backup(&a, 30, 1); // older one: not the newest
    node.backup(&a, 2, 2);
    node.backup(&b, 3, 3);
    node.backup(&c, 4, 4);
    (node, vec![a, b, c])
}

#[test]
fn all_good_remote_and_local_deep_one_ssh_session() {
    let (node, _) = good_node();
    let mut args = node.ssh_args();
    args.push("--deep".into());
    let (code, doc) = run_json(&args, &[]);
    assert_eq!(code, 0, "{doc:#?}");
    assert_eq!(doc.status, Status::Ok);
    assert_eq!(doc.mode, "remote");
    assert_eq!(doc.guests.len(), 3);
    // Newest per guest: three backups checked, each sound with every check.
    assert_eq!(doc.backups.len(), 3);
    for b in &doc.backups {
        assert_eq!(b.status, Status::Ok, "{b:#?}");
        let checks: Vec<&str> = b.checks.iter().map(|c| c.check.as_ref()).collect();
        assert!(
            checks.contains(&"size") && checks.contains(&"log") && checks.contains(&"compression")
        );
        assert!(
            checks.contains(&"vma") || checks.contains(&"tar"),
            "{checks:?}"
        );
    }
    assert_eq!(component(&doc, "integrity").status, Status::Ok);
    // The whole run used one SSH login.
    assert_eq!(node.sshd.logins(), 1, "one SSH session per run");

    let mut local = node.ssh_args();
    local.extend([
        "--deep".into(),
        "--local-dir".into(),
        node.dump().display().to_string(),
    ]);
    let (code, doc) = run_json(&local, &[]);
    assert_eq!(code, 0, "{doc:#?}");
    assert_eq!(doc.mode, "local");

    // --all-backups checks the older backup of 100 too.
    let mut all = node.ssh_args();
    all.push("--all-backups".into());
    let (code, doc) = run_json(&all, &[]);
    assert_eq!(code, 0, "{doc:#?}");
    assert_eq!(doc.backups.len(), 4);

    // The text report: with --details a table per component and the verdict line, then the script's
    // report.
    args.push("--details".into());
    let out = run(&args, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== Coverage and freshness [OK]"), "{text}");
    assert!(text.contains("== Integrity (--deep) [OK]"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("verdict: OK")), "{text}");
    assert!(text.contains("BACKUP VERIFICATION REPORT"), "{text}");
    assert!(text.contains("Total checked: 3"), "{text}");
}

#[test]
fn missing_stale_orphan_and_failed_log() {
    let node = Node::start();
    let a = node.vm(100, "jellyfin");
    let _none = node.vm(103, "nobackup");
    let stale = node.ct(104, "stale");
    node.backup(&a, 1, 1);
    node.backup(&stale, 50, 2);
    // A backup of a guest that no longer exists.
    let gone = sim::Guest::new(
        999,
        sim::GuestType::Qemu,
        "pve",
        &[
            ("name", "gone"),
            ("scsi0", "local-lvm:vm-999-disk-0,size=64M"),
        ],
    );
    node.backup(&gone, 5, 3);
    // A guest whose task log says the backup failed.
    let bad_log = node.vm(105, "badlog");
    let p = node.backup(&bad_log, 1, 4);
    let log = p.to_string_lossy().replace(".vma.zst", ".log");
    std::fs::write(
        &log,
        "INFO: Starting Backup of VM 105 (qemu)\nERROR: Backup of VM 105 failed - broken pipe\n",
    )
    .unwrap();

    let (code, doc) = run_json(&node.ssh_args(), &[]);
    assert_eq!(code, 2);
    assert_eq!(doc.status, Status::Fail);
    assert_eq!(guest(&doc, 100).status, Status::Ok);
    assert_eq!(guest(&doc, 103).status, Status::Fail);
    assert_eq!(guest(&doc, 103).backups, 0);
    // Older than 48 h is a warning in the replaced script, not an error.
    assert_eq!(guest(&doc, 104).status, Status::Warn);
    let cov = component(&doc, "coverage");
    let reason = |subject: &str| -> String {
        cov.checks
            .iter()
            .find(|c| c.subject.starts_with(subject))
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason("qemu 103").contains("no backup at all"));
    assert!(reason("lxc 104").contains("stale"));
    assert!(reason("vmid 999").contains("no longer exists"));
    assert_eq!(first_failure(backup_of(&doc, 105)).as_deref(), Some("log"));
    assert_eq!(guest(&doc, 105).status, Status::Fail);
    // --max-age wide enough makes the stale one fresh.
    let mut args = node.ssh_args();
    args.extend([
        "--max-age".into(),
        "3d".into(),
        "--vmid".into(),
        "104".into(),
    ]);
    let (code, doc) = run_json(&args, &[]);
    assert_eq!(code, 0, "{doc:#?}");
    assert_eq!(doc.guests.len(), 1);
}

/// Every corruption the issue names, checked remote (node tools) and local (native reader): the verdicts
/// agree, and each is caught by the check that should catch it.
#[test]
fn corruptions_caught_and_remote_local_verdicts_agree() {
    let node = Node::start();
    let good_vm = node.vm(100, "good");
    let good_ct = node.ct(101, "goodct");
    node.backup(&good_vm, 1, 1);
    node.backup(&good_ct, 1, 2);
    // Truncated archive.
    let g = node.vm(110, "truncated");
    let p = node.backup(&g, 1, 3);
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // One flipped byte in the compressed data.
    let g = node.vm(111, "flipped");
    let p = node.backup(&g, 1, 4);
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&p, &bytes).unwrap();
    // One flipped byte in a VMA extent header (recompressed, so zstd is sound).
    let g = node.vm(112, "extent");
    let p = node.backup(&g, 1, 5);
    rewrite_inner(&p, |plain| {
        let header_size = u32::from_be_bytes(plain[56..60].try_into().unwrap()) as usize;
        plain[header_size + 45] ^= 0x10;
    });
    // VMA header MD5 wrong.
    let g = node.vm(113, "headermd5");
    let p = node.backup(&g, 1, 6);
    rewrite_inner(&p, |plain| plain[33] ^= 0xff);
    // A tar without etc/vzdump/pct.conf.
    let g = node.ct(114, "notconf");
    let p = node.backup(&g, 1, 7);
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "./etc/hostname", &b"x\nyz\n"[..])
        .unwrap();
    let plain = tar.into_inner().unwrap();
    rewrite_inner(&p, |v| *v = plain);

    let (r, l) = deep_both_modes_failing(&node);

    let expect = [
        (100, None),
        (101, None),
        (110, Some("compression")),
        (111, Some("compression")),
        (112, Some("vma")),
        (113, Some("vma")),
        (114, Some("tar")),
    ];
    for (vmid, want) in expect {
        let (rb, lb) = (backup_of(&r, vmid), backup_of(&l, vmid));
        assert_eq!(first_failure(rb).as_deref(), want, "remote {vmid}: {rb:#?}");
        assert_eq!(first_failure(lb).as_deref(), want, "local {vmid}: {lb:#?}");
        assert_eq!(rb.status, lb.status, "{vmid}: remote {rb:#?} local {lb:#?}");
        assert_eq!(
            failures(rb),
            failures(lb),
            "{vmid}: remote {rb:#?} local {lb:#?}"
        );
    }
    // Sound compression where only the inner format is broken.
    for vmid in [112, 113, 114] {
        let c = backup_check(backup_of(&l, vmid), "compression");
        assert_eq!(c.status, Status::Ok, "{vmid}");
    }
    let reason = |doc: &Report, vmid: u32, check: &str| -> String {
        backup_check(backup_of(doc, vmid), check).reason.clone()
    };
    assert!(
        reason(&l, 113, "vma").contains("header MD5"),
        "{}",
        reason(&l, 113, "vma")
    );
    assert!(
        reason(&l, 112, "vma").contains("extent"),
        "{}",
        reason(&l, 112, "vma")
    );
    assert!(reason(&l, 114, "tar").contains("pct.conf"));
    assert!(reason(&r, 114, "tar").contains("pct.conf"));
}

/// `.lzo` archives made by the real `lzop`: checked natively in local mode (container, block checksums,
/// LZO1X) with the same verdicts as `lzop -t` on the node.
#[test]
fn lzo_archives_checked_natively_and_remote_local_verdicts_agree() {
    let node = Node::start();
    let vm = node.vm(100, "good");
    to_lzo(&node.backup(&vm, 1, 1));
    let ct = node.ct(101, "goodct");
    to_lzo(&node.backup(&ct, 1, 2));
    // One flipped byte in the compressed data.
    let g = node.vm(110, "flipped");
    let p = to_lzo(&node.backup(&g, 1, 3));
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&p, &bytes).unwrap();
    // Truncated.
    let g = node.ct(111, "truncated");
    let p = to_lzo(&node.backup(&g, 1, 4));
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len * 2 / 3)
        .unwrap();
    // A flipped byte in the lzop header (its checksum).
    let g = node.vm(112, "header");
    let p = to_lzo(&node.backup(&g, 1, 5));
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[16] ^= 0x02;
    std::fs::write(&p, &bytes).unwrap();

    let (r, l) = deep_both_modes_failing(&node);
    for (vmid, bad) in [
        (100, false),
        (101, false),
        (110, true),
        (111, true),
        (112, true),
    ] {
        let (rb, lb) = (backup_of(&r, vmid), backup_of(&l, vmid));
        assert!(lb.volid.ends_with(".lzo"), "{lb:#?}");
        let want = bad.then(|| "compression".to_owned());
        assert_eq!(first_failure(rb), want, "remote {vmid}: {rb:#?}");
        assert_eq!(first_failure(lb), want, "local {vmid}: {lb:#?}");
        assert_eq!(
            failures(rb),
            failures(lb),
            "{vmid}: remote {rb:#?} local {lb:#?}"
        );
        let compression = backup_check(lb, "compression");
        assert_eq!(
            compression.status,
            if bad { Status::Fail } else { Status::Ok },
            "{lb:#?}"
        );
    }
    let reason = |vmid: u32| -> String {
        backup_check(backup_of(&l, vmid), "compression")
            .reason
            .clone()
    };
    assert!(
        reason(110).contains("checksum") || reason(110).contains("LZO1X"),
        "{}",
        reason(110)
    );
    assert!(reason(111).contains("ends"), "{}", reason(111));
    assert!(reason(112).contains("header Adler-32"), "{}", reason(112));
}

/// The native lzop reader against every way the real `lzop` writes: levels (LZO1X-1, LZO1X-999), CRC-32
/// instead of Adler-32, compressible and incompressible blocks, an empty input.
#[test]
fn lzop_reader_reads_what_real_lzop_writes() {
    use std::io::Read;
    let mut plain = Vec::new();
    let mut x = 12345u64;
    for i in 0..700_000u32 {
        // Text-like runs and random stretches, so both compressed and stored blocks occur.
        if (i / 100_000) % 2 == 0 {
            plain.push(b"the quick brown fox "[(i % 20) as usize]);
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            plain.push(x as u8);
        }
    }
    for flags in [&[][..], &["-1"], &["-9"], &["--crc32"], &["-9", "--crc32"]] {
        let z = lzop(&plain, flags);
        let mut out = Vec::new();
        verify_backups::lzop::LzopReader::new(&z[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        assert!(out == plain, "{flags:?}: content differs");
        // Any single flipped byte past the header is caught (or, at worst, in a stored block, still caught
        // by the uncompressed-data checksum).
        for at in [z.len() / 5, z.len() / 2, z.len() - 10] {
            let mut bad = z.clone();
            bad[at] ^= 0x04;
            let mut sink = Vec::new();
            let r = verify_backups::lzop::LzopReader::new(&bad[..]).read_to_end(&mut sink);
            assert!(
                r.is_err(),
                "{flags:?}: flip at {at} of {} not caught",
                z.len()
            );
        }
    }
    let empty = lzop(b"", &[]);
    let mut out = Vec::new();
    verify_backups::lzop::LzopReader::new(&empty[..])
        .read_to_end(&mut out)
        .unwrap();
    assert!(out.is_empty());
}

#[test]
fn size_mismatch_in_the_mounted_copy() {
    let node = Node::start();
    let g = node.vm(100, "jellyfin");
    let p = node.backup(&g, 1, 1);
    let mount = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(node.dump()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), mount.path().join(e.file_name())).unwrap();
    }
    let copy = mount.path().join(p.file_name().unwrap());
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&copy, bytes).unwrap();
    let mut args = node.ssh_args();
    args.extend([
        "--local-dir".into(),
        format!("local={}", mount.path().display()),
    ]);
    let (code, doc) = run_json(&args, &[]);
    assert_eq!(code, 2);
    assert_eq!(first_failure(backup_of(&doc, 100)).as_deref(), Some("size"));
}

#[test]
fn manifest_mismatch_after_record_both_modes() {
    let node = Node::start();
    let g = node.vm(100, "jellyfin");
    let p = node.backup(&g, 1, 1);
    let mut record = node.ssh_args();
    record.push("--record".into());
    let (code, doc) = run_json(&record, &[]);
    assert_eq!(code, 0, "{doc:#?}");
    let manifest = std::fs::read_to_string(node.dir.path().join("manifest")).unwrap();
    let sha = backup_of(&doc, 100).sha256.clone().unwrap();
    assert!(
        manifest.contains(&format!("{sha}  local:backup/")),
        "{manifest}"
    );
    // Same hash again: ok, in both modes.
    let mut deep = node.ssh_args();
    deep.push("--deep".into());
    let (code, _) = run_json(&deep, &[]);
    assert_eq!(code, 0);
    // Replace the archive by another sound one of the same size class: only the manifest can tell.
    let other = tempfile::tempdir().unwrap();
    sim::fixtures::write_archive(
        &other.path().join("x.vma.zst"),
        &g,
        &sim::fixtures::ArchiveSpec {
            size: 96 * 1024,
            ctime: now(),
            seed: 77,
        },
    )
    .unwrap();
    std::fs::copy(other.path().join("x.vma.zst"), &p).unwrap();
    let (code, r) = run_json(&deep, &[]);
    assert_eq!(code, 2, "{r:#?}");
    assert_eq!(failures(backup_of(&r, 100)), vec!["sha256".to_owned()]);
    let mut local = deep.clone();
    local.extend(["--local-dir".into(), node.dump().display().to_string()]);
    let (code, l) = run_json(&local, &[]);
    assert_eq!(code, 2);
    assert_eq!(failures(backup_of(&l, 100)), vec!["sha256".to_owned()]);
    // --record keeps the old hash: the alarm stays.
    let (code, _) = run_json(&record, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        std::fs::read_to_string(node.dir.path().join("manifest")).unwrap(),
        manifest
    );
}

#[test]
fn pbs_verification_states() {
    let node = Node::start();
    node.state
        .add_storage(sim::StorageDef::new("pbs", "pbs", "backup", 1 << 40))
        .unwrap();
    for (vmid, state) in [(200u32, Some("ok")), (201, Some("failed")), (202, None)] {
        let g = node.vm(vmid, &format!("pbs{vmid}"));
        let _ = g;
        node.state
            .add_pbs_entry(
                "pbs",
                sim::BackupEntry {
                    volid: format!("pbs:backup/vm/{vmid}/2026-11-20T02:00:00Z"),
                    vmid,
                    subtype: "qemu".into(),
                    ctime: now() - HOUR,
                    size: 1000,
                    format: "pbs-vm".into(),
                    notes: None,
                    protected: false,
                    verification: state.map(|s| serde_json::json!({"state": s, "upid": "UPID:x"})),
                    path: None,
                    config: None,
                    extra: Default::default(),
                },
            )
            .unwrap();
    }
    // The backup storage checked is `local` unless told otherwise (the replaced script's default).
    let mut args = node.ssh_args();
    args.extend(["--storage".into(), "pbs".into()]);
    let (code, doc) = run_json(&args, &[]);
    assert_eq!(code, 2, "{doc:#?}");
    let pbs = component(&doc, "pbs");
    assert_eq!(pbs.status, Status::Fail);
    let status = |vmid: u32| backup_of(&doc, vmid).status;
    assert_eq!(status(200), Status::Ok);
    assert_eq!(status(201), Status::Fail);
    assert_eq!(status(202), Status::Warn);
}

#[test]
fn metrics_file_passes_promtool() {
    let (node, _) = good_node();
    let _none = node.vm(120, "with \"quotes\"");
    let dir = tempfile::tempdir().unwrap();
    let mut args = node.ssh_args();
    args.extend(["--textfile-dir".into(), dir.path().display().to_string()]);
    let out = run(&args, &[]);
    assert_eq!(out.status.code(), Some(2));
    let path = dir.path().join("pve_backup.prom");
    let text = std::fs::read_to_string(&path).unwrap();
    for name in [
        "pve_backup_last_timestamp{vmid=\"100\",type=\"qemu\",name=\"jellyfin\"}",
        "pve_backup_age_seconds{vmid=\"101\",type=\"lxc\",name=\"pihole\"}",
        "pve_backup_verify_status{vmid=\"100\",type=\"qemu\",name=\"jellyfin\"} 0",
        "pve_backup_verify_status{vmid=\"120\",type=\"qemu\",name=\"with \\\"quotes\\\"\"} 2",
        "pve_backup_last_verify_timestamp ",
        "pve_backup_verify_success 0",
    ] {
        assert!(text.contains(name), "{name} missing in\n{text}");
    }
    let check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // No temp file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// On a terminal, `--deep` draws a progress bar (bytes checked / total) on stderr; never in `--json` mode.
#[test]
fn deep_progress_bar_on_a_tty_only() {
    let (node, _) = good_node();
    let bin = assert_cmd::cargo::cargo_bin!("verify-backups");
    let mut args = node.ssh_args();
    args.extend([
        "--deep".into(),
        "--local-dir".into(),
        node.dump().display().to_string(),
    ]);
    let quoted: Vec<String> = std::iter::once(bin.display().to_string())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect();
    let cmd = quoted.join(" ");
    let run_tty = |extra: &str| {
        let out = std::process::Command::new("script")
            .args([
                "-qec",
                &format!("{cmd} {extra} 2>&1 >/dev/null"),
                "/dev/null",
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run_tty("");
    assert!(text.contains("checking archives"), "{text}");
    let text = run_tty("--json");
    assert!(!text.contains("checking archives"), "{text}");
}
