//! The Proxmox node as a restore sees it: typed `pvesh get` queries (read-only, retried on transient SSH
//! failures) and the few state-changing commands, each built from validated values only.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use pve_common::pve::{
    self, BackupContent, ClusterResource, GuestConfig, GuestStatus, GuestType, StorageStatus,
};
use pve_ssh::{LineSink, RemoteCommand, SshClient, SshOutput};
use serde::de::DeserializeOwned;

/// One backup found on the node.
#[derive(Debug, Clone)]
pub struct Backup {
    /// The storage holding it.
    pub storage: String,
    /// VM or container (from subtype, else from the volume name).
    pub guest_type: GuestType,
    /// The listing entry.
    pub content: BackupContent,
}

/// A connected node.
pub struct Node<'r> {
    /// The SSH session.
    pub ssh: SshClient<'r>,
    /// The node name.
    pub name: String,
}

impl<'r> Node<'r> {
    /// Runs `pvesh get <path> <args> --output-format json` and decodes the answer.
    pub fn get<T: DeserializeOwned>(&mut self, path: &str, args: &[&str]) -> anyhow::Result<T> {
        let cmd = RemoteCommand::read_only("pvesh")
            .arg("get")
            .arg(path)
            .args(args.iter().copied())
            .args(["--output-format", "json"])
            .idempotent()
            .timeout(Duration::from_secs(120));
        let out = self
            .ssh
            .ssh_exec_retry(&cmd)?
            .context("a read-only query was skipped")?;
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("decoding the answer of `pvesh get {path}`"))
    }

    /// Runs a read-only command (retried on transient failures) and returns its stdout.
    pub fn read(&mut self, cmd: RemoteCommand) -> anyhow::Result<String> {
        let out = self
            .ssh
            .ssh_exec_retry(&cmd.idempotent())?
            .context("a read-only query was skipped")?;
        Ok(out.stdout_text())
    }

    /// The node's UTC offset (`date +%z`), for showing and choosing backup times as Proxmox does.
    pub fn utc_offset(&mut self) -> anyhow::Result<jiff::tz::Offset> {
        let text = self.read(RemoteCommand::read_only("date").arg("+%z"))?;
        parse_offset(text.trim()).with_context(|| format!("unexpected `date +%z` output '{text}'"))
    }

    /// Every storage that holds backups (enabled ones).
    pub fn backup_storages(&mut self) -> anyhow::Result<Vec<StorageStatus>> {
        let path = format!("/nodes/{}/storage", self.name);
        let list: Vec<StorageStatus> = self.get(&path, &["--content", "backup"])?;
        // Every field has a default (inactive storages omit most): an entry without a valid id means the
        // answer is not a storage listing, which must not read as "no backups anywhere".
        if let Some(bad) = list
            .iter()
            .find(|s| pve::validate_storage_id(&s.storage).is_err())
        {
            anyhow::bail!(
                "unexpected answer of `pvesh get {path}`: an entry without a valid storage id ('{}')",
                bad.storage
            );
        }
        Ok(list.into_iter().filter(|s| s.enabled).collect())
    }

    /// The backups of `vmid` on `storage`.
    pub fn backups_on(&mut self, storage: &str, vmid: u32) -> anyhow::Result<Vec<Backup>> {
        let path = format!("/nodes/{}/storage/{storage}/content", self.name);
        let id = vmid.to_string();
        let list: Vec<BackupContent> = self.get(&path, &["--content", "backup", "--vmid", &id])?;
        let now = jiff::Timestamp::now().as_second();
        Ok(list
            .into_iter()
            .filter(|c| c.guest_id() == Some(vmid))
            // A backup "from the future" would be taken for the newest; one whose vmid and name disagree
            // may be another guest's.
            .filter(|c| match c.problem(now) {
                None => true,
                Some(problem) => {
                    pve_common::warn!("skipping a backup the node listed: {problem}");
                    false
                }
            })
            .filter(|c| match pve::Volid::parse(&c.volid) {
                Ok(_) => true,
                Err(e) => {
                    pve_common::warn!("skipping a backup the node listed: {e}");
                    false
                }
            })
            .filter_map(|c| {
                Some(Backup {
                    storage: storage.to_owned(),
                    guest_type: c.guest_type()?,
                    content: c,
                })
            })
            .collect())
    }

    /// The backups of `vmid` on every active backup storage, newest first.
    pub fn all_backups(&mut self, vmid: u32) -> anyhow::Result<Vec<Backup>> {
        let mut all = Vec::new();
        for s in self.backup_storages()? {
            if !s.active {
                pve_common::warn!(
                    "storage {} is not active: its backups are not listed",
                    s.storage
                );
                continue;
            }
            all.extend(self.backups_on(&s.storage, vmid)?);
        }
        newest_first(&mut all);
        Ok(all)
    }

    /// The backups of `vmid` on one storage (`--storage`), newest first.
    pub fn backups_sorted(&mut self, storage: &str, vmid: u32) -> anyhow::Result<Vec<Backup>> {
        let mut all = self.backups_on(storage, vmid)?;
        newest_first(&mut all);
        Ok(all)
    }

    /// `/nodes/{node}/storage/{s}/status`; `None` when the storage does not exist.
    pub fn storage_status(&mut self, storage: &str) -> anyhow::Result<Option<StorageStatus>> {
        let path = format!("/nodes/{}/storage/{storage}/status", self.name);
        match self.get::<StorageStatus>(&path, &[]) {
            Ok(s) => Ok(Some(s)),
            Err(e) if format!("{e:#}").contains("does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The cluster's guest with id `vmid`, if any.
    pub fn find_guest(&mut self, vmid: u32) -> anyhow::Result<Option<ClusterResource>> {
        let list: Vec<ClusterResource> = self.get("/cluster/resources", &["--type", "vm"])?;
        Ok(list.into_iter().find(|r| r.vmid == Some(vmid)))
    }

    /// Status of a guest on this node.
    pub fn guest_status(&mut self, kind: GuestType, vmid: u32) -> anyhow::Result<GuestStatus> {
        let path = format!("/nodes/{}/{kind}/{vmid}/status/current", self.name);
        self.get(&path, &[])
    }

    /// Config of a guest on this node.
    pub fn guest_config(&mut self, kind: GuestType, vmid: u32) -> anyhow::Result<GuestConfig> {
        let path = format!("/nodes/{}/{kind}/{vmid}/config", self.name);
        let v: serde_json::Value = self.get(&path, &[])?;
        Ok(pve::guest_config(&v))
    }

    /// Runs a state-changing command once (never retried), streaming its output lines: on a terminal as
    /// progress with the elapsed time, else at debug level. `None` in dry-run.
    pub fn mutate(&mut self, cmd: &RemoteCommand, progress: bool) -> anyhow::Result<Option<Run>> {
        let started = Instant::now();
        let tty = progress && std::io::stderr().is_terminal();
        let mut lines = Vec::new();
        let out: Option<SshOutput> = {
            let mut sink = LineSink::new(|line: &str| {
                if tty {
                    pve_common::info!("[{:>4}s] {line}", started.elapsed().as_secs());
                } else {
                    pve_common::debug!("{line}");
                }
                lines.push(line.to_owned());
            });
            let r = self.ssh.ssh_exec_stream(cmd, &mut sink);
            sink.finish();
            r?
        };
        Ok(out.map(|o| Run {
            warnings: task_warnings(&lines, &o.stderr_text()),
            lines,
            elapsed: started.elapsed(),
        }))
    }
}

fn newest_first(all: &mut [Backup]) {
    all.sort_by(|a, b| {
        b.content
            .ctime
            .cmp(&a.content.ctime)
            .then_with(|| a.content.volid.cmp(&b.content.volid))
    });
}

/// What a state-changing command printed.
#[derive(Debug, Clone)]
pub struct Run {
    /// stdout lines.
    pub lines: Vec<String>,
    /// WARN lines and the `TASK WARNINGS: N` count.
    pub warnings: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// The warnings of a Proxmox task: `WARN:`/`warning:` lines and `TASK WARNINGS: N`; when the task counted
/// warnings, its stderr lines too (that is where qmrestore and pct restore print them).
pub fn task_warnings(lines: &[String], stderr: &str) -> Vec<String> {
    let is_warning = |l: &str| {
        let l = l.trim_start();
        l.starts_with("WARN") || l.starts_with("warning:") || l.starts_with("TASK WARNINGS:")
    };
    let counted = lines
        .iter()
        .any(|l| l.trim_start().starts_with("TASK WARNINGS:"));
    let mut out: Vec<String> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| is_warning(l))
        .chain(
            stderr
                .lines()
                .filter(|l| !l.trim().is_empty() && (counted || is_warning(l))),
        )
        .map(|l| l.trim().to_owned())
        .collect();
    out.dedup();
    out
}

/// Parses `+0100`, `-0530`, `Z`.
pub fn parse_offset(text: &str) -> Option<jiff::tz::Offset> {
    if text == "Z" || text == "+0000" {
        return Some(jiff::tz::Offset::UTC);
    }
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits = digits.replace(':', "");
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// Finds the guest's IPv4/IPv6 address in its config: `ipconfig0` (cloud-init) or `net0` (`ip=` of a
/// container). DHCP and manual entries give none.
pub fn ip_from_config(config: &GuestConfig) -> Option<std::net::IpAddr> {
    for key in ["ipconfig0", "net0"] {
        let Some(v) = config.get(key) else { continue };
        for part in v.split(',') {
            let Some(addr) = part.trim().strip_prefix("ip=") else {
                continue;
            };
            let addr = addr.split('/').next().unwrap_or_default();
            if let Ok(ip) = addr.parse() {
                return Some(ip);
            }
        }
    }
    None
}

/// Parses `qm guest cmd <id> network-get-interfaces` JSON: the first non-loopback address.
pub fn ip_from_agent(json: &str) -> Option<std::net::IpAddr> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut fallback = None;
    for iface in v.as_array()? {
        for a in iface.get("ip-addresses")?.as_array()? {
            let Some(ip) = a
                .get("ip-address")
                .and_then(|x| x.as_str())
                .and_then(|s| s.parse::<std::net::IpAddr>().ok())
            else {
                continue;
            };
            if ip.is_loopback() {
                fallback.get_or_insert(ip);
            } else {
                return Some(ip);
            }
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+0000"), Some(jiff::tz::Offset::UTC));
        assert_eq!(parse_offset("+0130").map(|o| o.seconds()), Some(5400));
        assert_eq!(parse_offset("-0500").map(|o| o.seconds()), Some(-18000));
        assert_eq!(parse_offset("x"), None);
    }

    #[test]
    fn ips() {
        let mut c = GuestConfig::new();
        c.insert("net0".into(), "name=eth0,bridge=vmbr0,ip=dhcp".into());
        assert_eq!(ip_from_config(&c), None);
        c.insert("ipconfig0".into(), "ip=127.0.0.1/8,gw=127.0.0.1".into());
        assert_eq!(ip_from_config(&c), Some("127.0.0.1".parse().unwrap()));
        let agent = r#"[{"name":"lo","ip-addresses":[{"ip-address":"127.0.0.1"}]},
            {"name":"eth0","ip-addresses":[{"ip-address":"192.0.2.5"}]}]"#;
        assert_eq!(ip_from_agent(agent), Some("192.0.2.5".parse().unwrap()));
    }

    #[test]
    fn warnings() {
        let lines = vec!["progress 50%".to_owned(), "TASK WARNINGS: 1".to_owned()];
        assert_eq!(
            task_warnings(&lines, "WARN: no lock\n"),
            vec!["TASK WARNINGS: 1", "WARN: no lock"]
        );
    }
}
