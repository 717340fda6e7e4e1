//! The libssh2 transport (`ssh2` crate): one session, one channel per command.
//!
//! Guard rails, each against a way libssh2 was seen to hang or leak: `set_timeout` is always set (libssh2's default is to wait forever);
//! output is read in non-blocking mode, alternating stdout and stderr so neither can fill the channel
//! window while we wait on the other (a deadlock on large outputs), waiting for the socket between rounds
//! with a `peek` on a clone of the TCP stream (a poll without `unsafe`); keepalives are sent from that
//! loop. After a command timeout the connection is shut down and dropped rather than reused: libssh2 can
//! block for another timeout when freeing a channel that still has a running command.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh2::{ErrorCode, Session};

use super::known_hosts::{self, Verdict};
use super::{Context, Endpoint, Exit, Job, SshError, Transport};
use pve_common::runner::Access;

// libssh2 error codes (libssh2.h) that mean the connection is gone.
const ERROR_SOCKET_NONE: i32 = -1;
const ERROR_BANNER_RECV: i32 = -2;
const ERROR_BANNER_SEND: i32 = -3;
const ERROR_KEX_FAILURE: i32 = -5;
const ERROR_SOCKET_SEND: i32 = -7;
const ERROR_KEY_EXCHANGE_FAILURE: i32 = -8;
const ERROR_TIMEOUT: i32 = -9;
const ERROR_SOCKET_DISCONNECT: i32 = -13;
const ERROR_SOCKET_TIMEOUT: i32 = -30;
const ERROR_EAGAIN: i32 = -37;
const ERROR_SOCKET_RECV: i32 = -43;
const ERROR_BAD_SOCKET: i32 = -45;

/// How long one wait for the socket may last, so deadlines and keepalives are looked at often enough.
const POLL_SLICE: Duration = Duration::from_millis(200);

/// Keepalives (sent with want-reply, so the server answers each) that may go unanswered before the session
/// counts as dropped: OpenSSH's `ServerAliveCountMax` default. Catches a node that lost power, where no
/// reset ever arrives.
const ALIVE_COUNT_MAX: u32 = 3;

struct Connection {
    session: Session,
    /// A clone of the session's socket, to wait for readiness and to shut it down.
    socket: TcpStream,
}

/// The libssh2 transport.
#[derive(Default)]
pub(crate) struct Libssh2 {
    connection: Option<Connection>,
}

fn code(e: &ssh2::Error) -> i32 {
    match e.code() {
        ErrorCode::Session(c) => c,
        ErrorCode::SFTP(c) => c,
    }
}

fn is_dropped(e: &ssh2::Error) -> bool {
    matches!(
        code(e),
        ERROR_SOCKET_NONE
            | ERROR_SOCKET_SEND
            | ERROR_TIMEOUT
            | ERROR_SOCKET_DISCONNECT
            | ERROR_SOCKET_TIMEOUT
            | ERROR_SOCKET_RECV
            | ERROR_BAD_SOCKET
            | ERROR_BANNER_RECV
    )
}

fn is_eagain(e: &ssh2::Error) -> bool {
    code(e) == ERROR_EAGAIN
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

impl Libssh2 {
    fn open(cx: &Context<'_>) -> Result<Connection, SshError> {
        let endpoint = &cx.resolved.endpoint;
        let options = cx.options;
        let addrs: Vec<_> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|source| SshError::Resolve {
                endpoint: Box::new(endpoint.clone()),
                cause: source,
            })?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut stream = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, options.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| SshError::Connect {
            endpoint: Box::new(endpoint.clone()),
            cause: last,
        })?;
        let _ = stream.set_nodelay(true);
        let socket = stream.try_clone().map_err(|source| SshError::Connect {
            endpoint: Box::new(endpoint.clone()),
            cause: source,
        })?;
        let protocol = |e: ssh2::Error| SshError::Protocol {
            endpoint: Box::new(endpoint.clone()),
            message: e.message().to_owned(),
        };
        let mut session = Session::new().map_err(protocol)?;
        session.set_tcp_stream(stream);
        session.set_timeout(millis(options.connect_timeout));
        session.handshake().map_err(|e| SshError::Handshake {
            endpoint: Box::new(endpoint.clone()),
            message: handshake_message(&e),
        })?;
        verify_host_key(cx, &session)?;
        authenticate(cx, &session)?;
        let interval = u32::try_from(options.keepalive_interval.as_secs())
            .unwrap_or(u32::MAX)
            .max(1);
        session.set_keepalive(true, interval);
        pve_common::debug!("ssh: connected to {endpoint} (libssh2)");
        Ok(Connection { session, socket })
    }

    fn drop_connection(&mut self) {
        if let Some(conn) = self.connection.take() {
            // Shut the socket first so nothing libssh2 does while freeing can block.
            let _ = conn.socket.shutdown(Shutdown::Both);
            conn.session.set_blocking(false);
            drop(conn);
        }
    }

    /// Opens a channel and starts the job's command on it. A session that dropped since the last command
    /// is replaced once (nothing ran on it yet).
    fn start(&mut self, cx: &Context<'_>, job: &Job<'_>) -> Result<ssh2::Channel, SshError> {
        let endpoint = &cx.resolved.endpoint;
        let mut channel = None;
        for _ in 0..2 {
            self.connect(cx)?;
            let Some(conn) = self.connection.as_ref() else {
                continue;
            };
            conn.session.set_blocking(true);
            conn.session.set_timeout(millis(cx.options.connect_timeout));
            match conn.session.channel_session() {
                Ok(c) => {
                    channel = Some(c);
                    break;
                }
                Err(e) if is_dropped(&e) => {
                    pve_common::debug!(
                        "ssh: session to {endpoint} dropped ({}); reconnecting",
                        e.message()
                    );
                    self.drop_connection();
                }
                Err(e) => {
                    return Err(SshError::Protocol {
                        endpoint: Box::new(endpoint.clone()),
                        message: format!("cannot open a channel: {}", e.message()),
                    });
                }
            }
        }
        let Some(mut channel) = channel else {
            return Err(job.dropped(
                endpoint,
                "the session dropped twice while opening a channel",
            ));
        };
        if let Err(e) = channel.exec(job.command) {
            if is_dropped(&e) {
                self.drop_connection();
                return Err(job.dropped(endpoint, e.message()));
            }
            return Err(SshError::Protocol {
                endpoint: Box::new(endpoint.clone()),
                message: format!("cannot start the command: {}", e.message()),
            });
        }
        Ok(channel)
    }
}

fn handshake_message(e: &ssh2::Error) -> String {
    match code(e) {
        ERROR_BANNER_RECV | ERROR_SOCKET_DISCONNECT | ERROR_SOCKET_RECV => format!(
            "{} (the server closed the connection before the SSH handshake)",
            e.message()
        ),
        ERROR_BANNER_SEND | ERROR_KEX_FAILURE | ERROR_KEY_EXCHANGE_FAILURE => {
            e.message().to_owned()
        }
        _ => e.message().to_owned(),
    }
}

fn verify_host_key(cx: &Context<'_>, session: &Session) -> Result<(), SshError> {
    let endpoint = &cx.resolved.endpoint;
    let path = cx.known_hosts_path();
    let (key, _) = session.host_key().ok_or_else(|| SshError::Protocol {
        endpoint: Box::new(endpoint.clone()),
        message: "the server sent no host key".to_owned(),
    })?;
    let key = key.to_vec();
    let fingerprint = known_hosts::fingerprint(&key);
    let verdict = known_hosts::check(session, &path, &endpoint.host, endpoint.port, &key).map_err(
        |source| SshError::Io {
            what: format!("read {}", path.display()),
            cause: source,
        },
    )?;
    match verdict {
        Verdict::Known => Ok(()),
        Verdict::Changed => Err(SshError::HostKeyChanged {
            endpoint: Box::new(endpoint.clone()),
            fingerprint,
            known_hosts: path,
        }),
        Verdict::Revoked => Err(SshError::HostKeyRevoked {
            endpoint: Box::new(endpoint.clone()),
            fingerprint,
            known_hosts: path,
        }),
        Verdict::Unknown if cx.options.accept_new_host_key => {
            let name = known_hosts::host_name_for(&endpoint.host, endpoint.port);
            cx.runner.effect(
                Access::Mutating,
                format_args!(
                    "add the host key {fingerprint} of {name} to {}",
                    path.display()
                ),
                || {
                    pve_common::warn!(
                        "adding the new host key of {name} ({fingerprint}) to {}",
                        path.display()
                    );
                    known_hosts::append(&path, &endpoint.host, endpoint.port, &key).map_err(
                        |source| SshError::Io {
                            what: format!("add the host key to {}", path.display()),
                            cause: source,
                        },
                    )
                },
            )?;
            Ok(())
        }
        Verdict::Unknown => Err(SshError::HostKeyUnknown {
            endpoint: Box::new(endpoint.clone()),
            key_type: known_hosts::key_type(&key).unwrap_or_else(|| "unknown".to_owned()),
            fingerprint,
            known_hosts: path,
        }),
    }
}

/// Whether a private key file is encrypted (needs a passphrase): OpenSSH format with a cipher other than
/// `none`, or PEM with `ENCRYPTED`.
pub(crate) fn needs_passphrase(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    if text.contains("ENCRYPTED") {
        return true;
    }
    if !text.contains("BEGIN OPENSSH PRIVATE KEY") {
        return false;
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let Some(blob) = known_hosts::decode_key(body.trim()) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as a length-prefixed string.
    let magic = b"openssh-key-v1\0";
    blob.strip_prefix(magic.as_slice())
        .and_then(known_hosts::key_type)
        .is_some_and(|cipher| cipher != "none")
}

fn authenticate(cx: &Context<'_>, session: &Session) -> Result<(), SshError> {
    let endpoint = &cx.resolved.endpoint;
    let user = endpoint.user.as_str();
    let mut tried = Vec::new();
    if let Some(socket) = cx.options.agent_socket_path() {
        match agent_auth(session, user, &socket) {
            Ok(true) => {
                pve_common::debug!("ssh: authenticated to {endpoint} by the ssh-agent");
                return Ok(());
            }
            Ok(false) => tried.push(format!(
                "ssh-agent at {} (no key accepted)",
                socket.display()
            )),
            Err(e) => tried.push(format!("ssh-agent at {} ({e})", socket.display())),
        }
    }
    for key in &cx.resolved.identities {
        if needs_passphrase(key) {
            tried.push(format!(
                "{} (needs a passphrase: load it into the ssh-agent with `ssh-add {}`)",
                key.display(),
                key.display()
            ));
            continue;
        }
        let public = PathBuf::from(format!("{}.pub", key.display()));
        let public = public.is_file().then_some(public);
        match session.userauth_pubkey_file(user, public.as_deref(), key, None) {
            Ok(()) if session.authenticated() => {
                pve_common::debug!("ssh: authenticated to {endpoint} with {}", key.display());
                return Ok(());
            }
            Ok(()) => tried.push(format!("{} (not accepted)", key.display())),
            Err(e) if is_dropped(&e) => {
                return Err(SshError::SessionDropped {
                    endpoint: Box::new(endpoint.clone()),
                    command: None,
                    message: e.message().to_owned(),
                });
            }
            Err(e) => tried.push(format!("{} ({})", key.display(), e.message())),
        }
    }
    for key in &cx.resolved.missing {
        tried.push(format!("{} (no such file)", key.display()));
    }
    if tried.is_empty() {
        tried.push("nothing: no ssh-agent and no identity file".to_owned());
    }
    Err(SshError::Auth {
        endpoint: Box::new(endpoint.clone()),
        tried: tried.join(", "),
    })
}

fn agent_auth(session: &Session, user: &str, socket: &Path) -> Result<bool, String> {
    let mut agent = session.agent().map_err(|e| e.message().to_owned())?;
    agent
        .set_identity_path(socket)
        .map_err(|e| e.message().to_owned())?;
    agent.connect().map_err(|e| e.message().to_owned())?;
    agent
        .list_identities()
        .map_err(|e| e.message().to_owned())?;
    let identities = agent.identities().map_err(|e| e.message().to_owned())?;
    let mut ok = false;
    for identity in &identities {
        if agent.userauth(user, identity).is_ok() && session.authenticated() {
            ok = true;
            break;
        }
    }
    let _ = agent.disconnect();
    Ok(ok)
}

/// Waits until the socket has something to read (or `limit` passes).
///
/// libssh2 keeps its socket in non-blocking mode (it emulates blocking with its own poll), and the flag
/// is shared with our clone, so a plain `peek` would return at once. The clone is made blocking for the
/// `peek` with a read timeout, then non-blocking again before libssh2 touches the socket.
///
/// Returns whether the server sent anything (or closed the connection).
fn wait_readable(socket: &TcpStream, limit: Duration) -> bool {
    let limit = limit.clamp(Duration::from_millis(1), POLL_SLICE);
    let waited = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(limit)))
        .and_then(|()| socket.peek(&mut [0u8; 1]));
    if socket.set_nonblocking(true).is_err() {
        std::thread::sleep(Duration::from_millis(1));
    }
    match waited {
        // Data waiting, or the peer closed: either way libssh2 has something to read.
        Ok(_) => true,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(_) => {
            std::thread::sleep(Duration::from_millis(1));
            true
        }
    }
}

enum Step {
    Data,
    Eof,
    Idle,
    /// Reading from the channel failed: the session is gone.
    ChannelError(io::Error),
    /// Writing to the caller's sink failed.
    SinkError(io::Error),
}

fn read_some(stream: &mut impl Read, buf: &mut [u8], out: &mut dyn Write) -> Step {
    match stream.read(buf) {
        Ok(0) => Step::Eof,
        Ok(n) => match out.write_all(&buf[..n]) {
            Ok(()) => Step::Data,
            Err(e) => Step::SinkError(e),
        },
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Step::Idle
        }
        Err(e) => Step::ChannelError(e),
    }
}

/// The loop that carries one command's stdin, stdout and stderr in non-blocking mode, alternating between
/// them so neither stream can fill the channel window while we wait on the other.
struct Pump<'a> {
    job: &'a Job<'a>,
    endpoint: &'a Endpoint,
    deadline: Option<Instant>,
    /// How long the server may stay silent (keepalives unanswered) before the session counts as dropped.
    silence_limit: Duration,
    buf: Vec<u8>,
    /// stdin bytes sent so far, and whether end of file followed them.
    fed: usize,
    eof_sent: bool,
    out_done: bool,
    err_done: bool,
    idle_rounds: u32,
    last_heard: Instant,
}

impl<'a> Pump<'a> {
    fn new(cx: &Context<'a>, job: &'a Job<'a>, started: Instant) -> Self {
        Pump {
            job,
            endpoint: &cx.resolved.endpoint,
            deadline: job.timeout.map(|t| started + t),
            silence_limit: cx.options.keepalive_interval.max(Duration::from_secs(1))
                * (ALIVE_COUNT_MAX + 1),
            buf: vec![0u8; 64 * 1024],
            fed: 0,
            eof_sent: false,
            out_done: false,
            err_done: false,
            idle_rounds: 0,
            last_heard: Instant::now(),
        }
    }

    /// Runs until both output streams ended; any error leaves the session unusable.
    fn run(
        mut self,
        conn: &Connection,
        channel: &mut ssh2::Channel,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<(), SshError> {
        conn.session.set_blocking(false);
        let mut err_stream = channel.stderr();
        loop {
            let fed = self.feed(channel);
            let read = self.read(channel, &mut err_stream, stdout, stderr)?;
            if self.out_done && self.err_done {
                return Ok(());
            }
            if fed || read {
                self.idle_rounds = 0;
                self.last_heard = Instant::now();
                continue;
            }
            self.idle(conn)?;
        }
    }

    /// Sends the next piece of stdin, then end of file, which a command reading stdin waits for. Fed from
    /// the loop, a piece at a time, so a command that answers before it has read all its input cannot
    /// deadlock us. Whether anything was sent.
    fn feed(&mut self, channel: &mut ssh2::Channel) -> bool {
        if self.eof_sent {
            return false;
        }
        let stdin = self.job.stdin;
        let mut progressed = false;
        if self.fed < stdin.len() {
            match channel.write(&stdin[self.fed..]) {
                Ok(n) => {
                    self.fed += n;
                    progressed = n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The command stopped reading (closed its stdin or exited): stop feeding; a dead
                // session shows up on the reads.
                Err(_) => self.fed = stdin.len(),
            }
        }
        if self.fed >= stdin.len() {
            match channel.send_eof() {
                Ok(()) => self.eof_sent = true,
                Err(e) if is_eagain(&e) => {}
                Err(_) => self.eof_sent = true,
            }
        }
        progressed
    }

    /// Reads what stdout and stderr have. Whether anything came.
    fn read(
        &mut self,
        channel: &mut ssh2::Channel,
        err_stream: &mut ssh2::Stream,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<bool, SshError> {
        let mut progressed = false;
        if !self.out_done {
            match read_some(channel, &mut self.buf, stdout) {
                Step::Data => progressed = true,
                Step::Eof => self.out_done = true,
                Step::Idle => {}
                Step::SinkError(e) => return Err(self.job.output_error(e)),
                Step::ChannelError(e) => {
                    return Err(self.job.dropped(self.endpoint, e.to_string()));
                }
            }
        }
        if !self.err_done {
            match read_some(err_stream, &mut self.buf, stderr) {
                Step::Data => progressed = true,
                Step::Eof => self.err_done = true,
                Step::Idle | Step::SinkError(_) => {}
                Step::ChannelError(e) => {
                    return Err(self.job.dropped(self.endpoint, e.to_string()));
                }
            }
        }
        Ok(progressed)
    }

    /// Nothing moved: gives up on a server silent for too long or a command past its deadline, else sends
    /// a keepalive and waits for the socket.
    fn idle(&mut self, conn: &Connection) -> Result<(), SshError> {
        let now = Instant::now();
        let silent = now.duration_since(self.last_heard);
        if silent > self.silence_limit {
            return Err(self.job.dropped(
                self.endpoint,
                format!(
                    "no answer from the server for {} ({ALIVE_COUNT_MAX} keepalives)",
                    humantime::format_duration(Duration::from_secs(silent.as_secs()))
                ),
            ));
        }
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return Err(self.job.timed_out(self.endpoint));
        }
        if let Err(e) = conn.session.keepalive_send()
            && !is_eagain(&e)
        {
            return Err(self.job.dropped(self.endpoint, e.message()));
        }
        self.idle_rounds += 1;
        let remaining = self
            .deadline
            .map_or(POLL_SLICE, |d| d.saturating_duration_since(now));
        if conn.session.block_directions() == ssh2::BlockDirections::Outbound
            || self.idle_rounds > 1000
        {
            std::thread::sleep(Duration::from_millis(1));
        } else if wait_readable(&conn.socket, remaining) {
            self.last_heard = Instant::now();
        }
        Ok(())
    }
}

/// Once both streams ended: waits for the channel to close and reads the exit status and signal.
fn wait_exit(
    conn: &Connection,
    channel: &mut ssh2::Channel,
    limit: Duration,
) -> Result<(i32, Option<String>), ssh2::Error> {
    let close_deadline = Instant::now() + limit;
    loop {
        match channel.wait_close() {
            Ok(()) => break,
            Err(e) if is_eagain(&e) && Instant::now() < close_deadline => {
                let _ = wait_readable(&conn.socket, POLL_SLICE);
            }
            Err(e) => return Err(e),
        }
    }
    conn.session.set_blocking(true);
    let status = channel.exit_status().unwrap_or(-1);
    let signal = channel
        .exit_signal()
        .ok()
        .and_then(|s| s.exit_signal)
        .filter(|s| !s.is_empty());
    Ok((status, signal))
}

impl Transport for Libssh2 {
    fn connect(&mut self, cx: &Context<'_>) -> Result<(), SshError> {
        if self.connection.is_none() {
            self.connection = Some(Self::open(cx)?);
        }
        Ok(())
    }

    fn exec(
        &mut self,
        cx: &Context<'_>,
        job: &Job<'_>,
        stdout: &mut dyn Write,
    ) -> Result<Exit, SshError> {
        let endpoint = &cx.resolved.endpoint;
        let started = Instant::now();
        let mut channel = self.start(cx, job)?;
        let Some(conn) = self.connection.as_ref() else {
            return Err(job.dropped(endpoint, "no session"));
        };
        let mut stderr = super::CappedBuffer::new(super::MAX_CAPTURED_STDERR);
        let ended = Pump::new(cx, job, started)
            .run(conn, &mut channel, stdout, &mut stderr)
            .and_then(|()| {
                wait_exit(conn, &mut channel, cx.options.connect_timeout)
                    .map_err(|e| job.dropped(endpoint, e.message()))
            });
        let (status, signal) = match ended {
            Ok(exit) => exit,
            Err(error) => {
                drop(channel);
                self.drop_connection();
                return Err(error);
            }
        };
        pve_common::debug!(
            "ssh: `{}` on {endpoint}: exit status {status} in {:?}",
            pve_common::secret::mask(job.command),
            started.elapsed()
        );
        Ok(Exit {
            status: if signal.is_some() && status == 0 {
                -1
            } else {
                status
            },
            signal,
            stderr: stderr.into_inner(),
        })
    }

    fn disconnect(&mut self, _cx: &Context<'_>) {
        if let Some(conn) = self.connection.as_ref() {
            conn.session.set_blocking(true);
            conn.session.set_timeout(1000);
            let _ = conn
                .session
                .disconnect(Some(ssh2::DisconnectCode::ByApplication), "bye", None);
        }
        self.drop_connection();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_detection() {
        let dir = tempfile::tempdir().unwrap();
        testbed::sshd::keygen(&dir.path().join("plain"), "plain").unwrap();
        testbed::sshd::keygen_with_passphrase(&dir.path().join("locked"), "locked", "secret-pass")
            .unwrap();
        assert!(!needs_passphrase(&dir.path().join("plain")));
        assert!(needs_passphrase(&dir.path().join("locked")));
    }
}
