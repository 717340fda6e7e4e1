//! What restore-vm prints on stdout: the backup list (table or JSON) and the run summary (text or JSON,
//! schema `pve-restore-vm/v1`, documented in docs/json/restore-vm.md).

use std::ops::Deref;

use pve_common::output::{Document, ToolInfo};
use serde::{Deserialize, Serialize};

use pve_restore::outcome::human;
use pve_restore::{BackupInfo, Restored, Verification};

use crate::config::Config;

/// The schema of every JSON document.
/// v2 (from v1): each backup names its `node` and `environment`, the run its `environment`, and a
/// listing across nodes has a null top-level `node`.
pub const SCHEMA: &str = "pve-restore-vm/v2";

/// One backup, as listed: pve-restore's [`BackupInfo`] (its fields first, in their order) placed on its
/// node and environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupJson {
    /// The backup.
    #[serde(flatten)]
    pub backup: BackupInfo,
    /// The node holding it (null in a dry-run, where no node is asked).
    #[serde(default)]
    pub node: Option<String>,
    /// The environment whose state manages the guest on that node, else the node's only environment;
    /// null when neither is known (always with --node).
    #[serde(default)]
    pub environment: Option<String>,
}

impl BackupJson {
    /// The same backup, placed on its node and environment.
    pub fn at(mut self, node: Option<&str>, environment: Option<&str>) -> Self {
        self.node = node.filter(|n| !n.is_empty()).map(str::to_owned);
        self.environment = environment.map(str::to_owned);
        self
    }
}

impl From<&BackupInfo> for BackupJson {
    fn from(b: &BackupInfo) -> Self {
        BackupJson {
            backup: b.clone(),
            node: None,
            environment: None,
        }
    }
}

impl Deref for BackupJson {
    type Target = BackupInfo;

    fn deref(&self) -> &BackupInfo {
        &self.backup
    }
}

/// The `--list --json` document's own fields (under [`Document`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackupList {
    /// `list`.
    pub action: String,
    /// The node listed; null when listed across every node of the homelab (each backup names its own).
    pub node: Option<String>,
    /// The guest whose backups these are.
    pub vmid: u32,
    /// Newest first.
    pub backups: Vec<BackupJson>,
}

/// `--list`: the table, newest first, or with `--json` the document.
pub fn write_list(cfg: &Config, node: Option<&str>, list: &[BackupJson]) -> anyhow::Result<()> {
    let doc = Document::new(
        SCHEMA,
        ToolInfo::new("restore-vm", env!("CARGO_PKG_VERSION")),
        BackupList {
            action: "list".to_owned(),
            node: node.map(str::to_owned),
            vmid: cfg.restore.vmid,
            backups: list.to_vec(),
        },
    );
    pve_common::output::emit(cfg.json, &doc, |doc| {
        list_text(doc.body.vmid, &doc.body.backups, doc.body.node.is_none())
    })?;
    Ok(())
}

/// The `--list` table; across nodes, each row starts with its node and environment.
fn list_text(vmid: u32, list: &[BackupJson], across: bool) -> String {
    let mut out = String::new();
    if list.is_empty() {
        if across {
            pve_common::warn!("no backups of {vmid} on any node of the homelab");
        } else {
            pve_common::warn!("no backups of {vmid} on any backup storage");
        }
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            let place = [
                b.node.clone().unwrap_or_else(|| "-".to_owned()),
                b.environment.clone().unwrap_or_else(|| "-".to_owned()),
            ];
            let cells = [
                b.date.clone(),
                b.kind.clone(),
                b.format.clone(),
                human(b.size),
                b.storage.clone(),
                if b.protected { "yes" } else { "no" }.to_owned(),
                b.verification.clone().unwrap_or_else(|| "-".to_owned()),
                b.volid.clone(),
                b.notes
                    .as_deref()
                    .map(|n| n.lines().next().unwrap_or_default().to_owned())
                    .unwrap_or_default(),
            ];
            place
                .into_iter()
                .filter(|_| across)
                .chain(cells)
                // Every cell comes from the node: escaped, so none adds a row or reaches the terminal.
                .map(|cell| pve_common::output::escape(&cell).into_owned())
                .collect()
        })
        .collect();
    let columns = [
        "DATE",
        "TYPE",
        "FORMAT",
        "SIZE",
        "STORAGE",
        "PROTECTED",
        "VERIFIED",
        "VOLID",
        "NOTES",
    ];
    let head: Vec<&str> = ["NODE", "ENV"]
        .into_iter()
        .filter(|_| across)
        .chain(columns)
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(head.clone()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// The run summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// `pve-restore-vm/v1`.
    pub schema: String,
    /// The tool.
    pub tool: ToolInfo,
    /// `restore`.
    pub action: String,
    /// `restored`, `verification-failed` or `dry-run`.
    pub result: String,
    /// Whether this was a dry-run.
    pub dry_run: bool,
    /// The SSH host.
    pub host: String,
    /// The node.
    pub node: String,
    /// The environment managing the guest on that node, when the node was found among the homelab's
    /// environments (null with --node).
    #[serde(default)]
    pub environment: Option<String>,
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
    pub source: BackupJson,
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

impl Report {
    /// The document of a restore's outcome.
    pub fn new(r: &Restored) -> Self {
        Report {
            schema: SCHEMA.into(),
            tool: ToolInfo::new("restore-vm", env!("CARGO_PKG_VERSION")),
            action: "restore".into(),
            result: r.result.as_str().to_owned(),
            dry_run: r.dry_run,
            host: r.host.clone(),
            node: r.node.clone(),
            environment: None,
            vmid: r.vmid,
            target_id: r.target_id,
            kind: r.kind.clone(),
            storage: r.storage.clone(),
            source: BackupJson::from(&r.source),
            overwrite: r.overwrite,
            save_point: r.save_point.clone(),
            save_point_restore_command: r.save_point_restore_command.clone(),
            restore_command: r.restore_command.clone(),
            restore_seconds: r.restore_seconds,
            duration_seconds: r.duration_seconds,
            warnings: r.warnings.clone(),
            verification: r.verification.clone(),
        }
    }

    /// The text summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let heading = crate::words::summary_heading();
        s.push_str(&format!("{heading}\n{}\n", "=".repeat(heading.len())));
        let mut kv = |k: &str, v: &str| s.push_str(&format!("{k:<13} {v}\n"));
        kv(&pve_common::tr!("restore_vm.key_result"), &self.result);
        kv(
            &pve_common::tr!("restore_vm.key_source"),
            &format!(
                "{} ({}, {})",
                self.source.volid,
                self.source.date,
                human(self.source.size)
            ),
        );
        kv(
            &pve_common::tr!("restore_vm.key_target"),
            &format!(
                "{} {} on {} (storage {})",
                self.kind, self.target_id, self.node, self.storage
            ),
        );
        kv(
            &pve_common::tr!("restore_vm.key_save_point"),
            self.save_point
                .as_deref()
                .unwrap_or(if self.overwrite && self.dry_run {
                    "(dry-run: not taken)"
                } else {
                    "none (nothing overwritten)"
                }),
        );
        if let Some(c) = &self.save_point_restore_command {
            kv(&pve_common::tr!("restore_vm.key_go_back"), c);
        }
        kv(
            &pve_common::tr!("restore_vm.key_duration"),
            &format!("{:.1}s", self.duration_seconds),
        );
        if let Some(v) = &self.verification {
            kv(
                &pve_common::tr!("restore_vm.key_verification"),
                &format!("{}: {}", v.result, v.message),
            );
        }
        for w in &self.warnings {
            kv(&pve_common::tr!("restore_vm.key_warning"), w);
        }
        s
    }
}
