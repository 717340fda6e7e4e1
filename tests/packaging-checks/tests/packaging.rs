//! Checks of the packaging assets under `packaging/`: every PromQL expression in the alert rules and
//! Grafana dashboards parses, the `pve_drift_*`/`pve_backup_*` metric names match what check-drift
//! and verify-backups write (catches typos that would make an alert silently never fire), every
//! rule has its fields and a promtool unit test, the systemd units pass `systemd-analyze verify`
//! and the Alertmanager example passes `amtool check-config`.
//!
//! `promtool test rules` itself runs in `tests/run-all`; here only the cross-checks it cannot do.

// Test diagnostics (skips, version notes) go to stderr on purpose.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Context, Result, bail, ensure};
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde::Deserialize;

/// What check-drift writes into `pve_drift.prom` (the metrics contract).
const DRIFT_METRICS: &[&str] = &[
    "pve_drift_status",
    "pve_drift_resources_changed",
    "pve_drift_resources",
    "pve_drift_resources_ignored",
    "pve_drift_last_check_timestamp",
    "pve_drift_last_success_timestamp",
    "pve_drift_first_detected_timestamp",
    "pve_drift_check_duration_seconds",
    "pve_drift_error",
];

/// What verify-backups writes into `pve_backup.prom`.
const BACKUP_METRICS: &[&str] = &[
    "pve_backup_last_timestamp",
    "pve_backup_age_seconds",
    "pve_backup_verify_status",
    "pve_backup_state_status",
    "pve_backup_last_verify_timestamp",
    "pve_backup_verify_success",
];

/// prometheus-pve-exporter metrics the rules may use, each confirmed in its source
/// (`collector/cluster.py`, `collector/node.py`).
const PVE_EXPORTER_METRICS: &[&str] = &[
    "pve_up",
    "pve_node_info",
    "pve_guest_info",
    "pve_storage_info",
    "pve_onboot_status",
    "pve_ha_state",
    "pve_lock_state",
    "pve_cpu_usage_ratio",
    "pve_cpu_usage_limit",
    "pve_memory_usage_bytes",
    "pve_memory_size_bytes",
    "pve_disk_usage_bytes",
    "pve_disk_size_bytes",
    "pve_uptime_seconds",
];

/// Rules the operators' runbooks and the Alertmanager routes refer to by name.
const REQUIRED_RULES: &[(&str, &str)] = &[
    ("SystemdServiceFailed", "warning"),
    ("HighLoadAverage", "warning"),
    ("HighNetworkErrors", "warning"),
    ("PrometheusRuleEvaluationFailures", "warning"),
    ("NodeFilesystemAlmostOutOfInodes", "warning"),
    ("DriftDetected", "warning"),
    ("DriftCheckFailed", "critical"),
    ("DriftCheckStale", "warning"),
];

const SEVERITIES: &[&str] = &["info", "warning", "critical"];

/// Rules that always fire, so no test can show them silent.
const ALWAYS_FIRING: &[&str] = &["Watchdog"];

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RuleTestFile {
    rule_files: Vec<String>,
    tests: Vec<RuleTestGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleTestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertRuleTest>,
}

#[derive(Debug, Deserialize)]
struct AlertRuleTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<serde_norway::Value>,
}

/// One alert rule with where it came from.
struct LoadedRule {
    file: PathBuf,
    group: String,
    rule: Rule,
}

impl LoadedRule {
    fn name(&self) -> &str {
        self.rule.alert.as_deref().unwrap_or("")
    }
}

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn packaging() -> PathBuf {
    repo_root().join("packaging")
}

/// Files in `dir` whose names end with `suffix`, sorted; an empty result is an error.
fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix))
        {
            files.push(path);
        }
    }
    files.sort();
    ensure!(!files.is_empty(), "no *{suffix} files in {}", dir.display());
    Ok(files)
}

fn rule_files() -> Result<Vec<PathBuf>> {
    files_ending(&packaging().join("prometheus/alerts"), ".yml")
}

fn load_rules() -> Result<Vec<LoadedRule>> {
    let mut rules = Vec::new();
    for file in rule_files()? {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let parsed: RuleFile =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        for group in parsed.groups {
            for rule in group.rules {
                rules.push(LoadedRule {
                    file: file.clone(),
                    group: group.name.clone(),
                    rule,
                });
            }
        }
    }
    Ok(rules)
}

/// Collects the metric names of every selector in an expression.
#[derive(Default)]
struct MetricNames(BTreeSet<String>);

impl ExprVisitor for MetricNames {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        let name = match expr {
            Expr::VectorSelector(vs) => vs.name.clone(),
            Expr::MatrixSelector(ms) => ms.vs.name.clone(),
            _ => None,
        };
        self.0.extend(name);
        Ok(true)
    }
}

/// Parses a PromQL expression and returns the metric names it selects.
fn metric_names(expr: &str) -> Result<BTreeSet<String>> {
    let ast = parser::parse(expr).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut names = MetricNames::default();
    let Ok(_) = walk_expr(&mut names, &ast);
    Ok(names.0)
}

/// Replaces Grafana variables (`$name`, `${name}`, `${name:format}`, `[[name]]`) with values
/// that keep the query valid PromQL: durations for the interval variables, a plain word for the
/// others (they only appear inside label matchers).
fn substitute_grafana_variables(query: &str) -> String {
    fn value(name: &str) -> &'static str {
        match name {
            "__rate_interval" | "__interval" | "__range" | "__range_s" | "__range_ms" => match name
            {
                "__range_s" => "86400",
                "__range_ms" => "86400000",
                "__range" => "1d",
                _ => "5m",
            },
            "__interval_ms" => "60000",
            _ => "var",
        }
    }
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(inner) = tail.strip_prefix("${") {
            if let Some(end) = inner.find('}') {
                let name = inner[..end].split(':').next().unwrap_or("");
                out.push_str(value(name));
                rest = &inner[end + 1..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix("[[") {
            if let Some(end) = inner.find("]]") {
                out.push_str(value(inner[..end].split(':').next().unwrap_or("")));
                rest = &inner[end + 2..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            if len > 0 {
                out.push_str(value(&inner[..len]));
                rest = &inner[len..];
                continue;
            }
        }
        // Not a variable: keep the character.
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

/// Every PromQL query in a dashboard: panel targets (nested rows included) and query variables
/// (`label_values(selector, label)` reduced to its selector).
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk_panels(panels: &[serde_json::Value], out: &mut Vec<(String, String)>) {
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((format!("panel {title:?}"), expr.to_owned()));
                }
            }
            if let Some(nested) = panel["panels"].as_array() {
                walk_panels(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk_panels(
        dashboard["panels"].as_array().map_or(&[], |p| p.as_slice()),
        &mut out,
    );
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .unwrap_or("");
        let expr = match query.strip_prefix("label_values(") {
            Some(args) => match args.rsplit_once(',') {
                Some((selector, _label)) => selector.trim().to_owned(),
                // label_values(label) has no selector to check.
                None => continue,
            },
            None => query.to_owned(),
        };
        out.push((format!("variable {}", var["name"]), expr));
    }
    out
}

fn load_dashboard(name: &str) -> Result<serde_json::Value> {
    let path = packaging().join("grafana/dashboards").join(name);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs a program; a missing program is reported as such.
#[allow(
    clippy::disallowed_methods,
    reason = "dev-only checks run read-only validators (promtool, amtool, systemd-analyze), not tool side effects"
)]
fn run(program: &str, args: &[&str]) -> Result<Output> {
    std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (is it installed? tests/run-all installs it)"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn describe(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn rules_have_required_fields_and_names() -> Result<()> {
    let rules = load_rules()?;
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for lr in &rules {
        let r = &lr.rule;
        let at = format!("{} group {}", lr.file.display(), lr.group);
        let Some(name) = r.alert.as_deref() else {
            problems.push(format!("{at}: rule {:?} is not an alert rule", r.record));
            continue;
        };
        if !names.insert(name.to_owned()) {
            problems.push(format!("{at}: duplicate alert name {name}"));
        }
        if r.expr.trim().is_empty() {
            problems.push(format!("{at}: {name} has an empty expr"));
        }
        if r.for_.as_deref().is_none_or(|f| f.trim().is_empty()) {
            problems.push(format!("{at}: {name} has no `for`"));
        }
        match r.labels.get("severity") {
            Some(s) if SEVERITIES.contains(&s.as_str()) => {}
            other => problems.push(format!(
                "{at}: {name} has severity {other:?}, expected one of {SEVERITIES:?}"
            )),
        }
        for key in ["summary", "description"] {
            match r.annotations.get(key) {
                Some(text) if !text.trim().is_empty() => {
                    // Alertmanager's Telegram receiver uses parse_mode HTML: a bare '<' or '&'
                    // makes Telegram reject the whole message.
                    if text.contains('<') || text.contains('&') {
                        problems.push(format!(
                            "{at}: {name} annotation {key} contains '<' or '&' (breaks Telegram HTML)"
                        ));
                    }
                }
                _ => problems.push(format!("{at}: {name} has no annotation {key}")),
            }
        }
        if !r
            .annotations
            .get("description")
            .is_some_and(|d| d.contains("{{"))
        {
            problems.push(format!(
                "{at}: {name}'s description uses no template ($labels / $value)"
            ));
        }
    }
    ensure!(
        problems.is_empty(),
        "rule problems:\n{}",
        problems.join("\n")
    );
    ensure!(
        names.len() >= 26,
        "expected at least 26 alert rules, found {}",
        names.len()
    );
    for (name, severity) in REQUIRED_RULES {
        let lr = rules
            .iter()
            .find(|lr| lr.name() == *name)
            .with_context(|| format!("required rule {name} is missing"))?;
        assert_eq!(
            lr.rule.labels.get("severity").map(String::as_str),
            Some(*severity),
            "severity of {name}"
        );
    }
    Ok(())
}

#[test]
fn drift_rules_have_the_documented_semantics() -> Result<()> {
    let rules = load_rules()?;
    let drift: Vec<_> = rules
        .iter()
        .filter(|lr| lr.group == "drift-alerts")
        .collect();
    let names: Vec<_> = drift.iter().map(|lr| lr.name()).collect();
    assert_eq!(
        names,
        ["DriftDetected", "DriftCheckFailed", "DriftCheckStale"],
        "group drift-alerts"
    );
    for lr in &drift {
        assert_eq!(
            lr.file.file_name().and_then(|n| n.to_str()),
            Some("drift.yml"),
            "{} must live in drift.yml",
            lr.name()
        );
        let description = &lr.rule.annotations["description"];
        assert!(
            description.contains("$labels.env") && description.contains("$value"),
            "{}: description must show env and value: {description}",
            lr.name()
        );
    }
    let expr = |name: &str| -> String {
        drift
            .iter()
            .find(|lr| lr.name() == name)
            .map(|lr| {
                lr.rule
                    .expr
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    assert_eq!(expr("DriftDetected"), "pve_drift_status == 1");
    assert_eq!(expr("DriftCheckFailed"), "pve_drift_status == 2");
    let stale = expr("DriftCheckStale");
    assert!(
        stale.contains("time() - pve_drift_last_check_timestamp > 48 * 3600")
            && stale.contains("absent(pve_drift_last_check_timestamp)"),
        "DriftCheckStale must fire after 48h without a check and when the metric is absent: {stale}"
    );
    Ok(())
}

#[test]
fn rule_expressions_parse_and_use_known_metrics() -> Result<()> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for lr in load_rules()? {
        let names = match metric_names(&lr.rule.expr) {
            Ok(names) => names,
            Err(e) => {
                problems.push(format!(
                    "{}: {}: does not parse: {e}",
                    lr.file.display(),
                    lr.name()
                ));
                continue;
            }
        };
        for metric in names {
            let known = if metric.starts_with("pve_drift_") {
                DRIFT_METRICS.contains(&metric.as_str())
            } else if metric.starts_with("pve_backup_") {
                BACKUP_METRICS.contains(&metric.as_str())
            } else if metric.starts_with("pve_") {
                PVE_EXPORTER_METRICS.contains(&metric.as_str())
            } else {
                true
            };
            if !known {
                problems.push(format!(
                    "{}: {} uses {metric}, which no tool or exporter writes",
                    lr.file.display(),
                    lr.name()
                ));
            }
            seen.insert(metric);
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    // The drift and backup metrics that carry alertable state are all watched by some rule.
    for metric in [
        "pve_drift_status",
        "pve_drift_last_check_timestamp",
        "pve_backup_last_timestamp",
        "pve_backup_verify_status",
        "pve_backup_state_status",
        "pve_backup_last_verify_timestamp",
        "pve_backup_verify_success",
    ] {
        ensure!(seen.contains(metric), "no rule uses {metric}");
    }
    Ok(())
}

#[test]
fn promtool_accepts_the_rule_files() -> Result<()> {
    let files = rule_files()?;
    let mut args = vec!["check", "rules"];
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = run("promtool", &args)?;
    ensure!(
        out.status.success(),
        "promtool check rules failed: {}",
        describe(&out)
    );
    Ok(())
}

#[test]
fn every_rule_has_promtool_tests_that_fire_and_stay_silent() -> Result<()> {
    let tests_dir = packaging().join("prometheus/tests");
    let alerts_dir = packaging().join("prometheus/alerts").canonicalize()?;
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    let mut covered_files = BTreeSet::new();
    for file in files_ending(&tests_dir, ".test.yml")? {
        let text = fs::read_to_string(&file)?;
        let parsed: RuleTestFile =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        for rule_file in &parsed.rule_files {
            // promtool resolves rule_files relative to the test file.
            let resolved = file
                .parent()
                .unwrap_or(Path::new("."))
                .join(rule_file)
                .canonicalize()
                .with_context(|| format!("{}: rule file {rule_file} not found", file.display()))?;
            ensure!(
                resolved.starts_with(&alerts_dir),
                "{}: rule file {rule_file} is outside packaging/prometheus/alerts",
                file.display()
            );
            covered_files.insert(resolved);
        }
        for case in parsed.tests.iter().flat_map(|t| &t.alert_rule_test) {
            if case.exp_alerts.is_empty() {
                silent.insert(case.alertname.clone());
            } else {
                fires.insert(case.alertname.clone());
            }
        }
    }
    let mut problems = Vec::new();
    for file in rule_files()? {
        if !covered_files.contains(&file.canonicalize()?) {
            problems.push(format!(
                "{} is not loaded by any *.test.yml",
                file.display()
            ));
        }
    }
    let rules = load_rules()?;
    let names: BTreeSet<&str> = rules.iter().map(LoadedRule::name).collect();
    for name in &names {
        if !fires.contains(*name) {
            problems.push(format!("{name}: no promtool test case where it fires"));
        }
        if !silent.contains(*name) && !ALWAYS_FIRING.contains(name) {
            problems.push(format!(
                "{name}: no promtool test case where it stays silent"
            ));
        }
    }
    for tested in fires.iter().chain(&silent) {
        if !names.contains(tested.as_str()) {
            problems.push(format!("tests mention {tested}, which no rule defines"));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn substitution_keeps_queries_valid() {
    assert_eq!(
        substitute_grafana_variables(r#"rate(x{env=~"$env"}[$__rate_interval])"#),
        r#"rate(x{env=~"var"}[5m])"#
    );
    assert_eq!(
        substitute_grafana_variables(r#"max_over_time(x{env=~"${env:regex}"}[${__range}])"#),
        r#"max_over_time(x{env=~"var"}[1d])"#
    );
    assert_eq!(
        substitute_grafana_variables(r#"x{a="[[ds]]"}[$__interval] * 2$"#),
        r#"x{a="var"}[5m] * 2$"#
    );
}

#[test]
fn dashboards_are_importable_and_their_queries_parse() -> Result<()> {
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for path in files_ending(&packaging().join("grafana/dashboards"), ".json")? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let d = load_dashboard(&name)?;
        let schema = d["schemaVersion"].as_u64().unwrap_or(0);
        if !(36..=41).contains(&schema) {
            problems.push(format!("{name}: schemaVersion {schema}, expected about 39"));
        }
        if !d["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && uids.insert(u.to_owned()))
        {
            problems.push(format!("{name}: missing or duplicate uid"));
        }
        if !d["id"].is_null() {
            problems.push(format!("{name}: \"id\" must be null for import"));
        }
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !vars.iter().any(|v| {
            v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"
        }) {
            problems.push(format!(
                "{name}: no `datasource` variable of type datasource"
            ));
        }
        // Every datasource reference goes through the variable: no instance-specific uids.
        let mut refs = Vec::new();
        collect_datasource_uids(&d["panels"], &mut refs);
        for v in &vars {
            collect_datasource_uids(v, &mut refs);
        }
        for uid in refs {
            if uid != "${datasource}" {
                problems.push(format!(
                    "{name}: datasource uid {uid:?} instead of ${{datasource}}"
                ));
            }
        }
        let mut ids = BTreeSet::new();
        for p in d["panels"].as_array().into_iter().flatten() {
            if !ids.insert(p["id"].as_u64()) {
                problems.push(format!("{name}: duplicate panel id {}", p["id"]));
            }
        }
        let queries = dashboard_queries(&d);
        if queries.is_empty() {
            problems.push(format!("{name}: no queries"));
        }
        for (at, expr) in queries {
            if let Err(e) = metric_names(&substitute_grafana_variables(&expr)) {
                problems.push(format!("{name}: {at}: {expr:?} does not parse: {e}"));
            }
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

fn collect_datasource_uids(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(ds) = map.get("datasource")
                && ds["type"] == "prometheus"
            {
                out.push(ds["uid"].as_str().unwrap_or("").to_owned());
            }
            for v in map.values() {
                collect_datasource_uids(v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_datasource_uids(v, out);
            }
        }
        _ => {}
    }
}

/// Metric names used by a dashboard's queries.
fn dashboard_metrics(file: &str) -> Result<BTreeSet<String>> {
    let d = load_dashboard(file)?;
    let mut all = BTreeSet::new();
    for (at, expr) in dashboard_queries(&d) {
        let names = metric_names(&substitute_grafana_variables(&expr))
            .map_err(|e| anyhow::anyhow!("{file}: {at}: {e}"))?;
        all.extend(names);
    }
    Ok(all)
}

#[test]
fn drift_dashboard_uses_only_check_drift_metrics() -> Result<()> {
    let used = dashboard_metrics("drift-overview.json")?;
    let unknown: Vec<_> = used
        .iter()
        .filter(|m| !DRIFT_METRICS.contains(&m.as_str()))
        .collect();
    ensure!(
        unknown.is_empty(),
        "drift-overview.json uses metrics check-drift does not write: {unknown:?}"
    );
    for needed in [
        "pve_drift_status",
        "pve_drift_resources",
        "pve_drift_first_detected_timestamp",
        "pve_drift_last_check_timestamp",
        "pve_drift_check_duration_seconds",
        "pve_drift_error",
    ] {
        ensure!(
            used.contains(needed),
            "drift-overview.json shows no {needed}"
        );
    }
    let d = load_dashboard("drift-overview.json")?;
    let env = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "env")
        .context("drift-overview.json has no env variable")?;
    assert_eq!(env["query"]["query"], "label_values(pve_drift_status, env)");
    let types: BTreeSet<&str> = d["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["type"].as_str())
        .collect();
    for t in ["stat", "state-timeline", "timeseries"] {
        ensure!(types.contains(t), "drift-overview.json has no {t} panel");
    }
    Ok(())
}

#[test]
fn backups_dashboard_uses_only_verify_backups_metrics() -> Result<()> {
    let used = dashboard_metrics("backups-overview.json")?;
    let unknown: Vec<_> = used
        .iter()
        .filter(|m| !BACKUP_METRICS.contains(&m.as_str()))
        .collect();
    ensure!(
        unknown.is_empty(),
        "backups-overview.json uses metrics verify-backups does not write: {unknown:?}"
    );
    Ok(())
}

/// `Key=value` lines of a unit file (comments and sections skipped), in order.
fn unit_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn directive<'a>(directives: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn drift_check_units_have_the_required_settings() -> Result<()> {
    let dir = packaging().join("systemd");
    let service = unit_directives(&fs::read_to_string(dir.join("pve-drift-check.service"))?);
    let expect = |key: &str, value: &str| {
        assert!(
            directive(&service, key).contains(&value),
            "pve-drift-check.service: expected {key}={value}, found {:?}",
            directive(&service, key)
        );
    };
    expect("Type", "oneshot");
    expect("EnvironmentFile", "-/etc/default/pve-drift-check");
    expect("SuccessExitStatus", "1");
    expect("NoNewPrivileges", "yes");
    expect("ProtectSystem", "strict");
    expect("ProtectHome", "read-only");
    expect("PrivateTmp", "yes");
    expect("ProtectKernelTunables", "yes");
    let exec = directive(&service, "ExecStart");
    assert!(
        exec.len() == 1 && exec[0].starts_with("/usr/bin/check-drift --all"),
        "ExecStart: {exec:?}"
    );
    let rw: BTreeSet<&str> = directive(&service, "ReadWritePaths")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    for path in ["/var/lib/prometheus/node-exporter", "/var/log/pve-drift"] {
        assert!(rw.contains(path), "ReadWritePaths lacks {path}: {rw:?}");
    }
    // The run lock: a folder only root writes (issue 23), not the world-writable /run/lock.
    assert!(!rw.contains("/run/lock"), "ReadWritePaths: {rw:?}");
    assert_eq!(directive(&service, "RuntimeDirectory"), ["pve-tools"]);
    // The unit timeout must exceed the per-environment timeouts added up (documented in the unit
    // and in /etc/default/pve-drift-check): 4 environments x PVE_DRIFT_TIMEOUT, whose default the
    // defaults file shows as `#PVE_DRIFT_TIMEOUT=5m` (check-drift's --timeout default).
    let timeout = directive(&service, "TimeoutStartSec");
    let minutes: u64 = timeout
        .first()
        .and_then(|t| t.strip_suffix("min"))
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("TimeoutStartSec in minutes expected, found {timeout:?}"))?;
    let defaults_text = fs::read_to_string(packaging().join("default/pve-drift-check"))?;
    let per_env: u64 = defaults_text
        .lines()
        .find_map(|l| l.strip_prefix("#PVE_DRIFT_TIMEOUT="))
        .and_then(|v| v.strip_suffix('m'))
        .and_then(|m| m.parse().ok())
        .context("default/pve-drift-check lacks `#PVE_DRIFT_TIMEOUT=<N>m`")?;
    let cli = fs::read_to_string(repo_root().join("crates/check-drift/src/cli.rs"))?;
    ensure!(
        cli.contains(&format!(
            "env = \"PVE_DRIFT_TIMEOUT\", default_value = \"{per_env}m\""
        )),
        "the defaults file shows PVE_DRIFT_TIMEOUT={per_env}m, which is not check-drift's --timeout default"
    );
    assert!(
        minutes > 4 * per_env,
        "TimeoutStartSec={minutes}min is not above 4 x {per_env} min"
    );

    let timer = unit_directives(&fs::read_to_string(dir.join("pve-drift-check.timer"))?);
    assert_eq!(directive(&timer, "OnCalendar"), ["*-*-* 06:00:00"]);
    assert_eq!(directive(&timer, "Persistent"), ["true"]);
    assert_eq!(directive(&timer, "RandomizedDelaySec").len(), 1);

    // The /etc/default file documents every variable, including the textfile directory the unit
    // makes writable.
    let defaults = fs::read_to_string(packaging().join("default/pve-drift-check"))?;
    let lines: Vec<&str> = defaults.lines().collect();
    for var in [
        "PVE_DRIFT_ROOT",
        "PVE_DRIFT_TEXTFILE_DIR",
        "PVE_DRIFT_ALERTMANAGER_URL",
        "PVE_DRIFT_TIMEOUT",
        "CHECK_DRIFT_ARGS",
    ] {
        let idx = lines
            .iter()
            .position(|l| l.trim_start_matches('#').starts_with(&format!("{var}=")))
            .with_context(|| format!("default/pve-drift-check does not set {var}"))?;
        assert!(
            idx > 0 && lines[idx - 1].starts_with("# "),
            "{var} in default/pve-drift-check has no comment above it"
        );
    }
    assert!(defaults.contains("#PVE_DRIFT_TEXTFILE_DIR=/var/lib/prometheus/node-exporter"));
    Ok(())
}

/// The metric contract above is exactly what check-drift's textfile writer declares.
#[test]
fn drift_metric_contract_matches_check_drift() -> Result<()> {
    let src = fs::read_to_string(repo_root().join("crates/check-drift/src/metrics.rs"))?;
    let table = src
        .split("pub const METRICS")
        .nth(1)
        .and_then(|rest| rest.split("];").next())
        .context("no METRICS table in crates/check-drift/src/metrics.rs")?;
    let written: BTreeSet<&str> = table
        .split('"')
        .filter(|s| s.starts_with("pve_drift_"))
        .collect();
    let contract: BTreeSet<&str> = DRIFT_METRICS.iter().copied().collect();
    ensure!(
        written == contract,
        "check-drift writes {written:?}, the packaging contract says {contract:?}"
    );
    Ok(())
}

/// Every `PVE_DRIFT_*` variable the defaults file or the unit sets must be one check-drift reads
/// (a clap `env = "..."` in its cli.rs), or the setting silently does nothing.
#[test]
fn drift_settings_are_variables_check_drift_reads() -> Result<()> {
    let cli = fs::read_to_string(repo_root().join("crates/check-drift/src/cli.rs"))?;
    let read: BTreeSet<String> = cli
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    let defaults = fs::read_to_string(packaging().join("default/pve-drift-check"))?;
    let service = fs::read_to_string(packaging().join("systemd/pve-drift-check.service"))?;
    let mut set = BTreeSet::new();
    for line in defaults.lines() {
        let line = line.trim_start_matches('#');
        if let Some((name, _)) = line.split_once('=')
            && name.starts_with("PVE_DRIFT_")
        {
            set.insert(name.to_owned());
        }
    }
    for line in service.lines() {
        if let Some(rest) = line.strip_prefix("Environment=")
            && let Some((name, _)) = rest.split_once('=')
            && name.starts_with("PVE_DRIFT_")
        {
            set.insert(name.to_owned());
        }
    }
    ensure!(set.len() >= 6, "too few PVE_DRIFT_ settings found: {set:?}");
    let unread: Vec<&String> = set.difference(&read).collect();
    ensure!(
        unread.is_empty(),
        "set for the service but not read by check-drift: {unread:?} (it reads {read:?})"
    );
    Ok(())
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() -> Result<()> {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!(
            "NOT CHECKED: systemd-analyze is not installed here, so the units were not verified"
        );
        return Ok(());
    };
    let dir = packaging().join("systemd");
    let stand_in = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .context("no /usr/bin/true or /bin/true to stand in for the tools")?;
    let tmp = tempfile::tempdir()?;
    let mut units = Vec::new();
    for file in files_ending(&dir, ".service")?
        .into_iter()
        .chain(files_ending(&dir, ".timer")?)
    {
        let name = file.file_name().context("unit name")?.to_owned();
        // The tools are not installed here; verify insists that ExecStart is executable.
        let text = fs::read_to_string(&file)?
            .replace("/usr/bin/check-drift", stand_in)
            .replace("/usr/bin/verify-backups", stand_in);
        let target = tmp.path().join(&name);
        fs::write(&target, text)?;
        units.push(target);
    }
    ensure!(
        units.len() >= 4,
        "expected 2 services and 2 timers, found {}",
        units.len()
    );
    let mut args = vec!["verify".to_owned(), "--man=no".to_owned()];
    args.extend(units.iter().map(|u| u.display().to_string()));
    let analyze = analyze.display().to_string();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&analyze, &arg_refs)?;
    // Unknown keys and bad values are only warnings with exit 0: any stderr line about our
    // files counts as a failure.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tmp_path = tmp.path().display().to_string();
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&tmp_path) || l.contains("pve-"))
        .collect();
    if !out.status.success() || !complaints.is_empty() {
        bail!(
            "systemd-analyze verify rejected the units: {}",
            describe(&out)
        );
    }
    Ok(())
}

/// amtool's version as (major, minor), e.g. (0, 25).
fn amtool_version() -> Result<(u32, u32)> {
    let out = run("amtool", &["--version"])?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .context("no version in amtool --version")?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => bail!("cannot read amtool version {version:?}"),
    }
}

#[test]
fn alertmanager_example_passes_amtool_and_routes_drift_to_telegram() -> Result<()> {
    let example = packaging().join("alertmanager/drift-route.example.yml");
    let text = fs::read_to_string(&example)?;

    let config: serde_norway::Value = serde_norway::from_str(&text)?;
    let telegram = config["receivers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|r| r["telegram_configs"].as_sequence().into_iter().flatten())
        .next()
        .context("no telegram_configs receiver")?;
    for key in ["bot_token_file", "chat_id", "parse_mode"] {
        ensure!(!telegram[key].is_null(), "telegram_configs lacks {key}");
    }

    // bot_token_file exists since Alertmanager 0.26; Debian 12 ships 0.25 (telegram_configs
    // since 0.24). On an older amtool, check the variant the example tells 0.25 users to write.
    let (major, minor) = amtool_version()?;
    let tmp = tempfile::tempdir()?;
    let checked = tmp.path().join("alertmanager.yml");
    if (major, minor) >= (0, 26) {
        fs::write(&checked, &text)?;
    } else {
        eprintln!(
            "amtool {major}.{minor} predates bot_token_file (0.26): checking the example with \
             bot_token instead, as its header tells Alertmanager 0.25 users to do"
        );
        let variant: String = text
            .lines()
            .map(|l| match l.split_once("bot_token_file:") {
                Some((indent, _)) => format!("{indent}bot_token: \"123456:placeholder\"\n"),
                None => format!("{l}\n"),
            })
            .collect();
        fs::write(&checked, variant)?;
    }
    let path = checked.display().to_string();
    let out = run("amtool", &["check-config", &path])?;
    ensure!(
        out.status.success(),
        "amtool check-config failed: {}",
        describe(&out)
    );

    let config_flag = format!("--config.file={path}");
    for (labels, receiver) in [
        (
            &["alertname=DriftDetected", "env=prod"][..],
            "telegram-homelab",
        ),
        (
            &[
                "alertname=DriftCheckFailed",
                "env=prod",
                "severity=critical",
            ][..],
            "telegram-homelab",
        ),
        (
            &["alertname=DriftCheckStale", "severity=warning"][..],
            "telegram-homelab",
        ),
        (
            &["alertname=BackupVerificationFailed", "severity=critical"][..],
            "telegram-homelab",
        ),
        (
            &["alertname=BackupTooOld", "severity=warning"][..],
            "telegram-homelab",
        ),
        (&["alertname=Watchdog"][..], "blackhole"),
    ] {
        let mut args = vec!["config", "routes", "test", config_flag.as_str()];
        args.extend(labels);
        let out = run("amtool", &args)?;
        let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        ensure!(
            out.status.success() && got == receiver,
            "{labels:?} routed to {got:?}, expected {receiver}: {}",
            describe(&out)
        );
    }
    Ok(())
}
