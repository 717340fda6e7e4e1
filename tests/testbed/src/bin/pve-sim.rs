//! The simulated Proxmox CLI, multi-call: run as `pvesh`, `qm`, `pct`, `qmrestore` or `vzdump` (by
//! `argv[0]` basename, e.g. through symlinks) or as `pve-sim <name> ARGS...`. State lives in
//! `$PVE_SIM_STATE`; see `tests/testbed/SIM-STATE.md` and the `testbed::sim` module.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    let argv = testbed::sim::normalize_argv(&raw);
    let outcome = testbed::sim::run_env(&argv);
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    if let Some(after) = outcome.cut_after {
        let n = (after as usize).min(outcome.stdout.len());
        let _ = stdout.write_all(&outcome.stdout[..n]);
        let _ = stdout.flush();
        testbed::sim::cut_session();
    }
    let _ = stdout.write_all(&outcome.stdout);
    let _ = stderr.write_all(&outcome.stderr);
    let _ = stdout.flush();
    let _ = stderr.flush();
    ExitCode::from(outcome.exit.clamp(0, 255) as u8)
}
