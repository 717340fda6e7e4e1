//! The replaced script's report, the one its callers read: "RAPPORT DE VERIFICATION DES SAUVEGARDES", a
//! table "Type | Composant | Statut | Dernier backup | Details" with one row per guest (vzdump) and per
//! Terraform state (minio), then "RESUME" with the counts the TUI parses ("Warnings: N", "Erreurs: N").
//! The rows are derived from the full report, so every failed or warned check of our extra components
//! lands in the row of its guest (or in a row of its own) and decides the exit code: 0 all OK,
//! 1 warnings, 2 errors.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::config::Config;
use crate::full::{Finding, Reach};

use crate::report::{
    BackupResult, Check, CheckName, Component, ComponentName, EnvResult, GuestResult, Report,
    Status,
};
use crate::words::Words;

/// How the run ends, as the replaced script's exit code says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every row OK (exit 0).
    Ok,
    /// At least one WARNING and no ERROR (exit 1).
    Warnings,
    /// At least one ERROR (exit 2).
    Errors,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// `vzdump`, `minio` or `service` (--full).
    pub kind: String,
    /// The guest, bucket or service.
    pub component: String,
    /// OK, WARNING or ERROR.
    pub status: Status,
    /// Time of the newest backup or state version (epoch seconds).
    pub last: Option<i64>,
    /// Size, or what is wrong.
    pub details: String,
}

/// `OK`, `WARNING`, `ERROR`.
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Ok | Status::Info => "OK",
        Status::Warn => "WARNING",
        Status::Fail => "ERROR",
    }
}

/// Sizes as the script prints them: KB below a megabyte, MB above.
pub fn human_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b < MB {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / MB)
    }
}

fn when(epoch: Option<i64>) -> String {
    epoch
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map_or_else(
            || "-".to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
        )
}

fn hours(secs: i64) -> String {
    format!("{}h", secs.max(0) / 3600)
}

/// The rows of a finished report: node problems, guests, archives of a folder, states, services.
pub fn rows(report: &Report, config: &Config, w: &Words) -> Vec<Row> {
    let mut out = component_rows(report, w);
    let several_nodes = config.targets.len() > 1;
    let max_age = i64::try_from(config.max_age.as_secs()).unwrap_or(i64::MAX);
    out.extend(
        report
            .guests
            .iter()
            .map(|g| guest_row(report, g, several_nodes, max_age, w)),
    );
    if config.targets.is_empty() && config.local.is_set() {
        // A folder checked with no node: one row per archive, as there is no guest to hang it on.
        out.extend(report.backups.iter().map(archive_row));
    }
    out.extend(state_rows(report, w));
    for f in &report.findings {
        out.push(finding_row(f, w));
    }
    out.extend(service_rows(report));
    out
}

impl Row {
    /// A row of its own for a check that has no guest or environment to land in.
    fn of_check(kind: &str, ch: &Check) -> Row {
        Row {
            kind: kind.into(),
            component: ch.subject.clone(),
            status: ch.status,
            last: None,
            details: ch.reason.clone(),
        }
    }
}

fn warned_or_failed(status: Status) -> bool {
    matches!(status, Status::Warn | Status::Fail)
}

/// The node-wide problems of the coverage check, and the archive checks that are not about one backup.
fn component_rows(report: &Report, w: &Words) -> Vec<Row> {
    let known_volids: BTreeSet<&str> = report.backups.iter().map(|b| b.volid.as_str()).collect();
    let mut out = Vec::new();
    for c in &report.components {
        match c.name {
            ComponentName::Coverage => {
                for ch in c
                    .checks
                    .iter()
                    .filter(|ch| ch.check != CheckName::Freshness && warned_or_failed(ch.status))
                {
                    let mut row = Row::of_check("vzdump", ch);
                    if ch.check == CheckName::Connect {
                        row.details = format!("{}: {}", w.unreachable, ch.reason);
                    }
                    out.push(row);
                }
            }
            ComponentName::Archives
            | ComponentName::Integrity
            | ComponentName::Bitrot
            | ComponentName::Pbs => {
                // Per-backup lines land in their guest's row; the others (the manifest) get their own.
                out.extend(
                    c.checks
                        .iter()
                        .filter(|ch| !known_volids.contains(ch.subject.as_str()))
                        .filter(|ch| warned_or_failed(ch.status))
                        .map(|ch| Row::of_check("vzdump", ch)),
                );
            }
            _ => {}
        }
    }
    out
}

/// `VM 100 (name)`, with ` @node [env]` when several nodes are checked.
fn guest_component(g: &GuestResult, several_nodes: bool) -> String {
    let kind = if g.kind == "lxc" { "CT" } else { "VM" };
    let mut component = if g.name.is_empty() {
        format!("{kind} {}", g.vmid)
    } else {
        format!("{kind} {} ({})", g.vmid, g.name)
    };
    if several_nodes && let Some(node) = g.node.as_deref().filter(|n| !n.is_empty()) {
        component.push_str(&format!(" @{node}"));
        if let Some(env) = &g.environment {
            component.push_str(&format!(" [{env}]"));
        }
    }
    component
}

/// A guest's row: what is wrong with its newest backup, or its size.
fn guest_row(
    report: &Report,
    g: &GuestResult,
    several_nodes: bool,
    max_age: i64,
    w: &Words,
) -> Row {
    let newest = report
        .backups
        .iter()
        .find(|b| b.vmid == g.vmid && Some(&b.volid) == g.newest_volid.as_ref());
    let mut parts: Vec<String> = Vec::new();
    if g.backups == 0 {
        parts.push(w.no_backup.clone());
    } else {
        let missing = newest.is_some_and(|b| {
            b.checks.iter().any(|c| {
                c.check == CheckName::Size
                    && c.status == Status::Fail
                    && c.reason.contains("missing")
            })
        });
        if missing {
            parts.push(w.file_missing.clone());
        }
        if let Some(age) = g.age_seconds.filter(|a| *a > max_age) {
            parts.push(format!("{} ({})", w.too_old, hours(age)));
        }
        if let Some(b) = newest {
            for ch in b.checks.iter().filter(|c| warned_or_failed(c.status)) {
                if ch.check == CheckName::Size && ch.status == Status::Warn {
                    parts.push(w.too_small.clone());
                } else if !(missing && ch.check == CheckName::Size) {
                    parts.push(format!("{}: {}", ch.check, ch.reason));
                }
            }
            if !missing {
                parts.push(human_size(b.size));
            }
        }
    }
    Row {
        kind: "vzdump".into(),
        component: guest_component(g, several_nodes),
        status: g.status.worst(Status::Ok),
        last: g.newest_ctime,
        details: parts.join(", "),
    }
}

/// An archive's row, when a folder is checked with no node.
fn archive_row(b: &BackupResult) -> Row {
    let mut parts: Vec<String> = b
        .checks
        .iter()
        .filter(|c| warned_or_failed(c.status))
        .map(|c| format!("{}: {}", c.check, c.reason))
        .collect();
    parts.push(human_size(b.size));
    Row {
        kind: "vzdump".into(),
        component: b.volid.clone(),
        status: b.status.worst(Status::Ok),
        last: Some(b.ctime),
        details: parts.join(", "),
    }
}

/// One row per environment's state, then the state checks about no environment.
fn state_rows(report: &Report, w: &Words) -> Vec<Row> {
    let state = report
        .components
        .iter()
        .find(|c| c.name == ComponentName::Tfstate);
    let mut out: Vec<Row> = report
        .environments
        .iter()
        .map(|e| env_row(report, state, e, w))
        .collect();
    if let Some(c) = state {
        let envs: BTreeSet<&str> = report.environments.iter().map(|e| e.env.as_str()).collect();
        out.extend(
            c.checks
                .iter()
                .filter(|ch| !envs.contains(ch.subject.as_str()))
                .filter(|ch| warned_or_failed(ch.status))
                .map(|ch| Row::of_check("minio", ch)),
        );
    }
    out
}

/// An environment's row: its state's problems, size and number of versions.
fn env_row(report: &Report, state: Option<&Component>, e: &EnvResult, w: &Words) -> Row {
    let mut parts: Vec<String> = state
        .map(|c| {
            c.checks
                .iter()
                .filter(|ch| ch.subject == e.env && warned_or_failed(ch.status))
                .map(|ch| {
                    if ch.check == CheckName::Bucket {
                        format!("{}: {}", w.no_bucket, ch.reason)
                    } else if ch.check == CheckName::State && e.json_valid == Some(false) {
                        format!("{}: {}", w.invalid_json, ch.reason)
                    } else {
                        ch.reason.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(size) = e.size_bytes {
        parts.push(human_size(size));
    }
    if let Some(n) = e.versions {
        parts.push(format!("{n} {}", w.versions));
    }
    Row {
        kind: "minio".into(),
        component: e
            .bucket
            .clone()
            .unwrap_or_else(|| format!("tfstate-{}", e.env)),
        status: e.status.worst(Status::Ok),
        last: e.age_seconds.map(|a| report.started_epoch - a),
        details: parts.join(", "),
    }
}

/// The DR services' rows (`--full`). The node's part is in the rows of the findings; a service without
/// a URL was not checked.
fn service_rows(report: &Report) -> Vec<Row> {
    let Some(c) = report
        .components
        .iter()
        .find(|c| c.name == ComponentName::Services)
    else {
        return Vec::new();
    };
    c.checks
        .iter()
        .filter(|ch| {
            !matches!(ch.check, CheckName::BackupJob | CheckName::Connectivity)
                && ch.status != Status::Info
        })
        .map(|ch| Row {
            kind: if ch.subject == "minio" {
                "minio"
            } else {
                "service"
            }
            .into(),
            component: format!("{} ({})", ch.subject, ch.check),
            status: ch.status.worst(Status::Ok),
            last: None,
            details: ch.reason.clone(),
        })
        .collect()
}

/// What a `--full` finding says, in the report's words.
fn finding_details(f: &Finding, w: &Words) -> String {
    match f {
        Finding::Job(j) => {
            let what = format!(
                "{} {}, {} {}, mode {}, {}",
                w.schedule,
                j.schedule.as_deref().unwrap_or("-"),
                w.storage,
                j.storage.as_deref().unwrap_or("-"),
                j.mode.as_deref().unwrap_or("-"),
                j.selection(w)
            );
            if j.enabled {
                what
            } else {
                format!("{}: {what}", w.job_disabled)
            }
        }
        Finding::NoJob { .. } => w.no_job.clone(),
        Finding::JobsUnreadable { error, .. } => format!("{}: {error}", w.jobs_unreadable),
        Finding::Uncovered { pools, .. } if pools.is_empty() => w.not_covered.clone(),
        Finding::Uncovered { pools, .. } => format!(
            "{} ({}: {})",
            w.not_covered,
            w.pools_unresolved,
            pools.join(", ")
        ),
        Finding::Reach {
            command,
            reach: Reach::Answers,
            ..
        } => format!("{command}: {}", w.answers),
        Finding::Reach {
            reach: Reach::NoAgent,
            ..
        } => w.no_agent.clone(),
        Finding::Reach {
            command,
            reach: Reach::Silent(why),
            ..
        } => format!("{}: {command}: {why}", w.silent),
    }
}

fn finding_component(f: &Finding) -> String {
    match f {
        Finding::Job(j) => j.id.clone(),
        Finding::NoJob { node } | Finding::JobsUnreadable { node, .. } => node.clone(),
        Finding::Uncovered { guest, .. } | Finding::Reach { guest, .. } => guest.label(),
    }
}

/// The row of a `--full` finding: `job` for the backup jobs, `guest` for the connectivity.
pub fn finding_row(f: &Finding, w: &Words) -> Row {
    Row {
        kind: if f.is_connectivity() { "guest" } else { "job" }.into(),
        component: finding_component(f),
        status: f.status(),
        last: None,
        details: finding_details(f, w),
    }
}

/// The `--full` sections printed before the report: the backup jobs, then "Verification de la
/// connectivite" (the heading callers look for), one `Composant | Statut | Details` line per finding.
pub fn render_full(findings: &[Finding], w: &Words) -> String {
    let mut out = String::new();
    for (title, connectivity) in [(&w.jobs_title, false), (&w.connectivity, true)] {
        let _ = writeln!(out, "{title}\n{}", "-".repeat(title.len()));
        let _ = writeln!(
            out,
            "{} | {} | {}",
            w.columns[1], w.columns[2], w.columns[4]
        );
        for f in findings
            .iter()
            .filter(|f| f.is_connectivity() == connectivity)
        {
            let _ = writeln!(
                out,
                "{} | {} | {}",
                pve_common::output::escape(&finding_component(f)),
                status_label(f.status()),
                pve_common::output::escape(&finding_details(f, w))
            );
        }
        out.push('\n');
    }
    out
}

/// The verdict of a set of rows.
pub fn verdict(rows: &[Row]) -> Verdict {
    if rows.iter().any(|r| r.status == Status::Fail) {
        Verdict::Errors
    } else if rows.iter().any(|r| r.status == Status::Warn) {
        Verdict::Warnings
    } else {
        Verdict::Ok
    }
}

/// The report text: title, table, RESUME.
pub fn render(rows: &[Row], w: &Words) -> String {
    let mut out = String::new();
    let rule = "=".repeat(w.report_title.len());
    let _ = writeln!(out, "{rule}\n{}\n{rule}\n", w.report_title);
    let _ = writeln!(out, "{}", w.columns.join(" | "));
    let _ = writeln!(out, "{}", "-".repeat(w.columns.join(" | ").len()));
    for r in rows {
        let _ = writeln!(
            out,
            "{} | {} | {} | {} | {}",
            r.kind,
            // Guest names, notes and messages come from the node: one escaped line each.
            pve_common::output::escape(&r.component),
            status_label(r.status),
            when(r.last),
            if r.details.is_empty() {
                "-".into()
            } else {
                pve_common::output::escape(&r.details)
            }
        );
    }
    let count = |s: Status| {
        rows.iter()
            .filter(|r| r.status.worst(Status::Ok) == s)
            .count()
    };
    let _ = writeln!(out, "\n{}", w.summary);
    let _ = writeln!(out, "{}: {}", w.total, rows.len());
    let _ = writeln!(out, "OK: {}", count(Status::Ok));
    let _ = writeln!(out, "Warnings: {}", count(Status::Warn));
    let _ = writeln!(out, "{}: {}", w.errors, count(Status::Fail));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Status) -> Row {
        Row {
            kind: "vzdump".into(),
            component: "VM 100".into(),
            status,
            last: Some(0),
            details: String::new(),
        }
    }

    #[test]
    fn verdict_is_the_worst_row() {
        assert_eq!(verdict(&[]), Verdict::Ok);
        assert_eq!(
            verdict(&[row(Status::Ok), row(Status::Warn)]),
            Verdict::Warnings
        );
        assert_eq!(
            verdict(&[row(Status::Fail), row(Status::Warn)]),
            Verdict::Errors
        );
    }

    #[test]
    fn sizes_in_kb_and_mb() {
        assert_eq!(human_size(4 * 1024), "4.0 KB");
        assert_eq!(human_size(3 * 1024 * 1024 / 2), "1.5 MB");
    }

    #[test]
    fn report_words_french_and_english() {
        let fr = render(
            &[row(Status::Ok), row(Status::Warn), row(Status::Fail)],
            &crate::words::words(true),
        );
        for needle in [
            "RAPPORT DE VERIFICATION DES SAUVEGARDES",
            "Type | Composant | Statut | Dernier backup | Details",
            "RESUME",
            "Total verifie: 3",
            "OK: 1",
            "Warnings: 1",
            "Erreurs: 1",
            "vzdump | VM 100 | WARNING | 1970-01-01 00:00 | -",
        ] {
            assert!(fr.contains(needle), "{needle} missing from\n{fr}");
        }
        let en = render(&[row(Status::Ok)], &crate::words::words(false));
        assert!(
            en.contains("BACKUP VERIFICATION REPORT") && en.contains("Errors: 0"),
            "{en}"
        );
    }
}
