//! Entry point of `restore-tfstate`: parse, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;

fn main() -> ExitCode {
    let args = match pve_common::cli::parse::<restore_tfstate::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    pve_common::log::init(
        "restore-tfstate",
        args.common.verbosity(),
        args.common.color,
    );
    match restore_tfstate::run(&args) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            Code::Failure.into()
        }
    }
}
