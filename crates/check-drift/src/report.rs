//! The run's result: the `pve-drift/v1` JSON document (`docs/json/check-drift.md`) and the text report.
//!
//! Both are built from the same [`Report`]. The text report is a table (one row per environment) followed by
//! the details of each environment, dangerous changes first; it is coloured only when asked to be (the
//! caller resolves `--color` against stdout being a terminal).

use std::fmt::Write as _;

use pve_common::output::{ToolInfo, escape};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{
    Action, AttributeChange, Origin, OutputReport, ResourceReport, Risk, SENSITIVE, UNKNOWN,
    UnplannedDrift,
};
use crate::terraform::{ErrorKind, LockInfo};

/// The `schema` value of the JSON document.
pub const SCHEMA: &str = "pve-drift/v1";

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// check-drift's name and version.
    pub tool: ToolInfo,
    /// The Terraform/OpenTofu used.
    pub terraform: TerraformInfo,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// Counts of environments by status.
    pub summary: Summary,
    /// One entry per environment checked, in name order.
    pub environments: Vec<EnvReport>,
}

/// The Terraform/OpenTofu binary and its version.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TerraformInfo {
    /// Path or name of the binary (null when none was found).
    pub binary: Option<String>,
    /// `1.11.4` (null when unknown).
    pub version: Option<String>,
}

/// Environments by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Checked.
    pub environments: usize,
    /// Nothing to do.
    pub in_sync: usize,
    /// Drift (not ignored) found.
    pub drift: usize,
    /// Could not be checked.
    pub error: usize,
}

/// Status of one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No resource change (output changes and ignored changes do not count).
    InSync,
    /// At least one resource change not ignored.
    Drift,
    /// Could not be checked.
    Error,
}

impl Status {
    /// `in_sync`, `drift` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InSync => "in_sync",
            Status::Drift => "drift",
            Status::Error => "error",
        }
    }
}

/// Resource changes by action (ignored ones counted apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// `+`.
    pub create: usize,
    /// `~`.
    pub update: usize,
    /// `-`.
    pub delete: usize,
    /// `-/+`.
    pub replace: usize,
    /// Covered by ignore rules.
    pub ignored: usize,
}

/// Resource changes (not ignored) by origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origins {
    /// Changed outside Terraform.
    pub drift: usize,
    /// Configuration not applied.
    pub pending: usize,
    /// Both.
    pub both: usize,
}

/// Why an environment could not be checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvError {
    /// Classification.
    pub kind: ErrorKind,
    /// What happened, with the first useful lines of Terraform's stderr (secrets masked).
    pub message: String,
    /// Who holds the state lock (kind `lock` only, when Terraform said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockInfo>,
}

/// One environment's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvReport {
    /// Folder name.
    pub env: String,
    /// The Proxmox node its tfvars name (`default_node`, else `pve_node`; in the homelab's layout the root
    /// tfvars' node when the environment names none); absent when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// in_sync, drift or error.
    pub status: Status,
    /// `terraform plan -detailed-exitcode` status (null when plan did not run to an exit).
    pub exit_code: Option<i32>,
    /// Wall time of init + plan + show.
    pub duration_ms: u64,
    /// Changes by action.
    pub counts: Counts,
    /// Changes (not ignored) by origin.
    pub origins: Origins,
    /// Changed resources, dangerous first, then by address.
    pub resources: Vec<ResourceReport>,
    /// Root outputs that would change (never drift by themselves).
    pub output_changes: Vec<OutputReport>,
    /// Changed outside Terraform but left alone by the plan (ignore_changes, computed values).
    pub unplanned_drift: Vec<UnplannedDrift>,
    /// Why it could not be checked (null unless status is error).
    pub error: Option<EnvError>,
    /// Terraform's plan text (for the report files only; not part of the JSON document).
    #[serde(skip)]
    pub plan_text: Option<String>,
}

impl EnvReport {
    /// A result with changes: counts, origins and status derived from `resources`.
    pub fn checked(
        env: &str,
        exit_code: Option<i32>,
        mut resources: Vec<ResourceReport>,
        output_changes: Vec<OutputReport>,
        unplanned_drift: Vec<UnplannedDrift>,
    ) -> EnvReport {
        resources
            .sort_by(|a, b| (a.ignored, a.risk, &a.address).cmp(&(b.ignored, b.risk, &b.address)));
        let mut counts = Counts::default();
        let mut origins = Origins::default();
        for r in &resources {
            if r.ignored {
                counts.ignored += 1;
                continue;
            }
            match r.action {
                Action::Create => counts.create += 1,
                Action::Update => counts.update += 1,
                Action::Delete => counts.delete += 1,
                Action::Replace => counts.replace += 1,
            }
            match r.origin {
                Origin::Drift => origins.drift += 1,
                Origin::Pending => origins.pending += 1,
                Origin::Both => origins.both += 1,
            }
        }
        let drift = resources.iter().any(|r| !r.ignored);
        EnvReport {
            env: env.to_owned(),
            node: None,
            status: if drift { Status::Drift } else { Status::InSync },
            exit_code,
            duration_ms: 0,
            counts,
            origins,
            resources,
            output_changes,
            unplanned_drift,
            error: None,
            plan_text: None,
        }
    }

    /// A result for an environment that could not be checked.
    pub fn failed(env: &str, exit_code: Option<i32>, error: EnvError) -> EnvReport {
        EnvReport {
            status: Status::Error,
            error: Some(error),
            ..EnvReport::checked(env, exit_code, Vec::new(), Vec::new(), Vec::new())
        }
    }
}

impl Summary {
    /// Counts `environments` by status.
    pub fn of(environments: &[EnvReport]) -> Summary {
        let mut s = Summary {
            environments: environments.len(),
            ..Summary::default()
        };
        for e in environments {
            match e.status {
                Status::InSync => s.in_sync += 1,
                Status::Drift => s.drift += 1,
                Status::Error => s.error += 1,
            }
        }
        s
    }
}

struct Paint {
    on: bool,
}

impl Paint {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) if s == SENSITIVE || s == UNKNOWN => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn duration_text(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn origin_text(o: &Origins) -> String {
    let parts: Vec<String> = [("drift", o.drift), ("pending", o.pending), ("both", o.both)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

fn origin_label(o: Origin) -> &'static str {
    match o {
        Origin::Drift => "drift: changed outside Terraform",
        Origin::Pending => "pending: configuration not applied",
        Origin::Both => "both: changed outside Terraform and configuration not applied",
    }
}

/// The text report: the table, then the details of every environment that is not in sync.
/// The summary check-drift.sh ended with, in the language in force: a heading, then one row per
/// environment under "Environnement Statut Details" (statuses Conforme, DRIFT, ERREUR; details
/// "N ressource(s)", "Aucun drift", or the error's kind).
pub fn render_summary(report: &Report) -> String {
    let rows: Vec<[String; 3]> = report
        .environments
        .iter()
        .map(|e| {
            let changed = e.counts.create + e.counts.update + e.counts.delete + e.counts.replace;
            match e.status {
                Status::InSync => [
                    e.env.clone(),
                    pve_common::tr!("check_drift.status_in_sync"),
                    pve_common::tr!("check_drift.details_no_drift"),
                ],
                Status::Drift => [
                    e.env.clone(),
                    pve_common::tr!("check_drift.status_drift"),
                    pve_common::tr!("check_drift.details_resources", count = changed),
                ],
                Status::Error => [
                    e.env.clone(),
                    pve_common::tr!("check_drift.status_error"),
                    e.error
                        .as_ref()
                        .map(|err| err.kind.as_str().to_owned())
                        .unwrap_or_default(),
                ],
            }
        })
        .collect();
    summary_table(&rows)
}

/// The summary of a dry-run: every environment that would be checked, details "dry-run".
pub fn render_dry_run_summary(envs: &[String]) -> String {
    let rows: Vec<[String; 3]> = envs
        .iter()
        .map(|env| {
            [
                env.clone(),
                pve_common::tr!("check_drift.status_in_sync"),
                pve_common::tr!("check_drift.details_dry_run"),
            ]
        })
        .collect();
    summary_table(&rows)
}

fn summary_table(rows: &[[String; 3]]) -> String {
    let header = [
        pve_common::tr!("check_drift.col_env"),
        pve_common::tr!("check_drift.col_status"),
        pve_common::tr!("check_drift.col_details"),
    ];
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 3]| {
        format!(
            "{:<w0$}  {:<w1$}  {}",
            cells[0],
            cells[1],
            cells[2],
            w0 = widths[0],
            w1 = widths[1]
        )
        .trim_end()
        .to_owned()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", pve_common::tr!("check_drift.summary_title"));
    let _ = writeln!(out, "{}", line(&header));
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
    out
}

pub fn render_text(report: &Report, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = env_table(report, &p);
    for e in &report.environments {
        if e.status == Status::InSync && e.resources.is_empty() && e.output_changes.is_empty() {
            continue;
        }
        render_env(&mut out, e, &p);
    }
    out
}

/// The table of environments, one line each, and the summary line.
fn env_table(report: &Report, p: &Paint) -> String {
    let header = [
        "ENV",
        "STATUS",
        "+CREATE",
        "~UPDATE",
        "-DELETE",
        "-/+REPLACE",
        "IGNORED",
        "ORIGIN",
        "DURATION",
    ];
    let rows: Vec<[String; 9]> = report
        .environments
        .iter()
        .map(|e| {
            [
                e.env.clone(),
                e.status.as_str().to_owned(),
                e.counts.create.to_string(),
                e.counts.update.to_string(),
                e.counts.delete.to_string(),
                e.counts.replace.to_string(),
                e.counts.ignored.to_string(),
                origin_text(&e.origins),
                duration_text(e.duration_ms),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], status: Option<Status>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            let numeric = (2..=6).contains(&i);
            let padded = if numeric {
                format!("{cell:>w$}")
            } else {
                format!("{cell:<w$}")
            };
            let padded = match (i, status) {
                (1, Some(Status::InSync)) => p.paint("32", &padded),
                (1, Some(Status::Drift)) => p.paint("33", &padded),
                (1, Some(Status::Error)) => p.paint("1;31", &padded),
                _ => padded,
            };
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&padded);
        }
        s.trim_end().to_owned()
    };
    let header_cells: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let _ = writeln!(out, "{}", line(&header_cells, None));
    for (row, e) in rows.iter().zip(&report.environments) {
        let _ = writeln!(out, "{}", line(row, Some(e.status)));
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} environment(s): {} in sync, {} drift, {} error",
        s.environments, s.in_sync, s.drift, s.error
    );
    out
}

/// What an environment that is not plainly in sync shows under the table.
fn render_env(out: &mut String, e: &EnvReport, p: &Paint) {
    match &e.node {
        Some(node) => {
            let _ = writeln!(
                out,
                "\n== {} ({}, node {node}) ==",
                e.env,
                e.status.as_str()
            );
        }
        None => {
            let _ = writeln!(out, "\n== {} ({}) ==", e.env, e.status.as_str());
        }
    }
    if let Some(err) = &e.error {
        render_error(out, &e.env, err, p);
    }
    for r in &e.resources {
        render_resource(out, r, p);
    }
    if !e.output_changes.is_empty() {
        let _ = writeln!(out, "  outputs (not drift by themselves):");
        for o in &e.output_changes {
            let _ = writeln!(
                out,
                "    {} {}: {} -> {}",
                o.action.symbol(),
                o.name,
                value_text(&o.before),
                value_text(&o.after)
            );
        }
    }
}

/// An environment's error: its kind, Terraform's words and, for a held lock, its holder and how to clear it.
fn render_error(out: &mut String, env: &str, err: &EnvError, p: &Paint) {
    let _ = writeln!(out, "  {} {}", p.paint("1;31", "error:"), err.kind.as_str());
    // Terraform's words and the lock holder's fields are text from outside: escaped.
    for l in err.message.lines() {
        let _ = writeln!(out, "    {}", escape(l));
    }
    if let Some(lock) = &err.lock {
        let field = |v: &Option<String>| escape(v.as_deref().unwrap_or("?")).into_owned();
        let age = lock.age_seconds.map_or_else(String::new, |s| {
            format!(
                ", {} ago",
                humantime::format_duration(std::time::Duration::from_secs(s))
            )
        });
        let _ = writeln!(
            out,
            "    lock held by {} since {}{age} (ID {}, operation {})",
            field(&lock.who),
            field(&lock.created),
            field(&lock.id),
            field(&lock.operation)
        );
        // A killed run's Terraform leaves the lock: how to clear it, once its holder is gone.
        if let Some(id) = &lock.id {
            let id = escape(id);
            let _ = writeln!(
                out,
                "    if that run is gone: `terraform force-unlock {id}` in the environment's folder, \
                 or `restore-tfstate --env {} --force-unlock {id}`",
                escape(env)
            );
        }
    }
}

fn render_resource(out: &mut String, r: &ResourceReport, p: &Paint) {
    let symbol = format!("{:>3}", r.action.symbol());
    let mut head = format!("  {symbol} {}  [{}]", r.address, origin_label(r.origin));
    if r.risk == Risk::Dangerous {
        let why = r.risk_reason.as_deref().unwrap_or("dangerous");
        head = format!(
            "{}  {}",
            head,
            p.paint("1;31", &format!("DANGEROUS: {why}"))
        );
    }
    if let Some(reason) = &r.action_reason {
        head.push_str(&format!(" ({reason})"));
    }
    if r.ignored {
        head = format!(
            "{}  ignored by {}",
            p.paint("2", &head),
            r.ignored_by.join(", ")
        );
    }
    let _ = writeln!(out, "{head}");
    let attr = |out: &mut String, prefix: &str, a: &AttributeChange| {
        let forced = if a.forces_replacement {
            "  # forces replacement"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "        {prefix}{}: {} -> {}{forced}",
            a.path,
            value_text(&a.before),
            value_text(&a.after)
        );
    };
    for a in &r.changed_attributes {
        attr(out, "", a);
    }
    if !r.drifted_attributes.is_empty() {
        let _ = writeln!(out, "        changed outside Terraform (state -> found):");
        for a in &r.drifted_attributes {
            attr(out, "  ", a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{analyze, parse};

    fn sample() -> Report {
        let plan = parse(include_bytes!("../tests/fixtures/plans/bpg_mixed.json")).unwrap();
        let a = analyze(&plan, &Default::default());
        let mut lab = EnvReport::checked(
            "lab",
            Some(2),
            a.resources,
            a.output_changes,
            a.unplanned_drift,
        );
        lab.duration_ms = 3200;
        let prod = EnvReport::checked("prod", Some(0), Vec::new(), Vec::new(), Vec::new());
        let dev = EnvReport::failed(
            "dev",
            Some(1),
            EnvError {
                kind: ErrorKind::Lock,
                message: "Error: Error acquiring the state lock".into(),
                lock: Some(LockInfo {
                    who: Some("ops@bastion".into()),
                    ..LockInfo::default()
                }),
            },
        );
        let environments = vec![dev, lab, prod];
        Report {
            schema: SCHEMA.into(),
            tool: ToolInfo::new("check-drift", "0.1.0"),
            terraform: TerraformInfo::default(),
            started_at: "2026-11-21T20:00:00Z".into(),
            finished_at: "2026-11-21T20:00:04Z".into(),
            summary: Summary::of(&environments),
            environments,
        }
    }

    #[test]
    fn counts_and_order() {
        let r = sample();
        assert_eq!(
            r.summary,
            Summary {
                environments: 3,
                in_sync: 1,
                drift: 1,
                error: 1
            }
        );
        let lab = &r.environments[1];
        assert_eq!(
            lab.counts,
            Counts {
                create: 1,
                update: 4,
                delete: 1,
                replace: 1,
                ignored: 0
            }
        );
        assert_eq!(
            lab.origins,
            Origins {
                drift: 2,
                pending: 4,
                both: 1
            }
        );
        assert!(
            lab.resources[..3].iter().all(|r| r.risk == Risk::Dangerous),
            "dangerous first"
        );
    }

    #[test]
    fn text_report_shows_table_origin_and_details_without_colour() {
        let text = render_text(&sample(), false);
        assert!(!text.contains('\x1b'));
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("ENV   STATUS   +CREATE"));
        assert!(text.contains("lab   drift"), "{text}");
        assert!(text.contains("drift 2, pending 4, both 1"));
        assert!(text.contains("memory.dedicated: 10240 -> 8192"));
        assert!(text.contains("DANGEROUS: destroyed outside Terraform"));
        assert!(text.contains("[drift: changed outside Terraform]"));
        assert!(text.contains("clone.vm_id: 9000 -> 9001  # forces replacement"));
        assert!(text.contains("lock held by ops@bastion"));
        assert!(text.contains("initialization.user_account.password: (sensitive) -> (sensitive)"));
        assert!(!text.contains("Secr3t"));
        assert!(render_text(&sample(), true).contains("\x1b[33m"));
    }

    /// Golden file for the human report; `UPDATE_GOLDEN=1 cargo test -p check-drift` rewrites it.
    #[test]
    fn text_report_matches_golden_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/golden/report.txt"
        );
        let text = render_text(&sample(), false);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text, golden,
            "run with UPDATE_GOLDEN=1 to accept the new output"
        );
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let text = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.environments.len(), 3);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "pve-drift/v1");
        assert_eq!(v["environments"][0]["error"]["kind"], "lock");
        assert_eq!(v["environments"][2]["error"], Value::Null);
        assert_eq!(
            v["environments"][1]["resources"][0]["type"],
            "proxmox_virtual_environment_vm"
        );
    }
}
