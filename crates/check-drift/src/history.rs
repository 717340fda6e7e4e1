//! The drift history in `--report-dir`: per run and environment `drift-YYYY-MM-DD-<env>.log` (the human
//! report of that environment and Terraform's plan text, secrets masked) and `drift-YYYY-MM-DD-<env>.json`
//! (a `pve-drift/v1` document holding that environment only), mode 0640. A later run on the same day
//! replaces that day's files. Retention removes only files of exactly that name pattern; nothing else in
//! the folder is ever touched.
//!
//! [`read`] and [`analyze`] turn the `.json` files back into a timeline: per environment, when drift started
//! and when it was resolved, and per run which resources are new, resolved or still drifted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use jiff::civil::Date;
use pve_common::runner::Runner;
use serde::{Deserialize, Serialize};

use crate::report::{Report, Status, Summary};

/// The `schema` of `check-drift history --json`.
pub const SCHEMA: &str = "pve-drift-history/v1";

/// A report file name taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportName {
    /// The day of the run.
    pub date: Date,
    /// Environment.
    pub env: String,
    /// `log` or `json`.
    pub ext: String,
}

/// `drift-YYYY-MM-DD-<env>.<ext>`.
pub fn file_name(date: Date, env: &str, ext: &str) -> String {
    format!("drift-{date}-{env}.{ext}")
}

/// Parses `drift-YYYY-MM-DD-<env>.log|json`; anything else is not ours.
pub fn parse_name(name: &str) -> Option<ReportName> {
    let rest = name.strip_prefix("drift-")?;
    let (stem, ext) = rest.rsplit_once('.')?;
    if ext != "log" && ext != "json" {
        return None;
    }
    if stem.len() < 12 || !stem.is_char_boundary(10) || stem.as_bytes()[10] != b'-' {
        return None;
    }
    let (date, env) = (&stem[..10], &stem[11..]);
    let shape_ok = date.bytes().enumerate().all(|(i, b)| {
        if i == 4 || i == 7 {
            b == b'-'
        } else {
            b.is_ascii_digit()
        }
    });
    if !shape_ok || crate::config::validate_env_name(env).is_err() {
        return None;
    }
    Some(ReportName {
        date: date.parse().ok()?,
        env: env.to_owned(),
        ext: ext.to_owned(),
    })
}

/// Today, in the local time zone (the day the files are named after).
pub fn today() -> Date {
    jiff::Zoned::now().date()
}

/// The first day still kept with `retention` (files dated before it go).
pub fn cutoff(today: Date, retention: Duration) -> Date {
    let days = i64::try_from(retention.as_secs() / 86_400)
        .unwrap_or(i64::MAX)
        .min(3_000_000);
    today
        .checked_sub(jiff::Span::new().days(days))
        .unwrap_or(Date::MIN)
}

/// Writes one environment's `.log` and `.json` for a run dated `date`.
pub fn write_env(
    runner: &Runner,
    dir: &Path,
    date: Date,
    report: &Report,
    env: &crate::report::EnvReport,
    plan_text: Option<&str>,
) -> anyhow::Result<()> {
    let single = Report {
        summary: Summary::of(std::slice::from_ref(env)),
        environments: vec![env.clone()],
        ..report.clone()
    };
    let mut log = crate::report::render_text(&single, false);
    log.insert_str(
        0,
        &format!(
            "check-drift {} run started {} finished {} (Terraform {})\n\n",
            report.tool.version,
            report.started_at,
            report.finished_at,
            report.terraform.version.as_deref().unwrap_or("unknown")
        ),
    );
    if let Some(plan) = plan_text {
        log.push_str("\n== terraform plan ==\n");
        log.push_str(&pve_common::secret::mask(plan));
        if !plan.ends_with('\n') {
            log.push('\n');
        }
    }
    let mut json = serde_json::to_vec_pretty(&single).context("serialising the report")?;
    json.push(b'\n');
    let log_path = dir.join(file_name(date, &env.env, "log"));
    runner
        .write_file(&log_path, pve_common::secret::mask(&log).as_bytes(), 0o640)
        .with_context(|| format!("writing {}", log_path.display()))?;
    let json_path = dir.join(file_name(date, &env.env, "json"));
    runner
        .write_file(&json_path, &json, 0o640)
        .with_context(|| format!("writing {}", json_path.display()))?;
    Ok(())
}

/// Removes report files dated before `cutoff`; returns how many went. Files not named like ours stay.
pub fn prune(runner: &Runner, dir: &Path, cutoff: Date) -> anyhow::Result<usize> {
    let mut removed = 0;
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut old: Vec<PathBuf> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(parsed) = name.to_str().and_then(parse_name) else {
            continue;
        };
        if parsed.date < cutoff && entry.file_type().is_ok_and(|t| t.is_file()) {
            old.push(entry.path());
        }
    }
    old.sort();
    for path in old {
        runner
            .remove_file(&path)
            .with_context(|| format!("removing the old report {}", path.display()))?;
        removed += 1;
    }
    Ok(removed)
}

/// One run of one environment as read back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    /// Day of the file.
    pub date: String,
    /// When the run finished (RFC 3339).
    pub finished_at: String,
    /// in_sync, drift or error.
    pub status: Status,
    /// Error kind when status is error.
    pub error_kind: Option<String>,
    /// Drifted resources (not ignored): `address (action)`.
    pub resources: Vec<String>,
    /// Drifted now, not in the previous run.
    pub new: Vec<String>,
    /// Drifted in the previous run, not now.
    pub resolved: Vec<String>,
    /// Drifted in both runs.
    pub still: Vec<String>,
    /// `drift_started`, `drift_resolved` or null.
    pub event: Option<String>,
    /// The `.json` file.
    pub file: String,
}

/// One environment's timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvHistory {
    /// Environment.
    pub env: String,
    /// Status of the latest run.
    pub current: Status,
    /// Date of the run that started the current drift (null when in sync or unknown).
    pub drift_since: Option<String>,
    /// Runs, oldest first.
    pub runs: Vec<Run>,
}

/// `check-drift history --json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct History {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The folder read.
    pub report_dir: String,
    /// First day included.
    pub since: String,
    /// Per environment, by name.
    pub environments: Vec<EnvHistory>,
}

/// Reads the `.json` reports of `envs` (all when empty) dated `since` or later.
pub fn read(
    dir: &Path,
    envs: &[String],
    since: Date,
) -> anyhow::Result<Vec<(ReportName, PathBuf, Report)>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the report folder {} (--report-dir)", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Some(name) = entry.file_name().to_str().and_then(parse_name) else {
            continue;
        };
        if name.ext != "json"
            || name.date < since
            || (!envs.is_empty() && !envs.contains(&name.env))
        {
            continue;
        }
        let path = entry.path();
        let report = std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice::<Report>(&b).map_err(anyhow::Error::from));
        match report {
            Ok(report) => out.push((name, path, report)),
            Err(e) => pve_common::warn!("skipping {}: {e:#}", path.display()),
        }
    }
    out.sort_by(|a, b| (&a.0.env, a.0.date).cmp(&(&b.0.env, b.0.date)));
    Ok(out)
}

/// Builds the timelines from [`read`]'s result.
pub fn analyze(dir: &Path, since: Date, files: &[(ReportName, PathBuf, Report)]) -> History {
    let mut environments: Vec<EnvHistory> = Vec::new();
    for (name, path, report) in files {
        let Some(env) = report.environments.iter().find(|e| e.env == name.env) else {
            continue;
        };
        let resources: Vec<String> = env
            .resources
            .iter()
            .filter(|r| !r.ignored)
            .map(|r| format!("{} ({})", r.address, r.action.as_str()))
            .collect();
        if environments.last().is_none_or(|h| h.env != name.env) {
            environments.push(EnvHistory {
                env: name.env.clone(),
                current: env.status,
                drift_since: None,
                runs: Vec::new(),
            });
        }
        let Some(h) = environments.last_mut() else {
            continue;
        };
        // Compare with the last run that was not an error (an error knows nothing).
        let previous = h.runs.iter().rev().find(|r| r.status != Status::Error);
        let (new, resolved, still, event) = if env.status == Status::Error {
            (Vec::new(), Vec::new(), Vec::new(), None)
        } else {
            let now: BTreeSet<&String> = resources.iter().collect();
            let before: BTreeSet<&String> = previous
                .map(|p| p.resources.iter().collect())
                .unwrap_or_default();
            let was_drift = previous.is_some_and(|p| p.status == Status::Drift);
            let event = match (was_drift, env.status) {
                (false, Status::Drift) => Some("drift_started".to_owned()),
                (true, Status::InSync) => Some("drift_resolved".to_owned()),
                _ => None,
            };
            (
                now.difference(&before).map(|s| (*s).clone()).collect(),
                before.difference(&now).map(|s| (*s).clone()).collect(),
                now.intersection(&before).map(|s| (*s).clone()).collect(),
                event,
            )
        };
        match event.as_deref() {
            Some("drift_started") => h.drift_since = Some(name.date.to_string()),
            Some("drift_resolved") => h.drift_since = None,
            _ => {}
        }
        h.current = env.status;
        h.runs.push(Run {
            date: name.date.to_string(),
            finished_at: report.finished_at.clone(),
            status: env.status,
            error_kind: env
                .error
                .as_ref()
                .map(|e| crate::metrics::kind_name(e.kind)),
            resources,
            new,
            resolved,
            still,
            event,
            file: path.display().to_string(),
        });
    }
    History {
        schema: SCHEMA.to_owned(),
        report_dir: dir.display().to_string(),
        since: since.to_string(),
        environments,
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::InSync => "in_sync",
        Status::Drift => "drift",
        Status::Error => "error",
    }
}

/// The text form of a history.
pub fn render_text(h: &History) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if h.environments.is_empty() {
        let _ = writeln!(
            out,
            "no drift reports since {} in {}",
            h.since, h.report_dir
        );
        return out;
    }
    for (i, e) in h.environments.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let since = match (&e.current, &e.drift_since) {
            (Status::Drift, Some(d)) => format!(", drifting since {d}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "== {} (now {}{since}) ==",
            e.env,
            status_name(e.current)
        );
        for r in &e.runs {
            let mut line = format!("{}  {:<7}", r.date, status_name(r.status));
            match (r.status, &r.error_kind) {
                (Status::Error, Some(kind)) => line.push_str(&format!("  error: {kind}")),
                _ => line.push_str(&format!(
                    "  {} drifted: {} new, {} resolved, {} still",
                    r.resources.len(),
                    r.new.len(),
                    r.resolved.len(),
                    r.still.len()
                )),
            }
            match r.event.as_deref() {
                Some("drift_started") => line.push_str("  <- drift started"),
                Some("drift_resolved") => line.push_str("  <- drift resolved"),
                _ => {}
            }
            let _ = writeln!(out, "{line}");
            for x in &r.new {
                let _ = writeln!(out, "    + {x}");
            }
            for x in &r.resolved {
                let _ = writeln!(out, "    - {x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_not_ours() {
        let d: Date = "2026-11-21".parse().unwrap();
        let n = file_name(d, "prod-eu", "log");
        assert_eq!(n, "drift-2026-11-21-prod-eu.log");
        assert_eq!(
            parse_name(&n),
            Some(ReportName {
                date: d,
                env: "prod-eu".into(),
                ext: "log".into()
            })
        );
        for other in [
            "drift-2026-11-21-prod.txt",
            "drift-2026-11-21-.json",
            "drift-2026-13-40-prod.json",
            "drift-notes.log",
            "README",
            "xdrift-2026-11-21-prod.json",
            "drift-2026-11-21-prod.json.bak",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn cutoff_counts_days() {
        let d: Date = "2026-11-21".parse().unwrap();
        assert_eq!(
            cutoff(d, Duration::from_secs(30 * 86400)).to_string(),
            "2026-10-22"
        );
        assert_eq!(cutoff(d, Duration::from_secs(3600)), d);
    }
}
