//! The simulated `docker` CLI of the bed's monitoring VM (linked as `docker` in the VM's `PATH`): state in
//! `$DOCKER_SIM_STATE`; see the `testbed::docker` module.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = std::env::var_os(testbed::docker::STATE_ENV) else {
        let _ = writeln!(std::io::stderr(), "{}", testbed::docker::NO_DAEMON);
        return ExitCode::from(1);
    };
    let now = testbed::sim::state::now_epoch();
    match testbed::docker::run(std::path::Path::new(&path), &args, now) {
        Ok((out, err, code)) => {
            let _ = std::io::stdout().write_all(out.as_bytes());
            let _ = std::io::stderr().write_all(err.as_bytes());
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "docker-sim: {e:#}");
            ExitCode::from(1)
        }
    }
}
