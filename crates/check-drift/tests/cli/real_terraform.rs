//! Real Terraform on local-backend fixtures.

use check_drift::plan::{Action, Origin, Risk};
use check_drift::report::{Counts, Report, Status, Summary};
use check_drift::terraform::ErrorKind;
use serde_json::json;

use crate::support::{Bed, attribute, env_in, json, report, resource_in, stderr, terraform};

fn run_json(bed: &Bed, extra: &[&str]) -> (i32, Report, String) {
    let out = run_out(bed, extra);
    (
        out.status.code().unwrap(),
        report(&out.stdout),
        stderr(&out),
    )
}

fn run_out(bed: &Bed, extra: &[&str]) -> std::process::Output {
    run_waiting(bed, "2s", extra)
}

/// check-drift `--json` with the real terraform, waiting `lock_timeout` for a held state lock.
fn run_waiting(bed: &Bed, lock_timeout: &str, extra: &[&str]) -> std::process::Output {
    let out = bed
        .cmd()
        .args([
            "--json",
            "--terraform-bin",
            "terraform",
            "--lock-timeout",
            lock_timeout,
        ])
        .args(extra)
        .output()
        .unwrap();
    bed.assert_no_plan_files();
    out
}

#[test]
fn in_sync_environment_exits_0() {
    let bed = Bed::new();
    bed.add_env("prod", "basic");
    let (code, doc, err) = run_json(&bed, &["--env", "prod"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc.schema, "pve-drift/v1");
    assert_eq!(doc.tool.name, "check-drift");
    assert_eq!(doc.terraform.version.as_deref(), Some("1.11.4"));
    assert_eq!(
        doc.summary,
        Summary {
            environments: 1,
            in_sync: 1,
            drift: 0,
            error: 0
        }
    );
    let prod = env_in(&doc, "prod");
    assert_eq!(prod.status, Status::InSync);
    assert_eq!(prod.exit_code, Some(0));
    assert_eq!(prod.error, None);
    assert!(
        !err.contains("error:"),
        "the CLI-configuration warning is not an error: {err}"
    );
}

#[test]
fn value_changed_in_state_is_drift_exit_1() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    bed.edit_attributes("lab", "vm", |a| {
        // terraform_data keeps dynamic values as {"value": ..., "type": ...} in the state.
        a["input"]["value"]["memory"]["dedicated"] = json!(4096);
        a["output"]["value"]["memory"]["dedicated"] = json!(4096);
    });
    let (code, doc, err) = run_json(&bed, &[]);
    assert_eq!(code, 1, "{err}");
    let lab = env_in(&doc, "lab");
    assert_eq!(lab.status, Status::Drift);
    assert_eq!(lab.exit_code, Some(2));
    assert_eq!(
        lab.counts,
        Counts {
            update: 1,
            ..Counts::default()
        }
    );
    let vm = resource_in(lab, "terraform_data.vm");
    assert_eq!(vm.action, Action::Update);
    assert_eq!(vm.risk, Risk::Safe);
    // terraform_data has no refresh, so Terraform reports no resource_drift: the change is pending.
    assert_eq!(vm.origin, Origin::Pending);
    let mem = attribute(&vm.changed_attributes, "input.memory.dedicated");
    assert_eq!((&mem.before, &mem.after), (&json!(4096), &json!(8192)));
    assert_eq!(lab.output_changes[0].name, "vm");
}

#[test]
fn pending_configuration_change_text_report() {
    let bed = Bed::new();
    let dir = bed.add_env("lab", "basic");
    std::fs::write(dir.join("terraform.tfvars"), "memory = 10240\n").unwrap();
    let out = bed
        .cmd()
        .args(["--terraform-bin", "terraform"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ENV  STATUS"), "{text}");
    assert!(text.contains("lab  drift"), "{text}");
    assert!(text.contains("pending 1"), "{text}");
    assert!(
        text.contains("~ terraform_data.vm  [pending: configuration not applied]"),
        "{text}"
    );
    assert!(
        text.contains("input.memory.dedicated: 8192 -> 10240"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    bed.assert_no_plan_files();
}

#[test]
fn resource_removed_from_state_is_a_dangerous_create() {
    let bed = Bed::new();
    let dir = bed.add_env("lab", "basic");
    terraform(&dir, &["init", "-input=false", "-no-color"]);
    terraform(&dir, &["state", "rm", "-no-color", "terraform_data.dns"]);
    let (code, doc, err) = run_json(&bed, &[]);
    assert_eq!(code, 1, "{err}");
    let dns = resource_in(env_in(&doc, "lab"), "terraform_data.dns");
    assert_eq!(dns.action, Action::Create);
    assert_eq!(
        dns.risk,
        Risk::Dangerous,
        "the address is in the state backup written by `state rm`"
    );
    assert!(
        dns.risk_reason
            .as_deref()
            .unwrap()
            .contains("earlier state")
    );
}

#[test]
fn replacement_is_dangerous() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    bed.edit_attributes("lab", "template", |a| {
        a["triggers_replace"]["value"] = json!(["8999"])
    });
    let (code, doc, err) = run_json(&bed, &[]);
    assert_eq!(code, 1, "{err}");
    let lab = env_in(&doc, "lab");
    assert_eq!(lab.counts.replace, 1);
    let t = resource_in(lab, "terraform_data.template");
    assert_eq!(t.action, Action::Replace);
    assert_eq!(t.risk, Risk::Dangerous);
    let attr = attribute(&t.changed_attributes, "triggers_replace");
    assert_eq!(attr.before, json!(["8999"]));
    assert!(attr.forces_replacement);
}

#[test]
fn ignore_rule_suppresses_and_expired_rule_is_warned() {
    let bed = Bed::new();
    let dir = bed.add_env("lab", "basic");
    bed.edit_attributes("lab", "vm", |a| {
        a["input"]["value"]["tags"] = json!(["terraform", "manual"])
    });
    std::fs::write(
        dir.join(".driftignore"),
        "terraform_data.vm input.tags  # tags edited in the UI\n",
    )
    .unwrap();
    std::fs::write(
        bed.root().join(".driftignore"),
        "terraform_data.dns expires=2000-01-01  # old migration\n",
    )
    .unwrap();
    let (code, doc, err) = run_json(&bed, &[]);
    assert_eq!(code, 0, "{err}");
    let lab = env_in(&doc, "lab");
    assert_eq!(lab.status, Status::InSync);
    assert_eq!(lab.counts.ignored, 1);
    let vm = resource_in(lab, "terraform_data.vm");
    assert!(vm.ignored);
    assert!(vm.ignored_by[0].ends_with(".driftignore:1"));
    assert!(
        err.contains("warning:")
            && err.contains(".driftignore:1")
            && err.contains("expired on 2000-01-01"),
        "{err}"
    );
}

#[test]
fn invalid_ignore_line_is_an_error_naming_file_and_line() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    std::fs::write(bed.root().join(".driftignore"), "# ok\nthree words here\n").unwrap();
    let out = bed
        .cmd()
        .args(["--terraform-bin", "terraform"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(".driftignore:2:"), "{}", stderr(&out));
}

/// Holds the local backend's state lock the way a person would: `terraform console` takes the state lock
/// and keeps it while its stdin stays open.
#[test]
fn a_plan_error_names_its_cause_on_the_error_line_and_in_the_report() {
    let bed = Bed::new();
    let dir = bed.add_env("prod", "basic");
    // Valid HCL, so init passes; the plan itself fails on the undeclared variable.
    std::fs::write(
        dir.join("broken.tf"),
        "resource \"terraform_data\" \"broken\" {\n  input = var.missing\n}\n",
    )
    .unwrap();
    let (code, doc, err) = run_json(&bed, &["--env", "prod"]);
    assert_eq!(code, 2, "{err}");
    let message = env_in(&doc, "prod").error.as_ref().unwrap().message.clone();
    assert!(
        message.contains("failed (exit status 1):\nError: Reference to undeclared input variable"),
        "{message}"
    );
    assert!(
        !message.contains("CLI configuration"),
        "a warning pushed in front of the cause: {message}"
    );
    assert!(
        err.contains("prod: unknown: terraform plan failed (exit status 1): Error: Reference to undeclared input variable"),
        "the error line stops at the colon: {err}"
    );
}

#[test]
fn each_environment_names_its_own_node() {
    let bed = Bed::new();
    let prod = bed.add_env("prod", "basic");
    let lab = bed.add_env("lab", "basic");
    bed.add_env("dev", "basic");
    // Undeclared variables in terraform.tfvars are only a warning for Terraform, as in the homelab.
    std::fs::write(
        prod.join("terraform.tfvars"),
        "default_node = \"pve-prod\"\n",
    )
    .unwrap();
    std::fs::write(lab.join("terraform.tfvars"), "pve_node = \"pve-lab\"\n").unwrap();
    bed.edit_attributes("lab", "dns", |a| a["input"]["value"] = json!("changed"));
    let out = run_out(&bed, &["--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = report(&out.stdout);
    assert_eq!(env_in(&doc, "prod").node.as_deref(), Some("pve-prod"));
    assert_eq!(env_in(&doc, "lab").node.as_deref(), Some("pve-lab"));
    // The raw document on purpose: the field is absent, not null, which the decoded type cannot tell.
    let raw = json(&out.stdout);
    let dev = raw["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == "dev")
        .unwrap();
    assert!(dev.get("node").is_none(), "no node named, no field: {raw}");
    let text = bed
        .cmd()
        .args(["--terraform-bin", "terraform", "--env", "lab"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("== lab (drift, node pve-lab) =="), "{text}");
}

fn hold_state_lock(dir: &std::path::Path) -> std::process::Child {
    terraform(dir, &["init", "-input=false", "-no-color"]);
    #[allow(clippy::disallowed_methods)]
    let console = std::process::Command::new("terraform")
        .args(["console", "-no-color"])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock_info = dir.join(".terraform.tfstate.lock.info");
    for _ in 0..200 {
        if lock_info.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(lock_info.exists(), "console should hold the lock");
    console
}

/// Ends the console the polite way (end of input), so it removes its lock; kills it if it hangs.
fn release(mut console: std::process::Child) {
    drop(console.stdin.take());
    for _ in 0..100 {
        if let Ok(Some(_)) = console.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = console.kill();
    let _ = console.wait();
}

#[test]
fn held_state_lock_is_reported_with_its_holder() {
    let bed = Bed::new();
    let dir = bed.add_env("lab", "basic");
    let console = hold_state_lock(&dir);
    let (code, doc, err) = run_json(&bed, &[]);
    release(console);
    assert_eq!(code, 2, "{err}");
    let lab = env_in(&doc, "lab");
    assert_eq!(lab.status, Status::Error);
    let error = lab.error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::Lock);
    let lock = error.lock.as_ref().unwrap();
    assert!(lock.who.as_deref().unwrap().contains('@'), "{lab:#?}");
    assert!(lock.id.is_some());
    assert!(error.message.contains("Error acquiring the state lock"));
}

#[test]
fn three_environments_mixed_all_reported_exit_2() {
    let bed = Bed::new();
    bed.add_env("a-sync", "basic");
    bed.add_env("b-drift", "basic");
    bed.edit_attributes("b-drift", "dns", |a| a["input"]["value"] = json!("changed"));
    let broken = bed.add_env("c-broken", "basic");
    std::fs::write(broken.join("broken.tf"), "resource \"terraform_data\" {\n").unwrap();
    let (code, doc, err) = run_json(&bed, &["--all", "--jobs", "3"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        doc.summary,
        Summary {
            environments: 3,
            in_sync: 1,
            drift: 1,
            error: 1
        }
    );
    let names: Vec<_> = doc.environments.iter().map(|e| e.env.as_str()).collect();
    assert_eq!(names, ["a-sync", "b-drift", "c-broken"]);
    let broken = env_in(&doc, "c-broken");
    let error = broken.error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::Init);
    assert!(error.message.contains("Error:"), "{broken:#?}");
    assert!(err.contains("c-broken: init:"), "{err}");
}

#[test]
fn timeout_while_waiting_for_the_lock_leaves_no_lock_behind() {
    let bed = Bed::new();
    let dir = bed.add_env("lab", "basic");
    let console = hold_state_lock(&dir);
    let started = std::time::Instant::now();
    let out = run_waiting(&bed, "60s", &["--timeout", "2s"]);
    release(console);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "SIGINT stopped the plan"
    );
    let doc = report(&out.stdout);
    assert_eq!(
        env_in(&doc, "lab").error.as_ref().unwrap().kind,
        ErrorKind::Timeout
    );
    bed.assert_no_plan_files();
    // The interrupted plan left no lock of its own: the next run gets the state at once.
    assert!(
        !dir.join(".terraform.tfstate.lock.info").exists(),
        "no stale lock"
    );
    let (code, doc, err) = run_json(&bed, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env_in(&doc, "lab").status, Status::InSync);
}

fn http_backend_run(bed: &Bed, address: &str) -> (i32, Report) {
    bed.add_env("remote", "http_backend");
    let out = bed
        .cmd()
        .args(["--json", "--terraform-bin", "terraform"])
        .env("TF_HTTP_ADDRESS", address)
        .env("TF_HTTP_RETRY_MAX", "0")
        .output()
        .unwrap();
    bed.assert_no_plan_files();
    (out.status.code().unwrap(), report(&out.stdout))
}

#[test]
fn unreachable_backend_is_a_network_error() {
    let bed = Bed::new();
    // Nothing listens on port 1 of the loopback.
    let (code, doc) = http_backend_run(&bed, "http://127.0.0.1:1/state");
    assert_eq!(code, 2);
    let err = env_in(&doc, "remote").error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::Network, "{err:#?}");
    assert!(err.message.contains("terraform init failed"), "{err:#?}");
    assert!(err.message.contains("connection refused"), "{err:#?}");
}

#[test]
fn rejected_credentials_are_a_credentials_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().flatten().take(8) {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let bed = Bed::new();
    let (code, doc) = http_backend_run(&bed, &format!("http://127.0.0.1:{port}/state"));
    assert_eq!(code, 2);
    let err = env_in(&doc, "remote").error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::Credentials, "{err:#?}");
}

/// Terraform behind a wrapper that logs each command it is run with: the processes a check costs.
fn counting_terraform(bed: &Bed) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = bed.path("counting-terraform");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nexec terraform \"$@\"\n",
            bed.path("calls").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Issue 20: an initialised environment in sync costs one Terraform process (`plan`), one with drift
/// two (`plan`, then `show` to describe it); `init` only in a fresh folder, the version from the plan.
#[test]
fn terraform_processes_per_environment() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let wrapper = counting_terraform(&bed);
    let run = |expected: &[&str], code: i32| {
        let _ = std::fs::remove_file(bed.path("calls"));
        let out = bed
            .cmd()
            .args(["--json", "--terraform-bin"])
            .arg(&wrapper)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        let calls = bed.read("calls");
        assert_eq!(calls.lines().collect::<Vec<_>>(), expected, "{calls}");
        bed.assert_no_plan_files();
        report(&out.stdout)
    };
    // A fresh checkout: init once.
    let doc = run(&["init", "plan"], 0);
    assert_eq!(doc.terraform.version.as_deref(), Some("1.11.4"));
    // Initialised and in sync: the plan alone.
    let doc = run(&["plan"], 0);
    assert_eq!(env_in(&doc, "lab").status, Status::InSync);
    assert_eq!(
        doc.terraform.version.as_deref(),
        Some("1.11.4"),
        "from the plan's stream"
    );
    // Drift: the plan, then `show` for the values.
    bed.edit_attributes("lab", "dns", |a| a["input"]["value"] = json!("changed"));
    // Exit 1: drift, the scripts' code (Terraform's 2 needs --detailed-exitcode).
    let doc = run(&["plan", "show"], 1);
    let dns = resource_in(env_in(&doc, "lab"), "terraform_data.dns");
    assert_eq!(dns.changed_attributes[0].path, "input");
    // A change only resources ignored whole make: in sync, from the stream alone.
    std::fs::write(
        bed.env_dir("lab").join(".driftignore"),
        "terraform_data.dns  # renamed by hand, accepted\n",
    )
    .unwrap();
    let doc = run(&["plan"], 0);
    let lab = env_in(&doc, "lab");
    assert_eq!(lab.status, Status::InSync);
    assert_eq!(lab.counts.ignored, 1);
    let dns = resource_in(lab, "terraform_data.dns");
    assert_eq!(
        (dns.action, dns.origin, dns.ignored),
        (Action::Update, Origin::Pending, true)
    );
}
