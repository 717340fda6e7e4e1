//! The state directory of the simulated node (`tests/testbed/SIM-STATE.md`): typed access to
//! `node.json`, `storage.json`, `guests/<vmid>.json`, backups under `storage/<id>/dump/` and
//! `pbs.json`, the journal and the fault knobs, with the `flock` on `state.lock` that every reader
//! and writer takes around a read-modify-write.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{conf, fixtures};

/// `node.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeInfo {
    /// Node name, e.g. `pve`.
    pub node: String,
    /// pve-manager version, e.g. `8.3.2`.
    pub version: String,
    /// Release, e.g. `8.3`.
    pub release: String,
    /// Repository id.
    pub repoid: String,
    /// Time zone of the node (only `UTC` is supported).
    pub timezone: String,
    /// CPU count.
    pub cpus: u32,
    /// Memory in bytes.
    pub maxmem: u64,
}

fn one() -> u8 {
    1
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One entry of `storage.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StorageDef {
    /// Storage id, e.g. `local`.
    pub storage: String,
    /// `dir`, `lvmthin`, `zfspool`, `nfs` or `pbs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Content types, comma-separated (`iso,vztmpl,backup`, `images,rootdir`).
    pub content: String,
    /// Directory holding the files (`dump/` for backups); defaults to `<state>/storage/<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Capacity in bytes.
    pub total: u64,
    /// 1 when enabled.
    #[serde(default = "one")]
    pub enabled: u8,
    /// 1 when active.
    #[serde(default = "one")]
    pub active: u8,
    /// 1 when shared.
    #[serde(default)]
    pub shared: u8,
    /// Bytes used besides files (guest disks on thin pools).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub used_extra: u64,
    /// Fields this simulator does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StorageDef {
    /// A storage with defaults (enabled, active, not shared).
    pub fn new(storage: &str, kind: &str, content: &str, total: u64) -> Self {
        StorageDef {
            storage: storage.into(),
            kind: kind.into(),
            content: content.into(),
            path: None,
            total,
            enabled: 1,
            active: 1,
            shared: 0,
            used_extra: 0,
            extra: Map::new(),
        }
    }

    /// True when `content` lists `what`.
    pub fn has_content(&self, what: &str) -> bool {
        self.content.split(',').any(|c| c.trim() == what)
    }
}

/// `qemu` or `lxc`: pve-common's type, the one the tools use. The strings the simulator writes with it
/// (`type` in guest files and API answers, `VM`/`CT` in messages) are Proxmox's, pinned by
/// `tests::guest_type_writes_proxmox_strings`: a wrong string in pve-common fails that test instead of
/// being echoed by the simulator to the tools that would read it back.
pub use pve_common::pve::GuestType;

/// `guests/<vmid>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Guest {
    /// Guest id.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: GuestType,
    /// Node name.
    pub node: String,
    /// `running` or `stopped`.
    pub status: String,
    /// True for a template.
    #[serde(default)]
    pub template: bool,
    /// Lock name or null.
    #[serde(default)]
    pub lock: Option<String>,
    /// Config keys as `qm config` / `pct config` print them (numbers and booleans written by other
    /// tools are read as their text).
    #[serde(default, deserialize_with = "string_map")]
    pub config: BTreeMap<String, String>,
    /// Snapshot names.
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// Set by the test provider for clones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<u32>,
    /// Simulator extension: approximate size in bytes of the archive `vzdump` writes for this
    /// guest (default 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_size: Option<u64>,
    /// Fields this simulator does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Guest {
    /// A stopped guest with the given config.
    pub fn new(vmid: u32, kind: GuestType, node: &str, config: &[(&str, &str)]) -> Self {
        Guest {
            vmid,
            kind,
            node: node.into(),
            status: "stopped".into(),
            template: false,
            lock: None,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            snapshots: Vec::new(),
            clone_of: None,
            backup_size: None,
            extra: Map::new(),
        }
    }

    /// `name` (VM) or `hostname` (CT).
    pub fn name(&self) -> String {
        let key = if self.kind == GuestType::Qemu {
            "name"
        } else {
            "hostname"
        };
        self.config
            .get(key)
            .cloned()
            .unwrap_or_else(|| format!("{}{}", self.kind.label(), self.vmid))
    }

    /// True when `protection: 1`.
    pub fn protected(&self) -> bool {
        self.config.get("protection").is_some_and(|v| v == "1")
    }
}

fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, Value> = BTreeMap::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Bool(b) => u8::from(b).to_string(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((k, text))
        })
        .collect())
}

/// A backup found on a storage (file or PBS entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupEntry {
    /// Volume id, e.g. `local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst`.
    pub volid: String,
    /// Guest id.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    pub subtype: String,
    /// Backup time, seconds since the epoch.
    pub ctime: i64,
    /// Size in bytes.
    pub size: u64,
    /// `vma.zst`, `tar.zst`, `pbs-vm`, `pbs-ct`...
    pub format: String,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Protected flag.
    #[serde(default)]
    pub protected: bool,
    /// PBS verification state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Value>,
    /// File path (file backups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// PBS only, simulator extension: the guest config to restore from this snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Fields this simulator does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `faults.json` (`fail` entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailFault {
    /// Word prefix of the command line: `qmrestore`, `qm start`, `pvesh get /nodes/pve/storage`.
    pub command: String,
    /// Printed on stderr.
    pub message: String,
    /// Exit code.
    #[serde(default = "default_exit")]
    pub exit: i32,
    /// Invocations left to fail.
    #[serde(default = "default_times")]
    pub times: u32,
}

fn default_exit() -> i32 {
    255
}

fn default_times() -> u32 {
    1
}

/// One member of a simulated cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterMember {
    /// Its node name.
    pub node: String,
    /// Its own state directory.
    pub state: PathBuf,
}

/// `cluster.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Cluster {
    /// The cluster's name.
    name: String,
    /// Every member, this node included.
    members: Vec<ClusterMember>,
}

/// `faults.json` (`delay` entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DelayFault {
    /// Command prefix as for [`FailFault`].
    pub command: String,
    /// Seconds to sleep before doing anything.
    pub seconds: f64,
    /// Invocations left to delay; absent means every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// `faults.json` (`cut` entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CutFault {
    /// Command prefix as for [`FailFault`].
    pub command: String,
    /// Bytes of stdout written before the session is killed.
    #[serde(default)]
    pub after_bytes: u64,
    /// Invocations left to cut (default 1).
    #[serde(default = "default_times")]
    pub times: u32,
}

/// `faults.json` (`fill` entry, simulator extension): report at most `avail` free bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FillFault {
    /// Storage id.
    pub storage: String,
    /// Free bytes to report (and enforce for vzdump).
    pub avail: u64,
}

/// `faults.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    /// Handled by the sshd front of the test bed, kept here.
    #[serde(default)]
    pub refuse_connections: u32,
    /// Fail commands.
    #[serde(default)]
    pub fail: Vec<FailFault>,
    /// Delay commands.
    #[serde(default)]
    pub delay: Vec<DelayFault>,
    /// Cut the session during commands.
    #[serde(default)]
    pub cut: Vec<CutFault>,
    /// Make storages look full.
    #[serde(default)]
    pub fill: Vec<FillFault>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One line of `journal.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JournalEntry {
    /// 1, 2, ...
    pub seq: u64,
    /// UTC time, RFC 3339.
    pub ts: String,
    /// The command line, `argv[0]` being the command name (`qmrestore`, `qm`...).
    pub argv: Vec<String>,
    /// Exit code, null when the session was cut.
    pub exit: Option<i32>,
    /// `cli` or `provider`.
    pub source: String,
}

/// Seconds since the epoch now.
pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Held while the state is locked; dropping it unlocks.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// A simulated node's state directory.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Blocks SIGHUP, SIGINT, SIGTERM and SIGPIPE until dropped. A simulated command dies with its SSH session
/// (sshd sends SIGHUP when the tool is interrupted); between writing a `.tmp` and renaming it, that would
/// leave the temporary file behind, which Proxmox's own atomic config writes never do.
struct SignalsHeld(Option<SigSet>);

impl SignalsHeld {
    fn hold() -> Self {
        let mut set = SigSet::empty();
        for sig in [
            Signal::SIGHUP,
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGPIPE,
        ] {
            set.add(sig);
        }
        let mut previous = SigSet::empty();
        match pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut previous)) {
            Ok(()) => Self(Some(previous)),
            Err(_) => Self(None),
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // A signal that came meanwhile is delivered here, once the file is in place.
        if let Some(previous) = &self.0 {
            let _ = previous.thread_set_mask();
        }
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let _held = SignalsHeld::hold();
    let tmp = path.with_extension("json.tmp");
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(path) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl State {
    /// Creates a fresh state directory for node `node` (Proxmox VE 8.3.2, 8 CPUs, 64 GiB) with no
    /// storages and no guests.
    pub fn create(dir: &Path, node: &str) -> Result<State> {
        for d in ["guests", "storage"] {
            fs::create_dir_all(dir.join(d))
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let state = State {
            dir: dir.to_path_buf(),
        };
        write_json(
            &dir.join("node.json"),
            &NodeInfo {
                node: node.into(),
                version: "8.3.2".into(),
                release: "8.3".into(),
                repoid: "3e76eec21c4a14a7".into(),
                timezone: "UTC".into(),
                cpus: 8,
                maxmem: 68_719_476_736,
            },
        )?;
        write_json(&dir.join("storage.json"), &Vec::<StorageDef>::new())?;
        fs::write(dir.join("journal.jsonl"), "")?;
        Ok(state)
    }

    /// Like [`State::create`], with the storages of a fresh Proxmox VE install: `local` (dir,
    /// `iso,vztmpl,backup`, 100 GiB) and `local-lvm` (lvmthin, `images,rootdir`, 500 GiB).
    pub fn create_standard(dir: &Path, node: &str) -> Result<State> {
        let state = State::create(dir, node)?;
        state.add_storage(StorageDef::new(
            "local",
            "dir",
            "iso,vztmpl,backup",
            100 << 30,
        ))?;
        state.add_storage(StorageDef::new(
            "local-lvm",
            "lvmthin",
            "images,rootdir",
            500 << 30,
        ))?;
        Ok(state)
    }

    /// Opens an existing state directory.
    pub fn open(dir: &Path) -> Result<State> {
        if !dir.join("node.json").is_file() {
            bail!(
                "{} is not a simulator state directory (no node.json)",
                dir.display()
            );
        }
        Ok(State {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive lock on `state.lock` (blocking).
    pub fn lock(&self) -> Result<StateLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("state.lock"))
            .context("opening state.lock")?;
        file.lock().context("locking state.lock")?;
        Ok(StateLock { _file: file })
    }

    /// `node.json`.
    pub fn node(&self) -> Result<NodeInfo> {
        read_json(&self.dir.join("node.json"))
    }

    /// `storage.json`.
    pub fn storages(&self) -> Result<Vec<StorageDef>> {
        read_json(&self.dir.join("storage.json"))
    }

    /// Writes `storage.json`.
    pub fn save_storages(&self, list: &[StorageDef]) -> Result<()> {
        write_json(&self.dir.join("storage.json"), &list)
    }

    /// One storage by id.
    pub fn storage(&self, id: &str) -> Result<Option<StorageDef>> {
        Ok(self.storages()?.into_iter().find(|s| s.storage == id))
    }

    /// Adds (or replaces) a storage; fills in `path` for file-based types and creates `dump/`.
    pub fn add_storage(&self, mut def: StorageDef) -> Result<StorageDef> {
        let _lock = self.lock()?;
        if def.path.is_none() && matches!(def.kind.as_str(), "dir" | "nfs") {
            def.path = Some(self.dir.join("storage").join(&def.storage));
        }
        fs::create_dir_all(self.dump_dir(&def)).context("creating storage directory")?;
        if def.kind == "pbs" && !self.pbs_file(&def.storage).exists() {
            write_json(&self.pbs_file(&def.storage), &Vec::<BackupEntry>::new())?;
        }
        let mut list = self.storages()?;
        list.retain(|s| s.storage != def.storage);
        list.push(def.clone());
        self.save_storages(&list)?;
        Ok(def)
    }

    /// The other members of the node's cluster (`cluster.json`: `{"members": [{"node", "state"}]}`, each
    /// member's own state directory); none when the node is not in a cluster.
    pub fn cluster_members(&self) -> Result<Vec<ClusterMember>> {
        let path = self.dir.join("cluster.json");
        if !path.is_file() {
            return Ok(Vec::new());
        }
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let cluster: Cluster =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        let me = self.node()?.node;
        Ok(cluster
            .members
            .into_iter()
            .filter(|m| m.node != me)
            .collect())
    }

    /// Makes the node a member of a cluster with `members` (every member, itself included).
    pub fn set_cluster(&self, name: &str, members: &[ClusterMember]) -> Result<()> {
        let path = self.dir.join("cluster.json");
        let cluster = Cluster {
            name: name.to_owned(),
            members: members.to_vec(),
        };
        fs::write(&path, serde_json::to_vec_pretty(&cluster)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Where the storage keeps files.
    pub fn storage_dir(&self, def: &StorageDef) -> PathBuf {
        def.path
            .clone()
            .unwrap_or_else(|| self.dir.join("storage").join(&def.storage))
    }

    /// `<path>/dump`.
    pub fn dump_dir(&self, def: &StorageDef) -> PathBuf {
        self.storage_dir(def).join("dump")
    }

    fn pbs_file(&self, id: &str) -> PathBuf {
        self.dir.join("storage").join(id).join("pbs.json")
    }

    /// Used bytes: files under the storage path (or PBS entry sizes) plus `used_extra`.
    pub fn storage_used(&self, def: &StorageDef) -> Result<u64> {
        let files = if def.kind == "pbs" {
            self.pbs_entries(&def.storage)?.iter().map(|e| e.size).sum()
        } else if matches!(def.kind.as_str(), "dir" | "nfs") || def.path.is_some() {
            dir_size(&self.storage_dir(def))
        } else {
            0
        };
        Ok(files + def.used_extra)
    }

    /// Free bytes, honouring `fill` faults.
    pub fn storage_avail(&self, def: &StorageDef) -> Result<u64> {
        let avail = def.total.saturating_sub(self.storage_used(def)?);
        let fill = self
            .faults()?
            .fill
            .into_iter()
            .find(|f| f.storage == def.storage);
        Ok(fill.map_or(avail, |f| avail.min(f.avail)))
    }

    /// Adds `delta` (may be negative) to a storage's `used_extra`.
    pub fn adjust_used_extra(&self, storage: &str, delta: i128) -> Result<()> {
        let mut list = self.storages()?;
        if let Some(s) = list.iter_mut().find(|s| s.storage == storage) {
            s.used_extra = (i128::from(s.used_extra) + delta).max(0) as u64;
            self.save_storages(&list)?;
        }
        Ok(())
    }

    fn guest_file(&self, vmid: u32) -> PathBuf {
        self.dir.join("guests").join(format!("{vmid}.json"))
    }

    /// One guest.
    pub fn guest(&self, vmid: u32) -> Result<Option<Guest>> {
        let p = self.guest_file(vmid);
        if !p.exists() {
            return Ok(None);
        }
        read_json(&p).map(Some)
    }

    /// All guests, by vmid.
    pub fn guests(&self) -> Result<Vec<Guest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.dir.join("guests"))
            .context("reading guests/")?
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(read_json::<Guest>(&p)?);
            }
        }
        out.sort_by_key(|g| g.vmid);
        Ok(out)
    }

    /// Writes a guest file (no lock taken; see [`State::add_guest`]).
    pub fn save_guest(&self, guest: &Guest) -> Result<()> {
        write_json(&self.guest_file(guest.vmid), guest)
    }

    /// Removes a guest file.
    pub fn remove_guest(&self, vmid: u32) -> Result<()> {
        let p = self.guest_file(vmid);
        if p.exists() {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
        Ok(())
    }

    /// Adds (or replaces) a guest under the lock, counting its disks on thin storages.
    pub fn add_guest(&self, guest: &Guest) -> Result<()> {
        let _lock = self.lock()?;
        for (storage, size) in conf::disk_usage(&guest.config) {
            self.adjust_used_extra(&storage, i128::from(size))?;
        }
        self.save_guest(guest)
    }

    /// Sets or clears a guest's lock (e.g. to test "locked" refusals).
    pub fn set_guest_lock(&self, vmid: u32, lock: Option<&str>) -> Result<()> {
        let _l = self.lock()?;
        let mut g = self
            .guest(vmid)?
            .with_context(|| format!("no guest {vmid}"))?;
        g.lock = lock.map(str::to_string);
        self.save_guest(&g)
    }

    /// PBS entries of a `pbs` storage.
    pub fn pbs_entries(&self, storage: &str) -> Result<Vec<BackupEntry>> {
        let p = self.pbs_file(storage);
        if !p.exists() {
            return Ok(Vec::new());
        }
        read_json(&p)
    }

    /// Writes the PBS entries of a `pbs` storage (caller holds the lock).
    pub fn save_pbs_entries(&self, storage: &str, entries: &[BackupEntry]) -> Result<()> {
        write_json(&self.pbs_file(storage), &entries)
    }

    /// Adds a PBS entry.
    pub fn add_pbs_entry(&self, storage: &str, entry: BackupEntry) -> Result<()> {
        let _l = self.lock()?;
        let mut list = self.pbs_entries(storage)?;
        list.push(entry);
        write_json(&self.pbs_file(storage), &list)
    }

    /// Backups on a storage (files in `dump/` or PBS entries), sorted by volid.
    pub fn backups(&self, def: &StorageDef) -> Result<Vec<BackupEntry>> {
        if def.kind == "pbs" {
            return self.pbs_entries(&def.storage);
        }
        let dump = self.dump_dir(def);
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&dump) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(info) = conf::archive_info(&name) else {
                continue;
            };
            let path = e.path();
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            let base = name
                .strip_suffix(&format!(".{}", info.format))
                .unwrap_or(&name);
            let notes = fs::read_to_string(dump.join(format!("{base}.{}.notes", info.format))).ok();
            let protected = dump
                .join(format!("{base}.{}.protected", info.format))
                .exists();
            out.push(BackupEntry {
                volid: format!("{}:backup/{name}", def.storage),
                vmid: info.vmid,
                subtype: info.subtype,
                ctime: info.ctime,
                size,
                format: info.format,
                notes,
                protected,
                verification: None,
                path: Some(path),
                config: None,
                extra: Map::new(),
            });
        }
        out.sort_by(|a, b| a.volid.cmp(&b.volid));
        Ok(out)
    }

    /// The backup jobs `pvesh get /cluster/backup` lists (`backup-jobs.json`; none when absent).
    pub fn backup_jobs(&self) -> Result<Vec<Value>> {
        let p = self.dir.join("backup-jobs.json");
        if !p.exists() {
            return Ok(Vec::new());
        }
        read_json(&p)
    }

    /// Writes `backup-jobs.json` (takes the lock): each job as the API returns it.
    pub fn set_backup_jobs(&self, jobs: &[Value]) -> Result<()> {
        let _l = self.lock()?;
        write_json(&self.dir.join("backup-jobs.json"), &jobs)
    }

    /// `faults.json` (empty when absent).
    pub fn faults(&self) -> Result<Faults> {
        let p = self.dir.join("faults.json");
        if !p.exists() {
            return Ok(Faults::default());
        }
        read_json(&p)
    }

    /// Writes `faults.json` (takes the lock).
    pub fn set_faults(&self, faults: &Faults) -> Result<()> {
        let _l = self.lock()?;
        self.save_faults(faults)
    }

    /// Writes `faults.json` without locking (caller holds the lock).
    pub fn save_faults(&self, faults: &Faults) -> Result<()> {
        write_json(&self.dir.join("faults.json"), faults)
    }

    /// Makes `storage` report at most `avail` free bytes (a `fill` fault; `None` removes it).
    pub fn fill_storage(&self, storage: &str, avail: Option<u64>) -> Result<()> {
        let _l = self.lock()?;
        let mut faults = self.faults()?;
        faults.fill.retain(|f| f.storage != storage);
        if let Some(avail) = avail {
            faults.fill.push(FillFault {
                storage: storage.into(),
                avail,
            });
        }
        self.save_faults(&faults)
    }

    /// Writes a real backup of `guest` on file storage `storage` (see [`fixtures::add_backup`]).
    pub fn add_backup(
        &self,
        storage: &str,
        guest: &Guest,
        spec: &fixtures::ArchiveSpec,
        opts: &fixtures::BackupOptions,
    ) -> Result<BackupEntry> {
        fixtures::add_backup(self, storage, guest, spec, opts)
    }

    /// All journal entries.
    pub fn journal(&self) -> Result<Vec<JournalEntry>> {
        let p = self.dir.join("journal.jsonl");
        let text = fs::read_to_string(&p).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("parsing journal line {l}")))
            .collect()
    }

    /// The command lines of all journal entries, in order (`argv[0]` the command: `qmrestore`, `qm`...).
    pub fn journal_argv(&self) -> Result<Vec<Vec<String>>> {
        Ok(self.journal()?.into_iter().map(|e| e.argv).collect())
    }

    /// Appends a journal entry (caller holds the lock).
    pub fn append_journal(&self, argv: &[String], exit: Option<i32>) -> Result<JournalEntry> {
        let seq = self.journal()?.last().map_or(1, |e| e.seq + 1);
        let entry = JournalEntry {
            seq,
            ts: conf::rfc3339(now_epoch()),
            argv: argv.to_vec(),
            exit,
            source: "cli".into(),
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("journal.jsonl"))
            .context("opening journal.jsonl")?;
        writeln!(f, "{}", serde_json::to_string(&entry)?).context("appending to journal.jsonl")?;
        Ok(entry)
    }

    /// The next free vmid (from 100).
    pub fn next_vmid(&self) -> Result<u32> {
        let used: Vec<u32> = self.guests()?.iter().map(|g| g.vmid).collect();
        Ok((100..).find(|v| !used.contains(v)).unwrap_or(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator speaks Proxmox, whatever pve-common's type says: `qemu`/`lxc` as the API's
    /// `type` and backup subtype, `VM`/`CT` in messages (`VM 100 is locked (backup)`).
    #[test]
    fn guest_type_writes_proxmox_strings() {
        for (kind, api, label) in [
            (GuestType::Qemu, "qemu", "VM"),
            (GuestType::Lxc, "lxc", "CT"),
        ] {
            assert_eq!(kind.as_str(), api);
            assert_eq!(kind.label(), label);
            assert_eq!(serde_json::to_value(kind).unwrap(), Value::from(api));
            let read: GuestType = serde_json::from_value(Value::from(api)).unwrap();
            assert_eq!(read, kind);
        }
    }
}
