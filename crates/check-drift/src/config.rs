//! The validated configuration of a run. [`Config::from_args`] is the only place that reads the clap
//! structs; everything after it takes a [`Config`], which tests can also build directly.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::UsageError;
use crate::cli::Args;

/// Which environments to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every folder under the root holding `*.tf` files.
    All,
    /// These folder names, in this order.
    Names(Vec<String>),
}

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// Folder holding one folder per environment.
    pub root: PathBuf,
    /// Which environments.
    pub selection: Selection,
    /// Parallel environments at most (`None`: number of CPUs).
    pub jobs: Option<usize>,
    /// Time allowed per environment.
    pub timeout: Duration,
    /// Time between SIGINT and SIGKILL when stopping Terraform.
    pub kill_grace: Duration,
    /// Terraform's `-lock-timeout`.
    pub lock_timeout: Duration,
    /// Ignore file replacing the default ones.
    pub ignore_file: Option<PathBuf>,
    /// Terraform binary asked for (`None`: tofu, else terraform).
    pub terraform_bin: Option<PathBuf>,
    /// Extra environment for every Terraform command (backend credentials, a test bed's endpoints).
    pub terraform_env: Vec<(OsString, OsString)>,
    /// Wait for the run lock instead of failing with 75.
    pub wait_lock: bool,
    /// Run lock file (`None`: `/run/lock/pve-drift.lock`, else `$XDG_RUNTIME_DIR/pve-drift.lock`).
    pub lock_file: Option<PathBuf>,
    /// Print what would run; run nothing.
    pub dry_run: bool,
    /// JSON document instead of the text report.
    pub json: bool,
    /// Colour the text report (already resolved against stdout being a terminal and `NO_COLOR`).
    pub color: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Time between SIGINT and SIGKILL unless `PVE_DRIFT_KILL_GRACE` says otherwise.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// Checks an environment name: a folder name, nothing that could leave the root.
pub fn validate_env_name(name: &str) -> Result<(), UsageError> {
    if name.is_empty() {
        return Err(UsageError("--env: empty environment name".to_owned()));
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(UsageError(format!(
            "--env: `{name}` is not an environment name (a folder name under --root, without `/` or `..`)"
        )));
    }
    Ok(())
}

impl Config {
    /// Validates the command line. Environment names are checked here; whether they exist is checked
    /// against the root when the run starts.
    pub fn from_args(args: Args) -> Result<Config, UsageError> {
        let selection = if args.env.is_empty() {
            Selection::All
        } else {
            let mut names: Vec<String> = Vec::new();
            for name in args.env {
                validate_env_name(&name)?;
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            Selection::Names(names)
        };
        let kill_grace = match std::env::var("PVE_DRIFT_KILL_GRACE") {
            Ok(text) => humantime::parse_duration(&text)
                .map_err(|e| UsageError(format!("PVE_DRIFT_KILL_GRACE: {e}")))?,
            Err(_) => DEFAULT_KILL_GRACE,
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let quiet = args.common.quiet;
        Ok(Config {
            root: args.root,
            selection,
            jobs: args.jobs.map(usize::from),
            timeout: args.timeout,
            kill_grace,
            lock_timeout: args.lock_timeout,
            ignore_file: args.ignore_file,
            terraform_bin: args.terraform_bin,
            terraform_env: Vec::new(),
            wait_lock: args.wait_lock,
            lock_file: args.lock_file,
            dry_run: args.common.dry_run,
            json: args.common.json,
            color: args
                .common
                .color
                .resolve(std::io::stdout().is_terminal(), no_color),
            progress: !args.common.json && !quiet && std::io::stderr().is_terminal(),
        })
    }

    /// A configuration for tests and for the test bed: every environment under `root`, defaults elsewhere.
    pub fn for_root(root: impl Into<PathBuf>) -> Config {
        Config {
            root: root.into(),
            selection: Selection::All,
            jobs: None,
            timeout: Duration::from_secs(300),
            kill_grace: DEFAULT_KILL_GRACE,
            lock_timeout: Duration::from_secs(60),
            ignore_file: None,
            terraform_bin: None,
            terraform_env: Vec::new(),
            wait_lock: false,
            lock_file: None,
            dry_run: false,
            json: false,
            color: false,
            progress: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, UsageError> {
        let mut all = vec!["check-drift"];
        all.extend_from_slice(args);
        Config::from_args(Args::try_parse_from(all).unwrap())
    }

    #[test]
    fn names_are_folder_names_only() {
        for bad in ["..", ".", "a/b", "../etc", "/abs"] {
            assert!(config(&["--env", bad]).is_err(), "{bad}");
        }
        assert!(config(&["--env", "a,,b"]).is_err(), "empty name");
        let c = config(&["--env", "prod,lab,prod"]).unwrap();
        assert_eq!(
            c.selection,
            Selection::Names(vec!["prod".into(), "lab".into()])
        );
        assert_eq!(config(&[]).unwrap().selection, Selection::All);
    }
}
