//! The bed's external programs, checked before first use.
//!
//! A test that needs a program the machine lacks fails at once with one line naming the package that
//! provides it (`tests/run-all` installs them all as root), instead of waiting for a daemon that never
//! starts: without sshd, each SSH test used to wait out sshd's 10 s start timeout and say nothing of
//! what was missing.

use std::path::Path;

use anyhow::{Result, bail};

/// A program the bed runs and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component {
    /// Name looked up on `PATH`, or an absolute path.
    pub program: &'static str,
    /// What provides it, as a user would install it.
    pub source: &'static str,
}

const fn debian(program: &'static str, package: &'static str) -> Component {
    Component {
        program,
        source: package,
    }
}

/// Every program the bed or the tests start, with its package.
pub const COMPONENTS: &[Component] = &[
    debian(crate::sshd::SSHD, "the Debian package openssh-server"),
    debian("ssh", "the Debian package openssh-client"),
    debian("ssh-keygen", "the Debian package openssh-client"),
    debian("ssh-agent", "the Debian package openssh-client"),
    debian("ssh-add", "the Debian package openssh-client"),
    debian(
        "moto_server",
        "the PyPI package moto[server] (version in tests/components.env)",
    ),
    debian(
        "terraform",
        "HashiCorp's Terraform 1.11.4 (not packaged by Debian; put it on PATH)",
    ),
    debian("prometheus", "the Debian package prometheus"),
    debian("promtool", "the Debian package prometheus"),
    debian(
        "prometheus-alertmanager",
        "the Debian package prometheus-alertmanager",
    ),
    debian("amtool", "the Debian package prometheus-alertmanager"),
    debian(
        "prometheus-node-exporter",
        "the Debian package prometheus-node-exporter",
    ),
    debian("bats", "the Debian package bats"),
    debian("zstd", "the Debian package zstd"),
    debian("lzop", "the Debian package lzop"),
    debian("jq", "the Debian package jq"),
    debian("python3", "the Debian package python3"),
];

/// Fails with one line naming the package if `program` (a name from [`COMPONENTS`], or any other) is
/// neither an existing absolute path nor found on `PATH`.
pub fn require(program: &str) -> Result<()> {
    if found(program) {
        return Ok(());
    }
    bail!("{}", missing(program))
}

/// The one-line message for a missing `program`.
fn missing(program: &str) -> String {
    match COMPONENTS.iter().find(|c| c.program == program) {
        Some(c) => format!(
            "test component missing: {program} (install {}; tests/run-all installs the test \
             components when run as root)",
            c.source
        ),
        None => format!("test component missing: {program} (not found on PATH)"),
    }
}

/// [`require`] for several programs; the first missing one is reported.
pub fn require_all(programs: &[&str]) -> Result<()> {
    programs.iter().try_for_each(|p| require(p))
}

fn found(program: &str) -> bool {
    if program.starts_with('/') {
        return is_executable(Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_component_names_its_package_in_one_line() {
        let err = require("/nonexistent/sshd").unwrap_err().to_string();
        assert_eq!(err, missing("/nonexistent/sshd"));
        let msg = missing(crate::sshd::SSHD);
        assert!(msg.contains("Debian package openssh-server"), "{msg}");
        for c in COMPONENTS {
            assert_eq!(missing(c.program).lines().count(), 1, "{}", c.program);
            assert!(missing(c.program).contains(c.source));
        }
    }

    #[test]
    fn a_present_program_passes() {
        require("sh").unwrap();
        require("/bin/sh").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(require(plain.to_str().unwrap()).is_err(), "not executable");
    }
}
