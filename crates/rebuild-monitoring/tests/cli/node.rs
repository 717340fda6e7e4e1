//! The simulated Proxmox node of the `--from-backup` tests: `pve-sim` behind a real sshd on loopback
//! (`testbed::bed::node_sshd`), holding the monitoring VM, running, with backups of the given ages. The
//! simulator's journal records every state-changing command the tool sends.

use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};
use testbed::sim::state::now_epoch;
use testbed::sim::{Guest, GuestType, State};
use testbed::sshd::Sshd;

/// The monitoring VM's id in these tests.
pub const VMID: &str = "111";

pub struct Node {
    dir: tempfile::TempDir,
    state: State,
    sshd: Sshd,
}

impl Node {
    /// A node whose VM 111 has one backup on `local` per age (seconds before now).
    pub fn start(backup_ages: &[i64]) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("rebuild-monitoring-node-")
            .tempdir()
            .unwrap();
        let state = State::create_standard(&dir.path().join("state"), "pve").unwrap();
        let mut vm = Guest::new(
            111,
            GuestType::Qemu,
            "pve",
            &[
                ("name", "monitoring"),
                ("memory", "4096"),
                ("cores", "2"),
                ("net0", "virtio=BC:24:11:00:01:11,bridge=vmbr0"),
                ("scsi0", "local-lvm:vm-111-disk-0,size=4G"),
            ],
        );
        vm.status = "running".into();
        state.add_guest(&vm).unwrap();
        for (seed, age) in backup_ages.iter().enumerate() {
            let spec = ArchiveSpec {
                size: 64 * 1024,
                ctime: now_epoch() - age,
                seed: seed as u64,
            };
            state
                .add_backup("local", &vm, &spec, &BackupOptions::default())
                .unwrap();
        }
        let sshd = testbed::bed::node_sshd(state.dir(), &dir.path().join("bin")).unwrap();
        Node { dir, state, sshd }
    }

    /// The flags that reach this node, and the VM id.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            self.sshd.alias().into(),
            "--node".into(),
            "pve".into(),
            "--ssh-config".into(),
            self.sshd.ssh_config().display().to_string(),
            "--vmid".into(),
            VMID.into(),
        ]
    }

    /// A home without ~/.ssh for the tool.
    /// SSH logins the node has seen.
    pub fn logins(&self) -> usize {
        self.sshd.logins()
    }

    pub fn home(&self) -> std::path::PathBuf {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// The state-changing commands the node ran, as `argv`.
    pub fn journal(&self) -> Vec<Vec<String>> {
        self.state.journal_argv().unwrap()
    }
}
