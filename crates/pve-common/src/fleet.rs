//! The fleet: every deployed environment of the homelab with the node it runs on and the guests its
//! Terraform state manages.
//!
//! Each environment names its own node (`default_node`, else `pve_node`, else the root's) and API address
//! (`proxmox_endpoint`, whose host is where SSH goes). The guests an environment manages are read from its
//! state, not from whatever the node lists: the VMIDs (`vm_id`) of its `proxmox_virtual_environment_vm` and
//! `proxmox_virtual_environment_container` resources. The state is the local `terraform.tfstate` when the
//! environment has one; otherwise it lives in S3, which this module does not resolve itself: the caller
//! passes the fetch (the backend-resolution code already exists in one place and stays there).

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use crate::environments::{self, EnvError};
use crate::homelab::{Homelab, HomelabError};

/// The Terraform resource types whose instances are Proxmox guests.
pub const GUEST_RESOURCE_TYPES: [(&str, GuestKind); 2] = [
    ("proxmox_virtual_environment_vm", GuestKind::Vm),
    (
        "proxmox_virtual_environment_container",
        GuestKind::Container,
    ),
];

/// The local state file name in an environment folder.
pub const LOCAL_STATE: &str = "terraform.tfstate";

/// Why the fleet (or one environment's guests) could not be read.
#[derive(Debug, Error)]
pub enum FleetError {
    /// The homelab's variable files.
    #[error(transparent)]
    Homelab(#[from] HomelabError),
    /// The environments folder.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A local state file could not be read.
    #[error("cannot read the state of environment `{env}` ({})", path.display())]
    Read {
        /// The environment.
        env: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A state is not a Terraform state.
    #[error("the state of environment `{env}` ({from}) is not valid JSON")]
    Parse {
        /// The environment.
        env: String,
        /// Where it came from (a path or an `s3://` URL).
        from: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The remote state could not be fetched (the caller's error, kept whole).
    #[error("cannot read the state of environment `{env}`: {message}")]
    Remote {
        /// The environment.
        env: String,
        /// The fetch's error with its cause chain.
        message: String,
    },
}

/// A guest's kind, as Terraform manages it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GuestKind {
    /// `proxmox_virtual_environment_vm` (a QEMU VM).
    Vm,
    /// `proxmox_virtual_environment_container` (an LXC container).
    Container,
}

/// One guest a state manages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManagedGuest {
    /// `vm_id`.
    pub vmid: u32,
    /// VM or container.
    pub kind: GuestKind,
    /// The resource address (`module.x.proxmox_virtual_environment_vm.jellyfin`, with `[key]` when counted).
    pub address: String,
    /// `node_name` as the state records it.
    pub node: Option<String>,
}

/// Where an environment's state is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateSource {
    /// `<env>/terraform.tfstate`.
    Local(PathBuf),
    /// Not local: S3, through the backend block or the homelab's MinIO block (the caller resolves it).
    Remote,
}

/// One deployed environment: its node and where its state is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetEnv {
    /// The environment (its folder name).
    pub env: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Its node: `default_node`, else `pve_node`, else the root's.
    pub node: Option<String>,
    /// `proxmox_endpoint` as written.
    pub endpoint: Option<String>,
    /// The host of `proxmox_endpoint`: where SSH goes.
    pub ssh_host: Option<String>,
    /// Where its Terraform state is.
    pub state: StateSource,
}

/// Every deployed environment (one with a `terraform.tfvars`), in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fleet {
    /// The environments.
    pub envs: Vec<FleetEnv>,
}

impl Fleet {
    /// Reads the fleet from the homelab's environments folder (an absent folder is an empty fleet).
    pub fn discover(homelab: &Homelab) -> Result<Fleet, FleetError> {
        let dir = homelab.environments_dir();
        if !dir.is_dir() {
            return Ok(Fleet::default());
        }
        let root_node = homelab.root_settings()?.default_node;
        let mut envs = Vec::new();
        for env in environments::discover(&dir)? {
            let Some(settings) = homelab.env_settings(&env)? else {
                continue;
            };
            let env_dir = homelab.env_dir(&env);
            let local = env_dir.join(LOCAL_STATE);
            envs.push(FleetEnv {
                node: settings.default_node.or_else(|| root_node.clone()),
                endpoint: settings.proxmox_endpoint,
                ssh_host: settings.ssh_host,
                state: if local.is_file() {
                    StateSource::Local(local)
                } else {
                    StateSource::Remote
                },
                dir: env_dir,
                env,
            });
        }
        Ok(Fleet { envs })
    }

    /// Keeps only the environments named (none: all), refusing a name that is not one of them.
    pub fn retain_envs(&mut self, names: &[String]) -> Result<(), FleetError> {
        for name in names {
            environments::validate_name(name)?;
            if !self.envs.iter().any(|e| &e.env == name) {
                return Err(EnvError::Unknown {
                    name: name.clone(),
                    root: self
                        .envs
                        .first()
                        .and_then(|e| e.dir.parent())
                        .map(Path::to_owned)
                        .unwrap_or_default(),
                    known: self.envs.iter().map(|e| e.env.clone()).collect(),
                }
                .into());
            }
        }
        if !names.is_empty() {
            self.envs.retain(|e| names.contains(&e.env));
        }
        Ok(())
    }

    /// The environments whose node is `node`.
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a FleetEnv> + 'a {
        self.envs
            .iter()
            .filter(move |e| e.node.as_deref() == Some(node))
    }
}

impl FleetEnv {
    /// The guests its state manages: the local file, else what `fetch_remote` returns (`Ok(None)`: no
    /// state there yet, so nothing managed).
    pub fn managed_guests(
        &self,
        fetch_remote: impl FnOnce(&FleetEnv) -> Result<Option<(String, Vec<u8>)>, String>,
    ) -> Result<Vec<ManagedGuest>, FleetError> {
        let (from, bytes) = match &self.state {
            StateSource::Local(path) => (
                path.display().to_string(),
                std::fs::read(path).map_err(|source| FleetError::Read {
                    env: self.env.clone(),
                    path: path.clone(),
                    source,
                })?,
            ),
            StateSource::Remote => match fetch_remote(self) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(Vec::new()),
                Err(message) => {
                    return Err(FleetError::Remote {
                        env: self.env.clone(),
                        message,
                    });
                }
            },
        };
        managed_guests(&bytes).map_err(|source| FleetError::Parse {
            env: self.env.clone(),
            from,
            source,
        })
    }
}

fn vmid_of(attributes: &Value) -> Option<u32> {
    match attributes.get("vm_id")? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The guests of a Terraform state (format version 4): every instance of a managed VM or container
/// resource with a `vm_id`, sorted by VMID. Data sources and other resources are not guests.
pub fn managed_guests(state: &[u8]) -> Result<Vec<ManagedGuest>, serde_json::Error> {
    let doc: Value = serde_json::from_slice(state)?;
    let mut out = Vec::new();
    for r in doc
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if r.get("mode").and_then(Value::as_str) != Some("managed") {
            continue;
        }
        let rtype = r.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some((_, kind)) = GUEST_RESOURCE_TYPES.iter().find(|(t, _)| *t == rtype) else {
            continue;
        };
        let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
        let base = match r.get("module").and_then(Value::as_str) {
            Some(m) => format!("{m}.{rtype}.{name}"),
            None => format!("{rtype}.{name}"),
        };
        for inst in r
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let attrs = inst.get("attributes").unwrap_or(&Value::Null);
            let Some(vmid) = vmid_of(attrs) else {
                continue;
            };
            let address = match inst.get("index_key") {
                Some(Value::String(k)) => format!("{base}[\"{k}\"]"),
                Some(Value::Number(k)) => format!("{base}[{k}]"),
                _ => base.clone(),
            };
            out.push(ManagedGuest {
                vmid,
                kind: *kind,
                address,
                node: attrs
                    .get("node_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }
    out.sort();
    out.dedup_by_key(|g| g.vmid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use assert_fs::prelude::*;

    use super::*;

    fn state(resources: Value) -> String {
        serde_json::json!({"version": 4, "serial": 1, "lineage": "l", "resources": resources})
            .to_string()
    }

    fn vm(rtype: &str, name: &str, vmid: Value) -> Value {
        serde_json::json!({"mode": "managed", "type": rtype, "name": name,
            "instances": [{"attributes": {"vm_id": vmid, "node_name": "pve-lab"}}]})
    }

    #[test]
    fn reads_every_environment_its_node_host_and_guests() {
        let root = assert_fs::TempDir::new().unwrap();
        root.child("terraform.tfvars")
            .write_str("default_node = \"pve-root\"\n")
            .unwrap();
        let envs = root.child(crate::homelab::ENVIRONMENTS_DIR);
        for (env, tfvars) in [
            (
                "prod",
                "default_node = \"pve-prod\"\nproxmox_endpoint = \"https://192.0.2.10:8006\"\n",
            ),
            (
                "lab",
                "pve_node = \"pve-lab\"\nproxmox_endpoint = \"https://192.0.2.11:8006/\"\n",
            ),
            (
                "monitoring",
                "proxmox_endpoint = \"https://[2001:db8::1]:8006\"\n",
            ),
            ("staging", ""),
        ] {
            envs.child(env).child("main.tf").write_str("").unwrap();
            if env != "staging" {
                envs.child(env)
                    .child("terraform.tfvars")
                    .write_str(tfvars)
                    .unwrap();
            }
        }
        envs.child("lab/terraform.tfstate")
            .write_str(&state(serde_json::json!([
                vm("proxmox_virtual_environment_vm", "web", 201.into()),
                vm("proxmox_virtual_environment_container", "dns", "202".into()),
                {"mode": "data", "type": "proxmox_virtual_environment_vm", "name": "tpl",
                 "instances": [{"attributes": {"vm_id": 9000}}]},
                {"mode": "managed", "type": "terraform_data", "name": "x",
                 "instances": [{"attributes": {"id": "x"}}]},
            ])))
            .unwrap();
        let fleet = Fleet::discover(&Homelab::at(root.path())).unwrap();
        let names: Vec<_> = fleet.envs.iter().map(|e| e.env.as_str()).collect();
        assert_eq!(
            names,
            ["lab", "monitoring", "prod"],
            "staging is not deployed"
        );
        let lab = &fleet.envs[0];
        assert_eq!(lab.node.as_deref(), Some("pve-lab"), "pve_node");
        assert_eq!(lab.ssh_host.as_deref(), Some("192.0.2.11"));
        assert_eq!(
            lab.state,
            StateSource::Local(envs.child("lab/terraform.tfstate").to_path_buf())
        );
        let mon = &fleet.envs[1];
        assert_eq!(mon.node.as_deref(), Some("pve-root"), "the root's node");
        assert_eq!(mon.ssh_host.as_deref(), Some("2001:db8::1"));
        assert_eq!(mon.state, StateSource::Remote);
        assert_eq!(fleet.on_node("pve-prod").count(), 1);

        let guests = lab
            .managed_guests(|_| panic!("a local state is not fetched"))
            .unwrap();
        let ids: Vec<_> = guests.iter().map(|g| (g.vmid, g.kind)).collect();
        assert_eq!(ids, [(201, GuestKind::Vm), (202, GuestKind::Container)]);
        assert_eq!(guests[0].address, "proxmox_virtual_environment_vm.web");
        assert_eq!(guests[0].node.as_deref(), Some("pve-lab"));

        let remote = state(serde_json::json!([{"mode": "managed",
            "type": "proxmox_virtual_environment_vm", "name": "n", "module": "module.m",
            "instances": [{"index_key": "a", "attributes": {"vm_id": 301}}]}]));
        let guests = mon
            .managed_guests(|e| {
                assert_eq!(e.env, "monitoring");
                Ok(Some((
                    "s3://tfstate-monitoring/terraform.tfstate".into(),
                    remote.into_bytes(),
                )))
            })
            .unwrap();
        assert_eq!(
            guests[0].address,
            "module.m.proxmox_virtual_environment_vm.n[\"a\"]"
        );
        assert!(
            mon.managed_guests(|_| Ok(None)).unwrap().is_empty(),
            "no state yet"
        );
        let err = mon
            .managed_guests(|_| Err("connection refused".into()))
            .unwrap_err();
        assert!(
            err.to_string().contains("`monitoring`: connection refused"),
            "{err}"
        );
    }

    #[test]
    fn a_broken_state_names_its_environment_and_file() {
        let root = assert_fs::TempDir::new().unwrap();
        let env = root.child(crate::homelab::ENVIRONMENTS_DIR).child("prod");
        env.child("main.tf").write_str("").unwrap();
        env.child("terraform.tfvars")
            .write_str("default_node = \"pve\"\n")
            .unwrap();
        env.child("terraform.tfstate")
            .write_str("{not json")
            .unwrap();
        let fleet = Fleet::discover(&Homelab::at(root.path())).unwrap();
        let err = fleet.envs[0]
            .managed_guests(|_| Ok(None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`prod`") && err.contains("terraform.tfstate"),
            "{err}"
        );
    }

    #[test]
    fn env_selection_refuses_unknown_names() {
        let mut fleet = Fleet {
            envs: ["lab", "prod"]
                .iter()
                .map(|e| FleetEnv {
                    env: (*e).to_owned(),
                    dir: PathBuf::from("/h/envs").join(e),
                    node: None,
                    endpoint: None,
                    ssh_host: None,
                    state: StateSource::Remote,
                })
                .collect(),
        };
        let err = fleet
            .retain_envs(&["staging".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("known: lab, prod"), "{err}");
        assert!(fleet.retain_envs(&["../x".into()]).is_err());
        fleet.retain_envs(&["prod".into()]).unwrap();
        assert_eq!(fleet.envs.len(), 1);
    }

    #[test]
    fn no_environments_folder_is_an_empty_fleet() {
        let root = assert_fs::TempDir::new().unwrap();
        assert!(
            Fleet::discover(&Homelab::at(root.path()))
                .unwrap()
                .envs
                .is_empty()
        );
    }
}
