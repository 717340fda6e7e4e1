//! With no node given, the node VMID is restored on or listed from: the homelab's environments are read
//! (their Terraform states say which one manages VMID) and their nodes asked in parallel
//! ([`pve_restore::locate`]). One node: there. Several: a usage error naming each environment/node, so the
//! operator chooses with --node or --env. None: the default node, as without a homelab.
//!
//! A dry-run contacts nothing: only local states are read and no node is asked.

use std::collections::BTreeSet;

use anyhow::bail;
use pve_common::exit::UsageError;
use pve_restore::BackupInfo;
use pve_restore::locate::{self, Answer, Candidate, Place};
use pve_ssh::node::NodeAccess;

use crate::config::{Config, Lookup};

/// Where the run goes.
#[derive(Debug, Clone)]
pub struct Found {
    /// How to reach the node.
    pub access: NodeAccess,
    /// The environment that manages VMID there, else the node's only environment.
    pub environment: Option<String>,
}

/// One backup of a listing across nodes.
#[derive(Debug, Clone)]
pub struct NodeBackup {
    /// The node holding it.
    pub node: String,
    /// The environment that manages VMID on that node, else the node's only environment.
    pub environment: Option<String>,
    /// The backup.
    pub backup: BackupInfo,
}

/// What the homelab says about VMID: the environments managing it and every node's answer.
struct Survey {
    owners: Vec<(String, String)>,
    answers: Vec<Answer>,
}

fn survey(cfg: &Config, lookup: &Lookup) -> anyhow::Result<Survey> {
    let vmid = cfg.restore.vmid;
    let owner_envs = pve_tf::fleet::owners(
        &lookup.fleet,
        vmid,
        cfg.restore.offline,
        "its guests are not known",
    );
    let owners: Vec<(String, String)> = owner_envs
        .iter()
        .filter_map(|e| Some((e.env.clone(), e.node.clone()?)))
        .collect();
    if cfg.restore.offline {
        return Ok(Survey {
            owners,
            answers: Vec::new(),
        });
    }
    let mut places: Vec<Place> = Vec::new();
    for e in &lookup.fleet.envs {
        let Some(node) = &e.node else { continue };
        match places.iter_mut().find(|p| &p.node == node) {
            Some(p) => p.envs.push(e.env.clone()),
            None => places.push(Place {
                node: node.clone(),
                envs: vec![e.env.clone()],
                access: lookup.access(node)?,
            }),
        }
    }
    pve_common::info!(
        "no node given: asking {} for VMID {vmid}",
        places
            .iter()
            .map(|p| p.node.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let answers = locate::ask(
        &places,
        vmid,
        cfg.restore.backup_storage.as_deref(),
        cfg.restore.dry_run,
    );
    for a in &answers {
        match a {
            Answer::Down { node, envs, error } => pve_common::warn!(
                "node {node} (environment {}) cannot be asked: {error}",
                envs.join(", ")
            ),
            Answer::Seen(s) => {
                if let Some(p) = &s.listing_problem {
                    pve_common::warn!("node {}: its backups cannot be listed: {p}", s.node);
                }
            }
        }
    }
    Ok(Survey { owners, answers })
}

/// The environment of VMID on `node`: the one managing it there or on another member of `node`'s cluster
/// (a guest moves between members), else the node's only environment.
fn environment_of(survey: &Survey, lookup: &Lookup, node: &str) -> Option<String> {
    let members = survey
        .answers
        .iter()
        .find_map(|a| match a {
            Answer::Seen(s) if s.node == node => Some(s.members.clone()),
            _ => None,
        })
        .unwrap_or_default();
    if let Some((e, _)) = survey
        .owners
        .iter()
        .find(|(_, n)| n == node)
        .or_else(|| survey.owners.iter().find(|(_, n)| members.contains(n)))
    {
        return Some(e.clone());
    }
    let of_node: Vec<&str> = lookup.fleet.on_node(node).map(|e| e.env.as_str()).collect();
    match of_node.as_slice() {
        [one] => Some((*one).to_owned()),
        _ => None,
    }
}

/// The node to restore VMID on (see the module's rule).
pub fn find(cfg: &Config, lookup: &Lookup) -> anyhow::Result<Found> {
    let vmid = cfg.restore.vmid;
    let survey = survey(cfg, lookup)?;
    let candidates: Vec<Candidate> = if cfg.restore.offline {
        let mut c: Vec<Candidate> = Vec::new();
        for (env, node) in &survey.owners {
            match c.iter_mut().find(|c| &c.node == node) {
                Some(c) => c.envs.push(env.clone()),
                None => c.push(Candidate {
                    node: node.clone(),
                    envs: vec![env.clone()],
                }),
            }
        }
        c
    } else {
        locate::candidates(&survey.owners, &survey.answers)
    };
    match candidates.as_slice() {
        [one] => {
            let environment = environment_of(&survey, lookup, &one.node);
            pve_common::info!(
                "VMID {vmid}: {} node {}",
                match &environment {
                    Some(e) if survey.owners.iter().any(|(o, _)| o == e) =>
                        format!("managed by environment {e}, on"),
                    Some(e) => format!("found on environment {e}'s"),
                    None => "found on".to_owned(),
                },
                one.node
            );
            Ok(Found {
                access: lookup.access(&one.node)?,
                environment,
            })
        }
        [] => {
            let only_env = lookup.env.as_ref().and_then(|name| {
                lookup
                    .fleet
                    .envs
                    .iter()
                    .find(|e| &e.env == name)
                    .and_then(|e| e.node.clone())
            });
            if let Some(node) = only_env {
                return Ok(Found {
                    access: lookup.access(&node)?,
                    environment: lookup.env.clone(),
                });
            }
            match &lookup.fallback {
                Ok(a) => {
                    pve_common::info!(
                        "VMID {vmid}: no environment manages it and no node of the homelab holds it or \
                         a backup of it; trying the default node {}",
                        a.node.as_deref().unwrap_or(&a.host)
                    );
                    Ok(Found {
                        access: a.clone(),
                        environment: None,
                    })
                }
                Err(e) => bail!(UsageError(format!(
                    "VMID {vmid}: no environment manages it and no node of the homelab holds it or a \
                     backup of it, and there is no default node: {e}"
                ))),
            }
        }
        several => Err(UsageError(crate::words::several_nodes(
            vmid,
            &several
                .iter()
                .map(Candidate::label)
                .collect::<Vec<_>>()
                .join("; "),
        ))
        .into()),
    }
}

/// `--list` with no node: VMID's backups on every node that has any, newest first; a backup on storage
/// shared by cluster members is listed once. A dry-run lists nothing (it shows no query either: nothing
/// would be contacted but the nodes, which `--dry-run` never does).
pub fn list(cfg: &Config, lookup: &Lookup) -> anyhow::Result<Vec<NodeBackup>> {
    let survey = survey(cfg, lookup)?;
    let mut shared_seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut seen: Vec<&locate::Seen> = survey
        .answers
        .iter()
        .filter_map(|a| match a {
            Answer::Seen(s) => Some(s),
            Answer::Down { .. } => None,
        })
        .collect();
    seen.sort_by(|a, b| a.node.cmp(&b.node));
    for s in seen {
        for b in &s.backups {
            if s.shared.contains(&b.storage)
                && !shared_seen.insert((b.storage.clone(), b.volid.clone()))
            {
                continue;
            }
            out.push(NodeBackup {
                node: s.node.clone(),
                environment: environment_of(&survey, lookup, &s.node),
                backup: b.clone(),
            });
        }
    }
    out.sort_by(|a, b| {
        b.backup
            .ctime
            .cmp(&a.backup.ctime)
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.backup.volid.cmp(&b.backup.volid))
    });
    Ok(out)
}
