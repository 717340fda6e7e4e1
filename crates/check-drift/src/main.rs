//! Entry point of `check-drift`: parse, validate, run, map the result to an exit code (and only here).

use std::process::ExitCode;

use pve_common::exit::Code;

fn main() -> ExitCode {
    let args = match pve_common::cli::parse::<check_drift::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    pve_common::log::init("check-drift", args.common.verbosity(), args.common.color);
    let config = match check_drift::config::Config::from_args(args) {
        Ok(config) => config,
        Err(err) => {
            pve_common::error!("{err}");
            return Code::Usage.into();
        }
    };
    let code = match check_drift::run(&config) {
        Ok(outcome) if outcome.interrupted => Code::Interrupted,
        Ok(outcome) if outcome.any_error() => Code::Failure,
        Ok(outcome) if outcome.any_drift() => Code::Drift,
        Ok(_) => Code::Success,
        Err(err) => {
            pve_common::error!("{err:#}");
            if err.is::<check_drift::UsageError>() {
                Code::Usage
            } else if err.is::<check_drift::BusyError>() {
                Code::Busy
            } else {
                Code::Failure
            }
        }
    };
    code.into()
}
