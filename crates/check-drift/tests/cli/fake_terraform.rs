//! A fake terraform that logs its arguments: what check-drift runs, and how it stops Terraform.

use std::process::Output;
use std::time::{Duration, Instant};

use check_drift::plan::{Origin, Risk};
use check_drift::report::EnvError;
use check_drift::report::Status;
use check_drift::terraform::{ErrorKind, LockInfo};

use crate::support::{Bed, env_in, plan_fixture, report, resource_in, stderr};

fn calls(bed: &Bed) -> Vec<String> {
    bed.read("tf.log").lines().map(str::to_owned).collect()
}

/// The verbs Terraform was run with, in order, without the one `version` (it runs next to the first
/// environment, so its place in the log varies).
fn verbs(calls: &[String]) -> Vec<&str> {
    let all: Vec<&str> = calls
        .iter()
        .map(|c| c.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        all.iter().filter(|v| **v == "version").count(),
        1,
        "{calls:?}"
    );
    all.into_iter().filter(|v| *v != "version").collect()
}

/// check-drift with `--json` and `args` over the bed (its environments added by the test), the fake
/// terraform showing the plan fixture `plan` (if any) and set up by `vars` (`FAKE_TF_MODE`...).
fn fake_json(bed: &Bed, args: &[&str], plan: Option<&str>, vars: &[(&str, &str)]) -> Output {
    let mut cmd = bed.fake_cmd();
    cmd.arg("--json").args(args).envs(vars.iter().copied());
    if let Some(plan) = plan {
        cmd.env("FAKE_TF_SHOW_JSON", plan_fixture(plan));
    }
    cmd.output().unwrap()
}

/// The error of environment `lab` in a run's report; panics when lab has none.
fn lab_error(out: &Output) -> EnvError {
    env_in(&report(&out.stdout), "lab")
        .error
        .clone()
        .unwrap_or_else(|| panic!("lab has no error: {}", stderr(out)))
}

fn assert_never_writes(calls: &[String]) {
    for call in calls {
        let verb = call.split_whitespace().next().unwrap_or_default();
        assert!(
            !matches!(
                verb,
                "apply" | "import" | "state" | "destroy" | "force-unlock" | "taint" | "untaint"
            ),
            "check-drift must never run `{call}`"
        );
    }
}

#[test]
fn dry_run_prints_commands_and_runs_nothing() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    bed.add_env("prod", "basic");
    let out = bed
        .fake_cmd()
        .args(["--dry-run", "--lock-timeout", "30s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // check-drift.sh's summary, every environment "dry-run"; no report.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("lab ") && l.ends_with(" dry-run")),
        "{text}"
    );
    assert!(!text.contains("schema"), "dry-run writes no report: {text}");
    assert!(calls(&bed).is_empty(), "dry-run ran: {:?}", calls(&bed));
    let err = stderr(&out);
    for env in ["lab", "prod"] {
        assert!(
            err.contains(&format!("[DRY-RUN] cd {}", bed.env_dir(env).display())),
            "{err}"
        );
        assert!(
            err.contains(&format!("{env}.tfplan (plan file, mode 0600")),
            "{err}"
        );
    }
    assert!(err.contains("TF_IN_AUTOMATION=1"), "{err}");
    // Shell-quoted, so each line can be pasted into a shell as is.
    assert!(err.contains("init '-input=false' -no-color"), "{err}");
    assert!(
        err.contains("plan '-input=false' -no-color -detailed-exitcode '-lock-timeout=30s' '-out="),
        "{err}"
    );
    assert!(err.contains("show -json -no-color"), "{err}");
    assert!(!err.contains("-upgrade"));
    assert!(
        !bed.lock_file().exists(),
        "dry-run does not even create the run lock"
    );
    assert!(!bed.env_dir("lab").join(".terraform").exists());
    bed.assert_no_plan_files();
}

#[test]
fn full_run_never_applies_and_keeps_plan_file_private() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let out = fake_json(&bed, &[], Some("bpg_mixed.json"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let calls = calls(&bed);
    assert_eq!(verbs(&calls), ["init", "plan", "show"], "{calls:?}");
    assert_never_writes(&calls);
    let info = bed.read("planinfo");
    assert!(info.trim_end().ends_with(" 600"), "plan file mode: {info}");
    assert!(
        info.starts_with(bed.tmp().to_str().unwrap()),
        "plan file in TMPDIR: {info}"
    );
    bed.assert_no_plan_files();

    let doc = report(&out.stdout);
    let lab = env_in(&doc, "lab");
    assert_eq!(
        resource_in(lab, "proxmox_virtual_environment_vm.web").origin,
        Origin::Drift
    );
    assert_eq!(
        resource_in(lab, "proxmox_virtual_environment_vm.dns").origin,
        Origin::Both
    );
    assert_eq!(
        resource_in(lab, "proxmox_virtual_environment_vm.monitoring").risk,
        Risk::Dangerous
    );
    assert_eq!(lab.resources[0].risk, Risk::Dangerous, "dangerous first");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Secr3t"),
        "sensitive values masked"
    );
}

/// A run over one environment `lab` whose folder was initialised before (it has `.terraform`).
fn run_initialised(bed: &Bed, mode: &str) -> Output {
    let dir = bed.add_env("lab", "basic");
    std::fs::create_dir(dir.join(".terraform")).unwrap();
    fake_json(bed, &[], Some("bpg_mixed.json"), &[("FAKE_TF_MODE", mode)])
}

#[test]
fn initialised_folder_is_planned_without_init() {
    let bed = Bed::new();
    let out = run_initialised(&bed, "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let calls = calls(&bed);
    assert_eq!(verbs(&calls), ["plan", "show"], "{calls:?}");
    bed.assert_no_plan_files();
}

/// An initialised folder whose backend (or modules, providers, lock file) changed: `plan` says init is
/// required, check-drift runs it once and plans again.
#[test]
fn init_runs_and_plan_is_retried_when_terraform_asks_for_it() {
    let bed = Bed::new();
    let out = run_initialised(&bed, "needs-init");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let calls = calls(&bed);
    assert_eq!(verbs(&calls), ["plan", "init", "plan", "show"], "{calls:?}");
    assert!(
        err.contains("lab: Terraform asks for init (Backend initialization required"),
        "{err}"
    );
    let doc = report(&out.stdout);
    assert_eq!(env_in(&doc, "lab").status, Status::Drift);
    assert_eq!(env_in(&doc, "lab").exit_code, Some(2));
    bed.assert_no_plan_files();
}

#[test]
fn output_changes_alone_are_not_drift() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let out = fake_json(&bed, &[], Some("bpg_outputs_only.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = report(&out.stdout);
    let lab = env_in(&doc, "lab");
    assert_eq!(lab.status, Status::InSync);
    assert_eq!(lab.output_changes[0].name, "runner_ip");
}

#[test]
fn exit_code_and_json_disagree_json_wins() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let out = fake_json(
        &bed,
        &[],
        Some("bpg_in_sync.json"),
        &[("FAKE_TF_PLAN_EXIT", "2")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trusting the JSON"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errored_plan_is_an_error() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let out = fake_json(&bed, &[], Some("bpg_errored.json"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env_in(&report(&out.stdout), "lab").status, Status::Error);
}

#[test]
fn s3_lock_message_gives_kind_lock_and_holder() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let out = fake_json(&bed, &[], None, &[("FAKE_TF_MODE", "lock")]);
    assert_eq!(out.status.code(), Some(2));
    let err = lab_error(&out);
    assert_eq!(err.kind, ErrorKind::Lock);
    // Its age grows with the clock: checked against the lock's own time.
    let mut lock = err.lock.clone().unwrap();
    let age = lock.age_seconds.take().expect("the lock's age");
    let created: jiff::Timestamp = "2026-11-21T08:00:00Z".parse().unwrap();
    let expected = jiff::Timestamp::now().duration_since(created).as_secs();
    assert!(expected.abs_diff(age as i64) <= 5, "{age} vs {expected}");
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        lock,
        LockInfo {
            id: some("5e0c1f4a-7d5b-4c1e-9a57-0d7c2b1f6e11"),
            path: some("pve-tfstate/lab/terraform.tfstate"),
            operation: some("OperationTypeApply"),
            who: some("ops@bastion"),
            version: some("1.11.4"),
            created: some("2026-11-21 08:00:00.123456789 +0000 UTC"),
            age_seconds: None,
        }
    );
    assert_eq!(env_in(&report(&out.stdout), "lab").exit_code, Some(1));
    bed.assert_no_plan_files();
}

#[test]
fn timeout_interrupts_terraform_so_it_releases_the_lock() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let started = Instant::now();
    let out = fake_json(
        &bed,
        &["--timeout", "1s"],
        None,
        &[("FAKE_TF_MODE", "hang")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "SIGINT was enough: no 10 s grace wait"
    );
    let err = lab_error(&out);
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("terraform plan"), "{err:#?}");
    assert_eq!(bed.read("mark").trim(), "sigint", "Terraform got SIGINT");
    assert!(
        !bed.path("state.lock").exists(),
        "the pretend state lock was released"
    );
    bed.assert_no_plan_files();
}

#[test]
fn stubborn_terraform_is_killed_after_the_grace_period() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let started = Instant::now();
    let out = fake_json(
        &bed,
        &["--timeout", "500ms"],
        None,
        &[
            ("FAKE_TF_MODE", "stubborn"),
            ("PVE_DRIFT_KILL_GRACE", "300ms"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(lab_error(&out).kind, ErrorKind::Timeout);
    assert!(
        stderr(&out).contains("did not stop within"),
        "{}",
        stderr(&out)
    );
    bed.assert_no_plan_files();
}

#[test]
fn sigint_stops_every_child_and_exits_130() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    bed.add_env("prod", "basic");
    let mut cmd = crate::support::bin_std();
    cmd.args(["--json", "--jobs", "2", "--root"])
        .arg(bed.root())
        .arg("--terraform-bin")
        .arg(crate::support::fake_terraform())
        .env("TMPDIR", bed.tmp())
        .env("PVE_DRIFT_LOCK_FILE", bed.lock_file())
        .env("FAKE_TF_LOG", bed.path("tf.log"))
        .env("FAKE_TF_STATE_LOCK", bed.path("state.lock"))
        .env("FAKE_TF_MARK", bed.path("mark"))
        .env("FAKE_TF_MODE", "hang");
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a plan holds its pretend lock, then Ctrl-C check-drift (not its children's groups).
    for _ in 0..200 {
        if bed.path("state.lock").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(bed.path("state.lock").exists());
    assert_cmd::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .assert()
        .success();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(bed.read("mark").trim(), "sigint");
    assert!(!bed.path("state.lock").exists());
    let doc = report(&out.stdout);
    assert_eq!(doc.summary.environments, 2);
    assert_eq!(
        env_in(&doc, "lab").error.as_ref().unwrap().kind,
        ErrorKind::Interrupted
    );
    bed.assert_no_plan_files();
}

#[test]
fn missing_terraform_is_reported_per_environment() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let out = bed
        .cmd()
        .args(["--json", "--terraform-bin", "/nonexistent/terraform"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(lab_error(&out).kind, ErrorKind::TerraformMissing);
}

#[test]
fn run_lock_held_exits_75_and_wait_lock_waits() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let held = std::fs::File::create(bed.lock_file()).unwrap();
    held.try_lock().unwrap();
    let out = bed
        .fake_cmd()
        .env("FAKE_TF_SHOW_JSON", plan_fixture("bpg_in_sync.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("another check-drift run holds the run lock"));
    assert!(calls(&bed).is_empty(), "nothing ran");

    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
    });
    let out = bed
        .fake_cmd()
        .arg("--wait-lock")
        .env("FAKE_TF_SHOW_JSON", plan_fixture("bpg_in_sync.json"))
        .env("FAKE_TF_PLAN_EXIT", "0")
        .output()
        .unwrap();
    releaser.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
