//! `pve-bench`: the benchmark harness behind `bench/run`, and the small programs it measures.
//!
//! `pve-bench suite` generates the workloads, runs every benchmark against the test bed (whose `export`
//! lines `bench/run` puts in the environment), prints the table, and writes `bench/results/latest.json`
//! and `docs/PERFORMANCE.md`. `ssh-session` and `parse-plan` are the Rust sides of `ssh-reuse` and
//! `plan-scale`: pve-ssh's SSH session and check-drift's plan parser, measured as whole processes
//! exactly like the shell references next to them.
// Progress lines on stderr are this harness's user interface.
#![allow(clippy::print_stderr)]

mod harness;
mod suite;
mod workload;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshOptions, SshTarget, TransportKind};

/// Benchmarks of pve-tools against the bash scripts they replace. Exit status: 0 success, 1 failure.
#[derive(Debug, Parser)]
#[command(name = "pve-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmarks (needs the test bed's exports in the environment; see bench/run).
    Suite(suite::Options),
    /// Run `pvesh get /version` COUNT times over one pve-ssh SSH session to $TESTBED_SSH_HOST
    /// (resolved through $TESTBED_SSH_CONFIG).
    SshSession {
        /// How many commands.
        #[arg(long = "count", default_value_t = 50)]
        count: usize,
    },
    /// Read and classify a `terraform show -json` plan with check-drift's parser (`plan::read`, what
    /// check-drift runs on the output of `show -json`); print the number of changes per action as JSON.
    ParsePlan {
        /// The plan JSON.
        file: PathBuf,
    },
    /// Rewrite docs/PERFORMANCE.md from a saved report and bench/ANALYSIS.md, without measuring.
    Doc {
        /// The report.
        #[arg(long = "from", default_value = "bench/results/latest.json")]
        from: PathBuf,
        /// The repository.
        #[arg(long = "repo", default_value = ".")]
        repo: PathBuf,
    },
    /// Write the generated plan JSON of plan-scale (for trying the parsers by hand).
    GenPlan {
        /// How many resources.
        #[arg(long = "resources", default_value_t = 50_000)]
        resources: usize,
        /// Where to write it.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Suite(options) => suite::run(&options),
        Command::SshSession { count } => ssh_session(count),
        Command::ParsePlan { file } => parse_plan(&file),
        Command::Doc { from, repo } => suite::rewrite_doc(&from, &repo),
        Command::GenPlan { resources, file } => {
            workload::write_plan(&file, resources).and_then(|c| {
                pve_common::output::write_stdout(&format!(
                    "{}\n",
                    serde_json::to_string(&c.by_action)?
                ))?;
                Ok(())
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pve-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("${name} is not set (run under bench/run)"))
}

fn ssh_session(count: usize) -> Result<()> {
    let runner = Runner::new(false);
    let options = SshOptions {
        config_file: Some(PathBuf::from(env("TESTBED_SSH_CONFIG")?)),
        use_agent: false,
        ..SshOptions::default()
    };
    let transport = options.transport;
    let mut client = SshClient::new(&runner, &SshTarget::new(env("TESTBED_SSH_HOST")?), options)?;
    let command = RemoteCommand::read_only("pvesh").args(["get", "/version"]);
    let mut bytes = 0;
    for _ in 0..count {
        let out = client.ssh_exec(&command)?;
        bytes += out.map_or(0, |o| o.stdout.len());
    }
    let name = match transport {
        TransportKind::Libssh2 => "libssh2",
        TransportKind::OpenSsh => "openssh",
    };
    pve_common::output::write_stdout(&format!("{count} commands, {bytes} bytes, {name}\n"))?;
    Ok(())
}

fn parse_plan(file: &std::path::Path) -> Result<()> {
    // As check-drift does with the file `terraform show -json` wrote: one streaming pass.
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let summary = check_drift::plan::read(f, &HashSet::new()).context("reading the plan")?;
    let analysis = summary.analysis;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &analysis.resources {
        let action = serde_json::to_value(r.action)?;
        *counts
            .entry(action.as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    pve_common::output::write_stdout(&format!("{}\n", serde_json::to_string(&counts)?))?;
    Ok(())
}
