//! The one choke point for side effects, so `--dry-run` and `--preview` are honoured by construction rather
//! than by each call site remembering to check.
//!
//! Every state-changing local command, remote command, file write and S3 write of every tool goes through a
//! [`Runner`], which works in one of three [`Mode`]s:
//! - [`Mode::Live`] does everything;
//! - [`Mode::Preview`] (`--preview`) runs the calls marked [`Access::ReadOnly`], so it sees the real world
//!   it would change, and for the others logs `[dry-run] would <what>` and skips them;
//! - [`Mode::DryRun`] (`--dry-run`) contacts nothing: every call, queries included, is logged on a line
//!   containing `[DRY-RUN]` and skipped. A tool that needs a query's answer to go on asks
//!   [`Runner::may_query`] first and, when it may not, prints the query with [`Runner::announce`] (with
//!   [`placeholder`] for what only the query would tell) and carries on with placeholder values.
//!
//! Skipped calls are remembered (so `--json` output and tests can show them). `clippy.toml` forbids
//! `std::process::Command::new` elsewhere; this module and the pve-ssh crate are the only callers of processes.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Mutex, PoisonError};

use thiserror::Error;

use crate::secret::{self, Secret};

/// Whether a call changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only reads (a query, a listing, `terraform plan`): runs even in dry-run.
    ReadOnly,
    /// Changes something: skipped in dry-run.
    Mutating,
}

/// A failure of a local command or file operation, with what was run and what it said.
#[derive(Debug, Error)]
pub enum RunError {
    /// The program could not be started (not found, not executable).
    #[error("could not start `{command}`: {cause}")]
    Spawn {
        /// The command line, shell-quoted, secrets masked.
        command: String,
        /// Why (part of the message, not a `source()`: the chain would say it twice).
        cause: io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}){}", stderr_suffix(stderr))]
    Failed {
        /// The command line, shell-quoted, secrets masked.
        command: String,
        /// `exit status 3` or `signal 9`.
        status: String,
        /// The first lines of its stderr, secrets masked.
        stderr: String,
    },
    /// A file could not be written, moved or removed.
    #[error("could not {action} {}: {cause}", path.display())]
    File {
        /// `write`, `remove`, `create directory`...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (part of the message, not a `source()`: the chain would say it twice).
        cause: io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim())
    }
}

/// Describes how a process ended: `exit status 2`, `signal 9`.
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

/// The first `max_lines` non-empty lines of a command's stderr, ANSI escapes stripped and secrets masked:
/// enough to name the cause without flooding the terminal.
pub fn stderr_excerpt(stderr: &[u8], max_lines: usize) -> String {
    let text = strip_ansi(&String::from_utf8_lossy(stderr));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !is_source_snippet(l))
        .collect();
    let mut out = lines
        .iter()
        .take(max_lines)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > max_lines {
        out.push_str(&format!("\n... ({} more lines)", lines.len() - max_lines));
    }
    secret::mask(&out)
}

/// A line of a Terraform (or OpenTofu) diagnostic that quotes the configuration: the source lines under
/// `on terraform.tfvars line 3:` (`  3: password = "..."`), the underline and the values of the
/// expression (`├────`, `│ var.x is "..."`). They can hold a secret, so no excerpt keeps them; the
/// `on FILE line N` line before them says where the problem is.
pub fn is_source_snippet(line: &str) -> bool {
    let inner = line.trim_start_matches(['│', '╷', '╵']).trim_start();
    if inner.starts_with('├') || inner.starts_with('│') || inner.starts_with('┌') {
        return true;
    }
    let digits = inner.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && inner[digits..].starts_with(':') && {
        let rest = &inner[digits + 1..];
        rest.is_empty() || rest.starts_with(' ')
    }
}

/// Removes ANSI colour and cursor sequences (Terraform colours its diagnostics unless told not to).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[derive(Clone, Debug)]
enum EnvValue {
    Plain(OsString),
    Secret(Secret),
    Removed,
}

/// A local command to run through the [`Runner`]: program, arguments, directory, environment, stdin.
///
/// Arguments are passed to the program directly (no shell), so nothing needs quoting; [`fmt::Display`]
/// quotes them only to show an exact, copy-pasteable command line. Secret environment values are passed to
/// the child but never shown, and never placed on its command line.
#[derive(Clone, Debug)]
pub struct LocalCommand {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, EnvValue)>,
    stdin: Option<Vec<u8>>,
    stdout_file: Option<PathBuf>,
    stderr_file: Option<PathBuf>,
    own_process_group: bool,
    own_session: bool,
}

impl LocalCommand {
    /// A command running `program` (a name looked up in `PATH`, or a path).
    pub fn new(program: impl Into<OsString>) -> Self {
        LocalCommand {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: None,
            stdout_file: None,
            stderr_file: None,
            own_process_group: false,
            own_session: false,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs the command in `dir`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets an environment variable shown in the dry-run echo.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), EnvValue::Plain(value.into())));
        self
    }

    /// Sets an environment variable whose value is never shown.
    pub fn env_secret(mut self, key: impl Into<OsString>, value: Secret) -> Self {
        self.env.push((key.into(), EnvValue::Secret(value)));
        self
    }

    /// Removes an inherited environment variable.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), EnvValue::Removed));
        self
    }

    /// Feeds `bytes` to the command's stdin (otherwise stdin is empty, never the terminal).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sends the command's stdout to `path` (created or truncated) instead of capturing it in memory: for
    /// output too large to hold, read back as a stream afterwards. [`CommandOutput::stdout`] is then empty.
    pub fn stdout_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.stdout_file = Some(path.into());
        self
    }

    /// Starts the command in a process group of its own, so a signal can reach it and all its children
    /// (Terraform's providers) at once, and a terminal's Ctrl-C reaches only us.
    pub fn own_process_group(mut self) -> Self {
        self.own_process_group = true;
        self
    }

    /// Sends the command's stderr to `path` (created or truncated) instead of capturing it.
    pub fn stderr_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.stderr_file = Some(path.into());
        self
    }

    /// Starts the command in a session (and so a process group) of its own, through `setsid(1)`, which
    /// starts no new process when its caller is not a group leader: the child keeps its pid, has no
    /// controlling terminal, and outlives a hang-up or the death of the tool. Without `setsid` in PATH,
    /// a process group of its own.
    pub fn own_session(mut self) -> Self {
        self.own_session = true;
        self.own_process_group = true;
        self
    }

    /// The program.
    pub fn program(&self) -> &OsString {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// A duct expression for this command, capturing stdout and stderr, never failing on a non-zero exit.
    pub fn expression(&self) -> duct::Expression {
        // A program that cannot be found stays unwrapped, so that starting it fails as a spawn error
        // (`setsid` would report it as its own exit status 127 instead).
        let setsid = (self.own_session && which::which(&self.program).is_ok())
            .then(|| which::which("setsid").ok())
            .flatten();
        let mut expr = match &setsid {
            Some(setsid) => duct::cmd(
                setsid,
                std::iter::once(self.program.clone()).chain(self.args.iter().cloned()),
            ),
            None => duct::cmd(&self.program, &self.args),
        };
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        for (key, value) in &self.env {
            expr = match value {
                EnvValue::Plain(v) => expr.env(key, v),
                EnvValue::Secret(s) => expr.env(key, s.expose()),
                EnvValue::Removed => expr.env_remove(key),
            };
        }
        expr = match &self.stdin {
            Some(bytes) => expr.stdin_bytes(bytes.clone()),
            None => expr.stdin_null(),
        };
        if self.own_process_group && setsid.is_none() {
            expr = expr.before_spawn(|cmd| {
                use std::os::unix::process::CommandExt;
                cmd.process_group(0);
                Ok(())
            });
        }
        expr = match &self.stdout_file {
            Some(path) => expr.stdout_path(path),
            None => expr.stdout_capture(),
        };
        expr = match &self.stderr_file {
            Some(path) => expr.stderr_path(path),
            None => expr.stderr_capture(),
        };
        expr.unchecked()
    }

    /// This command with stdout and stderr going to fresh files of the run's private folder
    /// ([`crate::rundir::global`]) and in a session of its own, so that it finishes even if the tool
    /// dies (a pipe to a dead tool kills a child at its next write), and the paths of those files
    /// (`None` when the folder cannot be had: then it keeps its pipes and its process group).
    fn detached(&self) -> (LocalCommand, Option<Detached>) {
        let mut cmd = self.clone();
        let Ok(dir) = crate::rundir::global() else {
            cmd.own_process_group = true;
            return (cmd, None);
        };
        let stdout = self.stdout_file.is_none().then(|| dir.file_path("stdout"));
        let stderr = dir.file_path("stderr");
        if let Some(path) = &stdout {
            cmd.stdout_file = Some(path.clone());
        }
        cmd.stderr_file = Some(stderr.clone());
        cmd = cmd.own_session();
        (cmd, Some(Detached { stdout, stderr }))
    }
}

fn quote(s: &std::ffi::OsStr) -> String {
    let s = s.to_string_lossy();
    shlex::try_quote(&s).map_or_else(|_| format!("{s:?}"), |q| q.into_owned())
}

impl fmt::Display for LocalCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(dir) = &self.dir {
            parts.push(format!("cd {} &&", quote(dir.as_os_str())));
        }
        for (key, value) in &self.env {
            let key = key.to_string_lossy();
            match value {
                EnvValue::Plain(v) => parts.push(format!("{key}={}", quote(v))),
                EnvValue::Secret(_) => parts.push(format!("{key}={}", secret::MASK)),
                EnvValue::Removed => {}
            }
        }
        parts.push(quote(&self.program));
        parts.extend(self.args.iter().map(|a| quote(a)));
        if let Some(path) = &self.stdout_file {
            parts.push(format!(">{}", quote(path.as_os_str())));
        }
        f.write_str(&secret::mask(&parts.join(" ")))
    }
}

/// Where a detached child's output goes (see [`LocalCommand::detached`]).
#[derive(Debug)]
struct Detached {
    stdout: Option<PathBuf>,
    stderr: PathBuf,
}

impl Detached {
    /// Reads the output back and removes the files.
    fn collect(&self) -> (Vec<u8>, Vec<u8>) {
        let take = |p: &Path| {
            let bytes = std::fs::read(p).unwrap_or_default();
            let _ = std::fs::remove_file(p);
            bytes
        };
        (
            self.stdout.as_deref().map(take).unwrap_or_default(),
            take(&self.stderr),
        )
    }
}

/// A child started by [`Runner::start`]: its output goes to private files (see
/// [`LocalCommand::detached`]), read back when it is collected.
#[derive(Debug)]
pub struct Started {
    handle: duct::Handle,
    files: Option<Detached>,
}

impl Started {
    /// The child's process id (it leads its own process group and session).
    pub fn pids(&self) -> Vec<u32> {
        self.handle.pids()
    }

    /// Waits up to `timeout`; true once the child has exited.
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> io::Result<bool> {
        Ok(self.handle.wait_timeout(timeout)?.is_some())
    }

    /// Waits for the end and returns what the child wrote.
    pub fn into_output(self) -> io::Result<CommandOutput> {
        let out = self.handle.into_output()?;
        let (stdout, stderr) = match &self.files {
            Some(files) => files.collect(),
            None => (out.stdout, out.stderr),
        };
        Ok(CommandOutput {
            status: out.status,
            stdout,
            stderr,
        })
    }
}

/// What a finished command left behind.
#[derive(Clone, Debug)]
pub struct CommandOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// How much a run may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Everything runs.
    #[default]
    Live,
    /// `--preview`: read-only queries run, changes are shown and skipped.
    Preview,
    /// `--dry-run`: nothing is contacted and nothing changes; every command is shown on a `[DRY-RUN]` line.
    DryRun,
}

/// What a dry-run shows for a value only a query would tell: `<node>`, `<vmid>`.
pub fn placeholder(name: &str) -> String {
    format!("<{name}>")
}

/// The tag every `--dry-run` line carries (callers grep for it).
pub const DRY_RUN_TAG: &str = "[DRY-RUN]";

/// Runs side effects, or in preview and dry-run, says what it would do and does nothing.
#[derive(Debug, Default)]
pub struct Runner {
    mode: Mode,
    skipped: Mutex<Vec<String>>,
}

impl Runner {
    /// A runner that performs effects (`dry_run = false`) or previews them (`true`: read-only calls still
    /// run, as `--dry-run` did before it learnt to contact nothing). New code uses [`Runner::with_mode`].
    pub fn new(dry_run: bool) -> Self {
        Self::with_mode(if dry_run { Mode::Preview } else { Mode::Live })
    }

    /// A runner in `mode`.
    pub fn with_mode(mode: Mode) -> Self {
        Runner {
            mode,
            skipped: Mutex::new(Vec::new()),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether changes are skipped (preview or dry-run).
    pub fn is_dry_run(&self) -> bool {
        self.mode != Mode::Live
    }

    /// Whether read-only queries may run (everything but `--dry-run`).
    pub fn may_query(&self) -> bool {
        self.mode != Mode::DryRun
    }

    /// In `--dry-run`, shows a command that will not run (a query whose answer the tool replaces with
    /// placeholders) on a `[DRY-RUN]` line and remembers it; in the other modes does nothing.
    pub fn announce(&self, what: impl fmt::Display) {
        if self.mode == Mode::DryRun {
            self.log_skipped(format!("{DRY_RUN_TAG} {what}"));
        }
    }

    fn log_skipped(&self, line: String) {
        let line = secret::mask(&line);
        crate::log::emit(crate::log::Level::DryRun, format_args!("{line}"));
        self.skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// What a preview or dry-run skipped so far, as the lines it logged (without `[dry-run] ` in preview),
    /// in order.
    pub fn skipped(&self) -> Vec<String> {
        self.skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The choke point: runs `effect`, except in preview for an [`Access::Mutating`] call (logs
    /// `[dry-run] would <what>`) and in dry-run for any call (logs `[DRY-RUN] <what>`), which return
    /// `Ok(None)`. Every other method ends here.
    pub fn effect<T, E>(
        &self,
        access: Access,
        what: impl fmt::Display,
        effect: impl FnOnce() -> Result<T, E>,
    ) -> Result<Option<T>, E> {
        if self.mode == Mode::DryRun {
            self.log_skipped(format!("{DRY_RUN_TAG} {what}"));
            return Ok(None);
        }
        if self.mode == Mode::Preview && access == Access::Mutating {
            let line = secret::mask(&format!("would {what}"));
            crate::log::emit(crate::log::Level::DryRun, format_args!("[dry-run] {line}"));
            self.skipped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
            return Ok(None);
        }
        if access == Access::Mutating {
            crate::debug!("{}", secret::mask(&what.to_string()));
        }
        effect().map(Some)
    }

    /// Runs a local command to completion and returns its output whatever its exit status
    /// (Terraform's exit code 2 means "changes", not failure); `Err` only when it could not be started.
    pub fn run(
        &self,
        access: Access,
        command: &LocalCommand,
    ) -> Result<Option<CommandOutput>, RunError> {
        if self.mode == Mode::DryRun {
            self.announce(command);
            return Ok(None);
        }
        self.effect(access, format_args!("run: {command}"), || {
            crate::debug!("running: {command}");
            let spawn_error = |source| RunError::Spawn {
                command: command.to_string(),
                cause: source,
            };
            // A group of its own, registered with the interrupt handler: a SIGTERM to the tool stops the
            // child (and Terraform's providers) too, instead of leaving them running.
            // One that changes things is never killed on an interrupt, only waited for.
            let patient = access == Access::Mutating;
            let (detached, files) = command.detached();
            let (handle, child) = crate::interrupt::spawn_child(patient, || {
                let handle = detached.expression().start()?;
                let pid = handle.pids().first().copied();
                Ok((handle, pid))
            })
            .map_err(spawn_error)?;
            record(&handle, command);
            let output = handle.into_output().map_err(spawn_error);
            drop(child);
            let output = output?;
            let (stdout, stderr) = match &files {
                Some(files) => {
                    let (out, err) = files.collect();
                    (
                        if files.stdout.is_some() {
                            out
                        } else {
                            output.stdout
                        },
                        err,
                    )
                }
                None => (output.stdout, output.stderr),
            };
            Ok(CommandOutput {
                status: output.status,
                stdout,
                stderr,
            })
        })
    }

    /// Like [`Runner::run`], but a non-zero exit is an error carrying the status and stderr.
    pub fn run_checked(
        &self,
        access: Access,
        command: &LocalCommand,
    ) -> Result<Option<CommandOutput>, RunError> {
        let output = self.run(access, command)?;
        match output {
            Some(out) if !out.status.success() => Err(RunError::Failed {
                command: command.to_string(),
                status: describe_status(&out.status),
                stderr: stderr_excerpt(&out.stderr, 10),
            }),
            other => Ok(other),
        }
    }

    /// Starts a long-running local command and returns its handle (for timeouts and signals);
    /// `None` in dry-run for a mutating command.
    pub fn start(
        &self,
        access: Access,
        command: &LocalCommand,
    ) -> Result<Option<Started>, RunError> {
        if self.mode == Mode::DryRun {
            self.announce(command);
            return Ok(None);
        }
        self.effect(access, format_args!("run: {command}"), || {
            crate::debug!("starting: {command}");
            let (detached, files) = command.detached();
            let handle = detached
                .expression()
                .start()
                .map_err(|source| RunError::Spawn {
                    command: command.to_string(),
                    cause: source,
                })?;
            record(&handle, command);
            Ok(Started { handle, files })
        })
    }

    /// Writes `contents` to `path` atomically with `mode`: a temporary file in the same directory (created
    /// 0600, never at a predictable name), fsync, chmod, rename, fsync of the directory. A reader sees the
    /// old file or the new one, never half of either.
    pub fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), RunError> {
        let what = format_args!(
            "write: {} ({} bytes, mode {:04o})",
            path.display(),
            contents.len(),
            mode
        );
        self.effect(Access::Mutating, what, || {
            // An interrupt waits until the file is complete and renamed (or the temp file removed).
            let _section = crate::interrupt::critical();
            write_atomic(path, contents, mode)
        })?;
        Ok(())
    }

    /// [`Runner::write_file`] of what `contents` yields (`len` bytes, for the message), copied through a
    /// small buffer: a large file (a state's save point streamed from S3) is never held in memory.
    pub fn write_file_from(
        &self,
        path: &Path,
        contents: &mut dyn Read,
        len: u64,
        mode: u32,
    ) -> Result<(), RunError> {
        let what = format_args!("write: {} ({len} bytes, mode {mode:04o})", path.display());
        self.effect(Access::Mutating, what, || {
            let _section = crate::interrupt::critical();
            write_atomic_from(path, contents, mode)
        })?;
        Ok(())
    }

    /// Removes a file; a file that is already gone is not an error.
    pub fn remove_file(&self, path: &Path) -> Result<(), RunError> {
        self.effect(
            Access::Mutating,
            format_args!("remove: {}", path.display()),
            || match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(RunError::File {
                    action: "remove",
                    path: path.to_owned(),
                    cause: e,
                }),
                _ => Ok(()),
            },
        )?;
        Ok(())
    }

    /// Creates a directory and its parents with `mode` for the directories it creates.
    pub fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), RunError> {
        if path.is_dir() {
            return Ok(());
        }
        self.effect(
            Access::Mutating,
            format_args!("create directory: {}", path.display()),
            || {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(mode)
                    .create(path)
                    .map_err(|source| RunError::File {
                        action: "create directory",
                        path: path.to_owned(),
                        cause: source,
                    })
            },
        )?;
        Ok(())
    }
}

/// Notes a started child in the run's private folder, for the next run to find if this one is killed.
fn record(handle: &duct::Handle, command: &LocalCommand) {
    if let (Ok(dir), Some(pid)) = (crate::rundir::global(), handle.pids().first()) {
        dir.record_child(*pid, &command.to_string());
    }
}

fn write_atomic(path: &Path, mut contents: &[u8], mode: u32) -> Result<(), RunError> {
    write_atomic_from(path, &mut contents, mode)
}

fn write_atomic_from(path: &Path, contents: &mut dyn Read, mode: u32) -> Result<(), RunError> {
    let err = |action: &'static str| {
        move |source| RunError::File {
            action,
            path: path.to_owned(),
            cause: source,
        }
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".pve-tools-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err("create a temporary file next to"))?;
    io::copy(contents, &mut tmp).map_err(err("write"))?;
    tmp.as_file().sync_all().map_err(err("sync"))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err("set the mode of"))?;
    tmp.persist(path).map_err(|e| RunError::File {
        action: "rename into",
        path: path.to_owned(),
        cause: e.error,
    })?;
    // The rename is durable only once the directory entry is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log;

    #[test]
    fn dry_run_skips_mutating_local_command_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("touched");
        let runner = Runner::new(true);
        let cmd = LocalCommand::new("touch").arg(&marker);
        let (result, lines) = log::capture(|| runner.run(Access::Mutating, &cmd));
        assert!(result.unwrap().is_none());
        assert!(!marker.exists(), "dry-run must not run the command");
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("[dry-run] would run: touch "),
            "{lines:?}"
        );
        assert_eq!(runner.skipped().len(), 1);
    }

    #[test]
    fn dry_run_mode_contacts_nothing_and_tags_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("queried");
        let runner = Runner::with_mode(Mode::DryRun);
        assert!(!runner.may_query() && runner.is_dry_run());
        let query = LocalCommand::new("touch").arg(&marker);
        let ((ro, mutating, file), lines) = log::capture(|| {
            runner.announce(format!("ssh root@{} qm list", placeholder("node")));
            (
                runner.run(Access::ReadOnly, &query).unwrap(),
                runner.run(Access::Mutating, &query).unwrap(),
                runner.write_file(&marker, b"x", 0o644).unwrap(),
            )
        });
        assert!(ro.is_none() && mutating.is_none());
        let () = file;
        assert!(!marker.exists(), "a query must not run in dry-run");
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines.iter().all(|l| l.contains("[DRY-RUN]")), "{lines:?}");
        assert!(
            lines[0].ends_with("[DRY-RUN] ssh root@<node> qm list"),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with(&format!("[DRY-RUN] touch {}", marker.display())),
            "{lines:?}"
        );
        assert_eq!(runner.skipped().len(), 4);
    }

    #[test]
    fn preview_runs_queries_and_live_runs_everything() {
        let preview = Runner::with_mode(Mode::Preview);
        assert!(preview.may_query() && preview.is_dry_run());
        assert_eq!(
            Runner::new(true).mode(),
            Mode::Preview,
            "the old dry-run is preview"
        );
        assert_eq!(Runner::new(false).mode(), Mode::Live);
        let ((), lines) = log::capture(|| preview.announce("never shown"));
        assert!(lines.is_empty());
    }

    #[test]
    fn stdout_file_receives_the_output_instead_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out file.json");
        let cmd = LocalCommand::new("echo").arg("hello").stdout_file(&path);
        assert!(
            cmd.to_string()
                .ends_with(&format!(" >'{}'", path.display()))
        );
        let out = Runner::new(false)
            .run(Access::ReadOnly, &cmd)
            .unwrap()
            .unwrap();
        assert!(out.stdout.is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
    }

    #[test]
    fn dry_run_still_runs_read_only_commands() {
        let runner = Runner::new(true);
        let out = runner
            .run(Access::ReadOnly, &LocalCommand::new("echo").arg("hello"))
            .unwrap()
            .unwrap();
        assert_eq!(out.stdout_text(), "hello\n");
        assert!(runner.skipped().is_empty());
    }

    #[test]
    fn dry_run_skips_file_write_remove_and_mkdir() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("keep");
        std::fs::write(&existing, "old").unwrap();
        let runner = Runner::new(true);
        runner.write_file(&existing, b"new", 0o644).unwrap();
        runner
            .write_file(&dir.path().join("fresh"), b"x", 0o644)
            .unwrap();
        runner.remove_file(&existing).unwrap();
        runner
            .create_dir_all(&dir.path().join("a/b"), 0o755)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("keep")],
            "nothing created, nothing removed"
        );
        assert_eq!(runner.skipped().len(), 4);
    }

    #[test]
    fn run_returns_output_whatever_the_status() {
        let runner = Runner::new(false);
        let out = runner.run(
            Access::ReadOnly,
            &LocalCommand::new("sh").args(["-c", "echo oops >&2; exit 2"]),
        );
        let out = out.unwrap().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    }

    #[test]
    fn run_checked_keeps_status_and_stderr() {
        let runner = Runner::new(false);
        let cmd = LocalCommand::new("sh").args(["-c", "echo 'lock held' >&2; exit 3"]);
        let err = runner
            .run_checked(Access::ReadOnly, &cmd)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exit status 3"), "{err}");
        assert!(err.contains("lock held"), "{err}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let runner = Runner::new(false);
        let err = runner
            .run(Access::ReadOnly, &LocalCommand::new("/nonexistent/tf"))
            .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
    }

    #[test]
    fn write_file_is_atomic_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pve_drift.prom");
        let runner = Runner::new(false);
        runner.write_file(&path, b"a 1\n", 0o644).unwrap();
        runner.write_file(&path, b"a 2\n", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }

    #[test]
    fn display_quotes_and_hides_secret_env() {
        let cmd = LocalCommand::new("terraform")
            .dir("/srv/env prod")
            .env("TF_IN_AUTOMATION", "1")
            .env_secret(
                "AWS_SECRET_ACCESS_KEY",
                Secret::new("wJalrXUtnFEMI-example"),
            )
            .args(["plan", "-var=name=a b"]);
        let shown = cmd.to_string();
        assert_eq!(
            shown,
            format!(
                "cd '/srv/env prod' && TF_IN_AUTOMATION=1 AWS_SECRET_ACCESS_KEY={} terraform plan '-var=name=a b'",
                secret::MASK
            )
        );
    }

    #[test]
    fn secret_env_reaches_the_child_but_not_its_arguments() {
        let runner = Runner::new(false);
        let cmd = LocalCommand::new("sh")
            .args(["-c", "printf %s \"$TOKEN\""])
            .env_secret("TOKEN", Secret::new("tok-12345"));
        let out = runner.run(Access::ReadOnly, &cmd).unwrap().unwrap();
        assert_eq!(out.stdout_text(), "tok-12345");
        assert!(
            !cmd.get_args()
                .iter()
                .any(|a| a.to_string_lossy().contains("tok-12345"))
        );
    }

    #[test]
    fn ansi_and_excerpt() {
        assert_eq!(strip_ansi("\x1b[31mError:\x1b[0m bad"), "Error: bad");
        let text = b"\n\x1b[1mline1\x1b[0m\nline2\nline3\n";
        assert_eq!(stderr_excerpt(text, 2), "line1\nline2\n... (1 more lines)");
        // Issue 23 (4): Terraform's diagnostic quotes the configuration line; the excerpt does not.
        let diag = "╷\n│ Error: Invalid expression\n│\n│   on terraform.tfvars line 2:\n│    2: pm_password = \"hunter2-secret\"x\n│     ├────────────────\n│     │ var.pw is \"hunter2-secret\"\n│\n│ Expected the start of an expression.\n╵\n";
        let ex = stderr_excerpt(diag.as_bytes(), 20);
        assert!(!ex.contains("hunter2"), "{ex}");
        assert!(ex.contains("on terraform.tfvars line 2:"), "{ex}");
        assert!(ex.contains("Expected the start"), "{ex}");
    }
}
