//! `check-drift`: detect, classify and report drift between Terraform/OpenTofu and the Proxmox homelab, per
//! environment.
//!
//! [`run`] finds the environments under the root, takes the run lock, checks environments in parallel
//! (`init`, only when a folder is fresh or Terraform asks for it, one at a time to avoid the plugin-cache
//! race; `plan` and `show` concurrently), reads each plan's `-json` stream as it runs ([`plan::ui`]): in sync
//! without more, or `show -json` of the saved plan when there is something to describe, read as a stream
//! and classified ([`plan`]); applies
//! ignore rules ([`ignore`]) and writes the report ([`report`]). It never applies anything. [`CheckDrift`] turns the returned
//! [`Outcome`] or error into the exit code.

pub mod cli;
pub mod config;
pub mod history;
pub mod ignore;
pub mod install;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod publish;
pub mod report;
pub mod runlock;
pub mod shims;
pub mod state;
pub mod terraform;
#[cfg(test)]
mod test_support;

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind as IoErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pve_common::runner::{Access, Runner};

use crate::config::{Config, Selection};
use crate::ignore::Rules;
use crate::report::{EnvError, EnvReport, Report, Status, Summary, TerraformInfo};
use crate::terraform::{ErrorKind, Limits, Step, StepEnd, Terraform};

use pve_common::exit::{Busy, Code, UsageError};

use crate::cli::{Args, Command};

/// The `check-drift` binary: its command line, set-up and exit codes, for [`pve_common::run`].
#[derive(Debug)]
pub struct CheckDrift;

impl pve_common::Tool for CheckDrift {
    const NAME: &'static str = "check-drift";
    // [`run`] stops Terraform itself on SIGINT/SIGTERM and still writes the report of what it found.
    const INTERRUPT_HANDLER: bool = false;
    type Args = Args;

    fn common(args: &Args) -> &pve_common::cli::CommonArgs {
        match &args.command {
            Some(Command::History(h)) => &h.common,
            Some(Command::InstallTimer(i)) => &i.common,
            None => &args.common,
        }
    }

    fn failure_code(args: &Args) -> Code {
        if args.command.is_none() && args.install_shims.is_none() {
            error_code(args.detailed_exitcode)
        } else {
            Code::Failure
        }
    }

    fn run(mut args: Args) -> anyhow::Result<Code> {
        match args.command.take() {
            Some(Command::History(h)) => {
                let config = config::HistoryConfig::from_args(&args, h)?;
                run_history(&config).map(|()| Code::Success)
            }
            Some(Command::InstallTimer(i)) => {
                install::run(&config::install_config(i)?).map(|_| Code::Success)
            }
            None if args.install_shims.is_some() => {
                let root = args.install_shims.clone().unwrap_or_default();
                install_shims(&root, args.common.dry_run || args.common.preview)
                    .map(|()| Code::Success)
            }
            None => {
                let detailed = args.detailed_exitcode;
                let outcome = run(&Config::from_args(args)?)?;
                Ok(match outcome {
                    o if o.interrupted => Code::Interrupted,
                    // The script's codes: 1 drift, 2 error; --detailed-exitcode: Terraform's.
                    o if o.any_error() || o.output_failed => error_code(detailed),
                    o if o.any_drift() && detailed => Code::Changes,
                    o if o.any_drift() => Code::Drift,
                    _ => Code::Success,
                })
            }
        }
    }
}

/// An error: 2 as the script said it, 1 in Terraform's `-detailed-exitcode` meaning.
fn error_code(detailed: bool) -> Code {
    if detailed {
        Code::Failure
    } else {
        Code::Errors
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// The report (none in dry-run).
    pub report: Option<Report>,
    /// Stopped by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// The metrics, report or state files could not be written (an error).
    pub output_failed: bool,
    /// The environments checked (or, in dry-run, that would be), in order.
    pub checked: Vec<String>,
}

impl Outcome {
    /// At least one environment errored.
    pub fn any_error(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.summary.error > 0)
    }

    /// At least one environment has drift.
    pub fn any_drift(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.summary.drift > 0)
    }
}

/// An environment to check.
#[derive(Clone, Debug)]
pub struct Target {
    /// Folder name.
    pub name: String,
    /// Folder.
    pub dir: PathBuf,
    /// Ignore rules for it (root or `--ignore-file` rules, then its own `.driftignore`).
    pub rules: Rules,
    /// The Proxmox node it runs on, for the report (environments of one run may be on different nodes).
    pub node: Option<String>,
}

/// Folder names under `root` holding at least one `*.tf` file, sorted.
pub fn discover(root: &Path) -> anyhow::Result<Vec<String>> {
    let entries = std::fs::read_dir(root).with_context(|| {
        format!(
            "reading the environments folder {} (--root)",
            root.display()
        )
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", root.display()))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let has_tf = std::fs::read_dir(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(Result::ok)
            .any(|f| f.path().extension().is_some_and(|e| e == "tf") && f.path().is_file());
        if has_tf && let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn load_rules(path: &Path, required: bool, today: jiff::civil::Date) -> anyhow::Result<Rules> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == IoErrorKind::NotFound && !required => return Ok(Rules::default()),
        Err(e) => return Err(e).with_context(|| format!("reading ignore file {}", path.display())),
    };
    let parsed = ignore::parse(&text, path, today)?;
    for w in &parsed.warnings {
        pve_common::warn!("{w}");
    }
    pve_common::debug!(
        "{}: {} ignore rule(s) in force",
        path.display(),
        parsed.rules.len()
    );
    Ok(parsed.rules)
}

/// The environments a name could have been, for the message refusing an unknown one.
fn valid_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else if pve_common::i18n::lang().is_french() {
        // The script's order: prod lab monitoring, then any other.
        let mut ordered: Vec<&str> = pve_common::homelab::KNOWN_ENVIRONMENTS
            .into_iter()
            .filter(|k| known.iter().any(|n| n == k))
            .collect();
        let others: Vec<&str> = known
            .iter()
            .map(String::as_str)
            .filter(|n| !pve_common::homelab::KNOWN_ENVIRONMENTS.contains(n))
            .collect();
        ordered.extend(others);
        ordered.join(" ")
    } else {
        known.join(", ")
    }
}

/// Resolves the selection against the environments on disk and loads every ignore file: all checks that
/// can fail before anything runs.
pub fn targets(config: &Config) -> anyhow::Result<Vec<Target>> {
    if !config.root.is_dir() {
        return Err(UsageError(format!(
            "--root {}: no such directory (set --root or PVE_DRIFT_ROOT)",
            config.root.display()
        ))
        .into());
    }
    let known = discover(&config.root)?;
    let names = match &config.selection {
        Selection::All => {
            if known.is_empty() {
                pve_common::warn!(
                    "no environment (folder holding *.tf files) under {}",
                    config.root.display()
                );
            }
            known
        }
        Selection::Names(names) => {
            for name in names {
                if !known.contains(name) {
                    return Err(UsageError(pve_common::tr!(
                        "check_drift.unknown_env",
                        env = name,
                        root = config.root.display(),
                        valid = valid_list(&known)
                    ))
                    .into());
                }
            }
            names.clone()
        }
    };
    // In the homelab's layout an environment without terraform.tfvars is not deployed: skipped, as the
    // script did, and not a failure.
    let names: Vec<String> = names
        .into_iter()
        .filter(|name| {
            let deployed =
                !config.homelab_layout || config.root.join(name).join("terraform.tfvars").is_file();
            if !deployed {
                pve_common::warn!(
                    "{}",
                    pve_common::tr!("check_drift.skipped_no_tfvars", env = name)
                );
            }
            deployed
        })
        .collect();
    let today = jiff::Zoned::now().date();
    let base = match &config.ignore_file {
        Some(path) => load_rules(path, true, today)?,
        None => load_rules(&config.root.join(".driftignore"), false, today)?,
    };
    let mut out = Vec::new();
    for name in names {
        let dir = config.root.join(&name);
        let mut rules = base.clone();
        if config.ignore_file.is_none() {
            rules.extend(&load_rules(&dir.join(".driftignore"), false, today)?);
        }
        let node = env_node(config, &dir, &name);
        out.push(Target {
            name,
            dir,
            rules,
            node,
        });
    }
    Ok(out)
}

/// The node an environment's terraform.tfvars names, else (in the homelab's layout) the root tfvars' one.
/// Only for the report: a file that cannot be read names no node here, and Terraform reports it.
fn env_node(config: &Config, dir: &Path, name: &str) -> Option<String> {
    let node_in = |file: &Path| {
        let vars = pve_common::tfvars::parse_tfvars_file(file).ok()?;
        pve_common::homelab::EnvSettings::from_vars(name, &vars)
            .ok()?
            .default_node
    };
    let own = dir.join("terraform.tfvars");
    let from_env = own.is_file().then(|| node_in(&own)).flatten();
    from_env.or_else(|| {
        if !config.homelab_layout {
            return None;
        }
        // <root>/infrastructure/proxmox/environments: the homelab root is three folders up.
        let root_tfvars = config.root.ancestors().nth(3)?.join("terraform.tfvars");
        root_tfvars
            .is_file()
            .then(|| node_in(&root_tfvars))
            .flatten()
    })
}

/// The lock file a run would take (dry-run shows it; no folder is created).
fn planned_lock(config: &Config) -> PathBuf {
    config.lock_file.clone().unwrap_or_else(|| {
        runlock::default_candidates()
            .first()
            .map_or_else(PathBuf::new, |(dir, _)| dir.join(runlock::FILE_NAME))
    })
}

/// The folders of the scripts' unit that are writable under `ProtectSystem=strict` (the report and
/// textfile folders), as a last resort for the run lock: root-owned, so still ours alone.
fn unit_lock_dirs(config: &Config) -> Vec<PathBuf> {
    [&config.reports, &config.textfile]
        .into_iter()
        .flatten()
        .map(|d| d.dir.clone())
        .collect()
}

/// Takes the run lock: the first candidate file that can be opened, locked exclusively for the whole run.
/// See [`runlock`] for where it lives and what is refused.
fn take_run_lock(config: &Config, interrupted: &AtomicBool) -> anyhow::Result<Option<File>> {
    let candidates: Vec<PathBuf> = match &config.lock_file {
        Some(path) => vec![path.clone()],
        None => runlock::default_candidates()
            .into_iter()
            .map(|(dir, mode)| (dir, mode, runlock::FILE_NAME))
            .chain(
                unit_lock_dirs(config)
                    .into_iter()
                    .map(|dir| (dir, 0o755, ".pve-drift.lock")),
            )
            .filter_map(|(dir, mode, name)| match runlock::private_dir(&dir, mode) {
                Ok(()) => Some(dir.join(name)),
                Err(e) => {
                    pve_common::debug!("run lock folder {} not used: {e}", dir.display());
                    None
                }
            })
            .collect(),
    };
    let mut last_err = None;
    for path in &candidates {
        let file = match runlock::open(path) {
            Ok(file) => file,
            Err(e) if config.lock_file.is_none() => {
                last_err = Some((path.clone(), e));
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("opening the run lock {}", path.display()));
            }
        };
        pve_common::debug!("run lock: {}", path.display());
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(TryLockError::WouldBlock) if config.wait_lock => {
                    if !said {
                        pve_common::info!(
                            "waiting for another check-drift run to release {}",
                            path.display()
                        );
                        said = true;
                    }
                    if interrupted.load(Ordering::SeqCst) {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Busy::msg(format!(
                        "another check-drift run holds the run lock {} (use --wait-lock to wait for it)",
                        path.display()
                    ))
                    .into());
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
    }
    let (path, e) =
        last_err.unwrap_or_else(|| (PathBuf::from("?"), std::io::Error::other("no candidate")));
    Err(e).with_context(|| format!("opening the run lock {} (set --lock-file)", path.display()))
}

/// What every environment's check shares.
struct Shared<'a> {
    config: &'a Config,
    runner: &'a Runner,
    terraform: Option<Terraform>,
    init_lock: Mutex<()>,
    interrupted: &'a AtomicBool,
    /// The progress line (a terminal only).
    progress: Option<indicatif::ProgressBar>,
    /// The Terraform version, from the first plan's stream that tells it.
    version: std::sync::OnceLock<String>,
}

struct Failure {
    error: Box<EnvError>,
    exit_code: Option<i32>,
}

fn failure(kind: ErrorKind, message: impl Into<String>) -> Failure {
    Failure {
        error: Box::new(EnvError {
            kind,
            message: message.into(),
            lock: None,
        }),
        exit_code: None,
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Init => "init",
        Step::Plan => "plan",
        Step::Show => "show",
    }
}

/// Runs one step; `Ok(None)` in dry-run. Timeouts, interrupts, missing binaries and (for init and show)
/// non-zero exits become failures; plan's exit code is judged by the caller.
fn step(
    shared: &Shared<'_>,
    cmd: &pve_common::runner::LocalCommand,
    which: Step,
    limits: Limits<'_>,
) -> Result<Option<pve_common::runner::CommandOutput>, Failure> {
    step_polling(shared, cmd, which, limits, &mut || {}, &|| Vec::new())
}

/// [`step`] calling `poll` while the command runs; `more_stderr` gives what the command reported
/// elsewhere than on stderr (a `-json` plan's diagnostics), put before its stderr in failures.
fn step_polling(
    shared: &Shared<'_>,
    cmd: &pve_common::runner::LocalCommand,
    which: Step,
    limits: Limits<'_>,
    poll: &mut dyn FnMut(),
    more_stderr: &dyn Fn() -> Vec<u8>,
) -> Result<Option<pve_common::runner::CommandOutput>, Failure> {
    let name = step_name(which);
    let with_more = |stderr: Vec<u8>| {
        let mut all = more_stderr();
        all.extend_from_slice(&stderr);
        all
    };
    let end = terraform::run_step_polling(shared.runner, cmd, limits, poll).map_err(|e| {
        let not_found = e
            .downcast_ref::<pve_common::runner::RunError>()
            .is_some_and(|re| matches!(re, pve_common::runner::RunError::Spawn { cause, .. } if cause.kind() == IoErrorKind::NotFound));
        let kind = if not_found { ErrorKind::TerraformMissing } else { ErrorKind::Unknown };
        failure(kind, format!("{e:#}"))
    })?;
    match end {
        None => Ok(None),
        Some(StepEnd::Exited(mut out)) => {
            if !matches!(out.status.code(), Some(0 | 2)) {
                out.stderr = with_more(out.stderr);
            }
            if which != Step::Plan && !out.status.success() {
                return Err(exit_failure(which, &out));
            }
            Ok(Some(out))
        }
        Some(StepEnd::TimedOut(stderr)) => {
            let excerpt = terraform::error_excerpt(&with_more(stderr), 6);
            let mut message = format!(
                "timed out after {} during `terraform {name}`; Terraform was interrupted (SIGINT) so it could \
                 release the state lock",
                humantime::format_duration(shared.config.timeout)
            );
            if !excerpt.is_empty() {
                message.push_str(&format!(":\n{excerpt}"));
            }
            Err(failure(ErrorKind::Timeout, message))
        }
        Some(StepEnd::Interrupted(_)) => Err(failure(
            ErrorKind::Interrupted,
            format!("interrupted during `terraform {name}`"),
        )),
    }
}

/// A step that exited unsuccessfully: classified from its stderr, with the holder of a state lock.
fn exit_failure(which: Step, out: &pve_common::runner::CommandOutput) -> Failure {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kind = terraform::classify_error(which, &stderr);
    let mut f = failure(
        kind,
        format!(
            "terraform {} failed ({}):\n{}",
            step_name(which),
            pve_common::runner::describe_status(&out.status),
            terraform::error_excerpt(&out.stderr, 12)
        ),
    );
    if kind == ErrorKind::Lock {
        f.error.lock = terraform::parse_lock_info(&stderr);
    }
    if which == Step::Plan {
        f.exit_code = out.status.code();
    }
    f
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Creates `path` empty with mode 0600 (through the runner: dry-run only shows it); `what` names it.
fn private_file(shared: &Shared<'_>, path: &Path, what: &str) -> Result<(), Failure> {
    shared
        .runner
        .effect(
            Access::Mutating,
            format_args!(
                "write: {} ({what}, mode 0600, removed afterwards)",
                path.display()
            ),
            || create_private_file(path),
        )
        .map_err(|e| {
            failure(
                ErrorKind::Unknown,
                format!("creating {}: {e}", path.display()),
            )
        })
        .map(drop)
}

/// Addresses of resources in earlier local state versions (`terraform.tfstate*.backup` next to the
/// configuration, written by the local backend on every state change). A remote backend keeps its history
/// elsewhere (S3 object versions); such environments get no history here.
pub fn local_state_history(dir: &Path) -> HashSet<String> {
    let mut out = HashSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("terraform.tfstate") && name.ends_with(".backup")) {
            continue;
        }
        let Ok(text) = std::fs::read(entry.path()) else {
            continue;
        };
        if let Ok(state) = serde_json::from_slice::<serde_json::Value>(&text) {
            out.extend(plan::state_addresses(&state));
        }
    }
    out
}

/// Runs `terraform init -input=false` for `target`. One init at a time: parallel inits race on a shared
/// plugin cache. Waiting behind another environment's init does not eat into this one's time: the
/// deadline moves by the wait.
fn init(
    shared: &Shared<'_>,
    tf: &Terraform,
    target: &Target,
    limits: &mut Limits<'_>,
) -> Result<(), Failure> {
    let cmd = tf.command(&target.dir, ["init", "-input=false", "-no-color"]);
    let waiting = Instant::now();
    let _serial = shared
        .init_lock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    limits.deadline += waiting.elapsed();
    step(shared, &cmd, Step::Init, *limits)?;
    Ok(())
}

/// Runs `cmd` (`plan -json`, its stream going to `stream_path`), reading the stream as Terraform writes it:
/// the progress line names the resource being refreshed. The plan's diagnostics come first in the
/// output's stderr, in the words Terraform prints without `-json`, so failures are classified and shown
/// as without it. `Ok((None, _))` in dry-run.
fn plan(
    shared: &Shared<'_>,
    target: &Target,
    cmd: &pve_common::runner::LocalCommand,
    stream_path: &Path,
    limits: Limits<'_>,
) -> Result<
    (
        Option<pve_common::runner::CommandOutput>,
        plan::ui::UiSummary,
    ),
    Failure,
> {
    use std::io::Read as _;
    let mut stream = plan::ui::UiStream::new();
    let mut file: Option<File> = None;
    let mut shown: Option<String> = None;
    let mut buf = vec![0u8; 64 << 10];
    let mut poll = || {
        if file.is_none() {
            file = File::open(stream_path).ok();
        }
        let Some(f) = file.as_mut() else {
            return;
        };
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            stream.feed(&buf[..n]);
        }
        if let Some(p) = &shared.progress
            && let Some(address) = stream.refreshing()
            && shown.as_deref() != Some(address)
        {
            p.set_message(format!("{}: refreshing {address}", target.name));
            shown = Some(address.to_owned());
        }
    };
    let diagnostics = || {
        // Read again from the start: the stream reader may not have seen the end yet.
        let bytes = std::fs::read(stream_path).unwrap_or_default();
        plan::ui::read(&bytes).diagnostics_text().into_bytes()
    };
    let out = step_polling(shared, cmd, Step::Plan, limits, &mut poll, &diagnostics)?;
    Ok((out, stream.finish()))
}

fn check(shared: &Shared<'_>, target: &Target) -> EnvReport {
    let started = Instant::now();
    let mut report = match check_inner(shared, target) {
        Ok(report) => report,
        Err(f) => EnvReport::failed(&target.name, f.exit_code, *f.error),
    };
    report.node.clone_from(&target.node);
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

fn check_inner(shared: &Shared<'_>, target: &Target) -> Result<EnvReport, Failure> {
    let config = shared.config;
    let Some(tf) = &shared.terraform else {
        return Err(failure(
            ErrorKind::TerraformMissing,
            "no Terraform binary: neither `tofu` nor `terraform` is in PATH (set --terraform-bin or TF_BIN)",
        ));
    };
    // Removes the plan file's private directory when it drops, whatever happens below.
    let (_private, plan_path) = plan_file(shared, target)?;

    let mut limits = Limits {
        deadline: Instant::now() + config.timeout,
        grace: config.kill_grace,
        interrupted: shared.interrupted,
    };
    // `init` only when it is needed: in a fresh folder (no `.terraform`), or when `plan` says so (backend,
    // module, provider or lock file changed), then `plan` once more. An initialised folder needs no init
    // per run, and each init costs a Terraform start and, with a remote backend, a round trip to it.
    let fresh = !target.dir.join(".terraform").is_dir();
    if fresh {
        pve_common::debug!("{}: no .terraform folder: running init first", target.name);
        init(shared, tf, target, &mut limits)?;
    }
    // `plan -json` writes its stream into a private file beside the plan file, read while it runs.
    let stream_path = plan_path.with_extension("jsonl");
    private_file(shared, &stream_path, "`terraform plan -json` stream")?;
    let plan_cmd = plan_command(config, tf, target, &plan_path, &stream_path);
    let (plan_out, ui) = plan_or_init(
        shared,
        tf,
        target,
        &plan_cmd,
        &stream_path,
        fresh,
        &mut limits,
    )?;
    let exit_code = plan_out.as_ref().and_then(|o| o.status.code());
    if let Some(out) = &plan_out
        && !matches!(exit_code, Some(0 | 2))
    {
        return Err(exit_failure(Step::Plan, out));
    }
    if let Some(version) = &ui.version {
        shared.version.get_or_init(|| version.clone());
    }
    let plan_text = plan_out.as_ref().map(|_| ui.text.clone());

    // The stream decides whether there is anything to describe; only then does `show` run.
    if let Some(code) = exit_code
        && let Some(resources) = from_stream(target, &ui, code)
    {
        let mut report =
            EnvReport::checked(&target.name, exit_code, resources, Vec::new(), Vec::new());
        report.plan_text = plan_text;
        return Ok(report);
    }

    let Some(json_path) = show_plan(
        shared,
        tf,
        target,
        &plan_path,
        &stream_path,
        exit_code,
        limits,
    )?
    else {
        return Ok(EnvReport::checked(
            &target.name,
            None,
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ));
    };
    let plan_stderr = plan_out.as_ref().map_or(&[][..], |o| &o.stderr[..]);
    let mut report = report_of_plan(&json_path, target, exit_code, plan_stderr)?;
    report.plan_text = plan_text;
    Ok(report)
}

/// The environment's report from the saved plan `show -json` wrote, with its ignore rules applied.
fn report_of_plan(
    json_path: &Path,
    target: &Target,
    exit_code: Option<i32>,
    plan_stderr: &[u8],
) -> Result<EnvReport, Failure> {
    let analysis = read_shown_plan(json_path, target, exit_code, plan_stderr)?;
    log_analysis(target, exit_code, &analysis);
    let mut resources = analysis.resources;
    for r in &mut resources {
        target.rules.apply(r);
    }
    Ok(EnvReport::checked(
        &target.name,
        exit_code,
        resources,
        analysis.output_changes,
        analysis.unplanned_drift,
    ))
}

/// Runs `plan_cmd`; when Terraform asks for init in a folder that had one, `init` and `plan` once more
/// (the time spent waiting for another environment's init extends `limits`' deadline).
fn plan_or_init(
    shared: &Shared<'_>,
    tf: &Terraform,
    target: &Target,
    plan_cmd: &pve_common::runner::LocalCommand,
    stream_path: &Path,
    fresh: bool,
    limits: &mut Limits<'_>,
) -> Result<
    (
        Option<pve_common::runner::CommandOutput>,
        plan::ui::UiSummary,
    ),
    Failure,
> {
    let (plan_out, ui) = plan(shared, target, plan_cmd, stream_path, *limits)?;
    if !fresh
        && let Some(out) = &plan_out
        && !matches!(out.status.code(), Some(0 | 2))
        && let Some(reason) = terraform::init_required(&String::from_utf8_lossy(&out.stderr))
    {
        pve_common::info!(
            "{}: Terraform asks for init ({reason}); running `terraform init` and planning again",
            target.name
        );
        init(shared, tf, target, limits)?;
        return plan(shared, target, plan_cmd, stream_path, *limits);
    }
    Ok((plan_out, ui))
}

/// `show -json` of the saved plan into a private file next to it: its path, `None` when there is nothing
/// to read (a dry run, or a `show` the runner skipped).
fn show_plan(
    shared: &Shared<'_>,
    tf: &Terraform,
    target: &Target,
    plan_path: &Path,
    stream_path: &Path,
    exit_code: Option<i32>,
    limits: Limits<'_>,
) -> Result<Option<PathBuf>, Failure> {
    // `show -json` writes into a private file next to the plan file, read back as a stream: a plan of many
    // resources is hundreds of MB of JSON, never held in memory whole (see `plan::read`).
    let json_path = plan_path.with_extension("json");
    private_file(shared, &json_path, "`terraform show -json` output")?;
    let show = tf
        .command(
            &target.dir,
            [
                "show".as_ref(),
                "-json".as_ref(),
                "-no-color".as_ref(),
                plan_path.as_os_str(),
            ],
        )
        .stdout_file(&json_path);
    let show_out = step(shared, &show, Step::Show, limits).map_err(|mut f| {
        f.exit_code = exit_code;
        f
    })?;
    if shared.runner.is_dry_run() {
        shared
            .runner
            .effect(
                Access::Mutating,
                format_args!(
                    "remove: {}, {} and {}",
                    plan_path.display(),
                    stream_path.display(),
                    json_path.display()
                ),
                || Ok::<(), std::io::Error>(()),
            )
            .ok();
    }
    // A dry-run shows nothing to read; neither does a `show` the runner skipped.
    if shared.runner.is_dry_run() || show_out.is_none() {
        return Ok(None);
    }
    Ok(Some(json_path))
}

/// `plan -json` of the environment into the plan file, its stream into `stream_path`.
fn plan_command(
    config: &Config,
    tf: &Terraform,
    target: &Target,
    plan_path: &Path,
    stream_path: &Path,
) -> pve_common::runner::LocalCommand {
    tf.command(
        &target.dir,
        [
            "plan".to_owned(),
            "-input=false".to_owned(),
            "-no-color".to_owned(),
            "-detailed-exitcode".to_owned(),
            format!(
                "-lock-timeout={}",
                terraform::go_duration(config.lock_timeout)
            ),
            format!("-out={}", plan_path.display()),
            "-json".to_owned(),
        ],
    )
    .stdout_file(stream_path)
}

/// The resources to report when the plan's stream tells enough (in sync: none; only resources ignored
/// whole change: those); `None` when the saved plan must be read.
fn from_stream(
    target: &Target,
    ui: &plan::ui::UiSummary,
    code: i32,
) -> Option<Vec<plan::ResourceReport>> {
    let history = local_state_history(&target.dir);
    match plan::ui::judge(ui, code, &|a| target.rules.ignores_whole(a), &history) {
        plan::ui::Verdict::InSync => {
            pve_common::debug!("{}: the plan's stream shows no change", target.name);
            Some(Vec::new())
        }
        plan::ui::Verdict::Ignored(mut resources) => {
            pve_common::debug!(
                "{}: only resources ignored whole change; reported from the plan's stream",
                target.name
            );
            for r in &mut resources {
                target.rules.apply(r);
            }
            Some(resources)
        }
        plan::ui::Verdict::Show(why) => {
            pve_common::debug!("{}: reading the saved plan: {why}", target.name);
            None
        }
    }
}

/// The guard that removes the plan file's directory when it drops, and the plan file's path.
type PlanFile = (Option<Box<dyn std::any::Any>>, PathBuf);

/// The plan file: it holds secrets, so a 0600 file in a private (0700) directory (none in a dry-run,
/// which creates nothing).
fn plan_file(shared: &Shared<'_>, target: &Target) -> Result<PlanFile, Failure> {
    let (guard, plan_path) = if shared.runner.is_dry_run() {
        let dir = std::env::temp_dir().join("check-drift-XXXXXX");
        (None, dir.join(format!("{}.tfplan", target.name)))
    } else {
        // Under the script's unit (ProtectSystem=strict, no PrivateTmp=) the temporary directory is
        // read-only; the environment's folder is writable there, since Terraform writes into it too.
        let (guard, base): (Box<dyn std::any::Any>, std::path::PathBuf) =
            match pve_common::rundir::private_dir("plan") {
                Ok(d) => {
                    let p = d.path().to_owned();
                    (Box::new(d), p)
                }
                Err(_) => {
                    let d = tempfile::Builder::new()
                        .prefix(".check-drift-")
                        .tempdir_in(&target.dir)
                        .map_err(|e| {
                            failure(
                                ErrorKind::Unknown,
                                format!("creating a private temporary directory: {e}"),
                            )
                        })?;
                    let p = d.path().to_owned();
                    (Box::new(d), p)
                }
            };
        // Absolute, because Terraform runs in the environment's folder (TMPDIR may be relative).
        let path =
            std::path::absolute(base.join(format!("{}.tfplan", target.name))).map_err(|e| {
                failure(
                    ErrorKind::Unknown,
                    format!("resolving the temporary directory: {e}"),
                )
            })?;
        (Some(guard), path)
    };
    private_file(shared, &plan_path, "plan file")?;
    Ok((guard, plan_path))
}

/// Reads the JSON `terraform show -json` wrote to `json_path` as a stream, and refuses what cannot be
/// trusted: another format major, exit 2 with no `resource_changes`, a plan marked errored.
fn read_shown_plan(
    json_path: &Path,
    target: &Target,
    exit_code: Option<i32>,
    plan_stderr: &[u8],
) -> Result<plan::Analysis, Failure> {
    let history = local_state_history(&target.dir);
    let parsed = File::open(json_path)
        .map_err(serde_json::Error::io)
        .and_then(|file| plan::read(file, &history))
        .map_err(|e| Failure {
            exit_code,
            ..failure(
                ErrorKind::Unknown,
                format!("could not read the JSON of `terraform show -json`: {e}"),
            )
        })?;
    // Terraform and OpenTofu both write plan JSON format 1.x; a new major may change what fields mean.
    let format = parsed.format_version.as_deref().unwrap_or("");
    if format.split('.').next() != Some("1") {
        return Err(Failure {
            exit_code,
            ..failure(
                ErrorKind::Unknown,
                format!(
                    "the plan JSON has format_version {:?}; this check-drift reads format 1.x only",
                    if format.is_empty() { "(none)" } else { format }
                ),
            )
        });
    }
    // Exit 2 says "changes"; a document without `resource_changes` at all cannot say which, so it is
    // not evidence of being in sync.
    if exit_code == Some(2) && !parsed.has_resource_changes {
        return Err(Failure {
            exit_code,
            ..failure(
                ErrorKind::Unknown,
                "plan exited 2 (changes) but its JSON has no resource_changes field; cannot tell what changed"
                    .to_owned(),
            )
        });
    }
    for value in &parsed.sensitive {
        pve_common::secret::register(value);
    }
    let analysis = parsed.analysis;
    if analysis.errored {
        return Err(Failure {
            exit_code,
            ..failure(
                ErrorKind::Unknown,
                format!(
                    "the plan is marked errored:\n{}",
                    terraform::error_excerpt(plan_stderr, 12)
                ),
            )
        });
    }
    Ok(analysis)
}

/// Says on stderr what the plan's JSON shows beyond the changes: an incomplete plan, an exit code the
/// JSON contradicts (the JSON wins), drift the plan leaves alone.
fn log_analysis(target: &Target, exit_code: Option<i32>, analysis: &plan::Analysis) {
    if !analysis.complete {
        pve_common::warn!(
            "{}: the plan is incomplete (deferred changes); another plan after an apply may show more",
            target.name
        );
    }
    match (exit_code, analysis.has_changes) {
        (Some(2), false) => pve_common::info!(
            "{}: plan exited 2 (changes) but its JSON shows no resource or output change; trusting the JSON",
            target.name
        ),
        (Some(0), true) => pve_common::info!(
            "{}: plan exited 0 (no changes) but its JSON shows changes; trusting the JSON",
            target.name
        ),
        _ => {}
    }
    for d in &analysis.unplanned_drift {
        let relevant = if d.relevant {
            "; other planned changes use it"
        } else {
            ""
        };
        pve_common::debug!(
            "{}: {} changed outside Terraform ({}), but the plan leaves it alone (ignore_changes or computed){relevant}",
            target.name,
            d.address,
            d.attributes.join(", ")
        );
    }
}

fn timestamp() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `--install-shims DIR`: writes the shims, pointing at the binaries next to this one.
pub fn install_shims(root: &Path, dry_run: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let bin_dir = exe.parent().map(Path::to_owned).unwrap_or_default();
    let runner = Runner::new(dry_run);
    for path in shims::install(root, &bin_dir, &runner)? {
        pve_common::success!("{}", path.display());
    }
    Ok(())
}

/// Runs check-drift with a validated configuration.
pub fn run(config: &Config) -> anyhow::Result<Outcome> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("installing the signal handler")?;
    }
    let outcome = run_with(config, &interrupted)?;
    let french = pve_common::i18n::lang().is_french();
    if let Some(report) = &outcome.report {
        pve_common::output::emit(config.json, report, |report| {
            let table = report::render_text(report, config.color);
            if french {
                format!("{}\n{table}", report::render_summary(report))
            } else {
                table
            }
        })
        .context("writing the report to stdout")?;
    } else if !config.json && !outcome.checked.is_empty() {
        // Dry-run: the usual summary, every environment "dry-run".
        pve_common::output::write_stdout(&report::render_dry_run_summary(&outcome.checked))
            .context("writing the summary to stdout")?;
    }
    Ok(outcome)
}

/// `check-drift history`: reads the report folder and prints the timeline.
pub fn run_history(config: &config::HistoryConfig) -> anyhow::Result<()> {
    let today = history::today();
    let since = history::cutoff(today, config.since);
    let files = history::read(&config.report_dir, &config.envs, since)?;
    let h = history::analyze(&config.report_dir, since, &files);
    pve_common::output::emit(config.json, &h, history::render_text)
        .context("writing the history to stdout")
}

/// [`run`] without signal handlers and without writing the report: the caller owns the interrupt flag
/// (a test sets it to simulate Ctrl-C) and gets the report in the [`Outcome`].
pub fn run_with(config: &Config, interrupted: &AtomicBool) -> anyhow::Result<Outcome> {
    let started_at = timestamp();
    // The script's first line; English keeps its old, quieter start.
    say_info(&pve_common::tr!("check_drift.title"));
    let targets = targets(config)?;
    let checked: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let runner = runner_for(config);

    let Some(_run_lock) = run_lock(config, &runner, interrupted)? else {
        return Ok(Outcome {
            report: None,
            interrupted: true,
            output_failed: false,
            checked: Vec::new(),
        });
    };

    let binary = terraform::resolve_binary(config.terraform_bin.as_deref());
    let terraform = binary.clone().map(|binary| Terraform {
        binary,
        env: config.terraform_env.clone(),
    });
    let jobs = config
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, targets.len().max(1));
    pve_common::debug!("{} environment(s), {jobs} at a time", targets.len());
    let progress = progress_bar(config.progress && !config.dry_run, targets.len());
    let shared = Shared {
        config,
        runner: &runner,
        terraform: terraform.clone().or_else(|| dry_run_terraform(config)),
        init_lock: Mutex::new(()),
        interrupted,
        progress: progress.clone(),
        version: std::sync::OnceLock::new(),
    };

    let environments = check_all(&shared, &targets, jobs);
    // The version (for the report) comes from the first line of a plan's stream; `terraform version`
    // runs only when no plan told it (every environment failed before planning, or an old wrapper).
    let version = match (shared.version.get(), &terraform, config.dry_run) {
        (Some(v), _, _) => Some(v.clone()),
        (None, Some(tf), false) => tf.version(&runner),
        _ => None,
    };
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    if config.dry_run {
        publish::dry_run(config, &runner);
        return Ok(Outcome {
            report: None,
            interrupted: was_interrupted,
            output_failed: false,
            checked,
        });
    }
    let report = Report {
        schema: report::SCHEMA.to_owned(),
        tool: pve_common::output::ToolInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        terraform: TerraformInfo {
            binary: binary.map(|b| b.display().to_string()),
            version,
        },
        started_at,
        finished_at: timestamp(),
        summary: Summary::of(&environments),
        environments,
    };
    let output_failed = if was_interrupted {
        pve_common::warn!("interrupted: metrics, reports and alerts are not updated");
        false
    } else {
        !publish::publish(config, &runner, &report)
    };
    Ok(Outcome {
        report: Some(report),
        interrupted: was_interrupted,
        output_failed,
        checked,
    })
}

/// The run lock, held while the value lives (`Some(None)` in a dry run, which only says it would take it);
/// `None` when interrupted while waiting for it.
fn run_lock(
    config: &Config,
    runner: &Runner,
    interrupted: &AtomicBool,
) -> anyhow::Result<Option<Option<File>>> {
    if config.dry_run {
        runner
            .effect(
                Access::Mutating,
                format_args!("take the run lock {}", planned_lock(config).display()),
                || Ok::<(), std::io::Error>(()),
            )
            .ok();
        return Ok(Some(None));
    }
    Ok(take_run_lock(config, interrupted)?.map(Some))
}

/// The runner: `--dry-run` prints every command on a [DRY-RUN] line; `--preview` keeps the older "would"
/// lines.
fn runner_for(config: &Config) -> Runner {
    if config.dry_run {
        Runner::with_mode(match config.mode {
            pve_common::runner::Mode::Live => pve_common::runner::Mode::Preview,
            mode => mode,
        })
    } else {
        Runner::new(false)
    }
}

/// In a dry run with no Terraform found, the commands are shown with the name that would be looked up.
fn dry_run_terraform(config: &Config) -> Option<Terraform> {
    config.dry_run.then(|| Terraform {
        binary: config
            .terraform_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from("terraform")),
        env: config.terraform_env.clone(),
    })
}

/// Checks every target, `jobs` at a time, in the targets' order.
fn check_all(shared: &Shared<'_>, targets: &[Target], jobs: usize) -> Vec<EnvReport> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<EnvReport>>> = Mutex::new(vec![None; targets.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut n = next.lock().unwrap_or_else(PoisonError::into_inner);
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(target) = targets.get(index) else {
                        break;
                    };
                    let report = check_one(shared, target);
                    results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(report);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect()
}

/// Checks one target (not when interrupted), logging its result and moving the progress line.
fn check_one(shared: &Shared<'_>, target: &Target) -> EnvReport {
    let report = if shared.interrupted.load(Ordering::SeqCst) {
        EnvReport::failed(
            &target.name,
            None,
            EnvError {
                kind: ErrorKind::Interrupted,
                message: "not checked: check-drift was interrupted".to_owned(),
                lock: None,
            },
        )
    } else {
        if let Some(p) = &shared.progress {
            p.set_message(target.name.clone());
        }
        say_info(&pve_common::tr!("check_drift.checking", env = target.name));
        check(shared, target)
    };
    if !shared.config.dry_run {
        // Keep the progress bar and the log lines from drawing over each other.
        match &shared.progress {
            Some(p) => p.suspend(|| log_result(&report)),
            None => log_result(&report),
        }
    }
    if let Some(p) = &shared.progress {
        p.inc(1);
    }
    report
}

/// Progress the script printed: shown in French, only with `-v` in English (whose output stays as it was).
fn say_info(line: &str) {
    if pve_common::i18n::lang().is_french() {
        pve_common::info!("{line}");
    } else {
        pve_common::debug!("{line}");
    }
}

/// The one line of an error message that the log shows: its first line, and when that only announces the
/// cause ("terraform plan failed (exit status 1):"), the cause's first line after it.
fn headline(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    match lines.next() {
        Some(cause) if first.ends_with(':') => format!("{first} {cause}"),
        _ => first.to_owned(),
    }
}

fn log_result(r: &EnvReport) {
    if pve_common::i18n::lang().is_french() {
        let changed = r.counts.create + r.counts.update + r.counts.delete + r.counts.replace;
        match (&r.status, &r.error) {
            (Status::Error, e) => pve_common::error!(
                "{}",
                pve_common::tr!(
                    "check_drift.env_error",
                    env = r.env,
                    message = e.as_ref().map(|e| headline(&e.message)).unwrap_or_default()
                )
            ),
            (Status::Drift, _) => pve_common::warn!(
                "{}",
                pve_common::tr!("check_drift.env_drift", env = r.env, count = changed)
            ),
            _ => pve_common::success!(
                "{}",
                pve_common::tr!("check_drift.env_in_sync", env = r.env)
            ),
        }
        return;
    }
    match (&r.status, &r.error) {
        (Status::Error, Some(e)) => {
            let first = headline(&e.message);
            pve_common::error!("{}: {}: {first}", r.env, e.kind.as_str());
        }
        (Status::Drift, _) => pve_common::warn!(
            "{}: drift: {} to create, {} to update, {} to delete, {} to replace",
            r.env,
            r.counts.create,
            r.counts.update,
            r.counts.delete,
            r.counts.replace
        ),
        _ => pve_common::success!("{}: in sync", r.env),
    }
}

fn progress_bar(enabled: bool, len: usize) -> Option<indicatif::ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed} {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}
