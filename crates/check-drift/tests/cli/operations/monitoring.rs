//! End to end with the test bed's Debian node_exporter, Prometheus and Alertmanager: a drifted fixture
//! environment shows up on node_exporter's `/metrics`, Prometheus (loading `packaging/prometheus/alerts/
//! drift.yml` with `for` shortened in a test copy) fires DriftDetected, Alertmanager receives check-drift's
//! pushed alert and notifies the webhook, and after the drift is removed the alert is resolved there too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testbed::monitoring::{Monitoring, WebhookSink};
use testbed::process::wait_until;

use super::{drift_lab, ops_cmd_with, parse_prom, value};
use crate::support::{Bed, stderr};

const WAIT: Duration = Duration::from_secs(60);

/// `drift.yml` with every `for:` shortened to 1s (the shipped 10m would make a test wait 10 minutes).
fn short_rules(dir: &Path) -> PathBuf {
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/prometheus/alerts/drift.yml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let short: String = text
        .lines()
        .map(|l| match l.split_once("for: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 1s\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(short.contains("for: 1s") && !short.contains("for: 10m"));
    let path = dir.join("drift.yml");
    std::fs::write(&path, short).unwrap();
    path
}

fn pushed(alerts: &Value, env: &str) -> Vec<Value> {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["source"] == "check-drift" && a["labels"]["env"] == env)
        .cloned()
        .collect()
}

/// Webhook notifications (`alerts[]` of every body) about check-drift's DriftDetected for `env`.
fn notified(sink: &WebhookSink, env: &str) -> Vec<Value> {
    sink.bodies()
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["labels"]["source"] == "check-drift"
                && a["labels"]["env"] == env
                && a["labels"]["alertname"] == "DriftDetected"
        })
        .collect()
}

#[test]
fn drift_reaches_prometheus_and_alertmanager_and_resolves() {
    let bed = Bed::new();
    bed.add_env("prod", "basic");
    bed.add_env("lab", "basic");
    let original = bed.state("lab");
    drift_lab(&bed);
    let rules = short_rules(&bed.path(""));
    let sink = WebhookSink::start().unwrap();
    let mon = Monitoring::start(&[rules], Some(&sink.url())).unwrap();
    let am = mon.alertmanager.url();
    let run = |extra: &[&str]| {
        let out = ops_cmd_with(&bed, mon.node_exporter.textfile_dir())
            .arg("--alertmanager-url")
            .arg(&am)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), stderr(&out))
    };

    let (code, err) = run(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("alertmanager: lab: DriftDetected fired"),
        "{err}"
    );

    // node_exporter serves the series, without a textfile scrape error.
    let metrics = mon.node_exporter.metrics().unwrap();
    assert!(
        metrics.contains("pve_drift_status{env=\"lab\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pve_drift_status{env=\"prod\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("node_textfile_scrape_error 0"),
        "{metrics}"
    );
    for (name, _) in check_drift::metrics::METRICS {
        assert!(metrics.contains(name), "{name} missing on /metrics");
    }

    // Alertmanager got the pushed alert at once.
    let alerts = mon.alertmanager.alerts().unwrap();
    let lab = pushed(&alerts, "lab");
    assert_eq!(lab.len(), 1, "{alerts}");
    assert_eq!(lab[0]["labels"]["alertname"], "DriftDetected");
    assert_eq!(lab[0]["labels"]["severity"], "warning");
    assert!(pushed(&alerts, "prod").is_empty());

    // Prometheus fires DriftDetected from the rule file, for lab only.
    wait_until("DriftDetected firing in Prometheus", WAIT, || {
        let r = mon
            .prometheus
            .query("ALERTS{alertname=\"DriftDetected\",alertstate=\"firing\"}")?;
        Ok(r.len() == 1 && r[0]["metric"]["env"] == "lab")
    })
    .unwrap();
    wait_until("the webhook notified of the pushed alert", WAIT, || {
        Ok(notified(&sink, "lab")
            .iter()
            .any(|a| a["status"] == "firing"))
    })
    .unwrap();

    // Same drift again: no new alert, the same one refreshed.
    let (code, err) = run(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("DriftDetected unchanged"), "{err}");
    let again = pushed(&mon.alertmanager.alerts().unwrap(), "lab");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["startsAt"], lab[0]["startsAt"]);

    // A run over prod alone keeps lab's series on /metrics.
    let (code, err) = run(&["--env", "prod"]);
    assert_eq!(code, Some(0), "{err}");
    let samples = parse_prom(
        &std::fs::read_to_string(mon.node_exporter.textfile_dir().join("pve_drift.prom")).unwrap(),
    );
    assert_eq!(value(&samples, "pve_drift_status{env=\"lab\"}"), Some(1.0));
    assert!(
        mon.node_exporter
            .metrics()
            .unwrap()
            .contains("pve_drift_status{env=\"lab\"} 1")
    );

    // Drift removed: the pushed alert is resolved in Alertmanager and the webhook hears of it.
    bed.set_state("lab", &original);
    let (code, err) = run(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("lab: DriftDetected resolved (in sync again)"),
        "{err}"
    );
    wait_until("the pushed alert resolved in Alertmanager", WAIT, || {
        let active = pushed(&mon.alertmanager.alerts()?, "lab");
        Ok(active.iter().all(|a| a["status"]["state"] != "active"))
    })
    .unwrap();
    wait_until("the webhook notified of the resolution", WAIT, || {
        Ok(notified(&sink, "lab")
            .iter()
            .any(|a| a["status"] == "resolved"))
    })
    .unwrap();
    wait_until("DriftDetected no longer firing in Prometheus", WAIT, || {
        Ok(mon
            .prometheus
            .query("ALERTS{alertname=\"DriftDetected\",alertstate=\"firing\"}")?
            .is_empty())
    })
    .unwrap();
    drop(mon);
}
