//! Entry point of `restore-vm`: parse, check the configuration, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;

fn main() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = pve_common::rundir::RemoveOnExit;
    let args = match pve_common::cli::parse::<restore_vm::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    args.common.init("restore-vm");
    pve_common::interrupt::install_or_warn();
    let config = match restore_vm::config::Config::from_args(&args) {
        Ok(config) => config,
        Err(err) => {
            pve_common::error!("{err}");
            return Code::Usage.into();
        }
    };
    match restore_vm::run(&config) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            Code::Failure.into()
        }
    }
}
