//! `vzdump <vmid>... --storage S --mode M --compress zstd [--notes-template T] [--protected 1]`: writes
//! a real archive (`.vma.zst` or `.tar.zst`) and its `.log` into `<storage>/dump/`, holding the guest's
//! `backup` lock while the archive is written (the state lock is released meanwhile, so the lock is
//! visible to `qm config`, `pvesh` and the provider). Log lines go to stderr as vzdump's do.

use std::fs;

use super::args::{self, Args};
use super::conf;
use super::state::{BackupEntry, Guest, GuestType, StorageDef, now_epoch};
use super::{CmdResult, Ctx, Fail, fixtures};

/// Default approximate archive size when the guest has no `backup_size`.
pub const DEFAULT_BACKUP_SIZE: u64 = 1 << 20;

/// PVE::VZDump's `format_size`: `245MB`, `1.20GB`.
fn vzdump_size(bytes: u64) -> String {
    let kb = bytes as f64 / 1024.0;
    let mb = kb / 1024.0;
    let gb = mb / 1024.0;
    if kb < 1024.0 {
        format!("{}KB", kb as u64)
    } else if mb < 1024.0 {
        format!("{}MB", mb as u64)
    } else if gb < 1024.0 {
        format!("{gb:.2}GB")
    } else {
        format!("{:.2}TB", gb / 1024.0)
    }
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.2} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2} KiB", b / 1024.0)
    }
}

fn expand_notes(template: &str, g: &Guest, node: &str) -> String {
    template
        .replace("{{guestname}}", &g.name())
        .replace("{{vmid}}", &g.vmid.to_string())
        .replace("{{node}}", node)
        .replace("{{cluster}}", node)
        .replace("\\n", "\n")
}

/// Backs up one guest; returns the error text for "ERROR: Backup of VM N failed - ..." on failure.
fn backup_one(
    ctx: &mut Ctx,
    vmid: u32,
    sdef: &StorageDef,
    a: &Args,
    log: &mut Vec<String>,
    log_path: &mut Option<std::path::PathBuf>,
) -> Result<(), String> {
    let node = ctx.node.node.clone();
    let mut g = match ctx.state.guest(vmid) {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Err(format!(
                "unable to find configuration file for VM {vmid} on node '{node}'"
            ));
        }
        Err(e) => return Err(format!("{e:#}")),
    };
    let label = g.kind.label();
    let start = now_epoch();
    let (ext, subtype) = match g.kind {
        GuestType::Qemu => ("vma.zst", "qemu"),
        GuestType::Lxc => ("tar.zst", "lxc"),
    };
    let stamp = conf::stamp(start);
    let base = format!("vzdump-{subtype}-{vmid}-{stamp}");
    let dump = ctx.state.dump_dir(sdef);
    if sdef.kind != "pbs" {
        *log_path = Some(dump.join(format!("{base}.log")));
    }
    let mut info = |ctx: &mut Ctx, msg: String| {
        ctx.say(format!("INFO: {msg}"));
        log.push(format!("{} INFO: {msg}", conf::datetime(now_epoch())));
    };
    info(
        ctx,
        format!("Starting Backup of VM {vmid} ({})", g.kind.as_str()),
    );
    info(ctx, format!("Backup started at {}", conf::datetime(start)));
    info(ctx, format!("status = {}", g.status));
    if let Some(l) = &g.lock {
        return Err(format!("{label} is locked ({l})"));
    }
    let mode = a.get("mode").unwrap_or("snapshot").to_string();
    let disks = conf::disks(&g.config);
    // The order of these lines differs between VMs and CTs, as in vzdump's plugins.
    match g.kind {
        GuestType::Qemu => {
            info(ctx, format!("VM Name: {}", g.name()));
            for d in &disks {
                let size = conf::format_size(d.size);
                info(
                    ctx,
                    format!(
                        "include disk '{}' '{}:{}' {size}",
                        d.key, d.storage, d.volume
                    ),
                );
            }
            info(ctx, format!("backup mode: {mode}"));
            info(ctx, "ionice priority: 7".into());
        }
        GuestType::Lxc => {
            info(ctx, format!("backup mode: {mode}"));
            info(ctx, "ionice priority: 7".into());
            info(ctx, format!("CT Name: {}", g.name()));
            for d in &disks {
                let mp = if d.key == "rootfs" {
                    "/".to_string()
                } else {
                    d.options
                        .iter()
                        .find_map(|o| o.strip_prefix("mp="))
                        .unwrap_or("?")
                        .to_string()
                };
                info(
                    ctx,
                    format!("including mount point {} ('{mp}') in backup", d.key),
                );
            }
        }
    }
    let stop_and_restart = mode == "stop" && g.status == "running";
    if stop_and_restart {
        info(ctx, "stopping virtual guest".into());
    }
    let size = g.backup_size.unwrap_or(DEFAULT_BACKUP_SIZE);
    let avail = ctx
        .state
        .storage_avail(sdef)
        .map_err(|e| format!("{e:#}"))?;
    if sdef.kind == "pbs" {
        return backup_to_pbs(ctx, &g, sdef, a, start, size, avail, &mut info);
    }
    let final_path = dump.join(format!("{base}.{ext}"));
    info(
        ctx,
        format!("creating vzdump archive '{}'", final_path.display()),
    );
    if avail < size {
        return Err(match g.kind {
            GuestType::Qemu => "job failed with err -28 - No space left on device".into(),
            GuestType::Lxc => format!(
                "command 'set -o pipefail && tar cpf - --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs '--xattrs-include=user.*' '--xattrs-include=security.capability' '--warning=no-file-ignored' '--warning=no-xattr-write' --one-file-system '--warning=no-file-ignored' '--directory=/var/tmp/vzdumptmp{}_{vmid}/' ./etc/vzdump/pct.conf ./etc/vzdump/pct.fw '--directory=/mnt/vzsnap0' --no-anchored '--exclude=lost+found' --anchored '--exclude=./tmp/?*' '--exclude=./var/tmp/?*' '--exclude=./var/run/?*.pid' ./ | zstd '--threads=1' >{}.dat' failed: exit code 1 (No space left on device)",
                std::process::id(),
                dump.join(&base).display()
            ),
        });
    }
    // Take the backup lock, then release the state lock while writing.
    g.lock = Some("backup".into());
    ctx.state.save_guest(&g).map_err(|e| format!("{e:#}"))?;
    ctx.unlock();
    let tmp = dump.join(format!("{base}.dat"));
    let spec = fixtures::ArchiveSpec {
        size,
        ctime: start,
        seed: u64::from(vmid) ^ (start as u64),
    };
    let written = fs::create_dir_all(&dump)
        .map_err(|e| e.to_string())
        .and_then(|()| fixtures::write_archive(&tmp, &g, &spec).map_err(|e| format!("{e:#}")))
        .and_then(|total| {
            fs::rename(&tmp, &final_path)
                .map(|()| total)
                .map_err(|e| e.to_string())
        });
    let relock = ctx.relock().map_err(|e| format!("{e:#}"));
    // Clear the lock whatever happened.
    if let Ok(Some(mut fresh)) = ctx.state.guest(vmid) {
        fresh.lock = None;
        let _ = ctx.state.save_guest(&fresh);
    }
    relock?;
    let total = match written {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let file_size = fs::metadata(&final_path).map(|m| m.len()).unwrap_or(0);
    if g.kind == GuestType::Qemu {
        info(
            ctx,
            format!(
                "started backup task '{}'",
                fixtures::uuid_string(&fixtures::uuid_for(vmid, start))
            ),
        );
        info(
            ctx,
            format!(
                "100% ({} of {}) in 1s, read: {}/s, write: {}/s",
                human(total),
                human(total),
                human(total),
                human(size)
            ),
        );
        let sparse = total.saturating_sub(size);
        let pct = (sparse * 100).checked_div(total).unwrap_or(0);
        info(
            ctx,
            format!(
                "backup is sparse: {} ({pct}%) total zero data",
                human(sparse)
            ),
        );
        info(
            ctx,
            format!(
                "transferred {} in 1 seconds ({}/s)",
                human(total),
                human(total)
            ),
        );
    } else {
        info(
            ctx,
            format!("Total bytes written: {size} ({}, 1.0 GiB/s)", human(size)),
        );
    }
    info(
        ctx,
        format!("archive file size: {}", vzdump_size(file_size)),
    );
    if let Some(t) = a.get("notes-template") {
        info(ctx, "adding notes to backup".into());
        let notes = expand_notes(t, &g, &node);
        fs::write(dump.join(format!("{base}.{ext}.notes")), notes).map_err(|e| e.to_string())?;
    }
    if a.flag("protected") {
        info(ctx, "marking backup as protected".into());
        fs::write(dump.join(format!("{base}.{ext}.protected")), "").map_err(|e| e.to_string())?;
    }
    let elapsed = (now_epoch() - start).max(0);
    if stop_and_restart {
        info(ctx, "restarting vm".into());
        info(
            ctx,
            format!("guest is online again after {elapsed} seconds"),
        );
    }
    info(
        ctx,
        format!(
            "Finished Backup of VM {vmid} ({:02}:{:02}:{:02})",
            elapsed / 3600,
            elapsed % 3600 / 60,
            elapsed % 60
        ),
    );
    let mut text = log.join("\n");
    text.push('\n');
    fs::write(dump.join(format!("{base}.log")), text).map_err(|e| e.to_string())?;
    Ok(())
}

/// A backup to a `pbs` storage: a new entry in its `pbs.json` (carrying the guest config, so a
/// restore from it gets that config), no local archive or log, as with Proxmox Backup Server.
#[allow(clippy::too_many_arguments)]
fn backup_to_pbs(
    ctx: &mut Ctx,
    g: &Guest,
    sdef: &StorageDef,
    a: &Args,
    start: i64,
    size: u64,
    avail: u64,
    info: &mut dyn FnMut(&mut Ctx, String),
) -> Result<(), String> {
    let (kind, format, subtype) = match g.kind {
        GuestType::Qemu => ("vm", "pbs-vm", "qemu"),
        GuestType::Lxc => ("ct", "pbs-ct", "lxc"),
    };
    let snap = format!("{kind}/{}/{}", g.vmid, conf::rfc3339(start));
    info(
        ctx,
        format!("creating Proxmox Backup Server archive '{snap}'"),
    );
    if avail < size {
        return Err("backup write data failed: command error: write_data upload error: pipelined request failed: No space left on device (os error 28)".into());
    }
    let mut entries = ctx
        .state
        .pbs_entries(&sdef.storage)
        .map_err(|e| format!("{e:#}"))?;
    entries.push(BackupEntry {
        volid: format!("{}:backup/{snap}", sdef.storage),
        vmid: g.vmid,
        subtype: subtype.into(),
        ctime: start,
        size,
        format: format.into(),
        notes: a
            .get("notes-template")
            .map(|t| expand_notes(t, g, &ctx.node.node)),
        protected: a.flag("protected"),
        verification: None,
        path: None,
        config: Some(g.config.clone()),
        extra: serde_json::Map::new(),
    });
    ctx.state
        .save_pbs_entries(&sdef.storage, &entries)
        .map_err(|e| format!("{e:#}"))?;
    info(
        ctx,
        format!(
            "transferred {} in 1 seconds ({}/s)",
            human(size),
            human(size)
        ),
    );
    info(ctx, format!("Finished Backup of VM {} (00:00:01)", g.vmid));
    Ok(())
}

/// `vzdump ...`.
pub(crate) fn main(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    let a = args::parse(argv);
    let vmids: Vec<u32> = a
        .pos
        .iter()
        .flat_map(|p| p.split(','))
        .filter_map(|v| v.parse().ok())
        .collect();
    if vmids.is_empty() {
        return Err(Fail::new(
            "400 Parameter verification failed.\nvmid: property is missing and it is not optional",
        ));
    }
    if let Some(c) = a.get("compress")
        && !["zstd", "1", "gzip", "lzo", "0"].contains(&c)
    {
        return Err(Fail::new(format!(
            "400 Parameter verification failed.\ncompress: value '{c}' does not have a value in the enumeration '0, 1, gzip, lzo, zstd'"
        )));
    }
    let storage = a.get("storage").unwrap_or("local").to_string();
    let Some(sdef) = ctx.state.storage(&storage)? else {
        return Err(Fail::new(format!("storage '{storage}' does not exist")));
    };
    if !sdef.has_content("backup") {
        return Err(Fail::new(format!(
            "storage '{storage}' does not support backups"
        )));
    }
    let mut shown = vec!["vzdump".to_string()];
    shown.extend(argv.iter().cloned());
    ctx.say(format!(
        "INFO: starting new backup job: {}",
        shown.join(" ")
    ));
    let mut errors = 0;
    for vmid in vmids {
        let mut log = Vec::new();
        let mut log_path = None;
        if let Err(e) = backup_one(ctx, vmid, &sdef, &a, &mut log, &mut log_path) {
            errors += 1;
            ctx.say(format!("ERROR: Backup of VM {vmid} failed - {e}"));
            log.push(format!(
                "{} ERROR: Backup of VM {vmid} failed - {e}",
                conf::datetime(now_epoch())
            ));
            // As on a node, a failed backup leaves its log (and no archive) in the dump directory.
            if let Some(p) = log_path {
                let _ = fs::write(p, format!("{}\n", log.join("\n")));
            }
            ctx.say(format!("INFO: Failed at {}", conf::datetime(now_epoch())));
        } else {
            ctx.say(format!(
                "INFO: Backup finished at {}",
                conf::datetime(now_epoch())
            ));
        }
    }
    if errors > 0 {
        ctx.say("INFO: Backup job finished with errors");
        return Err(Fail::new("job errors"));
    }
    ctx.say("INFO: Backup job finished successfully");
    Ok(0)
}
