//! The checked configuration: every usage problem (bad guest id, malformed volid or time, no host) is found
//! here, before any connection, and becomes exit code 64 in `main`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pve_common::node::{self, NodeAccess};
use pve_common::pve::{self, Volid};
use pve_common::tfvars::{TfVars, parse_tfvars_file};

use crate::cli::Args;

pub use pve_common::node::{
    ENV_HOST, ENV_NODE, ENV_USER, TFVARS_ENDPOINT_KEYS, TFVARS_NODE_KEYS, TFVARS_USER_KEYS,
    endpoint_host,
};

/// Environment variable for the tfvars file.
pub const ENV_TFVARS: &str = "PVE_TFVARS";

/// `--storage`'s default.
pub const DEFAULT_STORAGE: &str = "local-lvm";
/// `--verify-timeout`'s default.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// `--verify-port`'s default.
pub const DEFAULT_VERIFY_PORT: u16 = 22;
/// `--shutdown-timeout`'s default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(180);

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The newest.
    Latest,
    /// This volid (must be in the listing).
    Volid(Volid),
    /// The newest at or before this node-local wall-clock time.
    At(jiff::civil::DateTime),
    /// The newest, if it is younger than this (library callers; no flag).
    NewestWithin(Duration),
}

/// A usage problem (exit 64).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

/// The validated run configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The guest whose backups are used.
    pub vmid: u32,
    /// The id restored to (= vmid unless --target-id).
    pub target_id: u32,
    /// --list.
    pub list: bool,
    /// Which backup.
    pub selection: Selection,
    /// Storage for the disks.
    pub storage: String,
    /// Storage for the save point.
    pub save_storage: Option<String>,
    /// The node and how to reach it.
    pub access: NodeAccess,
    /// --start.
    pub start: bool,
    /// --unique.
    pub unique: bool,
    /// --no-verify.
    pub verify: bool,
    /// --force.
    pub force: bool,
    /// --yes.
    pub yes: bool,
    /// --dry-run.
    pub dry_run: bool,
    /// --json.
    pub json: bool,
    /// Verification timeout.
    pub verify_timeout: Duration,
    /// Port checked on the guest.
    pub verify_port: u16,
    /// Clean shutdown timeout.
    pub shutdown_timeout: Duration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `--at`: `YYYY-MM-DD` (end of that day) or `YYYY-MM-DDTHH:MM[:SS]`, between 1970 and 9998: the
/// time is later read in the node's offset, which near the ends of the calendar overflows.
pub fn parse_at(text: &str) -> anyhow::Result<jiff::civil::DateTime> {
    let t = text.trim();
    let parsed = jiff::civil::Date::strptime("%Y-%m-%d", t)
        .map(|d| d.at(23, 59, 59, 0))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|fmt| jiff::civil::DateTime::strptime(fmt, t).ok())
        });
    let Some(dt) = parsed else {
        bail!("invalid --at '{text}': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    };
    if !(1970..=9998).contains(&dt.year()) {
        bail!("invalid --at '{text}': the year must be between 1970 and 9998")
    }
    Ok(dt)
}

fn load_tfvars(explicit: Option<&Path>) -> anyhow::Result<Option<TfVars>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match env(ENV_TFVARS) {
            Some(p) => PathBuf::from(p),
            None => {
                let p = PathBuf::from("terraform.tfvars");
                if !p.is_file() {
                    return Ok(None);
                }
                p
            }
        },
    };
    parse_tfvars_file(&path)
        .map(Some)
        .with_context(|| format!("reading {}", path.display()))
}

impl Config {
    /// A restore of the newest backup of `vmid` to itself, with the command line's defaults: no `--force`,
    /// `--start`, `--yes` or `--dry-run`; verified. For library callers, who change what they need.
    pub fn new(vmid: u32, access: NodeAccess) -> Config {
        Config {
            vmid,
            target_id: vmid,
            list: false,
            selection: Selection::Latest,
            storage: DEFAULT_STORAGE.to_owned(),
            save_storage: None,
            access,
            start: false,
            unique: false,
            verify: true,
            force: false,
            yes: false,
            dry_run: false,
            json: false,
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            verify_port: DEFAULT_VERIFY_PORT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Checks the arguments; reads the environment and tfvars for what the flags leave open.
    pub fn from_args(args: &Args) -> Result<Config, UsageError> {
        Self::build(args).map_err(UsageError)
    }

    fn build(args: &Args) -> anyhow::Result<Config> {
        let vmid = pve::parse_vmid(&args.vmid)?;
        let target_id = match &args.target_id {
            Some(t) => pve::parse_vmid(t).context("--target-id")?,
            None => vmid,
        };
        let selection = match (&args.backup, &args.at) {
            (Some(v), _) => Selection::Volid(Volid::parse(v)?),
            (None, Some(at)) => Selection::At(parse_at(at)?),
            _ => Selection::Latest,
        };
        if args.list && (args.backup.is_some() || args.at.is_some() || args.target_id.is_some()) {
            bail!("--list takes no --backup, --at or --target-id");
        }
        pve::validate_storage_id(&args.storage).context("--storage")?;
        if let Some(s) = &args.save_storage {
            pve::validate_storage_id(s).context("--save-storage")?;
        }
        let tfvars = if node::needs_tfvars(&args.node) || args.tfvars.is_some() {
            load_tfvars(args.tfvars.as_deref())?
        } else {
            None
        };
        let access = node::resolve(&args.node, tfvars.as_ref())?;
        Ok(Config {
            vmid,
            target_id,
            list: args.list,
            selection,
            storage: args.storage.clone(),
            save_storage: args.save_storage.clone(),
            access,
            start: args.start,
            unique: args.unique,
            verify: !args.no_verify,
            force: args.force,
            yes: args.confirm.yes,
            dry_run: args.common.dry_run,
            json: args.common.json,
            verify_timeout: Duration::from_secs(args.verify_timeout),
            verify_port: args.verify_port,
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_times() {
        assert_eq!(
            parse_at("2026-11-20").unwrap(),
            jiff::civil::date(2026, 11, 20).at(23, 59, 59, 0)
        );
        assert_eq!(
            parse_at("2026-11-20T02:30").unwrap(),
            jiff::civil::date(2026, 11, 20).at(2, 30, 0, 0)
        );
        assert!(parse_at("yesterday").is_err());
        assert!(parse_at("2026-13-01").is_err());
        // Issue 23 (19): the end of the calendar overflowed later, as an internal error.
        assert!(parse_at("9999-12-31").is_err());
        assert!(parse_at("-0001-01-01").is_err());
    }
}
