//! Integration tests of the `rebuild-monitoring` binary.

use assert_cmd::Command;

fn bin() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("rebuild-monitoring")
}

#[test]
fn help_and_version_exit_0() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Usage: rebuild-monitoring"));
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
