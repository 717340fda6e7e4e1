//! Where the Proxmox node is and how to reach it, as every node-facing tool resolves it: the flags of
//! [`NodeArgs`], else the environment (`PVE_HOST`, `PVE_NODE`, `PVE_SSH_USER`), else the homelab's
//! terraform.tfvars (the host of `proxmox_endpoint`, `node_name`, `ssh_user`). Which tfvars file is the
//! caller's business (restore-vm: `--tfvars`, `PVE_TFVARS`, `./terraform.tfvars`; rebuild-monitoring: the one
//! it reads its URLs from); [`needs_tfvars`] says whether it has to be read at all.

use std::path::PathBuf;

use thiserror::Error;

use crate::{SshOptions, SshTarget};
use pve_common::homelab::{ENV_KNOWN_HOSTS, HostKeyPolicy};
use pve_common::pve::{self, PveValueError, endpoint_host};
use pve_common::tfvars::{TfVars, TfvarsError};

/// Environment variable for the host.
pub const ENV_HOST: &str = "PVE_HOST";
/// Environment variable for the node name.
pub const ENV_NODE: &str = "PVE_NODE";
/// Environment variable for the SSH user.
pub const ENV_USER: &str = "PVE_SSH_USER";

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

/// How to reach the Proxmox node over SSH, for the tools that act on the node (restore-vm,
/// rebuild-monitoring): `--host`, `--node`, `--user`, `--port`, `--ssh-config`, `--identity`,
/// `--known-hosts`, `--accept-new-host-key`. [`resolve`] fills what the flags leave open from
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
    #[arg(long, value_name = "USER", alias = "ssh-user")]
    pub user: Option<String>,

    /// The SSH port (else ssh_config, else 22).
    #[arg(long, value_name = "PORT", alias = "ssh-port")]
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

/// Why the node settings cannot be used (a usage problem: found before any connection).
#[derive(Debug, Error)]
pub enum NodeError {
    /// No host anywhere.
    #[error(
        "no Proxmox host: pass --host, set PVE_HOST, or give a terraform.tfvars with proxmox_endpoint (--tfvars)"
    )]
    NoHost,
    /// A tfvars endpoint without a host part.
    #[error("no host in tfvars endpoint '{0}'")]
    EndpointWithoutHost(String),
    /// A host that would be read as an option or split by a shell.
    #[error("invalid host '{0}'")]
    InvalidHost(String),
    /// A malformed node name.
    #[error(transparent)]
    Value(#[from] PveValueError),
    /// A tfvars value of the wrong type.
    #[error(transparent)]
    Tfvars(#[from] TfvarsError),
}

/// The resolved node settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAccess {
    /// SSH host (name, address or ssh_config alias).
    pub host: String,
    /// The Proxmox node name, if known before connecting.
    pub node: Option<String>,
    /// SSH user.
    pub user: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// ssh_config file.
    pub ssh_config: Option<PathBuf>,
    /// Identity file.
    pub identity: Option<PathBuf>,
    /// known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Record an unknown host key.
    pub accept_new_host_key: bool,
}

impl NodeAccess {
    /// Where to connect.
    pub fn target(&self) -> SshTarget {
        let mut target = SshTarget::new(&self.host);
        if let Some(u) = &self.user {
            target = target.user(u);
        }
        if let Some(p) = self.port {
            target = target.port(p);
        }
        target
    }

    /// How to connect: ssh_config, identity, known_hosts and host-key policy; the rest default.
    pub fn ssh_options(&self) -> SshOptions {
        let mut o = SshOptions {
            config_file: self.ssh_config.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_key: self.accept_new_host_key,
            ..SshOptions::default()
        };
        if let Some(id) = &self.identity {
            o.identity_files.push(id.clone());
        }
        o
    }

    /// Applies the homelab's host-key policy ([`HostKeyPolicy`]) to SSH settings the flags left open:
    /// `HOMELAB_KNOWN_HOSTS`, when set, is the known-hosts file unless `--known-hosts` named one;
    /// `SSH_INIT_MODE=true` accepts a new key as `--accept-new-host-key` does. Unset, the SSH defaults stay
    /// (ssh_config, `~/.ssh/known_hosts`).
    pub fn apply_host_key_env(&mut self) {
        let policy = HostKeyPolicy::from_env();
        if self.known_hosts.is_none() && std::env::var(ENV_KNOWN_HOSTS).is_ok_and(|v| !v.is_empty())
        {
            self.known_hosts = Some(policy.known_hosts);
        }
        if policy.accept_new {
            self.accept_new_host_key = true;
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn tfvars_first(vars: Option<&TfVars>, keys: &[&str]) -> Result<Option<String>, TfvarsError> {
    let Some(vars) = vars else { return Ok(None) };
    for key in keys {
        if let Some(v) = vars.get_str(key)? {
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
}

/// Whether tfvars could fill something in: the host, node or user is given neither by a flag nor by the
/// environment.
pub fn needs_tfvars(args: &NodeArgs) -> bool {
    args.host.is_none() && env(ENV_HOST).is_none()
        || args.node.is_none() && env(ENV_NODE).is_none()
        || args.user.is_none() && env(ENV_USER).is_none()
}

/// Resolves the node settings: flag, else environment, else `tfvars`. No host at all is an error.
pub fn resolve(args: &NodeArgs, tfvars: Option<&TfVars>) -> Result<NodeAccess, NodeError> {
    let host = match args.host.clone().or_else(|| env(ENV_HOST)) {
        Some(h) => h,
        None => match tfvars_first(tfvars, &TFVARS_ENDPOINT_KEYS)? {
            Some(url) => endpoint_host(&url).ok_or(NodeError::EndpointWithoutHost(url))?,
            None => return Err(NodeError::NoHost),
        },
    };
    if host.starts_with('-') || host.chars().any(char::is_whitespace) {
        return Err(NodeError::InvalidHost(host));
    }
    let node = match args.node.clone().or_else(|| env(ENV_NODE)) {
        Some(n) => Some(n),
        None => tfvars_first(tfvars, &TFVARS_NODE_KEYS)?,
    };
    if let Some(n) = &node {
        pve::validate_node_name(n)?;
    }
    let user = match args.user.clone().or_else(|| env(ENV_USER)) {
        Some(u) => Some(u),
        None => tfvars_first(tfvars, &TFVARS_USER_KEYS)?,
    };
    Ok(NodeAccess {
        host,
        node,
        user,
        port: args.port,
        ssh_config: args.ssh_config.clone(),
        identity: args.identity.clone(),
        known_hosts: args.known_hosts.clone(),
        accept_new_host_key: args.accept_new_host_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_tfvars_and_tfvars_fill_the_rest() {
        let vars = pve_common::tfvars::parse_tfvars_str(
            "proxmox_endpoint = \"https://192.0.2.2:8006/api2/json\"\nnode_name = \"pve1\"\nssh_user = \"ops\"\n",
            std::path::Path::new("terraform.tfvars"),
        )
        .unwrap();
        // The environment may set PVE_*: only assert what a flag fixes, and what tfvars gives without it.
        let args = NodeArgs {
            host: Some("pve.lan".into()),
            node: Some("pve".into()),
            user: Some("root".into()),
            port: Some(2222),
            known_hosts: Some("/kh".into()),
            accept_new_host_key: true,
            ..NodeArgs::default()
        };
        let a = resolve(&args, Some(&vars)).unwrap();
        assert_eq!(
            (a.host.as_str(), a.node.as_deref(), a.user.as_deref()),
            ("pve.lan", Some("pve"), Some("root"))
        );
        let o = a.ssh_options();
        assert_eq!(o.known_hosts.as_deref(), Some(std::path::Path::new("/kh")));
        assert!(o.accept_new_host_key);
        assert_eq!(a.target().port, Some(2222));
        if env(ENV_HOST).is_none() {
            let a = resolve(&NodeArgs::default(), Some(&vars)).unwrap();
            assert_eq!(a.host, "192.0.2.2");
            assert!(matches!(
                resolve(&NodeArgs::default(), None),
                Err(NodeError::NoHost)
            ));
        }
        let bad = NodeArgs {
            host: Some("-oProxyCommand=x".into()),
            ..NodeArgs::default()
        };
        assert!(matches!(
            resolve(&bad, None),
            Err(NodeError::InvalidHost(_))
        ));
    }
}
