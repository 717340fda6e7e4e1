//! Integration tests of the `rebuild-minio` binary against the test bed: real Terraform, a real S3 server
//! (moto) started by the MinIO module's provisioner, states restored from save points.
#![allow(clippy::unwrap_used)]

mod bed;
mod dropin;

use assert_cmd::Command;
use bed::Bed;
use rebuild_minio::{Outcome, StateAction, StepName, StepStatus};
use serde_json::Value;

fn bin() -> Command {
    Command::from_std(testbed::tool::command(env!("CARGO_BIN_EXE_rebuild-minio")))
}

fn rebuild(bed: &Bed, args: &[&str]) -> (i32, Doc, String) {
    let out = bin()
        .envs(bed::aws_env())
        .env("PVE_RETRY_ATTEMPTS", "1")
        .arg("--root")
        .arg(bed.root())
        .arg("--state-from")
        .arg(bed.save_points())
        .args(["--health-timeout", "90s", "--json"])
        .args(args)
        .output()
        .unwrap();
    testbed::tool::typed_run(&out, "pve-rebuild-minio/v1")
}

/// The `--json` document, decoded.
type Doc = pve_common::output::Document<rebuild_minio::Report>;

/// The report's steps, in the order they run (the health check, then the rebuild).
const STEPS: [&str; 9] = [
    "health",
    "to_local",
    "plan",
    "apply",
    "wait_healthy",
    "buckets",
    "states",
    "to_minio",
    "verify",
];

/// The status of the step `name`; panics naming the steps there are.
fn status(doc: &Doc, name: &str) -> StepStatus {
    let steps = &doc.body.steps;
    testbed::tool::entry(
        steps,
        |s| s.name.as_str() == name,
        format_args!("step {name}"),
        steps,
    )
    .status
}

#[test]
fn help_and_version_exit_0() {
    testbed::tool::assert_help_and_version(
        &bin().arg("--help").output().unwrap(),
        &bin().arg("--version").output().unwrap(),
        "rebuild-minio",
        env!("CARGO_PKG_VERSION"),
    );
}

#[test]
fn usage_errors_exit_64() {
    bin().arg("--no-such-flag").assert().code(64);
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("monitoring")).unwrap();
    std::fs::write(root.path().join("monitoring/main.tf"), "").unwrap();
    let r = root.path().to_str().unwrap();
    bin()
        .args(["--root", r, "--target", "terraform_data.x"])
        .assert()
        .code(64)
        .stderr(predicates::str::contains("module address"));
    bin()
        .args(["--root", r, "--buckets", "Bad_Bucket"])
        .assert()
        .code(64);
    bin().args(["--root", r, "--env", "nope"]).assert().code(64);
}

#[test]
fn healthy_minio_is_a_no_op() {
    let bed = Bed::up();
    let before = bed.snapshot();
    let versions = bed
        .client()
        .list_object_versions("tfstate-prod", "")
        .unwrap()
        .len();
    let (code, doc, stderr) = rebuild(&bed, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc.body.outcome, Outcome::Healthy, "{doc:#?}");
    assert!(doc.body.health.live);
    // moto has no /minio/health/live: the S3 ListBuckets fallback found it live.
    assert_eq!(doc.body.health.probe, "s3", "{doc:#?}");
    assert_eq!(doc.body.steps.len(), 1);
    assert_eq!(bed.snapshot(), before, "files changed");
    assert_eq!(
        bed.client()
            .list_object_versions("tfstate-prod", "")
            .unwrap()
            .len(),
        versions,
        "S3 changed"
    );
}

#[test]
fn rebuild_brings_s3_back_restores_states_and_plans_against_s3() {
    let bed = Bed::up();
    let prod_serial = bed.save_point("prod")["serial"].as_u64().unwrap();
    bed.lose_minio();
    assert!(!bed.s3_up());
    let (code, doc, stderr) = rebuild(&bed, &["--yes"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.body.outcome, Outcome::Rebuilt, "{doc:#?}");
    for name in &STEPS[1..] {
        assert_eq!(status(&doc, name), StepStatus::Ok, "{name}: {doc:#?}");
    }
    // A real targeted apply started S3 again.
    assert!(bed.s3_up());
    assert!(bed.s3_pid().is_some());
    let client = bed.client();
    for bucket in ["tfstate-monitoring", "tfstate-prod"] {
        assert_eq!(
            client.versioning(bucket).unwrap(),
            testbed::s3::Versioning::Enabled
        );
    }
    let prod = bed.s3_state("prod").unwrap();
    assert_eq!(prod["serial"].as_u64().unwrap(), prod_serial);
    assert_eq!(prod["lineage"], bed.save_point("prod")["lineage"]);
    let monitoring = bed.s3_state("monitoring").unwrap();
    let resources = monitoring["resources"].as_array().unwrap();
    assert!(
        resources.iter().any(|r| r["module"] == "module.minio"),
        "the MinIO resources are back in the state"
    );
    let states = &doc.body.states;
    assert_eq!(states.len(), 2);
    for s in states {
        assert_eq!(s.sound, Some(true), "{s:#?}");
        assert_eq!(s.init_ok, Some(true), "{s:#?}");
        assert_eq!(s.plan_exit_code, Some(0), "{s:#?}");
    }
    assert!(
        !bed.env_dir("monitoring")
            .join("pve_local_backend_override.tf")
            .exists(),
        "back on S3"
    );
    // And now it is healthy: a second run changes nothing.
    let (code, doc, stderr) = rebuild(&bed, &["--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc.body.outcome, Outcome::Healthy, "{doc:#?}");
}

#[test]
fn live_minio_without_its_data_gets_buckets_and_states_back_without_an_apply() {
    let bed = Bed::up();
    bed.empty_s3();
    let pid = bed.s3_pid();
    let (code, doc, stderr) = rebuild(&bed, &["--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc.schema, rebuild_minio::SCHEMA);
    assert_eq!(doc.tool.name, "rebuild-minio");
    let report = &doc.body;
    assert_eq!(report.outcome, Outcome::Rebuilt, "{report:?}");
    for name in ["to_local", "plan", "apply", "wait_healthy", "to_minio"] {
        assert_eq!(
            status(&doc, name),
            StepStatus::Skipped,
            "{name}: {report:?}"
        );
    }
    assert_eq!(status(&doc, "verify"), StepStatus::Ok, "{report:?}");
    assert_eq!(bed.s3_pid(), pid, "the server was not touched");
    for env in ["monitoring", "prod"] {
        let state = bed.s3_state(env).unwrap();
        assert_eq!(state["serial"], bed.save_point(env)["serial"], "{env}");
    }
    assert!(
        report
            .buckets
            .iter()
            .all(|b| b.created && b.versioning == Some(pve_common::s3::Versioning::Enabled)),
        "{report:?}"
    );
    assert!(
        report
            .states
            .iter()
            .all(|s| s.action == StateAction::Uploaded && s.plan_exit_code == Some(0)),
        "{report:?}"
    );
}

#[test]
fn force_rebuilds_a_healthy_minio_keeping_newer_states() {
    let bed = Bed::up();
    let before = bed.s3_state("monitoring").unwrap()["serial"]
        .as_u64()
        .unwrap();
    // --rebuild-healthy (the old --force) rebuilds it; --force only answers the apply's confirmation.
    let (code, doc, stderr) = rebuild(&bed, &["--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        doc.body.outcome,
        Outcome::Healthy,
        "--force alone is no reason to rebuild: {doc:#?}"
    );
    let (code, doc, stderr) = rebuild(&bed, &["--force", "--rebuild-healthy"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.body.outcome, Outcome::Rebuilt, "{doc:#?}");
    assert_eq!(status(&doc, "to_local"), StepStatus::Ok);
    assert_eq!(status(&doc, "to_minio"), StepStatus::Ok, "{doc:#?}");
    let states = &doc.body.states;
    let prod = states.iter().find(|s| s.env == "prod").unwrap();
    assert_eq!(
        prod.action,
        StateAction::Kept,
        "S3 already has that serial: {prod:#?}"
    );
    let monitoring = states.iter().find(|s| s.env == "monitoring").unwrap();
    assert_eq!(monitoring.action, StateAction::MovedBack);
    assert!(
        bed.s3_state("monitoring").unwrap()["serial"]
            .as_u64()
            .unwrap()
            >= before
    );
}

#[test]
fn another_lineage_replaces_an_s3_state_only_with_allow_lineage_change_never_with_force() {
    let bed = Bed::up();
    let on_s3 = bed.s3_state("prod").unwrap();
    let mut other = bed.save_point("prod");
    other["lineage"] = Value::from("00000000-0000-4000-8000-000000000021");
    other["serial"] = Value::from(on_s3["serial"].as_u64().unwrap() + 10);
    bed.set_save_point("prod", &other);
    let (code, doc, stderr) = rebuild(&bed, &["--force", "--rebuild-healthy"]);
    assert_ne!(
        code, 0,
        "--force let another lineage in: {doc:#?}\n{stderr}"
    );
    assert!(stderr.contains("--allow-lineage-change"), "{stderr}");
    assert_eq!(bed.s3_state("prod").unwrap()["lineage"], on_s3["lineage"]);
    let (code, doc, stderr) = rebuild(
        &bed,
        &["--force", "--rebuild-healthy", "--allow-lineage-change"],
    );
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    let prod = bed.s3_state("prod").unwrap();
    assert_eq!(prod["lineage"], other["lineage"], "{doc:#?}");
}

#[test]
fn preview_changes_nothing() {
    let bed = Bed::up();
    bed.lose_minio();
    let before = bed.snapshot();
    let (code, doc, stderr) = rebuild(&bed, &["--preview"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(doc.body.outcome, Outcome::WouldRebuild, "{doc:#?}");
    assert!(doc.body.dry_run);
    assert_eq!(status(&doc, "apply"), StepStatus::Planned);
    assert!(stderr.contains("[dry-run] would"), "{stderr}");
    assert_eq!(bed.snapshot(), before, "files changed");
    assert!(!bed.s3_up(), "S3 was started");
}

#[test]
fn plan_that_would_replace_something_else_is_refused() {
    let bed = Bed::up();
    bed.lose_minio();
    // The network module.minio depends on would be replaced by a -target plan.
    bed.set_network_generation(2);
    let (code, doc, stderr) = rebuild(&bed, &["--yes"]);
    assert_eq!(code, 1, "{stderr}\n{doc:#?}");
    assert_eq!(doc.body.outcome, Outcome::Refused, "{doc:#?}");
    assert_eq!(status(&doc, "plan"), StepStatus::Failed);
    let refused = &doc.body.refused_changes;
    assert_eq!(refused.len(), 1, "{doc:#?}");
    assert_eq!(refused[0].address, "terraform_data.network");
    assert!(stderr.contains("terraform_data.network"), "{stderr}");
    assert!(
        doc.body.steps.iter().all(|s| s.name != StepName::Apply),
        "{doc:#?}"
    );
    assert!(!bed.s3_up(), "nothing was applied");
}

#[test]
fn without_a_terminal_or_yes_nothing_is_applied() {
    let bed = Bed::up();
    bed.lose_minio();
    let (code, doc, stderr) = rebuild(&bed, &[]);
    assert_eq!(code, 1, "{stderr}\n{doc:#?}");
    assert_eq!(doc.body.outcome, Outcome::Refused, "{doc:#?}");
    // The prompt reads stdin when there is no terminal; its end is "no".
    assert!(stderr.contains("not confirmed"), "{stderr}");
    assert!(!bed.s3_up(), "nothing was applied");
}

/// Issue 21: a state lock held by another run when the MinIO environment's state is to move back to S3
/// is busy (75), stderr names the holder, and the state in S3 is left as it was. The code comes from pve-common's
/// `Busy` in the error chain, not from knowing restore-tfstate's lock error type.
#[test]
fn a_state_lock_held_elsewhere_is_busy_75() {
    let bed = Bed::up();
    let lock = r#"{"ID":"4f1d2c3b","Operation":"OperationTypeApply","Info":"","Who":"ops@elsewhere","Version":"1.11.4","Created":"2026-12-06T08:00:00Z","Path":"tfstate-monitoring/monitoring/terraform.tfstate"}"#;
    bed.client()
        .put_object(
            "tfstate-monitoring",
            "monitoring/terraform.tfstate.tflock",
            lock.as_bytes(),
        )
        .unwrap();
    let before = bed.s3_state("monitoring").unwrap();
    let (code, doc, stderr) = rebuild(&bed, &["--force", "--rebuild-healthy"]);
    assert_eq!(code, 75, "{stderr}");
    assert_eq!(doc.body.outcome, Outcome::Failed, "{stderr}");
    assert_eq!(status(&doc, "to_minio"), StepStatus::Failed, "{stderr}");
    assert!(
        stderr.contains("is held by ops@elsewhere"),
        "the holder is named: {stderr}"
    );
    assert_eq!(
        bed.s3_state("monitoring").unwrap(),
        before,
        "nothing written"
    );
}

/// With no --env, the MinIO environment is the one whose local state manages the MinIO container (here
/// prod, not the script's default `monitoring`), and its node is its own tfvars' `default_node`.
#[test]
fn the_minio_environment_and_node_come_from_the_state_that_owns_the_container() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("environments");
    for (env, node) in [
        ("prod", "pve-prod"),
        ("lab", "pve-lab"),
        ("monitoring", "pve-mon"),
    ] {
        let dir = root.join(env);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.tf"), "").unwrap();
        std::fs::write(
            dir.join("terraform.tfvars"),
            format!("default_node = \"{node}\"\nproxmox_endpoint = \"https://192.0.2.10:8006\"\n"),
        )
        .unwrap();
    }
    let state = serde_json::json!({"version": 4, "serial": 1, "lineage": "l", "resources": [
        {"mode": "managed", "type": "proxmox_virtual_environment_container", "name": "container",
         "module": "module.minio",
         "instances": [{"attributes": {"vm_id": 110, "node_name": "pve-prod"}}]}]});
    std::fs::write(root.join("prod/terraform.tfstate"), state.to_string()).unwrap();
    let run = |args: &[&str]| {
        let out = bin()
            .arg("--root")
            .arg(&root)
            .arg("--state-from")
            .arg(tmp.path().join("save-points"))
            .args(["--dry-run", "--json"])
            .args(args)
            .output()
            .unwrap();
        testbed::tool::typed_run::<Doc>(&out, "pve-rebuild-minio/v1")
    };
    let (code, doc, stderr) = run(&[]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(
        (doc.body.env.as_str(), doc.body.node.as_deref()),
        ("prod", Some("pve-prod")),
        "{doc:#?}"
    );
    // --env still wins.
    let (code, doc, stderr) = run(&["--env", "monitoring"]);
    assert_eq!(code, 0, "{stderr}\n{doc:#?}");
    assert_eq!(
        (doc.body.env.as_str(), doc.body.node.as_deref()),
        ("monitoring", Some("pve-mon")),
        "{doc:#?}"
    );
}
