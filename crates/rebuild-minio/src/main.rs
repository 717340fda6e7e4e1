//! Entry point of `rebuild-minio`: parse, run, map the result to an exit code.

use std::process::ExitCode;

use pve_common::exit::Code;

fn main() -> ExitCode {
    let args = match pve_common::cli::parse::<rebuild_minio::cli::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    pve_common::log::init("rebuild-minio", args.common.verbosity(), args.common.color);
    match rebuild_minio::run(&args) {
        Ok(code) => code.into(),
        Err(err) => {
            pve_common::error!("{err:#}");
            Code::Failure.into()
        }
    }
}
