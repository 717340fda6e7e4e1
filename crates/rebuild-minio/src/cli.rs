//! Command line of `rebuild-minio`.

use clap::Parser;
use pve_common::cli::CommonArgs;

/// Rebuild the MinIO server that holds the Terraform states, and prove it is healthy.
#[derive(Parser, Debug)]
#[command(name = "rebuild-minio", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS)]
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
