//! Entry point of `restore-tfstate`: parse, validate, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;
use restore_tfstate::{Config, UsageError, lock::LockError};

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let args = match pve_common::cli::parse::<restore_tfstate::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    args.common.init("restore-tfstate");
    pve_common::interrupt::install_or_warn();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(UsageError(message)) => {
            pve_common::error!("{message}");
            return Code::Usage.into();
        }
    };
    match restore_tfstate::run(&config) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            if matches!(
                err.downcast_ref::<LockError>(),
                Some(LockError::Held { .. })
            ) {
                Code::Busy.into()
            } else {
                Code::Failure.into()
            }
        }
    }
}
