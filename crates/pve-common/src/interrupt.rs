//! SIGINT/SIGTERM for the tools without a run loop of their own to stop (restore-tfstate, restore-vm,
//! verify-backups, rebuild-minio, rebuild-monitoring): stop the children, let writes finish, undo what must
//! not outlive the run, exit 130.
//!
//! Without a handler the default action kills the tool wherever it is: between the temp file and the
//! rename of [`crate::runner::Runner::write_file`] that leaves a `.pve-tools-*.tmp` behind, with a Terraform
//! state lock still held, with its Terraform or `ssh` children running on. [`install`] starts a thread that
//! waits for the signal, then:
//! 1. sends SIGINT to every child started through [`crate::runner::Runner::run`] or the OpenSSH transport
//!    (each leads a process group of its own, so Terraform's providers hear it too, and a terminal's
//!    Ctrl-C reaches only us: Terraform takes a second SIGINT as "exit now, lock held"). A read-only child
//!    still running after [`CHILD_GRACE`] is killed; one that changes things (`terraform apply`) is waited
//!    for however long it takes, because killing it could lose the record of what it created. No new
//!    child starts;
//! 2. waits for every [`critical`] section to end (the runner holds one around each atomic write, stdout
//!    holds one around each document);
//! 3. runs the [`on_interrupt`] clean-ups still registered (restore-tfstate's state lock, the OpenSSH
//!    master connection and its socket folder);
//! 4. logs `tool: error: interrupted by SIGTERM` plus the [`set_note`] text (e.g. restore-vm's save point and
//!    the command that puts it back), and exits 130.
//!
//! A thread that finishes a child or tries to start one after the signal waits for that exit instead of
//! reporting the child's death as a failure of its own. check-drift keeps its own flag-based handling,
//! which stops its Terraform children between environments.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use signal_hook::consts::{SIGINT, SIGTERM};

/// How long children get to stop after SIGINT (Terraform releases its state lock in about a second).
pub const CHILD_GRACE: Duration = Duration::from_secs(10);

/// Critical sections open now (any thread).
static DEPTH: Mutex<usize> = Mutex::new(0);
/// What to tell the user if the run is interrupted now.
static NOTE: Mutex<Option<String>> = Mutex::new(None);
/// Running children: process group id (each child leads its own group), and whether it is only waited
/// for, never killed.
static CHILDREN: Mutex<Vec<(u32, bool)>> = Mutex::new(Vec::new());
/// Set (under the `CHILDREN` lock) once the signal arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// A registered clean-up: its id, what it does, the code.
type Undo = (u64, String, Box<dyn FnOnce() + Send>);
/// Clean-ups to run on interrupt.
static CLEANUPS: Mutex<Vec<Undo>> = Mutex::new(Vec::new());
static NEXT_CLEANUP: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Blocks the calling thread for good: the interrupt thread is about to exit the process.
fn wait_for_exit() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A section the interrupt waits for (see [`critical`]); it ends when dropped.
#[must_use = "the section ends when the guard is dropped"]
#[derive(Debug)]
pub struct Critical(());

impl Drop for Critical {
    fn drop(&mut self) {
        let mut depth = lock(&DEPTH);
        *depth = depth.saturating_sub(1);
    }
}

/// Starts a critical section: an interrupt arriving now takes effect when it ends. Sections nest and may
/// be opened from any thread. Never start a child inside one (after an interrupt the child's thread waits
/// for the exit, which waits for the section). Without [`install`] this only counts.
pub fn critical() -> Critical {
    // While the interrupt thread exits it holds this lock, so no new section can start half way.
    *lock(&DEPTH) += 1;
    Critical(())
}

/// Sets (or with `None` clears) the text logged with the interruption: what state the run leaves behind
/// and how to recover.
pub fn set_note(note: Option<String>) {
    *lock(&NOTE) = note;
}

/// A running child the interrupt stops (see [`spawn_child`]); dropping it after the child was reaped
/// forgets it.
#[must_use = "the child is forgotten when the guard is dropped"]
#[derive(Debug)]
pub struct Child(u32);

impl Drop for Child {
    fn drop(&mut self) {
        if INTERRUPTED.load(Ordering::SeqCst) {
            // The leader has been reaped. Its output goes to files, not pipes, so nothing else waits for
            // what it left in its group (a shell's background job): what it did is done, the rest goes.
            // Signalled before it leaves the list, so the exit cannot come first.
            crate::process::signal_group(self.0, Signal::SIGKILL);
        }
        let mut children = lock(&CHILDREN);
        children.retain(|(pid, _)| *pid != self.0);
        if INTERRUPTED.load(Ordering::SeqCst) {
            // The child most likely ended because we stopped it: its failure is not ours to report.
            drop(children);
            wait_for_exit();
        }
    }
}

/// Starts a child with `spawn`, which must start it as the leader of a new process group and return its
/// process id, and registers it so an interrupt stops it: SIGINT, then SIGKILL after [`CHILD_GRACE`]
/// unless `patient` (a child that changes things is waited for). After an interrupt nothing starts: the
/// caller waits for the exit.
pub fn spawn_child<T>(
    patient: bool,
    spawn: impl FnOnce() -> std::io::Result<(T, Option<u32>)>,
) -> std::io::Result<(T, Option<Child>)> {
    let mut children = lock(&CHILDREN);
    if INTERRUPTED.load(Ordering::SeqCst) {
        drop(children);
        wait_for_exit();
    }
    let (value, pid) = spawn()?;
    Ok((
        value,
        pid.map(|pid| {
            children.push((pid, patient));
            Child(pid)
        }),
    ))
}

/// A clean-up registered with [`on_interrupt`]; dropping it unregisters it (the run undid the thing
/// itself).
#[must_use = "the clean-up is unregistered when the guard is dropped"]
#[derive(Debug)]
pub struct Cleanup(u64);

impl Drop for Cleanup {
    fn drop(&mut self) {
        lock(&CLEANUPS).retain(|(id, _, _)| *id != self.0);
    }
}

/// Registers `undo` (described by `what`, e.g. "release the state lock tfstate/prod.tflock") to run if the
/// run is interrupted while the returned guard lives. Clean-ups run newest first, after the children have
/// stopped and every critical section has ended.
pub fn on_interrupt(what: impl Into<String>, undo: impl FnOnce() + Send + 'static) -> Cleanup {
    let id = NEXT_CLEANUP.fetch_add(1, Ordering::SeqCst);
    lock(&CLEANUPS).push((id, what.into(), Box::new(undo)));
    Cleanup(id)
}

/// [`install`], or a warning that an interrupt will stop the run uncleanly: what every tool's `main` does.
pub fn install_or_warn() {
    if let Err(e) = install() {
        crate::warn!("cannot handle SIGINT/SIGTERM ({e}): an interrupt stops the run uncleanly");
    }
}

/// Installs the SIGINT/SIGTERM handler thread. Call once, in `main`, after [`crate::log::init`].
pub fn install() -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                stop_children();
                let depth = loop {
                    let depth = lock(&DEPTH);
                    if *depth == 0 {
                        break depth;
                    }
                    drop(depth);
                    std::thread::sleep(Duration::from_millis(5));
                };
                // Newest first: a lock taken last is released first.
                let cleanups = std::mem::take(&mut *lock(&CLEANUPS));
                for (_, what, undo) in cleanups.into_iter().rev() {
                    crate::debug!("interrupted: {what}");
                    undo();
                }
                match lock(&NOTE).as_deref() {
                    Some(note) => crate::error!("interrupted by {name}; {note}"),
                    None => crate::error!("interrupted by {name}"),
                }
                // Exits holding the lock: no critical section can begin any more. The one exit outside
                // `main`: the main thread is busy and cannot be unwound.
                let _held = depth;
                #[allow(clippy::exit, clippy::disallowed_methods)]
                std::process::exit(i32::from(crate::exit::Code::Interrupted.as_u8()));
            }
        })?;
    Ok(())
}

/// SIGINT to every child's group; SIGKILL after [`CHILD_GRACE`] to those still there that may be killed;
/// returns when every child has been reaped (or killed).
fn stop_children() {
    let children = {
        let children = lock(&CHILDREN);
        INTERRUPTED.store(true, Ordering::SeqCst);
        children.clone()
    };
    if children.is_empty() {
        return;
    }
    crate::debug!("interrupted: SIGINT to child process groups {children:?}");
    for (pid, _) in &children {
        crate::process::signal_group(*pid, Signal::SIGINT);
    }
    let deadline = Instant::now() + CHILD_GRACE;
    let mut killed = false;
    // A child leaves the list when the thread that waits for it has reaped it, which also waits for its
    // output pipes to close.
    loop {
        let left = lock(&CHILDREN).clone();
        if left.is_empty() || (killed && left.iter().all(|(_, patient)| !patient)) {
            return;
        }
        for (pid, _) in &left {
            // The child itself has ended, but something it started still holds its pipes (a background
            // job of a shell ignores SIGINT): what it did is done, the rest of its group goes.
            if leader_ended(*pid) {
                crate::process::signal_group(*pid, Signal::SIGKILL);
            }
        }
        if !killed && Instant::now() >= deadline {
            killed = true;
            for (pid, patient) in left {
                if patient {
                    crate::warn!(
                        "process group {pid} changes things and has not stopped {}s after SIGINT; \
                         waiting for it (killing it could lose what it did)",
                        CHILD_GRACE.as_secs()
                    );
                } else {
                    crate::warn!(
                        "process group {pid} did not stop within {}s of SIGINT; killing it",
                        CHILD_GRACE.as_secs()
                    );
                    crate::process::signal_group(pid, Signal::SIGKILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has exited (a zombie waiting to be reaped, or gone).
fn leader_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name in parentheses (which may hold spaces).
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| matches!(state, "Z" | "X")),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_or_a_missing_process_has_ended_a_running_one_not() {
        assert!(!leader_ended(std::process::id()));
        assert!(leader_ended(u32::MAX));
        #[allow(clippy::disallowed_methods)]
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !leader_ended(pid) {
            assert!(Instant::now() < deadline, "`true` never became a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
    }

    #[test]
    fn sections_nest_and_end_when_dropped() {
        let before = *lock(&DEPTH);
        let a = critical();
        let b = critical();
        assert_eq!(*lock(&DEPTH), before + 2);
        drop(b);
        drop(a);
        assert_eq!(*lock(&DEPTH), before);
        set_note(Some("x".into()));
        assert_eq!(lock(&NOTE).as_deref(), Some("x"));
        set_note(None);
    }
}
