//! The one error type of [`crate`]: every variant names the endpoint, and failures of a command keep
//! the command line, its exit status and its (masked) stderr.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use pve_common::retry::Transient;

/// Where a connection goes: the resolved host name, port and login user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The host name or address actually connected to (after `HostName` from ssh_config).
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The login user.
    pub user: String,
}

impl fmt::Display for Endpoint {
    /// `user@host` for port 22, `user@host:port` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == 22 {
            write!(f, "{}@{}", self.user, self.host)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

impl Endpoint {
    /// `host=pve port=22 user=root`: every part named, for connection errors.
    pub fn describe(&self) -> String {
        format!("host {} port {} user {}", self.host, self.port, self.user)
    }
}

/// A failure to reach the node or to run a command on it.
#[derive(Debug, Error)]
pub enum SshError {
    /// The ssh_config could not be read or parsed, or a value in it is unusable.
    #[error("ssh configuration {}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {} ({}): {cause}", endpoint.host, endpoint.describe())]
    Resolve {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// Why (part of the message, so not also a `source()`: the chain would say it twice).
        cause: io::Error,
    },
    /// The TCP connection failed: refused, reset, unreachable, or not established within the connect timeout.
    #[error("cannot connect to {} ({}): {cause}", endpoint, endpoint.describe())]
    Connect {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// Why (`ErrorKind::ConnectionRefused`, `TimedOut`...); part of the message, not a `source()`.
        cause: io::Error,
    },
    /// The SSH handshake (banner, key exchange) failed: often a server that is still starting or a proxy that
    /// closed the connection.
    #[error("ssh handshake with {} ({}) failed: {message}", endpoint, endpoint.describe())]
    Handshake {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// What the library or `ssh` said.
        message: String,
    },
    /// The server's host key is not in known_hosts and accepting new keys was not asked for.
    #[error(
        "host key of {host_id} is unknown: the server presented {key_type} key {fingerprint}, which is not in {}. \
         Check the fingerprint on the node (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then accept it \
         with `ssh-keyscan -p {port} {host} >> {}` or connect once with the accept-new-host-key option",
        known_hosts.display(), known_hosts.display(),
        host_id = format!("{} port {}", endpoint.host, endpoint.port), port = endpoint.port,
        host = endpoint.host
    )]
    HostKeyUnknown {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// `ssh-ed25519`, `ecdsa-sha2-nistp256`...
        key_type: String,
        /// `SHA256:...` of the key the server presented.
        fingerprint: String,
        /// The known_hosts file checked.
        known_hosts: PathBuf,
    },
    /// The server presented a key marked `@revoked` in known_hosts. Nothing to accept: the key was
    /// withdrawn on purpose (stolen, or its machine retired), so whoever holds it is not the node.
    #[error(
        "HOST KEY OF {host_id} IS REVOKED: the server presented {fingerprint}, which {} marks @revoked. \
         Do not connect: the key was withdrawn, so the server presenting it may not be the node. Once the \
         node has a new host key, record that key (the @revoked line stays)",
        known_hosts.display(),
        host_id = format!("{} port {}", endpoint.host, endpoint.port)
    )]
    HostKeyRevoked {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// `SHA256:...` of the key the server presented.
        fingerprint: String,
        /// The known_hosts file checked.
        known_hosts: PathBuf,
    },
    /// The server's host key differs from the one recorded in known_hosts. Never accepted
    /// automatically: either the node was reinstalled or someone is in the middle.
    #[error(
        "HOST KEY OF {host_id} HAS CHANGED: the server presented {fingerprint}, which does not match {}. \
         If the node was reinstalled, remove the old entry with `ssh-keygen -R '{name}' -f {}` and accept the \
         new key; otherwise, do not connect",
        known_hosts.display(), known_hosts.display(),
        host_id = format!("{} port {}", endpoint.host, endpoint.port),
        name = super::known_hosts::host_name_for(&endpoint.host, endpoint.port)
    )]
    HostKeyChanged {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// `SHA256:...` of the key the server presented.
        fingerprint: String,
        /// The known_hosts file checked.
        known_hosts: PathBuf,
    },
    /// No identity was accepted.
    #[error("authentication as {} failed ({}); tried: {tried}", endpoint, endpoint.describe())]
    Auth {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// What was tried and why each failed (agent, each identity file, keys needing a passphrase).
        tried: String,
    },
    /// The connection broke (reset, closed by the server, cut) while it was in use.
    #[error(
        "ssh session to {} dropped{}: {message}",
        endpoint,
        on_command(command)
    )]
    SessionDropped {
        /// Where to.
        endpoint: Box<Endpoint>,
        /// The command running when it dropped, if any.
        command: Option<String>,
        /// What the library or `ssh` said.
        message: String,
    },
    /// A command did not finish within its timeout. The connection was closed; the remote process may still
    /// be running.
    #[error("`{command}` on {endpoint} timed out after {}", humantime::format_duration(*timeout))]
    CommandTimeout {
        /// Where.
        endpoint: Box<Endpoint>,
        /// The command line as sent.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` on {endpoint} failed ({status}){}", stderr_suffix(stderr))]
    CommandFailed {
        /// Where.
        endpoint: Box<Endpoint>,
        /// The command line as sent.
        command: String,
        /// `exit status 3` or `killed by signal TERM`.
        status: String,
        /// The numeric exit status (-1 when killed by a signal).
        exit_status: i32,
        /// The first lines of the remote stderr, secrets masked.
        stderr: String,
    },
    /// An argument cannot be sent (it contains a NUL byte).
    #[error("cannot send `{command}` to {endpoint}: an argument contains a NUL byte")]
    InvalidCommand {
        /// Where.
        endpoint: Box<Endpoint>,
        /// The command as far as it can be shown.
        command: String,
    },
    /// A command wrote more than the caller reads into memory ([`super::MAX_CAPTURED_OUTPUT`]). The
    /// command was stopped and the connection closed.
    #[error("`{command}` on {endpoint} wrote more than {limit} bytes of output; stopped it")]
    OutputTooLarge {
        /// Where.
        endpoint: Box<Endpoint>,
        /// The command line as sent.
        command: String,
        /// The limit.
        limit: usize,
    },
    /// Another SSH protocol or library failure (a channel refused by the server...).
    #[error("ssh to {endpoint}: {message}")]
    Protocol {
        /// Where.
        endpoint: Box<Endpoint>,
        /// What went wrong.
        message: String,
    },
    /// Writing the command's output to the caller's sink failed, or a local file could not be handled.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        cause: io::Error,
    },
    /// Every attempt failed with a transient error.
    #[error("{what} failed after {attempts} attempts: {last}")]
    GaveUp {
        /// What was tried (names the endpoint).
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last cause (part of the message, not a `source()`).
        last: Box<SshError>,
    },
}

fn on_command(command: &Option<String>) -> String {
    command
        .as_ref()
        .map_or_else(String::new, |c| format!(" while running `{c}`"))
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim())
    }
}

impl SshError {
    /// The endpoint the error is about, when it has one.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            SshError::Resolve { endpoint, .. }
            | SshError::Connect { endpoint, .. }
            | SshError::Handshake { endpoint, .. }
            | SshError::HostKeyUnknown { endpoint, .. }
            | SshError::HostKeyChanged { endpoint, .. }
            | SshError::HostKeyRevoked { endpoint, .. }
            | SshError::OutputTooLarge { endpoint, .. }
            | SshError::Auth { endpoint, .. }
            | SshError::SessionDropped { endpoint, .. }
            | SshError::CommandTimeout { endpoint, .. }
            | SshError::CommandFailed { endpoint, .. }
            | SshError::InvalidCommand { endpoint, .. }
            | SshError::Protocol { endpoint, .. } => Some(endpoint),
            SshError::GaveUp { last, .. } => last.endpoint(),
            SshError::Config { .. } | SshError::Io { .. } => None,
        }
    }

    /// True for failures of a command that did run (non-zero exit, timeout): worth retrying only when the
    /// command is idempotent.
    pub fn is_command_failure(&self) -> bool {
        matches!(
            self,
            SshError::CommandFailed { .. } | SshError::CommandTimeout { .. }
        )
    }

    /// The remote exit status, for a command that ran and failed.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            SshError::CommandFailed { exit_status, .. } => Some(*exit_status),
            SshError::GaveUp { last, .. } => last.exit_status(),
            _ => None,
        }
    }
}

impl Transient for SshError {
    /// Connection refused/reset/timed out, handshake failure and a dropped session are transient; host key,
    /// authentication, configuration and command failures are answers and are not.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            SshError::Connect { .. } | SshError::Handshake { .. } | SshError::SessionDropped { .. }
        )
    }
}
