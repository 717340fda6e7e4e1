//! `pve_drift.prom`: the run's result as Prometheus metrics for node_exporter's textfile collector.
//!
//! The classic text format (HELP, TYPE, samples, no timestamps, trailing newline): Debian's node_exporter
//! 1.5 rejects OpenMetrics. Every series carries `env`. Environments checked in this run get fresh series;
//! the series of every other environment are copied from the previous file, so `--env lab` never makes
//! prod's series go stale or vanish. Only an environment whose folder no longer exists under the root is
//! dropped. The file is written atomically by the runner (temporary file in the same directory, fsync,
//! rename), so node_exporter never reads half of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::plan::{Action, Origin};
use crate::report::{EnvReport, Status};
use crate::state::EnvState;
use crate::terraform::ErrorKind;

/// File name in the textfile directory.
pub const FILE_NAME: &str = "pve_drift.prom";

/// Every metric written, in file order, with its help text. All are gauges.
pub const METRICS: &[(&str, &str)] = &[
    (
        "pve_drift_status",
        "Drift status of the environment: 0 in sync, 1 drift, 2 error.",
    ),
    (
        "pve_drift_resources_changed",
        "Resources in drift (not ignored) in the environment.",
    ),
    (
        "pve_drift_resources",
        "Resources in drift (not ignored) by planned action and origin (drift, pending, both).",
    ),
    (
        "pve_drift_resources_ignored",
        "Changed resources whose every change is covered by .driftignore rules.",
    ),
    (
        "pve_drift_last_check_timestamp",
        "Unix time of the last check of the environment, successful or not.",
    ),
    (
        "pve_drift_last_success_timestamp",
        "Unix time of the last check of the environment that did not error.",
    ),
    (
        "pve_drift_first_detected_timestamp",
        "Unix time the current drift of the environment was first seen (absent when in sync).",
    ),
    (
        "pve_drift_check_duration_seconds",
        "Wall time of the last check of the environment (init, plan, show).",
    ),
    (
        "pve_drift_error",
        "1 for the kind of error of the last check of the environment, 0 for the other kinds.",
    ),
];

const ACTIONS: [(Action, &str); 4] = [
    (Action::Create, "create"),
    (Action::Update, "update"),
    (Action::Delete, "delete"),
    (Action::Replace, "replace"),
];
const ORIGINS: [(Origin, &str); 3] = [
    (Origin::Drift, "drift"),
    (Origin::Pending, "pending"),
    (Origin::Both, "both"),
];
const KINDS: [ErrorKind; 8] = [
    ErrorKind::Lock,
    ErrorKind::Credentials,
    ErrorKind::Network,
    ErrorKind::Init,
    ErrorKind::Timeout,
    ErrorKind::TerraformMissing,
    ErrorKind::Interrupted,
    ErrorKind::Unknown,
];

/// `lock`, `terraform_missing`... as in the JSON report.
pub fn kind_name(kind: ErrorKind) -> String {
    kind.as_str().to_owned()
}

/// Escapes a label value: `\`, `"` and newline.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A sample line of a previous file: its metric name and `env` label.
fn parse_sample(line: &str) -> Option<(String, String)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let rest = line[name_end..].strip_prefix('{')?;
    let start = rest.find("env=\"")? + 5;
    let value = &rest[start..];
    let mut end = None;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                end = Some(i);
                break;
            }
            _ => escaped = false,
        }
    }
    Some((name.to_owned(), unescape(&value[..end?])))
}

/// Sample lines of `previous` to keep: metrics we write, environments for which `keep(env)` is true.
/// Returned per metric name, in file order.
pub fn carried_over(previous: &str, keep: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<String>> {
    let known: BTreeSet<&str> = METRICS.iter().map(|(n, _)| *n).collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in previous.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_sample(line) {
            Some((name, env)) if known.contains(name.as_str()) && keep(&env) => {
                out.entry(name).or_default().push(line.to_owned());
            }
            Some(_) => {}
            None => pve_common::debug!("{FILE_NAME}: dropping unreadable line `{line}`"),
        }
    }
    out
}

fn sample(
    out: &mut BTreeMap<&'static str, Vec<String>>,
    name: &'static str,
    labels: &str,
    value: impl std::fmt::Display,
) {
    out.entry(name)
        .or_default()
        .push(format!("{name}{{{labels}}} {value}"));
}

/// Renders the file: fresh series for `checked` (with their state after this run, checked at `now`),
/// then the `carried` lines of the other environments, grouped under each metric's HELP and TYPE.
pub fn render(
    checked: &[(&EnvReport, &EnvState)],
    now: i64,
    carried: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut fresh: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for (r, st) in checked {
        let env = format!("env=\"{}\"", escape(&r.env));
        let status = match r.status {
            Status::InSync => 0,
            Status::Drift => 1,
            Status::Error => 2,
        };
        sample(&mut fresh, "pve_drift_status", &env, status);
        let ok = r.status != Status::Error;
        let changed = r.resources.iter().filter(|x| !x.ignored).count();
        if ok {
            sample(&mut fresh, "pve_drift_resources_changed", &env, changed);
            for (action, a) in ACTIONS {
                for (origin, o) in ORIGINS {
                    let n = r
                        .resources
                        .iter()
                        .filter(|x| !x.ignored && x.action == action && x.origin == origin)
                        .count();
                    sample(
                        &mut fresh,
                        "pve_drift_resources",
                        &format!("{env},action=\"{a}\",origin=\"{o}\""),
                        n,
                    );
                }
            }
            sample(
                &mut fresh,
                "pve_drift_resources_ignored",
                &env,
                r.counts.ignored,
            );
        }
        sample(&mut fresh, "pve_drift_last_check_timestamp", &env, now);
        if let Some(t) = st.last_success {
            sample(&mut fresh, "pve_drift_last_success_timestamp", &env, t);
        }
        if let Some(t) = st.first_detected {
            sample(&mut fresh, "pve_drift_first_detected_timestamp", &env, t);
        }
        sample(
            &mut fresh,
            "pve_drift_check_duration_seconds",
            &env,
            format_args!("{:.3}", r.duration_ms as f64 / 1000.0),
        );
        let current = r.error.as_ref().map(|e| e.kind);
        for kind in KINDS {
            sample(
                &mut fresh,
                "pve_drift_error",
                &format!("{env},kind=\"{}\"", kind_name(kind)),
                u8::from(current == Some(kind)),
            );
        }
    }
    let mut text = String::new();
    for (name, help) in METRICS {
        let mut lines: Vec<&String> = fresh
            .get(name)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        lines.extend(carried.get(*name).into_iter().flatten());
        if lines.is_empty() {
            continue;
        }
        lines.sort();
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        for l in lines {
            let _ = writeln!(text, "{l}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::EnvError;
    use crate::test_support::drifted;

    fn lab() -> EnvReport {
        let mut r = drifted();
        r.duration_ms = 3250;
        r
    }

    #[test]
    fn renders_every_series_for_a_drifted_env() {
        let st = EnvState {
            first_detected: Some(1000),
            last_success: Some(2000),
            ..EnvState::default()
        };
        let r = lab();
        let text = render(&[(&r, &st)], 2000, &BTreeMap::new());
        for (name, _) in METRICS {
            assert!(
                text.contains(&format!("# TYPE {name} gauge\n")),
                "{name}\n{text}"
            );
        }
        assert!(text.contains("pve_drift_status{env=\"lab\"} 1\n"));
        assert!(
            text.contains("pve_drift_resources_changed{env=\"lab\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("pve_drift_resources{env=\"lab\",action=\"update\",origin=\"pending\"}")
        );
        assert!(text.contains("pve_drift_first_detected_timestamp{env=\"lab\"} 1000\n"));
        assert!(text.contains("pve_drift_check_duration_seconds{env=\"lab\"} 3.250\n"));
        assert!(text.contains("pve_drift_error{env=\"lab\",kind=\"lock\"} 0\n"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn error_env_has_kind_and_keeps_last_success() {
        let r = EnvReport::failed(
            "prod",
            None,
            EnvError {
                kind: ErrorKind::TerraformMissing,
                message: "x".into(),
                lock: None,
            },
        );
        let st = EnvState {
            last_success: Some(77),
            ..EnvState::default()
        };
        let text = render(&[(&r, &st)], 100, &BTreeMap::new());
        assert!(text.contains("pve_drift_status{env=\"prod\"} 2\n"));
        assert!(text.contains("pve_drift_error{env=\"prod\",kind=\"terraform_missing\"} 1\n"));
        assert!(text.contains("pve_drift_last_success_timestamp{env=\"prod\"} 77\n"));
        assert!(
            !text.contains("pve_drift_resources_changed"),
            "unknown while erroring"
        );
    }

    #[test]
    fn other_envs_are_carried_over_and_escaped_names_survive() {
        let st = EnvState::default();
        let odd = EnvReport::checked("we\"ird\\env", Some(0), vec![], vec![], vec![]);
        let first = render(&[(&odd, &st), (&lab(), &st)], 5, &BTreeMap::new());
        let kept = carried_over(&first, |env| env != "lab");
        let second = render(
            &[(
                &EnvReport::checked("lab", Some(0), vec![], vec![], vec![]),
                &st,
            )],
            9,
            &kept,
        );
        assert!(
            second.contains("pve_drift_status{env=\"we\\\"ird\\\\env\"} 0\n"),
            "{second}"
        );
        assert!(second.contains("pve_drift_status{env=\"lab\"} 0\n"));
        assert!(!second.contains("pve_drift_status{env=\"lab\"} 1"));
        assert_eq!(second.matches("# TYPE pve_drift_status gauge").count(), 1);
        assert!(carried_over("garbage line\nfoo{env=\"x\"} 1\n", |_| true).is_empty());
    }
}
