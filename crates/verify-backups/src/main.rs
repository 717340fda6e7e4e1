//! Entry point of `verify-backups`: parse, validate, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let args = match pve_common::cli::parse::<verify_backups::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    pve_common::log::init("verify-backups", args.common.verbosity(), args.common.color);
    pve_common::interrupt::install_or_warn();
    let config = match verify_backups::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            pve_common::error!("{e}");
            return Code::Usage.into();
        }
    };
    match verify_backups::run(&config) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            Code::Failure.into()
        }
    }
}
