//! Where the Proxmox node is and how to reach it, as every node-facing tool resolves it: the flags of
//! [`NodeArgs`], else the environment (`PVE_HOST`, `PVE_NODE`, `PVE_SSH_USER`), else the homelab's
//! terraform.tfvars (the host of `proxmox_endpoint`, `node_name`, `ssh_user`). Which tfvars file is the
//! caller's business (restore-vm: `--tfvars`, `PVE_TFVARS`, `./terraform.tfvars`; rebuild-monitoring: the one
//! it reads its URLs from); [`needs_tfvars`] says whether it has to be read at all.

use std::path::PathBuf;

use thiserror::Error;

use crate::cli::NodeArgs;
use crate::pve::{self, PveValueError};
use crate::ssh::{SshOptions, SshTarget};
use crate::tfvars::{TfVars, TfvarsError};

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
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The host part of an endpoint URL (`https://192.0.2.2:8006/api2/json` -> `192.0.2.2`) or a bare host.
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
    fn endpoint_hosts() {
        assert_eq!(
            endpoint_host("https://192.0.2.2:8006/api2/json").as_deref(),
            Some("192.0.2.2")
        );
        assert_eq!(
            endpoint_host("https://pve.lan:8006/").as_deref(),
            Some("pve.lan")
        );
        assert_eq!(endpoint_host("pve.lan:8006").as_deref(), Some("pve.lan"));
        assert_eq!(endpoint_host("").as_deref(), None);
    }

    #[test]
    fn flags_beat_tfvars_and_tfvars_fill_the_rest() {
        let vars = crate::tfvars::parse_tfvars_str(
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
