//! Command line of `restore-tfstate` (drop-in for `scripts/restore/restore-tfstate.sh`).

use std::path::PathBuf;

use clap::{ArgGroup, Parser};
use pve_common::cli::{CommonArgs, EnvironmentsArgs, ForceArgs, TfvarsArgs};

/// The examples at the end of `--help` (and of the man page).
const EXAMPLES: &str = "\
\x20 The versions of prod's state in MinIO:
    restore-tfstate --env prod --list
  Put an earlier version back (the current one is saved first; the lineage is checked):
    restore-tfstate --env prod --restore 3HL4kqtJlcpXroDTDmJ.rSt8cHkYB6x
  A run that was killed left the state lock (--list shows its ID, holder and age):
    restore-tfstate --env prod --force-unlock 0b6ec3f4-5d0e-4b8e-9f3c-2a1d7e6f8a90
  MinIO is down: switch lab to a local state, then back once MinIO answers:
    restore-tfstate --env lab --fallback
    restore-tfstate --env lab --return";

/// List and restore earlier versions of a Terraform state from versioned S3 (MinIO), or move an
/// environment to a local backend while MinIO is down and back again.
///
/// Actions: --list, --restore VERSION_ID, --fallback, --return (the script's), and --show, --to-local,
/// --to-minio.
///
/// The S3 location is read from the environment's own `backend "s3"` block, its `backend.hcl` and any
/// `--backend-config` file; without an active block (the homelab keeps it commented out), from the
/// `minio = { ip, port, root_user, root_password }` block of the environments' terraform.tfvars (the
/// environment's own, else prod's, else monitoring's): endpoint http://ip:port (port 9000 by default),
/// bucket `tfstate-<env>`, key `terraform.tfstate`. `--bucket`, `--key` and `--endpoint` override them.
/// Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the backend block's
/// access_key/secret_key (or the minio block's root_user/root_password), else the homelab's
/// terraform.tfvars (minio_access_key/minio_secret_key).
#[derive(Parser, Debug)]
#[command(
    name = "restore-tfstate",
    version,
    about,
    after_help = pve_common::exit::help_footer(EXAMPLES, pve_common::exit::HELP_EXIT_STATUS_BUSY),
    group(ArgGroup::new("mode").args(["list", "restore", "fallback", "return_", "to_local", "to_minio", "show", "force_unlock"])),
)]
pub struct Args {
    /// The environment (a folder name under --root).
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub environments: EnvironmentsArgs,

    /// List every version of the state object, newest first.
    #[arg(long)]
    pub list: bool,

    /// With --list: fetch each version (in parallel) and show its serial, lineage, Terraform version and
    /// resource count.
    #[arg(long, requires = "list")]
    pub details: bool,

    /// Make this version the current state again (as a new version with serial = current + 1).
    #[arg(long, value_name = "VERSION_ID", num_args = 0..=1)]
    pub restore: Option<Option<String>>,

    /// Print one version of the state, sensitive values masked.
    #[arg(long, value_name = "VERSION_ID")]
    pub show: Option<String>,

    /// With --show: print sensitive values too.
    #[arg(long, requires = "show")]
    pub show_sensitive: bool,

    /// Remove the state lock (`<key>.tflock`) left by a run that died, as `terraform force-unlock LOCK_ID`
    /// does: only while it still holds LOCK_ID (shown by --list and by the "locked" error), never another
    /// holder's lock. Asks first, unless --yes.
    #[arg(long, value_name = "LOCK_ID")]
    pub force_unlock: Option<String>,

    /// MinIO is down: switch the environment to a local backend. backend.tf is kept as
    /// backend.tf.minio-backup and rewritten with a local backend; the state is written to the
    /// environment as terraform.tfstate (from S3, or the newest save point when S3 does not answer).
    #[arg(long)]
    pub fallback: bool,

    /// MinIO is back: once http://<endpoint>/minio/health/live answers, push the local state to S3 as a
    /// new version and restore backend.tf from backend.tf.minio-backup.
    #[arg(long = "return")]
    pub return_: bool,

    /// Like --fallback, but backend.tf stays and an override file selects the local backend.
    #[arg(long)]
    pub to_local: bool,

    /// With --fallback or --to-local: use this S3 version instead of the latest.
    #[arg(long, value_name = "VERSION_ID")]
    pub version_id: Option<String>,

    /// Like --return, without the health check: push the local state to S3, remove the override (or put
    /// backend.tf back) and prove that Terraform uses S3 again (terraform init -reconfigure, then plan).
    #[arg(long)]
    pub to_minio: bool,

    /// After --restore: run `terraform plan -refresh=false` against the restored state.
    #[arg(long, requires = "restore")]
    pub verify_plan: bool,

    /// Override the bucket.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,

    /// Override the state object key.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Override the S3 endpoint (http(s)://host:port).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Override the region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// A backend configuration file, as given to `terraform init -backend-config=FILE` (repeatable).
    #[arg(long, value_name = "FILE")]
    pub backend_config: Vec<PathBuf>,

    /// The homelab's variable file for MinIO credentials (default: <root>/../terraform.tfvars).
    #[command(flatten)]
    pub tfvars: TfvarsArgs,

    /// Where save points (local copies of the state before a write) go.
    #[arg(long, value_name = "DIR", env = "PVE_TFSTATE_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,

    #[command(flatten)]
    pub force: ForceArgs,

    /// Restore a state of another lineage, overwrite a newer remote serial with --return/--to-minio, or
    /// write to a bucket without versioning (the local save point is then the only way back).
    #[arg(long)]
    pub allow_lineage_change: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        super::Args::command().debug_assert();
    }
}
