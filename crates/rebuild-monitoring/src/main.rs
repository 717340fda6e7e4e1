//! Entry point of `rebuild-monitoring`: parse, validate, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;
use rebuild_monitoring::{Config, UsageError};

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let args = match pve_common::cli::parse::<rebuild_monitoring::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    args.common.init("rebuild-monitoring");
    pve_common::interrupt::install_or_warn();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(UsageError(message)) => {
            pve_common::error!("{message}");
            return Code::Usage.into();
        }
    };
    match rebuild_monitoring::run(&config) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            Code::Failure.into()
        }
    }
}
