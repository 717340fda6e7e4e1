//! Command line of `rebuild-minio` (drop-in for `scripts/restore/rebuild-minio.sh`).

use std::path::PathBuf;

use clap::Parser;
use pve_common::cli::{CommonArgs, EnvironmentsArgs, ForceArgs};

/// The examples at the end of `--help` (and of the man page).
const EXAMPLES: &str = "\
\x20 What a rebuild would do, contacting nothing:
    rebuild-minio --dry-run
  The same, with the read-only checks run (health, buckets, states, the plan):
    rebuild-minio --preview
  Rebuild MinIO from the monitoring environment without asking, then restore the states:
    rebuild-minio --env monitoring --force
  The same, as JSON for a runbook:
    rebuild-minio --force --json | jq .";

/// Rebuild the MinIO server that holds the Terraform states, and prove it is healthy.
///
/// First checks MinIO (`/minio/health/live`, or an S3 request when the endpoint is not MinIO) and every
/// state bucket: when all is well, says so and changes nothing. Otherwise moves the MinIO environment to
/// a local state (restore-tfstate's --to-local), shows `terraform plan -target=<module>`, refuses it if it
/// would destroy or replace anything outside the module, applies it after confirmation, waits until MinIO
/// answers, creates the buckets with versioning, uploads the states from the save points, moves the
/// environment back to S3 (--to-minio) and verifies every environment against S3.
#[derive(Parser, Debug)]
#[command(name = "rebuild-minio", version, about, after_help = pve_common::exit::help_footer(EXAMPLES, pve_common::exit::HELP_EXIT_STATUS_BUSY))]
pub struct Args {
    /// The environment that defines MinIO (a folder name under --root). Default: the environment whose
    /// local Terraform state manages a guest of --target (the MinIO container; a state in MinIO cannot
    /// be read while MinIO is down), else `monitoring`. Its node, from its own terraform.tfvars
    /// (`default_node`), is named in the report.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// The Terraform address of the MinIO module (only it is applied).
    #[arg(long, value_name = "ADDRESS", default_value = "module.minio")]
    pub target: String,

    /// The state buckets to create and check (comma-separated; default: every bucket named by an
    /// environment's S3 backend).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub buckets: Vec<String>,

    /// Folder of state save points (restore-tfstate's `<env>-<time>.tfstate` files) to upload from
    /// (default: restore-tfstate's save-point folder).
    #[arg(long, value_name = "DIR", env = "PVE_TFSTATE_BACKUP_DIR")]
    pub state_from: Option<PathBuf>,

    #[command(flatten)]
    pub environments: EnvironmentsArgs,

    /// Override the S3 endpoint of every environment (http(s)://host:port; default: the active
    /// `backend "s3"` block, else `http://IP:PORT` of the homelab's `minio = {...}` tfvars block).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The homelab's variable file for MinIO credentials (default: <root>/../terraform.tfvars).
    #[arg(long, value_name = "FILE")]
    pub tfvars: Option<PathBuf>,

    /// How long to wait for MinIO to answer after the apply (humantime: 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = pve_common::cli::parse_duration)]
    pub health_timeout: std::time::Duration,

    /// Replace an S3 state of another lineage with the save point (refused without it).
    #[arg(long)]
    pub allow_lineage_change: bool,

    /// Rebuild even when MinIO, its buckets and every state are healthy (without it a healthy MinIO is
    /// left alone).
    #[arg(long)]
    pub rebuild_healthy: bool,

    /// Answers every confirmation (the apply's). It does not make a healthy MinIO be rebuilt.
    #[command(flatten)]
    pub force: ForceArgs,

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
