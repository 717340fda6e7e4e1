//! Entry point of `verify-backups`: parse, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;

fn main() -> ExitCode {
    let args = match pve_common::cli::parse::<verify_backups::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    pve_common::log::init("verify-backups", args.common.verbosity(), args.common.color);
    match verify_backups::run(&args) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            Code::Failure.into()
        }
    }
}
