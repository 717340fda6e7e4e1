//! Integration tests of the `rebuild-monitoring` binary: verification against the bed's real Debian
//! Prometheus, Alertmanager and node_exporter (Grafana is not installable here: a small local HTTP
//! responder answers its `/api/health`), `--from-terraform` with a fixture environment, and `--from-backup`
//! (and the default mode's choice) against the simulated Proxmox node behind a real sshd.
#![allow(clippy::unwrap_used)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

mod fleet;
mod node;
mod stack;
mod vm;

use assert_cmd::Command;
use node::Node;
use rebuild_monitoring::verify::{CheckResult, Kind};
use rebuild_monitoring::{Method, Mode, Outcome, RebuildStatus, Report};
use stack::Stack;
use vm::Vm;

fn bin() -> Command {
    let mut cmd = Command::from_std(testbed::tool::command(env!(
        "CARGO_BIN_EXE_rebuild-monitoring"
    )));
    cmd.env("RESTORE_VM_RETRY_DELAY_MS", "10");
    cmd
}

/// A run against the stack and the simulated node.
fn run_on(stack: &Stack, node: &Node, args: &[&str]) -> (i32, Report, String) {
    let mut cmd = bin();
    cmd.env("HOME", node.home()).args(node.args());
    run_cmd(cmd, stack, args)
}

/// The journal as `qm start`-style words: the command, and its subcommand for qm.
fn commands(node: &Node) -> Vec<String> {
    node.journal()
        .iter()
        .map(|argv| match argv[0].as_str() {
            "qm" => format!("qm {}", argv[1]),
            other => other.to_owned(),
        })
        .collect()
}

const DAY: i64 = 86_400;

/// A `--json` run with the stack's URLs.
fn run_cmd(mut cmd: Command, stack: &Stack, args: &[&str]) -> (i32, Report, String) {
    let out = cmd
        .args(stack.url_args())
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    testbed::tool::typed_run(&out, "pve-rebuild-monitoring/v1")
}

fn run(stack: &Stack, args: &[&str]) -> (i32, Report, String) {
    run_cmd(bin(), stack, args)
}

/// The check `kind`; panics naming the report when it did not run.
fn check(doc: &Report, kind: Kind) -> &CheckResult {
    testbed::tool::entry(
        &doc.checks,
        |c| c.name == kind,
        format_args!("check {kind:?}"),
        doc,
    )
}

#[test]
fn help_and_version_exit_0() {
    testbed::tool::assert_help_and_version(
        &bin().arg("--help").output().unwrap(),
        &bin().arg("--version").output().unwrap(),
        "rebuild-monitoring",
        env!("CARGO_PKG_VERSION"),
    );
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
    // The VM's host goes to ssh: one that would be read as an option is refused before any connection.
    bin()
        .args(["--verify-only", "--vm-host=-oProxyCommand=x"])
        .args(urls)
        .assert()
        .code(64)
        .stderr(predicates::str::contains("--vm-host"));
}

#[test]
fn verify_only_passes_on_a_healthy_stack() {
    let stack = Stack::start();
    let (code, doc, stderr) = run(&stack, &["--verify-only", "--deadline", "60s"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::Ok);
    let checks = &doc.checks;
    assert_eq!(checks.len(), 6);
    assert!(checks.iter().all(|c| c.ok), "{doc:#?}");
    assert!(
        check(&doc, Kind::PrometheusRules)
            .detail
            .as_deref()
            .unwrap()
            .contains("drift-alerts, host-alerts")
    );
    assert_eq!(check(&doc, Kind::GrafanaHealth).component, "grafana");
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
    assert_eq!(code, 1, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::Failed);
    let am = check(&doc, Kind::AlertmanagerReady);
    assert!(!am.ok);
    assert!(am.attempts > 1, "retried: {am:#?}");
    assert!(
        am.error.as_deref().unwrap().contains("no answer"),
        "{am:#?}"
    );
    assert!(
        stderr.contains("alertmanager check AlertmanagerReady failed"),
        "{stderr}"
    );
    for other in [
        Kind::PrometheusReady,
        Kind::PrometheusRules,
        Kind::GrafanaHealth,
        Kind::NodeExporterTextfile,
    ] {
        assert!(check(&doc, other).ok, "{other:?}: {doc:#?}");
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
    let rules = check(&doc, Kind::PrometheusRules);
    assert!(
        rules.error.as_deref().unwrap().contains("backup-alerts"),
        "{rules:#?}"
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
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.rebuild.method, Method::FromTerraform);
    assert_eq!(doc.rebuild.status, RebuildStatus::Ok, "{doc:#?}");
    let changes: Vec<&str> = doc.rebuild.changes.iter().map(String::as_str).collect();
    assert!(
        changes.contains(&"module.monitoring_stack.terraform_data.vm (create)"),
        "{changes:?}"
    );
    let state = env.state();
    // Terraform's own state format: not a report of ours, read as it is.
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
    assert_eq!(doc.outcome, Outcome::Ok);
}

#[test]
fn from_terraform_dry_run_and_refusal_change_nothing() {
    let stack = Stack::start_without_daemons();
    let env = stack::TfEnv::new();
    let root = env.root().to_str().unwrap().to_owned();
    let (code, doc, stderr) = run(&stack, &["--from-terraform", "--preview", "--root", &root]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::WouldRebuild);
    assert_eq!(doc.rebuild.status, RebuildStatus::Planned);
    assert!(doc.checks.is_empty());
    assert!(!env.has_state(), "dry-run wrote a state");
    // A plan that would replace the network the module depends on is refused.
    env.set_network_generation(2);
    env.apply_all();
    env.set_network_generation(3);
    let before = env.state();
    let (code, doc, stderr) = run(&stack, &["--from-terraform", "--yes", "--root", &root]);
    assert_eq!(code, 1, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::Refused, "{doc:#?}");
    assert_eq!(
        doc.rebuild.refused_changes[0],
        "terraform_data.network (delete+create)"
    );
    assert_eq!(env.state(), before, "nothing applied");
}

#[test]
fn default_mode_restores_a_recent_backup_with_a_save_point_then_verifies() {
    let stack = Stack::start();
    let node = Node::start(&[2 * 3600, 3 * DAY]);
    let (code, doc, stderr) = run_on(
        &stack,
        &node,
        &["--mode", "auto", "--yes", "--deadline", "60s"],
    );
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.mode, Mode::Auto);
    assert_eq!(doc.rebuild.method, Method::FromBackup);
    assert_eq!(doc.rebuild.status, RebuildStatus::Ok, "{doc:#?}");
    let reason = doc.rebuild.reason.as_deref().unwrap();
    assert!(reason.contains("younger than --max-age 7days"), "{reason}");
    assert!(
        stderr.contains(reason),
        "the choice is on stderr too: {stderr}"
    );
    // The save point, the restore of the newest backup, the start: in this order, nothing else.
    assert_eq!(
        commands(&node),
        ["vzdump", "qm shutdown", "qmrestore", "qm start"],
        "{:?}",
        node.journal()
    );
    let journal = node.journal();
    let restore = doc.rebuild.restore.as_ref().unwrap();
    assert_eq!(journal[2][1], restore.backup.volid);
    assert!(reason.contains(&restore.backup.volid));
    assert!(restore.backup.age_seconds < 3 * 3600);
    assert_eq!(
        &journal[2][2..],
        ["111", "--storage", "local-lvm", "--force", "1"]
    );
    let save_point = restore.save_point.as_deref().unwrap();
    assert!(
        save_point.starts_with("local:backup/vzdump-qemu-111-"),
        "{save_point}"
    );
    assert!(
        restore
            .save_point_restore_command
            .as_deref()
            .unwrap()
            .contains(save_point)
    );
    assert!(restore.started);
    // Then the stack was verified against the real daemons.
    assert_eq!(doc.outcome, Outcome::Ok);
    assert_eq!(doc.checks.len(), 6);
    assert!(doc.checks.iter().all(|c| c.ok), "{doc:#?}");
}

#[test]
fn from_backup_dry_run_says_what_it_would_do_and_changes_nothing() {
    let stack = Stack::start_without_daemons();
    let node = Node::start(&[3600]);
    let (code, doc, stderr) = run_on(&stack, &node, &["--from-backup", "--preview"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::WouldRebuild);
    assert_eq!(doc.rebuild.status, RebuildStatus::Planned);
    assert_eq!(doc.rebuild.reason.as_deref(), Some("--from-backup"));
    assert!(node.journal().is_empty(), "{:?}", node.journal());
    for would in [
        "[dry-run] would run: vzdump 111 --storage local",
        "[dry-run] would run: qm shutdown 111",
        "[dry-run] would run: qmrestore local:backup/vzdump-qemu-111-",
    ] {
        assert!(stderr.contains(would), "{would}: {stderr}");
    }
    assert!(doc.rebuild.restore.as_ref().unwrap().save_point.is_none());
    assert!(doc.checks.is_empty());
}

#[test]
fn from_backup_without_yes_and_without_a_terminal_is_refused() {
    let stack = Stack::start_without_daemons();
    let node = Node::start(&[3600]);
    // setsid: no controlling terminal to ask on, whatever runs the tests.
    let out = testbed::process::command("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_rebuild-monitoring"))
        .env("HOME", node.home())
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .args(stack.url_args())
        .args(node.args())
        .args(["--from-backup", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, doc, stderr) = testbed::tool::typed_run::<Report>(&out, "pve-rebuild-monitoring/v1");
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(doc.outcome, Outcome::Refused, "{doc:#?}");
    assert_eq!(doc.rebuild.status, RebuildStatus::Refused);
    // Without a terminal the prompt reads stdin; its end is "no" (pass --force to confirm).
    assert!(stderr.contains("not confirmed"), "{stderr}");
    assert!(node.journal().is_empty(), "{:?}", node.journal());
}

#[test]
fn default_mode_falls_back_to_terraform_without_a_recent_backup() {
    let stack = Stack::start_without_daemons();
    let env = stack::TfEnv::new();
    let root = env.root().to_str().unwrap().to_owned();
    for (ages, why) in [
        (&[10 * DAY][..], "older than --max-age 7days"),
        (&[][..], "has no backup"),
    ] {
        let node = Node::start(ages);
        let (code, doc, stderr) = run_on(
            &stack,
            &node,
            &["--mode", "auto", "--preview", "--root", &root],
        );
        assert_eq!(code, 0, "{stderr}\n{doc:#?}");
        assert_eq!(doc.rebuild.method, Method::FromTerraform, "{doc:#?}");
        assert_eq!(doc.rebuild.status, RebuildStatus::Planned);
        let reason = doc.rebuild.reason.as_deref().unwrap();
        assert!(reason.contains(why), "{reason}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(node.journal().is_empty());
    }
    // A shorter --max-age turns a recent enough backup down too.
    let node = Node::start(&[2 * DAY]);
    let (_, doc, _) = run_on(
        &stack,
        &node,
        &[
            "--mode",
            "auto",
            "--preview",
            "--root",
            &root,
            "--max-age",
            "1d",
        ],
    );
    assert_eq!(doc.rebuild.method, Method::FromTerraform, "{doc:#?}");
    assert!(!env.has_state(), "dry-runs wrote a state");
}

#[test]
fn from_backup_refuses_a_backup_older_than_max_age() {
    let stack = Stack::start_without_daemons();
    let node = Node::start(&[10 * DAY]);
    let (code, doc, stderr) = run_on(&stack, &node, &["--from-backup", "--yes"]);
    assert_eq!(code, 1, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::Failed);
    assert_eq!(doc.rebuild.method, Method::FromBackup);
    let detail = doc.rebuild.detail.as_str();
    assert!(detail.contains("older than 7days"), "{detail}");
    assert!(node.journal().is_empty());
    assert!(doc.checks.is_empty(), "no fake success");
}

#[test]
fn node_settings_are_usage_errors_before_any_connection() {
    let urls = [
        "--prometheus-url=http://127.0.0.1:1",
        "--alertmanager-url=http://127.0.0.1:1",
        "--grafana-url=http://127.0.0.1:1",
        "--node-exporter-url=http://127.0.0.1:1",
    ];
    let root = tempfile::tempdir().unwrap();
    for args in [
        &["--from-backup", "--vmid", "111"][..],
        &["--vmid", "111"][..],
        &["--from-backup", "--host", "127.0.0.1"][..],
        &[
            "--from-backup",
            "--vmid",
            "111",
            "--host",
            "-oProxyCommand=x",
        ][..],
        &[
            "--from-backup",
            "--vmid",
            "111",
            "--host",
            "h",
            "--node",
            "bad node",
        ][..],
    ] {
        bin()
            .current_dir(root.path())
            .args(["--root", root.path().to_str().unwrap()])
            .args(urls)
            .args(args)
            .assert()
            .code(64);
    }
    // The node's host comes from the same terraform.tfvars as the URLs.
    std::fs::create_dir(root.path().join("environments")).unwrap();
    std::fs::write(
        root.path().join("terraform.tfvars"),
        "proxmox_endpoint = \"https://127.0.0.1:1/api2/json\"\nnode_name = \"pve\"\nmonitoring_vmid = 111\n",
    )
    .unwrap();
    let out = bin()
        .args(["--root", root.path().join("environments").to_str().unwrap()])
        .args(urls)
        .args(["--from-backup", "--port", "1", "--json"])
        .output()
        .unwrap();
    let (code, doc, stderr) = testbed::tool::typed_run::<Report>(&out, "pve-rebuild-monitoring/v1");
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(doc.vmid, Some(111));
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
}

/// The replaced script's flags: `--mode restore|rebuild` ("Mode invalide"), `--force`, and a `--dry-run`
/// that contacts nothing (no SSH, no Terraform, no HTTP) and ends with the summary.
#[test]
fn mode_flag_force_and_offline_dry_run() {
    let out = bin()
        .args(["--mode", "bogus", "--lang", "fr"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Mode invalide: bogus"), "{err}");

    let stack = Stack::start_without_daemons();
    let node = Node::start(&[3600]);
    let env = stack::TfEnv::new();
    let root = env.root().to_str().unwrap().to_owned();
    for (mode, want) in [
        ("restore", "qmrestore <newest backup> 111 --force"),
        (
            "rebuild",
            "apply -target=module.monitoring_stack -auto-approve",
        ),
    ] {
        let out = bin()
            .env("HOME", node.home())
            .args(node.args())
            .args(stack.url_args())
            .args([
                "--mode",
                mode,
                "--dry-run",
                "--lang",
                "fr",
                "--root",
                &root,
                "--terraform-bin",
                "/nonexistent/terraform",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{mode}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("[DRY-RUN]") && stderr.contains(want),
            "{mode}: {stderr}"
        );
        for path in [
            "/-/ready",
            "/api/v1/targets",
            "/api/v1/rules",
            "/api/health",
            "/metrics",
            "docker ps",
        ] {
            assert!(stderr.contains(path), "{mode}: {path}: {stderr}");
        }
        assert!(
            stdout.contains("RESUME DE RECONSTRUCTION - Monitoring"),
            "{mode}: {stdout}"
        );
        assert!(
            !stdout.contains("OK"),
            "a dry-run says nothing was done: {stdout}"
        );
    }
    assert_eq!(node.logins(), 0, "--dry-run logged in to the node");
    assert!(node.journal().is_empty());
    assert!(!env.has_state(), "--dry-run ran terraform");
    // --force answers the confirmation (the old --yes still works too).
    let (code, doc, stderr) = run_on(
        &stack,
        &node,
        &["--mode", "restore", "--force", "--deadline", "1s"],
    );
    assert_eq!(doc.rebuild.method, Method::FromBackup, "{stderr}\n{doc:#?}");
    assert_eq!(doc.rebuild.status, RebuildStatus::Ok, "{stderr}\n{doc:#?}");
    let _ = code;
}

/// After the HTTP checks, `docker ps` over SSH on the monitoring VM (root, the node's SSH settings, host
/// keys from HOMELAB_KNOWN_HOSTS): all three containers up passes; a stopped one and a missing one are
/// named failures (exit 1), in the JSON report, on stderr and in the text summary.
#[test]
fn docker_ps_on_the_vm_names_a_stopped_and_a_missing_container() {
    let stack = Stack::start();
    let vm = Vm::start();
    let home = vm.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let ssh_config = vm.ssh_config(None);
    let vm_run = |extra: &[&str]| -> (i32, Report, String) {
        let mut cmd = bin();
        cmd.env("HOME", &home)
            .env("HOMELAB_KNOWN_HOSTS", vm.known_hosts())
            .args(["--vm-host", vm::ALIAS, "--ssh-config"])
            .arg(&ssh_config)
            .args(["--verify-only", "--deadline", "60s"])
            .args(extra);
        run_cmd(cmd, &stack, &[])
    };
    let (code, doc, stderr) = vm_run(&[]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::Ok);
    let found = doc.containers.as_ref().unwrap();
    assert_eq!(found.host, format!("root@{}", vm::ALIAS));
    assert!(found.ok, "{found:#?}");
    let rows: Vec<(String, String, bool)> = found
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.status.clone().unwrap(), c.ok))
        .collect();
    assert_eq!(
        rows,
        [
            ("prometheus".into(), "Up 2 hours".into(), true),
            ("grafana".into(), "Up 2 hours (healthy)".into(), true),
            ("alertmanager".into(), "Up 2 hours".into(), true),
        ]
    );
    assert!(vm.logins() >= 1);

    vm.docker(|d| {
        d.stop("alertmanager", testbed::sim::state::now_epoch() - 120);
        d.containers.retain(|c| c.name != "grafana");
    });
    let (code, doc, stderr) = vm_run(&[]);
    assert_eq!(code, 1, "{stderr}\n{doc:#?}");
    assert_eq!(doc.outcome, Outcome::Failed);
    assert!(
        doc.checks.iter().all(|c| c.ok),
        "the HTTP checks pass: only the containers fail: {doc:#?}"
    );
    let found = doc.containers.as_ref().unwrap();
    assert!(!found.ok);
    assert!(found.containers[0].ok);
    assert_eq!(found.containers[1].name, "grafana");
    assert!(found.containers[1].container.is_none(), "{found:#?}");
    assert!(!found.containers[1].ok);
    assert_eq!(
        found.containers[2].status.as_deref(),
        Some("Exited (0) 2 minutes ago"),
        "{found:#?}"
    );
    assert!(
        stderr.contains("container grafana: missing on root@monitoring-vm"),
        "{stderr}"
    );
    assert!(
        stderr.contains("container alertmanager: not up (Exited (0) 2 minutes ago)"),
        "{stderr}"
    );
    // The text report: a row per container and the summary line, in French through --lang fr.
    let out = bin()
        .env("HOME", &home)
        .env("HOMELAB_KNOWN_HOSTS", vm.known_hosts())
        .args(stack.url_args())
        .args(["--vm-host", vm::ALIAS, "--ssh-config"])
        .arg(&ssh_config)
        .args(["--verify-only", "--deadline", "60s", "--lang", "fr"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("docker         alertmanager            FAILED  Exited (0) 2 minutes ago"),
        "{stdout}"
    );
    assert!(
        stdout.contains("docker         grafana                 FAILED  missing"),
        "{stdout}"
    );
    assert!(stdout.contains("  docker ps: ECHEC\n"), "{stdout}");
    assert!(
        stdout.contains("RESUME DE RECONSTRUCTION - Monitoring"),
        "{stdout}"
    );
}

/// The VM's host key is checked as the node's: against HOMELAB_KNOWN_HOSTS (an unknown key is refused,
/// a named failure), and SSH_INIT_MODE=true accepts and records a new one.
#[test]
fn docker_ps_checks_the_vm_host_key_like_the_node() {
    let stack = Stack::start_without_daemons();
    let vm = Vm::start();
    let home = vm.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let ssh_config = vm.ssh_config(None);
    let known = vm.dir().join("homelab_known_hosts");
    std::fs::write(&known, "").unwrap();
    let vm_run = |init: bool| -> (i32, Report, String) {
        let mut cmd = bin();
        cmd.env("HOME", &home)
            .env("HOMELAB_KNOWN_HOSTS", &known)
            .args(["--vm-host", vm::ALIAS, "--ssh-config"])
            .arg(&ssh_config)
            .args(["--verify-only", "--deadline", "1s"]);
        if init {
            cmd.env("SSH_INIT_MODE", "true");
        }
        run_cmd(cmd, &stack, &[])
    };
    let (code, doc, stderr) = vm_run(false);
    assert_eq!(code, 1, "{stderr}");
    let error = doc.containers.as_ref().unwrap().error.as_deref().unwrap();
    assert!(error.contains("host key"), "{error}");
    assert_eq!(vm.logins(), 0, "no login with an unknown host key");
    let (_, doc, stderr) = vm_run(true);
    assert!(doc.containers.as_ref().unwrap().ok, "{stderr}\n{doc:#?}");
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains("[127.0.0.1]:"),
        "SSH_INIT_MODE recorded the key"
    );
    let (_, doc, stderr) = vm_run(false);
    assert!(
        doc.containers.as_ref().unwrap().ok,
        "now known: {stderr}\n{doc:#?}"
    );
}
