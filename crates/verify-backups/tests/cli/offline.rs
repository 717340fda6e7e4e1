//! `--local-dir DIR` with no node: an offsite or USB copy checked on its own, contacting nothing: every
//! vzdump archive in DIR (format, size, compression, VMA or tar inside), and its SHA-256 against the
//! manifest when one records it.

use std::path::Path;

use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};
use testbed::sim::{Guest, GuestType, State};
use verify_backups::report::{BackupResult, Report, Status};

use super::bed::{run, run_json};

fn backup_of<'a>(doc: &'a Report, prefix: &str) -> &'a BackupResult {
    testbed::tool::entry(
        &doc.backups,
        |b| b.volid.contains(prefix),
        format_args!("backup {prefix}"),
        doc,
    )
}

fn checks(b: &BackupResult) -> Vec<(String, Status)> {
    b.checks
        .iter()
        .map(|c| (c.check.to_string(), c.status))
        .collect()
}

fn args(dir: &Path, manifest: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--local-dir".to_owned(),
        dir.display().to_string(),
        "--manifest".to_owned(),
        manifest.display().to_string(),
    ];
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a
}

#[test]
fn every_archive_of_a_folder_is_checked_on_its_own_with_no_node() {
    let tmp = tempfile::tempdir().unwrap();
    // Archives as vzdump writes them (the simulator's files), copied to a folder no node knows.
    let state = State::create_standard(&tmp.path().join("state"), "pve").unwrap();
    let vm = Guest::new(
        100,
        GuestType::Qemu,
        "pve",
        &[
            ("name", "web"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=64M"),
        ],
    );
    let ct = Guest::new(
        101,
        GuestType::Lxc,
        "pve",
        &[
            ("hostname", "dns"),
            ("rootfs", "local-lvm:subvol-101-disk-0,size=1G"),
        ],
    );
    for (i, g) in [&vm, &ct].into_iter().enumerate() {
        state.add_guest(g).unwrap();
        state
            .add_backup(
                "local",
                g,
                &ArchiveSpec {
                    size: 96 * 1024,
                    ctime: 1_795_140_000 + i as i64,
                    seed: 3 + i as u64,
                },
                &BackupOptions::default(),
            )
            .unwrap();
    }
    let dump = state.dump_dir(&state.storage("local").unwrap().unwrap());
    let usb = tmp.path().join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    for e in std::fs::read_dir(&dump).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), usb.join(e.file_name())).unwrap();
    }
    let manifest = tmp.path().join("sha256.manifest");

    let (code, doc) = run_json(&args(&usb, &manifest, &[]), &[]);
    assert_eq!(code, 0, "{doc:#?}");
    assert_eq!(doc.mode, "local");
    assert_eq!(doc.backups.len(), 2, "{doc:#?}");
    let vma = checks(backup_of(&doc, "vzdump-qemu-100-"));
    for want in ["size", "compression", "vma"] {
        assert!(
            vma.contains(&(want.to_owned(), Status::Ok)),
            "{want}: {vma:?}"
        );
    }
    let tar = checks(backup_of(&doc, "vzdump-lxc-101-"));
    assert!(tar.contains(&("tar".to_owned(), Status::Ok)), "{tar:?}");
    assert!(!manifest.exists(), "nothing recorded without --record");

    // --record writes the hashes; the next run compares them.
    let (code, doc) = run_json(&args(&usb, &manifest, &["--record"]), &[]);
    assert_eq!(code, 0, "{doc:#?}");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "{text}"
    );

    // A byte flipped in the VM's archive: corrupt, named, exit 2.
    let vm_file = std::fs::read_dir(&usb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains("vzdump-qemu-100-")
                && !p.to_string_lossy().ends_with(".log")
        })
        .unwrap();
    let mut bytes = std::fs::read(&vm_file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&vm_file, bytes).unwrap();
    let (code, doc) = run_json(&args(&usb, &manifest, &[]), &[]);
    assert_eq!(code, 2, "{doc:#?}");
    let vma = checks(backup_of(&doc, "vzdump-qemu-100-"));
    assert!(
        vma.contains(&("sha256".to_owned(), Status::Fail)),
        "{vma:?}"
    );
    let tar = checks(backup_of(&doc, "vzdump-lxc-101-"));
    assert!(tar.contains(&("sha256".to_owned(), Status::Ok)), "{tar:?}");

    // A folder with no archive is no proof: exit 2, never "OK".
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&args(&empty, &manifest, &["--lang", "fr"]), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Erreurs: 1"));
}
