//! node_exporter, Prometheus and Alertmanager wired together.

use serde_json::json;

#[test]
fn monitoring_scrapes_textfile_and_routes_alerts() {
    use std::time::Duration;
    use testbed::monitoring::{Monitoring, WebhookSink};
    use testbed::process::wait_until;

    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("backups.rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: backups\n    rules:\n      - alert: BackupTooOld\n        \
         expr: pve_backup_age_seconds > 100\n        labels:\n          severity: warning\n",
    )
    .unwrap();
    let sink = WebhookSink::start().unwrap();
    let mon = Monitoring::start(&[rules], Some(&sink.url())).unwrap();

    mon.node_exporter
        .write_textfile("backups", "# HELP pve_backup_age_seconds Age.\n# TYPE pve_backup_age_seconds gauge\npve_backup_age_seconds{vmid=\"100\"} 500\n")
        .unwrap();
    let metrics = mon.node_exporter.metrics().unwrap();
    assert!(
        metrics.contains("pve_backup_age_seconds{vmid=\"100\"} 500"),
        "{metrics}"
    );
    assert!(
        metrics.contains("node_textfile_scrape_error 0"),
        "{metrics}"
    );

    wait_until(
        "Prometheus to scrape the textfile metric",
        Duration::from_secs(30),
        || {
            let result = mon
                .prometheus
                .query("pve_backup_age_seconds{job=\"node\"}")?;
            Ok(result.first().is_some_and(|r| r["value"][1] == "500"))
        },
    )
    .unwrap();
    assert_eq!(mon.prometheus.rules().unwrap()[0]["name"], "backups");

    mon.alertmanager
        .post_alerts(&json!([{
            "labels": {"alertname": "MinioDown", "severity": "critical"},
            "annotations": {"summary": "posted by the test"}
        }]))
        .unwrap();
    let alerts = mon.alertmanager.alerts().unwrap();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "MinioDown"),
        "{alerts}"
    );

    // The rule fires, Prometheus sends it, Alertmanager notifies the webhook.
    wait_until(
        "BackupTooOld at the webhook",
        Duration::from_secs(30),
        || Ok(sink.bodies().iter().any(|b| b.contains("BackupTooOld"))),
    )
    .unwrap();
}
