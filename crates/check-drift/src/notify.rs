//! Pushing alerts to Alertmanager (`POST /api/v2/alerts`) right after a run, so a drift reaches the chat
//! within a minute instead of waiting for scrape, rule evaluation and the rules' `for`.
//!
//! Alerts carry `source="check-drift"` besides the rule alerts' labels, so Alertmanager keeps them apart
//! from the Prometheus rule alerts of the same name (`packaging/alertmanager/drift-route.example.yml`
//! inhibits the rule alert while the pushed one fires). Notify on change: per environment the previous
//! state says which alert was pushed for which fingerprint (the drifted resource set, or the error kind):
//! - new or changed: the old alert (if any) is resolved (`endsAt` = now) and a new one fires; its
//!   `drift_set` label is the fingerprint, so Alertmanager sees a new alert and notifies;
//! - unchanged: the same alert (same labels, same `startsAt`) is sent again only to move its `endsAt`
//!   forward; Alertmanager deduplicates it and notifies nobody;
//! - resolved (in sync again / check succeeds again): the alert is resolved with `endsAt` = now.
//!
//! A firing alert's `endsAt` is 48 hours ahead: a check-drift that stops running lets it expire, when the
//! `DriftCheckStale` rule takes over. An error run leaves a DriftDetected alert alone (drift is unknown).
//! An unreachable Alertmanager is retried with backoff, then a warning; the state is then not updated, so
//! the next run tries again. It never changes the exit code.

use std::collections::BTreeMap;
use std::time::Duration;

use pve_common::retry::{RetryPolicy, Sleeper};
use pve_common::runner::{Access, Runner};
use serde_json::{Value, json};

use crate::plan::Risk;
use crate::report::{EnvReport, Status};
use crate::state::{EnvState, PushedAlert};

/// How long a pushed firing alert stays valid without being refreshed.
pub const FIRING_VALIDITY: Duration = Duration::from_secs(48 * 3600);

/// What one environment's alerts need after this run.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Alerts to send (API v2 objects).
    pub alerts: Vec<Value>,
    /// Human summary per alert, for the log.
    pub notes: Vec<String>,
    /// The state's alerts once the push succeeded.
    pub drift_alert: Option<PushedAlert>,
    /// See `drift_alert`.
    pub failed_alert: Option<PushedAlert>,
}

/// Full precision, never rounded up: a resolving `endsAt` must already be past when Alertmanager merges
/// it, or Alertmanager keeps the firing alert's later `endsAt` (regression: rounding to the second could
/// move "now" half a second into the future and the resolution was lost).
fn rfc3339(t: jiff::Timestamp) -> String {
    t.to_string()
}

fn api_alert(a: &PushedAlert, ends_at: &str) -> Value {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": a.starts_at,
        "endsAt": ends_at,
    })
}

fn drift_alert(r: &EnvReport, fingerprint: &str, now: &str) -> PushedAlert {
    let c = &r.counts;
    let dangerous: Vec<&str> = r
        .resources
        .iter()
        .filter(|x| !x.ignored && x.risk == Risk::Dangerous)
        .map(|x| x.address.as_str())
        .collect();
    let mut summary = format!(
        "Terraform drift in environment {}: {} to create, {} to update, {} to delete, {} to replace",
        r.env, c.create, c.update, c.delete, c.replace
    );
    if !dangerous.is_empty() {
        summary.push_str(&format!("; DANGEROUS: {}", dangerous.join(", ")));
    }
    let listed: Vec<String> = r
        .resources
        .iter()
        .filter(|x| !x.ignored)
        .take(20)
        .map(|x| format!("{} {}", x.action.symbol(), x.address))
        .collect();
    let description = format!(
        "check-drift found {} resource(s) in drift in environment {} (origin: {} changed outside Terraform, \
         {} configuration not applied, {} both): {}. Run `check-drift --env {}` to see what changed.",
        r.resources.iter().filter(|x| !x.ignored).count(),
        r.env,
        r.origins.drift,
        r.origins.pending,
        r.origins.both,
        listed.join("; "),
        r.env
    );
    PushedAlert {
        labels: BTreeMap::from([
            ("alertname".to_owned(), "DriftDetected".to_owned()),
            ("env".to_owned(), r.env.clone()),
            ("severity".to_owned(), "warning".to_owned()),
            ("source".to_owned(), "check-drift".to_owned()),
            ("drift_set".to_owned(), fingerprint.to_owned()),
        ]),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary),
            ("description".to_owned(), description),
        ]),
        starts_at: now.to_owned(),
        fingerprint: fingerprint.to_owned(),
    }
}

fn failed_alert(r: &EnvReport, kind: &str, now: &str) -> PushedAlert {
    let first = r
        .error
        .as_ref()
        .map(|e| e.message.lines().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    PushedAlert {
        labels: BTreeMap::from([
            ("alertname".to_owned(), "DriftCheckFailed".to_owned()),
            ("env".to_owned(), r.env.clone()),
            ("severity".to_owned(), "critical".to_owned()),
            ("source".to_owned(), "check-drift".to_owned()),
            ("kind".to_owned(), kind.to_owned()),
        ]),
        annotations: BTreeMap::from([
            (
                "summary".to_owned(),
                format!("Drift check failed for environment {} ({kind})", r.env),
            ),
            (
                "description".to_owned(),
                pve_common::secret::mask(&format!(
                    "check-drift could not check environment {} (error kind {kind}): {first}. \
                     Drift is unknown until it succeeds; see `journalctl -u pve-drift-check`.",
                    r.env
                )),
            ),
        ]),
        starts_at: now.to_owned(),
        fingerprint: kind.to_owned(),
    }
}

/// Decides what to send for environment `r` given what was pushed before (`prev`).
pub fn plan(r: &EnvReport, prev: &EnvState, now: jiff::Timestamp) -> Plan {
    let t = Times {
        env: &r.env,
        now: rfc3339(now),
        until: rfc3339(now + FIRING_VALIDITY),
    };
    let mut p = Plan {
        drift_alert: prev.drift_alert.clone(),
        failed_alert: prev.failed_alert.clone(),
        ..Plan::default()
    };
    match r.status {
        Status::Error => {
            let kind = r
                .error
                .as_ref()
                .map(|e| crate::metrics::kind_name(e.kind))
                .unwrap_or_else(|| "unknown".to_owned());
            let change = Change {
                unchanged: format!(
                    "{}: DriftCheckFailed ({kind}) still firing, not notified again",
                    r.env
                ),
                why: "the error kind changed",
                fired: format!("{}: DriftCheckFailed ({kind}) fired", r.env),
            };
            if let Some(a) = t.fire(&mut p, prev.failed_alert.clone(), &kind, change, || {
                failed_alert(r, &kind, &t.now)
            }) {
                p.failed_alert = Some(a);
            }
        }
        Status::Drift | Status::InSync => {
            if let Some(a) = prev.failed_alert.clone() {
                t.resolve(&mut p, &a, "the check succeeds again");
                p.failed_alert = None;
            }
            if r.status == Status::Drift {
                let fp = crate::state::fingerprint(r);
                let change = Change {
                    unchanged: format!(
                        "{}: DriftDetected unchanged (drift set {fp}), not notified again",
                        r.env
                    ),
                    why: "the drifted resources changed",
                    fired: format!("{}: DriftDetected fired (drift set {fp})", r.env),
                };
                if let Some(a) = t.fire(&mut p, prev.drift_alert.clone(), &fp, change, || {
                    drift_alert(r, &fp, &t.now)
                }) {
                    p.drift_alert = Some(a);
                }
            } else if let Some(a) = prev.drift_alert.clone() {
                t.resolve(&mut p, &a, "in sync again");
                p.drift_alert = None;
            }
        }
    }
    p
}

/// The environment and times of one run's alerts: `now` ends an alert, `until` keeps one firing.
struct Times<'a> {
    env: &'a str,
    now: String,
    until: String,
}

/// The notes of an alert that fires: kept firing (same fingerprint), or replaced (and why).
struct Change {
    unchanged: String,
    why: &'static str,
    fired: String,
}

impl Times<'_> {
    fn resolve(&self, p: &mut Plan, a: &PushedAlert, why: &str) {
        p.alerts.push(api_alert(a, &self.now));
        p.notes.push(format!(
            "{}: {} resolved ({why})",
            self.env, a.labels["alertname"]
        ));
    }

    /// Keeps `pushed` firing when its fingerprint is `fingerprint` (no new notification); else resolves it
    /// (when there is one) and fires the alert `new` makes, which it returns.
    fn fire(
        &self,
        p: &mut Plan,
        pushed: Option<PushedAlert>,
        fingerprint: &str,
        change: Change,
        new: impl FnOnce() -> PushedAlert,
    ) -> Option<PushedAlert> {
        match pushed {
            Some(a) if a.fingerprint == fingerprint => {
                p.alerts.push(api_alert(&a, &self.until));
                p.notes.push(change.unchanged);
                None
            }
            old => {
                if let Some(a) = old {
                    self.resolve(p, &a, change.why);
                }
                let a = new();
                p.alerts.push(api_alert(&a, &self.until));
                p.notes.push(change.fired);
                Some(a)
            }
        }
    }
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No answer (refused, reset, timed out): worth retrying.
    #[error("{0}")]
    Transport(String),
    /// An HTTP error status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// The first 200 bytes of the answer.
        body: String,
    },
}

impl pve_common::retry::Transient for PushError {
    fn is_transient(&self) -> bool {
        match self {
            PushError::Transport(_) => true,
            PushError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

fn post(url: &str, body: &[u8]) -> Result<(), PushError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .timeout_connect(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| PushError::Transport(e.to_string()))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Err(PushError::Status {
        status,
        body: text.chars().take(200).collect(),
    })
}

/// Sends `alerts` to `<base>/api/v2/alerts` through the runner (dry-run shows it), retrying transient
/// failures. `Ok(false)`: failed for good (already warned about).
pub fn push(
    runner: &Runner,
    base: &str,
    alerts: &[Value],
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
) -> bool {
    if alerts.is_empty() {
        return true;
    }
    let url = format!("{base}/api/v2/alerts");
    let body = serde_json::to_vec(alerts).unwrap_or_default();
    let result = runner.effect(
        Access::Mutating,
        format_args!("push {} alert(s) to {url}", alerts.len()),
        || {
            pve_common::retry::retry_with_backoff(
                policy,
                sleeper,
                &format!("pushing alerts to {url}"),
                |_| post(&url, &body),
            )
        },
    );
    match result {
        Ok(_) => true,
        Err(e) => {
            pve_common::warn!(
                "could not push alerts to Alertmanager: {e}; the drift check itself is unaffected, and the \
                 next run tries again"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::EnvError;
    use crate::terraform::ErrorKind;
    use crate::test_support::drifted;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn apply(prev: &mut EnvState, p: &Plan) {
        prev.drift_alert = p.drift_alert.clone();
        prev.failed_alert = p.failed_alert.clone();
    }

    #[test]
    fn new_unchanged_changed_resolved() {
        let mut st = EnvState::default();
        let d = drifted();
        let p1 = plan(&d, &st, t(0));
        assert_eq!(p1.alerts.len(), 1);
        let a = &p1.alerts[0];
        assert_eq!(a["labels"]["alertname"], "DriftDetected");
        assert_eq!(a["labels"]["severity"], "warning");
        assert_eq!(a["labels"]["env"], "lab");
        assert!(
            a["annotations"]["summary"]
                .as_str()
                .unwrap()
                .contains("DANGEROUS")
        );
        assert!(a["endsAt"].as_str().unwrap() > a["startsAt"].as_str().unwrap());
        apply(&mut st, &p1);

        let p2 = plan(&d, &st, t(86400));
        assert_eq!(p2.alerts.len(), 1, "refresh only");
        assert_eq!(
            p2.alerts[0]["startsAt"], a["startsAt"],
            "same alert, no new notification"
        );
        assert_eq!(p2.alerts[0]["labels"], a["labels"]);
        assert!(p2.notes[0].contains("unchanged"));
        apply(&mut st, &p2);

        let mut smaller = d.clone();
        smaller.resources.pop();
        let p3 = plan(&smaller, &st, t(2 * 86400));
        assert_eq!(p3.alerts.len(), 2, "old resolved, new fired");
        assert_eq!(p3.alerts[0]["endsAt"], p3.alerts[1]["startsAt"]);
        assert_ne!(
            p3.alerts[0]["labels"]["drift_set"],
            p3.alerts[1]["labels"]["drift_set"]
        );
        apply(&mut st, &p3);

        let in_sync = EnvReport::checked("lab", Some(0), vec![], vec![], vec![]);
        let p4 = plan(&in_sync, &st, t(3 * 86400));
        assert_eq!(p4.alerts.len(), 1);
        assert_eq!(
            p4.alerts[0]["endsAt"],
            rfc3339(t(3 * 86400)),
            "endsAt = now"
        );
        assert_eq!(p4.drift_alert, None);
        apply(&mut st, &p4);
        assert!(
            plan(&in_sync, &st, t(4 * 86400)).alerts.is_empty(),
            "nothing to say"
        );
    }

    #[test]
    fn errors_fire_critical_and_leave_drift_alone() {
        let mut st = EnvState::default();
        let first = plan(&drifted(), &st, t(0));
        apply(&mut st, &first);
        let failed = EnvReport::failed(
            "lab",
            None,
            EnvError {
                kind: ErrorKind::Network,
                message: "Error: dial tcp 127.0.0.1:9: connection refused".into(),
                lock: None,
            },
        );
        let p = plan(&failed, &st, t(10));
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(p.alerts[0]["labels"]["alertname"], "DriftCheckFailed");
        assert_eq!(p.alerts[0]["labels"]["severity"], "critical");
        assert_eq!(p.alerts[0]["labels"]["kind"], "network");
        assert!(p.drift_alert.is_some(), "drift unknown, alert kept");
        apply(&mut st, &p);
        let back = plan(&drifted(), &st, t(20));
        let names: Vec<_> = back
            .alerts
            .iter()
            .map(|a| a["labels"]["alertname"].clone())
            .collect();
        assert_eq!(
            names,
            ["DriftCheckFailed", "DriftDetected"],
            "failure resolved, drift refreshed"
        );
        assert_eq!(back.alerts[0]["endsAt"], rfc3339(t(20)));
    }

    #[test]
    fn unreachable_alertmanager_is_retried_then_a_warning() {
        #[derive(Default)]
        struct Count(std::cell::RefCell<Vec<Duration>>);
        impl Sleeper for Count {
            fn sleep(&self, d: Duration) {
                self.0.borrow_mut().push(d);
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let sleeper = Count::default();
        let policy = RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        let (ok, lines) = pve_common::log::capture(|| {
            push(
                &Runner::new(false),
                &format!("http://127.0.0.1:{port}"),
                &[json!({"labels": {"alertname": "x"}})],
                &policy,
                &sleeper,
            )
        });
        assert!(!ok);
        assert_eq!(
            *sleeper.0.borrow(),
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert!(
            lines.last().unwrap().contains("could not push alerts"),
            "{lines:?}"
        );
    }
}
