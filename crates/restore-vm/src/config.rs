//! The checked configuration: every usage problem (bad guest id, malformed volid or time, no host) is found
//! here, before any connection, and becomes exit code 64.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pve_common::exit::UsageError;
use pve_common::fleet::Fleet;
use pve_common::homelab::{Homelab, KNOWN_ENVIRONMENTS};
use pve_common::pve::{self, Volid};
use pve_common::runner::Mode;
use pve_common::tfvars::{TfVars, parse_tfvars_file};
use pve_restore::{Options, Selection};
use pve_ssh::node::{self, NodeAccess, NodeArgs};

use crate::cli::Args;

pub use pve_common::pve::endpoint_host;
pub use pve_ssh::node::{
    ENV_HOST, ENV_NODE, ENV_USER, TFVARS_ENDPOINT_KEYS, TFVARS_NODE_KEYS, TFVARS_USER_KEYS,
};

/// Environment variable for the tfvars file.
pub const ENV_TFVARS: &str = "PVE_TFVARS";

/// tfvars keys of the homelab's root file naming the default node, before [`TFVARS_NODE_KEYS`].
pub const TFVARS_DEFAULT_NODE_KEYS: [&str; 2] = ["default_node", "pve_node"];

pub use pve_restore::options::{
    DEFAULT_BACKUP_STORAGE, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_STORAGE, DEFAULT_VERIFY_PORT,
    DEFAULT_VERIFY_TIMEOUT,
};

/// No node was given and the homelab names its environments' nodes: the node is found at run time
/// (`crate::locate`).
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The deployed environments (only `--env`'s, when given).
    pub fleet: Fleet,
    /// `--env`, when given.
    pub env: Option<String>,
    /// The flags' SSH settings (user, port, ssh_config, identity, known hosts), for every node.
    pub node_args: NodeArgs,
    /// The homelab's root tfvars (its `ssh_user`).
    pub tfvars: Option<TfVars>,
    /// Where the run goes when no node knows VMID: the default node, or why there is none.
    pub fallback: Result<NodeAccess, String>,
}

impl Lookup {
    /// How to reach `node`: the SSH host of the environment whose node it is, else the node's name.
    pub fn access(&self, node: &str) -> anyhow::Result<NodeAccess> {
        let host = self
            .fleet
            .on_node(node)
            .find_map(|e| e.ssh_host.clone())
            .unwrap_or_else(|| node.to_owned());
        let args = NodeArgs {
            host: Some(host),
            node: Some(node.to_owned()),
            ..self.node_args.clone()
        };
        let mut access = node::resolve(&args, self.tfvars.as_ref())?;
        if access.user.is_none() {
            // The homelab's scripts log in as root@<host>.
            access.user = Some("root".to_owned());
        }
        access.apply_host_key_env();
        Ok(access)
    }
}

/// The validated run configuration: the restore the library runs, and how to show it.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to list or restore (with [`Config::lookup`], its `access` is replaced once the node is found).
    pub restore: Options,
    /// The node is to be found (no node given, a homelab with nodes).
    pub lookup: Option<Lookup>,
    /// --list.
    pub list: bool,
    /// --json.
    pub json: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `--date`: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> anyhow::Result<jiff::civil::Date> {
    let t = text.trim();
    let shaped = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    match jiff::civil::Date::strptime("%Y-%m-%d", t) {
        // Years 1970 to 9998, as for `--at`: the end of the calendar overflows in the node's offset.
        Ok(d) if shaped && (1970..=9998).contains(&d.year()) => Ok(d),
        _ => bail!("{}", crate::words::date_invalid(text)),
    }
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

fn load_tfvars(
    explicit: Option<&Path>,
    homelab: Option<&Homelab>,
) -> anyhow::Result<Option<TfVars>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match env(ENV_TFVARS) {
            Some(p) => PathBuf::from(p),
            None => {
                let p = homelab
                    .map(Homelab::root_tfvars)
                    .filter(|p| p.is_file())
                    .unwrap_or_else(|| PathBuf::from("terraform.tfvars"));
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
        Self::build(args).map_err(|e| UsageError(format!("{e:#}")))
    }

    fn build(args: &Args) -> anyhow::Result<Config> {
        let (vmid, target_id, selection) = checked_selection(args)?;
        // No homelab root is fine: the flags, the environment and ./terraform.tfvars still work.
        let homelab = args.common.homelab().ok();
        let tfvars = if node::needs_tfvars(&args.node) || args.tfvars.tfvars.is_some() {
            load_tfvars(args.tfvars.tfvars.as_deref(), homelab.as_ref())?
        } else {
            None
        };
        let lookup = match homelab.as_ref() {
            Some(h) if nothing_names_the_node(args) => fleet_lookup(args, h, tfvars.as_ref())?,
            _ => None,
        };
        if args.env.is_some() && lookup.is_none() {
            bail!(
                "--env finds the node among the homelab's environments: give no --tfvars (nor PVE_TFVARS, \
                 PVE_NODE or PVE_HOST), in a homelab whose environments name their nodes"
            );
        }
        let access = match &lookup {
            Some(l) => match &l.fallback {
                Ok(a) => a.clone(),
                // Replaced once the node is found; the run stops before using it otherwise.
                Err(_) => NodeAccess {
                    host: String::new(),
                    node: None,
                    user: None,
                    port: None,
                    ssh_config: None,
                    identity: None,
                    known_hosts: None,
                    accept_new_host_key: false,
                },
            },
            None => {
                let mut a = resolve_access(&args.node, tfvars.as_ref(), homelab.as_ref())?;
                a.apply_host_key_env();
                a
            }
        };
        let mode = args.common.mode();
        Ok(Config {
            lookup,
            list: args.list,
            json: args.common.json,
            restore: Options {
                vmid,
                target_id,
                selection,
                storage: args.target_storage.clone(),
                backup_storage: (!args.all_storages).then(|| args.storage.clone()),
                save_storage: args.save_storage.clone(),
                access,
                start: !args.no_start,
                unique: args.unique,
                verify: !args.no_verify,
                // Overwriting is decided by the confirmation (or --force), as the script did.
                force: true,
                yes: args.force.force,
                dry_run: mode != Mode::Live,
                offline: mode == Mode::DryRun,
                verify_timeout: Duration::from_secs(args.verify_timeout),
                verify_port: args.verify_port,
                shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
            },
        })
    }
}

/// VMID, the target id and the backup asked for, with the storages named: the flags that need nothing
/// but themselves to be checked.
fn checked_selection(args: &Args) -> anyhow::Result<(u32, u32, Selection)> {
    let Some(vmid_text) = args.vmid.as_deref() else {
        bail!("{}", crate::words::vmid_required());
    };
    if vmid_text.is_empty() || !vmid_text.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{}", crate::words::vmid_not_a_number(vmid_text));
    }
    let vmid = pve::parse_vmid(vmid_text)?;
    let target_id = match &args.target_id {
        Some(t) => pve::parse_vmid(t).context("--target-id")?,
        None => vmid,
    };
    let selection = match (&args.backup, &args.at, &args.date) {
        (Some(v), _, _) => Selection::Volid(Volid::parse(v)?),
        (None, Some(at), _) => Selection::At(parse_at(at)?),
        (None, None, Some(d)) => Selection::OnOrAfter(parse_date(d)?),
        _ => Selection::Latest,
    };
    if args.list
        && (args.backup.is_some()
            || args.at.is_some()
            || args.date.is_some()
            || args.target_id.is_some())
    {
        bail!("--list takes no --backup, --at, --date or --target-id");
    }
    pve::validate_storage_id(&args.storage).context("--storage")?;
    pve::validate_storage_id(&args.target_storage).context("--target-storage")?;
    if let Some(s) = &args.save_storage {
        pve::validate_storage_id(s).context("--save-storage")?;
    }
    Ok((vmid, target_id, selection))
}

/// Whether the command line and the environment leave the node open: no --node, --host or --tfvars, no
/// PVE_NODE, PVE_HOST or PVE_TFVARS (each of them names the node or where to read it, as before).
fn nothing_names_the_node(args: &Args) -> bool {
    args.node.node.is_none()
        && args.node.host.is_none()
        && args.tfvars.tfvars.is_none()
        && [ENV_NODE, ENV_HOST, ENV_TFVARS]
            .iter()
            .all(|v| env(v).is_none())
}

/// The lookup when the homelab's environments name nodes (`None`: they name none, the default applies).
fn fleet_lookup(
    args: &Args,
    homelab: &Homelab,
    tfvars: Option<&TfVars>,
) -> anyhow::Result<Option<Lookup>> {
    let mut fleet = match Fleet::discover(homelab) {
        Ok(f) => f,
        Err(e) if args.env.is_none() => {
            pve_common::warn!("{e}; the node is not looked up among the environments");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(name) = &args.env
        && !fleet.envs.iter().any(|e| &e.env == name)
    {
        bail!(
            "{}",
            pve_common::tr!(
                "common.invalid_env",
                env = name,
                valid = fleet
                    .envs
                    .iter()
                    .map(|e| e.env.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
    fleet.retain_envs(args.env.as_slice())?;
    if !fleet.envs.iter().any(|e| e.node.is_some()) {
        return Ok(None);
    }
    let fallback = resolve_access(&args.node, tfvars, Some(homelab))
        .map(|mut a| {
            a.apply_host_key_env();
            a
        })
        .map_err(|e| format!("{e:#}"));
    Ok(Some(Lookup {
        fleet,
        env: args.env.clone(),
        node_args: args.node.clone(),
        tfvars: tfvars.cloned(),
        fallback,
    }))
}

/// [`node::resolve`], with the homelab's own keys: the node from `default_node`/`pve_node` when neither
/// flag, environment nor `node_name` gives one, and the node name as the SSH host when nothing better is
/// known (the script's way: the node is reachable under its own name).
pub fn resolve_access(
    args: &NodeArgs,
    tfvars: Option<&TfVars>,
    homelab: Option<&Homelab>,
) -> anyhow::Result<NodeAccess> {
    let mut args = args.clone();
    if args.node.is_none()
        && env(ENV_NODE).is_none()
        && let Some(vars) = tfvars
    {
        for key in TFVARS_DEFAULT_NODE_KEYS
            .iter()
            .chain(TFVARS_NODE_KEYS.iter())
        {
            if let Some(v) = vars.get_str(key)? {
                args.node = Some(v.to_owned());
                break;
            }
        }
    }
    match node::resolve(&args, tfvars) {
        Err(node::NodeError::NoHost) if args.node.is_some() => {
            args.host = homelab
                .and_then(|h| env_host_of(h, args.node.as_deref()?))
                .or_else(|| args.node.clone());
            Ok(node::resolve(&args, tfvars)?)
        }
        other => Ok(other?),
    }
}

/// The SSH host of the environment whose `default_node` is `node` (each environment has its own node
/// and `proxmox_endpoint`).
fn env_host_of(homelab: &Homelab, node: &str) -> Option<String> {
    KNOWN_ENVIRONMENTS.iter().find_map(|env| {
        let settings = homelab.env_settings(env).ok()??;
        (settings.default_node.as_deref() == Some(node))
            .then_some(settings.ssh_host)
            .flatten()
    })
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

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2026-11-20").unwrap(),
            jiff::civil::date(2026, 11, 20)
        );
        for bad in [
            "2026-11-20T02:00",
            "20-11-2026",
            "2026-02-30",
            "2026-1-2",
            "hier",
        ] {
            let e = parse_date(bad).unwrap_err().to_string();
            assert!(e.contains(&crate::words::date_invalid(bad)), "{bad}: {e}");
        }
    }
}
