//! The test bed's own tests: real moto, real Terraform, real Prometheus tools, the `testbed` command.
//!
//! Servers are started per test (never shared through a static, which would outlive the test binary)
//! and stopped on drop; independent Terraform environments run on threads side by side.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::thread;

use serde_json::{Value, json};
use testbed::s3::{S3Server, Versioning};
use testbed::terraform::{self, Backend, BackendKind, Drift, Env, S3Backend};

/// Runs `f` for each environment on its own thread and returns the results in order.
fn each_env<T: Send>(envs: &[Env], f: impl Fn(&Env) -> T + Sync) -> Vec<T> {
    thread::scope(|scope| {
        let handles: Vec<_> = envs.iter().map(|env| scope.spawn(|| f(env))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The addresses and actions of a plan's resource changes other than no-op.
fn changes(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != json!(["no-op"]))
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_owned(),
                c["change"]["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn s3_versions_delete_markers_and_restart() {
    let mut server = S3Server::start().unwrap();
    let s3 = server.client();
    s3.create_bucket("tfstate").unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Unversioned);
    s3.set_versioning("tfstate", true).unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Enabled);

    let mut ids = Vec::new();
    for n in 1..=3 {
        let body = format!("{{\"serial\": {n}}}");
        ids.push(
            s3.put_object("tfstate", "prod/terraform.tfstate", body.as_bytes())
                .unwrap()
                .unwrap(),
        );
    }
    s3.put_object("tfstate", "lab/terraform.tfstate", b"{}")
        .unwrap();
    // Pages of two entries exercise KeyMarker/VersionIdMarker paging.
    let versions = s3
        .list_object_versions_paged("tfstate", "prod/", 2)
        .unwrap();
    let listed: Vec<&str> = versions.iter().map(|v| v.version_id.as_str()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert!(versions[0].is_latest && !versions[1].is_latest);
    assert_eq!(
        s3.get_object_version("tfstate", "prod/terraform.tfstate", &ids[0])
            .unwrap(),
        b"{\"serial\": 1}"
    );
    assert_eq!(s3.list_object_versions("tfstate", "").unwrap().len(), 4);

    s3.delete_object("tfstate", "prod/terraform.tfstate")
        .unwrap();
    assert_eq!(
        s3.get_object("tfstate", "prod/terraform.tfstate").unwrap(),
        None
    );
    let versions = s3.list_object_versions("tfstate", "prod/").unwrap();
    assert_eq!(versions.len(), 4);
    assert!(
        versions[0].is_delete_marker && versions[0].is_latest,
        "{versions:?}"
    );
    assert!(
        versions[1..]
            .iter()
            .all(|v| !v.is_delete_marker && !v.is_latest)
    );

    s3.set_versioning("tfstate", false).unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Suspended);
    assert_eq!(
        s3.put_object("tfstate", "lab/terraform.tfstate", b"{\"v\":2}")
            .unwrap(),
        None
    );
    let lab = s3.list_object_versions("tfstate", "lab/").unwrap();
    assert!(
        lab.iter().any(|v| v.version_id == "null" && v.is_latest),
        "{lab:?}"
    );

    // If-None-Match: * is what Terraform's lock file relies on.
    assert!(
        s3.put_object_if_absent("tfstate", "x.tflock", b"1")
            .unwrap()
    );
    assert!(
        !s3.put_object_if_absent("tfstate", "x.tflock", b"2")
            .unwrap()
    );

    // MinIO down: connections refused; back: data replayed.
    let port = server.port();
    server.stop().unwrap();
    assert!(!testbed::ports::port_open(port));
    assert!(s3.get_object("tfstate", "lab/terraform.tfstate").is_err());
    server.start_again().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(
        s3.get_object("tfstate", "lab/terraform.tfstate")
            .unwrap()
            .unwrap(),
        b"{\"v\":2}"
    );
    assert_eq!(
        s3.list_object_versions("tfstate", "prod/").unwrap().len(),
        4
    );
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Suspended);

    server.restart_empty().unwrap();
    assert!(
        s3.list_keys("tfstate", "").is_err(),
        "bucket should be gone"
    );
}

#[test]
fn terraform_with_s3_backend_plans_drift_and_locks() {
    let mut server = S3Server::start().unwrap();
    let s3 = server.client();
    s3.create_bucket(terraform::STATE_BUCKET).unwrap();
    s3.set_versioning(terraform::STATE_BUCKET, true).unwrap();
    let root = tempfile::tempdir().unwrap();
    terraform::copy_fixtures(root.path(), BackendKind::S3).unwrap();
    let envs: Vec<Env> = terraform::ENVIRONMENTS
        .iter()
        .map(|name| {
            Env::in_copy(
                root.path(),
                name,
                Backend::S3(S3Backend::for_env(&server, name)),
            )
            .unwrap()
        })
        .collect();

    let codes = each_env(&envs, |env| {
        env.init().unwrap();
        env.apply().unwrap();
        env.plan().unwrap().code
    });
    assert_eq!(codes, [0, 0, 0]);
    let [prod, lab, monitoring] = &envs[..] else {
        unreachable!()
    };
    let state = prod.read_state().unwrap();
    assert!(
        !s3.list_object_versions(terraform::STATE_BUCKET, "prod/")
            .unwrap()
            .is_empty()
    );

    // Drift in prod (attribute changed), monitoring (resource gone, stray resource); lock lab.
    for drift in Drift::input_changed("module.jellyfin.terraform_data.vm", "memory", json!(4096)) {
        prod.inject_drift(&drift).unwrap();
    }
    let drifted = prod.read_state().unwrap();
    assert_eq!(drifted["lineage"], state["lineage"]);
    assert_eq!(
        drifted["serial"].as_u64().unwrap(),
        state["serial"].as_u64().unwrap() + 2
    );
    monitoring
        .inject_drift(&Drift::RemoveResource {
            address: "module.minio.terraform_data.buckets".into(),
        })
        .unwrap();
    monitoring
        .inject_drift(&Drift::AddResource {
            address: "module.monitoring_stack.terraform_data.grafana".into(),
            input: json!({"name": "grafana", "port": 3000}),
        })
        .unwrap();
    let lock = lab
        .hold_lock("OperationTypeApply", "ops@pve-tools-ci")
        .unwrap();

    let runs = each_env(&envs, |env| {
        let run = env.plan().unwrap();
        let plan = (run.code == 2).then(|| env.show_plan_json().unwrap());
        (run, plan)
    });
    let (prod_run, prod_plan) = &runs[0];
    assert_eq!(prod_run.code, 2, "{}", prod_run.stderr);
    let prod_changes = changes(prod_plan.as_ref().unwrap());
    assert_eq!(
        prod_changes,
        [(
            "module.jellyfin.terraform_data.vm".to_owned(),
            vec!["update".to_owned()]
        )]
    );
    let change = &prod_plan.as_ref().unwrap()["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "module.jellyfin.terraform_data.vm")
        .unwrap()["change"];
    assert_eq!(change["before"]["input"]["memory"], 4096);
    assert_eq!(change["after"]["input"]["memory"], 8192);

    let (lab_run, _) = &runs[1];
    assert_eq!(lab_run.code, 1);
    assert!(
        lab_run.stderr.contains("Error acquiring the state lock"),
        "{}",
        lab_run.stderr
    );
    assert!(
        lab_run.stderr.contains(&lock.info().id),
        "{}",
        lab_run.stderr
    );
    assert!(
        lab_run.stderr.contains("ops@pve-tools-ci"),
        "{}",
        lab_run.stderr
    );

    let (mon_run, mon_plan) = &runs[2];
    assert_eq!(mon_run.code, 2, "{}", mon_run.stderr);
    let mut mon_changes = changes(mon_plan.as_ref().unwrap());
    mon_changes.sort();
    assert_eq!(
        mon_changes,
        [
            (
                "module.minio.terraform_data.buckets".to_owned(),
                vec!["create".to_owned()]
            ),
            (
                "module.monitoring_stack.terraform_data.grafana".to_owned(),
                vec!["delete".to_owned()]
            ),
        ]
    );

    lock.release().unwrap();
    assert_eq!(lab.plan().unwrap().code, 0);
    // Terraform's lock file leaves versions and delete markers in a versioned bucket (tools listing
    // state versions must skip `*.tflock`).
    let lab_versions = s3
        .list_object_versions(terraform::STATE_BUCKET, "lab/")
        .unwrap();
    assert!(
        lab_versions
            .iter()
            .any(|v| v.key == "lab/terraform.tfstate.tflock" && v.is_delete_marker),
        "{lab_versions:?}"
    );

    // MinIO down and back (moto replays its recording): the states are as before. With the default
    // max_retries Terraform would retry for ~18 s against the stopped server; 0 fails fast.
    let impatient = Env::new(
        lab.dir(),
        Backend::S3(S3Backend {
            max_retries: Some(0),
            ..S3Backend::for_env(&server, "lab")
        }),
        &root.path().join(".tf-data/lab-impatient"),
    )
    .unwrap();
    impatient.init().unwrap();
    let prod_state = prod.read_state().unwrap();
    server.stop().unwrap();
    assert!(prod.read_state().is_err());
    let started = std::time::Instant::now();
    let down = impatient.plan().unwrap();
    assert_eq!(down.code, 1, "{}", down.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    server.start_again().unwrap();
    assert_eq!(prod.read_state().unwrap(), prod_state);
    assert_eq!(lab.plan().unwrap().code, 0);
    assert_eq!(prod.plan().unwrap().code, 2);
}

#[test]
fn terraform_local_backend_variant() {
    let fixtures = terraform::Fixtures::copy(BackendKind::Local).unwrap();
    let lab = fixtures.env("lab", Backend::Local).unwrap();
    lab.init().unwrap();
    lab.apply().unwrap();
    assert!(lab.dir().join("terraform.tfstate").exists());
    assert!(
        !lab.dir().join(".terraform").exists(),
        "TF_DATA_DIR must keep .terraform out"
    );
    assert_eq!(lab.plan().unwrap().code, 0);
    for drift in Drift::input_changed(
        "module.pihole.terraform_data.container",
        "memory",
        json!(256),
    ) {
        lab.inject_drift(&drift).unwrap();
    }
    let run = lab.plan().unwrap();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("module.pihole.terraform_data.container"),
        "{}",
        run.stdout
    );
}

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

#[test]
fn cli_up_status_down_on_loopback_only() {
    use std::time::{Duration, Instant};
    use testbed::bed;
    use testbed::ports::listening_sockets;
    use testbed::process::{command, pid_alive};

    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_testbed");
    let started = Instant::now();
    let up = command(exe)
        .args(["up", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let up_time = started.elapsed();
    let stdout = String::from_utf8(up.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&up.stderr);
    // Whatever happens below, stop the daemons.
    struct Down<'a>(&'a std::path::Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = bed::down(self.0);
        }
    }
    let guard = Down(dir.path());
    assert!(up.status.success(), "{stderr}");
    for var in [
        "AWS_ENDPOINT_URL_S3",
        "TESTBED_S3_BUCKET",
        "PROMETHEUS_URL",
        "TESTBED_TF_ROOT",
    ] {
        assert!(
            stdout.contains(&format!("export {var}='")),
            "{var} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.lines().all(|l| l.starts_with("export ")),
        "stdout is data only:\n{stdout}"
    );

    let state = bed::read_state(dir.path()).unwrap().unwrap();
    assert_eq!(state.services.len(), 4);
    for service in &state.services {
        let sockets = listening_sockets(service.pid).unwrap();
        assert!(!sockets.is_empty(), "{} listens nowhere", service.name);
        for socket in sockets {
            assert!(
                socket.ip().is_loopback(),
                "{} listens on {socket}",
                service.name
            );
        }
    }
    let endpoint = state
        .exports
        .iter()
        .find(|(k, _)| k == "TESTBED_S3_ENDPOINT")
        .unwrap()
        .1
        .clone();
    let s3 = testbed::s3::S3Client::new(
        &endpoint,
        testbed::s3::ACCESS_KEY,
        testbed::s3::SECRET_KEY,
        "us-east-1",
    )
    .unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Enabled);

    // A tool runs a plain `terraform init` in a copied environment: the inline backend reaches S3.
    let tf_root = state
        .exports
        .iter()
        .find(|(k, _)| k == "TESTBED_TF_ROOT")
        .unwrap()
        .1
        .clone();
    let plain = |args: &[&str]| {
        command("terraform")
            .args(args)
            .current_dir(std::path::Path::new(&tf_root).join("lab"))
            .envs(state.exports.iter().map(|(k, v)| (k, v)))
            .env("TF_DATA_DIR", dir.path().join("plain-tf-data"))
            .output()
            .unwrap()
    };
    let init = plain(&["init", "-input=false", "-no-color"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let plan = plain(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "nothing applied yet: {}",
        String::from_utf8_lossy(&plan.stderr)
    );

    let status = command(exe)
        .args(["status", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&status.stdout).lines().count(), 4);

    let started = Instant::now();
    let down = command(exe)
        .args(["down", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let down_time = started.elapsed();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(state.services.iter().all(|s| !pid_alive(s.pid)));
    drop(guard);
    let status = command(exe)
        .args(["status", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    eprintln!("testbed up {up_time:?}, down {down_time:?}");
    assert!(
        up_time + down_time < Duration::from_secs(10),
        "up {up_time:?} + down {down_time:?}"
    );
}

/// Every file under `dir` (outside `.terraform/`) with its content.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name() == ".terraform" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn example_homelab_lab_drifts_others_in_sync_and_nothing_changes() {
    let homelab = terraform::example_homelab_dir();
    let before = snapshot(&homelab);
    let data = tempfile::tempdir().unwrap();
    let envs: Vec<Env> = terraform::ENVIRONMENTS
        .iter()
        .map(|name| {
            Env::new(
                &homelab.join("environments").join(name),
                Backend::Local,
                &data.path().join(name),
            )
            .unwrap()
        })
        .collect();
    let var_file = format!("-var-file={}", homelab.join("terraform.tfvars").display());
    let runs = each_env(&envs, |env| {
        env.init().unwrap();
        let run = env
            .run(&[
                "plan",
                "-detailed-exitcode",
                "-input=false",
                "-no-color",
                &var_file,
            ])
            .unwrap();
        assert!(!run.stderr.contains("Error"), "{}", run.stderr);
        assert!(
            !run.stderr.contains("undeclared variable"),
            "{}",
            run.stderr
        );
        run
    });
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    assert_eq!(codes, [0, 2, 0], "prod, lab, monitoring");
    assert!(
        runs[1]
            .stdout
            .contains("module.pihole.terraform_data.container will be updated"),
        "{}",
        runs[1].stdout
    );
    assert!(runs[1].stdout.contains("1024 -> 512"), "{}", runs[1].stdout);
    assert_eq!(
        snapshot(&homelab),
        before,
        "plan must leave the example unchanged"
    );
}

#[test]
fn example_homelab_configuration_matches_the_fixtures() {
    let homelab = terraform::example_homelab_dir();
    let fixtures = terraform::fixtures_dir();
    let relative = |root: &std::path::Path, sub: &str| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        snapshot(&root.join(sub))
            .into_iter()
            .map(|(p, c)| (p.strip_prefix(root).unwrap().to_owned(), c))
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "tf") && !p.ends_with("backend.tf"))
            .collect()
    };
    for sub in ["modules", "environments"] {
        assert_eq!(
            relative(&homelab, sub),
            relative(&fixtures, sub),
            "{sub} differ"
        );
    }
}

/// Run by `daemons_die_with_an_aborted_test_process` in a child test process: starts a daemon,
/// records its pid, and aborts (no destructors run).
#[test]
#[ignore = "helper, run by daemons_die_with_an_aborted_test_process"]
fn helper_spawn_daemon_then_abort() {
    let Ok(pidfile) = std::env::var("TESTBED_HELPER_PIDFILE") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = testbed::process::command("sleep");
    cmd.arg("300");
    let daemon = testbed::process::Daemon::spawn("sleep", cmd, &dir.path().join("log")).unwrap();
    std::fs::write(&pidfile, daemon.pid().to_string()).unwrap();
    std::process::abort();
}

#[test]
fn daemons_die_with_an_aborted_test_process() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let status = testbed::process::command(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_spawn_daemon_then_abort",
            "--ignored",
            "--nocapture",
        ])
        .env("TESTBED_HELPER_PIDFILE", &pidfile)
        .output()
        .unwrap()
        .status;
    assert!(!status.success());
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    testbed::process::wait_until(
        "the orphaned daemon to die",
        Duration::from_secs(10),
        || Ok(!testbed::process::pid_alive(pid)),
    )
    .unwrap();
}
