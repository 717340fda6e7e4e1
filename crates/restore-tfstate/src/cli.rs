//! Command line of `restore-tfstate`.

use clap::Parser;
use pve_common::cli::CommonArgs;

/// List and restore earlier versions of a Terraform state from versioned S3 (MinIO), or work without MinIO.
#[derive(Parser, Debug)]
#[command(name = "restore-tfstate", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS)]
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
