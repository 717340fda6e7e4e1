//! Running Terraform (or OpenTofu) for one environment: `init` (when needed, see [`init_required`]), `plan
//! -json` into a private plan file, `show -json` when the plan has something to describe, each under the
//! environment's deadline, and classifying its failures.
//!
//! Every command starts in a process group of its own. On the deadline, or when check-drift itself is
//! interrupted, the whole group gets SIGINT (Terraform then stops cleanly and releases the state lock), and
//! SIGKILL after a grace period. Commands go through [`pve_common::runner::Runner`] as mutating effects, so
//! `--dry-run` prints them and runs nothing (not even `plan`: it takes the state lock and writes a file).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pve_common::process::{Signal, signal_group};
use pve_common::runner::{Access, CommandOutput, LocalCommand, Runner, strip_ansi};
use serde::{Deserialize, Serialize};

/// How to call Terraform: which binary and which extra environment (backend credentials of a test bed...).
#[derive(Clone, Debug)]
pub struct Terraform {
    /// The binary (a path, or a name looked up in PATH).
    pub binary: PathBuf,
    /// Extra environment for every command.
    pub env: Vec<(OsString, OsString)>,
}

/// Finds the binary: `explicit` (`--terraform-bin`, which clap also fills from `TF_BIN`), else `tofu`,
/// else `terraform` from PATH (pve-common's order). A named binary that does not exist is returned as
/// given, so running it fails and the environment reports `terraform_missing` naming it.
pub fn resolve_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    match pve_common::terraform::resolve(explicit.map(Path::as_os_str)) {
        Ok(bin) => Some(bin.path),
        Err(_) => explicit.map(Path::to_owned),
    }
}

impl Terraform {
    /// A command running the binary in `dir` with `args`, `TF_IN_AUTOMATION=1`, no update check
    /// (`CHECKPOINT_DISABLE=1`: no call to HashiCorp from a homelab host) and the extra environment.
    pub fn command<I, S>(&self, dir: &Path, args: I) -> LocalCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = LocalCommand::new(&self.binary)
            .dir(dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1");
        for (key, value) in &self.env {
            cmd = cmd.env(key, value);
        }
        cmd.args(args).own_process_group()
    }

    /// `terraform version -json` → `1.11.4`; `None` when it cannot tell.
    pub fn version(&self, runner: &Runner) -> Option<String> {
        let cmd = self.command(Path::new("."), ["version", "-json"]);
        let out = runner.run(Access::ReadOnly, &cmd).ok()??;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.get("terraform_version")?.as_str().map(str::to_owned)
    }
}

/// `-lock-timeout=` value: whole seconds when possible, else milliseconds (Go duration syntax).
pub fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Why a step ended.
#[derive(Debug)]
pub enum StepEnd {
    /// It exited on its own.
    Exited(CommandOutput),
    /// The deadline passed; it was stopped. Holds what it wrote to stderr.
    TimedOut(Vec<u8>),
    /// check-drift was interrupted; it was stopped.
    Interrupted(Vec<u8>),
}

/// Deadline, grace period and the run-wide interrupt flag a step obeys.
#[derive(Clone, Copy, Debug)]
pub struct Limits<'a> {
    /// When the environment's time is up.
    pub deadline: Instant,
    /// Time between SIGINT and SIGKILL.
    pub grace: Duration,
    /// Set by the SIGINT/SIGTERM handler.
    pub interrupted: &'a AtomicBool,
}

const POLL: Duration = Duration::from_millis(50);

/// Runs one command under `limits`. `Ok(None)` in dry-run.
pub fn run_step(
    runner: &Runner,
    cmd: &LocalCommand,
    limits: Limits<'_>,
) -> anyhow::Result<Option<StepEnd>> {
    run_step_polling(runner, cmd, limits, &mut || {})
}

/// [`run_step`], calling `poll` while the command runs (every 50 ms at most) and once after it ended:
/// to read what it writes as it writes it.
pub fn run_step_polling(
    runner: &Runner,
    cmd: &LocalCommand,
    limits: Limits<'_>,
    poll: &mut dyn FnMut(),
) -> anyhow::Result<Option<StepEnd>> {
    let Some(handle) = runner.start(Access::Mutating, cmd)? else {
        return Ok(None);
    };
    let context = || format!("waiting for `{cmd}`");
    let interrupted = loop {
        let ended = handle.wait_timeout(POLL).with_context(context)?;
        poll();
        if ended {
            let out = handle.into_output().with_context(context)?;
            return Ok(Some(StepEnd::Exited(out)));
        }
        if limits.interrupted.load(Ordering::SeqCst) {
            break true;
        }
        if Instant::now() >= limits.deadline {
            break false;
        }
    };
    // Terraform is the leader of its own group: signal the group so its providers hear it too.
    let pgid = handle.pids().first().copied();
    if let Some(pgid) = pgid {
        pve_common::debug!("sending SIGINT to process group {pgid} ({cmd})");
        signal_group(pgid, Signal::SIGINT);
    }
    if !handle.wait_timeout(limits.grace).with_context(context)?
        && let Some(pgid) = pgid
    {
        pve_common::warn!(
            "Terraform did not stop within {} of SIGINT; killing it (the state lock may stay held)",
            humantime::format_duration(limits.grace)
        );
        signal_group(pgid, Signal::SIGKILL);
    }
    let out = handle.into_output().with_context(context)?;
    poll();
    Ok(Some(if interrupted {
        StepEnd::Interrupted(out.stderr)
    } else {
        StepEnd::TimedOut(out.stderr)
    }))
}

/// What kind of failure an environment had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorKind {
    /// The state lock is held by someone else.
    Lock,
    /// The backend or provider rejected the credentials.
    Credentials,
    /// An endpoint could not be reached.
    Network,
    /// `terraform init` failed for another reason.
    Init,
    /// The environment ran past `--timeout`.
    Timeout,
    /// No Terraform or OpenTofu binary.
    TerraformMissing,
    /// check-drift was interrupted (SIGINT/SIGTERM) before the environment finished.
    Interrupted,
    /// Anything else (invalid configuration, provider error, unreadable plan).
    Unknown,
}

impl ErrorKind {
    /// `lock`, `terraform_missing`...: the word in the JSON report.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who holds a state lock, as Terraform prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Lock ID (needed for `terraform force-unlock`).
    pub id: Option<String>,
    /// Locked state path.
    pub path: Option<String>,
    /// Operation holding it.
    pub operation: Option<String>,
    /// `user@host`.
    pub who: Option<String>,
    /// Terraform version of the holder.
    pub version: Option<String>,
    /// When it was taken.
    pub created: Option<String>,
    /// How long ago it was taken, in seconds, when `created` reads as a time (a lock a killed run left
    /// shows its age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
}

/// Seconds since a lock's `Created` as Terraform prints it (`2026-11-21 08:00:00.123 +0000 UTC`, Go's
/// default time format) or as RFC 3339; `None` when it reads as neither or lies in the future.
pub fn lock_age_seconds(created: &str, now: jiff::Timestamp) -> Option<u64> {
    let text = created.trim();
    let then = text.parse::<jiff::Timestamp>().ok().or_else(|| {
        let go = text.strip_suffix(" UTC").unwrap_or(text);
        jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S%.f %z", go)
            .ok()?
            .to_timestamp()
            .ok()
    })?;
    u64::try_from(now.duration_since(then).as_secs()).ok()
}

/// Which step failed, for classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `init`.
    Init,
    /// `plan`.
    Plan,
    /// `show -json`.
    Show,
}

/// Classifies a failure from the step and Terraform's stderr (ANSI stripped, any case).
pub fn classify_error(step: Step, stderr: &str) -> ErrorKind {
    let text = strip_ansi(stderr).to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "error acquiring the state lock",
        "lock info:",
        "conditionalcheckfailed",
        "state blob is already locked",
    ]) {
        ErrorKind::Lock
    } else if has(&[
        "no valid credential",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "accessdenied",
        "access denied",
        "invalidclienttokenid",
        "expiredtoken",
        "401 unauthorized",
        "403 forbidden",
        "status code: 401",
        "status code: 403",
        "authentication failed",
        "authentication failure",
        "invalid credentials",
        "permission denied (publickey",
        "remote state endpoint requires auth",
        "remote state endpoint invalid auth",
    ]) {
        ErrorKind::Credentials
    } else if has(&[
        "connection refused",
        "no such host",
        "network is unreachable",
        "no route to host",
        "i/o timeout",
        "tls handshake timeout",
        "connection reset by peer",
        "context deadline exceeded",
        "request canceled while waiting for connection",
        "dial tcp",
    ]) {
        ErrorKind::Network
    } else if step == Step::Init {
        ErrorKind::Init
    } else {
        ErrorKind::Unknown
    }
}

/// Why Terraform (or OpenTofu) says the folder must be initialised again, from a failed command's stderr:
/// the first `Error:` line of such a diagnostic (a backend, module, provider or lock file that changed
/// since the last `init`, or plugins missing). `None` for every other failure.
pub fn init_required(stderr: &str) -> Option<String> {
    const NEEDLES: &[&str] = &[
        "backend initialization required",
        "backend configuration changed",
        "module not installed",
        "module source has changed",
        "module version requirements have changed",
        "inconsistent dependency lock file",
        "required plugins are not installed",
        "missing required provider",
        "provider requirements cannot be satisfied by locked dependencies",
        "please run \"terraform init\"",
        "please run \"tofu init\"",
        "run \"terraform init\"",
        "run \"tofu init\"",
    ];
    let text = strip_ansi(stderr);
    let lower = text.to_ascii_lowercase();
    if !NEEDLES.iter().any(|n| lower.contains(n)) {
        return None;
    }
    let reason = text
        .lines()
        .map(clean)
        .find_map(|l| l.strip_prefix("Error:"))
        .map_or("init required", str::trim);
    Some(reason.to_owned())
}

/// Reads the `Lock Info:` block Terraform prints when the state lock is held.
pub fn parse_lock_info(stderr: &str) -> Option<LockInfo> {
    let text = strip_ansi(stderr);
    let mut lines = text
        .lines()
        .skip_while(|l| !clean(l).starts_with("Lock Info:"));
    lines.next()?;
    let mut info = LockInfo::default();
    for line in lines {
        let line = clean(line);
        let Some((key, value)) = line.split_once(':') else {
            if line.is_empty() {
                continue;
            }
            break;
        };
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match key.trim() {
            "ID" => info.id = value,
            "Path" => info.path = value,
            "Operation" => info.operation = value,
            "Who" => info.who = value,
            "Version" => info.version = value,
            "Created" => info.created = value,
            "Info" => {}
            _ => break,
        }
    }
    info.age_seconds = info
        .created
        .as_deref()
        .and_then(|c| lock_age_seconds(c, jiff::Timestamp::now()));
    (info != LockInfo::default()).then_some(info)
}

fn clean(line: &str) -> &str {
    line.trim_start_matches(['│', '╷', '╵']).trim()
}

/// The useful part of Terraform's stderr: its warnings dropped (every run here starts with one about a
/// missing CLI configuration file, and a warning after the error would push the cause out of the
/// excerpt), then from the first `Error:` on; ANSI stripped, secrets masked, at most `max_lines` lines.
pub fn error_excerpt(stderr: &[u8], max_lines: usize) -> String {
    let text = strip_ansi(&String::from_utf8_lossy(stderr));
    let mut kept: Vec<&str> = Vec::new();
    // A warning lasts until its box closes (`╵`) or, unboxed, until the next `Error:`.
    let mut in_warning = false;
    for line in text.lines() {
        let c = clean(line);
        if c.starts_with("Error:") {
            in_warning = false;
        } else if c.starts_with("Warning:")
            || c.starts_with("There are some problems with the CLI configuration")
        {
            in_warning = true;
        }
        if line.starts_with('╵') {
            in_warning = false;
            continue;
        }
        if line.starts_with('╷') || in_warning {
            continue;
        }
        kept.push(c);
    }
    let start = kept
        .iter()
        .position(|l| l.starts_with("Error:"))
        .unwrap_or(0);
    let text = kept[start..].join("\n");
    pve_common::runner::stderr_excerpt(text.trim().as_bytes(), max_lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKED: &str = "There are some problems with the CLI configuration:\n╷\n│ Warning: Unable to open CLI configuration file\n│\n│ The CLI configuration file at \"/root/.terraformrc\" does not exist.\n╵\n\n\nError: Error acquiring the state lock\n\nError message: resource temporarily unavailable\nLock Info:\n  ID:        da177b3c-c7c5-3868-48a1-f720a53c5253\n  Path:      terraform.tfstate\n  Operation: OperationTypeInvalid\n  Who:       root@vm\n  Version:   1.11.4\n  Created:   2026-11-21 20:10:57.893943756 +0000 UTC\n  Info:      \n\n\nTerraform acquires a state lock to protect the state from being written\nby multiple users at the same time.\n";

    #[test]
    fn lock_message_is_classified_and_parsed() {
        assert_eq!(classify_error(Step::Plan, LOCKED), ErrorKind::Lock);
        let info = parse_lock_info(LOCKED).unwrap();
        assert_eq!(
            info.id.as_deref(),
            Some("da177b3c-c7c5-3868-48a1-f720a53c5253")
        );
        assert_eq!(info.who.as_deref(), Some("root@vm"));
        assert_eq!(info.operation.as_deref(), Some("OperationTypeInvalid"));
        assert_eq!(
            info.created.as_deref(),
            Some("2026-11-21 20:10:57.893943756 +0000 UTC")
        );
        assert_eq!(info.path.as_deref(), Some("terraform.tfstate"));
        assert_eq!(info.version.as_deref(), Some("1.11.4"));
    }

    #[test]
    fn boxed_lock_message_from_the_s3_backend() {
        let text = "╷\n│ Error: Error acquiring the state lock\n│\n│ Error message: operation error S3: PutObject, https response error StatusCode: 412\n│ Lock Info:\n│   ID:        1234\n│   Path:      tfstate/lab/terraform.tfstate\n│   Operation: OperationTypePlan\n│   Who:       ops@bastion\n│   Version:   1.11.4\n│   Created:   2026-11-21 08:00:00 +0000 UTC\n│   Info:\n╵\n";
        let info = parse_lock_info(text).unwrap();
        assert_eq!(info.who.as_deref(), Some("ops@bastion"));
        assert_eq!(info.operation.as_deref(), Some("OperationTypePlan"));
        assert!(info.age_seconds.is_some());
        let now: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
        assert_eq!(
            lock_age_seconds("2026-11-21 08:00:00 +0000 UTC", now),
            Some(7200)
        );
        assert_eq!(
            lock_age_seconds("2026-11-21 09:59:58.893943756 +0000 UTC", now),
            Some(1)
        );
        assert_eq!(lock_age_seconds("2026-11-21T09:00:00Z", now), Some(3600));
        assert_eq!(lock_age_seconds("2026-11-21 11:00:00 +0000 UTC", now), None);
        assert_eq!(lock_age_seconds("yesterday", now), None);
    }

    #[test]
    fn other_kinds() {
        let cases = [
            (
                "Error: No valid credential sources found",
                Step::Init,
                ErrorKind::Credentials,
            ),
            (
                "api error SignatureDoesNotMatch: bad",
                Step::Plan,
                ErrorKind::Credentials,
            ),
            (
                "Post \"https://pve:8006/api2/json\": dial tcp 192.0.2.1:8006: connect: connection refused",
                Step::Plan,
                ErrorKind::Network,
            ),
            (
                "Error: Failed to query available provider packages",
                Step::Init,
                ErrorKind::Init,
            ),
            (
                "Error: Unsupported argument",
                Step::Plan,
                ErrorKind::Unknown,
            ),
        ];
        for (text, step, kind) in cases {
            assert_eq!(classify_error(step, text), kind, "{text}");
        }
    }

    #[test]
    fn excerpt_skips_the_cli_config_warning() {
        let ex = error_excerpt(LOCKED.as_bytes(), 3);
        assert!(
            ex.starts_with("Error: Error acquiring the state lock"),
            "{ex}"
        );
        let only_warning = "There are some problems with the CLI configuration:\n╷\n│ Warning: Unable to open CLI configuration file\n╵\nsomething broke\n";
        assert_eq!(error_excerpt(only_warning.as_bytes(), 3), "something broke");
        let warning_after = "Error: Reference to undeclared input variable\n\nAn input variable \"missing\"\n\nThere are some problems with the CLI configuration:\n╷\n│ Warning: Unable to open CLI configuration file\n╵\n";
        assert_eq!(
            error_excerpt(warning_after.as_bytes(), 12),
            "Error: Reference to undeclared input variable\nAn input variable \"missing\""
        );
    }

    #[test]
    fn init_required_diagnostics_are_recognised() {
        let backend = "There are some problems with the CLI configuration:\n╷\n│ Warning: Unable to open CLI configuration file\n╵\n╷\n│ Error: Backend initialization required, please run \"terraform init\"\n│\n│ Reason: Initial configuration of the requested backend \"s3\"\n╵\n";
        assert_eq!(
            init_required(backend).as_deref(),
            Some("Backend initialization required, please run \"terraform init\"")
        );
        let lock = "Error: Inconsistent dependency lock file\n\nThe following dependency selections recorded in the lock file are\ninconsistent with the current configuration:\n  - provider registry.terraform.io/bpg/proxmox: required by this configuration but no version is selected\n\nTo make the initial dependency selections that will initialize the dependency\nlock file, run:\n  terraform init\n";
        assert_eq!(
            init_required(lock).as_deref(),
            Some("Inconsistent dependency lock file")
        );
        let module = "Error: Module not installed\n\n  on main.tf line 2:\n   2: module \"m\" { source = \"./mod\" }\n\nThis module is not yet installed. Run \"terraform init\" to install all modules\nrequired by this configuration.\n";
        assert_eq!(
            init_required(module).as_deref(),
            Some("Module not installed")
        );
        assert_eq!(init_required(LOCKED), None);
        assert_eq!(init_required("Error: Unsupported argument"), None);
        assert_eq!(
            init_required("Error: Post \"https://pve:8006\": dial tcp: connection refused"),
            None
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(60)), "60s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }
}
