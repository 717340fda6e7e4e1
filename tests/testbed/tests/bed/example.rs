//! The example homelab: with the guests its states describe on the simulated node and pihole's memory
//! raised through `pct set`, lab drifts (found by the refresh), the others are in sync, and running plan
//! changes no state.

use testbed::terraform::{self, Backend, Env, Sim};

use crate::common::{each_env, snapshot};

#[test]
fn example_homelab_lab_drifts_others_in_sync_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    // A copy: `terraform init` pins the provider's hash in .terraform.lock.hcl beside the configuration,
    // and a lock file left in the example by an older provider build would fail init.
    let homelab = tmp.path().join("homelab");
    // (The configuration only: not .sim/, which run-check-drift and test-modules leave behind.)
    let example = terraform::example_homelab_dir();
    for sub in ["environments", "modules"] {
        terraform::copy_tree(&example.join(sub), &homelab.join(sub)).unwrap();
    }
    std::fs::copy(
        example.join("terraform.tfvars"),
        homelab.join("terraform.tfvars"),
    )
    .unwrap();
    for name in terraform::ENVIRONMENTS {
        let _ = std::fs::remove_file(
            homelab
                .join("environments")
                .join(name)
                .join(".terraform.lock.hcl"),
        );
    }
    // Terraform's lock files (ignored by git) aside, every file stays as it is.
    let files = || -> Vec<_> {
        snapshot(&homelab)
            .into_iter()
            .filter(|(p, _)| !p.ends_with(".terraform.lock.hcl"))
            .collect()
    };
    let before = files();
    let sim = Sim::install(&tmp.path().join("sim")).unwrap();
    terraform::seed_example_guests(&sim).unwrap();
    // Someone raised pihole's memory in the Proxmox UI.
    let pct = testbed::process::command(env!("CARGO_BIN_EXE_pve-sim"))
        .args(["pct", "set", "201", "--memory", "1024"])
        .env("PVE_SIM_STATE", sim.state_dir())
        .output()
        .unwrap();
    assert!(pct.status.success(), "{pct:?}");

    let envs: Vec<Env> = terraform::ENVIRONMENTS
        .iter()
        .map(|name| {
            Env::new(
                &homelab.join("environments").join(name),
                Backend::Local,
                &tmp.path().join("data").join(name),
            )
            .unwrap()
            .with_sim(sim.clone())
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
    assert_eq!(codes, [0, 2, 0], "prod, lab, monitoring: {runs:?}");
    let lab = &runs[1].stdout;
    assert!(
        lab.contains(
            "module.pihole.proxmox_virtual_environment_container.container will be updated in-place"
        ),
        "{lab}"
    );
    assert!(lab.contains("1024 -> 512"), "{lab}");
    let after = files();
    let changed: Vec<_> = after
        .iter()
        .filter(|file| !before.contains(file))
        .map(|(path, _)| path)
        .collect();
    assert!(changed.is_empty(), "plan changed {changed:?}");
    assert_eq!(
        after.len(),
        before.len(),
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
