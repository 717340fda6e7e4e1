//! Child processes that die with the test.
//!
//! Every daemon of the bed (moto, Prometheus, Alertmanager, node_exporter, later sshd) runs in its own
//! process group, with stdout and stderr in a log file, and is stopped when its [`Daemon`] is dropped,
//! also while a failing test unwinds. Stopping sends SIGTERM to the whole group, waits a little, then
//! SIGKILL: a daemon that forks (a shell wrapper, sshd's session children) leaves nothing behind.
//! The `testbed up` command instead [`Daemon::detach`]es its daemons and stops them later by pid with
//! [`stop_group`].
//!
//! A test binary that dies without unwinding (Ctrl-C, which does not reach the daemons' own groups;
//! a SIGKILL from a timeout; `abort`) cannot run destructors, so the first daemon also starts a
//! watchdog: a small `sh` in its own group that reads "+ pgid" / "- pgid" lines on a pipe from this
//! process and, when the pipe closes because this process is gone, kills the groups still listed.
//!
//! This module is the test bed's one place that spawns processes (the workspace bans
//! `Command::new` outside pve-common's runner; the bed is dev-only and has no dry-run).

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
pub use pve_common::process::Signal;

/// How long a daemon gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// A new [`Command`] for `program`: the test bed's only way to build one.
#[allow(clippy::disallowed_methods)] // dev-only bed: no dry-run to honour, see the module doc
pub fn command(program: impl AsRef<OsStr>) -> Command {
    Command::new(program)
}

/// Kills the process groups still registered once its stdin closes (this process is gone).
const WATCHDOG_SCRIPT: &str = r#"groups=' '
while read -r op pgid; do
  case $op in
    +) groups="$groups$pgid " ;;
    -) groups=$(printf '%s' "$groups" | sed "s/ $pgid / /") ;;
  esac
done
[ "$groups" = ' ' ] && exit 0
for g in $groups; do kill -TERM "-$g" 2>/dev/null; done
sleep 1
for g in $groups; do kill -KILL "-$g" 2>/dev/null; done
"#;

static WATCHDOG: Mutex<Option<ChildStdin>> = Mutex::new(None);

/// Tells the watchdog (started on first use) to kill group `pgid` if this process dies (`+`), or to
/// forget it (`-`). Best effort: without a watchdog, daemons still stop on drop.
fn watchdog(op: char, pgid: u32) {
    use std::io::Write;
    let mut guard = WATCHDOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.is_none() && op == '+' {
        let mut cmd = command("sh");
        cmd.args(["-c", WATCHDOG_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // The watchdog is never waited for: it exits on its own once the pipe closes.
        if let Ok(mut child) = cmd.spawn() {
            *guard = child.stdin.take();
        }
    }
    if let Some(stdin) = guard.as_mut() {
        let _ = writeln!(stdin, "{op} {pgid}");
    }
}

/// A running daemon in its own process group, stopped on drop.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` as daemon `name` in a new process group, stdin closed, stdout and stderr appended
    /// to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Daemon> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log file {}", log.display()))?;
        let err = out.try_clone().context("duplicating log file handle")?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        watchdog('+', child.id());
        Ok(Daemon {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// The daemon's name, as given to [`Daemon::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (also the process group id), or 0 once stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log file holding the daemon's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 20)
    }

    /// Whether the process is still running (not exited, not reaped).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Fails with the log tail if the daemon has exited (useful while waiting for readiness).
    pub fn check_alive(&mut self) -> Result<()> {
        if self.is_running() {
            Ok(())
        } else {
            bail!(
                "{} exited early; log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            )
        }
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after [`STOP_GRACE`]. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        signal_group(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    signal_group(pid, Signal::SIGKILL);
                    child
                        .wait()
                        .with_context(|| format!("reaping {}", self.name))?;
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("waiting for {}", self.name)),
            }
        }
        // Anything the daemon forked and left in its group goes too.
        signal_group(pid, Signal::SIGKILL);
        watchdog('-', pid);
        Ok(())
    }

    /// Leaves the daemon running after this value is gone and returns its pid (its group id), to be
    /// stopped later with [`stop_group`].
    pub fn detach(mut self) -> u32 {
        let pid = self.pid();
        self.child = None;
        watchdog('-', pid);
        pid
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Best effort: a failure to reap must not turn an unwinding test into an abort.
        let _ = self.stop();
    }
}

/// Sends `signal` to process group `pgid` (see [`pve_common::process::signal_group`]).
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    pve_common::process::signal_group(pgid, signal)
}

/// Whether process `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the ")" that closes the command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Stops the process group led by `pid` that is not our child (a daemon of `testbed up`): SIGTERM,
/// wait up to `grace`, then SIGKILL. Returns whether the leader had still been running.
pub fn stop_group(pid: u32, grace: Duration) -> bool {
    if !pid_alive(pid) {
        signal_group(pid, Signal::SIGKILL);
        return false;
    }
    signal_group(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while pid_alive(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    signal_group(pid, Signal::SIGKILL);
    true
}

/// Polls `ready` every 50 ms until it returns true, failing after `timeout` with `what` in the message.
/// `ready` returning an error stops the wait at once (for instance: the daemon died).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what} not ready after {timeout:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of a text file ("" if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command("sh");
        // The shell forks a grandchild that would survive a plain kill of the shell.
        cmd.args(["-c", "sleep 60 & echo $! > grandchild; wait"]);
        cmd.current_dir(dir.path());
        let mut daemon = Daemon::spawn("sh", cmd, &dir.path().join("log")).unwrap();
        let pidfile = dir.path().join("grandchild");
        wait_until("pidfile", Duration::from_secs(5), || Ok(pidfile.exists())).unwrap();
        wait_until("pid", Duration::from_secs(5), || {
            Ok(!std::fs::read_to_string(&pidfile).unwrap().trim().is_empty())
        })
        .unwrap();
        let grandchild: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(daemon.is_running());
        daemon.stop().unwrap();
        wait_until("grandchild gone", Duration::from_secs(5), || {
            Ok(!pid_alive(grandchild))
        })
        .unwrap();
        assert!(!daemon.is_running());
    }

    #[test]
    fn check_alive_reports_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let mut daemon = Daemon::spawn("boomer", cmd, &dir.path().join("log")).unwrap();
        wait_until("exit", Duration::from_secs(5), || Ok(!daemon.is_running())).unwrap();
        let err = daemon.check_alive().unwrap_err().to_string();
        assert!(err.contains("boom"), "{err}");
    }
}
