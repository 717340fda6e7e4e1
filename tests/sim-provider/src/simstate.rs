//! The simulated node's state directory, as `tests/testbed/SIM-STATE.md` defines it.
//!
//! Only the parts the provider needs: the `state.lock` flock, `guests/<vmid>.json` and `journal.jsonl`.
//! The guest structs keep fields they do not know (`#[serde(flatten)]`), so a rewrite never drops what
//! the simulator put there (snapshots, lock, fields added later).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Environment variable naming the state directory.
pub const STATE_ENV: &str = "PVE_SIM_STATE";

/// One guest file, `guests/<vmid>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Guest {
    /// Guest id.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Node name.
    pub node: String,
    /// `running` or `stopped`.
    pub status: String,
    /// Whether the guest is a template.
    #[serde(default)]
    pub template: bool,
    /// Proxmox lock name, if any.
    #[serde(default)]
    pub lock: Option<String>,
    /// Proxmox configuration keys, values as `qm config` prints them.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Snapshot names.
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// Template this guest was cloned from (set by the provider for a `clone` block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<u32>,
    /// Fields this crate does not know, kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Guest {
    /// A new guest with an empty configuration.
    pub fn new(vmid: u32, kind: &str, node: &str) -> Self {
        Self {
            vmid,
            kind: kind.to_owned(),
            node: node.to_owned(),
            status: "stopped".to_owned(),
            template: false,
            lock: None,
            config: BTreeMap::new(),
            snapshots: Vec::new(),
            clone_of: None,
            extra: serde_json::Map::new(),
        }
    }

    /// A configuration value as a string (numbers written by hand are accepted too).
    pub fn get(&self, key: &str) -> Option<String> {
        match self.config.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Set a configuration value (always stored as a string, as Proxmox prints it).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.config
            .insert(key.to_owned(), serde_json::Value::String(value.into()));
    }

    /// Set a key, or remove it when `value` is `None`.
    pub fn set_opt(&mut self, key: &str, value: Option<String>) {
        match value {
            Some(v) => self.set(key, v),
            None => {
                self.config.remove(key);
            }
        }
    }
}

/// The state directory, with its lock held for as long as this value lives.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Open the state directory and take the exclusive `state.lock` flock (blocking).
    pub fn lock(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                "simulator state directory {} does not exist",
                root.display()
            );
        }
        fs::create_dir_all(root.join("guests"))
            .with_context(|| format!("creating {}", root.join("guests").display()))?;
        let path = root.join("state.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(Self {
            root: root.to_owned(),
            _lock: lock,
        })
    }

    /// Path of a guest's file.
    pub fn guest_path(&self, vmid: u32) -> PathBuf {
        self.root.join("guests").join(format!("{vmid}.json"))
    }

    /// Read a guest; `None` when its file does not exist.
    pub fn read_guest(&self, vmid: u32) -> Result<Option<Guest>> {
        let path = self.guest_path(vmid);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let guest = serde_json::from_str(&text)
            .with_context(|| format!("parsing guest file {}", path.display()))?;
        Ok(Some(guest))
    }

    /// Write a guest file (through a temporary file and a rename, so readers never see half a file).
    pub fn write_guest(&self, guest: &Guest) -> Result<()> {
        let path = self.guest_path(guest.vmid);
        let tmp = self
            .root
            .join("guests")
            .join(format!(".{}.json.tmp", guest.vmid));
        let mut text = serde_json::to_string_pretty(guest).context("encoding guest")?;
        text.push('\n');
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    /// Remove a guest file; `false` when there was none.
    pub fn remove_guest(&self, vmid: u32) -> Result<bool> {
        let path = self.guest_path(vmid);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    /// Ids of all guests (files named `<number>.json`).
    pub fn guest_ids(&self) -> Result<Vec<u32>> {
        let dir = self.root.join("guests");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The first free guest id from 100, as `pvesh get /cluster/nextid` gives it.
    pub fn next_id(&self) -> Result<u32> {
        let ids = self.guest_ids()?;
        let mut id = 100;
        while ids.contains(&id) {
            id += 1;
        }
        Ok(id)
    }

    /// The node name from `node.json`, if that file exists.
    pub fn node_name(&self) -> Option<String> {
        let text = fs::read_to_string(self.root.join("node.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("node")?.as_str().map(str::to_owned)
    }

    /// Append one entry to `journal.jsonl` with `"source": "provider"`.
    pub fn journal(&self, argv: &[String]) -> Result<()> {
        let path = self.root.join("journal.jsonl");
        let seq = last_seq(&path) + 1;
        let ts = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let entry = serde_json::json!({
            "seq": seq, "ts": ts, "argv": argv, "exit": 0, "source": "provider",
        });
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{entry}").with_context(|| format!("appending to {}", path.display()))?;
        Ok(())
    }
}

/// The `seq` of the journal's last entry (0 for none): the number of lines when it cannot be read.
fn last_seq(path: &Path) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut count = 0;
    let mut last = None;
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if line.trim().is_empty() {
            continue;
        }
        count += 1;
        last = Some(line);
    }
    last.and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .and_then(|v| v.get("seq")?.as_u64())
        .unwrap_or(count)
}

/// Percent-encode as Proxmox stores `sshkeys` (everything but `A-Za-z0-9-_.~`).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode percent-encoding; malformed escapes are kept as they are.
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a Proxmox property string (`virtio=AA:..,bridge=vmbr0`) into ordered key/value pairs; a part
/// without `=` gets an empty key (the volume of a disk: `local-lvm:vm-100-disk-0`).
pub fn parse_props(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (String::new(), p.to_owned()),
        })
        .collect()
}

/// Value of `key` in a property string.
pub fn prop(text: &str, key: &str) -> Option<String> {
    parse_props(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Parse a size like `32G`, `512M`, `1T` into whole gigabytes (bpg's `size` unit).
pub fn size_gb(text: &str) -> Option<i64> {
    let text = text.trim();
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = num.parse().ok()?;
    match unit {
        "T" => Some(n * 1024),
        "G" | "" => Some(n),
        "M" => Some(n / 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trip() {
        let key = "ssh-ed25519 AAAA+b/c= ops@homelab\n";
        let enc = url_encode(key);
        assert_eq!(enc, "ssh-ed25519%20AAAA%2Bb%2Fc%3D%20ops%40homelab%0A");
        assert_eq!(url_decode(&enc), key);
    }

    #[test]
    fn contract_example_round_trips_with_unknown_fields() {
        let text = r#"{
          "vmid": 100, "type": "qemu", "node": "pve", "status": "running", "template": false,
          "lock": null,
          "config": {"name": "jellyfin", "memory": "8192", "cores": 4,
                     "sshkeys": "ssh-ed25519%20AAAA...%20ops%40homelab%0A"},
          "snapshots": ["pre-upgrade"], "clone_of": 9000, "future_field": {"x": 1}
        }"#;
        let guest: Guest = serde_json::from_str(text).unwrap();
        assert_eq!(guest.get("memory").as_deref(), Some("8192"));
        assert_eq!(guest.get("cores").as_deref(), Some("4"));
        assert_eq!(guest.clone_of, Some(9000));
        let back = serde_json::to_value(&guest).unwrap();
        assert_eq!(back["future_field"]["x"], 1);
        assert_eq!(back["snapshots"][0], "pre-upgrade");
        assert!(back["lock"].is_null());
    }

    #[test]
    fn props_and_sizes() {
        let disk = "local-lvm:vm-100-disk-0,size=32G";
        assert_eq!(
            parse_props(disk)[0],
            (String::new(), "local-lvm:vm-100-disk-0".into())
        );
        assert_eq!(prop(disk, "size").as_deref(), Some("32G"));
        assert_eq!(size_gb("32G"), Some(32));
        assert_eq!(size_gb("1T"), Some(1024));
        assert_eq!(size_gb("2048M"), Some(2));
    }
}
