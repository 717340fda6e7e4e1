//! Typed views of what `pvesh get ... --output-format json` returns, and the vzdump archive-name parser.
//!
//! Proxmox prints numbers as numbers or strings depending on the endpoint and version, and flags as `0/1`
//! or booleans, so the models are filled by hand from `serde_json::Value` instead of derived.
//!
// TODO(lead): merge with pve_common::pve (restore-vm's helper adds typed pvesh models and a volid /
// archive-name parser there on its branch; this module is the verify-backups copy until then).

use serde_json::Value;

fn num(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A guest of `/cluster/resources --type vm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guest {
    /// VMID.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    pub kind: String,
    /// Name (hostname for containers).
    pub name: String,
    /// Node it lives on.
    pub node: String,
    /// Whether it is a template.
    pub template: bool,
}

impl Guest {
    /// Parses one resource entry; `None` for non-guest resources.
    pub fn from_value(v: &Value) -> Option<Guest> {
        let kind = text(v, "type")?;
        if kind != "qemu" && kind != "lxc" {
            return None;
        }
        let vmid = u32::try_from(num(v, "vmid")?).ok()?;
        Some(Guest {
            vmid,
            kind,
            name: text(v, "name").unwrap_or_default(),
            node: text(v, "node").unwrap_or_default(),
            template: num(v, "template").unwrap_or(0) != 0,
        })
    }
}

/// A storage of `/nodes/<node>/storage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storage {
    /// Storage id.
    pub storage: String,
    /// Type: `dir`, `nfs`, `cifs`, `pbs`, ...
    pub kind: String,
    /// Whether it is active on the node.
    pub active: bool,
    /// Whether it is shared between nodes.
    pub shared: bool,
}

impl Storage {
    /// Parses one storage entry.
    pub fn from_value(v: &Value) -> Option<Storage> {
        Some(Storage {
            storage: text(v, "storage")?,
            kind: text(v, "type").unwrap_or_default(),
            active: num(v, "active").unwrap_or(1) != 0,
            shared: num(v, "shared").unwrap_or(0) != 0,
        })
    }

    /// Proxmox Backup Server storage (snapshots, no files on the node).
    pub fn is_pbs(&self) -> bool {
        self.kind == "pbs"
    }
}

/// One backup of `/nodes/<node>/storage/<id>/content --content backup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// `storage:backup/vzdump-...` or a PBS volid.
    pub volid: String,
    /// Storage id.
    pub storage: String,
    /// VMID the backup is of.
    pub vmid: u32,
    /// `qemu` or `lxc` (from `subtype`).
    pub subtype: String,
    /// Backup time, epoch seconds.
    pub ctime: i64,
    /// Size Proxmox reports, bytes.
    pub size: u64,
    /// `vma.zst`, `tar.zst`, `pbs-vm`, ...
    pub format: String,
    /// Notes, if any.
    pub notes: Option<String>,
    /// Protected flag.
    pub protected: bool,
    /// PBS `verification.state` (`ok`, `failed`), `None` when never verified or not PBS.
    pub verification: Option<String>,
}

impl Backup {
    /// Parses one content entry of storage `storage`.
    pub fn from_value(storage: &str, v: &Value) -> Option<Backup> {
        let volid = text(v, "volid")?;
        let vmid = u32::try_from(num(v, "vmid")?).ok()?;
        Some(Backup {
            storage: storage.to_owned(),
            vmid,
            subtype: text(v, "subtype").unwrap_or_default(),
            ctime: num(v, "ctime").unwrap_or(0),
            size: u64::try_from(num(v, "size").unwrap_or(0)).unwrap_or(0),
            format: text(v, "format").unwrap_or_default(),
            notes: text(v, "notes").filter(|n| !n.is_empty()),
            protected: num(v, "protected").unwrap_or(0) != 0,
            verification: v
                .get("verification")
                .and_then(|ver| text(ver, "state"))
                .filter(|s| !s.is_empty()),
            volid,
        })
    }

    /// The file name part of a file-storage volid (`vzdump-qemu-...vma.zst`).
    pub fn file_name(&self) -> &str {
        let rest = self
            .volid
            .split_once(':')
            .map_or(self.volid.as_str(), |(_, r)| r);
        rest.rsplit('/').next().unwrap_or(rest)
    }
}

/// What an archive contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// A VM: VMA stream.
    Vma,
    /// A container: tar.
    Tar,
}

/// How an archive is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed.
    None,
    /// `.zst`.
    Zstd,
    /// `.gz` / `.tgz`.
    Gzip,
    /// `.lzo`.
    Lzo,
}

/// A parsed `vzdump-{qemu|lxc}-<vmid>-<YYYY_MM_DD-HH_MM_SS>.<ext>` name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveName {
    /// `qemu` or `lxc` (`openvz` is read as `lxc`).
    pub kind: String,
    /// VMID.
    pub vmid: u32,
    /// `YYYY_MM_DD-HH_MM_SS`.
    pub stamp: String,
    /// VMA or tar.
    pub container: Container,
    /// Compression.
    pub compression: Compression,
}

impl ArchiveName {
    /// Parses a file name; `None` when it is not a vzdump archive name.
    pub fn parse(name: &str) -> Option<ArchiveName> {
        let rest = name.strip_prefix("vzdump-")?;
        let (kind, rest) = rest.split_once('-')?;
        let kind = match kind {
            "qemu" => "qemu",
            "lxc" | "openvz" => "lxc",
            _ => return None,
        };
        let (vmid, rest) = rest.split_once('-')?;
        if vmid.is_empty() || !vmid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let vmid: u32 = vmid.parse().ok()?;
        let (stamp, ext) = rest.split_once('.')?;
        let valid_stamp = stamp.len() == 19
            && stamp.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 | 13 | 16 => b == b'_',
                10 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !valid_stamp {
            return None;
        }
        let (container, compression) = match ext {
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
        if (container == Container::Vma) != (kind == "qemu") {
            return None;
        }
        Some(ArchiveName {
            kind: kind.to_owned(),
            vmid,
            stamp: stamp.to_owned(),
            container,
            compression,
        })
    }

    /// The name of the task log vzdump writes next to the archive.
    pub fn log_name(&self, original_kind: &str) -> String {
        format!("vzdump-{original_kind}-{}-{}.log", self.vmid, self.stamp)
    }
}

/// The `vzdump-<kind>-` prefix word of a file name (`qemu`, `lxc`, `openvz`).
pub fn name_kind(file_name: &str) -> &str {
    file_name
        .strip_prefix("vzdump-")
        .and_then(|r| r.split('-').next())
        .unwrap_or("")
}

/// Whether a vzdump task log ends well: no `ERROR:` line and a `Finished Backup of VM` line at the end
/// (per-guest log), or the job's `Backup job finished successfully`.
pub fn log_verdict(log: &str, vmid: u32) -> Result<(), String> {
    if let Some(line) = log.lines().find(|l| l.contains("ERROR:")) {
        return Err(format!("log reports an error: {}", line.trim()));
    }
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let finished = format!("Finished Backup of VM {vmid} ");
    if last.contains(&finished) || last.contains("Backup job finished successfully") {
        Ok(())
    } else if last.is_empty() {
        Err("log is empty".into())
    } else {
        Err(format!(
            "log does not end with a successful-backup line (last line: {})",
            last.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_archive_names() {
        let a = ArchiveName::parse("vzdump-qemu-100-2026_11_20-02_00_01.vma.zst").unwrap_or_else(
            || {
                unreachable!("valid name");
            },
        );
        assert_eq!(a.vmid, 100);
        assert_eq!(a.container, Container::Vma);
        assert_eq!(a.compression, Compression::Zstd);
        assert_eq!(
            a.log_name("qemu"),
            "vzdump-qemu-100-2026_11_20-02_00_01.log"
        );
        let t = ArchiveName::parse("vzdump-lxc-101-2026_11_20-02_00_01.tar.gz");
        assert_eq!(t.map(|t| t.compression), Some(Compression::Gzip));
        for bad in [
            "vzdump-qemu-100-2026_11_20-02_00_01.tar.zst",
            "vzdump-qemu-x-2026_11_20-02_00_01.vma.zst",
            "vzdump-qemu-100-2026-11-20.vma.zst",
            "vzdump-qemu-100-2026_11_20-02_00_01.vma.xz",
            "backup.vma.zst",
        ] {
            assert!(ArchiveName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn log_verdicts() {
        assert!(
            log_verdict(
                "x INFO: Starting Backup of VM 100 (qemu)\nx INFO: Finished Backup of VM 100 (00:00:01)\n",
                100
            )
            .is_ok()
        );
        assert!(log_verdict("x ERROR: Backup of VM 100 failed - no space\n", 100).is_err());
        assert!(log_verdict("x INFO: Starting Backup of VM 100 (qemu)\n", 100).is_err());
        assert!(log_verdict("", 100).is_err());
    }

    #[test]
    fn backup_from_pvesh_json() {
        let v = serde_json::json!({"volid": "pbs:backup/vm/100/2026-11-20T02:00:00Z", "vmid": "100",
            "ctime": 5, "size": 10, "protected": 1, "verification": {"state": "failed"}});
        let b = Backup::from_value("pbs", &v).unwrap_or_else(|| unreachable!());
        assert_eq!(b.vmid, 100);
        assert!(b.protected);
        assert_eq!(b.verification.as_deref(), Some("failed"));
        assert_eq!(b.file_name(), "2026-11-20T02:00:00Z");
    }
}
