//! Which node a guest is restored on when no node is given: the node of the environment whose Terraform
//! state manages it, moved to the cluster member that holds the guest now, and any other node where the
//! guest or its backups are. One place: restore there. Several: the caller refuses and names them, since
//! restoring on the wrong one would overwrite another guest. None: the caller falls back to its default.
//!
//! Every node is asked in parallel, one SSH session each, read-only; a node that cannot be reached is
//! reported once and the others still answer.

use std::collections::BTreeSet;

use pve_common::runner::Runner;
use pve_ssh::SshClient;
use pve_ssh::node::NodeAccess;

use crate::node::{Backup, Node};
use crate::outcome::BackupInfo;

/// A node of the fleet to ask.
#[derive(Clone, Debug)]
pub struct Place {
    /// The Proxmox node name.
    pub node: String,
    /// The environments whose node it is.
    pub envs: Vec<String>,
    /// How to reach it.
    pub access: NodeAccess,
}

/// What a reachable node said about a VMID.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The node asked.
    pub node: String,
    /// The environments whose node it is.
    pub envs: Vec<String>,
    /// The nodes of its cluster (itself alone when it is in none).
    pub members: BTreeSet<String>,
    /// The member that holds the guest now, if any does.
    pub location: Option<String>,
    /// Its backups of the VMID on the searched storage(s), newest first, with the node's clock.
    pub backups: Vec<BackupInfo>,
    /// The storages it shares with its cluster (`shared: 1`).
    pub shared: BTreeSet<String>,
    /// Why its backups could not be listed (the storage does not exist there...).
    pub listing_problem: Option<String>,
}

/// A node's answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// It answered.
    Seen(Seen),
    /// It could not be reached or queried; the error with its cause chain.
    Down {
        /// The node.
        node: String,
        /// Its environments.
        envs: Vec<String>,
        /// Why.
        error: String,
    },
}

/// A node a guest could be restored on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// The environments whose node it is (or that manage the guest there).
    pub envs: Vec<String>,
}

impl Candidate {
    /// `env/node` (every environment), or the node alone.
    pub fn label(&self) -> String {
        if self.envs.is_empty() {
            self.node.clone()
        } else {
            self.envs
                .iter()
                .map(|e| format!("{e}/{}", self.node))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Asks every place, in parallel, where `vmid` lives and which of its backups it holds on `storage`
/// (`None`: every backup storage). Read-only: `dry_run` only keeps the runner from changing anything.
pub fn ask(places: &[Place], vmid: u32, storage: Option<&str>, dry_run: bool) -> Vec<Answer> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = places
            .iter()
            .map(|p| scope.spawn(move || ask_one(p, vmid, storage, dry_run)))
            .collect();
        handles
            .into_iter()
            .zip(places)
            .map(|(h, p)| {
                h.join().unwrap_or_else(|_| Answer::Down {
                    node: p.node.clone(),
                    envs: p.envs.clone(),
                    error: "the query panicked".to_owned(),
                })
            })
            .collect()
    })
}

fn ask_one(place: &Place, vmid: u32, storage: Option<&str>, dry_run: bool) -> Answer {
    let runner = Runner::new(dry_run);
    match query(&runner, place, vmid, storage) {
        Ok(seen) => Answer::Seen(seen),
        Err(e) => Answer::Down {
            node: place.node.clone(),
            envs: place.envs.clone(),
            error: format!("{e:#}"),
        },
    }
}

fn query(runner: &Runner, place: &Place, vmid: u32, storage: Option<&str>) -> anyhow::Result<Seen> {
    let mut options = place.access.ssh_options();
    if let Some(ms) = std::env::var(crate::RETRY_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        options.retry.initial_delay = std::time::Duration::from_millis(ms);
    }
    let mut ssh = SshClient::new(runner, &place.access.target(), options)?;
    ssh.check_ssh_access()?;
    let mut node = Node {
        ssh,
        name: place.node.clone(),
    };
    #[derive(serde::Deserialize)]
    struct N {
        node: String,
    }
    let mut members: BTreeSet<String> = node
        .get::<Vec<N>>("/nodes", &[])?
        .into_iter()
        .map(|n| n.node)
        .collect();
    members.insert(place.node.clone());
    let location = node.find_guest(vmid)?.and_then(|r| r.node);
    let offset = node.utc_offset().unwrap_or(jiff::tz::Offset::UTC);
    let mut seen = Seen {
        node: place.node.clone(),
        envs: place.envs.clone(),
        members,
        location,
        ..Seen::default()
    };
    let listed: anyhow::Result<Vec<Backup>> = match storage {
        Some(s) => node.backups_sorted(s, vmid),
        None => node.all_backups(vmid),
    };
    match listed {
        Ok(list) => {
            if !list.is_empty() {
                seen.shared = node
                    .backup_storages()?
                    .into_iter()
                    .filter(|s| s.shared)
                    .map(|s| s.storage)
                    .collect();
            }
            seen.backups = list.iter().map(|b| BackupInfo::new(b, offset)).collect();
        }
        Err(e) => seen.listing_problem = Some(format!("{e:#}")),
    }
    Ok(seen)
}

/// The nodes `vmid` could be restored on: the node of each environment that manages it (`owners`:
/// environment and node), or the cluster member that holds the guest now; every node where the guest
/// lives; every node holding backups of it, unless they are all on storage shared with a node already
/// named. Sorted, one per node.
pub fn candidates(owners: &[(String, String)], answers: &[Answer]) -> Vec<Candidate> {
    let seen: Vec<&Seen> = answers
        .iter()
        .filter_map(|a| match a {
            Answer::Seen(s) => Some(s),
            Answer::Down { .. } => None,
        })
        .collect();
    let mut out: Vec<Candidate> = Vec::new();
    for (env, node) in owners {
        let moved = seen
            .iter()
            .find(|s| &s.node == node)
            .and_then(|s| s.location.as_deref());
        add(&mut out, moved.unwrap_or(node), Some(env));
    }
    let env_of = |node: &str| -> Vec<String> {
        seen.iter()
            .find(|s| s.node == node)
            .map(|s| s.envs.clone())
            .unwrap_or_default()
    };
    for s in &seen {
        if let Some(l) = &s.location {
            let envs = env_of(l);
            add(&mut out, l, None);
            for e in &envs {
                add(&mut out, l, Some(e));
            }
        }
    }
    for s in &seen {
        if s.backups.is_empty() {
            continue;
        }
        let all_shared = s.backups.iter().all(|b| s.shared.contains(&b.storage));
        let named: Vec<String> = out.iter().map(|c| c.node.clone()).collect();
        if all_shared && named.iter().any(|n| s.members.contains(n)) {
            continue;
        }
        add(&mut out, &s.node, None);
        for e in &s.envs {
            add(&mut out, &s.node, Some(e));
        }
    }
    for c in &mut out {
        c.envs.sort();
    }
    out.sort();
    out
}

/// Names `node` (once) as a candidate, with `env` among its environments.
fn add(out: &mut Vec<Candidate>, node: &str, env: Option<&str>) {
    let i = match out.iter().position(|c| c.node == node) {
        Some(i) => i,
        None => {
            out.push(Candidate {
                node: node.to_owned(),
                envs: Vec::new(),
            });
            out.len() - 1
        }
    };
    if let Some(e) = env
        && !out[i].envs.iter().any(|x| x == e)
    {
        out[i].envs.push(e.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(node: &str, env: &str, members: &[&str], location: Option<&str>) -> Seen {
        Seen {
            node: node.into(),
            envs: vec![env.into()],
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            location: location.map(str::to_owned),
            ..Seen::default()
        }
    }

    fn backup(storage: &str) -> BackupInfo {
        BackupInfo {
            volid: format!("{storage}:backup/vzdump-qemu-200-2026_12_01-02_00_00.vma.zst"),
            storage: storage.into(),
            kind: "qemu".into(),
            format: "vma.zst".into(),
            size: 1,
            ctime: 0,
            date: String::new(),
            notes: None,
            protected: false,
            verification: None,
        }
    }

    fn nodes(c: &[Candidate]) -> Vec<String> {
        c.iter().map(Candidate::label).collect()
    }

    #[test]
    fn the_owner_node_holding_the_backups_is_the_one() {
        let mut lab = seen("pve-lab", "lab", &["pve-lab"], None);
        lab.backups.push(backup("local"));
        let answers = vec![
            Answer::Seen(seen("pve-prod", "prod", &["pve-prod"], None)),
            Answer::Seen(lab),
            Answer::Down {
                node: "pve-mon".into(),
                envs: vec!["monitoring".into()],
                error: "refused".into(),
            },
        ];
        let c = candidates(&[("lab".into(), "pve-lab".into())], &answers);
        assert_eq!(nodes(&c), ["lab/pve-lab"]);
    }

    #[test]
    fn a_vmid_on_two_nodes_names_both() {
        let answers = vec![
            Answer::Seen(seen("pve-prod", "prod", &["pve-prod"], Some("pve-prod"))),
            Answer::Seen(seen("pve-lab", "lab", &["pve-lab"], Some("pve-lab"))),
        ];
        let c = candidates(&[("prod".into(), "pve-prod".into())], &answers);
        assert_eq!(nodes(&c), ["lab/pve-lab", "prod/pve-prod"]);
        // Backups alone on a second node make it a candidate too.
        let mut lab = seen("pve-lab", "lab", &["pve-lab"], None);
        lab.backups.push(backup("local"));
        let answers = vec![
            Answer::Seen(seen("pve-prod", "prod", &["pve-prod"], Some("pve-prod"))),
            Answer::Seen(lab),
        ];
        assert_eq!(nodes(&candidates(&[], &answers)).len(), 2);
    }

    #[test]
    fn a_guest_moved_in_its_cluster_is_restored_where_it_is_and_shared_backups_follow() {
        let members = ["pve-lab", "pve-mon"];
        let mut lab = seen("pve-lab", "lab", &members, Some("pve-mon"));
        lab.backups.push(backup("nas"));
        lab.shared.insert("nas".into());
        let mut mon = seen("pve-mon", "monitoring", &members, Some("pve-mon"));
        mon.backups.push(backup("nas"));
        mon.shared.insert("nas".into());
        let c = candidates(
            &[("lab".into(), "pve-lab".into())],
            &[Answer::Seen(lab.clone()), Answer::Seen(mon)],
        );
        assert_eq!(nodes(&c), ["lab/pve-mon, monitoring/pve-mon"]);
        // Backups on the old member's own storage are not reachable from the new one: both are named.
        lab.shared.clear();
        let c = candidates(&[("lab".into(), "pve-lab".into())], &[Answer::Seen(lab)]);
        assert_eq!(c.len(), 2, "{c:?}");
    }

    #[test]
    fn nowhere_is_empty() {
        assert!(candidates(&[], &[Answer::Seen(seen("pve", "prod", &["pve"], None))]).is_empty());
    }
}
