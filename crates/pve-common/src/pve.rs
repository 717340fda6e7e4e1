//! Typed models of the Proxmox VE API answers the tools read through `pvesh get ... --output-format json`,
//! and parsers for the values that reach a remote command line (guest ids, storage ids, backup volids).
//!
//! The models are lenient where Proxmox is: flags arrive as `0`/`1` or booleans, optional fields are
//! missing on inactive storages, and unknown fields are ignored. Everything that later becomes an argument
//! of `qmrestore`, `pct`, `vzdump` is validated here first: no arbitrary string reaches the remote
//! shell, even quoted, because one quoting mistake would let a backup name run a command as root.
//!
//! ```
//! use pve_common::pve::{Volid, GuestType};
//! let v = Volid::parse("local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst").unwrap();
//! assert_eq!(v.storage, "local");
//! let a = v.archive().unwrap();
//! assert_eq!((a.guest_type, a.vmid, a.ctime), (GuestType::Qemu, 100, 1_795_140_001));
//! let p = Volid::parse("pbs:backup/ct/101/2026-11-20T02:00:00Z").unwrap();
//! assert_eq!(p.archive().unwrap().guest_type, GuestType::Lxc);
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// The smallest guest id Proxmox accepts.
pub const VMID_MIN: u64 = 100;
/// The largest guest id Proxmox accepts.
pub const VMID_MAX: u64 = 999_999_999;

/// A value that cannot be used as a Proxmox identifier.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PveValueError {
    /// Not an integer in 100..=999999999.
    #[error("invalid guest id '{0}': expected an integer from 100 to 999999999")]
    Vmid(String),
    /// Not a Proxmox storage id.
    #[error(
        "invalid storage id '{0}': expected a letter followed by letters, digits, '-', '_' or '.'"
    )]
    Storage(String),
    /// Not a Proxmox node name.
    #[error("invalid node name '{0}': expected letters, digits, '-' and '.'")]
    Node(String),
    /// Not a backup volume id.
    #[error("invalid backup volume id '{0}': {1}")]
    Volid(String, &'static str),
}

/// Parses a guest id (VMID): decimal digits only, 100..=999999999.
pub fn parse_vmid(text: &str) -> Result<u32, PveValueError> {
    let err = || PveValueError::Vmid(text.to_owned());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u64 = text.parse().map_err(|_| err())?;
    if !(VMID_MIN..=VMID_MAX).contains(&n) {
        return Err(err());
    }
    u32::try_from(n).map_err(|_| err())
}

/// Checks a storage id (`local`, `local-lvm`, `pbs_main`): Proxmox's `pve-storage-id` format.
pub fn validate_storage_id(text: &str) -> Result<(), PveValueError> {
    let mut chars = text.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && text.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(PveValueError::Storage(text.to_owned()))
    }
}

/// Checks a node name (a DNS label or name: letters, digits, `-`, `.`).
pub fn validate_node_name(text: &str) -> Result<(), PveValueError> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && !text.starts_with(['-', '.'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(PveValueError::Node(text.to_owned()))
    }
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

/// A VM (`qemu`) or a container (`lxc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestType {
    /// A QEMU/KVM virtual machine (`qm`, `qmrestore`).
    Qemu,
    /// An LXC container (`pct`).
    Lxc,
}

impl GuestType {
    /// `qemu` or `lxc`, as in API paths and backup subtypes.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestType::Qemu => "qemu",
            GuestType::Lxc => "lxc",
        }
    }

    /// `VM` or `CT`, for messages.
    pub fn label(self) -> &'static str {
        match self {
            GuestType::Qemu => "VM",
            GuestType::Lxc => "CT",
        }
    }

    /// The guest CLI: `qm` or `pct`.
    pub fn cli(self) -> &'static str {
        match self {
            GuestType::Qemu => "qm",
            GuestType::Lxc => "pct",
        }
    }

    /// From a backup subtype or resource type: `qemu`, `lxc` (and the old `openvz`, restored as lxc).
    pub fn from_subtype(text: &str) -> Option<GuestType> {
        match text {
            "qemu" => Some(GuestType::Qemu),
            "lxc" | "openvz" => Some(GuestType::Lxc),
            _ => None,
        }
    }
}

impl fmt::Display for GuestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage volume id, `storage:volname`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volid {
    /// The storage id.
    pub storage: String,
    /// Everything after the first `:`.
    pub volname: String,
}

/// What a backup's name tells: guest type, guest id, time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveName {
    /// VM or container.
    pub guest_type: GuestType,
    /// The backed-up guest's id.
    pub vmid: u32,
    /// The backup time as written in the name, seconds since the epoch (the name is in node local time for
    /// vzdump files, UTC for PBS; this reads both as UTC, so it is exact for nodes in UTC and for PBS).
    pub ctime: i64,
    /// True for a Proxmox Backup Server snapshot.
    pub pbs: bool,
}

impl Volid {
    /// Parses and checks `storage:volname`: a valid storage id, a non-empty volname of safe characters
    /// (letters, digits, `-_.:/+=`; no `..` component, no whitespace or shell metacharacters).
    pub fn parse(text: &str) -> Result<Volid, PveValueError> {
        let err = |why| PveValueError::Volid(text.to_owned(), why);
        let (storage, volname) = text.split_once(':').ok_or_else(|| err("no 'storage:'"))?;
        validate_storage_id(storage).map_err(|_| err("bad storage id"))?;
        if volname.is_empty() {
            return Err(err("empty volume name"));
        }
        if !volname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/+=".contains(c))
        {
            return Err(err("unexpected character"));
        }
        if volname.split('/').any(|p| p == ".." || p.is_empty()) || volname.starts_with('/') {
            return Err(err("bad path component"));
        }
        Ok(Volid {
            storage: storage.to_owned(),
            volname: volname.to_owned(),
        })
    }

    /// The guest type, id and time encoded in a backup volume name, if it is one:
    /// `backup/vzdump-{qemu|lxc|openvz}-<vmid>-YYYY_MM_DD-HH_MM_SS.<ext>` or PBS
    /// `backup/{vm|ct}/<vmid>/YYYY-MM-DDTHH:MM:SSZ`.
    pub fn archive(&self) -> Option<ArchiveName> {
        let name = self.volname.strip_prefix("backup/")?;
        if let Some(rest) = name
            .strip_prefix("vm/")
            .or_else(|| name.strip_prefix("ct/"))
        {
            let guest_type = if name.starts_with("vm/") {
                GuestType::Qemu
            } else {
                GuestType::Lxc
            };
            let (id, time) = rest.split_once('/')?;
            let vmid = parse_vmid(id).ok()?;
            let ts: jiff::Timestamp = time.parse().ok()?;
            return Some(ArchiveName {
                guest_type,
                vmid,
                ctime: ts.as_second(),
                pbs: true,
            });
        }
        parse_vzdump_name(name.rsplit('/').next()?)
    }
}

impl fmt::Display for Volid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.storage, self.volname)
    }
}

/// Parses a vzdump file name `vzdump-<type>-<vmid>-YYYY_MM_DD-HH_MM_SS.<ext>`.
pub fn parse_vzdump_name(file: &str) -> Option<ArchiveName> {
    let rest = file.strip_prefix("vzdump-")?;
    let (kind, rest) = rest.split_once('-')?;
    let guest_type = GuestType::from_subtype(kind)?;
    let (id, rest) = rest.split_once('-')?;
    let vmid = parse_vmid(id).ok()?;
    let stamp = rest.get(..19)?;
    let ext = rest.get(19..)?;
    if !(ext.starts_with(".vma") || ext.starts_with(".tar") || ext.starts_with(".tgz")) {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%Y_%m_%d-%H_%M_%S", stamp).ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(ArchiveName {
        guest_type,
        vmid,
        ctime: ts.as_second(),
        pbs: false,
    })
}

/// What a vzdump archive holds: a VMA stream (VMs) or a tar (containers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// A VM: VMA stream.
    Vma,
    /// A container: tar.
    Tar,
}

/// How a vzdump archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed (`.vma`, `.tar`).
    None,
    /// `.zst`.
    Zstd,
    /// `.gz` / `.tgz` (pigz or gzip).
    Gzip,
    /// `.lzo` (lzop).
    Lzo,
}

/// A vzdump archive file name read whole: what [`parse_vzdump_name`] tells, plus the format of the
/// extension (only the ones vzdump writes) and the stem its task log shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VzdumpFile {
    /// Guest type, id and time.
    pub archive: ArchiveName,
    /// VMA or tar.
    pub container: Container,
    /// Compression.
    pub compression: Compression,
    /// `vzdump-<type>-<vmid>-<stamp>` as written (an old `openvz` kept as is).
    pub stem: String,
}

impl VzdumpFile {
    /// Parses `vzdump-<type>-<vmid>-YYYY_MM_DD-HH_MM_SS.<ext>` with `<ext>` one of `vma[.zst|.gz|.lzo]`
    /// (VMs) or `tar[.zst|.gz|.lzo]`, `tgz` (containers); `None` for anything else.
    pub fn parse(file: &str) -> Option<VzdumpFile> {
        let archive = parse_vzdump_name(file)?;
        // Neither the type, the id nor the stamp has a dot: the first one starts the extension.
        let (stem, ext) = file.split_at(file.find('.')?);
        let (container, compression) = match ext.strip_prefix('.')? {
            "vma" => (Container::Vma, Compression::None),
            "vma.zst" => (Container::Vma, Compression::Zstd),
            "vma.gz" => (Container::Vma, Compression::Gzip),
            "vma.lzo" => (Container::Vma, Compression::Lzo),
            "tar" => (Container::Tar, Compression::None),
            "tar.zst" => (Container::Tar, Compression::Zstd),
            "tar.gz" | "tgz" => (Container::Tar, Compression::Gzip),
            "tar.lzo" => (Container::Tar, Compression::Lzo),
            _ => return None,
        };
        if (container == Container::Vma) != (archive.guest_type == GuestType::Qemu) {
            return None;
        }
        Some(VzdumpFile {
            archive,
            container,
            compression,
            stem: stem.to_owned(),
        })
    }

    /// The task log vzdump writes next to the archive (`<stem>.log`).
    pub fn log_name(&self) -> String {
        format!("{}.log", self.stem)
    }
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        B(bool),
        N(i64),
        S(String),
    }
    Ok(match Option::<Flag>::deserialize(d)? {
        None => false,
        Some(Flag::B(b)) => b,
        Some(Flag::N(n)) => n != 0,
        Some(Flag::S(s)) => s == "1" || s == "true",
    })
}

/// A number Proxmox may print as a JSON number or as a numeric string (older versions, some endpoints).
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + Default,
{
    Ok(lenient_opt(d)?.unwrap_or_default())
}

fn lenient_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        I(i64),
        F(f64),
        S(String),
    }
    let n = match Option::<Num>::deserialize(d)? {
        None => return Ok(None),
        Some(Num::I(i)) => i,
        Some(Num::F(f)) => f as i64,
        Some(Num::S(s)) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("not a number: '{s}'")))?,
    };
    T::try_from(n)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("number {n} out of range")))
}

/// PBS verification of a backup snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// `ok` or `failed`.
    pub state: String,
    /// The verify task, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upid: Option<String>,
}

/// One entry of `GET /nodes/{node}/storage/{storage}/content --content backup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupContent {
    /// `storage:backup/...`.
    pub volid: String,
    /// `backup`.
    #[serde(default)]
    pub content: String,
    /// `vma.zst`, `tar.zst`, `pbs-vm`, `pbs-ct`...
    #[serde(default)]
    pub format: String,
    /// `qemu` or `lxc` (absent on old Proxmox versions: use [`Volid::archive`]).
    #[serde(default)]
    pub subtype: Option<String>,
    /// The backed-up guest's id.
    #[serde(default, deserialize_with = "lenient_opt")]
    pub vmid: Option<u32>,
    /// Backup time, seconds since the epoch.
    #[serde(default, deserialize_with = "lenient")]
    pub ctime: i64,
    /// Size in bytes.
    #[serde(default, deserialize_with = "lenient")]
    pub size: u64,
    /// Notes, if any.
    #[serde(default)]
    pub notes: Option<String>,
    /// Protected from pruning and removal.
    #[serde(default, deserialize_with = "flag")]
    pub protected: bool,
    /// PBS only: the last verification.
    #[serde(default)]
    pub verification: Option<Verification>,
}

impl BackupContent {
    /// The guest type: from `subtype`, else from the volume name.
    pub fn guest_type(&self) -> Option<GuestType> {
        self.subtype
            .as_deref()
            .and_then(GuestType::from_subtype)
            .or_else(|| {
                Volid::parse(&self.volid)
                    .ok()?
                    .archive()
                    .map(|a| a.guest_type)
            })
    }

    /// The guest id: from `vmid`, else from the volume name.
    pub fn guest_id(&self) -> Option<u32> {
        self.vmid
            .or_else(|| Some(Volid::parse(&self.volid).ok()?.archive()?.vmid))
    }

    /// What is wrong with this entry, if anything, at `now` (seconds since the epoch): a `vmid` field and
    /// a volume name that name different guests, or a backup time outside [`check_ctime`]'s range.
    /// Every tool checks the entries it lists here before trusting one.
    pub fn problem(&self, now: i64) -> Option<String> {
        let named = Volid::parse(&self.volid)
            .ok()
            .and_then(|v| v.archive().map(|a| a.vmid));
        if let (Some(field), Some(named)) = (self.vmid, named)
            && field != named
        {
            return Some(format!(
                "{}: the listing says vmid {field} but the volume name says {named}",
                crate::output::escape(&self.volid)
            ));
        }
        check_ctime(self.ctime, now)
            .err()
            .map(|e| format!("{}: {e}", crate::output::escape(&self.volid)))
    }
}

/// How far in the future a time from the node may be (clocks disagree a little): 10 minutes.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 600;

/// Checks a time from outside (a backup's `ctime`): not before 1970, not later than `now` plus
/// [`MAX_CLOCK_SKEW_SECONDS`]. A backup "from year 9999" is not the newest: it is a wrong clock or a
/// forged listing, and age arithmetic with it would overflow.
pub fn check_ctime(ctime: i64, now: i64) -> Result<i64, String> {
    if ctime < 0 {
        return Err(format!("its time ({ctime}) is before 1970"));
    }
    if ctime > now.saturating_add(MAX_CLOCK_SKEW_SECONDS) {
        let shown = jiff::Timestamp::from_second(ctime)
            .map_or_else(|_| ctime.to_string(), |t| t.to_string());
        return Err(format!(
            "its time ({shown}) is in the future: the node's clock is wrong or the listing is forged"
        ));
    }
    Ok(ctime)
}

/// One entry of `GET /nodes/{node}/storage` (and, with fewer fields, `.../storage/{id}/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageStatus {
    /// The storage id (absent in `.../status`).
    #[serde(default)]
    pub storage: String,
    /// `dir`, `lvmthin`, `zfspool`, `nfs`, `pbs`...
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Comma-separated content types (`images,rootdir`, `backup`...).
    #[serde(default)]
    pub content: String,
    /// Enabled in storage.cfg.
    #[serde(default, deserialize_with = "flag")]
    pub enabled: bool,
    /// Reachable and mounted now.
    #[serde(default, deserialize_with = "flag")]
    pub active: bool,
    /// Shared between nodes.
    #[serde(default, deserialize_with = "flag")]
    pub shared: bool,
    /// Capacity in bytes (absent when inactive).
    #[serde(default)]
    pub total: Option<u64>,
    /// Used bytes (absent when inactive).
    #[serde(default)]
    pub used: Option<u64>,
    /// Free bytes (absent when inactive).
    #[serde(default)]
    pub avail: Option<u64>,
}

impl StorageStatus {
    /// A Proxmox Backup Server storage (snapshots, no files on the node).
    pub fn is_pbs(&self) -> bool {
        self.kind == "pbs"
    }

    /// Whether `content` lists `what` (`backup`, `images`, `rootdir`).
    pub fn has_content(&self, what: &str) -> bool {
        self.content.split(',').any(|c| c.trim() == what)
    }
}

/// One entry of `GET /cluster/resources --type vm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterResource {
    /// `qemu/100`, `lxc/101`, `storage/pve/local`, `node/pve`.
    #[serde(default)]
    pub id: String,
    /// `qemu`, `lxc`, `node`, `storage`...
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Guest id (guests only).
    #[serde(default, deserialize_with = "lenient_opt")]
    pub vmid: Option<u32>,
    /// The node.
    #[serde(default)]
    pub node: Option<String>,
    /// `running`, `stopped`, `available`...
    #[serde(default)]
    pub status: Option<String>,
    /// Guest name.
    #[serde(default)]
    pub name: Option<String>,
    /// A lock (`backup`, `create`...), if held.
    #[serde(default)]
    pub lock: Option<String>,
    /// A template.
    #[serde(default, deserialize_with = "flag")]
    pub template: bool,
}

impl ClusterResource {
    /// The guest type, for `qemu`/`lxc` entries.
    pub fn guest_type(&self) -> Option<GuestType> {
        GuestType::from_subtype(&self.kind)
    }
}

/// `GET /nodes/{node}/{qemu|lxc}/{vmid}/status/current`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestStatus {
    /// The guest id.
    #[serde(default)]
    pub vmid: Option<u32>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// `running` or `stopped`.
    pub status: String,
    /// A lock, if held.
    #[serde(default)]
    pub lock: Option<String>,
    /// A template.
    #[serde(default, deserialize_with = "flag")]
    pub template: bool,
}

impl GuestStatus {
    /// `status == "running"`.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

/// A guest config as `GET .../config` returns it: keys to values (numbers turned into strings).
pub type GuestConfig = std::collections::BTreeMap<String, String>;

/// Converts a `GET .../config` JSON object into a [`GuestConfig`].
pub fn guest_config(value: &serde_json::Value) -> GuestConfig {
    value
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a guest config marks it protected (`protection: 1`).
pub fn config_protected(config: &GuestConfig) -> bool {
    config.get("protection").is_some_and(|v| v == "1")
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
    fn vmids() {
        assert_eq!(parse_vmid("100"), Ok(100));
        assert_eq!(parse_vmid("999999999"), Ok(999_999_999));
        for bad in [
            "99",
            "0",
            "1000000000",
            "-100",
            "+100",
            "1e3",
            "",
            " 100",
            "100;",
        ] {
            assert!(parse_vmid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volids() {
        let v = Volid::parse("local:backup/vzdump-lxc-101-2026_11_20-02_00_01.tar.zst").unwrap();
        let a = v.archive().unwrap();
        assert_eq!(a.guest_type, GuestType::Lxc);
        assert_eq!(a.vmid, 101);
        assert!(!a.pbs);
        let p = Volid::parse("pbs:backup/vm/100/2026-11-20T02:00:00Z").unwrap();
        let a = p.archive().unwrap();
        assert_eq!(
            (a.guest_type, a.vmid, a.ctime, a.pbs),
            (GuestType::Qemu, 100, 1_795_140_000, true)
        );
        for bad in [
            "nostorage",
            "local:",
            "1local:backup/x",
            "local:backup/x y",
            "local:backup/x;rm",
            "local:backup/../etc/passwd",
            "local:backup/$(id)",
            "local:/abs",
        ] {
            assert!(Volid::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Volid::parse("local:iso/debian.iso")
                .unwrap()
                .archive()
                .is_none()
        );
    }

    #[test]
    fn content_entries() {
        let json = r#"[{"volid":"pbs:backup/ct/101/2026-11-20T02:00:00Z","content":"backup","format":"pbs-ct",
            "ctime":1763604000,"size":5,"protected":1,"verification":{"state":"ok","upid":"UPID:x"}},
            {"volid":"local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst","subtype":"qemu","vmid":100}]"#;
        let list: Vec<BackupContent> = serde_json::from_str(json).unwrap();
        assert!(list[0].protected);
        assert_eq!(list[0].guest_type(), Some(GuestType::Lxc));
        assert_eq!(list[0].guest_id(), Some(101));
        assert_eq!(list[0].verification.as_ref().unwrap().state, "ok");
        assert!(!list[1].protected);
        assert_eq!(list[1].guest_type(), Some(GuestType::Qemu));
    }

    #[test]
    fn vzdump_files() {
        let f = VzdumpFile::parse("vzdump-qemu-100-2026_11_20-02_00_01.vma.zst").unwrap();
        assert_eq!(f.archive.vmid, 100);
        assert_eq!(
            (f.container, f.compression),
            (Container::Vma, Compression::Zstd)
        );
        assert_eq!(f.log_name(), "vzdump-qemu-100-2026_11_20-02_00_01.log");
        let t = VzdumpFile::parse("vzdump-openvz-101-2026_11_20-02_00_01.tgz").unwrap();
        assert_eq!(t.archive.guest_type, GuestType::Lxc);
        assert_eq!(t.compression, Compression::Gzip);
        assert_eq!(t.log_name(), "vzdump-openvz-101-2026_11_20-02_00_01.log");
        let l = VzdumpFile::parse("vzdump-lxc-101-2026_11_20-02_00_01.tar.lzo").unwrap();
        assert_eq!(
            (l.container, l.compression),
            (Container::Tar, Compression::Lzo)
        );
        for bad in [
            "vzdump-qemu-100-2026_11_20-02_00_01.tar.zst",
            "vzdump-lxc-100-2026_11_20-02_00_01.vma",
            "vzdump-qemu-x-2026_11_20-02_00_01.vma.zst",
            "vzdump-qemu-100-2026-11-20.vma.zst",
            "vzdump-qemu-100-2026_11_20-02_00_01.vma.xz",
            "vzdump-qemu-100-2026_11_20-02_00_01",
            "backup.vma.zst",
        ] {
            assert!(VzdumpFile::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn numbers_as_strings_are_read() {
        let v = serde_json::json!({"volid": "pbs:backup/vm/100/2026-11-20T02:00:00Z", "vmid": "100",
            "ctime": "5", "size": 10.0, "protected": 1, "verification": {"state": "failed"}});
        let b: BackupContent = serde_json::from_value(v).unwrap();
        assert_eq!((b.vmid, b.ctime, b.size), (Some(100), 5, 10));
        let r: ClusterResource =
            serde_json::from_value(serde_json::json!({"type": "qemu", "vmid": "101"})).unwrap();
        assert_eq!(r.vmid, Some(101));
        let mut future = b.clone();
        future.ctime = 253_402_300_799;
        assert!(
            future
                .problem(1_795_140_000)
                .unwrap()
                .contains("in the future")
        );
        future.ctime = i64::MIN;
        assert!(
            future
                .problem(1_795_140_000)
                .unwrap()
                .contains("before 1970")
        );
        let bad: Result<BackupContent, _> =
            serde_json::from_value(serde_json::json!({"volid": "a:b", "size": -1}));
        assert!(bad.is_err());
    }

    #[test]
    fn storage_ids() {
        assert!(validate_storage_id("local-lvm").is_ok());
        assert!(validate_storage_id("-x").is_err());
        assert!(validate_storage_id("a b").is_err());
        assert!(validate_node_name("pve").is_ok());
        assert!(validate_node_name("pve;x").is_err());
    }
}
