//! The report: components with their checks, per-guest and per-backup results, rendered as tables (stdout),
//! as the `pve-verify/v1` JSON document (schema in `docs/json/verify-backups.md`) and as node_exporter
//! textfile metrics (`pve_backup.prom`, classic text format).

use std::fmt::Write as _;

use pve_common::output::{ToolInfo, escape};
use serde::{Deserialize, Serialize};

/// The JSON schema name.
pub const SCHEMA: &str = "pve-verify/v1";

/// How a check, backup, component or run came out. Ordered by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Ok,
    /// For information only (orphans, notes, skipped checks); counts as passed.
    Info,
    /// Passed with a warning.
    Warn,
    /// Failed.
    Fail,
}

impl Status {
    /// The table label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Info => "INFO",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }

    /// The worst of `self` and `other`; `info` counts as `ok`.
    pub fn worst(self, other: Status) -> Status {
        let passed = |s: Status| if s == Status::Info { Status::Ok } else { s };
        passed(self).max(passed(other))
    }
}

/// The name of a check: the `check` field of the JSON document and the CHECK column of the tables.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::AsRefStr,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum CheckName {
    /// The node answers over SSH.
    Connect,
    /// The node's guests and storages could be listed.
    Inventory,
    /// A storage or folder could be listed.
    Listing,
    /// A guest's newest backup is recent enough.
    Freshness,
    /// A guest no Terraform state manages.
    Unmanaged,
    /// A backup whose guest is gone.
    Orphan,
    /// An environment's state could be read to prove coverage.
    TerraformState,
    /// The archives of a folder checked with no node.
    Archives,
    /// The archive's file name.
    Name,
    /// The archive's size.
    Size,
    /// The vzdump task log.
    Log,
    /// Notes and the protected flag.
    Meta,
    /// The compression stream.
    Compression,
    /// The VMA container.
    Vma,
    /// The tar container.
    Tar,
    /// A PBS snapshot's verification state, on the backup.
    PbsVerification,
    /// A PBS snapshot's verification state, in the `pbs` component.
    Verification,
    /// The archive's hash against the manifest.
    Sha256,
    /// The SHA-256 manifest itself.
    Manifest,
    /// The environments under the root.
    Environments,
    /// An environment's S3 backend.
    Backend,
    /// The S3 client and endpoint.
    S3,
    /// The state's bucket.
    Bucket,
    /// The state object.
    Object,
    /// The state's content.
    State,
    /// The bucket's versioning.
    Versioning,
    /// The age of the newest state version.
    Age,
    /// A DR service's health endpoint.
    Health,
    /// `terraform init` in an environment.
    #[serde(rename = "terraform init")]
    #[strum(serialize = "terraform init")]
    TerraformInit,
    /// A guest answers (`--full`).
    Connectivity,
    /// A backup job (`--full`).
    BackupJob,
}

/// One line of a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked: `qemu 100 (jellyfin)`, a volid, an env name, a service.
    pub subject: String,
    /// The check's name (`freshness`, `size`, `log`, `compression`, `vma`, `tar`, `sha256`, ...).
    pub check: CheckName,
    /// Outcome.
    pub status: Status,
    /// Why (or what was seen).
    pub reason: String,
    /// The environment whose node the check was made on (absent outside a homelab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The node the check was made on (absent when only `--host` named it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A component's stable id: the `name` field of the JSON document.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::Display, strum::AsRefStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ComponentName {
    /// Coverage and freshness.
    Coverage,
    /// Archive soundness.
    Archives,
    /// Integrity (`--deep`).
    Integrity,
    /// Bit-rot (the SHA-256 manifest).
    Bitrot,
    /// PBS verification.
    Pbs,
    /// Terraform state in S3.
    Tfstate,
    /// DR services (`--full`).
    Services,
}

/// One of the seven checks of the issue, as a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Stable id: `coverage`, `archives`, `integrity`, `bitrot`, `pbs`, `tfstate`, `services`.
    pub name: ComponentName,
    /// Human title.
    pub title: String,
    /// Worst status of its checks (`info` when it did not run).
    pub status: Status,
    /// Why it did not run, when it did not.
    pub skipped: Option<String>,
    /// Milliseconds it took.
    pub duration_ms: u64,
    /// Its checks.
    pub checks: Vec<Check>,
}

impl Component {
    /// An empty component.
    pub fn new(name: ComponentName, title: &str) -> Component {
        Component {
            name,
            title: title.to_owned(),
            status: Status::Ok,
            skipped: None,
            duration_ms: 0,
            checks: Vec::new(),
        }
    }

    /// Adds a check.
    pub fn add(
        &mut self,
        subject: &str,
        check: CheckName,
        status: Status,
        reason: impl Into<String>,
    ) {
        self.status = self.status.worst(status);
        self.checks.push(Check {
            subject: subject.to_owned(),
            check,
            status,
            reason: reason.into(),
            environment: None,
            node: None,
        });
    }

    /// Marks it as not run.
    pub fn skip(&mut self, why: impl Into<String>) {
        self.skipped = Some(why.into());
        self.status = Status::Info;
    }
}

/// A per-backup check result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCheck {
    /// `name`, `size`, `log`, `compression`, `vma`, `tar`, `sha256`, `pbs-verification`.
    pub check: CheckName,
    /// Outcome.
    pub status: Status,
    /// Why.
    pub reason: String,
}

/// One backup and what was found about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupResult {
    /// Proxmox volume id.
    pub volid: String,
    /// Storage id.
    pub storage: String,
    /// VMID.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Backup time (epoch seconds).
    pub ctime: i64,
    /// Size Proxmox reports.
    pub size: u64,
    /// `vma.zst`, `tar.zst`, `pbs-vm`, ...
    pub format: String,
    /// Protected flag.
    pub protected: bool,
    /// Notes.
    pub notes: Option<String>,
    /// Whether the guest still exists (false: orphan).
    pub guest_exists: bool,
    /// Whether this is the newest backup of its guest.
    pub newest: bool,
    /// SHA-256 of the archive, when it was computed.
    pub sha256: Option<String>,
    /// Worst status of the checks.
    pub status: Status,
    /// Checks made.
    pub checks: Vec<BackupCheck>,
    /// The node it was checked on (absent when the node is not known by name: `--host` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The environment whose node that is (absent outside a homelab).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// On a storage shared by the members of a cluster (counted once).
    #[serde(skip)]
    pub shared: bool,
}

impl BackupResult {
    /// Adds a check result.
    pub fn add(&mut self, check: CheckName, status: Status, reason: impl Into<String>) {
        self.status = self.status.worst(status);
        self.checks.push(BackupCheck {
            check,
            status,
            reason: reason.into(),
        });
    }

    /// Adds a check result, and the same line under its volid to `comp` (the component that made it).
    pub fn record(
        &mut self,
        comp: &mut Component,
        check: CheckName,
        status: Status,
        reason: String,
    ) {
        self.add(check, status, reason.clone());
        comp.add(&self.volid, check, status, reason);
    }

    /// The first failed check, if any.
    pub fn first_failure(&self) -> Option<&BackupCheck> {
        self.checks.iter().find(|c| c.status == Status::Fail)
    }
}

/// One guest and its coverage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestResult {
    /// VMID.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Name.
    pub name: String,
    /// Template.
    pub template: bool,
    /// Number of backups found.
    pub backups: usize,
    /// Volid of the newest backup.
    pub newest_volid: Option<String>,
    /// Its time (epoch seconds).
    pub newest_ctime: Option<i64>,
    /// Its age in seconds at the start of the run.
    pub age_seconds: Option<i64>,
    /// Worst status over coverage and the checks of its backups (the `pve_backup_verify_status` metric).
    pub status: Status,
    /// The node it is on (from `/cluster/resources`; for a guest only Terraform knows, the node checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The environment whose Terraform state manages it (absent: no state of the node's environments does,
    /// or none was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// One Terraform environment's state check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvResult {
    /// Environment name.
    pub env: String,
    /// `s3://bucket/key`, when the backend is S3.
    pub state_url: Option<String>,
    /// Serial of the current state.
    pub serial: Option<u64>,
    /// Resources in the current state.
    pub resources: Option<usize>,
    /// Bucket versioning (`enabled`, `suspended`, `off`).
    pub versioning: Option<String>,
    /// Age of the newest state version in seconds.
    pub age_seconds: Option<i64>,
    /// Worst status of its checks.
    pub status: Status,
    /// The bucket (text report only).
    #[serde(skip)]
    pub bucket: Option<String>,
    /// Size of the current state in bytes (text report only).
    #[serde(skip)]
    pub size_bytes: Option<u64>,
    /// Number of versions of the state (text report only).
    #[serde(skip)]
    pub versions: Option<usize>,
    /// The bucket exists (text report only).
    #[serde(skip)]
    pub bucket_exists: Option<bool>,
    /// The state parsed as JSON (text report only).
    #[serde(skip)]
    pub json_valid: Option<bool>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `pve-verify/v1`.
    pub schema: String,
    /// Tool name and version.
    pub tool: ToolInfo,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// Start time, epoch seconds.
    pub started_epoch: i64,
    /// Total duration.
    pub duration_ms: u64,
    /// `remote` or `local` (where the archives were read).
    pub mode: String,
    /// Whether `--deep` ran.
    pub deep: bool,
    /// Whether `--full` ran.
    pub full: bool,
    /// Overall status: `ok`, `warn` or `fail`.
    pub status: Status,
    /// Counts of checks by status.
    pub counts: Counts,
    /// The components in order.
    pub components: Vec<Component>,
    /// Guests.
    pub guests: Vec<GuestResult>,
    /// Backups examined (and orphans).
    pub backups: Vec<BackupResult>,
    /// Terraform environments.
    pub environments: Vec<EnvResult>,
    /// `--full` on the nodes: jobs and connectivity, for the text report's sections (their checks are in
    /// the `services` component).
    #[serde(skip)]
    pub findings: Vec<crate::full::Finding>,
}

/// Check counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// OK and INFO checks.
    pub ok: usize,
    /// Warnings.
    pub warn: usize,
    /// Failures.
    pub fail: usize,
}

impl Report {
    /// Recomputes the overall status and counts from the components.
    pub fn finish(&mut self) {
        let mut counts = Counts::default();
        let mut status = Status::Ok;
        for c in &self.components {
            status = status.worst(c.status);
            for ch in &c.checks {
                match ch.status {
                    Status::Ok | Status::Info => counts.ok += 1,
                    Status::Warn => counts.warn += 1,
                    Status::Fail => counts.fail += 1,
                }
            }
        }
        self.status = match status {
            Status::Info => Status::Ok,
            s => s,
        };
        self.counts = counts;
    }

    /// The final verdict line.
    pub fn verdict(&self) -> String {
        let what = match self.status {
            Status::Ok | Status::Info => "OK",
            Status::Warn => "OK with warnings",
            Status::Fail => "FAILED",
        };
        format!(
            "verdict: {what}: {} failed, {} warnings, {} passed in {} components ({:.1}s)",
            self.counts.fail,
            self.counts.warn,
            self.counts.ok,
            self.components.len(),
            self.duration_ms as f64 / 1000.0
        )
    }

    /// The human report: a table per component, then the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.components {
            let _ = writeln!(
                out,
                "== {} [{}] ({:.1}s) ==",
                c.title,
                c.status.label(),
                c.duration_ms as f64 / 1000.0
            );
            if let Some(why) = &c.skipped {
                let _ = writeln!(out, "   skipped: {}", escape(why));
            }
            // Subjects and reasons carry guest names, notes and messages from the node: one escaped line
            // each, so none can add a row of its own or reach the terminal as control.
            let sw = c
                .checks
                .iter()
                .map(|ch| escape(&ch.subject).chars().count())
                .max()
                .unwrap_or(0)
                .max("SUBJECT".len());
            let cw = c
                .checks
                .iter()
                .map(|ch| ch.check.as_ref().len())
                .max()
                .unwrap_or(0)
                .max("CHECK".len());
            if !c.checks.is_empty() {
                let _ = writeln!(
                    out,
                    "{:<6} {:<sw$} {:<cw$} REASON",
                    "STATUS", "SUBJECT", "CHECK"
                );
                for ch in &c.checks {
                    let _ = writeln!(
                        out,
                        "{:<6} {:<sw$} {:<cw$} {}",
                        ch.status.label(),
                        escape(&ch.subject),
                        ch.check,
                        escape(&ch.reason)
                    );
                }
            }
            out.push('\n');
        }
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }
}

/// Escapes a label value for the Prometheus text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn status_value(s: Status) -> u8 {
    match s {
        Status::Ok | Status::Info => 0,
        Status::Warn => 1,
        Status::Fail => 2,
    }
}

/// The textfile metrics (`pve_backup.prom`): classic text format, no timestamps, newline at the end.
// One metric family after the other, in the file's order: a table that reads best in one place.
#[allow(clippy::too_many_lines)]
pub fn render_metrics(report: &Report) -> String {
    let mut out = String::new();
    let guest_labels = |g: &GuestResult| {
        format!(
            "vmid=\"{}\",type=\"{}\",name=\"{}\"",
            g.vmid,
            label(&g.kind),
            label(&g.name)
        )
    };
    let mut family = |name: &str, help: &str, lines: Vec<String>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    };
    family(
        "pve_backup_last_timestamp",
        "Unix time of the newest backup of the guest.",
        report
            .guests
            .iter()
            .filter_map(|g| {
                g.newest_ctime
                    .map(|t| format!("pve_backup_last_timestamp{{{}}} {t}", guest_labels(g)))
            })
            .collect(),
    );
    family(
        "pve_backup_age_seconds",
        "Age in seconds of the newest backup of the guest when verify-backups ran.",
        report
            .guests
            .iter()
            .filter_map(|g| {
                g.age_seconds
                    .map(|a| format!("pve_backup_age_seconds{{{}}} {a}", guest_labels(g)))
            })
            .collect(),
    );
    family(
        "pve_backup_verify_status",
        "Verification of the guest's backups: 0 ok, 1 warning, 2 failed (missing, stale, unreadable or corrupt).",
        report
            .guests
            .iter()
            .map(|g| {
                format!(
                    "pve_backup_verify_status{{{}}} {}",
                    guest_labels(g),
                    status_value(g.status)
                )
            })
            .collect(),
    );
    family(
        "pve_backup_state_status",
        "Terraform state of the environment in S3: 0 ok, 2 failed.",
        report
            .environments
            .iter()
            .map(|e| {
                let v = if e.status == Status::Fail { 2 } else { 0 };
                format!("pve_backup_state_status{{env=\"{}\"}} {v}", label(&e.env))
            })
            .collect(),
    );
    family(
        "pve_backup_last_verify_timestamp",
        "Unix time verify-backups last ran.",
        vec![format!(
            "pve_backup_last_verify_timestamp {}",
            report.started_epoch
        )],
    );
    family(
        "pve_backup_verify_success",
        "1 when the last verify-backups run found no failure, else 0.",
        vec![format!(
            "pve_backup_verify_success {}",
            u8::from(report.status != Status::Fail)
        )],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check names are the words the JSON document and the tables carried as strings: the same in
    /// both, and unchanged.
    #[test]
    fn check_names_keep_their_words() {
        let words: Vec<String> = <CheckName as strum::IntoEnumIterator>::iter()
            .map(|c| {
                let json = serde_json::to_value(c).unwrap();
                assert_eq!(json, serde_json::Value::String(c.to_string()));
                assert_eq!(serde_json::from_value::<CheckName>(json).unwrap(), c);
                c.to_string()
            })
            .collect();
        assert_eq!(
            words.join(","),
            "connect,inventory,listing,freshness,unmanaged,orphan,terraform-state,archives,name,size,\
             log,meta,compression,vma,tar,pbs-verification,verification,sha256,manifest,environments,\
             backend,s3,bucket,object,state,versioning,age,health,terraform init,connectivity,backup-job"
        );
        assert_eq!(
            serde_json::to_string(&ComponentName::Tfstate).unwrap(),
            format!("\"{}\"", ComponentName::Tfstate)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn status_order() {
        assert_eq!(Status::Ok.worst(Status::Fail), Status::Fail);
        assert_eq!(Status::Warn.worst(Status::Info), Status::Warn);
        assert_eq!(Status::Ok.worst(Status::Info), Status::Ok);
    }
}
