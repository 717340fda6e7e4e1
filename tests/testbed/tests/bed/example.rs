//! The example homelab: with the guests its states describe on the simulated node and pihole's memory
//! raised through `pct set`, lab drifts (found by the refresh), the others are in sync, and running plan
//! changes no state.

use std::path::{Path, PathBuf};

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

/// Every file under `root`'s `modules/` and `environments/`, by path relative to `root`.
fn configuration(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = ["modules", "environments"]
        .iter()
        .map(|sub| root.join(sub))
        .filter(|dir| dir.is_dir())
        .flat_map(|dir| snapshot(&dir))
        .map(|(p, c)| (p.strip_prefix(root).unwrap().to_owned(), c))
        .collect();
    files.sort();
    files
}

/// The bed runs the example's configuration (`copy_fixtures` copies it): guards that the copy is the
/// example's configuration file for file, that the overlay in `tests/testbed/fixtures` replaces only
/// each environment's backend (with S3, for every environment the example has), and that nothing of
/// the example's data or Terraform's working files (a committed local state, a stale lock file,
/// module tests) comes along.
#[test]
fn fixture_copy_is_the_example_configuration_with_s3_backends() {
    let homelab = terraform::example_homelab_dir();
    let mut example_envs: Vec<String> = std::fs::read_dir(homelab.join("environments"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    example_envs.sort();
    let mut bed_envs = terraform::ENVIRONMENTS.map(str::to_owned);
    bed_envs.sort();
    assert_eq!(
        example_envs, bed_envs,
        "the bed runs every example environment"
    );

    let overlay = configuration(&terraform::fixtures_dir());
    let mut backends: Vec<PathBuf> = bed_envs
        .iter()
        .map(|env| Path::new("environments").join(env).join("backend.tf"))
        .collect();
    backends.sort();
    assert_eq!(
        overlay.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        backends,
        "tests/testbed/fixtures holds only the environments' backends"
    );
    for (path, text) in &overlay {
        let text = String::from_utf8_lossy(text);
        assert!(
            text.contains("backend \"s3\" {}"),
            "{}: {text}",
            path.display()
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    terraform::copy_fixtures(tmp.path(), terraform::BackendKind::S3).unwrap();
    // The example's *.tf files but its modules' tests and its backends, then the overlay's backends.
    let mut expected: Vec<_> = configuration(&homelab)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "tf"))
        .filter(|(p, _)| !p.components().any(|c| c.as_os_str() == "tests"))
        .filter(|(p, _)| !backends.contains(p))
        .chain(overlay)
        .collect();
    expected.sort();
    let copy = configuration(tmp.path());
    assert_eq!(
        copy.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        expected.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        "files of the copy"
    );
    assert_eq!(copy, expected, "contents of the copy");
}
