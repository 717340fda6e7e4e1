//! `testbed`: the test bed in the background for a shell session.
//!
//! `eval "$(testbed up)"` starts moto, the monitoring daemons and the simulated Proxmox node on
//! loopback and prints `export` lines; `testbed env` prints them again; `testbed status` lists the
//! daemons; `testbed down` stops them. `testbed fixture homelab DIR` lays out a homelab checkout in the
//! replaced scripts' layout for the compatibility suites; `testbed fixture s3-env DIR` an environment
//! whose state is in S3, for the tools' BATS suites.

// Test infrastructure (never shipped): a scenario or a simulated command reads best whole; the 80-line
// limit is for the tools' code.
#![allow(clippy::too_many_lines)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Exit codes: 0 success; 1 failure (or, for status, a daemon not running / bed not up);
/// 64 usage error.
#[derive(Debug, Parser)]
#[command(
    name = "testbed",
    version,
    about = "Start and stop the pve-tools test bed in the background"
)]
#[command(
    after_help = "Exit codes: 0 success, 1 failure (status: bed down or a daemon dead), 64 usage error."
)]
struct Cli {
    /// Bed directory (logs, data, Terraform copies, the testbed.json record).
    #[arg(long = "dir", global = true, env = "TESTBED_DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the fixture's flags costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Start the bed and print `export` lines for the shell on stdout.
    Up {
        /// Do not start node_exporter, Alertmanager, Prometheus and the monitoring VM.
        #[arg(long = "no-monitoring")]
        no_monitoring: bool,
        /// Run `terraform init` and `apply` in every environment so states exist in S3.
        #[arg(long = "apply")]
        apply: bool,
        /// Also start the fleet: one simulated node per environment (prod `pve-prod`, lab `pve-lab`,
        /// monitoring `pve-mon`), each with its own sshd port and simulator state, reached through
        /// `TESTBED_FLEET_SSH_CONFIG`; lay out a homelab naming them with `fixture homelab --fleet`.
        #[arg(long = "nodes", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=3))]
        nodes: Option<u8>,
        /// With --nodes: the last N nodes (2 or 3) are members of one cluster sharing the NFS storage
        /// `nas` (`shared: 1`): each lists the others' guests in `pvesh get /cluster/resources`.
        #[arg(long = "cluster", value_name = "N", requires = "nodes", value_parser = clap::value_parser!(u8).range(2..=3))]
        cluster: Option<u8>,
        /// With --nodes: this node of the fleet (`pve-prod`, `pve-lab`, `pve-mon`) is down: its state is laid
        /// out but nothing listens on its port (repeatable).
        #[arg(long = "down", value_name = "NODE", requires = "nodes")]
        down: Vec<String>,
    },
    /// Stop everything `up` started.
    Down,
    /// Print the `export` lines of the running bed again (for another shell).
    Env,
    /// List the bed's daemons and whether they run.
    Status,
    /// Lay out test fixtures.
    Fixture {
        #[command(subcommand)]
        fixture: Fixture,
    },
    /// (internal) Run the simulated Proxmox node in the foreground; `up` starts it in the background.
    #[command(hide = true)]
    NodeDaemon,
    /// (internal) Run the simulated monitoring VM in the foreground; `up` starts it in the background.
    #[command(hide = true)]
    VmDaemon,
    /// (internal) Run the fleet's nodes in the foreground; `up --nodes N` starts them in the background.
    #[command(hide = true)]
    FleetDaemon {
        /// How many nodes.
        #[arg(long = "nodes", default_value_t = 3)]
        nodes: u8,
        /// How many of them form a cluster.
        #[arg(long = "cluster", default_value_t = 0)]
        cluster: u8,
        /// A node that is down.
        #[arg(long = "down", value_name = "NODE")]
        down: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Fixture {
    /// A homelab checkout (root tfvars, prod/lab/monitoring with tfvars, scripts/ folders), TEST-NET
    /// addresses only; environments plan offline (in sync unless --drift or --error).
    Homelab {
        /// Where to lay it out (created if missing).
        dir: PathBuf,
        /// An environment whose plan shows one resource to create (repeatable).
        #[arg(long = "drift", value_name = "ENV")]
        drift: Vec<String>,
        /// An environment whose plan fails (repeatable).
        #[arg(long = "error", value_name = "ENV")]
        error: Vec<String>,
        /// An environment without terraform.tfvars (repeatable).
        #[arg(long = "without-tfvars", value_name = "ENV")]
        without_tfvars: Vec<String>,
        /// `ENV=URL`: that environment's proxmox_endpoint (repeatable).
        #[arg(long = "endpoint", value_name = "ENV=URL")]
        endpoint: Vec<String>,
        /// `IP[:PORT]` of prod's MinIO block (default 192.0.2.20, no port).
        #[arg(long = "minio", value_name = "IP[:PORT]")]
        minio: Option<String>,
        /// An environment given a local terraform.tfstate listing its guests of the fleet scenario
        /// (repeatable).
        #[arg(long = "state", value_name = "ENV")]
        state: Vec<String>,
        /// Each environment's proxmox_endpoint names its node of the fleet (`https://pve-prod:8006`...),
        /// which the fleet's ssh_config (`testbed up --nodes N`) resolves to loopback.
        #[arg(long = "fleet")]
        fleet: bool,
        /// `ENV=NODE`: that environment's default_node (repeatable).
        #[arg(long = "default-node", value_name = "ENV=NODE")]
        default_node: Vec<String>,
        /// `vm.ip` of the monitoring block (default 192.0.2.30).
        #[arg(long = "monitoring-ip", value_name = "IP")]
        monitoring_ip: Option<String>,
        /// `vm.vmid` of the monitoring block (default 9000).
        #[arg(long = "monitoring-vmid", value_name = "N")]
        monitoring_vmid: Option<u32>,
    },
    /// An environment whose state is in S3: `backend.tf` with the bed's `backend "s3"` block (state
    /// `<bucket>/<env>/terraform.tfstate`, path style, `use_lockfile`), and with --endpoint a
    /// `backend.hcl` naming the server, as the Rust tests lay them out.
    S3Env {
        /// The environment's folder (created if missing; its name is the environment's unless --env).
        dir: PathBuf,
        /// The environment, which names the state key (default: the folder's name).
        #[arg(long = "env", value_name = "ENV")]
        env: Option<String>,
        /// The state bucket.
        #[arg(long = "bucket", value_name = "BUCKET", default_value = testbed::terraform::STATE_BUCKET)]
        bucket: String,
        /// The S3 server, written to backend.hcl (none: the tool is given --endpoint).
        #[arg(long = "endpoint", value_name = "URL")]
        endpoint: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 64 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let dir = cli
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join("testbed"));
    match run(cli.command, dir) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "testbed: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command, dir: PathBuf) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    match command {
        Command::Up {
            no_monitoring,
            apply,
            nodes,
            cluster,
            down,
        } => {
            let options = testbed::bed::UpOptions {
                dir,
                monitoring: !no_monitoring,
                apply,
                nodes: nodes.map_or(0, usize::from),
                cluster: cluster.map_or(0, usize::from),
                down,
            };
            let state = testbed::bed::up(&options)?;
            out.write_all(state.shell_exports().as_bytes())?;
            writeln!(err, "testbed: up in {}", state.dir.display())?;
            Ok(0)
        }
        Command::Down => {
            let stopped = testbed::bed::down(&dir)?;
            writeln!(err, "testbed: stopped {} daemon(s)", stopped.len())?;
            Ok(0)
        }
        Command::Env => match testbed::bed::read_state(&dir)? {
            None => {
                writeln!(err, "testbed: not up in {}", dir.display())?;
                Ok(1)
            }
            Some(state) => {
                out.write_all(state.shell_exports().as_bytes())?;
                Ok(0)
            }
        },
        Command::Fixture {
            fixture:
                Fixture::Homelab {
                    dir: target,
                    drift,
                    error,
                    without_tfvars,
                    endpoint,
                    minio,
                    state,
                    fleet,
                    default_node,
                    monitoring_ip,
                    monitoring_vmid,
                },
        } => {
            let pairs = |flag: &str, values: &[String]| {
                values
                    .iter()
                    .map(|e| {
                        e.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .ok_or_else(|| anyhow::anyhow!("{flag} {e}: expected ENV=VALUE"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let mut endpoints: Vec<(String, String)> = if fleet {
                testbed::fleet::NODES
                    .iter()
                    .map(|(e, n)| ((*e).to_owned(), format!("https://{n}:8006")))
                    .collect()
            } else {
                Vec::new()
            };
            let given = pairs("--endpoint", &endpoint)?;
            endpoints.retain(|(e, _)| !given.iter().any(|(g, _)| g == e));
            endpoints.extend(given);
            let default_nodes = pairs("--default-node", &default_node)?;
            let minio = match minio {
                None => None,
                Some(m) => Some(match m.rsplit_once(':') {
                    Some((ip, port)) => (ip.to_owned(), Some(port.parse()?)),
                    None => (m, None),
                }),
            };
            let options = testbed::fixture::HomelabOptions {
                drift,
                error,
                without_tfvars,
                endpoints,
                minio,
                states: state,
                default_nodes,
                monitoring_ip,
                monitoring_vmid,
            };
            testbed::fixture::homelab(&target, &options)?;
            writeln!(err, "testbed: homelab fixture in {}", target.display())?;
            Ok(0)
        }
        Command::Fixture {
            fixture:
                Fixture::S3Env {
                    dir: target,
                    env,
                    bucket,
                    endpoint,
                },
        } => {
            let env = match env {
                Some(env) => env,
                None => target
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow::anyhow!("{}: no environment name", target.display()))?,
            };
            let backend = testbed::terraform::S3Backend {
                bucket,
                ..testbed::terraform::S3Backend::at(endpoint.as_deref().unwrap_or_default(), &env)
            };
            std::fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
            let mut files = vec![("backend.tf", backend.backend_block())];
            if endpoint.is_some() {
                files.push(("backend.hcl", backend.backend_hcl()));
            }
            for (name, text) in files {
                std::fs::write(target.join(name), text)
                    .with_context(|| format!("writing {}", target.join(name).display()))?;
            }
            writeln!(err, "testbed: S3 environment {env} in {}", target.display())?;
            Ok(0)
        }
        Command::NodeDaemon => {
            testbed::bed::serve_node(&dir)?;
            Ok(0)
        }
        Command::FleetDaemon {
            nodes,
            cluster,
            down,
        } => {
            testbed::bed::serve_fleet(&dir, usize::from(nodes), usize::from(cluster), &down)?;
            Ok(0)
        }
        Command::VmDaemon => {
            testbed::bed::serve_vm(&dir)?;
            Ok(0)
        }
        Command::Status => match testbed::bed::status(&dir)? {
            None => {
                writeln!(err, "testbed: not up in {}", dir.display())?;
                Ok(1)
            }
            Some(services) => {
                for (service, alive) in &services {
                    let state = if *alive { "running" } else { "stopped" };
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{state}",
                        service.name, service.pid, service.port
                    )?;
                }
                Ok(if services.iter().all(|(_, alive)| *alive) {
                    0
                } else {
                    1
                })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
