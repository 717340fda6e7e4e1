//! The inventory as verify-backups looks at it, built from pve-common's typed `pvesh` models
//! (`pve_common::pve`): the guests that need backups and the backups with the storage they were listed
//! on. Also the reading of a vzdump task log, which only this tool does.

use pve_common::pve::{BackupContent, ClusterResource};

pub use pve_common::pve::{Compression, Container, StorageStatus as Storage, VzdumpFile};

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
    /// Whether it runs (`status` of the resource).
    pub running: bool,
}

impl Guest {
    /// The guest of a resource entry; `None` for non-guest resources.
    pub fn from_resource(r: &ClusterResource) -> Option<Guest> {
        let kind = r.guest_type()?;
        Some(Guest {
            vmid: r.vmid?,
            kind: kind.as_str().to_owned(),
            name: r.name.clone().unwrap_or_default(),
            node: r.node.clone().unwrap_or_default(),
            template: r.template,
            running: r.status.as_deref() == Some("running"),
        })
    }
}

/// One backup of `/nodes/<node>/storage/<id>/content --content backup`, with its storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// `storage:backup/vzdump-...` or a PBS volid.
    pub volid: String,
    /// Storage id.
    pub storage: String,
    /// VMID the backup is of.
    pub vmid: u32,
    /// `qemu` or `lxc` (from `subtype`, else from the name).
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
    /// The backup of a content entry of storage `storage`; `None` when it names no guest.
    pub fn from_content(storage: &str, c: &BackupContent) -> Option<Backup> {
        Some(Backup {
            volid: c.volid.clone(),
            storage: storage.to_owned(),
            vmid: c.guest_id()?,
            subtype: c
                .guest_type()
                .map(|t| t.as_str().to_owned())
                .or_else(|| c.subtype.clone())
                .unwrap_or_default(),
            ctime: c.ctime,
            size: c.size,
            format: c.format.clone(),
            notes: c.notes.clone().filter(|n| !n.is_empty()),
            protected: c.protected,
            verification: c
                .verification
                .as_ref()
                .map(|v| v.state.clone())
                .filter(|s| !s.is_empty()),
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
        let c: BackupContent = serde_json::from_value(v).unwrap_or_else(|e| unreachable!("{e}"));
        let b = Backup::from_content("pbs", &c).unwrap_or_else(|| unreachable!());
        assert_eq!(b.vmid, 100);
        assert_eq!(b.subtype, "qemu");
        assert!(b.protected);
        assert_eq!(b.verification.as_deref(), Some("failed"));
        assert_eq!(b.file_name(), "2026-11-20T02:00:00Z");
    }

    #[test]
    fn guests_only_from_resources() {
        let list: Vec<ClusterResource> = serde_json::from_value(serde_json::json!([
            {"type": "qemu", "vmid": 100, "name": "a", "node": "pve", "template": 1},
            {"type": "storage", "id": "storage/pve/local"},
            {"type": "lxc", "vmid": "101"}
        ]))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let guests: Vec<Guest> = list.iter().filter_map(Guest::from_resource).collect();
        assert_eq!(guests.len(), 2);
        assert!(guests[0].template);
        assert_eq!((guests[1].vmid, guests[1].kind.as_str()), (101, "lxc"));
    }
}
