//! What a listing or a restore found and did, as plain values; restore-vm turns them into its text and
//! JSON, rebuild-monitoring into its own report.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::node::Backup;
use crate::options::Options;

/// `1.50 GiB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// One backup of a listing, with its time on the node's clock; restore-vm writes it as it is in its
/// JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// `storage:backup/...`.
    pub volid: String,
    /// The storage.
    pub storage: String,
    /// `qemu` or `lxc` (a placeholder when nothing was contacted).
    #[serde(rename = "type")]
    pub kind: String,
    /// `vma.zst`, `tar.zst`, `pbs-vm`...
    pub format: String,
    /// Bytes.
    pub size: u64,
    /// Seconds since the epoch.
    pub ctime: i64,
    /// Node-local time, `YYYY-MM-DD HH:MM:SS`.
    pub date: String,
    /// Notes.
    pub notes: Option<String>,
    /// Protected.
    pub protected: bool,
    /// PBS verification: `ok`, `failed`, or none (null: not verified / not PBS).
    pub verification: Option<String>,
}

impl BackupInfo {
    /// From a listing entry, with the node's UTC offset for the date.
    pub fn new(b: &Backup, offset: jiff::tz::Offset) -> Self {
        let date = jiff::Timestamp::from_second(b.content.ctime)
            .map(|t| {
                t.to_zoned(jiff::tz::TimeZone::fixed(offset))
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        BackupInfo {
            volid: b.content.volid.clone(),
            storage: b.storage.clone(),
            kind: b.guest_type.as_str().to_owned(),
            format: b.content.format.clone(),
            size: b.content.size,
            ctime: b.content.ctime,
            date,
            notes: b.content.notes.clone(),
            protected: b.content.protected,
            verification: b.content.verification.as_ref().map(|v| v.state.clone()),
        }
    }
}

/// A VMID's backups on a node, newest first.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The node name.
    pub node: String,
    /// The backups.
    pub backups: Vec<BackupInfo>,
}

/// How the check that the restored guest runs and answers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum VerificationResult {
    /// The guest answers on the port.
    Passed,
    /// The guest did not answer in time.
    Failed,
    /// The guest runs, but no IP was found to check.
    Running,
    /// Not verified (dry-run, `--no-verify`, not started).
    Skipped,
}

/// The verification outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// How it ended.
    pub result: VerificationResult,
    /// The IP checked.
    pub ip: Option<String>,
    /// Whether ping answered (null: not tried, e.g. no `ping` installed).
    pub ping: Option<bool>,
    /// Whether the TCP port answered.
    pub port_open: Option<bool>,
    /// Human explanation.
    pub message: String,
}

impl Verification {
    /// Not verified, and why.
    pub fn skipped(why: &str) -> Self {
        Verification {
            result: VerificationResult::Skipped,
            ip: None,
            ping: None,
            port_open: None,
            message: why.to_owned(),
        }
    }

    /// Failed, and why.
    pub fn failed(ip: Option<String>, why: String) -> Self {
        Verification {
            result: VerificationResult::Failed,
            ip,
            ping: None,
            port_open: None,
            message: why,
        }
    }
}

/// How a restore ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreResult {
    /// Not finished (only while the restore runs).
    #[default]
    #[serde(rename = "")]
    Pending,
    /// Restored (and verified, or verification skipped).
    Restored,
    /// Restored, but the guest did not run or answer in time.
    VerificationFailed,
    /// Nothing was changed.
    DryRun,
}

impl RestoreResult {
    /// `restored`, `verification-failed`, `dry-run` (empty while pending).
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreResult::Pending => "",
            RestoreResult::Restored => "restored",
            RestoreResult::VerificationFailed => "verification-failed",
            RestoreResult::DryRun => "dry-run",
        }
    }
}

impl fmt::Display for RestoreResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a restore did (or, in a dry-run, would do); restore-vm's JSON report has these fields, in this
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    /// How it ended.
    pub result: RestoreResult,
    /// Whether this was a dry-run.
    pub dry_run: bool,
    /// The SSH host.
    pub host: String,
    /// The node.
    pub node: String,
    /// The backed-up guest.
    pub vmid: u32,
    /// The restored guest id.
    pub target_id: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The disks' storage.
    pub storage: String,
    /// The backup restored.
    pub source: BackupInfo,
    /// Whether an existing guest was overwritten (or would be, in a dry-run).
    pub overwrite: bool,
    /// The save point's volid (null: nothing overwritten, or dry-run).
    pub save_point: Option<String>,
    /// The command that restores the save point.
    pub save_point_restore_command: Option<String>,
    /// The restore command as run.
    pub restore_command: String,
    /// Seconds the restore command took.
    pub restore_seconds: Option<f64>,
    /// Seconds the whole run took.
    pub duration_seconds: f64,
    /// Warnings (task warnings, duplicate MAC/IP).
    pub warnings: Vec<String>,
    /// The verification.
    pub verification: Option<Verification>,
}

impl Restored {
    /// The outcome before anything ran.
    pub fn new(opts: &Options, node: &str, source: BackupInfo) -> Self {
        Restored {
            result: RestoreResult::Pending,
            dry_run: opts.dry_run,
            host: opts.access.host.clone(),
            node: node.to_owned(),
            vmid: opts.vmid,
            target_id: opts.target_id,
            kind: source.kind.clone(),
            storage: opts.storage.clone(),
            source,
            overwrite: false,
            save_point: None,
            save_point_restore_command: None,
            restore_command: String::new(),
            restore_seconds: None,
            duration_seconds: 0.0,
            warnings: Vec::new(),
            verification: None,
        }
    }

    /// `e`, with the save point and the command that puts the old guest back when one was taken.
    pub fn with_way_back(&self, e: anyhow::Error) -> anyhow::Error {
        match (&self.save_point, &self.save_point_restore_command) {
            (Some(sp), Some(back)) => e.context(format!(
                "the old guest is saved in {sp}; to put it back run on node {}: {back}",
                self.node
            )),
            _ => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_results_read_as_before() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536 * 1024 * 1024), "1.50 GiB");
        assert_eq!(
            RestoreResult::VerificationFailed.to_string(),
            "verification-failed"
        );
        assert_eq!(RestoreResult::DryRun.as_str(), "dry-run");
    }
}
