//! Integration tests of the `rebuild-monitoring` binary: verification against the bed's real Debian
//! Prometheus, Alertmanager and node_exporter (Grafana is not installable here: a small local HTTP
//! responder answers its `/api/health`), and `--from-terraform` with a fixture environment.
#![allow(clippy::unwrap_used)]

#[path = "cli/stack.rs"]
mod stack;

use assert_cmd::Command;
use serde_json::Value;
use stack::Stack;

fn bin() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("rebuild-monitoring");
    for var in [
        "PROMETHEUS_URL",
        "ALERTMANAGER_URL",
        "GRAFANA_URL",
        "NODE_EXPORTER_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

fn run(stack: &Stack, args: &[&str]) -> (i32, Value, String) {
    let out = bin()
        .args(stack.url_args())
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stderr}"));
    assert_eq!(doc["schema"], "pve-rebuild-monitoring/v1");
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {doc:#}"))
}

#[test]
fn help_and_version_exit_0() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Usage: rebuild-monitoring"));
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_64() {
    bin().arg("--no-such-flag").assert().code(64);
    let urls = [
        "--prometheus-url=http://127.0.0.1:1",
        "--alertmanager-url=http://127.0.0.1:1",
        "--grafana-url=http://127.0.0.1:1",
        "--node-exporter-url=http://127.0.0.1:1",
    ];
    bin()
        .args(["--verify-only", "--from-terraform"])
        .args(urls)
        .assert()
        .code(64);
    bin()
        .args(["--verify-only", "--root", "/nonexistent"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("--prometheus-url"));
    bin()
        .args(["--verify-only", "--prometheus-url=ftp://x"])
        .args(&urls[1..])
        .assert()
        .code(64);
    bin()
        .args(["--verify-only", "--vmid", "5"])
        .args(urls)
        .assert()
        .code(64);
}

#[test]
fn verify_only_passes_on_a_healthy_stack() {
    let stack = Stack::start();
    let (code, doc, stderr) = run(&stack, &["--verify-only", "--deadline", "60s"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["outcome"], "ok");
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 6);
    assert!(checks.iter().all(|c| c["ok"] == true), "{doc:#}");
    assert!(
        check(&doc, "prometheus_rules")["detail"]
            .as_str()
            .unwrap()
            .contains("drift-alerts, host-alerts")
    );
    assert_eq!(check(&doc, "grafana_health")["component"], "grafana");
}

#[test]
fn one_component_down_is_named() {
    let mut stack = Stack::start();
    stack
        .monitoring
        .as_mut()
        .unwrap()
        .alertmanager
        .stop()
        .unwrap();
    let (code, doc, stderr) = run(&stack, &["--verify-only", "--deadline", "2s"]);
    assert_eq!(code, 1, "{stderr}\n{doc:#}");
    assert_eq!(doc["outcome"], "failed");
    let am = check(&doc, "alertmanager_ready");
    assert_eq!(am["ok"], false);
    assert!(am["attempts"].as_u64().unwrap() > 1, "retried: {am:#}");
    assert!(
        am["error"].as_str().unwrap().contains("no answer"),
        "{am:#}"
    );
    assert!(
        stderr.contains("alertmanager check AlertmanagerReady failed"),
        "{stderr}"
    );
    for other in [
        "prometheus_ready",
        "prometheus_rules",
        "grafana_health",
        "node_exporter_textfile",
    ] {
        assert_eq!(check(&doc, other)["ok"], true, "{other}: {doc:#}");
    }
}

#[test]
fn missing_rule_group_fails_the_rules_check() {
    let stack = Stack::start();
    let (code, doc, _) = run(
        &stack,
        &[
            "--verify-only",
            "--deadline",
            "1s",
            "--rule-group",
            "drift-alerts",
            "--rule-group",
            "backup-alerts",
        ],
    );
    assert_eq!(code, 1);
    let rules = check(&doc, "prometheus_rules");
    assert!(
        rules["error"].as_str().unwrap().contains("backup-alerts"),
        "{rules:#}"
    );
}

#[test]
fn from_terraform_applies_the_module_then_verifies() {
    let stack = Stack::start();
    let env = stack::TfEnv::new();
    let (code, doc, stderr) = run(
        &stack,
        &[
            "--from-terraform",
            "--yes",
            "--root",
            env.root().to_str().unwrap(),
            "--deadline",
            "60s",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["rebuild"]["method"], "from_terraform");
    assert_eq!(doc["rebuild"]["status"], "ok", "{doc:#}");
    let changes: Vec<&str> = doc["rebuild"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        changes.contains(&"module.monitoring_stack.terraform_data.vm (create)"),
        "{changes:?}"
    );
    let state = env.state();
    let addresses: Vec<String> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}.{}",
                r["module"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        addresses.contains(&"module.monitoring_stack.vm".to_owned()),
        "{addresses:?}"
    );
    assert!(
        !addresses.contains(&".minio".to_owned()),
        "only the target and its dependencies: {addresses:?}"
    );
    assert_eq!(doc["outcome"], "ok");
}

#[test]
fn from_terraform_dry_run_and_refusal_change_nothing() {
    let stack = Stack::start_without_daemons();
    let env = stack::TfEnv::new();
    let root = env.root().to_str().unwrap().to_owned();
    let (code, doc, stderr) = run(&stack, &["--from-terraform", "--dry-run", "--root", &root]);
    assert_eq!(code, 0, "{stderr}\n{doc:#}");
    assert_eq!(doc["outcome"], "would_rebuild");
    assert_eq!(doc["rebuild"]["status"], "planned");
    assert!(doc["checks"].as_array().unwrap().is_empty());
    assert!(!env.has_state(), "dry-run wrote a state");
    // A plan that would replace the network the module depends on is refused.
    env.set_network_generation(2);
    env.apply_all();
    env.set_network_generation(3);
    let before = env.state();
    let (code, doc, stderr) = run(&stack, &["--from-terraform", "--yes", "--root", &root]);
    assert_eq!(code, 1, "{stderr}\n{doc:#}");
    assert_eq!(doc["outcome"], "refused", "{doc:#}");
    assert_eq!(
        doc["rebuild"]["refused_changes"][0],
        "terraform_data.network (delete+create)"
    );
    assert_eq!(env.state(), before, "nothing applied");
}

#[test]
fn from_backup_is_not_available_in_this_build() {
    let stack = Stack::start_without_daemons();
    let (code, doc, stderr) = run(&stack, &["--from-backup", "--vmid", "111"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(doc["outcome"], "failed");
    assert_eq!(doc["rebuild"]["method"], "from_backup");
    assert!(stderr.contains("restore-vm library pending"), "{stderr}");
    assert!(
        doc["checks"].as_array().unwrap().is_empty(),
        "no fake success"
    );
}
