//! Terraform environments: S3 and local backends, drift injection, the state lock.

use serde_json::json;
use testbed::s3::S3Server;
use testbed::terraform::{self, Backend, BackendKind, Drift, Env, S3Backend};

use crate::common::{changes, each_env};

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

    // Another run holds the local state's lock.
    let lock = lab.hold_lock("OperationTypeApply", "ops@laptop").unwrap();
    let locked = lab.plan().unwrap();
    assert_eq!(locked.code, 1, "{}", locked.stderr);
    assert!(
        locked.stderr.contains("Error acquiring the state lock"),
        "{}",
        locked.stderr
    );
    assert!(locked.stderr.contains("ops@laptop"), "{}", locked.stderr);
    lock.release().unwrap();
    assert!(!lab.dir().join(".terraform.tfstate.lock.info").exists());
    assert_eq!(lab.plan().unwrap().code, 2);
}
