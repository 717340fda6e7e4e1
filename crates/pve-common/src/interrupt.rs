//! SIGINT/SIGTERM for the tools without a run loop of their own to stop (restore-vm, verify-backups,
//! rebuild-minio, rebuild-monitoring): exit 130 at once, but never in the middle of a file write.
//!
//! Without a handler the default action kills the tool wherever it is: between the temp file and the
//! rename of [`crate::runner::Runner::write_file`] that leaves a `.pve-tools-*.tmp` behind, and the exit
//! status is "killed by signal", not the documented 130. [`install`] starts a thread that waits for the
//! signal, then for every [`critical`] section to end (the runner holds one around each atomic write), logs
//! `tool: error: interrupted by SIGTERM` plus the [`set_note`] text (e.g. restore-vm's save point and the
//! command that puts it back), and exits 130. Children in our process group get Ctrl-C's SIGINT from the
//! terminal themselves; check-drift keeps its own flag-based handling, which stops its Terraform children.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

/// Critical sections open now (any thread).
static DEPTH: Mutex<usize> = Mutex::new(0);
/// What to tell the user if the run is interrupted now.
static NOTE: Mutex<Option<String>> = Mutex::new(None);

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
/// be opened from any thread. Without [`install`] this only counts.
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
                loop {
                    let depth = lock(&DEPTH);
                    if *depth == 0 {
                        match lock(&NOTE).as_deref() {
                            Some(note) => crate::error!("interrupted by {name}; {note}"),
                            None => crate::error!("interrupted by {name}"),
                        }
                        // Exits holding the lock: no critical section can begin any more. The one exit
                        // outside `main` (STYLE.md §5): the main thread is busy and cannot be unwound.
                        #[allow(clippy::exit, clippy::disallowed_methods)]
                        std::process::exit(i32::from(crate::exit::Code::Interrupted.as_u8()));
                    }
                    drop(depth);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
