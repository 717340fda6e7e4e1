//! Verifying the monitoring stack over HTTP: each check is a GET and a judgement of the answer, retried
//! with exponential backoff until its deadline. The checks run side by side, so one component that never
//! answers does not eat the others' time; the report keeps each check's last error.

use std::time::{Duration, Instant};

use pve_common::retry::Sleeper;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The first wait between attempts; doubled after each failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Timeout of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Which check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    /// Prometheus `/-/ready`.
    PrometheusReady,
    /// Prometheus `/api/v1/targets` has active targets, at least one up.
    PrometheusTargets,
    /// Prometheus `/api/v1/rules` has every required group.
    PrometheusRules,
    /// Alertmanager `/-/ready`.
    AlertmanagerReady,
    /// Grafana `/api/health` answers with `database: ok`.
    GrafanaHealth,
    /// node_exporter `/metrics` carries the textfile collector's series.
    NodeExporterTextfile,
}

impl Kind {
    /// `prometheus_ready`...: the check's name in the JSON report.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The component a check is about, for the report.
    pub fn component(self) -> &'static str {
        match self {
            Kind::PrometheusReady | Kind::PrometheusTargets | Kind::PrometheusRules => "prometheus",
            Kind::AlertmanagerReady => "alertmanager",
            Kind::GrafanaHealth => "grafana",
            Kind::NodeExporterTextfile => "node_exporter",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::PrometheusReady | Kind::AlertmanagerReady => "/-/ready",
            Kind::PrometheusTargets => "/api/v1/targets",
            Kind::PrometheusRules => "/api/v1/rules",
            Kind::GrafanaHealth => "/api/health",
            Kind::NodeExporterTextfile => "/metrics",
        }
    }
}

/// One check to run.
#[derive(Clone, Debug)]
pub struct Check {
    /// Which.
    pub kind: Kind,
    /// The component's base URL.
    pub base_url: String,
    /// For [`Kind::PrometheusRules`]: the groups that must be loaded.
    pub rule_groups: Vec<String>,
}

impl Check {
    /// The URL fetched.
    pub fn url(&self) -> String {
        format!(
            "{}{}",
            self.base_url.trim_end_matches('/'),
            self.kind.path()
        )
    }
}

/// How a check ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which.
    pub name: Kind,
    /// `prometheus`, `alertmanager`, `grafana`, `node_exporter`.
    pub component: String,
    /// The URL fetched.
    pub url: String,
    /// Passed.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Time from the first attempt to the verdict.
    pub elapsed_ms: u64,
    /// What was found (on success).
    pub detail: Option<String>,
    /// Why it failed (the last attempt's reason).
    pub error: Option<String>,
}

/// Judges an answer: `Ok(detail)` or `Err(reason)`.
pub fn judge(check: &Check, status: u16, body: &str) -> Result<String, String> {
    let what = check.kind.component();
    if status != 200 {
        let excerpt: String = body.chars().take(200).collect();
        return Err(format!(
            "{what} answered HTTP {status} on {}: {}",
            check.kind.path(),
            excerpt.trim()
        ));
    }
    let json = || -> Result<Value, String> {
        serde_json::from_str(body)
            .map_err(|e| format!("{what}: {} is not JSON: {e}", check.kind.path()))
    };
    match check.kind {
        Kind::PrometheusReady | Kind::AlertmanagerReady => Ok(format!("{what} is ready")),
        Kind::PrometheusTargets => targets(&json()?),
        Kind::PrometheusRules => rules(check, &json()?),
        Kind::GrafanaHealth => {
            let doc = json()?;
            match doc["database"].as_str() {
                Some("ok") => Ok(format!(
                    "grafana is healthy (version {})",
                    doc["version"].as_str().unwrap_or("?")
                )),
                other => Err(format!(
                    "grafana's database is {}",
                    other.unwrap_or("not reported")
                )),
            }
        }
        Kind::NodeExporterTextfile => textfile(body),
    }
}

/// Prometheus's active targets: at least one up (the others are named).
fn targets(doc: &Value) -> Result<String, String> {
    let targets = doc["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if targets.is_empty() {
        return Err("prometheus has no active targets".to_owned());
    }
    let down: Vec<String> = targets
        .iter()
        .filter(|t| t["health"] != "up")
        .map(|t| {
            format!(
                "{} ({}: {})",
                t["scrapeUrl"].as_str().unwrap_or("?"),
                t["health"].as_str().unwrap_or("?"),
                t["lastError"].as_str().unwrap_or("")
            )
        })
        .collect();
    let up = targets.len() - down.len();
    if up == 0 {
        return Err(format!(
            "prometheus has {} active target(s), none up: {}",
            targets.len(),
            down.join(", ")
        ));
    }
    let mut detail = format!("{} active target(s), {up} up", targets.len());
    if !down.is_empty() {
        detail.push_str(&format!("; not up: {}", down.join(", ")));
    }
    Ok(detail)
}

/// Prometheus's rule groups: every one required is loaded.
fn rules(check: &Check, doc: &Value) -> Result<String, String> {
    let loaded: Vec<&str> = doc["data"]["groups"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    let missing: Vec<&str> = check
        .rule_groups
        .iter()
        .map(String::as_str)
        .filter(|g| !loaded.contains(g))
        .collect();
    if missing.is_empty() {
        Ok(format!(
            "rule groups loaded: {}",
            check.rule_groups.join(", ")
        ))
    } else {
        Err(format!(
            "prometheus has not loaded the rule group(s) {} (loaded: {})",
            missing.join(", "),
            if loaded.is_empty() {
                "none".to_owned()
            } else {
                loaded.join(", ")
            }
        ))
    }
}

/// node_exporter's metrics: the textfile collector's series is served.
fn textfile(body: &str) -> Result<String, String> {
    let found = body.lines().any(|l| {
        l.starts_with("node_textfile_scrape_error")
            && l["node_textfile_scrape_error".len()..].starts_with([' ', '{'])
    });
    if !found {
        return Err(
            "node_exporter serves no node_textfile_scrape_error: the textfile collector is off"
                .to_owned(),
        );
    }
    let failing = body
        .lines()
        .any(|l| l.starts_with("node_textfile_scrape_error ") && l.trim_end().ends_with(" 1"));
    if failing {
        Ok("textfile collector on, but node_textfile_scrape_error is 1 (a .prom file is unreadable)".to_owned())
    } else {
        Ok("textfile collector series present".to_owned())
    }
}

/// Fetches `url`: status and body, or why there was no answer.
pub type Fetch<'a> = dyn Fn(&str) -> Result<(u16, String), String> + Sync + 'a;

/// A real HTTP GET with [`REQUEST_TIMEOUT`].
pub fn http_get(url: &str) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("no answer from {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    Ok((status, body))
}

/// Runs one check until it passes or the waits between attempts would pass `deadline`.
pub fn run_check<S: Sleeper + ?Sized>(
    check: &Check,
    deadline: Duration,
    fetch: &Fetch<'_>,
    sleeper: &S,
) -> CheckResult {
    let start = Instant::now();
    let url = check.url();
    let mut attempts = 0;
    let mut waited = Duration::ZERO;
    let mut delay = FIRST_DELAY;
    loop {
        attempts += 1;
        let verdict = fetch(&url).and_then(|(status, body)| judge(check, status, &body));
        let error = match verdict {
            Ok(detail) => {
                return CheckResult {
                    name: check.kind,
                    component: check.kind.component().to_owned(),
                    url,
                    ok: true,
                    attempts,
                    elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                    detail: Some(detail),
                    error: None,
                };
            }
            Err(e) => e,
        };
        let out_of_time = waited + delay > deadline || start.elapsed() + delay > deadline;
        if out_of_time {
            return CheckResult {
                name: check.kind,
                component: check.kind.component().to_owned(),
                url,
                ok: false,
                attempts,
                elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                detail: None,
                error: Some(error),
            };
        }
        pve_common::debug!(
            "{}: attempt {attempts} failed: {error}; retrying in {}",
            check.kind.component(),
            humantime::format_duration(delay)
        );
        sleeper.sleep(delay);
        waited += delay;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Runs every check side by side.
pub fn run_all<S: Sleeper + Sync + ?Sized>(
    checks: &[Check],
    deadline: Duration,
    fetch: &Fetch<'_>,
    sleeper: &S,
) -> Vec<CheckResult> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = checks
            .iter()
            .map(|c| scope.spawn(move || run_check(c, deadline, fetch, sleeper)))
            .collect();
        handles
            .into_iter()
            .zip(checks)
            .map(|(h, c)| {
                h.join().unwrap_or_else(|_| CheckResult {
                    name: c.kind,
                    component: c.kind.component().to_owned(),
                    url: c.url(),
                    ok: false,
                    attempts: 0,
                    elapsed_ms: 0,
                    detail: None,
                    error: Some("the check panicked".to_owned()),
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct FakeSleeper(Mutex<Vec<Duration>>);

    impl Sleeper for FakeSleeper {
        fn sleep(&self, delay: Duration) {
            self.0.lock().unwrap().push(delay);
        }
    }

    fn check(kind: Kind) -> Check {
        Check {
            kind,
            base_url: "http://127.0.0.1:1/".to_owned(),
            rule_groups: vec!["drift-alerts".to_owned(), "host-alerts".to_owned()],
        }
    }

    #[test]
    fn judges_each_component() {
        let targets = r#"{"status":"success","data":{"activeTargets":[
            {"scrapeUrl":"http://a/metrics","health":"up","lastError":""},
            {"scrapeUrl":"http://b/metrics","health":"down","lastError":"connection refused"}]}}"#;
        let d = judge(&check(Kind::PrometheusTargets), 200, targets).unwrap();
        assert!(
            d.contains("2 active target(s), 1 up") && d.contains("connection refused"),
            "{d}"
        );
        assert!(
            judge(
                &check(Kind::PrometheusTargets),
                200,
                r#"{"data":{"activeTargets":[]}}"#
            )
            .unwrap_err()
            .contains("no active targets")
        );
        let rules = r#"{"data":{"groups":[{"name":"drift-alerts"},{"name":"backup-alerts"}]}}"#;
        let e = judge(&check(Kind::PrometheusRules), 200, rules).unwrap_err();
        assert!(
            e.contains("host-alerts") && e.contains("backup-alerts"),
            "{e}"
        );
        assert!(
            judge(
                &check(Kind::GrafanaHealth),
                200,
                r#"{"database":"ok","version":"10.4"}"#
            )
            .is_ok()
        );
        assert!(
            judge(
                &check(Kind::GrafanaHealth),
                200,
                r#"{"database":"failing"}"#
            )
            .is_err()
        );
        assert!(
            judge(&check(Kind::AlertmanagerReady), 503, "not ready")
                .unwrap_err()
                .contains("alertmanager answered HTTP 503")
        );
        let metrics = "# HELP x\nnode_textfile_scrape_error 0\n";
        assert!(judge(&check(Kind::NodeExporterTextfile), 200, metrics).is_ok());
        assert!(
            judge(
                &check(Kind::NodeExporterTextfile),
                200,
                "node_textfile_scrape_errors_total 0\n"
            )
            .is_err()
        );
        assert_eq!(
            check(Kind::PrometheusReady).url(),
            "http://127.0.0.1:1/-/ready"
        );
    }

    #[test]
    fn retries_with_backoff_until_the_deadline_without_sleeping() {
        let sleeper = FakeSleeper(Mutex::new(Vec::new()));
        let fetch =
            |_: &str| -> Result<(u16, String), String> { Err("connection refused".to_owned()) };
        let r = run_check(
            &check(Kind::AlertmanagerReady),
            Duration::from_secs(4),
            &fetch,
            &sleeper,
        );
        assert!(!r.ok);
        assert_eq!(r.error.as_deref(), Some("connection refused"));
        let delays = sleeper.0.lock().unwrap().clone();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            vec![250, 500, 1000, 2000],
            "doubling, within 4 s in total"
        );
        assert_eq!(r.attempts, 5);
    }

    #[test]
    fn a_check_that_recovers_passes() {
        let sleeper = FakeSleeper(Mutex::new(Vec::new()));
        let calls = Mutex::new(0);
        let fetch = |_: &str| -> Result<(u16, String), String> {
            let mut n = calls.lock().unwrap();
            *n += 1;
            if *n < 3 {
                Ok((503, "starting".to_owned()))
            } else {
                Ok((200, "ready".to_owned()))
            }
        };
        let r = run_all(
            &[check(Kind::PrometheusReady)],
            Duration::from_secs(60),
            &fetch,
            &sleeper,
        );
        assert!(r[0].ok && r[0].attempts == 3, "{r:?}");
    }
}
