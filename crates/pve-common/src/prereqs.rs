//! Prerequisites: find every command a tool needs before doing anything, and report all missing ones at
//! once, each with what it is for (the bash scripts stopped at the first).

use std::ffi::OsStr;
use std::path::PathBuf;

use thiserror::Error;

/// A command a tool needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prereq {
    /// The command name looked up in `PATH`.
    pub command: &'static str,
    /// What it is needed for, shown when it is missing.
    pub purpose: &'static str,
}

/// Some prerequisites are missing.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("missing required commands:\n{}", .missing.iter().map(|p| format!("  {}: {}", p.command, p.purpose)).collect::<Vec<_>>().join("\n"))]
pub struct MissingPrereqs {
    /// Every missing one, in the order asked.
    pub missing: Vec<Prereq>,
}

/// Finds every command in `PATH`; returns their paths in order, or every missing one.
pub fn check_prereqs(prereqs: &[Prereq]) -> Result<Vec<PathBuf>, MissingPrereqs> {
    check_prereqs_in(prereqs, std::env::var_os("PATH").as_deref())
}

/// [`check_prereqs`] against an explicit `PATH` value (for tests).
pub fn check_prereqs_in(
    prereqs: &[Prereq],
    path: Option<&OsStr>,
) -> Result<Vec<PathBuf>, MissingPrereqs> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for prereq in prereqs {
        match which::which_in(prereq.command, path, &cwd) {
            Ok(p) => found.push(p),
            Err(_) => missing.push(*prereq),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(MissingPrereqs { missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_missing_command_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let sh = dir.path().join("sh");
        std::os::unix::fs::symlink("/bin/sh", &sh).unwrap();
        let list = [
            Prereq {
                command: "sh",
                purpose: "runs scripts",
            },
            Prereq {
                command: "no-such-zstd",
                purpose: "checks archives",
            },
            Prereq {
                command: "no-such-tf",
                purpose: "runs the plans",
            },
        ];
        let err = check_prereqs_in(&list, Some(dir.path().as_os_str())).unwrap_err();
        assert_eq!(err.missing.len(), 2);
        assert_eq!(
            err.to_string(),
            "missing required commands:\n  no-such-zstd: checks archives\n  no-such-tf: runs the plans"
        );
        let ok = check_prereqs_in(&list[..1], Some(dir.path().as_os_str())).unwrap();
        assert_eq!(ok, vec![sh]);
    }
}
