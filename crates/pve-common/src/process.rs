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

    #[test]
    fn signals_reach_the_whole_group_and_never_init() {
        assert!(!signal_group(0, Signal::SIGTERM));
        assert!(!signal_group(1, Signal::SIGTERM));
        let runner = Runner::new(false);
        let cmd = LocalCommand::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .own_process_group();
        let handle = runner.start(Access::ReadOnly, &cmd).unwrap().unwrap();
        let pid = handle.pids()[0];
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(signal_group(pid, Signal::SIGKILL));
        let out = handle.wait().unwrap();
        assert!(!out.status.success());
        assert!(!signal_group(pid, Signal::SIGKILL), "the group is gone");
    }
}
