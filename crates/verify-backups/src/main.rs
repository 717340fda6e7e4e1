//! Entry point of `verify-backups`: parse, validate, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;
use verify_backups::Verdict;

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let args = match pve_common::cli::parse::<verify_backups::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    args.common.init("verify-backups");
    pve_common::interrupt::install_or_warn();
    let config = match verify_backups::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            pve_common::error!("{e}");
            return Code::Usage.into();
        }
    };
    // The replaced script's codes: 0 all OK, 1 warnings, 2 errors (a run that could not finish is an
    // error too).
    match verify_backups::run(&config) {
        Ok(Verdict::Ok) => ExitCode::from(0),
        Ok(Verdict::Warnings) => ExitCode::from(1),
        Ok(Verdict::Errors) => ExitCode::from(2),
        Err(err) => {
            pve_common::error!("{err:#}");
            ExitCode::from(2)
        }
    }
}
