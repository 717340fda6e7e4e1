//! `testbed`: the test bed in the background for a shell session.
//!
//! `eval "$(testbed up)"` starts moto, the monitoring daemons and the simulated Proxmox node on
//! loopback and prints `export` lines; `testbed env` prints them again; `testbed status` lists the
//! daemons; `testbed down` stops them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the bed and print `export` lines for the shell on stdout.
    Up {
        /// Do not start node_exporter, Alertmanager and Prometheus.
        #[arg(long = "no-monitoring")]
        no_monitoring: bool,
        /// Run `terraform init` and `apply` in every environment so states exist in S3.
        #[arg(long = "apply")]
        apply: bool,
    },
    /// Stop everything `up` started.
    Down,
    /// Print the `export` lines of the running bed again (for another shell).
    Env,
    /// List the bed's daemons and whether they run.
    Status,
    /// (internal) Run the simulated Proxmox node in the foreground; `up` starts it in the background.
    #[command(hide = true)]
    NodeDaemon,
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
        } => {
            let options = testbed::bed::UpOptions {
                dir,
                monitoring: !no_monitoring,
                apply,
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
        Command::NodeDaemon => {
            testbed::bed::serve_node(&dir)?;
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
