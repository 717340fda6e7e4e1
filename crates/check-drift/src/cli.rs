//! Command line of `check-drift`.

use clap::Parser;
use pve_common::cli::CommonArgs;

/// Detect, classify and report drift between Terraform/OpenTofu and the Proxmox homelab, per environment.
#[derive(Parser, Debug)]
#[command(name = "check-drift", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS_DRIFT)]
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
