//! `qmrestore <archive> <vmid>` and `pct restore <vmid> <archive>` with Proxmox's refusals
//! (existing id without `--force`, locked, protected, running) and messages taken from qemu-server's
//! `create_vm` / pve-container's `create_vm`. The archive is read for real: the config comes from the
//! VMA config blob or the tar's `./etc/vzdump/pct.conf`, and a corrupt archive fails the restore
//! before any state changes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::args::Args;
use super::conf;
use super::guest::{alloc_volume, destroy_disks};
use super::state::{BackupEntry, Guest, GuestType};
use super::{CmdResult, Ctx, Fail, lxc_tar, vma};

/// A resolved archive argument.
pub(crate) enum Archive {
    /// A file (path given, or a volid on a file storage).
    File { path: PathBuf },
    /// A PBS snapshot from `pbs.json`.
    Pbs { entry: Box<BackupEntry> },
}

/// Resolves a volid (`local:backup/vzdump-...`, `pbs:backup/vm/100/...`) or a path.
pub(crate) fn resolve(ctx: &Ctx, archive: &str) -> Result<Archive, Fail> {
    if archive.starts_with('/') || !archive.contains(':') {
        return Ok(Archive::File {
            path: PathBuf::from(archive),
        });
    }
    let (storage, volname) = archive.split_once(':').unwrap_or_default();
    let def = ctx
        .state
        .storage(storage)?
        .ok_or_else(|| Fail::new(format!("storage '{storage}' does not exist")))?;
    if def.kind == "pbs" {
        let entry = ctx
            .state
            .pbs_entries(storage)?
            .into_iter()
            .find(|e| e.volid == archive)
            .ok_or_else(|| {
                Fail::new(format!(
                    "unable to find snapshot '{volname}' on storage '{storage}'"
                ))
            })?;
        return Ok(Archive::Pbs {
            entry: Box::new(entry),
        });
    }
    let name = volname
        .strip_prefix("backup/")
        .ok_or_else(|| Fail::new(format!("unable to parse volume name '{volname}'")))?;
    Ok(Archive::File {
        path: ctx.state.dump_dir(&def).join(name),
    })
}

/// Marks the guest locked `create` (a placeholder config for a new id, as `create_and_lock_config`
/// does) and releases the state lock, so reading a big archive does not block other commands and the
/// lock is visible meanwhile.
fn reserve(
    ctx: &mut Ctx,
    vmid: u32,
    kind: GuestType,
    existing: Option<&Guest>,
) -> Result<(), Fail> {
    let mut g = existing
        .cloned()
        .unwrap_or_else(|| Guest::new(vmid, kind, &ctx.node.node, &[]));
    g.lock = Some("create".into());
    ctx.state.save_guest(&g)?;
    ctx.unlock();
    Ok(())
}

/// Takes the state lock back after [`reserve`]; on failure, puts things back as they were.
fn unreserve(ctx: &mut Ctx, vmid: u32, existing: Option<&Guest>, failed: bool) -> Result<(), Fail> {
    ctx.relock()?;
    if failed {
        match existing {
            Some(g) => ctx.state.save_guest(g)?,
            None => ctx.state.remove_guest(vmid)?,
        }
    }
    Ok(())
}

fn task_warnings(ctx: &mut Ctx, warnings: usize) -> i32 {
    if warnings > 0 {
        ctx.say(format!("TASK WARNINGS: {warnings}"));
    }
    0
}

/// Drops sections and keys that never survive a restore.
fn clean_config(mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
    config.remove("lock");
    config.remove("parent");
    if let Some(d) = config.get("description") {
        let kept: Vec<&str> = d.lines().filter(|l| !l.starts_with("qmdump#")).collect();
        if kept.is_empty() {
            config.remove("description");
        } else {
            config.insert("description".into(), kept.join("\n"));
        }
    }
    config
}

fn pct_volume_spec(vol: &str, size: u64, opts: &[String]) -> String {
    let mut parts = vec![vol.to_string()];
    parts.extend(opts.iter().filter(|o| !o.starts_with("size=")).cloned());
    parts.push(format!("size={}", conf::format_size(size)));
    parts.join(",")
}

/// `qmrestore <archive> <vmid> [--storage S] [--force] [--unique] [--start]`.
pub(crate) fn qmrestore(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    let a = super::args::parse(argv);
    let (Some(archive), Some(id)) = (a.pos.first(), a.pos.get(1)) else {
        return Err(Fail::new(
            "400 not enough arguments\nqmrestore <archive> <vmid> [OPTIONS]",
        ));
    };
    let vmid: u32 = id
        .parse()
        .map_err(|_| Fail::new("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID"))?;
    let emsg = format!("unable to restore VM {vmid} -");
    let force = a.flag("force");
    let existing = ctx.state.guest(vmid)?;
    if let Some(g) = &existing {
        if g.kind != GuestType::Qemu || !force {
            return Err(Fail::new(format!(
                "{emsg} {} {vmid} already exists on node '{}'",
                g.kind.label(),
                g.node
            )));
        }
        if let Some(l) = &g.lock {
            return Err(Fail::new(format!("{emsg} VM is locked ({l})")));
        }
        // PVE::AbstractConfig::check_protection appends " - protection mode enabled" to a prefix that
        // already ends in "-": the doubled dash is what Proxmox prints.
        if g.protected() {
            return Err(Fail::new(format!("{emsg} - protection mode enabled")));
        }
        if g.status == "running" {
            return Err(Fail::new(format!("{emsg} vm is running")));
        }
    }
    if let Some(s) = a.get("storage")
        && ctx.state.storage(s)?.is_none()
    {
        return Err(Fail::new(format!("storage '{s}' does not exist")));
    }
    let pid = std::process::id();
    let resolved = resolve(ctx, archive)?;
    let (config, devices): (BTreeMap<String, String>, Vec<vma::Device>) = match &resolved {
        Archive::File { path } => {
            if !path.is_file() {
                return Err(Fail::new(format!(
                    "{emsg} archive file '{}' does not exist",
                    path.display()
                )));
            }
            let cmd = format!(
                "set -o pipefail && zstd -q -d -c {} | vma extract -v -r /var/tmp/vzdumptmp{pid}.fifo - /var/tmp/vzdumptmp{pid}",
                path.display()
            );
            ctx.say(format!(
                "restore vma archive: zstd -q -d -c {} | vma extract -v -r /var/tmp/vzdumptmp{pid}.fifo - /var/tmp/vzdumptmp{pid}",
                path.display()
            ));
            reserve(ctx, vmid, GuestType::Qemu, existing.as_ref())?;
            let verified = vma::verify_file(path);
            unreserve(ctx, vmid, existing.as_ref(), verified.is_err())?;
            let info = match verified {
                Ok(i) => i,
                Err(e) => {
                    ctx.warn(format!(
                        "** (process:{pid}): ERROR **: restore failed - {e}"
                    ));
                    return Err(Fail::new(format!("command '{cmd}' failed: exit code 133")));
                }
            };
            let text = info.header.config("qemu-server.conf").unwrap_or_default();
            ctx.say(format!("CFG: size: {} name: qemu-server.conf", text.len()));
            for d in &info.header.devices {
                ctx.say(format!(
                    "DEV: dev_id={} size: {} devname: {}",
                    d.id, d.size, d.name
                ));
            }
            ctx.say(format!("CTIME: {}", conf::ctime_string(info.header.ctime)));
            let stored = info.data_blocks * vma::BLOCK_SIZE as u64;
            let total: u64 = info.header.devices.iter().map(|d| d.size).sum();
            let mut config = conf::parse(&text);
            config = clean_config(config);
            let devices = info.header.devices.clone();
            let cfg = (config, devices);
            restore_qemu_disks(ctx, vmid, &a, existing.as_ref(), cfg, Some((stored, total)))?;
            return finish_qemu(ctx, vmid, &a);
        }
        Archive::Pbs { entry } => {
            ctx.say(format!(
                "restore proxmox backup image: proxmox-backup-client restore {} qemu-server.conf",
                entry.volid
            ));
            let config = entry.config.clone().unwrap_or_else(|| {
                let mut c = BTreeMap::new();
                c.insert("name".into(), format!("vm{vmid}"));
                c.insert("memory".into(), "2048".into());
                c.insert(
                    "scsi0".into(),
                    format!("local-lvm:vm-{}-disk-0,size=8G", entry.vmid),
                );
                c
            });
            let devices = conf::disks(&config)
                .iter()
                .enumerate()
                .map(|(i, d)| vma::Device {
                    id: (i + 1) as u8,
                    name: format!("drive-{}", d.key),
                    size: d.size,
                })
                .collect();
            (clean_config(config), devices)
        }
    };
    restore_qemu_disks(ctx, vmid, &a, existing.as_ref(), (config, devices), None)?;
    finish_qemu(ctx, vmid, &a)
}

fn restore_qemu_disks(
    ctx: &mut Ctx,
    vmid: u32,
    a: &Args,
    existing: Option<&Guest>,
    (mut config, devices): (BTreeMap<String, String>, Vec<vma::Device>),
    totals: Option<(u64, u64)>,
) -> Result<(), Fail> {
    if let Some(old) = existing {
        destroy_disks(ctx, old)?;
    }
    let disks = conf::disks(&config);
    // Disks not in the archive (backup=0) are not restored.
    for d in &disks {
        config.remove(&d.key);
    }
    let mut warnings = 0;
    for (n, dev) in devices.iter().enumerate() {
        let key = dev
            .name
            .strip_prefix("drive-")
            .unwrap_or(&dev.name)
            .to_string();
        let orig = disks.iter().find(|d| d.key == key);
        let storage = a
            .get("storage")
            .map(str::to_string)
            .or_else(|| orig.map(|d| d.storage.clone()))
            .unwrap_or_else(|| "local".into());
        if ctx.state.storage(&storage)?.is_none() {
            return Err(Fail::new(format!("storage '{storage}' does not exist")));
        }
        let vol = alloc_volume(ctx, &storage, vmid, n, dev.size, GuestType::Qemu)?;
        ctx.say(format!("new volume ID is '{vol}'"));
        let devpath = match vol.split_once(':') {
            Some((_, v)) if !v.contains('/') => format!("/dev/pve/{v}"),
            Some((s, v)) => format!("/var/lib/vz/images/{}", v.trim_start_matches(s)),
            None => vol.clone(),
        };
        ctx.say(format!(
            "map '{}' to '{devpath}' (write zeros = 0)",
            dev.name
        ));
        let opts: Vec<String> = orig.map(|d| d.options.clone()).unwrap_or_default();
        let mut parts = vec![vol];
        parts.extend(opts.into_iter().filter(|o| !o.starts_with("size=")));
        parts.push(format!("size={}", conf::format_size(dev.size)));
        config.insert(key, parts.join(","));
    }
    if let Some((stored, total)) = totals {
        ctx.say(format!(
            "progress 1% (read {} bytes, duration 0 sec)",
            total / 100
        ));
        ctx.say(format!(
            "progress 100% (read {total} bytes, duration 0 sec)"
        ));
        let sparse = total.saturating_sub(stored);
        let pct = if total > 0 {
            sparse as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        ctx.say(format!(
            "total bytes read {total}, sparse bytes {sparse} ({pct:.3}%)"
        ));
        ctx.say("space reduction due to 4K zero blocks 0.00%");
    }
    ctx.say("rescan volumes...");
    if a.flag("unique") {
        conf::regenerate_macs(&mut config);
    }
    let template = config.remove("template").is_some_and(|t| t == "1");
    let mut g = Guest::new(vmid, GuestType::Qemu, &ctx.node.node, &[]);
    g.config = config;
    g.template = template;
    if template {
        ctx.warn("Convert to template.");
        warnings += 1;
    }
    if let Some(old) = existing {
        g.backup_size = old.backup_size;
    }
    ctx.state.save_guest(&g)?;
    ctx.warnings += warnings;
    Ok(())
}

fn finish_qemu(ctx: &mut Ctx, vmid: u32, a: &Args) -> CmdResult {
    if a.flag("start") {
        ctx.say("Execute autostart");
        if let Some(mut g) = ctx.state.guest(vmid)?
            && !g.template
        {
            g.status = "running".into();
            ctx.state.save_guest(&g)?;
        }
    }
    let w = ctx.warnings;
    Ok(task_warnings(ctx, w))
}

/// `pct restore <vmid> <archive> [--storage S] [--force] [--unique] [--start] [--rootfs R]`.
pub(crate) fn pct_restore(ctx: &mut Ctx, a: &Args) -> CmdResult {
    let (Some(id), Some(archive)) = (a.pos.first(), a.pos.get(1)) else {
        return Err(Fail::new(
            "400 not enough arguments\npct restore <vmid> <ostemplate> [OPTIONS]",
        ));
    };
    let vmid: u32 = id
        .parse()
        .map_err(|_| Fail::new("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID"))?;
    let force = a.flag("force");
    let storage = a.get("storage").unwrap_or("local").to_string();
    let existing = ctx.state.guest(vmid)?;
    if let Some(g) = &existing {
        if g.kind != GuestType::Lxc || !force {
            return Err(Fail::new(format!(
                "{} {vmid} already exists on node '{}'",
                g.kind.label(),
                g.node
            )));
        }
        if g.protected() {
            return Err(Fail::new(format!(
                "unable to restore CT {vmid} - protection mode enabled"
            )));
        }
        if g.status == "running" {
            return Err(Fail::new("can't overwrite running container"));
        }
        if let Some(l) = &g.lock {
            return Err(Fail::new(format!("CT is locked ({l})")));
        }
    }
    let Some(sdef) = ctx.state.storage(&storage)? else {
        return Err(Fail::new(format!("storage '{storage}' does not exist")));
    };
    if a.get("rootfs").is_none() && !sdef.has_content("rootdir") {
        return Err(Fail::new(format!(
            "400 Parameter verification failed.\nstorage: storage '{storage}' does not support container directories\npct restore <vmid> <ostemplate> [OPTIONS]"
        )));
    }
    let resolved = resolve(ctx, archive)?;
    ctx.say(format!(
        "recovering backed-up configuration from '{archive}'"
    ));
    let (conf_text, bytes) = match &resolved {
        Archive::File { path } => {
            if !path.is_file() {
                return Err(Fail::new(format!(
                    "unable to restore CT {vmid} - archive '{}' does not exist",
                    path.display()
                )));
            }
            reserve(ctx, vmid, GuestType::Lxc, existing.as_ref())?;
            let verified = lxc_tar::verify_file(path);
            unreserve(ctx, vmid, existing.as_ref(), verified.is_err())?;
            match verified {
                Ok(info) => (info.pct_conf, info.bytes),
                Err(e) => {
                    ctx.warn(format!("tar: {e}"));
                    return Err(Fail::new(format!(
                        "unable to restore CT {vmid} - command 'lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar xpf - --zstd --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs '--xattrs-include=user.*' '--xattrs-include=security.capability' '--warning=no-file-ignored' '--warning=no-xattr-write' -C /var/lib/lxc/{vmid}/rootfs --skip-old-files --anchored --exclude './dev/*'' failed: exit code 2"
                    )));
                }
            }
        }
        Archive::Pbs { entry } => {
            let c = entry.config.clone().unwrap_or_else(|| {
                let mut c = BTreeMap::new();
                c.insert("hostname".into(), format!("ct{vmid}"));
                c.insert(
                    "rootfs".into(),
                    format!("local-lvm:vm-{}-disk-0,size=8G", entry.vmid),
                );
                c
            });
            (conf::render(&c), entry.size)
        }
    };
    let mut config = clean_config(conf::parse(&conf_text));
    let mut warnings = 0;
    let unused: Vec<String> = config
        .keys()
        .filter(|k| k.starts_with("unused"))
        .cloned()
        .collect();
    for k in unused {
        ctx.warn(format!(
            "ignoring '{k}', cannot create/restore with unused volume"
        ));
        config.remove(&k);
        warnings += 1;
    }
    // New volumes first (rootfs and volume mount points), then the old container goes.
    let mut disks = conf::disks(&config);
    disks.sort_by_key(|d| d.key != "rootfs");
    for (n, d) in disks.iter().enumerate() {
        let (target, size) = match (d.key.as_str(), a.get("rootfs")) {
            ("rootfs", Some(r)) => {
                let (s, rest) = r.split_once(':').unwrap_or((storage.as_str(), r));
                let gib = rest.split(',').next().and_then(|g| g.parse::<f64>().ok());
                (
                    s.to_string(),
                    gib.map_or(d.size, |g| (g * (1u64 << 30) as f64) as u64),
                )
            }
            _ => (storage.clone(), d.size),
        };
        let vol = alloc_volume(ctx, &target, vmid, n, size, GuestType::Lxc)?;
        if n == 0 {
            ctx.say(format!(
                "Creating filesystem with {} 4k blocks and {} inodes",
                size / 4096,
                size / 16384
            ));
        }
        config.insert(d.key.clone(), pct_volume_spec(&vol, size, &d.options));
    }
    if let Some(old) = &existing {
        destroy_disks(ctx, old)?;
    }
    ctx.say(format!("restoring '{archive}' now.."));
    if let Archive::File { path } = &resolved {
        ctx.say(format!("extracting archive '{}'", path.display()));
    }
    ctx.say(format!(
        "Total bytes read: {bytes} ({}KiB, 1.0GiB/s)",
        bytes / 1024
    ));
    ctx.say(format!(
        "Detected container architecture: {}",
        config
            .get("arch")
            .cloned()
            .unwrap_or_else(|| "amd64".into())
    ));
    ctx.say("merging backed-up and given configuration..");
    if a.flag("unique") {
        conf::regenerate_macs(&mut config);
    }
    config
        .entry("hostname".into())
        .or_insert_with(|| format!("CT{vmid}"));
    config
        .entry("memory".into())
        .or_insert_with(|| "512".into());
    config.entry("swap".into()).or_insert_with(|| "512".into());
    let template = config.remove("template").is_some_and(|t| t == "1");
    let mut g = Guest::new(vmid, GuestType::Lxc, &ctx.node.node, &[]);
    g.config = config;
    g.template = template;
    if a.flag("start") && !template {
        g.status = "running".into();
    }
    if let Some(old) = &existing {
        g.backup_size = old.backup_size;
    }
    ctx.state.save_guest(&g)?;
    Ok(task_warnings(ctx, warnings))
}
