//! The checked configuration: every usage problem (bad guest id, malformed volid or time, no host) is found
//! here, before any connection, and becomes exit code 64 in `main`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pve_common::pve::{self, Volid};
use pve_common::tfvars::{TfVars, parse_tfvars_file};

use crate::cli::Args;

/// Environment variable for the host.
pub const ENV_HOST: &str = "PVE_HOST";
/// Environment variable for the node name.
pub const ENV_NODE: &str = "PVE_NODE";
/// Environment variable for the SSH user.
pub const ENV_USER: &str = "PVE_SSH_USER";
/// Environment variable for the tfvars file.
pub const ENV_TFVARS: &str = "PVE_TFVARS";

/// tfvars keys whose value is an endpoint URL (or a bare host); the first present wins.
pub const TFVARS_ENDPOINT_KEYS: [&str; 4] = [
    "proxmox_endpoint",
    "pm_api_url",
    "proxmox_api_url",
    "endpoint",
];
/// tfvars keys holding the node name.
pub const TFVARS_NODE_KEYS: [&str; 2] = ["node_name", "proxmox_node"];
/// tfvars keys holding the SSH user.
pub const TFVARS_USER_KEYS: [&str; 2] = ["ssh_user", "proxmox_ssh_user"];

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The newest.
    Latest,
    /// This volid (must be in the listing).
    Volid(Volid),
    /// The newest at or before this node-local wall-clock time.
    At(jiff::civil::DateTime),
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
    /// Node name, if known before connecting.
    pub node: Option<String>,
    /// SSH host.
    pub host: String,
    /// SSH user.
    pub user: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// ssh_config file.
    pub ssh_config: Option<PathBuf>,
    /// Identity file.
    pub identity: Option<PathBuf>,
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

/// Parses `--at`: `YYYY-MM-DD` (end of that day) or `YYYY-MM-DDTHH:MM[:SS]`.
pub fn parse_at(text: &str) -> anyhow::Result<jiff::civil::DateTime> {
    let t = text.trim();
    if let Ok(d) = jiff::civil::Date::strptime("%Y-%m-%d", t) {
        return Ok(d.at(23, 59, 59, 0));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = jiff::civil::DateTime::strptime(fmt, t) {
            return Ok(dt);
        }
    }
    bail!("invalid --at '{text}': expected YYYY-MM-DD or YYYY-MM-DDTHH:MM")
}

/// The host part of an endpoint URL (`https://10.0.0.2:8006/api2/json` -> `10.0.0.2`) or a bare host.
pub fn endpoint_host(value: &str) -> Option<String> {
    let value = value.trim();
    if value.contains("://") {
        let url = url::Url::parse(value).ok()?;
        return url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_owned());
    }
    let host = value.split(['/', ':']).next()?.trim();
    (!host.is_empty()).then(|| host.to_owned())
}

fn tfvars_first(vars: &TfVars, keys: &[&str]) -> anyhow::Result<Option<String>> {
    for key in keys {
        if let Some(v) = vars.get_str(key)? {
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
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
        let need_tfvars = args.host.is_none() && env(ENV_HOST).is_none()
            || args.node.is_none() && env(ENV_NODE).is_none()
            || args.user.is_none() && env(ENV_USER).is_none();
        let tfvars = if need_tfvars || args.tfvars.is_some() {
            load_tfvars(args.tfvars.as_deref())?
        } else {
            None
        };
        let from_tf = |keys: &[&str]| -> anyhow::Result<Option<String>> {
            match &tfvars {
                Some(v) => tfvars_first(v, keys),
                None => Ok(None),
            }
        };
        let host = match args.host.clone().or_else(|| env(ENV_HOST)) {
            Some(h) => h,
            None => match from_tf(&TFVARS_ENDPOINT_KEYS)? {
                Some(url) => endpoint_host(&url)
                    .with_context(|| format!("no host in tfvars endpoint '{url}'"))?,
                None => bail!(
                    "no Proxmox host: pass --host, set {ENV_HOST}, or give a terraform.tfvars with proxmox_endpoint (--tfvars)"
                ),
            },
        };
        if host.starts_with('-') || host.chars().any(char::is_whitespace) {
            bail!("invalid host '{host}'");
        }
        let node = match args.node.clone().or_else(|| env(ENV_NODE)) {
            Some(n) => Some(n),
            None => from_tf(&TFVARS_NODE_KEYS)?,
        };
        if let Some(n) = &node {
            pve::validate_node_name(n)?;
        }
        let user = match args.user.clone().or_else(|| env(ENV_USER)) {
            Some(u) => Some(u),
            None => from_tf(&TFVARS_USER_KEYS)?,
        };
        Ok(Config {
            vmid,
            target_id,
            list: args.list,
            selection,
            storage: args.storage.clone(),
            save_storage: args.save_storage.clone(),
            node,
            host,
            user,
            port: args.port,
            ssh_config: args.ssh_config.clone(),
            identity: args.identity.clone(),
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
    fn endpoint_hosts() {
        assert_eq!(
            endpoint_host("https://10.0.0.2:8006/api2/json").as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(
            endpoint_host("https://pve.lan:8006/").as_deref(),
            Some("pve.lan")
        );
        assert_eq!(endpoint_host("pve.lan:8006").as_deref(), Some("pve.lan"));
        assert_eq!(endpoint_host("").as_deref(), None);
    }

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
    }
}
