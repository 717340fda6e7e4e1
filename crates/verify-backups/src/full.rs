//! `--full` on the node, what the replaced script's `--full` adds: the backup jobs (`pvesh get
//! /cluster/backup`, each listed with its schedule and storage; a disabled job, no job at all, or a guest
//! in no enabled job is a WARNING) and a connectivity check of every running guest (the section
//! "Verification de la connectivite"): a VM answers through its QEMU guest agent (`qm guest cmd <vmid>
//! ping`), a container runs `true` (`pct exec <vmid> -- true`). A guest that does not answer, or a VM
//! without an agent (then nothing on the node can tell), is a WARNING: no backup is at stake.
//!
//! Each finding is also a check of the `services` component (`backup-job`, `connectivity`), in English,
//! so the `pve-verify/v1` document keeps its shape and does not change with the language.

use serde_json::Value;

use crate::config::Config;
use crate::node::{Inventory, Node};
use crate::pve::Guest;
use crate::report::{CheckName, Component, Status};

/// How a running guest answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// It answered.
    Answers,
    /// A VM without a QEMU guest agent configured: nothing on the node can ask it.
    NoAgent,
    /// It did not answer (Proxmox's message).
    Silent(String),
}

/// A guest, as findings name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestRef {
    /// `qemu` or `lxc`.
    pub kind: String,
    /// VMID.
    pub vmid: u32,
    /// Name (may be empty).
    pub name: String,
}

impl GuestRef {
    fn of(g: &Guest) -> GuestRef {
        GuestRef {
            kind: g.kind.clone(),
            vmid: g.vmid,
            name: g.name.clone(),
        }
    }

    /// `VM 100 (jellyfin)`, `CT 101`: the report's words.
    pub fn label(&self) -> String {
        let kind = if self.kind == "lxc" { "CT" } else { "VM" };
        if self.name.is_empty() {
            format!("{kind} {}", self.vmid)
        } else {
            format!("{kind} {} ({})", self.vmid, self.name)
        }
    }

    /// `qemu 100 (jellyfin)`: the JSON subject, as the coverage component names guests.
    pub fn subject(&self) -> String {
        if self.name.is_empty() {
            format!("{} {}", self.kind, self.vmid)
        } else {
            format!("{} {} ({})", self.kind, self.vmid, self.name)
        }
    }
}

/// A vzdump job of `/cluster/backup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupJob {
    /// Job id (`backup-1a2b3c4d-5e6f`).
    pub id: String,
    /// `schedule` (`21:00`, `sun 01:00`), else the older `dow` + `starttime`.
    pub schedule: Option<String>,
    /// Target storage.
    pub storage: Option<String>,
    /// `snapshot`, `suspend` or `stop`.
    pub mode: Option<String>,
    /// `enabled` (absent: enabled).
    pub enabled: bool,
    /// `all`: every guest (of `node`, when set) except `exclude`.
    pub all: bool,
    /// `vmid`: the guests it backs up.
    pub vmids: Vec<u32>,
    /// `exclude` (with `all`).
    pub exclude: Vec<u32>,
    /// `node`: only guests of this node.
    pub node: Option<String>,
    /// `pool`: the guests of this pool.
    pub pool: Option<String>,
}

/// A text field the API may give as a string or a number.
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Proxmox boolean (`1`, `"1"`, `true`), `default` when absent.
fn truth(v: &Value, key: &str, default: bool) -> bool {
    match v.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true" | "yes" | "on"),
        Some(_) => default,
    }
}

/// A `pve-vmid-list` (`100,101`, `100 101`, `100;101`).
fn vmid_list(text: Option<String>) -> Vec<u32> {
    text.map(|t| {
        t.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter_map(|id| id.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

impl BackupJob {
    /// A job as `pvesh get /cluster/backup` prints it.
    pub fn from_value(v: &Value) -> BackupJob {
        let schedule =
            text(v, "schedule").or_else(|| match (text(v, "dow"), text(v, "starttime")) {
                (Some(d), Some(t)) => Some(format!("{d} {t}")),
                (None, Some(t)) => Some(t),
                _ => None,
            });
        BackupJob {
            id: text(v, "id").unwrap_or_else(|| "?".to_owned()),
            schedule,
            storage: text(v, "storage"),
            mode: text(v, "mode"),
            enabled: truth(v, "enabled", true),
            all: truth(v, "all", false),
            vmids: vmid_list(text(v, "vmid")),
            exclude: vmid_list(text(v, "exclude")),
            node: text(v, "node"),
            pool: text(v, "pool"),
        }
    }

    /// Whether this job, enabled, backs `g` up (a pool job cannot tell without the pool's members).
    pub fn covers(&self, g: &Guest) -> bool {
        self.enabled
            && self.node.as_deref().is_none_or(|n| n == g.node)
            && (self.vmids.contains(&g.vmid) || (self.all && !self.exclude.contains(&g.vmid)))
    }

    fn ids(list: &[u32]) -> String {
        list.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// What it selects, in English (the JSON's words).
    fn selection_en(&self) -> String {
        if let Some(p) = &self.pool {
            format!("the guests of pool {p}")
        } else if self.all && self.exclude.is_empty() {
            "all guests".to_owned()
        } else if self.all {
            format!("all guests except {}", Self::ids(&self.exclude))
        } else {
            format!("guests {}", Self::ids(&self.vmids))
        }
    }

    /// What it selects, in the report's words.
    pub fn selection(&self, w: &crate::words::Words) -> String {
        if let Some(p) = &self.pool {
            format!("{} {p}", w.pool)
        } else if self.all && self.exclude.is_empty() {
            w.all_guests.clone()
        } else if self.all {
            format!("{} {} {}", w.all_guests, w.except, Self::ids(&self.exclude))
        } else {
            format!("{} {}", w.guests, Self::ids(&self.vmids))
        }
    }
}

/// One finding of `--full` on a node, for the text report's sections and rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A backup job (WARNING when disabled).
    Job(BackupJob),
    /// The node has no backup job at all.
    NoJob {
        /// The node.
        node: String,
    },
    /// The jobs could not be read.
    JobsUnreadable {
        /// The node.
        node: String,
        /// Why.
        error: String,
    },
    /// A guest no enabled job backs up.
    Uncovered {
        /// The guest.
        guest: GuestRef,
        /// Enabled jobs that select a pool (they may cover it).
        pools: Vec<String>,
    },
    /// A running guest and whether it answered.
    Reach {
        /// The guest.
        guest: GuestRef,
        /// The command asked on the node.
        command: String,
        /// The answer.
        reach: Reach,
    },
}

impl Finding {
    /// OK, WARNING or ERROR.
    pub fn status(&self) -> Status {
        match self {
            Finding::Job(j) if j.enabled => Status::Ok,
            Finding::Reach {
                reach: Reach::Answers,
                ..
            } => Status::Ok,
            Finding::JobsUnreadable { .. } => Status::Fail,
            _ => Status::Warn,
        }
    }

    /// Whether it belongs to the connectivity section (else to the jobs one).
    pub fn is_connectivity(&self) -> bool {
        matches!(self, Finding::Reach { .. })
    }

    fn subject(&self) -> String {
        match self {
            Finding::Job(j) => format!("job {}", j.id),
            Finding::NoJob { node } | Finding::JobsUnreadable { node, .. } => node.clone(),
            Finding::Uncovered { guest, .. } | Finding::Reach { guest, .. } => guest.subject(),
        }
    }

    fn reason_en(&self) -> String {
        match self {
            Finding::Job(j) => format!(
                "{}schedule {}, storage {}, mode {}, {}",
                if j.enabled { "" } else { "disabled: " },
                j.schedule.as_deref().unwrap_or("-"),
                j.storage.as_deref().unwrap_or("-"),
                j.mode.as_deref().unwrap_or("-"),
                j.selection_en()
            ),
            Finding::NoJob { .. } => {
                "no backup job (pvesh get /cluster/backup lists none)".to_owned()
            }
            Finding::JobsUnreadable { error, .. } => format!("backup jobs not read: {error}"),
            Finding::Uncovered { pools, .. } if pools.is_empty() => {
                "in no enabled backup job".to_owned()
            }
            Finding::Uncovered { pools, .. } => format!(
                "in no enabled backup job by id or `all` (jobs of pool {} not resolved)",
                pools.join(", ")
            ),
            Finding::Reach {
                command,
                reach: Reach::Answers,
                ..
            } => format!("{command}: answers"),
            Finding::Reach {
                reach: Reach::NoAgent,
                ..
            } => "no QEMU guest agent configured: whether it answers cannot be checked".to_owned(),
            Finding::Reach {
                command,
                reach: Reach::Silent(why),
                ..
            } => format!("{command}: no answer: {why}"),
        }
    }

    /// Adds it to the `services` component.
    pub fn record(&self, comp: &mut Component) {
        let check = if self.is_connectivity() {
            CheckName::Connectivity
        } else {
            CheckName::BackupJob
        };
        comp.add(&self.subject(), check, self.status(), self.reason_en());
    }
}

/// The guests `--full` looks at: those the coverage check counts (`--vmid`, templates only with
/// `--include-templates`).
fn counted<'a>(config: &'a Config, inv: &'a Inventory) -> impl Iterator<Item = &'a Guest> {
    inv.guests.iter().filter(|g| {
        (config.vmids.is_empty() || config.vmids.contains(&g.vmid))
            && (!g.template || config.include_templates)
    })
}

/// The jobs and the guests they leave out.
pub fn jobs(config: &Config, node: &mut Node<'_>, inv: &Inventory) -> Vec<Finding> {
    let jobs: Vec<BackupJob> = match node.backup_jobs() {
        Ok(list) => list.iter().map(BackupJob::from_value).collect(),
        Err(e) => {
            return vec![Finding::JobsUnreadable {
                node: inv.node_label.clone(),
                error: format!("{e:#}"),
            }];
        }
    };
    let mut out: Vec<Finding> = Vec::new();
    if jobs.is_empty() {
        out.push(Finding::NoJob {
            node: inv.node_label.clone(),
        });
    }
    let pools: Vec<String> = jobs
        .iter()
        .filter(|j| j.enabled)
        .filter_map(|j| j.pool.clone())
        .collect();
    for g in counted(config, inv) {
        if !jobs.iter().any(|j| j.covers(g)) && !jobs.is_empty() {
            out.push(Finding::Uncovered {
                guest: GuestRef::of(g),
                pools: pools.clone(),
            });
        }
    }
    let mut listed: Vec<Finding> = jobs.into_iter().map(Finding::Job).collect();
    listed.append(&mut out);
    listed
}

/// Whether every running guest answers.
pub fn connectivity(config: &Config, node: &mut Node<'_>, inv: &Inventory) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in counted(config, inv).filter(|g| g.running && !g.template) {
        let guest = GuestRef::of(g);
        let finding = match node.reach(&g.kind, g.vmid) {
            Ok((command, reach)) => Finding::Reach {
                guest,
                command,
                reach,
            },
            Err(e) => Finding::Reach {
                guest,
                command: "ssh".to_owned(),
                reach: Reach::Silent(e.to_string()),
            },
        };
        out.push(finding);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(vmid: u32, node: &str) -> Guest {
        Guest {
            vmid,
            kind: "qemu".into(),
            name: String::new(),
            node: node.into(),
            template: false,
            running: true,
        }
    }

    #[test]
    fn coverage_by_id_all_exclude_node_and_enabled() {
        let job = |v: Value| BackupJob::from_value(&v);
        let all = job(serde_json::json!({"id": "a", "all": 1, "exclude": "101,102"}));
        assert!(all.covers(&guest(100, "pve")));
        assert!(!all.covers(&guest(101, "pve")));
        let ids = job(serde_json::json!({"id": "b", "vmid": "100 103", "enabled": "1"}));
        assert!(ids.covers(&guest(103, "pve")) && !ids.covers(&guest(101, "pve")));
        let off = job(serde_json::json!({"id": "c", "all": 1, "enabled": 0}));
        assert!(!off.covers(&guest(100, "pve")));
        let other = job(serde_json::json!({"id": "d", "all": true, "node": "pve2"}));
        assert!(!other.covers(&guest(100, "pve")) && other.covers(&guest(100, "pve2")));
        let pool = job(serde_json::json!({"id": "e", "pool": "prod"}));
        assert!(!pool.covers(&guest(100, "pve")));
        let old =
            job(serde_json::json!({"id": "f", "dow": "sun", "starttime": "01:00", "vmid": 7}));
        assert_eq!(old.schedule.as_deref(), Some("sun 01:00"));
        assert_eq!(old.vmids, vec![7]);
    }

    #[test]
    fn statuses() {
        let j = BackupJob::from_value(&serde_json::json!({"id": "a", "enabled": 0}));
        assert_eq!(Finding::Job(j).status(), Status::Warn);
        let g = GuestRef {
            kind: "lxc".into(),
            vmid: 101,
            name: "pihole".into(),
        };
        assert_eq!(g.label(), "CT 101 (pihole)");
        let ok = Finding::Reach {
            guest: g.clone(),
            command: "pct exec 101 -- true".into(),
            reach: Reach::Answers,
        };
        assert_eq!(ok.status(), Status::Ok);
        let no = Finding::Reach {
            guest: g,
            command: String::new(),
            reach: Reach::NoAgent,
        };
        assert_eq!(no.status(), Status::Warn);
    }
}
