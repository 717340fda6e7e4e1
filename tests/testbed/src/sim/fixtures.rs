//! Fixture helpers for tests and benchmarks: write real backup archives for a guest (the same code
//! `vzdump` uses) and register them on a storage as if vzdump had made them.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Map;

use super::state::{BackupEntry, Guest, GuestType, State};
use super::{conf, lxc_tar, vma};

/// How big and when.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveSpec {
    /// Approximate compressed archive size in bytes (data is 3/4 random, so the stored data is
    /// `size * 4 / 3` and compresses back to about `size`).
    pub size: u64,
    /// Backup time (epoch seconds), also in the file name.
    pub ctime: i64,
    /// Seed of the pseudo-random data.
    pub seed: u64,
}

/// A uuid derived from vmid and time (stable for a given backup).
pub fn uuid_for(vmid: u32, ctime: i64) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..4].copy_from_slice(&vmid.to_be_bytes());
    u[4..12].copy_from_slice(&ctime.to_be_bytes());
    u[12..].copy_from_slice(&std::process::id().to_be_bytes());
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The config text stored in an archive (`qemu-server.conf` / `pct.conf`): no lock, no snapshots;
/// VM archives carry vzdump's `#qmdump#map:` lines.
pub fn archive_config(g: &Guest) -> String {
    let mut config = g.config.clone();
    if g.template {
        config.insert("template".into(), "1".into());
    }
    let mut text = conf::render(&config);
    match g.kind {
        GuestType::Qemu => {
            for d in conf::disks(&g.config) {
                text.push_str(&format!(
                    "#qmdump#map:{}:drive-{}:{}:raw:\n",
                    d.key, d.key, d.storage
                ));
            }
        }
        GuestType::Lxc => {
            if !config.contains_key("arch") {
                text.push_str("arch: amd64\n");
            }
        }
    }
    text
}

/// Writes the archive for `g` at `path` (`.vma.zst` for VMs, `.tar.zst` for CTs); returns the
/// guest's total disk bytes (VM) or data bytes (CT).
pub fn write_archive(path: &Path, g: &Guest, spec: &ArchiveSpec) -> Result<u64> {
    let data_bytes = spec.size.saturating_mul(4) / 3;
    let config = archive_config(g);
    match g.kind {
        GuestType::Qemu => {
            let devices: Vec<(String, u64)> = conf::disks(&g.config)
                .into_iter()
                .map(|d| (format!("drive-{}", d.key), d.size.max(vma::CLUSTER_SIZE)))
                .collect();
            let s = vma::VmaSpec {
                uuid: uuid_for(g.vmid, spec.ctime),
                ctime: spec.ctime,
                configs: vec![("qemu-server.conf".into(), config.into_bytes())],
                devices,
                data_bytes,
                seed: spec.seed,
            };
            let stats =
                vma::write_zst(path, &s).with_context(|| format!("writing {}", path.display()))?;
            Ok(stats.total_bytes)
        }
        GuestType::Lxc => {
            lxc_tar::write_zst(
                path,
                &config,
                &g.name(),
                data_bytes,
                spec.seed,
                spec.ctime.max(0) as u64,
            )
            .with_context(|| format!("writing {}", path.display()))?;
            Ok(data_bytes)
        }
    }
}

/// Options of [`add_backup`].
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Notes (`.notes` sidecar).
    pub notes: Option<String>,
    /// Protected (`.protected` sidecar).
    pub protected: bool,
}

/// Writes a real backup of `g` onto file storage `storage` as vzdump would name it, with a `.log`
/// ending in vzdump's success line; returns the entry as `pvesh` lists it.
pub fn add_backup(
    state: &State,
    storage: &str,
    g: &Guest,
    spec: &ArchiveSpec,
    opts: &BackupOptions,
) -> Result<BackupEntry> {
    let def = state
        .storage(storage)?
        .with_context(|| format!("storage '{storage}' does not exist"))?;
    if def.kind == "pbs" {
        bail!("storage '{storage}' is PBS: use State::add_pbs_entry");
    }
    let dump = state.dump_dir(&def);
    fs::create_dir_all(&dump)?;
    let (ext, subtype) = match g.kind {
        GuestType::Qemu => ("vma.zst", "qemu"),
        GuestType::Lxc => ("tar.zst", "lxc"),
    };
    let base = format!("vzdump-{subtype}-{}-{}", g.vmid, conf::stamp(spec.ctime));
    let name = format!("{base}.{ext}");
    let path = dump.join(&name);
    write_archive(&path, g, spec)?;
    let log = format!(
        "{t} INFO: Starting Backup of VM {id} ({subtype})\n{t} INFO: creating vzdump archive '{p}'\n{t} INFO: Finished Backup of VM {id} (00:00:01)\n",
        t = conf::datetime(spec.ctime),
        id = g.vmid,
        p = path.display()
    );
    fs::write(dump.join(format!("{base}.log")), log)?;
    if let Some(n) = &opts.notes {
        fs::write(dump.join(format!("{name}.notes")), n)?;
    }
    if opts.protected {
        fs::write(dump.join(format!("{name}.protected")), "")?;
    }
    Ok(BackupEntry {
        volid: format!("{storage}:backup/{name}"),
        vmid: g.vmid,
        subtype: subtype.into(),
        ctime: spec.ctime,
        size: fs::metadata(&path)?.len(),
        format: ext.into(),
        notes: opts.notes.clone(),
        protected: opts.protected,
        verification: None,
        path: Some(path),
        config: None,
        extra: Map::new(),
    })
}
