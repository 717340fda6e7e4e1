//! Signals to process groups, without `unsafe`.
//!
//! Terraform runs its providers as child processes; a state lock is only released when Terraform itself
//! gets SIGINT and shuts down cleanly. Tools start such children in a process group of their own
//! ([`crate::runner::LocalCommand::own_process_group`]) and signal the whole group through here.

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Sends `signal` to process group `pgid`. Returns false when the group does not exist (any more) or
/// `pgid` is 0 or 1, which would address our own group or init: never signalled.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 1 => nix::sys::signal::killpg(Pid::from_raw(pgid), signal).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{Access, LocalCommand, Runner};

    /// Dead means gone, or a zombie waiting for its parent (init may reap orphans late).
    fn dead(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn signals_reach_the_whole_group_and_never_init() {
        assert!(!signal_group(0, Signal::SIGTERM));
        assert!(!signal_group(1, Signal::SIGTERM));
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let runner = Runner::new(false);
        let cmd = LocalCommand::new("sh")
            .args(["-c", script.as_str()])
            .own_process_group();
        let handle = runner.start(Access::ReadOnly, &cmd).unwrap().unwrap();
        let leader = handle.pids()[0];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let child: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the background child never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(signal_group(leader, Signal::SIGKILL));
        let out = handle.into_output().unwrap();
        assert!(!out.status.success());
        while !dead(child) {
            assert!(
                std::time::Instant::now() < deadline,
                "the grandchild survived the group signal"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
