//! Helpers of the fault cases that more than one tool's module uses.

use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use testbed::sim::{CutFault, DelayFault, Faults};

use crate::pvenode::Node;
use crate::support::kill;
use crate::support::{self, Rng, fault, text};

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// check-drift's `--json` report, decoded.
pub fn report(out: &std::process::Output) -> check_drift::report::Report {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Sends `signal` to `pid` alone (not its group: as `kill <pid>` or `systemctl stop` with `KillMode=mixed`).
pub fn signal(pid: u32, signal: i32) {
    support::kill(pid, signal);
    fault();
}

/// Waits (at most 5 s) until no process has `token` among its arguments.
pub fn gone(token: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !support::processes_with(token).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}",
            support::processes_with(token)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn first_words(journal: &[Vec<String>]) -> Vec<String> {
    journal
        .iter()
        .map(|a| match a[0].as_str() {
            "qm" | "pct" => format!("{} {}", a[0], a[1]),
            _ => a[0].clone(),
        })
        .collect()
}

/// The simulator cuts the session of the next `command` after `after_bytes` of its output.
pub fn cut_once(node: &Node, command: &str, after_bytes: u64) {
    node.state
        .set_faults(&Faults {
            cut: vec![CutFault {
                command: command.into(),
                after_bytes,
                times: 1,
            }],
            ..Default::default()
        })
        .unwrap();
    fault();
}

/// The simulator takes 0.6 s for every `vzdump` and `qmrestore`, so a signal can land inside them.
pub fn slow_restores(node: &Node) {
    let slow = |command: &str| DelayFault {
        command: command.into(),
        seconds: 0.6,
        times: None,
    };
    node.state
        .set_faults(&Faults {
            delay: vec![slow("qmrestore"), slow("vzdump")],
            ..Default::default()
        })
        .unwrap();
}

/// A run ends with 130 (interrupted) or with its normal code; nothing half written stays behind.
pub fn signal_loop(
    name: &str,
    runs: usize,
    seed: u64,
    max_delay_ms: u64,
    mut start: impl FnMut(usize) -> std::process::Command,
    mut after: impl FnMut(usize, Option<i32>, &str, &str),
) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let mut interrupted = 0;
    for i in 0..runs {
        // At least 30 ms: before `main` installs the handler (the first milliseconds after exec) the
        // default action applies, and nothing has been done yet (docs/RELIABILITY.md, limits).
        let delay = Duration::from_millis(30 + rng.next() % max_delay_ms);
        let signal = if i % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let mut cmd = start(i);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let t = Instant::now();
        std::thread::sleep(delay);
        kill(pid, signal);
        fault();
        let out = child.wait_with_output().unwrap();
        assert!(t.elapsed() < Duration::from_secs(60), "{name}: ended");
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        let code = out.status.code();
        assert!(
            code.is_some(),
            "{name} run {i}: died by the signal instead of exiting 130: {:?}\n{e}",
            out.status
        );
        if code == Some(130) {
            interrupted += 1;
            assert!(e.contains("interrupted by SIG"), "{name} run {i}: {e}");
        }
        after(i, code, &o, &e);
    }
    eprintln!("{name}: {runs} signals, {interrupted} runs interrupted (130), the rest had ended");
    (runs, interrupted)
}
