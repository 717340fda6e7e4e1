//! The monitoring stack of the tests: the bed's real Prometheus (loading the packaged drift and host
//! alert rules), Alertmanager and node_exporter, plus a stand-in for Grafana's `/api/health` (Grafana is
//! not installable on this machine), and a Terraform fixture environment with a local backend.

use std::path::{Path, PathBuf};

use serde_json::Value;
use testbed::monitoring::{GrafanaStandIn, Monitoring};

pub struct Stack {
    pub monitoring: Option<Monitoring>,
    pub grafana: GrafanaStandIn,
    urls: Option<[String; 3]>,
}

fn rule_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/prometheus/alerts")
        .join(name)
        .canonicalize()
        .unwrap()
}

impl Stack {
    pub fn start() -> Stack {
        let monitoring =
            Monitoring::start(&[rule_file("drift.yml"), rule_file("host.yml")], None).unwrap();
        Stack {
            monitoring: Some(monitoring),
            grafana: GrafanaStandIn::start().unwrap(),
            urls: None,
        }
    }

    /// For tests that never reach the checks: nothing listens at the URLs.
    pub fn start_without_daemons() -> Stack {
        let dead = "http://127.0.0.1:9".to_owned();
        Stack {
            monitoring: None,
            grafana: GrafanaStandIn::start().unwrap(),
            urls: Some([dead.clone(), dead.clone(), dead]),
        }
    }

    pub fn url_args(&self) -> Vec<String> {
        let (p, a, n) = match &self.urls {
            Some([p, a, n]) => (p.clone(), a.clone(), n.clone()),
            None => {
                let m = self.monitoring.as_ref().unwrap();
                (
                    m.prometheus.url(),
                    m.alertmanager.url(),
                    m.node_exporter.url(),
                )
            }
        };
        vec![
            format!("--prometheus-url={p}"),
            format!("--alertmanager-url={a}"),
            format!("--grafana-url={}", self.grafana.url()),
            format!("--node-exporter-url={n}"),
        ]
    }
}

/// A copy of `tests/fixtures/homelab` (local backend).
pub struct TfEnv {
    tmp: tempfile::TempDir,
}

impl TfEnv {
    pub fn new() -> TfEnv {
        let tmp = tempfile::Builder::new()
            .prefix("rebuild-monitoring-test-")
            .tempdir()
            .unwrap();
        testbed::terraform::copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/homelab"),
            tmp.path(),
        )
        .unwrap();
        TfEnv { tmp }
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("environments")
    }

    fn dir(&self) -> PathBuf {
        self.root().join("monitoring")
    }

    pub fn has_state(&self) -> bool {
        self.dir().join("terraform.tfstate").exists()
    }

    pub fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("terraform.tfstate")).unwrap())
            .unwrap()
    }

    pub fn set_network_generation(&self, generation: u32) {
        std::fs::write(
            self.dir().join("terraform.tfvars"),
            format!("network_generation = {generation}\n"),
        )
        .unwrap();
    }

    pub fn apply_all(&self) {
        for args in [
            &["init", "-input=false", "-no-color"][..],
            &["apply", "-auto-approve", "-input=false", "-no-color"][..],
        ] {
            testbed::terraform::run_in(&self.dir(), args, &[]).unwrap();
        }
    }
}
