//! Entry point of `check-drift`: parse, validate, run, map the result to an exit code (and only here).

use std::process::ExitCode;

use check_drift::cli::Command;
use pve_common::exit::Code;

/// An error: 2 as the script said it, 1 in Terraform's `-detailed-exitcode` meaning.
fn error_code(detailed: bool) -> Code {
    if detailed {
        Code::Failure
    } else {
        Code::Errors
    }
}

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let mut args = match pve_common::cli::parse::<check_drift::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    let mut detailed = false;
    let mut drift_run = false;
    let result = match args.command.take() {
        Some(Command::History(h)) => {
            h.common.init("check-drift");
            check_drift::config::HistoryConfig::from_args(&args, h)
                .map_err(anyhow::Error::from)
                .and_then(|c| check_drift::run_history(&c))
                .map(|()| Code::Success)
        }
        Some(Command::InstallTimer(i)) => {
            i.common.init("check-drift");
            check_drift::config::install_config(i)
                .and_then(|c| check_drift::install::run(&c))
                .map(|_| Code::Success)
        }
        None if args.install_shims.is_some() => {
            args.common.init("check-drift");
            let root = args.install_shims.clone().unwrap_or_default();
            check_drift::install_shims(&root, args.common.dry_run || args.common.preview)
                .map(|()| Code::Success)
        }
        None => {
            args.common.init("check-drift");
            detailed = args.detailed_exitcode;
            drift_run = true;
            check_drift::config::Config::from_args(args)
                .map_err(anyhow::Error::from)
                .and_then(|c| check_drift::run(&c))
                .map(|outcome| match outcome {
                    o if o.interrupted => Code::Interrupted,
                    // The script's codes: 1 drift, 2 error; --detailed-exitcode: Terraform's.
                    o if o.any_error() || o.output_failed => error_code(detailed),
                    o if o.any_drift() && detailed => Code::Changes,
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
            } else if drift_run {
                error_code(detailed)
            } else {
                Code::Failure
            }
            .into()
        }
    }
}
