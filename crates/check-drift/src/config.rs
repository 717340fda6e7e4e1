//! The validated configuration of a run. [`Config::from_args`] is the only place that reads the clap
//! structs; everything after it takes a [`Config`], which tests can also build directly.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Args, HistoryArgs, InstallArgs};
use pve_common::exit::UsageError;

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
    /// Print what would run; run nothing (`--dry-run` or `--preview`).
    pub dry_run: bool,
    /// The runner mode: `--dry-run` prints every command on a `[DRY-RUN]` line.
    pub mode: pve_common::runner::Mode,
    /// The root is the homelab's: environments without terraform.tfvars are skipped.
    pub homelab_layout: bool,
    /// `--detailed-exitcode`: 1 error, 2 drift.
    pub detailed_exitcode: bool,
    /// JSON document instead of the text report.
    pub json: bool,
    /// Colour the text report (already resolved against stdout being a terminal and `NO_COLOR`).
    pub color: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Where `pve_drift.prom` goes (`None`: no metrics).
    pub textfile: Option<OutputDir>,
    /// Where the per-run reports go (`None`: no reports).
    pub reports: Option<OutputDir>,
    /// Report files dated longer ago than this are removed.
    pub retention: Duration,
    /// Alertmanager base URL to push alerts to.
    pub alertmanager_url: Option<String>,
    /// State kept between runs (first detection, last success, alerts pushed).
    pub state_file: Option<PathBuf>,
    /// Retries of the Alertmanager push.
    pub retry: pve_common::retry::RetryPolicy,
}

/// An output directory and whether it was asked for explicitly (either way it is created when missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputDir {
    /// The directory.
    pub dir: PathBuf,
    /// Given on the command line or in the environment.
    pub explicit: bool,
}

/// Default of `--textfile-dir`.
pub const DEFAULT_TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
/// Default of `--report-dir`.
pub const DEFAULT_REPORT_DIR: &str = "/var/log/pve-drift";

/// `Some(dir)` for a given directory, `None` for an empty value (disabled), the default otherwise.
pub fn output_dir(given: Option<PathBuf>, default: &str) -> Option<OutputDir> {
    match given {
        Some(dir) if dir.as_os_str().is_empty() => None,
        Some(dir) => Some(OutputDir {
            dir,
            explicit: true,
        }),
        None => Some(OutputDir {
            dir: PathBuf::from(default),
            explicit: false,
        }),
    }
}

/// The state file when none is given: systemd's `$STATE_DIRECTORY` (the unit's `StateDirectory=`), else
/// `$XDG_STATE_HOME/pve-drift`, else `~/.local/state/pve-drift`.
pub fn default_state_file() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("STATE_DIRECTORY") {
        // systemd passes a colon-separated list when several directories are configured.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        return Some(PathBuf::from(first).join("state.json"));
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return Some(dir.join("pve-drift/state.json"));
    }
    var("HOME").map(|home| home.join(".local/state/pve-drift/state.json"))
}

/// Retry policy of the Alertmanager push: 4 attempts, 2 s doubling; `PVE_DRIFT_RETRY_DELAY` changes the
/// first delay (tests use `10ms`).
pub fn retry_policy() -> Result<pve_common::retry::RetryPolicy, UsageError> {
    let initial_delay = match std::env::var("PVE_DRIFT_RETRY_DELAY") {
        Ok(text) => pve_common::cli::parse_duration(&text)
            .map_err(|e| UsageError(format!("PVE_DRIFT_RETRY_DELAY: {e}")))?,
        Err(_) => Duration::from_secs(2),
    };
    Ok(pve_common::retry::RetryPolicy {
        attempts: 4,
        initial_delay,
        max_delay: Duration::from_secs(30),
    })
}

/// Time between SIGINT and SIGKILL unless `PVE_DRIFT_KILL_GRACE` says otherwise.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// Checks an environment name: a folder name, nothing that could leave the root.
pub fn validate_env_name(name: &str) -> Result<(), UsageError> {
    pve_common::environments::validate_name(name).map_err(|e| UsageError(format!("--env: {e}")))
}

impl Config {
    /// Validates the command line. Environment names are checked here; whether they exist is checked
    /// against the root when the run starts.
    pub fn from_args(args: Args) -> Result<Config, UsageError> {
        let (root, homelab_layout) = match args.root {
            Some(root) => (root, false),
            None => match args.common.homelab() {
                Ok(homelab) => (homelab.environments_dir(), true),
                // Reported by the run as a missing root, with how to name one.
                Err(_) => (PathBuf::from(pve_common::homelab::ENVIRONMENTS_DIR), true),
            },
        };
        let selection = if args.all {
            Selection::All
        } else if args.env.is_empty() {
            if homelab_layout {
                return Err(UsageError(pve_common::tr!("check_drift.need_env_or_all")));
            }
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
            Ok(text) => pve_common::cli::parse_duration(&text)
                .map_err(|e| UsageError(format!("PVE_DRIFT_KILL_GRACE: {e}")))?,
            Err(_) => DEFAULT_KILL_GRACE,
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let quiet = args.common.quiet;
        Ok(Config {
            root,
            mode: args.common.mode(),
            homelab_layout,
            detailed_exitcode: args.detailed_exitcode,
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
            dry_run: args.common.dry_run || args.common.preview,
            json: args.common.json,
            color: args
                .common
                .color
                .resolve(std::io::stdout().is_terminal(), no_color),
            progress: !args.common.json && !quiet && std::io::stderr().is_terminal(),
            textfile: output_dir(args.textfile_dir, DEFAULT_TEXTFILE_DIR),
            reports: output_dir(args.report_dir, DEFAULT_REPORT_DIR),
            retention: args.retention,
            alertmanager_url: match args.alertmanager_url {
                Some(url) if url.trim().is_empty() => None,
                Some(url) => Some(check_url(&url)?),
                None => None,
            },
            state_file: args
                .state_file
                .filter(|p| !p.as_os_str().is_empty())
                .or_else(default_state_file),
            retry: retry_policy()?,
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
            mode: pve_common::runner::Mode::Live,
            homelab_layout: false,
            detailed_exitcode: false,
            json: false,
            color: false,
            progress: false,
            textfile: None,
            reports: None,
            retention: Duration::from_secs(30 * 86400),
            alertmanager_url: None,
            state_file: None,
            retry: pve_common::retry::RetryPolicy::default(),
        }
    }
}

/// Checks an Alertmanager URL: `http://` or `https://` and a host; a trailing `/` is dropped.
pub fn check_url(url: &str) -> Result<String, UsageError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(trimmed.to_owned()),
        _ => Err(UsageError(format!(
            "--alertmanager-url `{url}`: expected http://HOST:PORT or https://HOST[:PORT][/PATH]"
        ))),
    }
}

/// `check-drift history`, checked.
#[derive(Clone, Debug)]
pub struct HistoryConfig {
    /// The report folder.
    pub report_dir: PathBuf,
    /// Environments (all when empty).
    pub envs: Vec<String>,
    /// How far back.
    pub since: Duration,
    /// JSON instead of text.
    pub json: bool,
}

impl HistoryConfig {
    /// From the top-level arguments (`--report-dir`, `--json`) and the subcommand's.
    pub fn from_args(top: &Args, h: HistoryArgs) -> Result<HistoryConfig, UsageError> {
        for name in &h.env {
            validate_env_name(name)?;
        }
        let report_dir = match &top.report_dir {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(UsageError(
                    "history: --report-dir (PVE_DRIFT_REPORT_DIR) is empty".to_owned(),
                ));
            }
            Some(dir) => dir.clone(),
            None => PathBuf::from(DEFAULT_REPORT_DIR),
        };
        Ok(HistoryConfig {
            report_dir,
            envs: h.env,
            since: h.since,
            json: h.common.json || top.common.json,
        })
    }
}

/// `check-drift install-timer`, checked.
pub fn install_config(i: InstallArgs) -> anyhow::Result<crate::install::InstallConfig> {
    let binary = match i.binary {
        Some(b) => b,
        None => std::env::current_exe()
            .and_then(std::fs::canonicalize)
            .map_err(|e| anyhow::anyhow!("finding this binary's path ({e}); give --binary"))?,
    };
    if !binary.is_absolute() {
        return Err(UsageError(format!(
            "--binary {}: an absolute path is needed (systemd's ExecStart)",
            binary.display()
        ))
        .into());
    }
    Ok(crate::install::InstallConfig {
        unit_dir: i.unit_dir,
        defaults_file: i.defaults_file,
        tmpfiles_dir: i.tmpfiles_dir,
        binary,
        enable: !i.no_enable,
        dry_run: i.common.dry_run,
    })
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
        // The script's rule in the homelab's layout (issue 18); with --root, our own: all.
        if std::env::var_os("PVE_DRIFT_ROOT").is_none() {
            let err = config(&[]).unwrap_err().to_string();
            assert!(err.contains("--env ENV") && err.contains("--all"), "{err}");
        }
        assert_eq!(config(&["--all"]).unwrap().selection, Selection::All);
        assert_eq!(
            config(&["--env", "prod", "--all"]).unwrap().selection,
            Selection::All,
            "--all wins"
        );
        assert_eq!(
            config(&["--root", "/srv/envs"]).unwrap().selection,
            Selection::All
        );
    }
}
