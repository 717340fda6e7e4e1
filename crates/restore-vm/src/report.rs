//! What restore-vm prints on stdout: the backup list (table or JSON) and the run summary (text or JSON,
//! schema `pve-restore-vm/v1`, documented in docs/json/restore-vm.md).

use pve_common::output::{Document, ToolInfo};
use serde::{Deserialize, Serialize};

use pve_restore::outcome::human;
use pve_restore::{BackupInfo, Restored};

use crate::config::Config;

/// The schema of every JSON document.
pub const SCHEMA: &str = "pve-restore-vm/v1";

/// The `--list --json` document's own fields (under [`Document`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BackupList {
    /// `list`.
    pub action: String,
    /// The node listed.
    pub node: String,
    /// The guest whose backups these are.
    pub vmid: u32,
    /// Newest first.
    pub backups: Vec<BackupInfo>,
}

/// `--list`: the table, newest first, or with `--json` the document.
pub fn write_list(cfg: &Config, node: &str, list: &[BackupInfo]) -> anyhow::Result<()> {
    let doc = Document::new(
        SCHEMA,
        ToolInfo::new("restore-vm", env!("CARGO_PKG_VERSION")),
        BackupList {
            action: "list".to_owned(),
            node: node.to_owned(),
            vmid: cfg.restore.vmid,
            backups: list.to_vec(),
        },
    );
    pve_common::output::emit(cfg.json, &doc, |doc| {
        list_text(doc.body.vmid, &doc.body.backups)
    })?;
    Ok(())
}

/// The `--list` table.
fn list_text(vmid: u32, list: &[BackupInfo]) -> String {
    let mut out = String::new();
    if list.is_empty() {
        pve_common::warn!("no backups of {vmid} on any backup storage");
    }
    let rows: Vec<[String; 9]> = list
        .iter()
        .map(|b| {
            [
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
            ]
            // Every cell comes from the node: escaped, so none adds a row or reaches the terminal.
            .map(|cell| pve_common::output::escape(&cell).into_owned())
        })
        .collect();
    let head = [
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
    out.push_str(&line(head.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// The run summary's own fields (under [`Document`]): `restore`, then what the restore did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreRun {
    /// `restore`.
    pub action: String,
    /// What the restore did (or would do, in a dry-run).
    #[serde(flatten)]
    pub restored: Restored,
}

/// The run summary document.
pub type Report = Document<RestoreRun>;

/// The document of a restore's outcome.
pub fn report(r: &Restored) -> Report {
    Document::new(
        SCHEMA,
        ToolInfo::new("restore-vm", env!("CARGO_PKG_VERSION")),
        RestoreRun {
            action: "restore".into(),
            restored: r.clone(),
        },
    )
}

impl RestoreRun {
    /// The text summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let heading = crate::words::summary_heading();
        s.push_str(&format!("{heading}\n{}\n", "=".repeat(heading.len())));
        let mut kv = |k: &str, v: &str| s.push_str(&format!("{k:<13} {v}\n"));
        let r = &self.restored;
        kv(&pve_common::tr!("restore_vm.key_result"), r.result.as_str());
        kv(
            &pve_common::tr!("restore_vm.key_source"),
            &format!(
                "{} ({}, {})",
                r.source.volid,
                r.source.date,
                human(r.source.size)
            ),
        );
        kv(
            &pve_common::tr!("restore_vm.key_target"),
            &format!(
                "{} {} on {} (storage {})",
                r.kind, r.target_id, r.node, r.storage
            ),
        );
        kv(
            &pve_common::tr!("restore_vm.key_save_point"),
            r.save_point
                .as_deref()
                .unwrap_or(if r.overwrite && r.dry_run {
                    "(dry-run: not taken)"
                } else {
                    "none (nothing overwritten)"
                }),
        );
        if let Some(c) = &r.save_point_restore_command {
            kv(&pve_common::tr!("restore_vm.key_go_back"), c);
        }
        kv(
            &pve_common::tr!("restore_vm.key_duration"),
            &format!("{:.1}s", r.duration_seconds),
        );
        if let Some(v) = &r.verification {
            kv(
                &pve_common::tr!("restore_vm.key_verification"),
                &format!("{}: {}", v.result, v.message),
            );
        }
        for w in &r.warnings {
            kv(&pve_common::tr!("restore_vm.key_warning"), w);
        }
        s
    }
}
