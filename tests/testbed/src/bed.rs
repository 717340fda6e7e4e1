//! The whole bed in the background, for the `testbed` command: `up`, `down`, `status`.
//!
//! `up` starts moto and the monitoring daemons side by side in their own process groups, copies the
//! Terraform fixtures with a complete S3 backend block (so a plain `terraform init` in a copied
//! environment reaches the bed's S3), waits until everything answers, detaches the daemons and records
//! them in `<dir>/testbed.json` (and `<dir>/<daemon>.pid`). `down` stops the recorded process
//! groups. No supervisor process is needed: each daemon is its own group leader and the record holds
//! its pid.
//!
//! The monitoring VM (sshd + a simulated `docker`, a Grafana stand-in) joins through `start_vm`.
//! The simulated Proxmox node (sshd + pve-sim, other helpers' modules) joins through
//! `start_node` (private, in this file), the one marked integration point.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::monitoring::Monitoring;
use crate::process::{self, STOP_GRACE};
use crate::s3::{self, S3Server};
use crate::terraform::{self, Backend, BackendKind, Env, S3Backend};

/// Name of the record file in the bed directory.
pub const STATE_FILE: &str = "testbed.json";

/// What `up` should start.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The bed directory (created if missing): logs, data, Terraform copies, the record.
    pub dir: PathBuf,
    /// Start node_exporter, Alertmanager and Prometheus (loading the packaged alert rules), and the
    /// monitoring VM (sshd with a simulated `docker`, a Grafana stand-in).
    pub monitoring: bool,
    /// `terraform init` + `apply` every environment, so states exist in S3.
    pub apply: bool,
    /// Also start this many nodes of the fleet (one per environment, at most 3; 0: none).
    pub nodes: usize,
    /// The last this-many of them are members of one cluster sharing a storage (0: no cluster).
    pub cluster: usize,
    /// Nodes of the fleet started down (state laid out, nothing listening on their port).
    pub down: Vec<String>,
}

/// One background daemon of the bed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Daemon name, e.g. `moto_server`.
    pub name: String,
    /// Pid, also its process group id.
    pub pid: u32,
    /// Loopback port it listens on (0 if none).
    pub port: u16,
}

/// The record of a running bed (`<dir>/testbed.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BedState {
    /// `"testbed/v1"`.
    pub schema: String,
    /// The bed directory.
    pub dir: PathBuf,
    /// Daemons to stop on `down`.
    pub services: Vec<Service>,
    /// Environment variables for the tools, in order.
    pub exports: Vec<(String, String)>,
}

impl BedState {
    /// `export NAME='value'` lines for a POSIX shell (`eval "$(testbed up)"`).
    pub fn shell_exports(&self) -> String {
        self.exports
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
            .collect()
    }

    fn add(&mut self, name: &str, value: impl Into<String>) {
        self.exports.push((name.to_owned(), value.into()));
    }
}

/// Single-quotes `value` for a POSIX shell.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Reads `<dir>/testbed.json`; `None` if the bed is not up.
pub fn read_state(dir: &Path) -> Result<Option<BedState>> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Brings the bed up in the background and records it. Fails (stopping what it started) if any part
/// does not come up.
pub fn up(options: &UpOptions) -> Result<BedState> {
    let dir = &options.dir;
    if let Some(state) = read_state(dir)?
        && state.services.iter().any(|s| process::pid_alive(s.pid))
    {
        bail!(
            "the bed in {} is already up (run `testbed down` first)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;

    // Start everything, then wait: moto's Python start-up dominates, the rest overlaps it.
    let mut s3 = S3Server::spawn(&dir.join("s3"), crate::ports::free_port()?)?;
    let mut monitoring = if options.monitoring {
        Some(Monitoring::spawn_in(
            &dir.join("monitoring"),
            &packaged_rule_files(),
            None,
        )?)
    } else {
        None
    };
    let tf_root = dir.join("terraform");
    if tf_root.exists() {
        std::fs::remove_dir_all(&tf_root)
            .with_context(|| format!("removing {}", tf_root.display()))?;
    }
    let envs_dir = terraform::copy_fixtures(&tf_root, BackendKind::S3)?;
    terraform::write_inline_s3_backends(&tf_root, &s3.endpoint())?;
    // The environments' guests live in their own simulator state (the node's has other guests), pinned
    // in the copy so a shell with the node's PVE_SIM_STATE still plans against the right one.
    let tf_sim = terraform::Sim::existing(&tf_root.join(terraform::SIM_DIR))
        .context("the Terraform copy has no simulator")?;
    terraform::pin_sim_state(&tf_root, tf_sim.state_dir())?;

    s3.wait_ready()?;
    let client = s3.client();
    client.create_bucket(terraform::STATE_BUCKET)?;
    client.set_versioning(terraform::STATE_BUCKET, true)?;
    if let Some(monitoring) = monitoring.as_mut() {
        monitoring.wait_ready()?;
    }
    if options.apply {
        let envs: Vec<Env> = terraform::ENVIRONMENTS
            .iter()
            .map(|name| {
                Env::in_copy(
                    &tf_root,
                    name,
                    Backend::S3(S3Backend::at(&s3.endpoint(), name)),
                )
            })
            .collect::<Result<_>>()?;
        terraform::init_and_apply_all(&envs)?;
    }

    let mut state = BedState {
        schema: "testbed/v1".to_owned(),
        dir: dir.clone(),
        services: Vec::new(),
        exports: Vec::new(),
    };
    state.add("TESTBED_DIR", dir.display().to_string());
    state.add("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY);
    state.add("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY);
    state.add("AWS_REGION", s3::REGION);
    state.add("AWS_ENDPOINT_URL_S3", s3.endpoint());
    state.add("TESTBED_S3_ENDPOINT", s3.endpoint());
    state.add("TESTBED_S3_BUCKET", terraform::STATE_BUCKET);
    state.add("TESTBED_TF_ROOT", envs_dir.display().to_string());
    state.add(
        "TF_CLI_CONFIG_FILE",
        tf_sim.cli_config().display().to_string(),
    );
    state.add(
        "TESTBED_TF_SIM_STATE",
        tf_sim.state_dir().display().to_string(),
    );
    state.add("TF_IN_AUTOMATION", "1");
    state.add("TF_INPUT", "0");
    state.add("CHECKPOINT_DISABLE", "1");
    let plugin_cache = tf_root.join("plugin-cache");
    std::fs::create_dir_all(&plugin_cache)
        .with_context(|| format!("creating {}", plugin_cache.display()))?;
    state.add("TF_PLUGIN_CACHE_DIR", plugin_cache.display().to_string());
    if let Some(monitoring) = &monitoring {
        state.add("PROMETHEUS_URL", monitoring.prometheus.url());
        state.add("ALERTMANAGER_URL", monitoring.alertmanager.url());
        state.add("NODE_EXPORTER_URL", monitoring.node_exporter.url());
        state.add(
            "TESTBED_TEXTFILE_DIR",
            monitoring
                .node_exporter
                .textfile_dir()
                .display()
                .to_string(),
        );
    }
    start_node(&dir, &mut state)?;
    if options.nodes > 0 {
        start_fleet(&dir, options, &mut state)?;
    }
    if options.monitoring {
        start_vm(&dir, &mut state)?;
    }

    // Everything is up: hand the daemons over to the record.
    let port = s3.port();
    state.services.push(Service {
        name: "moto_server".to_owned(),
        pid: s3.detach(),
        port,
    });
    if let Some(monitoring) = monitoring {
        let Monitoring {
            node_exporter,
            alertmanager,
            prometheus,
            ..
        } = monitoring;
        for (name, port, pid) in [
            (
                "node_exporter",
                node_exporter.port(),
                node_exporter.detach(),
            ),
            ("alertmanager", alertmanager.port(), alertmanager.detach()),
            ("prometheus", prometheus.port(), prometheus.detach()),
        ] {
            state.services.push(Service {
                name: name.to_owned(),
                pid,
                port,
            });
        }
    }
    write_state(&dir, &state)?;
    Ok(state)
}

/// Where the simulated node can be reached, written by `testbed node-daemon` once sshd listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `127.0.0.1`.
    pub host: String,
    /// The port to connect to (the sshd harness's front proxy).
    pub port: u16,
    /// The login user (whoever runs the bed).
    pub user: String,
    /// The `Host` alias in `ssh_config`.
    pub alias: String,
    /// An ssh_config with Host, HostName, Port, User, IdentityFile, UserKnownHostsFile.
    pub ssh_config: PathBuf,
    /// known_hosts trusting the node's host key.
    pub known_hosts: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// The simulator's state directory (`PVE_SIM_STATE` on the node).
    pub sim_state: PathBuf,
}

const NODE_READY: &str = "ready.json";

/// The alert rules the homelab's Prometheus loads (`packaging/prometheus/alerts`), as the monitoring VM's
/// Prometheus has them: rebuild-monitoring checks that their groups are loaded. None when the bed runs
/// outside the checkout it was built from.
pub fn packaged_rule_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/prometheus/alerts");
    ["drift.yml", "host.yml"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

/// Where the simulated monitoring VM can be reached, written by `testbed vm-daemon` once it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmInfo {
    /// The port of its sshd (the harness's front proxy on 127.0.0.1).
    pub port: u16,
    /// The login user (whoever runs the bed).
    pub user: String,
    /// known_hosts trusting its host key.
    pub known_hosts: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// The simulated docker's state file (`DOCKER_SIM_STATE` on the VM).
    pub docker_state: PathBuf,
    /// Its Grafana (`/api/health`).
    pub grafana_url: String,
}

/// A real sshd on loopback standing for the monitoring VM: `docker-sim` (built next to the running binary)
/// is linked under `bin_dir` as `docker` and put first in the session's `PATH`, acting on `docker_state`.
pub fn vm_sshd(docker_state: &Path, bin_dir: &Path) -> Result<crate::sshd::Sshd> {
    std::fs::create_dir_all(bin_dir).with_context(|| format!("creating {}", bin_dir.display()))?;
    let docker = bin_dir.join("docker");
    if !docker.exists() {
        std::os::unix::fs::symlink(sibling_binary("docker-sim")?, &docker)
            .context("linking docker")?;
    }
    crate::sshd::Sshd::start_with(
        crate::sshd::SshdOptions::new()
            .path_prefix(bin_dir)
            .env(crate::docker::STATE_ENV, docker_state.display().to_string()),
    )
}

/// The body of `testbed vm-daemon`: the monitoring VM with its stack running for two hours (prometheus,
/// grafana, alertmanager containers) behind a real sshd, and a stand-in for its Grafana. Writes
/// `ready.json` (a [`VmInfo`]) and then serves until killed.
pub fn serve_vm(vm_dir: &Path) -> Result<()> {
    let docker_state = vm_dir.join("docker.json");
    crate::docker::DockerState::monitoring_stack(crate::sim::state::now_epoch(), 2 * 3600)
        .save(&docker_state)?;
    let sshd = vm_sshd(&docker_state, &vm_dir.join("bin"))?;
    let grafana = crate::monitoring::GrafanaStandIn::start()?;
    let info = VmInfo {
        port: sshd.port(),
        user: sshd.user().to_owned(),
        known_hosts: sshd.known_hosts(),
        client_key: sshd.client_key(),
        docker_state,
        grafana_url: grafana.url(),
    };
    let tmp = vm_dir.join(".ready.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?).context("writing the ready file")?;
    std::fs::rename(&tmp, vm_dir.join(NODE_READY)).context("writing the ready file")?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Starts the monitoring VM in the background (`testbed vm-daemon`) and adds its exports:
/// `TESTBED_VM_SSH_PORT`, `TESTBED_VM_SSH_KNOWN_HOSTS`, `TESTBED_VM_SSH_KEY`, `TESTBED_DOCKER_STATE`,
/// `GRAFANA_URL`.
fn start_vm(dir: &Path, state: &mut BedState) -> Result<()> {
    let vm_dir = dir.join("vm");
    if vm_dir.exists() {
        std::fs::remove_dir_all(&vm_dir)
            .with_context(|| format!("removing {}", vm_dir.display()))?;
    }
    std::fs::create_dir_all(&vm_dir).with_context(|| format!("creating {}", vm_dir.display()))?;
    let mut cmd = process::command(sibling_binary("testbed")?);
    cmd.arg("vm-daemon")
        .arg("--dir")
        .arg(&vm_dir)
        .env("TMPDIR", &vm_dir);
    let mut daemon = process::Daemon::spawn("monitoring-vm", cmd, &vm_dir.join("vm.log"))?;
    let ready = vm_dir.join(NODE_READY);
    process::wait_until(
        "the simulated monitoring VM",
        Duration::from_secs(30),
        || {
            daemon.check_alive()?;
            Ok(ready.is_file())
        },
    )?;
    let info: VmInfo =
        serde_json::from_slice(&std::fs::read(&ready).context("reading the VM's ready file")?)
            .context("parsing the VM's ready file")?;
    state.services.push(Service {
        name: "monitoring-vm".to_owned(),
        pid: daemon.detach(),
        port: info.port,
    });
    state.add("TESTBED_VM_SSH_PORT", info.port.to_string());
    state.add(
        "TESTBED_VM_SSH_KNOWN_HOSTS",
        info.known_hosts.display().to_string(),
    );
    state.add("TESTBED_VM_SSH_KEY", info.client_key.display().to_string());
    state.add(
        "TESTBED_DOCKER_STATE",
        info.docker_state.display().to_string(),
    );
    state.add("GRAFANA_URL", info.grafana_url);
    Ok(())
}

/// A binary built next to the running one (`testbed`, `pve-sim`): the same directory, or its parent
/// when running from `target/debug/deps` (a test binary).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running binary")?;
    let dir = exe
        .parent()
        .context("the running binary has no directory")?;
    [
        dir.join(name),
        dir.parent().map(|p| p.join(name)).unwrap_or_default(),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .with_context(|| {
        format!(
            "`{name}` is not built next to {} (cargo build -p testbed)",
            exe.display()
        )
    })
}

/// Starts the simulated Proxmox node in the background (`testbed node-daemon`, which keeps the sshd
/// harness and its proxy alive) and adds its exports: `TESTBED_SSH_CONFIG`, `TESTBED_SSH_HOST`,
/// `TESTBED_SSH_PORT`, `TESTBED_SSH_USER`, `TESTBED_SSH_KNOWN_HOSTS`, `TESTBED_SSH_KEY`, `PVE_SIM_STATE`.
fn start_node(dir: &Path, state: &mut BedState) -> Result<()> {
    let node_dir = dir.join("node");
    if node_dir.exists() {
        std::fs::remove_dir_all(&node_dir)
            .with_context(|| format!("removing {}", node_dir.display()))?;
    }
    std::fs::create_dir_all(&node_dir)
        .with_context(|| format!("creating {}", node_dir.display()))?;
    let mut cmd = process::command(sibling_binary("testbed")?);
    cmd.arg("node-daemon")
        .arg("--dir")
        .arg(&node_dir)
        .env("TMPDIR", &node_dir);
    let mut daemon = process::Daemon::spawn("pve-node", cmd, &node_dir.join("node.log"))?;
    let ready = node_dir.join(NODE_READY);
    process::wait_until(
        "the simulated Proxmox node",
        Duration::from_secs(30),
        || {
            daemon.check_alive()?;
            Ok(ready.is_file())
        },
    )?;
    let info: NodeInfo =
        serde_json::from_slice(&std::fs::read(&ready).context("reading the node's ready file")?)
            .context("parsing the node's ready file")?;
    state.services.push(Service {
        name: "pve-node".to_owned(),
        pid: daemon.detach(),
        port: info.port,
    });
    state.add("TESTBED_SSH_CONFIG", info.ssh_config.display().to_string());
    state.add("TESTBED_SSH_HOST", info.alias.clone());
    state.add("TESTBED_SSH_PORT", info.port.to_string());
    state.add("TESTBED_SSH_USER", info.user.clone());
    state.add(
        "TESTBED_SSH_KNOWN_HOSTS",
        info.known_hosts.display().to_string(),
    );
    state.add("TESTBED_SSH_KEY", info.client_key.display().to_string());
    state.add("PVE_SIM_STATE", info.sim_state.display().to_string());
    Ok(())
}

/// What `testbed fleet-daemon` writes once its nodes listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetInfo {
    /// The fleet's ssh_config (one `Host <node>` per node).
    pub ssh_config: PathBuf,
    /// known_hosts trusting every node.
    pub known_hosts: PathBuf,
    /// `(env, node, port, simulator state)` per node.
    pub nodes: Vec<(String, String, u16, PathBuf)>,
}

/// Starts the fleet's nodes in the background (`testbed fleet-daemon`) and adds its exports:
/// `TESTBED_FLEET_SSH_CONFIG`, `TESTBED_FLEET_KNOWN_HOSTS`, and `TESTBED_FLEET_STATE_<ENV>` (each node's
/// `PVE_SIM_STATE`).
fn start_fleet(dir: &Path, options: &UpOptions, state: &mut BedState) -> Result<()> {
    let fleet_dir = dir.join("fleet");
    if fleet_dir.exists() {
        std::fs::remove_dir_all(&fleet_dir)
            .with_context(|| format!("removing {}", fleet_dir.display()))?;
    }
    std::fs::create_dir_all(&fleet_dir)
        .with_context(|| format!("creating {}", fleet_dir.display()))?;
    let mut cmd = process::command(sibling_binary("testbed")?);
    cmd.arg("fleet-daemon")
        .arg("--nodes")
        .arg(options.nodes.to_string())
        .arg("--cluster")
        .arg(options.cluster.to_string())
        .args(options.down.iter().flat_map(|n| ["--down", n.as_str()]))
        .arg("--dir")
        .arg(&fleet_dir)
        .env("TMPDIR", &fleet_dir);
    let mut daemon = process::Daemon::spawn("pve-fleet", cmd, &fleet_dir.join("fleet.log"))?;
    let ready = fleet_dir.join(NODE_READY);
    process::wait_until("the fleet's nodes", Duration::from_secs(60), || {
        daemon.check_alive()?;
        Ok(ready.is_file())
    })?;
    let info: FleetInfo =
        serde_json::from_slice(&std::fs::read(&ready).context("reading the fleet's ready file")?)
            .context("parsing the fleet's ready file")?;
    state.services.push(Service {
        name: "pve-fleet".to_owned(),
        pid: daemon.detach(),
        port: info.nodes.first().map_or(0, |n| n.2),
    });
    state.add(
        "TESTBED_FLEET_SSH_CONFIG",
        info.ssh_config.display().to_string(),
    );
    state.add(
        "TESTBED_FLEET_KNOWN_HOSTS",
        info.known_hosts.display().to_string(),
    );
    for (env, _, _, sim_state) in &info.nodes {
        state.add(
            &format!("TESTBED_FLEET_STATE_{}", env.to_uppercase()),
            sim_state.display().to_string(),
        );
    }
    Ok(())
}

/// The body of `testbed fleet-daemon`: the first `count` nodes of the fleet with the scenario's guests and
/// backups ([`crate::fleet`]); writes `ready.json` (a [`FleetInfo`]) and serves until killed.
pub fn serve_fleet(fleet_dir: &Path, count: usize, cluster: usize, down: &[String]) -> Result<()> {
    let down: Vec<&str> = down.iter().map(String::as_str).collect();
    let bed = crate::fleet::FleetBed::start_cluster(fleet_dir, count, &down, cluster)?;
    let info = FleetInfo {
        ssh_config: bed.ssh_config.clone(),
        known_hosts: bed.known_hosts.clone(),
        nodes: bed
            .nodes
            .iter()
            .map(|n| {
                (
                    n.env.clone(),
                    n.node.clone(),
                    n.port,
                    n.state.dir().to_owned(),
                )
            })
            .collect(),
    };
    let tmp = fleet_dir.join(".ready.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?).context("writing the ready file")?;
    std::fs::rename(&tmp, fleet_dir.join(NODE_READY)).context("writing the ready file")?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A real sshd on loopback serving the simulated node whose state is `sim_state`: `pve-sim` (built next to
/// the running binary) is linked under `bin_dir` as every Proxmox command and put first in the session's
/// `PATH`. Connect with the returned harness's alias and `ssh_config`, or its host, port, user, client key
/// and known_hosts.
pub fn node_sshd(sim_state: &Path, bin_dir: &Path) -> Result<crate::sshd::Sshd> {
    std::fs::create_dir_all(bin_dir).with_context(|| format!("creating {}", bin_dir.display()))?;
    let pve_sim = sibling_binary("pve-sim")?;
    for name in crate::sim::COMMANDS {
        std::os::unix::fs::symlink(&pve_sim, bin_dir.join(name))
            .with_context(|| format!("linking {name}"))?;
    }
    crate::sshd::Sshd::start_with(
        crate::sshd::SshdOptions::new()
            .path_prefix(bin_dir)
            .env("PVE_SIM_STATE", sim_state.display().to_string()),
    )
}

/// The body of `testbed node-daemon`: a standard node (storages `local` and `local-lvm`), a small homelab
/// of guests with one real backup each, served by sshd with the simulator first in `PATH`. Writes
/// `ready.json` (a [`NodeInfo`]) and then serves until killed; the sshd harness's lifeline stops sshd
/// when this process dies.
pub fn serve_node(node_dir: &Path) -> Result<()> {
    use crate::sim::{self, GuestType};
    let sim_dir = node_dir.join("state");
    let st = sim::State::create_standard(&sim_dir, "pve")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let guests = [
        sim::Guest::new(
            100,
            GuestType::Qemu,
            "pve",
            &[
                ("name", "jellyfin"),
                ("memory", "8192"),
                ("cores", "4"),
                ("tags", "media;prod"),
                ("net0", "virtio=BC:24:11:00:01:00,bridge=vmbr0"),
                ("scsi0", "local-lvm:vm-100-disk-0,size=32G"),
            ],
        ),
        sim::Guest::new(
            101,
            GuestType::Lxc,
            "pve",
            &[
                ("hostname", "pihole"),
                ("memory", "512"),
                ("swap", "512"),
                ("cores", "1"),
                ("ostype", "debian"),
                ("unprivileged", "1"),
                ("rootfs", "local-lvm:subvol-101-disk-0,size=8G"),
                (
                    "net0",
                    "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:01:01,ip=dhcp",
                ),
            ],
        ),
        sim::Guest::new(
            102,
            GuestType::Qemu,
            "pve",
            &[
                ("name", "monitoring"),
                ("memory", "4096"),
                ("cores", "2"),
                ("tags", "infra"),
                ("net0", "virtio=BC:24:11:00:01:02,bridge=vmbr0"),
                ("scsi0", "local-lvm:vm-102-disk-0,size=32G"),
            ],
        ),
    ];
    for (i, guest) in guests.iter().enumerate() {
        let mut guest = guest.clone();
        guest.status = "running".to_owned();
        st.add_guest(&guest)?;
        let spec = sim::fixtures::ArchiveSpec {
            size: 256 * 1024,
            ctime: now - 3600 * (i as i64 + 1),
            seed: i as u64,
        };
        st.add_backup(
            "local",
            &guest,
            &spec,
            &sim::fixtures::BackupOptions::default(),
        )?;
    }
    let sshd = node_sshd(&sim_dir, &node_dir.join("bin"))?;
    let info = NodeInfo {
        host: sshd.host().to_owned(),
        port: sshd.port(),
        user: sshd.user().to_owned(),
        alias: sshd.alias().to_owned(),
        ssh_config: sshd.ssh_config(),
        known_hosts: sshd.known_hosts(),
        client_key: sshd.client_key(),
        sim_state: sim_dir,
    };
    let tmp = node_dir.join(".ready.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?).context("writing the ready file")?;
    std::fs::rename(&tmp, node_dir.join(NODE_READY)).context("writing the ready file")?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn write_state(dir: &Path, state: &BedState) -> Result<()> {
    // One pidfile per daemon too, for shell users (`kill -- -"$(cat moto_server.pid)"`).
    for service in &state.services {
        let pidfile = dir.join(format!("{}.pid", service.name));
        std::fs::write(&pidfile, format!("{}\n", service.pid))
            .with_context(|| format!("writing {}", pidfile.display()))?;
    }
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
    let text = serde_json::to_vec_pretty(state).context("serialising the bed record")?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// Stops every recorded daemon (side by side) and removes the record. Returns the services that were
/// still running. A bed that is not up is not an error.
pub fn down(dir: &Path) -> Result<Vec<Service>> {
    let Some(state) = read_state(dir)? else {
        return Ok(Vec::new());
    };
    let stopped: Vec<Service> = thread::scope(|scope| {
        let handles: Vec<_> = state
            .services
            .iter()
            .map(|service| {
                scope.spawn(move || {
                    process::stop_group(service.pid, STOP_GRACE).then(|| service.clone())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    // A daemon that ignored SIGKILL's delivery window would show up here.
    if let Some(left) = state.services.iter().find(|s| {
        process::wait_until("exit", Duration::from_secs(2), || {
            Ok(!process::pid_alive(s.pid))
        })
        .is_err()
    }) {
        bail!("{} (pid {}) is still running", left.name, left.pid);
    }
    let path = dir.join(STATE_FILE);
    for service in &state.services {
        let _ = std::fs::remove_file(dir.join(format!("{}.pid", service.name)));
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(stopped)
}

/// Each recorded service and whether it is running; `None` if the bed is not up.
pub fn status(dir: &Path) -> Result<Option<Vec<(Service, bool)>>> {
    Ok(read_state(dir)?.map(|state| {
        state
            .services
            .into_iter()
            .map(|s| {
                let alive = process::pid_alive(s.pid);
                (s, alive)
            })
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_shell_quoted() {
        let state = BedState {
            schema: "testbed/v1".into(),
            dir: PathBuf::from("/tmp/x"),
            services: vec![],
            exports: vec![("A".into(), "it's".into()), ("B".into(), "/p q".into())],
        };
        assert_eq!(
            state.shell_exports(),
            "export A='it'\\''s'\nexport B='/p q'\n"
        );
    }
}
