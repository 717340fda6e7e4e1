//! The node bed of the cases of restore-vm, verify-backups, rebuild-minio and rebuild-monitoring: the
//! simulated Proxmox node (`pve-sim`) behind a real sshd. The simulator's journal records every
//! state-changing command: "nothing changed" means it stayed empty.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};
use testbed::sim::{self, Guest, GuestType, State};
use testbed::sshd::{Sshd, SshdOptions};

use crate::support::{output_within, text, tool};

/// A node with guests 100 (VM, running, protected = no) and 101 (CT, stopped), backups of both on
/// `local` (two of 100), served by a real sshd whose PATH starts with `bin/` (pve-sim under every command
/// name, or a fake `pvesh` installed by [`Node::fake_pvesh`]).
pub struct Node {
    pub dir: tempfile::TempDir,
    pub state: State,
    pub sshd: Sshd,
    pub bin: PathBuf,
}

pub const T0: i64 = 1_795_140_000;

pub fn guest100() -> Guest {
    let mut g = Guest::new(
        100,
        GuestType::Qemu,
        "pve",
        &[
            ("name", "jellyfin"),
            ("memory", "2048"),
            ("net0", "virtio=BC:24:11:00:01:00,bridge=vmbr0"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=4G"),
        ],
    );
    g.status = "running".into();
    g
}

impl Node {
    pub fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let state = State::create_standard(&dir.path().join("state"), "pve").unwrap();
        let g100 = guest100();
        let g101 = Guest::new(
            101,
            GuestType::Lxc,
            "pve",
            &[
                ("hostname", "pihole"),
                ("memory", "512"),
                ("rootfs", "local-lvm:subvol-101-disk-0,size=2G"),
            ],
        );
        state.add_guest(&g100).unwrap();
        state.add_guest(&g101).unwrap();
        let now = sim::state::now_epoch();
        for (g, ctime, seed) in [
            (&g100, T0, 1),
            (&g100, now - 3600, 2),
            (&g101, now - 3600, 3),
        ] {
            state
                .add_backup(
                    "local",
                    g,
                    &ArchiveSpec {
                        size: 64 * 1024,
                        ctime,
                        seed,
                    },
                    &BackupOptions::default(),
                )
                .unwrap();
        }
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in sim::COMMANDS {
            std::os::unix::fs::symlink(pve_sim(), bin.join(name)).unwrap();
        }
        let sshd = Sshd::start_with(
            SshdOptions::new()
                .path_prefix(&bin)
                .env("PVE_SIM_STATE", state.dir().display().to_string()),
        )
        .unwrap();
        Node {
            dir,
            state,
            sshd,
            bin,
        }
    }

    /// Replaces `pvesh` by a script answering `answer` (raw bytes) to every `pvesh get` whose arguments
    /// contain `matching`; every other call goes to the simulator.
    pub fn fake_pvesh(&self, matching: &str, answer: &[u8]) {
        let answer_file = self.dir.path().join("pvesh-answer");
        std::fs::write(&answer_file, answer).unwrap();
        let script = format!(
            "#!/bin/bash\ncase \"$*\" in\n  *'{matching}'*) cat '{}'; exit 0 ;;\nesac\nexec -a pvesh '{}' \"$@\"\n",
            answer_file.display(),
            pve_sim().display()
        );
        let path = self.bin.join("pvesh");
        let tmp = self.bin.join(".pvesh.tmp");
        std::fs::write(&tmp, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// Puts the simulator's `pvesh` back.
    pub fn real_pvesh(&self) {
        let path = self.bin.join("pvesh");
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(pve_sim(), &path).unwrap();
    }

    pub fn home(&self) -> PathBuf {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// `restore-vm --host <alias> --node pve --ssh-config <cfg>` with quick retries.
    pub fn restore_vm(&self) -> Command {
        let mut c = self.restore_vm_without_node();
        c.args(["--node", "pve"]);
        c
    }

    /// [`Node::restore_vm`] without `--node`.
    pub fn restore_vm_without_node(&self) -> Command {
        self.tool("restore-vm")
    }

    /// `rebuild-monitoring --from-backup --vmid 100 --yes` on this node, quick retries, its stack checks
    /// pointed at a port nobody listens on with a 1 s deadline (these tests are about the restore).
    pub fn rebuild_from_backup(&self) -> Command {
        let dead = format!("http://127.0.0.1:{}", testbed::ports::free_port().unwrap());
        let mut c = self.tool("rebuild-monitoring");
        c.args([
            "--from-backup",
            "--vmid",
            "100",
            "--yes",
            "--deadline",
            "1s",
            "--max-age",
            "3650d",
            "--node",
            "pve",
        ])
        .arg("--root")
        .arg(self.dir.path().join("no-root"));
        for flag in [
            "--prometheus-url",
            "--alertmanager-url",
            "--grafana-url",
            "--node-exporter-url",
        ] {
            c.args([flag, &dead]);
        }
        c
    }

    /// A node-facing tool (restore-vm's flags: `--host <alias> --ssh-config <cfg>`) with quick retries,
    /// this bed's HOME and none of the caller's PVE_* or agent settings.
    fn tool(&self, name: &str) -> Command {
        let mut c = tool(name);
        c.env("HOME", self.home())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("PVE_SSH_TRANSPORT")
            .env_remove("PVE_HOST")
            .env_remove("PVE_NODE")
            .env_remove("PVE_SSH_USER")
            .env_remove("PVE_TFVARS")
            .env_remove("PVE_SSH_CONFIG")
            .env("RESTORE_VM_RETRY_DELAY_MS", "10")
            .current_dir(self.dir.path())
            .args(["--host", self.sshd.alias()])
            .arg("--ssh-config")
            .arg(self.sshd.ssh_config());
        c
    }

    /// `verify-backups` with the ssh flags of this node and a manifest in the bed.
    pub fn verify_backups(&self) -> Command {
        let mut c = tool("verify-backups");
        let dump = self
            .state
            .dump_dir(&self.state.storage("local").unwrap().unwrap());
        c.env("HOME", self.home())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("PVE_SSH_TRANSPORT")
            .env_remove("PVE_HOST")
            .env("PVE_VERIFY_MANIFEST", self.manifest())
            .env_remove("PVE_BACKUP_TEXTFILE_DIR")
            .env_remove("MINIO_URL")
            .env_remove("PROMETHEUS_URL")
            .env_remove("GRAFANA_URL")
            .env_remove("ALERTMANAGER_URL")
            .current_dir(self.dir.path())
            .args(["--host", self.sshd.host()])
            .args(["--ssh-port", &self.sshd.port().to_string()])
            .args(["--ssh-user", self.sshd.user()])
            .arg("--identity")
            .arg(self.sshd.client_key())
            .arg("--known-hosts")
            .arg(self.sshd.known_hosts())
            .arg("--dump-dir")
            .arg(format!("local={}", dump.display()));
        c
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("manifest")
    }

    /// The simulator's journal, as command lines.
    pub fn journal(&self) -> Vec<Vec<String>> {
        self.state
            .journal()
            .unwrap()
            .into_iter()
            .map(|e| e.argv)
            .collect()
    }

    /// Guests 100 and 101 as the simulator has them (config, status, lock).
    pub fn guests(&self) -> String {
        format!(
            "{:?}{:?}",
            self.state.guest(100).unwrap(),
            self.state.guest(101).unwrap()
        )
    }
}

pub fn pve_sim() -> PathBuf {
    testbed::bed::sibling_binary("pve-sim").expect("pve-sim is built: cargo build -p testbed")
}

/// Runs with a 120 s limit; returns (code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out: Output = output_within(cmd, Duration::from_secs(120));
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Files under `dir` whose names say they are half written (the runner's temp files).
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    crate::support::walk(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".pve-tools-") || n.ends_with(".tmp"))
        })
        .collect()
}

/// What a restore-vm run interrupted anywhere must leave: exit 0, 1 or 130; when it had taken a save
/// point, the command that puts it back; no temporary file on the node.
pub fn assert_interrupted_restore(node: &Node, i: usize, code: Option<i32>, e: &str) {
    assert!(matches!(code, Some(0 | 1 | 130)), "run {i}: {code:?} {e}");
    if code == Some(130) && e.contains("save point: local:") {
        assert!(
            e.contains("to put it back run on node pve: qmrestore"),
            "run {i}: {e}"
        );
    }
    let left = temp_files(node.dir.path());
    assert!(left.is_empty(), "run {i}: {left:?}");
}
