//! The homelab as several nodes: one simulated Proxmox node per environment (prod `pve-prod`, lab
//! `pve-lab`, monitoring `pve-mon`), each behind its own real sshd on loopback with its own simulator
//! state, reached through one `ssh_config` whose `Host` aliases are the node names (so each environment's
//! `proxmox_endpoint` can name its node and SSH still lands on the right loopback port).
//!
//! The scenario every fleet test shares, so a failure names the same things everywhere:
//! - prod (`pve-prod`): VM 100 `jellyfin` and CT 101 `pihole` backed up an hour ago; VM 102 `vaultwarden`
//!   managed by Terraform but never backed up; a backup of VMID 150, which no guest and no state has.
//! - lab (`pve-lab`): VM 200 `runner` and CT 201 `devbox`, backed up.
//! - monitoring (`pve-mon`): VM 300 `monitoring`, backed up (the node a test takes down).
//!
//! With a cluster ([`FleetBed::start_cluster`]), the last nodes are members of one Proxmox cluster sharing the
//! NFS storage `nas` (`shared: 1`), where their guests' backups are.
//!
//! [`state_json`] is each environment's Terraform state (format 4, `proxmox_virtual_environment_vm` and
//! `_container` resources with `vm_id` and `node_name`), as the provider writes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::sim::{self, GuestType};
use crate::sshd::Sshd;

/// `(environment, node)` of the fleet, in the scripts' order.
pub const NODES: [(&str, &str); 3] = [
    ("prod", "pve-prod"),
    ("lab", "pve-lab"),
    ("monitoring", "pve-mon"),
];

/// The storage the members of a cluster share (an NFS export, `shared: 1`).
pub const SHARED_STORAGE: &str = "nas";

/// The VMID of the managed guest that has no backup (prod).
pub const UNBACKED_VMID: u32 = 102;
/// The VMID of the backup no guest and no state has (on prod's node).
pub const UNMANAGED_BACKUP_VMID: u32 = 150;

/// One guest of the scenario.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioGuest {
    /// VMID.
    pub vmid: u32,
    /// VM or container.
    pub kind: GuestType,
    /// Name (hostname of a container).
    pub name: &'static str,
    /// Whether it has a backup.
    pub backed_up: bool,
}

/// The guests of an environment in the scenario (all of them managed by its state).
pub fn scenario(env: &str) -> Vec<ScenarioGuest> {
    let g = |vmid, kind, name, backed_up| ScenarioGuest {
        vmid,
        kind,
        name,
        backed_up,
    };
    match env {
        "prod" => vec![
            g(100, GuestType::Qemu, "jellyfin", true),
            g(101, GuestType::Lxc, "pihole", true),
            g(UNBACKED_VMID, GuestType::Qemu, "vaultwarden", false),
        ],
        "lab" => vec![
            g(200, GuestType::Qemu, "runner", true),
            g(201, GuestType::Lxc, "devbox", true),
        ],
        "monitoring" => vec![g(300, GuestType::Qemu, "monitoring", true)],
        _ => Vec::new(),
    }
}

/// The node of an environment in the fleet.
pub fn node_of(env: &str) -> Option<&'static str> {
    NODES.iter().find(|(e, _)| *e == env).map(|(_, n)| *n)
}

/// The Terraform state of `env` in the scenario: its guests as provider resources.
pub fn state_json(env: &str) -> String {
    let node = node_of(env).unwrap_or("pve");
    let resources: Vec<serde_json::Value> = scenario(env)
        .iter()
        .map(|g| {
            let rtype = match g.kind {
                GuestType::Qemu => "proxmox_virtual_environment_vm",
                GuestType::Lxc => "proxmox_virtual_environment_container",
            };
            serde_json::json!({
                "mode": "managed", "type": rtype, "name": g.name,
                "provider": "provider[\"registry.terraform.io/bpg/proxmox\"]",
                "instances": [{"schema_version": 0, "attributes": {
                    "id": g.vmid.to_string(), "vm_id": g.vmid, "node_name": node}}]
            })
        })
        .collect();
    serde_json::json!({
        "version": 4, "terraform_version": "1.11.4", "serial": 1,
        "lineage": format!("fleet-{env}"), "outputs": {}, "resources": resources,
    })
    .to_string()
}

/// One node of the fleet.
pub struct FleetNode {
    /// Its environment.
    pub env: String,
    /// Its Proxmox node name (and `Host` alias in the fleet's `ssh_config`).
    pub node: String,
    /// Its simulator state.
    pub state: sim::State,
    /// Its folder (simulator state, the sshd's `bin`).
    pub dir: PathBuf,
    /// Its sshd; `None` for a node started down (its port refuses connections).
    pub sshd: Option<Sshd>,
    /// The port its alias points at.
    pub port: u16,
}

/// The fleet: its nodes and the files to reach them.
pub struct FleetBed {
    /// Where everything is.
    pub dir: PathBuf,
    /// One per environment, in [`NODES`] order.
    pub nodes: Vec<FleetNode>,
    /// `ssh_config` with one `Host <node>` per node (HostName 127.0.0.1, its Port, User, IdentityFile).
    pub ssh_config: PathBuf,
    /// known_hosts trusting every node's host key.
    pub known_hosts: PathBuf,
}

impl FleetBed {
    /// Starts the first `count` nodes of [`NODES`] (at most 3) under `dir`, each seeded with its part of
    /// the scenario; the nodes named in `down` get a state but no sshd.
    pub fn start(dir: &Path, count: usize, down: &[&str]) -> Result<FleetBed> {
        Self::start_cluster(dir, count, down, 0)
    }

    /// [`FleetBed::start`], with the last `cluster` nodes (0, or 2 or more) members of one cluster: each
    /// lists the others' guests in `/cluster/resources` and their node in `/nodes`, answers for them under
    /// `/nodes/<member>/...`, and they share the storage [`SHARED_STORAGE`] (`shared: 1`, one folder),
    /// where the members' guests are backed up.
    pub fn start_cluster(
        dir: &Path,
        count: usize,
        down: &[&str],
        cluster: usize,
    ) -> Result<FleetBed> {
        if let Some(unknown) = down.iter().find(|d| !NODES.iter().any(|(_, n)| n == *d)) {
            anyhow::bail!(
                "no node `{unknown}` in the fleet (its nodes: pve-prod, pve-lab, pve-mon)"
            );
        }
        let now = sim::state::now_epoch();
        let count = count.min(NODES.len());
        let first_member = count.saturating_sub(cluster);
        let members: Vec<sim::state::ClusterMember> = NODES[first_member..count]
            .iter()
            .filter(|_| cluster >= 2)
            .map(|(env, node)| sim::state::ClusterMember {
                node: (*node).to_owned(),
                state: dir.join(env).join("state"),
            })
            .collect();
        let mut nodes = Vec::new();
        for (env, node) in NODES.iter().take(count) {
            let node_dir = dir.join(env);
            let state_dir = node_dir.join("state");
            let state = sim::State::create_standard(&state_dir, node)?;
            let member = members.iter().any(|m| m.node == *node);
            let storage = if member {
                let mut nas = sim::StorageDef::new(SHARED_STORAGE, "nfs", "backup,iso", 1 << 40);
                nas.shared = 1;
                nas.path = Some(dir.join("shared").join(SHARED_STORAGE));
                state.add_storage(nas)?;
                state.set_cluster("homelab", &members)?;
                SHARED_STORAGE
            } else {
                "local"
            };
            for (i, g) in scenario(env).iter().enumerate() {
                let guest = scenario_guest(g, node);
                state.add_guest(&guest)?;
                if g.backed_up {
                    add_backup(
                        &state,
                        storage,
                        &guest,
                        now - 3600,
                        u64::from(g.vmid) + i as u64,
                    )?;
                }
            }
            if *env == "prod" {
                // A backup left behind by a guest Terraform never knew (created by hand, then removed).
                let gone = scenario_guest(
                    &ScenarioGuest {
                        vmid: UNMANAGED_BACKUP_VMID,
                        kind: GuestType::Qemu,
                        name: "handmade",
                        backed_up: true,
                    },
                    node,
                );
                state.add_guest(&gone)?;
                add_backup(&state, "local", &gone, now - 7200, 150)?;
                state.remove_guest(UNMANAGED_BACKUP_VMID)?;
            }
            let (sshd, port) = if down.contains(node) {
                (None, crate::ports::free_port()?)
            } else {
                let sshd = crate::bed::node_sshd(&state_dir, &node_dir.join("bin"))?;
                let port = sshd.port();
                (Some(sshd), port)
            };
            nodes.push(FleetNode {
                dir: node_dir.clone(),
                env: (*env).to_owned(),
                node: (*node).to_owned(),
                state,
                sshd,
                port,
            });
        }
        let bed = FleetBed {
            dir: dir.to_owned(),
            nodes,
            ssh_config: dir.join("ssh_config"),
            known_hosts: dir.join("known_hosts"),
        };
        bed.write_ssh_files()?;
        Ok(bed)
    }

    fn write_ssh_files(&self) -> Result<()> {
        let mut config = String::new();
        let mut known = String::new();
        for n in &self.nodes {
            config.push_str(&format!(
                "Host {}\n  HostName 127.0.0.1\n  Port {}\n",
                n.node, n.port
            ));
            if let Some(sshd) = &n.sshd {
                config.push_str(&format!(
                    "  User {}\n  IdentityFile {}\n",
                    sshd.user(),
                    sshd.client_key().display()
                ));
                known.push_str(
                    &std::fs::read_to_string(sshd.known_hosts()).context("reading known_hosts")?,
                );
                if !known.ends_with('\n') {
                    known.push('\n');
                }
            }
        }
        std::fs::write(&self.ssh_config, config)
            .with_context(|| format!("writing {}", self.ssh_config.display()))?;
        std::fs::write(&self.known_hosts, known)
            .with_context(|| format!("writing {}", self.known_hosts.display()))
    }

    /// The node of `env`.
    pub fn node(&self, env: &str) -> Option<&FleetNode> {
        self.nodes.iter().find(|n| n.env == env)
    }

    /// The SSH user every running node lets in (the one running the tests).
    pub fn user(&self) -> Result<&str> {
        self.nodes
            .iter()
            .find_map(|n| n.sshd.as_ref())
            .map(Sshd::user)
            .context("every node of the fleet is down")
    }

    /// What a tool needs to reach the fleet by node name: `PVE_SSH_USER`, `PVE_SSH_CONFIG` (the fleet's
    /// `ssh_config`) and `HOMELAB_KNOWN_HOSTS`.
    pub fn ssh_env(&self) -> Result<Vec<(String, String)>> {
        Ok(vec![
            ("PVE_SSH_USER".to_owned(), self.user()?.to_owned()),
            (
                "PVE_SSH_CONFIG".to_owned(),
                self.ssh_config.display().to_string(),
            ),
            (
                "HOMELAB_KNOWN_HOSTS".to_owned(),
                self.known_hosts.display().to_string(),
            ),
        ])
    }

    /// The homelab fixture ([`crate::fixture::homelab`]) laid out in `root` with every environment's
    /// `proxmox_endpoint` pointing at its node of this fleet ([`FleetBed::endpoints`]).
    pub fn homelab(&self, root: &Path, options: crate::fixture::HomelabOptions) -> Result<()> {
        crate::fixture::homelab(
            root,
            &crate::fixture::HomelabOptions {
                endpoints: self.endpoints(),
                ..options
            },
        )
    }

    /// `(env, https://<node>:8006)` for each node: the fixture's `proxmox_endpoint`s, resolved by the
    /// fleet's `ssh_config` to loopback.
    pub fn endpoints(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.env.clone(), format!("https://{}:8006", n.node)))
            .collect()
    }
}

/// Three nodes ([`FleetBed::start_cluster`]) and the homelab fixture naming them ([`FleetBed::homelab`]),
/// in a temporary folder removed once the fleet has stopped.
pub struct FleetLab {
    /// The fleet.
    pub bed: FleetBed,
    /// The homelab's root.
    pub root: PathBuf,
    dir: tempfile::TempDir,
}

impl FleetLab {
    /// The fleet (the last `cluster` nodes in one cluster, the nodes in `down` started down) under
    /// `<tmp>/fleet`, the homelab laid out with `options` under `<tmp>/homelab`, and an empty `HOME` for the
    /// tools under `<tmp>/home`.
    pub fn start(
        down: &[&str],
        cluster: usize,
        options: crate::fixture::HomelabOptions,
    ) -> Result<FleetLab> {
        let dir = tempfile::tempdir().context("creating the lab's folder")?;
        let bed = FleetBed::start_cluster(&dir.path().join("fleet"), 3, down, cluster)?;
        let root = dir.path().join("homelab");
        bed.homelab(&root, options)?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        Ok(FleetLab { bed, root, dir })
    }

    /// The lab's temporary folder, for a test's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the replaced scripts ran from: the homelab's `scripts/restore`.
    pub fn scripts_dir(&self) -> PathBuf {
        self.root.join("scripts/restore")
    }

    /// A tool's environment in the lab: `HOME` (an empty folder of the lab) and [`FleetBed::ssh_env`].
    pub fn env(&self) -> Result<Vec<(String, String)>> {
        let mut env = vec![(
            "HOME".to_owned(),
            self.dir.path().join("home").display().to_string(),
        )];
        env.extend(self.bed.ssh_env()?);
        Ok(env)
    }
}

fn scenario_guest(g: &ScenarioGuest, node: &str) -> sim::Guest {
    let config: Vec<(&str, String)> = match g.kind {
        GuestType::Qemu => vec![
            ("name", g.name.to_owned()),
            ("memory", "1024".to_owned()),
            ("scsi0", format!("local-lvm:vm-{}-disk-0,size=64M", g.vmid)),
        ],
        GuestType::Lxc => vec![
            ("hostname", g.name.to_owned()),
            ("memory", "512".to_owned()),
            (
                "rootfs",
                format!("local-lvm:subvol-{}-disk-0,size=1G", g.vmid),
            ),
        ],
    };
    let pairs: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sim::Guest::new(g.vmid, g.kind, node, &pairs)
}

fn add_backup(
    state: &sim::State,
    storage: &str,
    guest: &sim::Guest,
    ctime: i64,
    seed: u64,
) -> Result<()> {
    state.add_backup(
        storage,
        guest,
        &sim::fixtures::ArchiveSpec {
            size: 96 * 1024,
            ctime,
            seed,
        },
        &sim::fixtures::BackupOptions::default(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_list_the_scenario_guests() {
        let guests = pve_common::fleet::managed_guests(state_json("prod").as_bytes()).unwrap();
        let ids: Vec<u32> = guests.iter().map(|g| g.vmid).collect();
        assert_eq!(ids, [100, 101, UNBACKED_VMID]);
        assert!(guests.iter().all(|g| g.node.as_deref() == Some("pve-prod")));
        assert!(!ids.contains(&UNMANAGED_BACKUP_VMID));
    }
}
