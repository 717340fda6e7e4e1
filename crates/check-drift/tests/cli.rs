//! Integration tests of the `check-drift` binary.

use assert_cmd::Command;

fn bin() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("check-drift")
}

#[test]
fn help_and_version_exit_0() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Usage: check-drift"));
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_error_exits_64() {
    bin().arg("--no-such-flag").assert().code(64);
}
