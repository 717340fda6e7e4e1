//! `--local-dir DIR` with no node (no --node, --host, PVE_HOST or --env): an offsite or USB copy checked on
//! its own, contacting nothing. Every vzdump archive found in DIR (and in each `STORAGE=DIR`) is checked:
//! its name (type, VMID, time, format), its size, its vzdump log when one lies beside it, the compression
//! layer and the VMA or tar inside (the native one-pass reader, always: reading the bytes is the point of
//! such a check), and its SHA-256 against the manifest when it records the archive (matched by volid,
//! else by file name when exactly one entry has it). `--record` adds the unrecorded ones.

use std::path::{Path, PathBuf};

use pve_common::pve::{Compression, Container, VzdumpFile};
use pve_common::runner::Runner;

use crate::archive::{self, Job};
use crate::manifest::Manifest;
use crate::report::{BackupResult, CheckName, Component, Status};
use crate::{Config, GuestChecks};

/// One archive found.
struct Found {
    path: PathBuf,
    storage: String,
    name: VzdumpFile,
    file_name: String,
}

/// The storage a `--local-dir DIR` given for every storage is reported under (the node's default backup
/// storage, as the archives' volids are on most homelabs).
const ANY_STORAGE: &str = "local";

fn format_of(name: &VzdumpFile) -> String {
    let c = match name.container {
        Container::Vma => "vma",
        Container::Tar => "tar",
    };
    match name.compression {
        Compression::None => c.to_owned(),
        Compression::Zstd => format!("{c}.zst"),
        Compression::Gzip => format!("{c}.gz"),
        Compression::Lzo => format!("{c}.lzo"),
    }
}

fn scan(dir: &Path, storage: &str, out: &mut Vec<Found>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(name) = VzdumpFile::parse(&file_name) else {
            continue;
        };
        out.push(Found {
            path: entry.path(),
            storage: storage.to_owned(),
            name,
            file_name,
        });
    }
    Ok(())
}

/// The recorded hash of an archive: by volid, else by file name when exactly one entry ends with it.
fn recorded<'m>(
    manifest: &'m Manifest,
    volid: &str,
    file_name: &str,
) -> Option<(&'m str, &'m str)> {
    if let Some((v, h)) = manifest.entries.get_key_value(volid) {
        return Some((v, h));
    }
    let suffix = format!("/{file_name}");
    let mut by_name = manifest
        .entries
        .iter()
        .filter(|(v, _)| v.ends_with(&suffix));
    match (by_name.next(), by_name.next()) {
        (Some((v, h)), None) => Some((v, h)),
        _ => None,
    }
}

/// The archives of the folders, of the VMIDs asked for, in path order; a folder that cannot be read is a
/// failed listing.
fn find_all(config: &Config, dirs: &[(PathBuf, String)], gc: &mut GuestChecks) -> Vec<Found> {
    let mut found = Vec::new();
    for (dir, storage) in dirs {
        if let Err(e) = scan(dir, storage, &mut found) {
            gc.archives.add(
                &dir.display().to_string(),
                CheckName::Listing,
                Status::Fail,
                e,
            );
        }
    }
    found.retain(|f| config.vmids.is_empty() || config.vmids.contains(&f.name.archive.vmid));
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// An archive found, as the report lists a backup (what its name says; no node to say more).
fn backup_result(f: &Found, volid: String, size: u64) -> BackupResult {
    BackupResult {
        volid,
        storage: f.storage.clone(),
        vmid: f.name.archive.vmid,
        kind: f.name.archive.guest_type.as_str().to_owned(),
        ctime: f.name.archive.ctime,
        size,
        format: format_of(&f.name),
        protected: false,
        notes: None,
        guest_exists: false,
        newest: false,
        sha256: None,
        status: Status::Ok,
        checks: Vec::new(),
        node: None,
        environment: None,
        shared: false,
    }
}

/// The size check of an archive found, and its vzdump log's when one lies beside it.
fn size_and_log(f: &Found, r: &mut BackupResult, archives: &mut Component) {
    let (status, reason) = if r.size == 0 {
        (Status::Fail, format!("{} is empty", f.path.display()))
    } else {
        (Status::Ok, format!("{} bytes", r.size))
    };
    r.record(archives, CheckName::Size, status, reason);
    let log = f.path.with_file_name(format!("{}.log", f.name.stem));
    if let Ok(text) = std::fs::read_to_string(&log) {
        let (status, reason) = match crate::pve::log_verdict(&text, f.name.archive.vmid) {
            Ok(()) => (Status::Ok, "vzdump log ends with success".to_owned()),
            Err(e) => (Status::Fail, e),
        };
        r.record(archives, CheckName::Log, status, reason);
    }
}

/// The bit-rot check of an archive against the manifest, and whether `--record` added its hash to it.
fn sha256_verdict(
    config: &Config,
    manifest: &mut Manifest,
    volid: &str,
    f: &Found,
    sha256: Option<&String>,
) -> (Status, String, bool) {
    let known = recorded(manifest, volid, &f.file_name).map(|(v, h)| (v.to_owned(), h.to_owned()));
    match (sha256, known) {
        (Some(sha), Some((v, h))) if *sha == h => (
            Status::Ok,
            format!("matches the SHA-256 recorded for {v}"),
            false,
        ),
        (Some(sha), Some((v, h))) => (
            Status::Fail,
            format!("corrupt: SHA-256 {sha}, recorded {h} for {v}; bit rot or tampering"),
            false,
        ),
        (None, Some((v, _))) => (
            Status::Fail,
            format!("cannot hash {} (recorded for {v})", f.path.display()),
            false,
        ),
        (Some(sha), None) if config.record => {
            manifest.entries.insert(volid.to_owned(), sha.clone());
            (Status::Ok, format!("recorded SHA-256 {sha}"), true)
        }
        _ => (
            Status::Info,
            "not in the manifest (run with --record to add it)".to_owned(),
            false,
        ),
    }
}

/// Checks every archive of the local folders into `gc`.
pub(crate) fn check(config: &Config, runner: &Runner, gc: &mut GuestChecks) {
    let why = "no node: the archives of --local-dir are checked on their own";
    gc.coverage.skip(why);
    gc.pbs.skip(why);
    let mut dirs: Vec<(PathBuf, String)> = Vec::new();
    if let Some(d) = &config.local.any {
        dirs.push((d.clone(), ANY_STORAGE.to_owned()));
    }
    for (s, d) in &config.local.by_storage {
        dirs.push((d.clone(), s.clone()));
    }
    let found = find_all(config, &dirs, gc);
    if found.is_empty() {
        // Nothing read is no proof: an empty or wrong folder must not end "OK".
        let where_ = dirs
            .iter()
            .map(|(d, _)| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        gc.archives.add(
            &where_,
            CheckName::Archives,
            Status::Fail,
            "no vzdump archive (vzdump-<type>-<vmid>-<time>.<format>) found",
        );
        gc.integrity.skip("no archive to read");
        gc.bitrot.skip("no archive to hash");
        return;
    }
    let (mut manifest, manifest_error) = match Manifest::load(&config.manifest) {
        Ok(m) => (m, None),
        Err(e) => (Manifest::default(), Some(format!("{e:#}"))),
    };
    let mut jobs = Vec::new();
    for f in &found {
        let volid = format!("{}:backup/{}", f.storage, f.file_name);
        let size = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
        let mut r = backup_result(f, volid.clone(), size);
        size_and_log(f, &mut r, &mut gc.archives);
        jobs.push(Job {
            path: f.path.clone(),
            container: f.name.container,
            compression: f.name.compression,
            hash: config.record || recorded(&manifest, &volid, &f.file_name).is_some(),
        });
        gc.backups.push(r);
    }
    let results = archive::check_all(&jobs, config.jobs, None);
    let mut changed = false;
    for ((f, result), r) in found.iter().zip(results).zip(gc.backups.iter_mut()) {
        crate::record_integrity(
            r,
            &mut gc.integrity,
            f.name.container,
            (&result.compression, &result.content),
        );
        let (status, reason, added) =
            sha256_verdict(config, &mut manifest, &r.volid, f, result.sha256.as_ref());
        changed |= added;
        r.sha256.clone_from(&result.sha256);
        r.record(&mut gc.bitrot, CheckName::Sha256, status, reason);
    }
    if let Some(e) = manifest_error {
        gc.bitrot.add(
            &config.manifest.display().to_string(),
            CheckName::Manifest,
            Status::Fail,
            e,
        );
    } else if changed && let Err(e) = manifest.save(runner, &config.manifest) {
        gc.bitrot.add(
            &config.manifest.display().to_string(),
            CheckName::Manifest,
            Status::Fail,
            format!("{e:#}"),
        );
    }
}
