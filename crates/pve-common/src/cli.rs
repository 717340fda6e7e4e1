//! Flags every tool shares, defined once and flattened into each tool's clap struct (STYLE.md §9), and the
//! parse step that remaps clap's usage-error code 2 (drift, for check-drift) to 64.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::exit::Code;
use crate::log::{ColorChoice, Verbosity};

/// `--dry-run`, `--json`, `--color`, `-v`, `-q`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// Show every command and write this run would make, on stderr, and change nothing.
    /// Read-only queries still run.
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON document on stdout (schema in docs/json/) instead of the text report.
    #[arg(long)]
    pub json: bool,

    /// When to colour messages on stderr.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Say more on stderr (commands run, timings).
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,

    /// Say only warnings and errors on stderr.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl CommonArgs {
    /// The verbosity these flags ask for.
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

/// `--yes`: for tools that ask before changing anything.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConfirmArgs {
    /// Answer yes to the confirmation prompt. Without a terminal, a tool that would ask refuses unless
    /// this is given.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// How to reach the Proxmox node over SSH, for the tools that act on the node (restore-vm,
/// rebuild-monitoring): `--host`, `--node`, `--user`, `--port`, `--ssh-config`, `--identity`,
/// `--known-hosts`, `--accept-new-host-key`. [`crate::node::resolve`] fills what the flags leave open from
/// the environment and terraform.tfvars.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NodeArgs {
    /// The Proxmox node name (else PVE_NODE, else tfvars `node_name`, else the only node of the host).
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,

    /// The Proxmox host to SSH to (else PVE_HOST, else the host of tfvars `proxmox_endpoint`).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// The SSH user (else PVE_SSH_USER, else tfvars `ssh_user`, else ssh_config or `root`).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// The SSH port (else ssh_config, else 22).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// The ssh_config file to read (default ~/.ssh/config).
    #[arg(long, value_name = "FILE", env = "PVE_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,

    /// An SSH identity (private key) file to try after the agent.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// The known_hosts file the node's host key is checked against (else ssh_config's
    /// UserKnownHostsFile, else ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Record the node's host key when known_hosts has none for it (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_key: bool,
}

/// Longest duration any flag or environment variable accepts: 100 years. Deadlines are computed as
/// `now + duration` and ages as `now - duration`; a larger value would overflow those sums (a panic in
/// debug builds, a wrap in release builds) long before it could mean anything.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The one duration parser of every tool's flags and environment variables: humantime syntax (`90s`,
/// `5m`, `26h`, `30d`), at most [`MAX_DURATION`]. Use as clap's `value_parser`; its error becomes a usage
/// error (64).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (examples: 90s, 5m, 1h, 30d)"))?;
    check_duration(d)
}

/// [`parse_duration`], refusing zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// A count of whole seconds (`--verify-timeout 300`), at most [`MAX_DURATION`].
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let secs: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("expected a whole number of seconds: {e}"))?;
    check_duration(Duration::from_secs(secs))?;
    Ok(secs)
}

fn check_duration(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!(
            "{} is longer than the longest accepted ({}, {} s)",
            humantime::format_duration(Duration::from_secs(d.as_secs())),
            humantime::format_duration(MAX_DURATION),
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

/// Parses the process arguments. `--help`/`--version` print to stdout and give `Err(Success)`; a usage error
/// prints clap's message to stderr and gives `Err(Usage)` (64), never clap's 2.
pub fn parse<P: Parser>() -> Result<P, Code> {
    parse_from(std::env::args_os())
}

/// [`parse`] over explicit arguments (for tests).
pub fn parse_from<P, I, T>(args: I) -> Result<P, Code>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    P::try_parse_from(args).map_err(|e| {
        // Printing help into a closed pipe (`tool --help | head -1`) is fine.
        let _ = e.print();
        if e.use_stderr() {
            Code::Usage
        } else {
            Code::Success
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    #[command(name = "demo", version)]
    struct Demo {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        count: Option<u32>,
    }

    #[test]
    fn usage_error_is_64_not_2() {
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--count", "abc"]).unwrap_err(),
            Code::Usage
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--nope"]).unwrap_err(),
            Code::Usage
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "-v", "-q"]).unwrap_err(),
            Code::Usage
        );
    }

    #[test]
    fn help_and_version_are_success() {
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--help"]).unwrap_err(),
            Code::Success
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--version"]).unwrap_err(),
            Code::Success
        );
    }

    #[test]
    fn verbosity() {
        let d = parse_from::<Demo, _, _>(["demo", "-q"]).unwrap();
        assert_eq!(d.common.verbosity(), Verbosity::Quiet);
        let d = parse_from::<Demo, _, _>(["demo", "--verbose", "--dry-run"]).unwrap();
        assert_eq!(d.common.verbosity(), Verbosity::Verbose);
        assert!(d.common.dry_run);
    }

    #[test]
    fn durations_are_capped() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0s").is_err());
        for huge in ["500000000000y", "101y", "18446744073709551615s"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("longest accepted"), "{huge}: {e}");
        }
        assert_eq!(parse_seconds("300"), Ok(300));
        assert!(parse_seconds("18446744073709551615").is_err());
        assert!(parse_seconds("-1").is_err());
        assert_eq!(
            parse_seconds(&MAX_DURATION.as_secs().to_string()),
            Ok(MAX_DURATION.as_secs())
        );
    }

    #[test]
    fn debug_assert() {
        use clap::CommandFactory;
        Demo::command().debug_assert();
    }
}
