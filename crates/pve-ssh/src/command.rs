//! Remote commands built from a program and arguments, every word shell-quoted.
//!
//! sshd hands the command line to the remote user's shell, so an argument such as a VM name or a backup
//! note would be parsed as shell syntax if pasted in. [`RemoteCommand`] never pastes: each word goes
//! through `shlex` quoting, and [`fmt::Display`] shows exactly the line that is sent. The quoting is POSIX
//! shell quoting: the remote user's login shell must be sh-compatible (bash or dash, as on Proxmox VE).

use std::fmt;
use std::time::Duration;

use pve_common::runner::Access;

/// A command to run on the node: program, arguments, whether it changes anything, whether it may be
/// repeated, and an optional timeout overriding the client's default.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    program: String,
    args: Vec<String>,
    access: Access,
    idempotent: bool,
    timeout: Option<Duration>,
    stdin: Vec<u8>,
}

impl RemoteCommand {
    /// A query that changes nothing (`qm config 100`, `pvesh get ...`): runs even in dry-run, and being
    /// read-only it is idempotent.
    pub fn read_only(program: impl Into<String>) -> Self {
        RemoteCommand {
            program: program.into(),
            args: Vec::new(),
            access: Access::ReadOnly,
            idempotent: true,
            timeout: None,
            stdin: Vec::new(),
        }
    }

    /// A command that changes the node (`qmrestore`, `qm set`): skipped in dry-run, and not retried after
    /// it ran unless marked [`RemoteCommand::idempotent`].
    pub fn mutating(program: impl Into<String>) -> Self {
        RemoteCommand {
            program: program.into(),
            args: Vec::new(),
            access: Access::Mutating,
            idempotent: false,
            timeout: None,
            stdin: Vec::new(),
        }
    }

    /// Appends one argument (quoted when sent).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments (each quoted when sent).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Marks the command safe to run again after it ran and failed (`qm set` to a fixed value is; a
    /// `qmrestore` without `--force` is not).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Marks a command whose failure is an answer that will not change (`pvesh get` of a path that does
    /// not exist, a permission refused): [`crate::SshClient::ssh_exec_retry`] then retries only
    /// transport failures, never the command's own failure.
    pub fn failure_is_final(mut self) -> Self {
        self.idempotent = false;
        self
    }

    /// Gives this command its own timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Feeds `bytes` to the command's stdin, then end of file (without it, stdin is empty, never the
    /// terminal). Also the way to pass a secret: unlike an argument, stdin is not visible in `ps` on
    /// either side.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// What is fed to stdin.
    pub fn get_stdin(&self) -> &[u8] {
        &self.stdin
    }

    /// Whether the command changes anything.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether it may be repeated after it ran.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Its own timeout, if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The program.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments, unquoted.
    pub fn get_args(&self) -> &[String] {
        &self.args
    }

    /// The command line to send, every word quoted for a POSIX shell; `None` when a word contains a NUL
    /// byte (which no shell can receive).
    pub fn command_line(&self) -> Option<String> {
        let words: Option<Vec<String>> = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| shlex::try_quote(w).ok().map(|q| q.into_owned()))
            .collect();
        words.map(|w| w.join(" "))
    }
}

impl fmt::Debug for RemoteCommand {
    /// Like `Display`, plus the flags; stdin shows only its length (it may carry a secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCommand")
            .field("line", &self.to_string())
            .field("access", &self.access)
            .field("idempotent", &self.idempotent)
            .field("timeout", &self.timeout)
            .field("stdin_bytes", &self.stdin.len())
            .finish()
    }
}

impl fmt::Display for RemoteCommand {
    /// The exact line sent (secrets masked); a word with a NUL byte is shown Rust-escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.command_line().unwrap_or_else(|| {
            std::iter::once(&self.program)
                .chain(&self.args)
                .map(|w| shlex::try_quote(w).map_or_else(|_| format!("{w:?}"), |q| q.into_owned()))
                .collect::<Vec<_>>()
                .join(" ")
        });
        f.write_str(&pve_common::secret::mask(&line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_shown_exactly() {
        let cmd = RemoteCommand::mutating("qm")
            .args(["set", "100", "--description"])
            .arg("$(id); rm -rf /tmp/x 'quote\"");
        assert_eq!(
            cmd.to_string(),
            r#"qm set 100 --description '$(id); rm -rf /tmp/x '"'quote\"""#
        );
        assert_eq!(cmd.command_line().unwrap(), cmd.to_string());
    }

    #[test]
    fn plain_words_stay_plain_and_empty_is_kept() {
        let cmd = RemoteCommand::read_only("pvesh").args(["get", "/nodes", ""]);
        assert_eq!(cmd.to_string(), "pvesh get /nodes ''");
    }

    #[test]
    fn nul_byte_cannot_be_sent() {
        let cmd = RemoteCommand::read_only("echo").arg("a\0b");
        assert!(cmd.command_line().is_none());
        assert_eq!(cmd.to_string(), r#"echo "a\0b""#);
    }

    #[test]
    fn access_and_idempotence_defaults() {
        assert_eq!(RemoteCommand::read_only("x").access(), Access::ReadOnly);
        assert!(RemoteCommand::read_only("x").is_idempotent());
        assert!(!RemoteCommand::mutating("x").is_idempotent());
        assert!(RemoteCommand::mutating("x").idempotent().is_idempotent());
    }
}
