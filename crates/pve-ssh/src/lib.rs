//! SSH to the Proxmox node: one session per run, host keys checked, every remote word quoted, every
//! state-changing command through the dry-run choke point. A crate of its own so that the tools that never
//! reach a node do not build libssh2 and OpenSSL; [`node`] says where the node is and how to reach it.
//!
//! An [`SshClient`] is made once per run from an [`SshTarget`] (host, optional port and user, resolved through
//! `~/.ssh/config`) and [`SshOptions`]. It connects lazily, then runs every [`RemoteCommand`] on its own
//! channel of the same session; it reconnects only when the session dropped. Authentication tries the
//! ssh-agent first, then the identity files (explicit, from ssh_config, or the defaults `id_ed25519`,
//! `id_ecdsa`, `id_rsa`); a key that needs a passphrase is reported, never prompted for.
//!
//! The host key is checked against known_hosts ([`known_hosts`] explains why it is read line by line):
//! an unknown key is refused with its fingerprint and how to accept it, unless
//! [`SshOptions::accept_new_host_key`] is set, which records it; a changed key is always refused.
//!
//! Two transports pass the same tests ([`TransportKind`]): libssh2 through the `ssh2` crate (the default),
//! and the system `ssh` binary (`PVE_SSH_TRANSPORT=openssh`) for ProxyJump and other configs ssh2-config
//! does not understand, and for BATS tests that put a fake `ssh` first in `PATH`; it reuses one connection
//! through a ControlMaster socket in a private temp dir.
//!
//! Methods: [`SshClient::check_ssh_access`] (3 attempts), [`SshClient::ssh_exec`] (non-zero exit is an
//! error), [`SshClient::ssh_exec_unchecked`], [`SshClient::ssh_exec_stream`] (stdout to a [`Write`] sink
//! or a [`LineSink`]), [`SshClient::ssh_exec_retry`] (transient failures; a failed command only when
//! idempotent). Mutating commands go through [`Runner::effect`]: in dry-run they are logged as
//! `[dry-run] would run: <command> (on user@host)` and skipped.
//!
//! Every command has a timeout (its own, or [`SshOptions::command_timeout`]); after a timeout the
//! connection is closed (the remote process may go on running) and the next command reconnects. Remote
//! stdin is empty unless given with [`RemoteCommand::stdin`] (the way to pass a secret: arguments are
//! visible in `ps`, locally too for the OpenSSH transport).
//!
//! ```no_run
//! use pve_common::runner::Runner;
//! use pve_ssh::{RemoteCommand, SshClient, SshOptions, SshTarget};
//!
//! let runner = Runner::new(false);
//! let mut node = SshClient::new(&runner, &SshTarget::new("pve"), SshOptions::default())?;
//! node.check_ssh_access()?;
//! let list = node.ssh_exec(&RemoteCommand::read_only("qm").arg("list"))?;
//! node.ssh_exec_retry(&RemoteCommand::mutating("qm").args(["set", "100", "--memory", "4096"]).idempotent())?;
//! # Ok::<(), pve_ssh::SshError>(())
//! ```

mod command;
mod config;
mod error;
pub mod known_hosts;
mod libssh2;
pub mod node;
mod openssh;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

pub use command::RemoteCommand;
pub use error::{Endpoint, SshError};

use pve_common::retry::{RetryError, RetryPolicy, Sleeper, ThreadSleeper, Transient, retry_with};
use pve_common::runner::{Access, Runner};

/// The environment variable choosing the transport: `openssh` or `libssh2` (the default).
pub const TRANSPORT_ENV: &str = "PVE_SSH_TRANSPORT";

/// The default connect timeout (TCP connect, handshake and authentication, each).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default command timeout: long enough for a restore, short enough that a hung node ends the run.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Where to connect, as the user wrote it; ssh_config fills in what is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// A host name, address or ssh_config `Host` alias.
    pub host: String,
    /// The port, if given explicitly (beats ssh_config; default 22).
    pub port: Option<u16>,
    /// The login user, if given explicitly (beats ssh_config; default: the local user).
    pub user: Option<String>,
}

impl SshTarget {
    /// A target by host name or alias.
    pub fn new(host: impl Into<String>) -> Self {
        SshTarget {
            host: host.into(),
            port: None,
            user: None,
        }
    }

    /// Sets the port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the login user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Parses `[user@]host[:port]` (an IPv6 address needs brackets: `[fe80::1]:22`).
    pub fn parse(text: &str) -> Option<Self> {
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
            Some(_) => return None,
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (h.to_owned(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p.parse().ok()?)),
                Some(_) => (rest.to_owned(), None),
                None => (rest.to_owned(), None),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(SshTarget { host, port, user })
    }
}

/// Which SSH implementation carries the commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// libssh2 in-process (the `ssh2` crate).
    #[default]
    Libssh2,
    /// The system `ssh` binary, one ControlMaster connection per client.
    ///
    /// For fake `ssh` scripts in BATS tests, the argv of a command is
    /// `[-F <config>] -o BatchMode=yes -o ConnectTimeout=<s> -o ControlMaster=auto -o ControlPath=<dir>/cm
    /// -o ControlPersist=120 -o StrictHostKeyChecking=yes|accept-new [-o UserKnownHostsFile=<file>]
    /// -o ServerAliveInterval=<s> -o ServerAliveCountMax=3 -o LogLevel=ERROR [-o IdentityAgent=<sock>|none]
    /// [-o IdentityFile=none] [-i <key>]... [-p <port>] [-l <user>] -T -- <host> <command line>`: the
    /// destination is always the second-to-last argument and the quoted command line the last. The
    /// connection is ended with `[-F <config>] -o ControlPath=<dir>/cm -O exit -- <host>` (its status is
    /// ignored); `-O check` is asked only after a silent exit status 255. Exit status 255 with one of ssh's
    /// own messages on stderr ("Connection refused", "Host key verification failed", "Permission denied"...)
    /// is classified as that failure; any other status is the remote command's. ssh reports a remote command
    /// killed by a signal as exit status 255 (libssh2 gives the signal's name in [`SshOutput::exit_signal`]).
    OpenSsh,
}

impl TransportKind {
    /// Reads [`TRANSPORT_ENV`] (see [`TransportKind::from_value`]).
    pub fn from_env() -> Self {
        Self::from_value(std::env::var(TRANSPORT_ENV).as_deref().unwrap_or(""))
    }

    /// `openssh` (any case, `ssh` too) selects [`TransportKind::OpenSsh`]; anything else libssh2.
    pub fn from_value(value: &str) -> Self {
        let value = value.trim();
        if value.eq_ignore_ascii_case("openssh") || value.eq_ignore_ascii_case("ssh") {
            TransportKind::OpenSsh
        } else {
            TransportKind::Libssh2
        }
    }
}

/// How to connect. [`SshOptions::default`] reads [`TRANSPORT_ENV`] and the user's `~/.ssh`.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// libssh2 or the system `ssh`.
    pub transport: TransportKind,
    /// The ssh_config to read (default `~/.ssh/config`, when present).
    pub config_file: Option<PathBuf>,
    /// The known_hosts file (default `~/.ssh/known_hosts`; for the OpenSSH transport, ssh's own default).
    pub known_hosts: Option<PathBuf>,
    /// Record an unknown host key instead of refusing it (never a changed one).
    pub accept_new_host_key: bool,
    /// Identity files to try after the agent; empty: ssh_config's `IdentityFile`, else the defaults.
    pub identity_files: Vec<PathBuf>,
    /// Whether to fall back to `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` when no identity is configured.
    pub default_identities: bool,
    /// Whether to try the ssh-agent first.
    pub use_agent: bool,
    /// The agent socket (default `$SSH_AUTH_SOCK`).
    pub agent_socket: Option<PathBuf>,
    /// Limit for connecting (TCP, handshake, authentication) and for any single protocol exchange.
    pub connect_timeout: Duration,
    /// Limit for a whole command, unless the command sets its own; `None`: no limit.
    pub command_timeout: Option<Duration>,
    /// How often to send a keepalive while waiting for output; after 3 unanswered ones (no byte from the
    /// server for 4 intervals) the session counts as dropped, as with OpenSSH's `ServerAliveCountMax`.
    pub keepalive_interval: Duration,
    /// Attempts and backoff for [`SshClient::ssh_exec_retry`].
    pub retry: RetryPolicy,
    /// The `ssh` program of the OpenSSH transport (default `ssh` from `PATH`).
    pub ssh_program: PathBuf,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            transport: TransportKind::from_env(),
            config_file: None,
            known_hosts: None,
            accept_new_host_key: false,
            identity_files: Vec::new(),
            default_identities: true,
            use_agent: true,
            agent_socket: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: Some(DEFAULT_COMMAND_TIMEOUT),
            keepalive_interval: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            ssh_program: PathBuf::from("ssh"),
        }
    }
}

impl SshOptions {
    /// The agent socket to use, if any.
    pub fn agent_socket_path(&self) -> Option<PathBuf> {
        if !self.use_agent {
            return None;
        }
        self.agent_socket.clone().or_else(|| {
            std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
    }
}

/// What a finished remote command left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshOutput {
    /// The exit status (-1 when killed by a signal).
    pub exit_status: i32,
    /// The signal that killed it (`TERM`, `KILL`...), if any.
    pub exit_signal: Option<String>,
    /// Its stdout (empty for [`SshClient::ssh_exec_stream`], which hands stdout to the sink).
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
}

impl SshOutput {
    /// Exit status 0 and no signal.
    pub fn success(&self) -> bool {
        self.exit_status == 0 && self.exit_signal.is_none()
    }

    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// `exit status 3` or `killed by signal TERM`.
    pub fn describe_status(&self) -> String {
        match &self.exit_signal {
            Some(sig) => format!("killed by signal {sig}"),
            None => format!("exit status {}", self.exit_status),
        }
    }
}

/// Most bytes of a command's stdout read into memory ([`SshClient::ssh_exec`] and friends): `pvesh`
/// answers of a large node are a few MiB. A node streaming without end gets
/// [`SshError::OutputTooLarge`], not all the memory.
pub const MAX_CAPTURED_OUTPUT: usize = 64 * 1024 * 1024;
/// Most bytes of a command's stderr kept; the rest is read and dropped.
pub const MAX_CAPTURED_STDERR: usize = 1024 * 1024;
/// Longest line a [`LineSink`] buffers.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A memory sink holding at most `limit` bytes. Past it, a write fails (`strict`, for stdout the caller
/// reads) or the bytes are dropped (for stderr, of which the start says enough).
pub(crate) struct CappedBuffer {
    data: Vec<u8>,
    limit: usize,
    strict: bool,
    overflowed: bool,
}

impl CappedBuffer {
    /// Keeps the first `limit` bytes and drops the rest.
    pub(crate) fn new(limit: usize) -> Self {
        CappedBuffer {
            data: Vec::new(),
            limit,
            strict: false,
            overflowed: false,
        }
    }

    /// Fails the write that would pass `limit`.
    pub(crate) fn strict(limit: usize) -> Self {
        CappedBuffer {
            strict: true,
            ..CappedBuffer::new(limit)
        }
    }

    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.data
    }
}

impl Write for CappedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.data.len());
        if data.len() > room {
            self.overflowed = true;
            if self.strict {
                return Err(io::Error::other(format!(
                    "more than {} bytes of output",
                    self.limit
                )));
            }
        }
        self.data.extend_from_slice(&data[..data.len().min(room)]);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`Write`] sink that calls a function for each complete line of output (without its newline, lossy
/// UTF-8); the last line without newline is delivered on [`LineSink::finish`] or drop.
pub struct LineSink<F: FnMut(&str)> {
    buffer: Vec<u8>,
    on_line: F,
}

impl<F: FnMut(&str)> LineSink<F> {
    /// Calls `on_line` for every line.
    pub fn new(on_line: F) -> Self {
        LineSink {
            buffer: Vec::new(),
            on_line,
        }
    }

    /// Delivers a last unterminated line, if any.
    pub fn finish(mut self) {
        self.flush_rest();
    }

    fn flush_rest(&mut self) {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            (self.on_line)(&String::from_utf8_lossy(&rest));
        }
    }
}

impl<F: FnMut(&str)> Write for LineSink<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.buffer[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let line = self.buffer[start..end]
                .strip_suffix(b"\r")
                .unwrap_or(&self.buffer[start..end]);
            (self.on_line)(&String::from_utf8_lossy(line));
            start = end + 1;
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_LINE_BYTES {
            return Err(io::Error::other(format!(
                "a line of output is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&str)> Drop for LineSink<F> {
    fn drop(&mut self) {
        self.flush_rest();
    }
}

/// How a command ended on the transport level.
#[derive(Debug, Default)]
pub(crate) struct Exit {
    pub status: i32,
    pub signal: Option<String>,
    pub stderr: Vec<u8>,
}

/// One command as a transport runs it: the quoted line, what goes to its stdin, how long it may take.
/// Its errors are built here so that both transports report a command's failures the same way.
pub(crate) struct Job<'a> {
    pub command: &'a str,
    pub stdin: &'a [u8],
    pub timeout: Option<Duration>,
}

impl Job<'_> {
    /// The caller's sink refused the command's output.
    pub fn output_error(&self, cause: io::Error) -> SshError {
        SshError::Io {
            what: format!(
                "write the output of `{}`",
                pve_common::secret::mask(self.command)
            ),
            cause,
        }
    }

    /// The command overstayed its timeout.
    pub fn timed_out(&self, endpoint: &Endpoint) -> SshError {
        SshError::CommandTimeout {
            endpoint: Box::new(endpoint.clone()),
            command: pve_common::secret::mask(self.command),
            timeout: self.timeout.unwrap_or_default(),
        }
    }

    /// The session dropped under the command.
    pub fn dropped(&self, endpoint: &Endpoint, message: impl Into<String>) -> SshError {
        SshError::SessionDropped {
            endpoint: Box::new(endpoint.clone()),
            command: Some(pve_common::secret::mask(self.command)),
            message: message.into(),
        }
    }
}

/// What a transport gets to do its work.
pub(crate) struct Context<'a> {
    pub runner: &'a Runner,
    pub target: &'a SshTarget,
    pub resolved: &'a config::Resolved,
    pub options: &'a SshOptions,
}

impl Context<'_> {
    /// The known_hosts file: the option, else ssh_config's `UserKnownHostsFile`, else `~/.ssh/known_hosts`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.options
            .known_hosts
            .clone()
            .or_else(|| self.resolved.known_hosts.clone())
            .unwrap_or_else(|| {
                config::home_dir()
                    .unwrap_or_else(|| PathBuf::from("/root"))
                    .join(".ssh/known_hosts")
            })
    }
}

/// One way of carrying commands to the node.
pub(crate) trait Transport: Send {
    /// Connects (and authenticates) unless already connected.
    fn connect(&mut self, cx: &Context<'_>) -> Result<(), SshError>;
    /// Runs the job's command (already quoted) to completion, feeding it the job's stdin then end of file,
    /// and writing stdout to `stdout` as it arrives.
    fn exec(
        &mut self,
        cx: &Context<'_>,
        job: &Job<'_>,
        stdout: &mut dyn Write,
    ) -> Result<Exit, SshError>;
    /// Closes the connection, if any.
    fn disconnect(&mut self, cx: &Context<'_>);
}

/// The SSH connection of a run. See the module documentation.
///
/// One client carries one session; commands on it run one after another. For parallel work, make one
/// client per thread (a blocking read on one libssh2 channel blocks the whole session). Dropping the
/// client closes the session (for OpenSSH, `ssh -O exit` ends the master connection).
pub struct SshClient<'r> {
    runner: &'r Runner,
    target: SshTarget,
    resolved: config::Resolved,
    options: SshOptions,
    transport: Box<dyn Transport>,
    sleeper: Box<dyn Sleeper + Send>,
}

impl std::fmt::Debug for SshClient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshClient")
            .field("endpoint", &self.resolved.endpoint)
            .field("transport", &self.options.transport)
            .finish()
    }
}

impl<'r> SshClient<'r> {
    /// Resolves `target` through ssh_config and prepares the transport; does not connect yet.
    pub fn new(
        runner: &'r Runner,
        target: &SshTarget,
        options: SshOptions,
    ) -> Result<Self, SshError> {
        let resolved = config::resolve(target, &options)?;
        let mut options = options;
        if let (TransportKind::Libssh2, Some(option)) = (options.transport, resolved.needs_openssh)
        {
            pve_common::debug!(
                "ssh: {} uses {option}, which only the system ssh honours; using the OpenSSH transport",
                target.host
            );
            options.transport = TransportKind::OpenSsh;
        }
        let transport: Box<dyn Transport> = match options.transport {
            TransportKind::Libssh2 => Box::new(libssh2::Libssh2::default()),
            TransportKind::OpenSsh => Box::new(openssh::OpenSsh::new()?),
        };
        Ok(SshClient {
            runner,
            target: target.clone(),
            resolved,
            options,
            transport,
            sleeper: Box::new(ThreadSleeper),
        })
    }

    /// Replaces the sleeper used between retries (tests pass a fake that does not sleep).
    pub fn with_sleeper(mut self, sleeper: Box<dyn Sleeper + Send>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The resolved host, port and user.
    pub fn endpoint(&self) -> &Endpoint {
        &self.resolved.endpoint
    }

    /// The options in use.
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    fn parts(&mut self) -> (Context<'_>, &mut dyn Transport) {
        (
            Context {
                runner: self.runner,
                target: &self.target,
                resolved: &self.resolved,
                options: &self.options,
            },
            &mut *self.transport,
        )
    }

    /// Connects and authenticates once (no retry), unless already connected.
    pub fn connect(&mut self) -> Result<(), SshError> {
        let (cx, transport) = self.parts();
        transport.connect(&cx)
    }

    /// Closes the session; the next command reconnects.
    pub fn disconnect(&mut self) {
        let (cx, transport) = self.parts();
        transport.disconnect(&cx);
    }

    /// Proves the node is reachable and accepts us: connects and runs `true`, with 3 attempts for transient
    /// failures. The error names host, port, user and the cause.
    pub fn check_ssh_access(&mut self) -> Result<(), SshError> {
        let policy = RetryPolicy {
            attempts: 3,
            ..self.options.retry
        };
        let what = format!("ssh access check of {}", self.endpoint());
        let probe = RemoteCommand::read_only("true");
        let sleeper = std::mem::replace(&mut self.sleeper, Box::new(ThreadSleeper));
        let result = retry_with(
            &policy,
            sleeper.as_ref(),
            &what,
            Transient::is_transient,
            |_| self.ssh_exec(&probe).map(|_| ()),
        );
        self.sleeper = sleeper;
        result.map_err(|e| gave_up(e, what))
    }

    /// Runs `command`; a non-zero exit is [`SshError::CommandFailed`] with the status and stderr. `None`
    /// when a dry-run skipped it.
    pub fn ssh_exec(&mut self, command: &RemoteCommand) -> Result<Option<SshOutput>, SshError> {
        let out = self.ssh_exec_unchecked(command)?;
        match out {
            Some(o) if !o.success() => Err(self.failed(command, &o)),
            other => Ok(other),
        }
    }

    /// Runs `command` and returns its output whatever its exit status; `Err` only when it could not run
    /// (or timed out). `None` when a dry-run skipped it.
    pub fn ssh_exec_unchecked(
        &mut self,
        command: &RemoteCommand,
    ) -> Result<Option<SshOutput>, SshError> {
        let mut stdout = CappedBuffer::strict(MAX_CAPTURED_OUTPUT);
        let out = match self.run(command, &mut stdout) {
            Err(_) if stdout.overflowed => {
                return Err(SshError::OutputTooLarge {
                    endpoint: Box::new(self.endpoint().clone()),
                    command: pve_common::secret::mask(&command.to_string()),
                    limit: MAX_CAPTURED_OUTPUT,
                });
            }
            other => other?,
        };
        Ok(out.map(|mut o| {
            o.stdout = stdout.into_inner();
            o
        }))
    }

    /// Runs `command`, writing its stdout to `sink` as it arrives (constant memory for any output size;
    /// wrap a closure in [`LineSink`] to get lines). stderr is collected. A non-zero exit is an error.
    pub fn ssh_exec_stream(
        &mut self,
        command: &RemoteCommand,
        sink: &mut dyn Write,
    ) -> Result<Option<SshOutput>, SshError> {
        match self.run(command, sink)? {
            Some(o) if !o.success() => Err(self.failed(command, &o)),
            other => Ok(other),
        }
    }

    /// [`SshClient::ssh_exec`] with retries (policy from [`SshOptions::retry`]): transient failures are
    /// retried; a command that ran and failed (non-zero exit, timeout) only when it is idempotent.
    pub fn ssh_exec_retry(
        &mut self,
        command: &RemoteCommand,
    ) -> Result<Option<SshOutput>, SshError> {
        let policy = self.options.retry;
        let what = format!("`{command}` on {}", self.endpoint());
        let idempotent = command.is_idempotent();
        let sleeper = std::mem::replace(&mut self.sleeper, Box::new(ThreadSleeper));
        let result = retry_with(
            &policy,
            sleeper.as_ref(),
            &what,
            |e: &SshError| e.is_transient() || (idempotent && e.is_command_failure()),
            |_| self.ssh_exec(command),
        );
        self.sleeper = sleeper;
        result.map_err(|e| gave_up(e, what))
    }

    fn failed(&self, command: &RemoteCommand, out: &SshOutput) -> SshError {
        SshError::CommandFailed {
            endpoint: Box::new(self.endpoint().clone()),
            command: command.to_string(),
            status: out.describe_status(),
            exit_status: out.exit_status,
            stderr: pve_common::runner::stderr_excerpt(&out.stderr, 10),
        }
    }

    /// The one path of every command: quoting, dry-run, connect, exec.
    fn run(
        &mut self,
        command: &RemoteCommand,
        stdout: &mut dyn Write,
    ) -> Result<Option<SshOutput>, SshError> {
        let endpoint = self.endpoint().clone();
        let line = command
            .command_line()
            .ok_or_else(|| SshError::InvalidCommand {
                endpoint: Box::new(endpoint.clone()),
                command: command.to_string(),
            })?;
        let timeout = command.get_timeout().or(self.options.command_timeout);
        let runner = self.runner;
        let access = command.access();
        runner.effect(
            access,
            format_args!("run: {command} (on {endpoint}){}", stdin_note(command)),
            || {
                let (cx, transport) = self.parts();
                if access == Access::ReadOnly {
                    pve_common::debug!("running on {endpoint}: {command}");
                }
                // Each transport connects (or reconnects a dropped session) itself.
                let job = Job {
                    command: &line,
                    stdin: command.get_stdin(),
                    timeout,
                };
                let exit = transport.exec(&cx, &job, stdout)?;
                Ok(SshOutput {
                    exit_status: exit.status,
                    exit_signal: exit.signal,
                    stdout: Vec::new(),
                    stderr: exit.stderr,
                })
            },
        )
    }
}

impl Drop for SshClient<'_> {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// ` with 12 bytes on stdin` for the dry-run echo, when there is stdin.
fn stdin_note(command: &RemoteCommand) -> String {
    match command.get_stdin().len() {
        0 => String::new(),
        n => format!(" with {n} bytes on stdin"),
    }
}

fn gave_up(error: RetryError<SshError>, what: String) -> SshError {
    match error {
        RetryError::Permanent(e) => e,
        RetryError::Exhausted { attempts, last, .. } => SshError::GaveUp {
            what,
            attempts,
            last: Box::new(last),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        assert_eq!(SshTarget::parse("pve"), Some(SshTarget::new("pve")));
        assert_eq!(
            SshTarget::parse("root@192.0.2.2:2222"),
            Some(SshTarget::new("192.0.2.2").user("root").port(2222))
        );
        assert_eq!(
            SshTarget::parse("[fe80::1]:22"),
            Some(SshTarget::new("fe80::1").port(22))
        );
        assert_eq!(SshTarget::parse("fe80::1"), Some(SshTarget::new("fe80::1")));
        assert_eq!(SshTarget::parse("@pve"), None);
        assert_eq!(SshTarget::parse("pve:x"), None);
    }

    #[test]
    fn transport_values() {
        assert_eq!(TransportKind::from_value("openssh"), TransportKind::OpenSsh);
        assert_eq!(
            TransportKind::from_value(" OpenSSH\n"),
            TransportKind::OpenSsh
        );
        assert_eq!(TransportKind::from_value(""), TransportKind::Libssh2);
        assert_eq!(TransportKind::from_value("libssh2"), TransportKind::Libssh2);
    }

    #[test]
    fn line_sink_splits_lines_across_writes() {
        let mut lines = Vec::new();
        {
            let mut sink = LineSink::new(|l: &str| lines.push(l.to_owned()));
            sink.write_all(b"one\ntw").unwrap();
            sink.write_all(b"o\r\nthree").unwrap();
            sink.finish();
        }
        assert_eq!(lines, vec!["one", "two", "three"]);
    }

    #[test]
    fn endpoint_display() {
        let mut e = Endpoint {
            host: "pve".into(),
            port: 22,
            user: "root".into(),
        };
        assert_eq!(e.to_string(), "root@pve");
        e.port = 2222;
        assert_eq!(e.to_string(), "root@pve:2222");
        assert_eq!(e.describe(), "host pve port 2222 user root");
    }

    #[test]
    fn transient_classification() {
        let e = Endpoint {
            host: "pve".into(),
            port: 22,
            user: "root".into(),
        };
        let refused = SshError::Connect {
            endpoint: Box::new(e.clone()),
            cause: io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(refused.is_transient());
        let auth = SshError::Auth {
            endpoint: Box::new(e.clone()),
            tried: "ssh-agent".into(),
        };
        assert!(!auth.is_transient());
        let failed = SshError::CommandFailed {
            endpoint: Box::new(e),
            command: "false".into(),
            status: "exit status 1".into(),
            exit_status: 1,
            stderr: String::new(),
        };
        assert!(!failed.is_transient() && failed.is_command_failure());
    }
}
