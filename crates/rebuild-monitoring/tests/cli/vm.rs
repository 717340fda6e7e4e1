//! The monitoring VM of the `docker ps` tests: a real sshd on loopback with the bed's simulated `docker`
//! first in `PATH` (`testbed::bed::vm_sshd`), its containers in a state file the test changes.

use std::path::PathBuf;

use testbed::docker::DockerState;
use testbed::sim::state::now_epoch;
use testbed::sshd::Sshd;

/// The `Host` alias of the VM in [`Vm::ssh_config`].
pub const ALIAS: &str = "monitoring-vm";

pub struct Vm {
    dir: tempfile::TempDir,
    sshd: Sshd,
}

impl Vm {
    /// The VM with prometheus, grafana and alertmanager up for two hours.
    pub fn start() -> Vm {
        let dir = tempfile::Builder::new()
            .prefix("rebuild-monitoring-vm-")
            .tempdir()
            .unwrap();
        let state = dir.path().join("docker.json");
        DockerState::monitoring_stack(now_epoch(), 2 * 3600)
            .save(&state)
            .unwrap();
        let sshd = testbed::bed::vm_sshd(&state, &dir.path().join("bin")).unwrap();
        Vm { dir, sshd }
    }

    /// Changes the containers.
    pub fn docker(&self, change: impl FnOnce(&mut DockerState)) {
        let path = self.dir.path().join("docker.json");
        let mut state = DockerState::load(&path).unwrap();
        change(&mut state);
        state.save(&path).unwrap();
    }

    /// An ssh_config reaching the VM as [`ALIAS`] (after `extra`, another host's config), with no
    /// known-hosts file of its own: the tool's settings decide.
    pub fn ssh_config(&self, extra: Option<&std::path::Path>) -> PathBuf {
        let mut text = extra
            .map(|p| std::fs::read_to_string(p).unwrap())
            .unwrap_or_default();
        text.push_str(&format!(
            "\nHost {ALIAS}\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n  IdentitiesOnly yes\n",
            self.sshd.port(),
            self.sshd.client_key().display()
        ));
        let path = self.dir.path().join("ssh_config");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// known_hosts trusting the VM's host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.sshd.known_hosts()
    }

    /// SSH logins the VM has seen.
    pub fn logins(&self) -> usize {
        self.sshd.logins()
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
