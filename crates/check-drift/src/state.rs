//! What check-drift remembers between runs, per environment, in a small JSON file (`--state-file`): when the
//! current drift was first seen (the drift age metric), the last successful check, and the alerts pushed to
//! Alertmanager with the fingerprint of the drifted resource set (so a run notifies only on change).
//!
//! A missing or unreadable file is an empty state (a warning for an unreadable one): the worst outcome is a
//! drift age restarting and one repeated notification.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::report::{EnvReport, Status};

/// The `schema` value of the state file.
pub const SCHEMA: &str = "pve-drift-state/v1";

/// The whole state file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Always [`SCHEMA`].
    #[serde(default)]
    pub schema: String,
    /// Per environment name.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvState>,
}

/// One environment's memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvState {
    /// Status of the last check.
    pub status: Option<Status>,
    /// Unix seconds when the current drift was first seen (kept through error runs, cleared when in sync).
    pub first_detected: Option<i64>,
    /// Unix seconds of the last check that did not error.
    pub last_success: Option<i64>,
    /// Fingerprint of the last drifted resource set.
    pub fingerprint: Option<String>,
    /// The DriftDetected alert pushed and not yet resolved.
    pub drift_alert: Option<PushedAlert>,
    /// The DriftCheckFailed alert pushed and not yet resolved.
    pub failed_alert: Option<PushedAlert>,
}

/// An alert as pushed to Alertmanager: enough to refresh or resolve it later with the same identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PushedAlert {
    /// Labels (the alert's identity in Alertmanager).
    pub labels: BTreeMap<String, String>,
    /// Annotations last sent.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// What the alert stands for: the resource-set fingerprint or the error kind.
    pub fingerprint: String,
}

impl State {
    /// Reads the state file; missing means empty, unreadable means empty with a warning.
    pub fn load(path: &Path) -> State {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(state) => state,
                Err(e) => {
                    pve_common::warn!(
                        "state file {} is not valid ({e}); starting from an empty state",
                        path.display()
                    );
                    State::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                pve_common::warn!(
                    "cannot read the state file {} ({e}); starting from an empty state",
                    path.display()
                );
                State::default()
            }
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut state = self.clone();
        state.schema = SCHEMA.to_owned();
        let mut out = serde_json::to_vec_pretty(&state).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Updates the timestamps of environment `report.env` after a check that finished at `now`.
    pub fn record(&mut self, report: &EnvReport, now: i64) {
        let e = self.environments.entry(report.env.clone()).or_default();
        match report.status {
            Status::InSync => {
                e.first_detected = None;
                e.last_success = Some(now);
                e.fingerprint = None;
            }
            Status::Drift => {
                let fp = fingerprint(report);
                if e.first_detected.is_none() {
                    e.first_detected = Some(now);
                }
                e.last_success = Some(now);
                e.fingerprint = Some(fp);
            }
            // Unknown: whatever drift there was may still be there.
            Status::Error => {}
        }
        e.status = Some(report.status);
    }
}

/// Fingerprint of an environment's drifted resource set: the sorted `address action` pairs of every
/// resource not ignored, hashed (SHA-256, first 16 hex digits). Attribute values do not count: a
/// memory size changing again on the same VM is the same drift.
pub fn fingerprint(report: &EnvReport) -> String {
    let mut items: Vec<String> = report
        .resources
        .iter()
        .filter(|r| !r.ignored)
        .map(|r| format!("{} {}", r.address, r.action.as_str()))
        .collect();
    items.sort();
    items.dedup();
    let digest = sha2::Sha256::digest(items.join("\n").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::drifted;

    #[test]
    fn first_detection_survives_errors_and_clears_when_in_sync() {
        let mut s = State::default();
        let drift = drifted();
        s.record(&drift, 100);
        s.record(&drift, 200);
        assert_eq!(s.environments["lab"].first_detected, Some(100));
        let failed = EnvReport::failed(
            "lab",
            None,
            crate::report::EnvError {
                kind: crate::terraform::ErrorKind::Network,
                message: "x".into(),
                lock: None,
            },
        );
        s.record(&failed, 300);
        assert_eq!(s.environments["lab"].first_detected, Some(100));
        assert_eq!(s.environments["lab"].last_success, Some(200));
        s.record(
            &EnvReport::checked("lab", Some(0), vec![], vec![], vec![]),
            400,
        );
        assert_eq!(s.environments["lab"].first_detected, None);
        assert_eq!(s.environments["lab"].last_success, Some(400));
    }

    #[test]
    fn fingerprint_depends_on_the_set_not_the_order_or_values() {
        let a = drifted();
        let mut b = a.clone();
        b.resources.reverse();
        b.resources[0].changed_attributes.clear();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = a.clone();
        c.resources.pop();
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint(&a).len(), 16);
    }

    #[test]
    fn round_trip_and_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path), State::default());
        let mut s = State::default();
        s.record(&drifted(), 5);
        std::fs::write(&path, s.to_bytes()).unwrap();
        let back = State::load(&path);
        assert_eq!(back.environments, s.environments);
        std::fs::write(&path, "{not json").unwrap();
        let (state, lines) = pve_common::log::capture(|| State::load(&path));
        assert_eq!(state, State::default());
        assert!(lines[0].contains("not valid"), "{lines:?}");
    }
}
