//! Helpers of the bad-input cases that more than one tool's module uses.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{self};

/// A root with one real environment, `prod`, so that "unknown" is the only reason to refuse a name.
pub fn drift_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::add_drift_env(&dir.path().join("envs"), "prod");
    dir
}

/// Inputs tried by this module (printed with `--nocapture`, quoted in docs/RELIABILITY.md).
pub static TRIED: AtomicUsize = AtomicUsize::new(0);

pub fn tried(n: usize) -> usize {
    TRIED.fetch_add(n, Ordering::SeqCst) + n
}

pub fn bad_vmids() -> Vec<String> {
    vec![
        "abc".into(),
        "-1".into(),
        "0".into(),
        "99".into(),
        "1e3".into(),
        "100;reboot".into(),
        "$(id)".into(),
        "1000000000".into(),
        "99999999999999999999999999999999".into(),
        " 100".into(),
        "100\n".into(),
        "+100".into(),
        "0x64".into(),
        String::new(),
    ]
}

/// `what` must be named in the message (newlines are shown escaped or raw; either names it).
pub fn names(err: &str, what: &str) -> bool {
    let first = what.lines().next().unwrap_or(what).trim();
    first.is_empty() || err.contains(first)
}
