//! `--from-backup` over the restore library restore-vm also runs: find the newest backup of the
//! monitoring VM, take a save point of the VM when it exists, restore, start. [`RestoreVm`] builds
//! [`pve_restore::Options`] and calls [`pve_restore::list`] or [`pve_restore::restore`]; nothing of the
//! restore logic is repeated here. The [`VmRestorer`] trait is the seam unit tests replace.

use std::time::Duration;

use anyhow::{Context, Result};
use pve_common::pve::Volid;
use pve_common::runner::Runner;
use pve_restore::{BackupInfo, Options, Selection};
use pve_ssh::node::NodeAccess;
use serde::{Deserialize, Serialize};

/// What to restore.
#[derive(Clone, Debug)]
pub struct RestoreRequest {
    /// The monitoring VM.
    pub vmid: u32,
    /// A backup volume id, or `None` for the newest.
    pub volid: Option<String>,
    /// Without a volume id: a backup older than this is not used.
    pub max_age: Duration,
    /// `--yes`.
    pub yes: bool,
}

/// A backup that could be restored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupRef {
    /// Volume id (`local:backup/vzdump-qemu-111-....vma.zst`).
    pub volid: String,
    /// When it was taken, seconds since the epoch.
    pub ctime: i64,
    /// When it was taken, node-local `YYYY-MM-DD HH:MM:SS`.
    pub date: String,
    /// Its age now.
    pub age_seconds: u64,
}

impl BackupRef {
    fn new(b: &BackupInfo) -> Self {
        BackupRef {
            volid: b.volid.clone(),
            ctime: b.ctime,
            date: b.date.clone(),
            age_seconds: pve_restore::backup_age(b.ctime).as_secs(),
        }
    }

    /// Whether it is younger than `max_age` (restore-vm's rule).
    pub fn is_recent(&self, max_age: Duration) -> bool {
        pve_restore::is_recent(self.ctime, max_age)
    }
}

/// What a restore did (or, in a dry-run, would do).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreOutcome {
    /// The node.
    pub node: String,
    /// The backup restored.
    pub backup: BackupRef,
    /// Whether the VM existed and was overwritten (after the save point).
    pub overwrite: bool,
    /// restore-vm's save point of the VM before the restore (null: the VM did not exist, or dry-run).
    pub save_point: Option<String>,
    /// The command that puts the save point back.
    pub save_point_restore_command: Option<String>,
    /// The restore command (as run, or as it would run).
    pub restore_command: String,
    /// Seconds the restore command took.
    pub restore_seconds: Option<f64>,
    /// The VM was started.
    pub started: bool,
    /// Warnings of the restore task.
    pub warnings: Vec<String>,
}

/// The restore library as rebuild-monitoring uses it.
pub trait VmRestorer {
    /// The newest backup of `vmid` on any backup storage, if any (read-only; for the default mode).
    fn newest_backup(&self, vmid: u32) -> Result<Option<BackupRef>>;
    /// Save point, restore, start. In dry-run (`runner`), says what it would do and changes nothing.
    fn restore(&self, request: &RestoreRequest, runner: &Runner) -> Result<RestoreOutcome>;
}

/// [`VmRestorer`] over [`pve_restore`].
#[derive(Clone, Debug)]
pub struct RestoreVm {
    /// The node and how to reach it.
    pub access: NodeAccess,
    /// Storage for the restored disks.
    pub storage: String,
}

impl RestoreVm {
    fn options(&self, vmid: u32) -> Options {
        Options::new(vmid, self.access.clone())
    }
}

impl VmRestorer for RestoreVm {
    fn newest_backup(&self, vmid: u32) -> Result<Option<BackupRef>> {
        let listing = pve_restore::list(&self.options(vmid))?;
        Ok(listing.backups.first().map(BackupRef::new))
    }

    fn restore(&self, request: &RestoreRequest, runner: &Runner) -> Result<RestoreOutcome> {
        let mut cfg = self.options(request.vmid);
        cfg.selection = match &request.volid {
            Some(v) => Selection::Volid(Volid::parse(v).with_context(|| format!("backup {v:?}"))?),
            None => Selection::NewestWithin(request.max_age),
        };
        cfg.storage = self.storage.clone();
        // Rebuilding means replacing the monitoring VM when it is still there: restore-vm takes the save
        // point first and still asks (or needs --yes).
        cfg.force = true;
        cfg.start = true;
        // The stack checks that follow are the proof; restore-vm's TCP check of port 22 would only wait.
        cfg.verify = false;
        cfg.yes = request.yes;
        cfg.dry_run = runner.is_dry_run();
        let report = pve_restore::restore(&cfg)?;
        Ok(RestoreOutcome {
            node: report.node.clone(),
            backup: BackupRef::new(&report.source),
            overwrite: report.overwrite,
            save_point: report.save_point.clone(),
            save_point_restore_command: report.save_point_restore_command.clone(),
            restore_command: report.restore_command.clone(),
            restore_seconds: report.restore_seconds,
            started: !report.dry_run,
            warnings: report.warnings.clone(),
        })
    }
}
