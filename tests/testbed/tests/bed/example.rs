//! The example homelab: lab drifts, the others are in sync, running plan changes nothing.

use testbed::terraform::{self, Backend, Env};

use crate::common::{each_env, snapshot};

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
