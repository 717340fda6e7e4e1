//! Entry point of `check-drift`: parse, validate, run, map the result to an exit code (and only here).

use std::process::ExitCode;

use check_drift::cli::Command;
use pve_common::exit::Code;

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let mut args = match pve_common::cli::parse::<check_drift::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    let result = match args.command.take() {
        Some(Command::History(h)) => {
            pve_common::log::init("check-drift", h.common.verbosity(), h.common.color);
            check_drift::config::HistoryConfig::from_args(&args, h)
                .map_err(anyhow::Error::from)
                .and_then(|c| check_drift::run_history(&c))
                .map(|()| Code::Success)
        }
        Some(Command::InstallTimer(i)) => {
            pve_common::log::init("check-drift", i.common.verbosity(), i.common.color);
            check_drift::config::install_config(i)
                .and_then(|c| check_drift::install::run(&c))
                .map(|_| Code::Success)
        }
        None => {
            pve_common::log::init("check-drift", args.common.verbosity(), args.common.color);
            check_drift::config::Config::from_args(args)
                .map_err(anyhow::Error::from)
                .and_then(|c| check_drift::run(&c))
                .map(|outcome| match outcome {
                    o if o.interrupted => Code::Interrupted,
                    o if o.any_error() || o.output_failed => Code::Failure,
                    o if o.any_drift() => Code::Drift,
                    _ => Code::Success,
                })
        }
    };
    match result {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            if err.is::<check_drift::UsageError>() {
                Code::Usage
            } else if err.is::<check_drift::BusyError>() {
                Code::Busy
            } else {
                Code::Failure
            }
            .into()
        }
    }
}
