//! Command line of `verify-backups`.

use clap::Parser;
use pve_common::cli::CommonArgs;

/// Prove every backup is present, fresh and intact, and every Terraform state in S3 is sound.
#[derive(Parser, Debug)]
#[command(name = "verify-backups", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
