//! The boundary to restore-vm for `--from-backup`: find the newest backup of the monitoring VM, take a
//! save point, restore, start. restore-vm's library is built in parallel and not part of this build, so
//! [`Pending`] answers every call with a clear error instead of pretending; wiring it means implementing
//! [`VmRestorer`] over `restore_vm`'s library and returning it from [`restorer`].

use std::time::Duration;

use anyhow::{Result, bail};
use pve_common::runner::Runner;
use serde::Serialize;

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
#[derive(Clone, Debug, Serialize)]
pub struct BackupRef {
    /// Volume id (`local:backup/vzdump-qemu-111-....vma.zst`).
    pub volid: String,
    /// Its age.
    pub age_seconds: u64,
}

/// What a restore did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreOutcome {
    /// The backup restored.
    pub backup: BackupRef,
    /// restore-vm's save point of the VM before the restore, if one was taken.
    pub save_point: Option<String>,
    /// The VM was started.
    pub started: bool,
}

/// restore-vm as rebuild-monitoring uses it.
pub trait VmRestorer {
    /// The newest backup of `vmid` younger than `max_age`, if any (for the default mode).
    fn recent_backup(&self, vmid: u32, max_age: Duration) -> Result<Option<BackupRef>>;
    /// Save point, restore, start. In dry-run (`runner`), says what it would do and changes nothing.
    fn restore(&self, request: &RestoreRequest, runner: &Runner) -> Result<RestoreOutcome>;
}

/// The message of every [`Pending`] call.
pub const PENDING: &str = "--from-backup is not available in this build: restore-vm library pending. \
     Restore the VM with restore-vm, then run rebuild-monitoring --verify-only; or use --from-terraform";

/// restore-vm is not linked into this build.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pending;

impl VmRestorer for Pending {
    fn recent_backup(&self, _vmid: u32, _max_age: Duration) -> Result<Option<BackupRef>> {
        bail!("{PENDING}")
    }

    fn restore(&self, _request: &RestoreRequest, _runner: &Runner) -> Result<RestoreOutcome> {
        bail!("{PENDING}")
    }
}

/// The restorer of this build.
pub fn restorer() -> Box<dyn VmRestorer> {
    Box::new(Pending)
}
