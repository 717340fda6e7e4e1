//! Command line of `restore-vm`.

use clap::Parser;
use pve_common::cli::CommonArgs;

/// Restore a Proxmox VM or LXC container from a vzdump backup over SSH, with a save point first.
#[derive(Parser, Debug)]
#[command(name = "restore-vm", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS)]
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
