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
    assert!(
        !s3.list_object_versions(terraform::STATE_BUCKET, "prod/")
            .unwrap()
            .is_empty()
    );

    // Real drift in prod (memory raised on the node); state edits in monitoring (resource forgotten,
    // stray resource); lock lab.
    let sim = prod.sim().unwrap();
    assert_eq!(sim.state_dir(), root.path().join(".sim/state"));
    assert_eq!(sim.state().unwrap().guests().unwrap().len(), 8);
    sim.set_memory(100, 4096).unwrap();
    let state = monitoring.read_state().unwrap();
    monitoring
        .inject_drift(&Drift::RemoveResource {
            address:
                "module.minio.module.container.proxmox_virtual_environment_container.container"
                    .into(),
        })
        .unwrap();
    monitoring
        .inject_drift(&Drift::AddResource {
            address: "module.monitoring_stack.terraform_data.grafana".into(),
            input: json!({"name": "grafana", "port": 3000}),
        })
        .unwrap();
    let drifted = monitoring.read_state().unwrap();
    assert_eq!(drifted["lineage"], state["lineage"]);
    assert_eq!(
        drifted["serial"].as_u64().unwrap(),
        state["serial"].as_u64().unwrap() + 2
    );
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
            "module.jellyfin.proxmox_virtual_environment_vm.vm".to_owned(),
            vec!["update".to_owned()]
        )]
    );
    let find = |list: &str| {
        prod_plan.as_ref().unwrap()[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == "module.jellyfin.proxmox_virtual_environment_vm.vm")
            .unwrap()["change"]
            .clone()
    };
    let change = find("resource_changes");
    assert_eq!(change["before"]["memory"][0]["dedicated"], 4096);
    assert_eq!(change["after"]["memory"][0]["dedicated"], 8192);
    // Found by the refresh: Terraform lists it as drift (state 8192, node 4096).
    let drift = find("resource_drift");
    assert_eq!(drift["before"]["memory"][0]["dedicated"], 8192);
    assert_eq!(drift["after"]["memory"][0]["dedicated"], 4096);

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
                "module.minio.module.container.proxmox_virtual_environment_container.container"
                    .to_owned(),
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
    .unwrap()
    .with_sim(lab.sim().unwrap().clone());
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
    fixtures.sim().unwrap().set_memory(201, 256).unwrap();
    let run = lab.plan().unwrap();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("module.pihole.proxmox_virtual_environment_container.container"),
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
