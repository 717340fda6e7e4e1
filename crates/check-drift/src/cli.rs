//! Command line of `check-drift` (clap derive). Nothing here is used past [`crate::config::Config::from_args`],
//! which validates it into a plain configuration.

use std::path::PathBuf;

use clap::Parser;
use pve_common::cli::CommonArgs;

/// Detect, classify and report drift between Terraform/OpenTofu and the Proxmox homelab, per environment.
///
/// For each environment (a folder of `*.tf` files under --root) it runs `terraform init`, `terraform plan`
/// into a private plan file and `terraform show -json` of that plan, then reports what would change and
/// why: changed outside Terraform (`drift`), configuration not yet applied (`pending`), or both. It never
/// applies anything. Without --env or --all it checks every environment.
///
/// Accepted differences go in `.driftignore` files (`<root>/.driftignore`, then `<env>/.driftignore`; one
/// rule per line: `<address glob> [<attribute glob>] [expires=YYYY-MM-DD]  # reason`).
/// `check-drift --json | jq '.environments[] | select(.status != "in_sync")'` lists what needs attention
/// (schema: docs/json/check-drift.md).
#[derive(Parser, Debug)]
#[command(name = "check-drift", version, about, long_about, after_help = pve_common::exit::HELP_EXIT_STATUS_DRIFT)]
pub struct Args {
    /// Check only these environments (folder names under --root), comma-separated or repeated.
    #[arg(
        long = "env",
        value_name = "NAME",
        value_delimiter = ',',
        conflicts_with = "all"
    )]
    pub env: Vec<String>,

    /// Check every environment under --root (the default when --env is not given).
    #[arg(long = "all")]
    pub all: bool,

    /// Folder whose subfolders holding `*.tf` files are the environments.
    #[arg(
        long = "root",
        value_name = "DIR",
        env = "PVE_DRIFT_ROOT",
        default_value = "infrastructure/proxmox/environments"
    )]
    pub root: PathBuf,

    /// At most this many environments at once (default: number of CPUs, capped by the number of
    /// environments).
    #[arg(long = "jobs", short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Give up on an environment after this long (init + plan + show), e.g. `90s`, `5m`. Terraform is
    /// interrupted first so it releases the state lock, then killed.
    #[arg(long = "timeout", value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// How long Terraform waits for a held state lock (`-lock-timeout`).
    #[arg(long = "lock-timeout", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
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

    /// Run lock file (default: `/run/lock/pve-drift.lock`, or `$XDG_RUNTIME_DIR/pve-drift.lock` when
    /// /run/lock is not writable).
    #[arg(long = "lock-file", value_name = "FILE", env = "PVE_DRIFT_LOCK_FILE")]
    pub lock_file: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 90s, 5m, 1h)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
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
        assert!(Args::try_parse_from(["check-drift", "--env", "a", "--all"]).is_err());
        assert!(Args::try_parse_from(["check-drift", "--jobs", "0"]).is_err());
        assert!(Args::try_parse_from(["check-drift", "--timeout", "0s"]).is_err());
        assert!(Args::try_parse_from(["check-drift", "--timeout", "soon"]).is_err());
    }
}
