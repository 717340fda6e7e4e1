//! Command line of `check-drift` (clap derive). Nothing here is used past [`crate::config::Config::from_args`],
//! which validates it into a plain configuration.

use std::path::PathBuf;

use clap::Parser;
use pve_common::cli::{CommonArgs, ForceArgs, parse_positive_duration};

/// The examples at the end of `--help` (and of the man page).
const EXAMPLES: &str = "\
\x20 Every environment of the homelab (as the daily unit does); exit 0 in sync, 1 drift, 2 error:
    check-drift --all --force
  Only prod, printing the terraform commands without running anything:
    check-drift --env prod --dry-run
  What needs attention, as JSON:
    check-drift --all --json | jq '.environments[] | select(.status != \"in_sync\")'
  When drift in lab started and ended, over the last week:
    check-drift history --env lab --since 7d";

/// Detect, classify and report drift between Terraform/OpenTofu and the Proxmox homelab, per environment.
///
/// For each environment (a folder of `*.tf` files under --root) it runs `terraform init` (when needed),
/// `terraform plan -json` into a private plan file and, when the plan names changes, `terraform show
/// -json` of that plan, then reports what would change and
/// why: changed outside Terraform (`drift`), configuration not yet applied (`pending`), or both. It never
/// applies anything.
///
/// The environments are the folders of `<homelab>/infrastructure/proxmox/environments` (the homelab root:
/// --homelab, else PVE_HOMELAB, else the nearest folder above the current directory holding that path);
/// there --env or --all is required, as for check-drift.sh, and an environment without terraform.tfvars
/// (not deployed) is skipped with a warning. With --root (or PVE_DRIFT_ROOT) every folder under it holding
/// `*.tf` files is an environment, and without --env or --all all of them are checked.
///
/// Accepted differences go in `.driftignore` files (`<root>/.driftignore`, then `<env>/.driftignore`; one
/// rule per line: `<address glob> [<attribute glob>] [expires=YYYY-MM-DD]  # reason`).
/// `check-drift --json | jq '.environments[] | select(.status != "in_sync")'` lists what needs attention
/// (schema: docs/json/check-drift.md).
#[derive(Parser, Debug)]
#[command(name = "check-drift", version, about, long_about, after_help = pve_common::exit::help_footer(EXAMPLES, pve_common::exit::HELP_EXIT_STATUS_DRIFT))]
pub struct Args {
    /// Check only these environments (prod, lab, monitoring: folder names under the root),
    /// comma-separated or repeated.
    #[arg(long = "env", value_name = "ENV", value_delimiter = ',')]
    pub env: Vec<String>,

    /// Check every environment (wins over --env).
    #[arg(long = "all")]
    pub all: bool,

    /// Folder whose subfolders holding `*.tf` files are the environments [default:
    /// <homelab>/infrastructure/proxmox/environments].
    #[arg(long = "root", value_name = "DIR", env = "PVE_DRIFT_ROOT")]
    pub root: Option<PathBuf>,

    /// Write the six shims (POSIX sh files at the replaced scripts' paths under DIR:
    /// scripts/drift/check-drift.sh, scripts/restore/*.sh) that run these tools with DIR as the homelab
    /// root, in French, and exit. DIR is the homelab root.
    #[arg(long = "install-shims", value_name = "DIR")]
    pub install_shims: Option<PathBuf>,

    /// Exit with Terraform's `-detailed-exitcode` meaning instead of check-drift.sh's: 1 error, 2 drift.
    #[arg(long = "detailed-exitcode")]
    pub detailed_exitcode: bool,

    /// At most this many environments at once (default: number of CPUs, capped by the number of
    /// environments).
    #[arg(long = "jobs", short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Give up on an environment after this long (init + plan + show), e.g. `90s`, `5m`. Terraform is
    /// interrupted first so it releases the state lock, then killed.
    #[arg(long = "timeout", value_name = "DURATION", env = "PVE_DRIFT_TIMEOUT", default_value = "5m", value_parser = parse_positive_duration)]
    pub timeout: std::time::Duration,

    /// How long Terraform waits for a held state lock (`-lock-timeout`).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub lock_timeout: std::time::Duration,

    /// Ignore rules to use instead of `<root>/.driftignore` and `<env>/.driftignore`.
    #[arg(long = "ignore-file", value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,

    /// Terraform or OpenTofu binary (default: `tofu`, else `terraform`, from PATH).
    #[arg(long = "terraform-bin", value_name = "PATH", env = "TF_BIN")]
    pub terraform_bin: Option<PathBuf>,

    /// Wait for another check-drift run to finish instead of exiting 75 at once.
    #[arg(long = "wait-lock")]
    pub wait_lock: bool,

    /// Run lock file (default: `pve-drift.lock` in `$RUNTIME_DIRECTORY`, else `/run/pve-tools` for root,
    /// else `$XDG_RUNTIME_DIR`; never in a folder others can write). A symlink or a file owned by
    /// another user is refused.
    #[arg(long = "lock-file", value_name = "FILE", env = "PVE_DRIFT_LOCK_FILE")]
    pub lock_file: Option<PathBuf>,

    /// Write Prometheus metrics to `DIR/pve_drift.prom` (atomically, mode 0644) for node_exporter's
    /// textfile collector, creating DIR when missing [default: /var/lib/prometheus/node-exporter, Debian's
    /// textfile directory]. A directory that cannot be written is an error. Empty: no metrics.
    /// Environments not checked in this run keep their series from the previous file.
    #[arg(
        long = "textfile-dir",
        value_name = "DIR",
        env = "PVE_DRIFT_TEXTFILE_DIR",
        value_parser = path_or_empty
    )]
    pub textfile_dir: Option<PathBuf>,

    /// Keep per-run reports `DIR/drift-YYYY-MM-DD-<env>.log` and `.json` (mode 0640), read back by
    /// `check-drift history` [default: /var/log/pve-drift]. Empty: no reports.
    #[arg(
        long = "report-dir",
        value_name = "DIR",
        env = "PVE_DRIFT_REPORT_DIR",
        value_parser = path_or_empty,
        global = true
    )]
    pub report_dir: Option<PathBuf>,

    /// Remove report files (only `drift-YYYY-MM-DD-<env>.log|json`) dated more than this long ago at the
    /// end of each run, e.g. `30d`, `8w`.
    #[arg(long = "retention", value_name = "DURATION", env = "PVE_DRIFT_RETENTION", default_value = "30d", value_parser = parse_positive_duration)]
    pub retention: std::time::Duration,

    /// Push DriftDetected / DriftCheckFailed alerts (and their resolution) to this Alertmanager
    /// (`POST /api/v2/alerts`) when an environment's result changes. An unreachable Alertmanager is a
    /// warning (retried with backoff), never a failed check.
    #[arg(
        long = "alertmanager-url",
        value_name = "URL",
        env = "PVE_DRIFT_ALERTMANAGER_URL"
    )]
    pub alertmanager_url: Option<String>,

    /// State kept between runs: when drift was first seen, the last success, the alerts pushed
    /// [default: `$STATE_DIRECTORY/state.json` under systemd, else
    /// `${XDG_STATE_HOME:-~/.local/state}/pve-drift/state.json`].
    #[arg(long = "state-file", value_name = "FILE", env = "PVE_DRIFT_STATE_FILE", value_parser = path_or_empty)]
    pub state_file: Option<PathBuf>,

    #[command(flatten)]
    pub force: ForceArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands; without one, check-drift checks environments.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Show the drift history kept in --report-dir: per environment, when drift started and was resolved,
    /// and what changed between two runs (new, resolved and still drifted resources).
    History(HistoryArgs),
    /// Install the systemd service and daily timer (pve-drift-check), /etc/default/pve-drift-check (kept
    /// when it exists) and the tmpfiles.d entry, then enable the timer. Idempotent; see --dry-run.
    InstallTimer(InstallArgs),
}

/// `check-drift history`.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Only these environments, comma-separated or repeated.
    #[arg(long = "env", value_name = "NAME", value_delimiter = ',')]
    pub env: Vec<String>,

    /// Only runs from this long ago until now, e.g. `7d`.
    #[arg(long = "since", value_name = "DURATION", default_value = "30d", value_parser = parse_positive_duration)]
    pub since: std::time::Duration,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `check-drift install-timer`.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Where the unit files go.
    #[arg(
        long = "unit-dir",
        value_name = "DIR",
        default_value = "/etc/systemd/system"
    )]
    pub unit_dir: PathBuf,

    /// The settings file the service reads (written only when missing: local edits are kept).
    #[arg(
        long = "defaults-file",
        value_name = "FILE",
        default_value = "/etc/default/pve-drift-check"
    )]
    pub defaults_file: PathBuf,

    /// Where the tmpfiles.d entry for the textfile and report directories goes.
    #[arg(
        long = "tmpfiles-dir",
        value_name = "DIR",
        default_value = "/etc/tmpfiles.d"
    )]
    pub tmpfiles_dir: PathBuf,

    /// check-drift binary the service runs (default: this binary).
    #[arg(long = "binary", value_name = "PATH")]
    pub binary: Option<PathBuf>,

    /// Write the files only: no `systemd-tmpfiles --create`, `systemctl daemon-reload` or
    /// `systemctl enable --now pve-drift-check.timer`.
    #[arg(long = "no-enable")]
    pub no_enable: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// A path, or an empty value (which turns the output off); clap's own path parser rejects empty values.
fn path_or_empty(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn env_list_and_durations() {
        let a = Args::try_parse_from([
            "check-drift",
            "--env",
            "prod,lab",
            "--env",
            "dev",
            "--timeout",
            "90s",
        ])
        .unwrap();
        assert_eq!(a.env, ["prod", "lab", "dev"]);
        assert_eq!(a.timeout, std::time::Duration::from_secs(90));
        assert_eq!(a.lock_timeout, std::time::Duration::from_secs(60));
        let both = Args::try_parse_from(["check-drift", "--env", "a", "--all", "--force"]).unwrap();
        assert!(
            both.all && both.force.force,
            "--env X --all is accepted: --all wins"
        );
        assert!(Args::try_parse_from(["check-drift", "--jobs", "0"]).is_err());
        assert!(Args::try_parse_from(["check-drift", "--timeout", "0s"]).is_err());
        assert!(Args::try_parse_from(["check-drift", "--timeout", "soon"]).is_err());
    }
}
