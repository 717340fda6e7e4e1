//! The benchmarks of issue 11, their targets, the table and the reports.
//!
//! Every benchmark measures the Rust tool and the shell reference (`bench/ref/*.sh`, written the way the
//! bash scripts work) side by side in the same run, interleaved round by round, and compares medians.
//! A target that is missed is reported as missed; a benchmark whose tool is not built says so and
//! measures nothing on its behalf.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::harness::{Cmd, Stats, compare, run_once};
use crate::workload;

/// The tools whose start-up is measured.
const TOOLS: [&str; 6] = [
    "check-drift",
    "restore-tfstate",
    "restore-vm",
    "verify-backups",
    "rebuild-minio",
    "rebuild-monitoring",
];

/// Every benchmark id, in table order.
const IDS: [&str; 9] = [
    "ssh-reuse",
    "fleet-parallel",
    "drift-fanout",
    "plan-stream",
    "plan-scale",
    "verify-deep",
    "startup",
    "state-list",
    "state-memory",
];

/// Options of `pve-bench suite`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Smoke run: fewer repetitions (results are not representative and do not update the docs).
    #[arg(long = "quick")]
    pub quick: bool,
    /// Run only these benchmarks (comma-separated ids).
    #[arg(long = "only", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Benchmarks to run, as ids (the same as --only).
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Measured runs per command (default 5; 1 with --quick).
    #[arg(long = "runs")]
    pub runs: Option<usize>,
    /// Folder of the release binaries (the tools, pve-bench).
    #[arg(long = "bin-dir")]
    pub bin_dir: PathBuf,
    /// The repository (for bench/ref and the reports).
    #[arg(long = "repo")]
    pub repo: PathBuf,
    /// Work folder for generated workloads (kept between runs: plans and archives are reused).
    #[arg(long = "work")]
    pub work: PathBuf,
    /// Where the verify-backups binary is (default: in --bin-dir).
    #[arg(long = "verify-backups-bin", env = "VERIFY_BACKUPS_BIN")]
    pub verify_backups_bin: Option<PathBuf>,
    /// Load average and other facts about the machine, recorded in the reports.
    #[arg(long = "note")]
    pub note: Vec<String>,
}

/// A ratio with its target.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Ratio {
    /// What is divided by what.
    pub name: String,
    /// The value (`x` for speed-ups, fraction for memory and overhead).
    pub value: f64,
    /// The target, as text (`>= 20x`).
    pub target: String,
    /// Whether it is met.
    pub met: bool,
}

/// One benchmark's outcome.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Benchmark id.
    pub id: String,
    /// The workload.
    pub workload: String,
    /// `measured`, `not measured: <why>` or `failed: <why>`.
    pub status: String,
    /// Every command measured.
    pub candidates: Vec<Stats>,
    /// Ratios against targets.
    pub ratios: Vec<Ratio>,
    /// Facts worth keeping (sizes, throughput).
    pub notes: Vec<String>,
}

impl Outcome {
    fn new(id: &str, workload: &str) -> Self {
        Outcome {
            id: id.to_owned(),
            workload: workload.to_owned(),
            status: "measured".to_owned(),
            candidates: Vec::new(),
            ratios: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn median(&self, label: &str) -> f64 {
        self.candidates
            .iter()
            .find(|c| c.label == label)
            .map_or(f64::NAN, |c| c.median_s)
    }

    fn cpu(&self, label: &str) -> f64 {
        self.candidates
            .iter()
            .find(|c| c.label == label)
            .map_or(f64::NAN, |c| c.cpu_s)
    }

    fn rss(&self, label: &str) -> u64 {
        self.candidates
            .iter()
            .find(|c| c.label == label)
            .map_or(0, |c| c.max_rss_kib)
    }

    fn speedup(&mut self, slow: &str, fast: &str, min: f64) {
        let value = self.median(slow) / self.median(fast);
        self.ratios.push(Ratio {
            name: format!("{slow} / {fast}"),
            value,
            target: format!(">= {min}x"),
            met: value >= min,
        });
    }

    fn at_most(&mut self, name: String, value: f64, max: f64, unit: &str) {
        self.ratios.push(Ratio {
            name,
            value,
            target: format!("<= {max}{unit}"),
            met: value <= max,
        });
    }
}

/// The JSON report (`bench/results/latest.json`).
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Report {
    /// `pve-bench/v1`.
    pub schema: String,
    /// The commit measured (`git describe --always --dirty`).
    pub commit: String,
    /// When (UTC, RFC 3339).
    pub date: String,
    /// Smoke run.
    pub quick: bool,
    /// Machine facts: CPUs, load average before and after.
    pub machine: Vec<String>,
    /// Every benchmark.
    pub benchmarks: Vec<Outcome>,
}

struct Ctx<'a> {
    opts: &'a Options,
    warmup: usize,
    runs: usize,
}

impl Ctx<'_> {
    fn bin(&self, name: &str) -> PathBuf {
        self.opts.bin_dir.join(name)
    }

    fn script(&self, name: &str) -> PathBuf {
        self.opts.repo.join("bench/ref").join(name)
    }

    fn work(&self, sub: &str) -> Result<PathBuf> {
        let dir = self.opts.work.join(sub);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("${name} is not set (run under bench/run)"))
}

/// Runs the selected benchmarks and writes the reports.
// The driver reads in the order it runs: options, machine facts, each benchmark, the reports.
#[allow(clippy::too_many_lines)]
pub fn run(opts: &Options) -> Result<()> {
    let mut merged = opts.clone();
    merged.only.extend(opts.ids.iter().cloned());
    let opts = &merged;
    for id in &opts.only {
        if !IDS.contains(&id.as_str()) {
            bail!("unknown benchmark `{id}` (known: {})", IDS.join(", "));
        }
    }
    let ctx = Ctx {
        opts,
        warmup: 1,
        runs: opts.runs.unwrap_or(if opts.quick { 1 } else { 5 }).max(1),
    };
    let mut machine = vec![format!(
        "{} CPUs ({})",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model()
    )];
    machine.push(format!("load average before: {}", loadavg()));
    machine.extend(opts.note.iter().cloned());
    let mut benchmarks = Vec::new();
    for id in IDS {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == id) {
            continue;
        }
        eprintln!("bench: {id} (load average {})", loadavg());
        let outcome = match id {
            "ssh-reuse" => ssh_reuse(&ctx),
            "fleet-parallel" => fleet_parallel(&ctx),
            "drift-fanout" => drift_fanout(&ctx),
            "plan-stream" => plan_stream(&ctx),
            "plan-scale" => plan_scale(&ctx),
            "verify-deep" => verify_deep(&ctx),
            "startup" => startup(&ctx),
            "state-memory" => state_memory(&ctx),
            _ => state_list(&ctx),
        };
        let outcome = outcome.unwrap_or_else(|e| {
            eprintln!("bench: {id} failed: {e:#}");
            let mut o = Outcome::new(id, "");
            o.status = format!("failed: {}", first_line(&format!("{e:#}")));
            o
        });
        benchmarks.push(outcome);
    }
    machine.push(format!("load average after: {}", loadavg()));
    let commit = git(
        &opts.repo,
        &["describe", "--always", "--dirty", "--abbrev=12"],
    );
    let date = git_date();
    let results = opts.repo.join("bench/results");
    let partial = !opts.quick && !opts.only.is_empty();
    let report = if partial {
        // A run of some benchmarks updates their rows in the last full report; each says when and where
        // it was measured, since the report's header describes the full run.
        let mut report: Report = fs::read(results.join("latest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .context(
                "a partial run updates bench/results/latest.json, which is missing or unreadable",
            )?;
        for mut outcome in benchmarks {
            outcome.notes.insert(
                0,
                format!(
                    "measured alone (bench/run {}): commit {commit}, {date}; {}",
                    outcome.id,
                    machine.join("; ")
                ),
            );
            match report.benchmarks.iter_mut().find(|b| b.id == outcome.id) {
                Some(old) => *old = outcome,
                None => report.benchmarks.push(outcome),
            }
        }
        report
            .benchmarks
            .sort_by_key(|b| IDS.iter().position(|id| *id == b.id));
        report
    } else {
        Report {
            schema: "pve-bench/v1".to_owned(),
            commit,
            date,
            quick: opts.quick,
            machine,
            benchmarks,
        }
    };
    let table = table(&report);
    pve_common::output::write_stdout(&table)?;
    fs::create_dir_all(&results)?;
    let name = if opts.quick {
        "quick.json"
    } else {
        "latest.json"
    };
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    fs::write(results.join(name), json)?;
    eprintln!("bench: wrote bench/results/{name}");
    if !opts.quick {
        write_doc(&report, &opts.repo)?;
    }
    Ok(())
}

/// Writes `docs/PERFORMANCE.md` from `report` and `bench/ANALYSIS.md`.
pub fn write_doc(report: &Report, repo: &Path) -> Result<()> {
    let doc = performance_doc(report, &table(report), repo)?;
    fs::write(repo.join("docs/PERFORMANCE.md"), doc)?;
    eprintln!("bench: wrote docs/PERFORMANCE.md");
    Ok(())
}

/// Rewrites `docs/PERFORMANCE.md` from a saved report (after editing `bench/ANALYSIS.md`).
pub fn rewrite_doc(json: &Path, repo: &Path) -> Result<()> {
    let report: Report = serde_json::from_slice(
        &fs::read(json).with_context(|| format!("reading {}", json.display()))?,
    )
    .with_context(|| format!("parsing {}", json.display()))?;
    write_doc(&report, repo)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_owned()
}

/// The whole homelab at once: verify-backups with no argument on the fleet (three nodes, one per
/// environment), `pve-lab` made slow by the simulator's delay knob, against the same run narrowed to that
/// slow node alone. The nodes are checked side by side, so three cost about what the slowest one does.
fn fleet_parallel(ctx: &Ctx<'_>) -> Result<Outcome> {
    let delay = 1.5;
    let mut o = Outcome::new(
        "fleet-parallel",
        "verify-backups, 3 nodes (one per environment), pve-lab slowed by 1.5 s per pvesh call, vs pve-lab alone",
    );
    let dir = ctx.work("fleet")?;
    for sub in ["bed", "homelab"] {
        let p = dir.join(sub);
        if p.exists() {
            fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let bed = testbed::fleet::FleetBed::start(&dir.join("bed"), 3, &[])?;
    let slow = bed.node("lab").context("the fleet has no lab node")?;
    slow.state.set_faults(&testbed::sim::state::Faults {
        delay: vec![testbed::sim::state::DelayFault {
            command: "pvesh".to_owned(),
            seconds: delay,
            times: None,
        }],
        ..Default::default()
    })?;
    let root = dir.join("homelab");
    // States are local; the MinIO block points at a closed loopback port, so the state check fails at once
    // and the time measured is the nodes'.
    let closed = testbed::ports::free_port()?;
    testbed::fixture::homelab(
        &root,
        &testbed::fixture::HomelabOptions {
            endpoints: bed.endpoints(),
            minio: Some(("127.0.0.1".to_owned(), Some(closed))),
            states: testbed::fleet::NODES
                .iter()
                .map(|(e, _)| (*e).to_owned())
                .collect(),
            ..Default::default()
        },
    )?;
    let user = bed
        .nodes
        .iter()
        .find_map(|n| n.sshd.as_ref())
        .context("no node is up")?
        .user()
        .to_owned();
    let run = |label: &str, extra: &[&str]| {
        let mut argv: Vec<OsString> = vec![
            ctx.bin("verify-backups").into_os_string(),
            "--homelab".into(),
            root.clone().into_os_string(),
        ];
        argv.extend(extra.iter().map(OsString::from));
        Cmd::new(label, argv)
            .env("PVE_SSH_CONFIG", &bed.ssh_config)
            .env("HOMELAB_KNOWN_HOSTS", &bed.known_hosts)
            .env("PVE_SSH_USER", &user)
            .env("PVE_VERIFY_MANIFEST", dir.join("manifest"))
            // Prod's managed guest without a backup and the unreachable MinIO: exit 2 by design.
            .ok_codes(&[0, 1, 2])
    };
    let three = "verify-backups: 3 nodes";
    let one = "verify-backups: the slow node alone (--env lab)";
    o.candidates = compare(&[run(three, &[]), run(one, &["--env", "lab"])], 1, ctx.runs)?;
    let ratio = o.median(three) / o.median(one);
    o.at_most(format!("{three} / {one}"), ratio, 1.3, "x");
    o.notes.push(format!(
        "pve-lab sleeps {delay} s in every pvesh call; the other nodes answer at once"
    ));
    Ok(o)
}

fn ssh_reuse(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = "50";
    let mut o = Outcome::new(
        "ssh-reuse",
        "50 x `pvesh get /version` on the simulated node over the bed's sshd",
    );
    let session = Cmd::new(
        "pve-common session (libssh2)",
        [
            ctx.bin("pve-bench").into_os_string(),
            "ssh-session".into(),
            "--count".into(),
            n.into(),
        ],
    )
    .env("PVE_SSH_TRANSPORT", "libssh2");
    let master = Cmd::new(
        "pve-common session (openssh master)",
        [
            ctx.bin("pve-bench").into_os_string(),
            "ssh-session".into(),
            "--count".into(),
            n.into(),
        ],
    )
    .env("PVE_SSH_TRANSPORT", "openssh");
    let one = Cmd::new(
        "connect + 1 command (libssh2)",
        [
            ctx.bin("pve-bench").into_os_string(),
            "ssh-session".into(),
            "--count".into(),
            "1".into(),
        ],
    )
    .env("PVE_SSH_TRANSPORT", "libssh2");
    let reference = Cmd::new(
        "shell: ssh per command",
        [ctx.script("ssh-per-command.sh").into_os_string(), n.into()],
    );
    o.candidates = compare(&[session, master, one, reference], ctx.warmup, ctx.runs)?;
    o.speedup(
        "shell: ssh per command",
        "pve-common session (libssh2)",
        20.0,
    );
    o.notes.push(format!(
        "with the OpenSSH transport (one ControlMaster connection, an `ssh` process per command): {:.1}x",
        o.median("shell: ssh per command") / o.median("pve-common session (openssh master)")
    ));
    let per_cmd = (o.median("pve-common session (libssh2)")
        - o.median("connect + 1 command (libssh2)"))
        / 49.0;
    o.notes.push(format!(
        "per command over the open session: {:.1} ms; per fresh ssh: {:.1} ms; connection set-up + 1 command: {:.1} ms",
        per_cmd * 1e3,
        o.median("shell: ssh per command") / 50.0 * 1e3,
        o.median("connect + 1 command (libssh2)") * 1e3
    ));
    Ok(o)
}

// A benchmark reads in the order it runs: set-up, reference, measured runs, verdict.
#[allow(clippy::too_many_lines)]
fn drift_fanout(ctx: &Ctx<'_>) -> Result<Outcome> {
    let (envs, resources) = (6, 50);
    let mut o = Outcome::new(
        "drift-fanout",
        "check-drift --all: 6 envs x 50 terraform_data, S3 backend on moto, 3 pending changes per env",
    );
    let root = ctx.work("drift")?.join("environments");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    let endpoint = env("TESTBED_S3_ENDPOINT")?;
    let bucket = env("TESTBED_S3_BUCKET")?;
    let dirs = workload::write_envs(&root, envs, resources, &endpoint, &bucket)?;
    let terraform = which("terraform")?;
    eprintln!("bench:   terraform init + apply in {envs} environments");
    for dir in &dirs {
        run_once(
            &Cmd::new(
                "init",
                [
                    terraform.as_os_str(),
                    "init".as_ref(),
                    "-input=false".as_ref(),
                    "-no-color".as_ref(),
                ],
            )
            .dir(dir),
            false,
        )?;
        run_once(
            &Cmd::new(
                "apply",
                [
                    terraform.as_os_str(),
                    "apply".as_ref(),
                    "-auto-approve".as_ref(),
                    "-input=false".as_ref(),
                    "-no-color".as_ref(),
                    "-var=revision=1".as_ref(),
                ],
            )
            .dir(dir),
            false,
        )?;
    }
    let lock = ctx.work("drift")?.join("run.lock");
    let check = |label: &str, jobs: Option<&str>| {
        let mut argv: Vec<OsString> = vec![
            ctx.bin("check-drift").into(),
            "--all".into(),
            "--root".into(),
            root.clone().into(),
            "--terraform-bin".into(),
            terraform.clone().into(),
            "--lock-file".into(),
            lock.clone().into(),
            "--json".into(),
        ];
        if let Some(j) = jobs {
            argv.extend(["--jobs".into(), j.into()]);
        }
        Cmd::new(label, argv).ok_codes(&[0, 2])
    };
    // Check once that check-drift sees what the fixtures hold, so a broken run is not timed.
    let (_, out) = run_once(&check("probe", Some("2")), true)?;
    let doc: serde_json::Value = serde_json::from_slice(&out).context("check-drift --json")?;
    let found = doc["environments"].as_array().map_or(0, |envs| {
        envs.iter()
            .map(|e| e["resources"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    });
    o.notes.push(format!(
        "check-drift found {found} changed resources (expected {})",
        envs * 3
    ));
    let auto = check("check-drift --jobs auto", None);
    let serial = check("check-drift --jobs 1", Some("1"));
    let shell = Cmd::new(
        "shell: loop init+plan+show+jq",
        [
            ctx.script("drift-loop.sh").into_os_string(),
            root.clone().into(),
        ],
    )
    .env("TF_BIN", &terraform);
    let bare = Cmd::new(
        "bare terraform plan loop",
        [
            ctx.script("terraform-plan-loop.sh").into_os_string(),
            root.clone().into(),
        ],
    )
    .env("TF_BIN", &terraform);
    let bare_parallel = Cmd::new(
        "bare terraform plan, one per CPU at a time",
        [
            ctx.script("terraform-plan-parallel.sh").into_os_string(),
            root.clone().into(),
        ],
    )
    .env("TF_BIN", &terraform);
    o.candidates = compare(
        &[auto, serial, shell, bare, bare_parallel],
        ctx.warmup,
        ctx.runs,
    )?;
    o.speedup("check-drift --jobs 1", "check-drift --jobs auto", 1.7);
    o.notes.push(format!(
        "the same speed-up for bare `terraform plan` (one per CPU at a time vs one after another), the most \
         any tool running Terraform gets here: {:.2}x",
        o.median("bare terraform plan loop") / o.median("bare terraform plan, one per CPU at a time")
    ));
    o.speedup(
        "shell: loop init+plan+show+jq",
        "check-drift --jobs auto",
        1.0,
    );
    let overhead = o.median("check-drift --jobs 1") / o.median("bare terraform plan loop") - 1.0;
    o.at_most(
        "check-drift --jobs 1 over bare terraform plan loop (overhead)".to_owned(),
        overhead * 100.0,
        10.0,
        "%",
    );
    let overhead_same =
        o.median("check-drift --jobs 1") / o.median("shell: loop init+plan+show+jq") - 1.0;
    o.notes.push(format!(
        "check-drift --jobs 1 vs the shell loop running the same three terraform steps: {:+.1}%",
        overhead_same * 100.0
    ));
    Ok(o)
}

/// The generated environment of `plan-stream`: `count` VMs on the simulated node.
fn generated_vms_tf(count: usize) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    proxmox = {{
      source = "pve-tools.test/sim/proxmox"
    }}
  }}
}}

provider "proxmox" {{
  endpoint = "https://192.0.2.10:8006/"
}}

resource "proxmox_virtual_environment_vm" "vm" {{
  count     = {count}
  node_name = "pve"
  vm_id     = 2000 + count.index
  name      = "bench-${{count.index}}"
  tags      = ["bench"]

  memory {{
    dedicated = 512
  }}
}}
"#
    )
}

/// A `terraform` that logs the command it is run with (its first argument) to `log`, then runs it.
fn counting_terraform(dir: &Path, terraform: &Path, log: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("counting-terraform");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            terraform.display()
        ),
    )?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// Issue 20: what a nightly check costs next to a bare `terraform plan` of the same environment, in sync
/// and drifted, on the example homelab (prod) and on 200 generated VMs, through the simulated provider.
// A benchmark reads in the order it runs: set-up, reference, measured runs, verdict.
#[allow(clippy::too_many_lines)]
fn plan_stream(ctx: &Ctx<'_>) -> Result<Outcome> {
    use testbed::terraform::{Sim, copy_tree, example_homelab_dir, seed_example_guests};
    let vms = 200;
    let mut o = Outcome::new(
        "plan-stream",
        "check-drift --env E --jobs 1 vs bare `terraform plan -detailed-exitcode` in E, in sync and drifted \
         (one VM's memory changed on the node): the example homelab's prod (3 VMs) and a generated \
         environment of 200 VMs, through the simulated provider (debug build, as the test bed runs it); \
         initialised folders, local backend",
    );
    let work = ctx.work("plan-stream")?;
    for sub in ["homelab", "generated", "sim", "out"] {
        let dir = work.join(sub);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
    }
    let sim = Sim::install(&work.join("sim"))?;
    seed_example_guests(&sim)?;
    let terraform = which("terraform")?;
    let homelab = work.join("homelab");
    copy_tree(&example_homelab_dir(), &homelab)?;
    let _ = fs::remove_dir_all(homelab.join(".sim"));
    let gen_root = work.join("generated");
    let gen_dir = gen_root.join("vms200");
    fs::create_dir_all(&gen_dir)?;
    fs::write(gen_dir.join("main.tf"), generated_vms_tf(vms))?;
    let out = work.join("out");
    fs::create_dir_all(&out)?;
    let tf_env = |cmd: Cmd, state: &Path| {
        cmd.env("TF_CLI_CONFIG_FILE", sim.cli_config())
            .env("PVE_SIM_STATE", state)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
    };
    let tf = |dir: &Path, args: &[&str]| {
        let mut argv = vec![terraform.clone().into_os_string()];
        argv.extend(args.iter().map(OsString::from));
        run_once(
            &tf_env(Cmd::new("setup", argv), sim.state_dir()).dir(dir),
            false,
        )
    };
    let prod = homelab.join("environments/prod");
    eprintln!("bench:   terraform init in the example's prod; init + apply of {vms} VMs");
    tf(&prod, &["init", "-input=false", "-no-color"])?;
    tf(&gen_dir, &["init", "-input=false", "-no-color"])?;
    tf(
        &gen_dir,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-parallelism=20",
        ],
    )?;
    // The drifted node: a copy of the state directory where someone changed two VMs' memory.
    let drifted = work.join("sim/state-drifted");
    copy_tree(sim.state_dir(), &drifted)?;
    let drifted_sim = sim.with_state_dir(&drifted);
    drifted_sim.run("qm", &["set", "100", "--memory", "10240"])?;
    drifted_sim.run("qm", &["set", "2000", "--memory", "4096"])?;

    let check = |label: &str, root: &Path, env: &str, state: &Path, bin: &Path| {
        let argv: Vec<OsString> = vec![
            ctx.bin("check-drift").into(),
            "--root".into(),
            root.into(),
            "--env".into(),
            env.into(),
            "--jobs".into(),
            "1".into(),
            "--terraform-bin".into(),
            bin.into(),
            "--lock-file".into(),
            out.join("run.lock").into(),
            "--textfile-dir".into(),
            out.join("textfile").into(),
            "--report-dir".into(),
            out.join("reports").into(),
            "--state-file".into(),
            out.join("state.json").into(),
            "--json".into(),
        ];
        tf_env(Cmd::new(label, argv), state).ok_codes(&[0, 1, 2])
    };
    let bare = |label: &str, dir: &Path, state: &Path| {
        tf_env(
            Cmd::new(
                label,
                [
                    terraform.as_os_str(),
                    "plan".as_ref(),
                    "-detailed-exitcode".as_ref(),
                    "-input=false".as_ref(),
                    "-no-color".as_ref(),
                ],
            ),
            state,
        )
        .dir(dir)
        .ok_codes(&[0, 2])
    };
    fs::create_dir_all(out.join("textfile"))?;
    fs::create_dir_all(out.join("reports"))?;
    let workloads = [
        (
            "homelab prod",
            homelab.join("environments"),
            "prod",
            prod.clone(),
        ),
        ("200 VMs", gen_root.clone(), "vms200", gen_dir.clone()),
    ];
    // What each check runs, counted by a wrapper, and what it found (checked before anything is timed).
    let log = out.join("calls");
    let counting = counting_terraform(&out, &terraform, &log)?;
    for (name, root, env, _) in &workloads {
        for (state, status, max) in [
            (sim.state_dir(), "in_sync", 1.0),
            (drifted.as_path(), "drift", 2.0),
        ] {
            let _ = fs::remove_file(&log);
            let (_, stdout) = run_once(&check("probe", root, env, state, &counting), true)?;
            let doc: serde_json::Value =
                serde_json::from_slice(&stdout).context("check-drift --json")?;
            let found = doc["environments"][0]["status"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            if found != status {
                bail!("{name}: check-drift found {found}, expected {status}");
            }
            let calls = fs::read_to_string(&log).unwrap_or_default();
            let verbs: Vec<&str> = calls.lines().collect();
            o.at_most(
                format!(
                    "{name}: Terraform processes, {status} ({})",
                    verbs.join(" + ")
                ),
                verbs.len() as f64,
                max,
                " processes",
            );
        }
    }
    let mut cmds = Vec::new();
    for (name, root, env, dir) in &workloads {
        cmds.push(check(
            &format!("{name}: check-drift, in sync"),
            root,
            env,
            sim.state_dir(),
            &terraform,
        ));
        cmds.push(bare(
            &format!("{name}: bare plan, in sync"),
            dir,
            sim.state_dir(),
        ));
        cmds.push(check(
            &format!("{name}: check-drift, drifted"),
            root,
            env,
            &drifted,
            &terraform,
        ));
        cmds.push(bare(&format!("{name}: bare plan, drifted"), dir, &drifted));
    }
    o.candidates = compare(&cmds, ctx.warmup, ctx.runs)?;
    for (name, ..) in &workloads {
        for (state, max) in [("in sync", 1.10), ("drifted", 1.70)] {
            let ratio = o.median(&format!("{name}: check-drift, {state}"))
                / o.median(&format!("{name}: bare plan, {state}"));
            o.at_most(
                format!("{name}: check-drift / bare plan, {state}"),
                ratio,
                max,
                "x",
            );
            let cpu = o.cpu(&format!("{name}: check-drift, {state}"))
                / o.cpu(&format!("{name}: bare plan, {state}"));
            o.notes
                .push(format!("{name}, {state}: CPU ratio {cpu:.2}x"));
        }
    }
    Ok(o)
}

fn plan_scale(ctx: &Ctx<'_>) -> Result<Outcome> {
    let n = 50_000;
    let mut o = Outcome::new(
        "plan-scale",
        "parse + classify a generated 50,000-resource plan JSON",
    );
    let dir = ctx.work("plan")?;
    let path = dir.join("plan.json");
    let stamp = format!("plan n={n} v1");
    if !workload::is_done(&dir, &stamp) {
        eprintln!("bench:   generating {}", path.display());
        let counts = workload::write_plan(&path, n)?;
        fs::write(
            dir.join("expected.json"),
            serde_json::to_vec(&counts.by_action)?,
        )?;
        workload::mark_done(&dir, &stamp)?;
    }
    let size = fs::metadata(&path)?.len();
    o.notes
        .push(format!("plan file: {:.0} MiB", size as f64 / 1048576.0));
    let tool = Cmd::new(
        "check-drift parser",
        [
            ctx.bin("pve-bench").into_os_string(),
            "parse-plan".into(),
            path.clone().into(),
        ],
    );
    let jq = Cmd::new(
        "shell: jq count",
        [
            ctx.script("plan-count.sh").into_os_string(),
            path.clone().into(),
        ],
    );
    o.candidates = compare(&[tool, jq], ctx.warmup.max(1), ctx.runs)?;
    // Both must have counted the same changes as the generator wrote (checked on the warm-up output).
    let expected: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("expected.json"))?)?;
    for c in &o.candidates {
        let got: serde_json::Value =
            serde_json::from_slice(&c.first_stdout).with_context(|| {
                format!(
                    "{} printed {}",
                    c.label,
                    String::from_utf8_lossy(&c.first_stdout)
                )
            })?;
        if got != expected {
            bail!("{} counted {got}, expected {expected}", c.label);
        }
    }
    o.notes.push(format!("both count {expected}"));
    o.notes.push(
        "check-drift parser: `pve-bench parse-plan`, i.e. `check_drift::plan::read` streaming the file, the \
         code check-drift runs on the output of `terraform show -json`"
            .to_owned(),
    );
    o.speedup("shell: jq count", "check-drift parser", 5.0);
    let rss = o.rss("check-drift parser") as f64 * 1024.0 / size as f64;
    o.at_most(
        "check-drift parser peak RSS / file size".to_owned(),
        rss,
        0.5,
        "x",
    );
    o.notes.push(format!(
        "parser throughput {:.0} MiB/s; jq peak RSS {:.1}x the file",
        size as f64 / 1048576.0 / o.median("check-drift parser"),
        o.rss("shell: jq count") as f64 * 1024.0 / size as f64
    ));
    Ok(o)
}

// A benchmark reads in the order it runs: set-up, reference, measured runs, verdict.
#[allow(clippy::too_many_lines)]
fn verify_deep(ctx: &Ctx<'_>) -> Result<Outcome> {
    let (count, size) = (4, 512 * 1024 * 1024);
    let mut o = Outcome::new(
        "verify-deep",
        "4 archives of 512 MiB (.vma.zst, .tar.zst) in a local dump folder",
    );
    let dir = ctx.work("archives")?;
    let stamp = format!("archives {count}x{size} v1");
    let node = dir.join("node");
    if !workload::is_done(&dir, &stamp) {
        eprintln!(
            "bench:   writing {count} archives of {} MiB",
            size / 1048576
        );
        let dump = workload::write_archives(&node, count, size)?;
        fs::write(dir.join("dump-dir"), dump.display().to_string())?;
        workload::mark_done(&dir, &stamp)?;
    }
    let dump = PathBuf::from(fs::read_to_string(dir.join("dump-dir"))?.trim());
    let total: u64 = fs::read_dir(&dump)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "zst"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    o.notes.push(format!(
        "{count} archives, {:.0} MiB compressed in {}",
        total as f64 / 1048576.0,
        dump.display()
    ));
    let pair = Cmd::new(
        "shell: zstd -t + sha256sum",
        [
            ctx.script("verify-pair.sh").into_os_string(),
            dump.clone().into(),
        ],
    );
    let zstd = Cmd::new(
        "shell: zstd -t alone",
        [
            ctx.script("verify-zstd.sh").into_os_string(),
            dump.clone().into(),
        ],
    );
    let bin = ctx
        .opts
        .verify_backups_bin
        .clone()
        .unwrap_or_else(|| ctx.bin("verify-backups"));
    // verify-backups takes its inventory (guests, backups, sizes) from the node: serve the archives'
    // simulated node over a real sshd for the length of this benchmark (stopped when `node` drops).
    let sshd = serve_archives_node(ctx, &node).context("starting the simulated node")?;
    // Two runs of the tool: the bash scripts' pair hashes every byte, so the run compared with it keeps a
    // manifest (every archive recorded once, then hashed and compared on each run); a plain `--deep` has
    // nothing to compare a hash with and does not hash, so it is the one compared with `zstd -t` alone.
    let manifest = dir.join("bench.manifest");
    let _ = fs::remove_file(&manifest);
    let no_manifest = dir.join("no.manifest");
    let _ = fs::remove_file(&no_manifest);
    let node_flags = node_args(&sshd);
    let hashing = deep_verify_command(
        &bin,
        &dump,
        &node_flags,
        HASHING,
        &["--manifest".into(), manifest.into()],
    );
    let plain = deep_verify_command(
        &bin,
        &dump,
        &node_flags,
        PLAIN,
        &["--manifest".into(), no_manifest.into()],
    );
    let mut cmds = vec![pair, zstd];
    // Hashing every byte with SHA-256 costs about as much CPU as decompressing it; this reference shows
    // what the two together cost at best, so the hashing run's CPU can be read against it.
    let floor = which_openssl().then(|| {
        Cmd::new(
            "floor: zstd -t + openssl sha256",
            [
                ctx.script("verify-floor.sh").into_os_string(),
                dump.clone().into(),
            ],
        )
    });
    cmds.extend(floor.clone());
    for tool in [&plain, &hashing] {
        match tool {
            Ok(cmd) => cmds.insert(0, cmd.clone()),
            Err(why) => o.status = format!("not measured: {why}"),
        }
    }
    o.candidates = compare(&cmds, ctx.warmup, ctx.runs)?;
    o.notes.push(format!(
        "zstd -t alone: {:.0} MiB/s of compressed input",
        total as f64 / 1048576.0 / o.median("shell: zstd -t alone")
    ));
    if hashing.is_ok() {
        o.speedup("shell: zstd -t + sha256sum", HASHING, 1.5);
        if floor.is_some() {
            o.notes.push(format!(
                "CPU floor of decompress + SHA-256 (zstd -t, then openssl's SHA-NI SHA-256, same files): {:.2} s; `{HASHING}` uses {:.2}x that",
                o.cpu("floor: zstd -t + openssl sha256"),
                o.cpu(HASHING) / o.cpu("floor: zstd -t + openssl sha256")
            ));
        }
    }
    if plain.is_ok() {
        // "Within 1.25x of zstd -t on one core-equivalent": the tool spreads the archives over both
        // cores and also parses VMA/tar, so CPU time (user + system) is what compares with the
        // single-threaded zstd -t.
        let within = o.cpu(PLAIN) / o.cpu("shell: zstd -t alone");
        o.at_most(
            format!("{PLAIN} CPU / zstd -t alone CPU"),
            within,
            1.25,
            "x",
        );
        o.notes.push(format!(
            "{PLAIN}: {:.0} MiB/s wall, {:.0} MiB/s per CPU-second (SSH inventory included)",
            total as f64 / 1048576.0 / o.median(PLAIN),
            total as f64 / 1048576.0 / o.cpu(PLAIN)
        ));
    }
    drop(sshd);
    Ok(o)
}

/// Whether `openssl` is on `PATH` (for the verify-deep floor reference).
fn which_openssl() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("openssl").is_file()))
}

/// Serves the simulated node of the verify-deep archives (`$BENCH_WORK/archives/node`, written by
/// [`workload::write_archives`]) over a real sshd with the simulator first in `PATH`, as
/// `testbed::bed::serve_node` does for the test bed's own node.
fn serve_archives_node(ctx: &Ctx<'_>, node: &Path) -> Result<testbed::sshd::Sshd> {
    let bin_dir = ctx.work("archives/bin")?;
    let pve_sim = ctx.bin("pve-sim");
    if !pve_sim.is_file() {
        bail!(
            "{} is not built (cargo build --release -p testbed)",
            pve_sim.display()
        );
    }
    for name in testbed::sim::COMMANDS {
        let link = bin_dir.join(name);
        if fs::symlink_metadata(&link).is_ok() {
            fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&pve_sim, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    testbed::sshd::Sshd::start_with(
        testbed::sshd::SshdOptions::new()
            .path_prefix(&bin_dir)
            .env("PVE_SIM_STATE", node.display().to_string()),
    )
}

/// The flags that point verify-backups at the served node. The archives carry fixed old dates (they are
/// reused between runs), so freshness is not what is measured here: `--max-age` covers them.
fn node_args(sshd: &testbed::sshd::Sshd) -> Vec<OsString> {
    vec![
        "--host".into(),
        sshd.host().into(),
        "--ssh-port".into(),
        sshd.port().to_string().into(),
        "--ssh-user".into(),
        sshd.user().into(),
        "--identity".into(),
        sshd.client_key().into(),
        "--known-hosts".into(),
        sshd.known_hosts().into(),
        "--max-age".into(),
        "100years".into(),
    ]
}

/// The verify-deep run compared with `zstd -t` + `sha256sum`: every archive hashed and compared with
/// the manifest.
const HASHING: &str = "verify-backups --deep (manifest: hashes too)";
/// The verify-deep run compared with `zstd -t` alone: no manifest, so no hashing.
const PLAIN: &str = "verify-backups --deep";

/// The measured command for verify-deep, or why there is none: the tool must advertise `--deep` and
/// `--local-dir` and succeed once on the archives, having checked every one of them (and, when `name` is
/// the hashing run, recorded their hashes in its manifest, which the timed runs then compare).
fn deep_verify_command(
    bin: &Path,
    dump: &Path,
    node: &[OsString],
    name: &str,
    extra: &[OsString],
) -> Result<Cmd, String> {
    if !bin.is_file() {
        return Err("verify-backups --deep not built".to_owned());
    }
    let help = Cmd::new("help", [bin.as_os_str(), "--help".as_ref()]);
    let text = run_once(&help, true)
        .map(|(_, out)| String::from_utf8_lossy(&out).into_owned())
        .unwrap_or_default();
    if !(text.contains("--deep") && text.contains("--local-dir")) {
        return Err("verify-backups --deep not built".to_owned());
    }
    let mut argv: Vec<OsString> = vec![bin.into()];
    argv.extend(node.iter().cloned());
    argv.extend(["--deep".into(), "--local-dir".into(), dump.into()]);
    argv.extend(extra.iter().cloned());
    let cmd = Cmd::new(name, argv.clone());
    // The timed command must do the work the references do: prove it checked every archive (natively,
    // in local mode), or the ratio would time a run that read less.
    let archives = std::fs::read_dir(dump)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".zst"))
                .count()
        })
        .unwrap_or(0);
    argv.push("--json".into());
    if name == HASHING {
        argv.push("--record".into());
    }
    let probe = Cmd::new("verify-backups --deep --json", argv);
    let (_, out) = run_once(&probe, true).map_err(|e| {
        format!(
            "verify-backups --deep --local-dir failed: {}",
            first_line(&format!("{e:#}"))
        )
    })?;
    let doc = serde_json::from_slice::<serde_json::Value>(&out).unwrap_or_default();
    let checked = doc
        .get("backups")
        .and_then(|b| b.as_array())
        .map_or(0, |backups| {
            backups
                .iter()
                .filter(|b| {
                    b["checks"].as_array().is_some_and(|checks| {
                        checks
                            .iter()
                            .any(|c| c["check"] == "compression" && c["status"] == "ok")
                    })
                })
                .count()
        });
    if doc["mode"] != "local" || checked != archives {
        return Err(format!(
            "verify-backups --deep --local-dir checked {checked} of {archives} archives in {} mode",
            doc["mode"].as_str().unwrap_or("no")
        ));
    }
    Ok(cmd)
}

fn startup(ctx: &Ctx<'_>) -> Result<Outcome> {
    let mut o = Outcome::new("startup", "`<tool> --version`, each tool");
    let mut cmds: Vec<Cmd> = TOOLS
        .iter()
        .map(|t| Cmd::new(t, [ctx.bin(t).into_os_string(), "--version".into()]))
        .collect();
    cmds.push(Cmd::new(
        "shell: bash sourcing common.sh stub",
        [
            ctx.script("startup.sh").into_os_string(),
            "--version".into(),
        ],
    ));
    let runs = if ctx.opts.quick { 5 } else { 21 };
    o.candidates = compare(&cmds, 3, runs)?;
    for t in TOOLS {
        let ms = o.median(t) * 1e3;
        o.at_most(format!("{t} --version median (ms)"), ms, 5.0, " ms");
    }
    o.notes.push(format!(
        "bash stub: {:.1} ms median",
        o.median("shell: bash sourcing common.sh stub") * 1e3
    ));
    Ok(o)
}

fn state_list(ctx: &Ctx<'_>) -> Result<Outcome> {
    let versions = 200;
    let mut o = Outcome::new(
        "state-list",
        "restore-tfstate --list --details on a state with 200 versions (moto)",
    );
    let root = ctx.work("statelist")?.join("environments");
    let env_dir = root.join("statelist");
    fs::create_dir_all(&env_dir)?;
    let endpoint = env("TESTBED_S3_ENDPOINT")?;
    let bucket = env("TESTBED_S3_BUCKET")?;
    let key = "bench/statelist/terraform.tfstate";
    fs::write(
        env_dir.join("main.tf"),
        workload::s3_backend(&endpoint, &bucket, key),
    )?;
    let creds = pve_common::s3::S3Credentials {
        access_key: pve_common::secret::Secret::new(env("AWS_ACCESS_KEY_ID")?),
        secret_key: pve_common::secret::Secret::new(env("AWS_SECRET_ACCESS_KEY")?),
        session_token: None,
    };
    let client = pve_common::s3::S3Client::new(
        pve_common::s3::S3Location {
            endpoint: endpoint.clone(),
            region: "us-east-1".to_owned(),
            bucket: bucket.clone(),
            path_style: true,
        },
        &creds,
        std::time::Duration::from_secs(30),
    )?;
    let existing = client.list_versions(key)?.len();
    let runner = pve_common::runner::Runner::new(false);
    for serial in existing..versions {
        client.put(
            &runner,
            key,
            &workload::state_json(serial as u64 + 1, 20),
            false,
        )?;
    }
    o.notes.push(format!(
        "{} versions of {key}, {} bytes each",
        client.list_versions(key)?.len(),
        workload::state_json(versions as u64, 20).len()
    ));
    let tool = Cmd::new(
        "restore-tfstate --list --details",
        [
            ctx.bin("restore-tfstate").into_os_string(),
            "--root".into(),
            root.clone().into(),
            "--env".into(),
            "statelist".into(),
            "--list".into(),
            "--details".into(),
            "--backup-dir".into(),
            ctx.work("statelist")?.join("backups").into(),
        ],
    );
    let shell = Cmd::new(
        "shell: list + GET per version + jq",
        [
            ctx.script("state-list.sh").into_os_string(),
            endpoint.into(),
            bucket.into(),
            key.into(),
        ],
    );
    let (_, out) = run_once(&tool, true)?;
    let lines = String::from_utf8_lossy(&out).lines().count();
    o.notes
        .push(format!("restore-tfstate printed {lines} lines"));
    o.candidates = compare(&[tool, shell], ctx.warmup, ctx.runs)?;
    o.speedup(
        "shell: list + GET per version + jq",
        "restore-tfstate --list --details",
        5.0,
    );
    Ok(o)
}

/// Peak memory of the commands that read a whole state (issue 23): a state is held at most once, and
/// `--list --details` does not grow with the number or size of the versions. Each command runs once
/// (a restore adds a version): what is measured is the tool's peak RSS (`/usr/bin/time`), against the state's
/// size; there is no shell reference (memory is the target, not speed).
// A benchmark reads in the order it runs: set-up, measured runs, verdict.
#[allow(clippy::too_many_lines)]
fn state_memory(ctx: &Ctx<'_>) -> Result<Outcome> {
    let size_mib: usize = std::env::var("BENCH_STATE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let versions = 8;
    let mut o = Outcome::new(
        "state-memory",
        &format!(
            "restore-tfstate on a {size_mib} MiB state with {versions} versions (moto): --list --details, \
             --show, --restore"
        ),
    );
    let root = ctx.work("statememory")?.join("environments");
    let env_dir = root.join("bigstate");
    fs::create_dir_all(&env_dir)?;
    let endpoint = env("TESTBED_S3_ENDPOINT")?;
    let bucket = env("TESTBED_S3_BUCKET")?;
    let key = format!("bench/bigstate-{size_mib}/terraform.tfstate");
    fs::write(
        env_dir.join("main.tf"),
        workload::s3_backend(&endpoint, &bucket, &key),
    )?;
    let creds = pve_common::s3::S3Credentials {
        access_key: pve_common::secret::Secret::new(env("AWS_ACCESS_KEY_ID")?),
        secret_key: pve_common::secret::Secret::new(env("AWS_SECRET_ACCESS_KEY")?),
        session_token: None,
    };
    let client = pve_common::s3::S3Client::new(
        pve_common::s3::S3Location {
            endpoint: endpoint.clone(),
            region: "us-east-1".to_owned(),
            bucket: bucket.clone(),
            path_style: true,
        },
        &creds,
        std::time::Duration::from_secs(300),
    )?;
    let runner = pve_common::runner::Runner::new(false);
    let existing = client.list_versions(&key)?.len();
    let mut size = 0;
    for serial in existing..versions {
        let body = workload::big_state_json(serial as u64 + 1, size_mib << 20);
        size = body.len();
        client.put(&runner, &key, &body, false)?;
    }
    let listed = client.list_versions(&key)?;
    let listed: Vec<_> = listed.iter().filter(|v| v.key == key).collect();
    if size == 0 {
        size = usize::try_from(listed.first().map_or(0, |v| v.size)).unwrap_or(0);
    }
    let oldest = listed
        .last()
        .map(|v| v.version_id.clone())
        .context("no version of the big state")?;
    o.notes.push(format!(
        "{} versions of {key}, {size} bytes ({:.0} MiB) each",
        listed.len(),
        size as f64 / 1048576.0
    ));
    let base = |label: &str, extra: &[&str]| {
        let mut argv: Vec<OsString> = vec![
            ctx.bin("restore-tfstate").into_os_string(),
            "--root".into(),
            root.clone().into(),
            "--env".into(),
            "bigstate".into(),
            "--backup-dir".into(),
            ctx.opts.work.join("statememory/backups").into(),
        ];
        argv.extend(extra.iter().map(OsString::from));
        Cmd::new(label, argv)
    };
    let cmds = [
        base("restore-tfstate --list --details", &["--list", "--details"]),
        base(
            "restore-tfstate --show V (masked, stdout to /dev/null)",
            &["--show", &oldest],
        ),
        base(
            "restore-tfstate --restore V --yes",
            &["--restore", &oldest, "--yes"],
        ),
    ];
    let state_kib = size as f64 / 1024.0;
    for cmd in &cmds {
        // Under /usr/bin/time: a child of this harness starts as a copy of it (which held the 200 MiB
        // it uploaded), and wait4's ru_maxrss counts that copy.
        let (sample, rss, _) = crate::harness::run_under_time(cmd, false)?;
        o.candidates.push(crate::harness::Stats {
            label: cmd.label.clone(),
            command: cmd.display(),
            runs: 1,
            median_s: sample.wall.as_secs_f64(),
            min_s: sample.wall.as_secs_f64(),
            max_s: sample.wall.as_secs_f64(),
            cpu_s: sample.cpu.as_secs_f64(),
            max_rss_kib: rss,
            rss_source: "/usr/bin/time".to_owned(),
            first_stdout: Vec::new(),
        });
        let max = if cmd.label.contains("--details") {
            1.0
        } else {
            2.0
        };
        o.at_most(
            format!("{}: peak RSS / state size", cmd.label),
            rss as f64 / state_kib,
            max,
            "x",
        );
    }
    o.notes.push(
        "earlier design (the whole state read into a `serde_json::Value` tree): --restore peaked at 834 MB on a 200 MB state, --list --details \
         at 3.2 GB over 8 such versions"
            .to_owned(),
    );
    Ok(o)
}

fn which(name: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` not found in PATH"))
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn git(repo: &Path, args: &[&str]) -> String {
    let mut argv: Vec<OsString> = vec!["git".into(), "-C".into(), repo.into()];
    argv.extend(args.iter().map(OsString::from));
    run_once(&Cmd::new("git", argv), true)
        .map(|(_, out)| String::from_utf8_lossy(&out).trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn git_date() -> String {
    run_once(
        &Cmd::new("date", ["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        true,
    )
    .map(|(_, out)| String::from_utf8_lossy(&out).trim().to_owned())
    .unwrap_or_default()
}

fn secs(s: f64) -> String {
    if s < 0.1 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The summary table (Markdown, also what `bench/run` prints).
pub fn table(report: &Report) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| benchmark | ratio | measured | target | result |");
    let _ = writeln!(t, "|---|---|---|---|---|");
    for b in &report.benchmarks {
        if b.ratios.is_empty() || b.status != "measured" {
            let _ = writeln!(t, "| {} | - | - | - | {} |", b.id, b.status);
        }
        for r in &b.ratios {
            let value = if r.target.ends_with('x') && !r.target.contains("ms") {
                format!("{:.2}x", r.value)
            } else if r.target.ends_with('%') {
                format!("{:+.1}%", r.value)
            } else if r.target.ends_with(" processes") {
                format!("{} processes", r.value)
            } else {
                format!("{:.2} ms", r.value)
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                b.id,
                r.name,
                value,
                r.target,
                if r.met { "met" } else { "**MISSED**" }
            );
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| benchmark | command | median | min | max | CPU (median) | peak RSS |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    for b in &report.benchmarks {
        for c in &b.candidates {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} |",
                b.id,
                c.label,
                secs(c.median_s),
                secs(c.min_s),
                secs(c.max_s),
                secs(c.cpu_s),
                mib(c.max_rss_kib)
            );
        }
    }
    t
}

fn performance_doc(report: &Report, table: &str, repo: &Path) -> Result<String> {
    let mut d = String::new();
    let _ = writeln!(d, "# Performance\n");
    let _ = writeln!(
        d,
        "Generated by `bench/run` (do not edit the tables by hand; the analysis below the tables comes from \
         `bench/ANALYSIS.md`). Every ratio compares medians measured side by side in the same run, \
         interleaved round by round, after a warm-up; peak RSS is the largest process of the \
         tree, from `/usr/bin/time` on the first warm-up (what `/usr/bin/time -v` reports); CPU is \
         user + system time of the whole tree (`wait4` rusage).\n"
    );
    let _ = writeln!(d, "- commit: `{}`", report.commit);
    let _ = writeln!(d, "- date: {}", report.date);
    for m in &report.machine {
        let _ = writeln!(d, "- {m}");
    }
    let _ = writeln!(d, "\n## Results\n");
    d.push_str(table);
    let _ = writeln!(d, "\n## Workloads and notes\n");
    for b in &report.benchmarks {
        let _ = writeln!(d, "- **{}**: {} ({})", b.id, b.workload, b.status);
        for n in &b.notes {
            let _ = writeln!(d, "  - {n}");
        }
    }
    let _ = writeln!(d);
    let analysis = fs::read_to_string(repo.join("bench/ANALYSIS.md")).unwrap_or_default();
    d.push_str(&analysis);
    Ok(d)
}
