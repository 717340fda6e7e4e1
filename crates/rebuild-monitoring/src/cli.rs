//! Command line of `rebuild-monitoring`.

use clap::Parser;
use pve_common::cli::CommonArgs;

/// Rebuild the monitoring VM (Prometheus, Alertmanager, Grafana) and prove the stack is healthy.
#[derive(Parser, Debug)]
#[command(name = "rebuild-monitoring", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS)]
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
