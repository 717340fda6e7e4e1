//! Driving check-drift as a library, the way the shared test bed does: a hand-built `Config` with the
//! Terraform binary and extra environment for Terraform (here a `TF_VAR_`; for the S3 bed, its endpoint and
//! credentials).

use std::sync::atomic::AtomicBool;

use check_drift::config::{Config, Selection};
use check_drift::report::Status;

use crate::support::Bed;

#[test]
fn config_carries_binary_and_terraform_environment() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let mut config = Config::for_root(bed.root());
    config.selection = Selection::Names(vec!["lab".into()]);
    config.terraform_bin = Some("terraform".into());
    config.lock_file = Some(bed.lock_file());
    config.terraform_env = vec![("TF_VAR_memory".into(), "10240".into())];
    let outcome = check_drift::run_with(&config, &AtomicBool::new(false)).unwrap();
    assert!(!outcome.interrupted);
    assert!(outcome.any_drift() && !outcome.any_error());
    let report = outcome.report.unwrap();
    let lab = &report.environments[0];
    assert_eq!(lab.status, Status::Drift);
    assert_eq!(lab.resources[0].address, "terraform_data.vm");
    assert_eq!(
        lab.resources[0].changed_attributes[0].path,
        "input.memory.dedicated"
    );
}

#[test]
fn interrupted_before_start_checks_nothing() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let mut config = Config::for_root(bed.root());
    config.terraform_bin = Some(crate::support::fake_terraform());
    config.lock_file = Some(bed.lock_file());
    let outcome = check_drift::run_with(&config, &AtomicBool::new(true)).unwrap();
    assert!(outcome.interrupted);
    let report = outcome.report.unwrap();
    assert_eq!(report.summary.error, 1);
    assert_eq!(
        report.environments[0].error.as_ref().unwrap().kind,
        check_drift::terraform::ErrorKind::Interrupted
    );
}
