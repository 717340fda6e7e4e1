//! The Proxmox node, over one SSH session for the whole run: the inventory through `pvesh`, and in
//! remote mode the archive checks with the node's own tools (`stat`, `zstd -t`, `vma verify`, `tar`,
//! `sha256sum`). Every command is read-only.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use pve_common::pve::{BackupContent, ClusterResource};
use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshError, SshOutput};
use serde_json::Value;

use crate::archive::Outcome;
use crate::full::Reach;
use crate::pve::{Backup, Compression, Container, Guest, Storage};

/// What the node has.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Guests of the cluster (of the node asked for, when one was).
    pub guests: Vec<Guest>,
    /// Every guest of the cluster, on whichever member holds it, by VMID.
    pub cluster_guests: BTreeMap<u32, Guest>,
    /// Storages holding backups, by id (shared ones once).
    pub storages: BTreeMap<String, Storage>,
    /// Every backup, by volid (shared storages listed once).
    pub backups: Vec<Backup>,
    /// Problems met while listing (a storage that could not be listed...).
    pub problems: Vec<String>,
    /// The node (or host) the inventory is of, for report lines.
    pub node_label: String,
}

/// The node connection.
pub struct Node<'r> {
    ssh: SshClient<'r>,
}

fn output(out: Option<SshOutput>) -> SshOutput {
    // Read-only commands always run, even in dry-run mode.
    out.unwrap_or(SshOutput {
        exit_status: 0,
        exit_signal: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
    })
}

impl<'r> Node<'r> {
    /// Connects, retrying transient failures (refused, reset, handshake) up to 3 times: a node that
    /// refuses one connection must not fail the whole run.
    pub fn connect(
        runner: &'r Runner,
        target: &pve_ssh::SshTarget,
        options: pve_ssh::SshOptions,
    ) -> Result<Node<'r>, SshError> {
        let mut ssh = SshClient::new(runner, target, options)?;
        ssh.check_ssh_access()?;
        Ok(Node { ssh })
    }

    /// Where the node is, for messages.
    pub fn describe(&self) -> String {
        self.ssh.endpoint().to_string()
    }

    fn pvesh(&mut self, path: &str, args: &[&str]) -> Result<Value> {
        let cmd = RemoteCommand::read_only("pvesh")
            .arg("get")
            .arg(path)
            .args(args.iter().copied())
            .arg("--output-format")
            .arg("json")
            // A pvesh that ran and failed (no such storage, permission) says the same thing every time;
            // only transport failures are worth another attempt.
            .failure_is_final();
        let out = output(self.ssh.ssh_exec_retry(&cmd)?);
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("`pvesh get {path}` printed no JSON"))
    }

    /// Lists guests, backup storages and backups: of node `only_node` when given (else of every node
    /// the host knows), on storage `only_storage` when given (else every backup storage).
    pub fn inventory(
        &mut self,
        only_node: Option<&str>,
        only_storage: Option<&str>,
    ) -> Result<Inventory> {
        let mut inv = Inventory {
            node_label: only_node.map_or_else(|| self.describe(), str::to_owned),
            ..Inventory::default()
        };
        let resources = self.pvesh("/cluster/resources", &["--type", "vm"])?;
        inv.guests = resources
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| serde_json::from_value::<ClusterResource>(v.clone()).ok())
                    .filter_map(|r| Guest::from_resource(&r))
                    .collect()
            })
            .unwrap_or_default();
        inv.cluster_guests = inv.guests.iter().map(|g| (g.vmid, g.clone())).collect();
        if let Some(n) = only_node {
            inv.guests.retain(|g| g.node == n);
        }
        inv.guests.sort_by_key(|g| g.vmid);
        let nodes = self.online_nodes(only_node)?;
        let mut seen_volids = std::collections::BTreeSet::new();
        for node in &nodes {
            let list = self.pvesh(&format!("/nodes/{node}/storage"), &["--content", "backup"])?;
            for s in list
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| serde_json::from_value::<Storage>(v.clone()).ok())
                        .filter(|s| !s.storage.is_empty())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
            {
                if only_storage.is_some_and(|o| o != s.storage) {
                    continue;
                }
                if s.shared && inv.storages.contains_key(&s.storage) {
                    continue;
                }
                if !s.active {
                    inv.problems.push(format!(
                        "storage {} is not active on node {node}",
                        s.storage
                    ));
                    continue;
                }
                if self.list_backups(node, &s, &mut inv, &mut seen_volids) {
                    inv.storages.insert(s.storage.clone(), s);
                }
            }
        }
        if let Some(o) = only_storage
            && !inv.storages.contains_key(o)
            && !inv.problems.iter().any(|p| p.contains(o))
        {
            inv.problems.push(format!(
                "no active backup storage `{o}` on {} (--storage)",
                inv.node_label
            ));
        }
        inv.backups.sort_by(|a, b| a.volid.cmp(&b.volid));
        Ok(inv)
    }

    /// The host's online nodes, or only `only_node` (an error when it is not one of them).
    fn online_nodes(&mut self, only_node: Option<&str>) -> Result<Vec<String>> {
        let nodes = self.pvesh("/nodes", &[])?;
        let nodes: Vec<String> = nodes
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n.get("status").and_then(Value::as_str) != Some("offline"))
                    .filter_map(|n| n.get("node").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(match only_node {
            None => nodes,
            Some(n) if nodes.iter().any(|x| x == n) => vec![n.to_owned()],
            Some(n) => anyhow::bail!(
                "{} knows no online node `{n}` (its nodes: {})",
                self.describe(),
                nodes.join(", ")
            ),
        })
    }

    /// The backups of storage `s` on `node`, into `inv`; false when the storage could not be listed. An entry that cannot be read, names two guests,
    /// or has an impossible time is reported, never silently dropped nor trusted: either would change
    /// what counts as backed up.
    fn list_backups(
        &mut self,
        node: &str,
        s: &Storage,
        inv: &mut Inventory,
        seen_volids: &mut std::collections::BTreeSet<String>,
    ) -> bool {
        let content = match self.pvesh(
            &format!("/nodes/{node}/storage/{}/content", s.storage),
            &["--content", "backup"],
        ) {
            Ok(c) => c,
            Err(e) => {
                inv.problems.push(format!(
                    "cannot list backups of storage {} on node {node}: {e:#}",
                    s.storage
                ));
                return false;
            }
        };
        let now = jiff::Timestamp::now().as_second();
        let Some(entries) = content.as_array() else {
            inv.problems.push(format!(
                "the backup listing of storage {} on node {node} is not a list",
                s.storage
            ));
            return false;
        };
        for (i, v) in entries.iter().enumerate() {
            let c = match serde_json::from_value::<BackupContent>(v.clone()) {
                Ok(c) => c,
                Err(e) => {
                    let volid = v.get("volid").and_then(Value::as_str).unwrap_or("?");
                    inv.problems.push(format!(
                        "storage {} on node {node}: entry {} ({volid}) of the backup listing cannot be read: {e}",
                        s.storage,
                        i + 1
                    ));
                    continue;
                }
            };
            if let Some(problem) = c.problem(now) {
                inv.problems.push(format!(
                    "storage {} on node {node}: {problem}; the backup is not counted",
                    s.storage
                ));
                continue;
            }
            let Some(b) = Backup::from_content(&s.storage, &c) else {
                inv.problems.push(format!(
                    "storage {} on node {node}: {} names no guest",
                    s.storage, c.volid
                ));
                continue;
            };
            if seen_volids.insert(b.volid.clone()) {
                inv.backups.push(b);
            }
        }
        true
    }

    /// The dump folder of a file storage on the node (`path` of its configuration plus `/dump`).
    pub fn dump_dir(&mut self, storage: &str) -> Result<String> {
        let cfg = self.pvesh(&format!("/storage/{storage}"), &[])?;
        let path = cfg
            .get("path")
            .and_then(Value::as_str)
            .with_context(|| format!("storage {storage} has no `path` in its configuration"))?;
        Ok(format!("{}/dump", path.trim_end_matches('/')))
    }

    /// The cluster's vzdump jobs (`pvesh get /cluster/backup`), as the API lists them.
    pub fn backup_jobs(&mut self) -> Result<Vec<Value>> {
        match self.pvesh("/cluster/backup", &[])? {
            Value::Array(jobs) => Ok(jobs),
            other => anyhow::bail!("`pvesh get /cluster/backup` printed {other} instead of a list"),
        }
    }

    /// Whether a running guest answers: a VM through its QEMU guest agent (`qm guest cmd <vmid> ping`), a
    /// container by running `true` in it (`pct exec <vmid> -- true`). Returns the command and the answer.
    pub fn reach(&mut self, kind: &str, vmid: u32) -> Result<(String, Reach), SshError> {
        let id = vmid.to_string();
        let cmd = if kind == "lxc" {
            RemoteCommand::read_only("pct")
                .arg("exec")
                .arg(&id)
                .arg("--")
                .arg("true")
        } else {
            RemoteCommand::read_only("qm")
                .arg("guest")
                .arg("cmd")
                .arg(&id)
                .arg("ping")
        };
        let shown = if kind == "lxc" {
            format!("pct exec {vmid} -- true")
        } else {
            format!("qm guest cmd {vmid} ping")
        };
        let out = self.run(cmd)?;
        let stderr = out.stderr_text();
        let reach = if out.success() {
            Reach::Answers
        } else if stderr.contains("No QEMU guest agent configured") {
            Reach::NoAgent
        } else {
            Reach::Silent(excerpt(&stderr, &out.describe_status()))
        };
        Ok((shown, reach))
    }

    fn run(&mut self, cmd: RemoteCommand) -> Result<SshOutput, SshError> {
        Ok(output(self.ssh.ssh_exec_unchecked(&cmd.idempotent())?))
    }

    /// The size of a file on the node, `None` when it does not exist.
    pub fn file_size(&mut self, path: &str) -> Result<Option<u64>, SshError> {
        let out = self.run(
            RemoteCommand::read_only("stat")
                .arg("-L")
                .arg("-c")
                .arg("%s")
                .arg("--")
                .arg(path),
        )?;
        Ok(if out.success() {
            out.stdout_text().trim().parse().ok()
        } else {
            None
        })
    }

    /// A (small) text file of the node, `None` when it cannot be read.
    pub fn read_text(&mut self, path: &str) -> Result<Option<String>, SshError> {
        let out = self.run(RemoteCommand::read_only("cat").arg("--").arg(path))?;
        Ok(out.success().then(|| out.stdout_text()))
    }

    /// SHA-256 of a file on the node.
    pub fn sha256(&mut self, path: &str) -> Result<Option<String>, SshError> {
        let out = self.run(RemoteCommand::read_only("sha256sum").arg("--").arg(path))?;
        Ok(if out.success() {
            out.stdout_text()
                .split_whitespace()
                .next()
                .map(str::to_ascii_lowercase)
        } else {
            None
        })
    }

    /// Integrity of an archive with the node's tools: the compression layer (`zstd -t`, `gzip -t`,
    /// `lzop -t`), then the content (`... -dc | vma verify -`, or `... -dc | tar -tf -` looking for
    /// `etc/vzdump/pct.conf`).
    pub fn integrity(
        &mut self,
        path: &str,
        container: Container,
        compression: Compression,
    ) -> Result<(Outcome, Outcome), SshError> {
        let decompress: &[&str] = match compression {
            Compression::Zstd => &["zstd", "-q", "-dc", "--"],
            Compression::Gzip => &["gzip", "-dc", "--"],
            Compression::Lzo => &["lzop", "-dc", "--"],
            Compression::None => &["cat", "--"],
        };
        let compression_outcome = match compression {
            Compression::None => Outcome::Skipped("not compressed".into()),
            _ => {
                let (prog, test): (&str, &[&str]) = match compression {
                    Compression::Zstd => ("zstd", &["-q", "-t", "--"]),
                    Compression::Gzip => ("gzip", &["-t", "--"]),
                    _ => ("lzop", &["-t", "--"]),
                };
                let out = self.run(
                    RemoteCommand::read_only(prog)
                        .args(test.iter().copied())
                        .arg(path),
                )?;
                match out.exit_status {
                    0 => Outcome::Ok(format!("{prog} -t: stream and checksum sound")),
                    127 => Outcome::Skipped(format!("{prog} is not installed on the node")),
                    _ => Outcome::Failed(format!(
                        "{prog} -t: {}",
                        excerpt(&out.stderr_text(), &out.describe_status())
                    )),
                }
            }
        };
        // `script` gets the archive as $1 and the decompressor's command line after it.
        let piped = |script: &str| {
            RemoteCommand::read_only("sh")
                .arg("-c")
                .arg(script)
                .arg("sh")
                .arg(path)
                .args(decompress.iter().copied())
        };
        let content = match container {
            Container::Vma => {
                // `vma verify` reads a stream on stdin as `-`; its exit status is the pipeline's.
                let script = "command -v vma >/dev/null 2>&1 || exit 127; f=$1; shift; \"$@\" \"$f\" | vma verify -";
                let out = self.run(piped(script))?;
                match out.exit_status {
                    0 => Outcome::Ok("vma verify: archive sound".into()),
                    127 => Outcome::Skipped("vma is not installed on the node".into()),
                    _ => Outcome::Failed(format!(
                        "vma verify: {}",
                        excerpt(&out.stderr_text(), &out.describe_status())
                    )),
                }
            }
            Container::Tar => {
                let script = "f=$1; shift; { \"$@\" \"$f\" | tar -tf - ; echo \"tar-exit $?\"; } | \
                              awk '/^tar-exit /{print; next} {n++} /^(\\.\\/)?etc\\/vzdump\\/pct\\.conf$/{c=1} \
                              END{print \"members \" n+0; print \"pct.conf \" c+0}'";
                let out = self.run(piped(script))?;
                let text = out.stdout_text();
                let field = |k: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
                };
                let tar_exit = field("tar-exit ");
                let members = field("members ").unwrap_or_default();
                match (tar_exit.as_deref(), field("pct.conf ").as_deref()) {
                    (Some("0"), Some("1")) => Outcome::Ok(format!(
                        "{members} tar members, etc/vzdump/pct.conf present"
                    )),
                    (Some("0"), _) => Outcome::Failed(format!(
                        "tar of {members} members has no etc/vzdump/pct.conf (not a container backup)"
                    )),
                    _ => Outcome::Failed(format!(
                        "tar: {}",
                        excerpt(&out.stderr_text(), "the listing failed")
                    )),
                }
            }
        };
        Ok((compression_outcome, content))
    }
}

fn excerpt(stderr: &str, fallback: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        fallback.to_owned()
    } else {
        lines[lines.len().saturating_sub(2)..].join("; ")
    }
}
