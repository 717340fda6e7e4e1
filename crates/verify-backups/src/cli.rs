//! Command line of `verify-backups`.

use std::path::PathBuf;

use clap::Parser;
use pve_common::cli::{CommonArgs, parse_positive_duration};
use pve_ssh::node::NodeArgs;

/// The exit codes of the replaced script, which the TUI and the runbooks test.
pub const HELP_EXIT_STATUS: &str = "\
Exit status:
  0    every check OK
  1    warnings (an old or suspiciously small backup...), no error
  2    errors (no backup, a missing file, a broken state...), or the run could not finish
  64   usage error (bad flag or value); nothing was done
  130  interrupted";

/// The examples at the end of `--help` (and of the man page).
const EXAMPLES: &str = "\
\x20 Every node named in the environments' tfvars, and every state in MinIO; exit 0 OK, 1 warnings, 2 errors:
    verify-backups
  One guest on one node, with the whole archive decompressed and parsed:
    verify-backups --node pve --vmid 101 --deep
  Also the backup jobs and whether every running guest answers:
    verify-backups --full
  The commands it would run and the shape of its report, contacting nothing:
    verify-backups --dry-run";

/// Prove every backup is present, fresh and intact, and every Terraform state in S3 is sound.
///
/// Checks, each a table in the report: coverage and freshness of every guest's backups; archive
/// soundness (size, name, task log); integrity (--deep: the whole archive is decompressed and parsed);
/// bit-rot (SHA-256 manifest, --record); PBS verification state; Terraform state in S3 for every
/// environment; with --full, the backup jobs, whether every running guest answers, terraform init and
/// the health of MinIO, Prometheus, Grafana, Alertmanager.
#[derive(Parser, Debug)]
#[command(name = "verify-backups", version, about, long_about, after_help = pve_common::exit::help_footer(EXAMPLES, HELP_EXIT_STATUS))]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// How to reach the Proxmox node: `--node NODE` (its SSH host is the `proxmox_endpoint` of the
    /// environment whose `default_node` it is, else `--host`, else the node name itself), `--host`,
    /// `--user` (alias `--ssh-user`), `--port` (alias `--ssh-port`), `--identity`, `--known-hosts`. Without
    /// `--node` and `--host`, every environment's `default_node` and `proxmox_endpoint` are checked.
    #[command(flatten)]
    pub node: NodeArgs,

    /// Only this environment (repeatable): its node, the guests its Terraform state manages and its state
    /// in S3.
    #[arg(long = "env", value_name = "ENV")]
    pub env: Vec<String>,

    /// The backup storage whose backups are checked.
    #[arg(long = "storage", value_name = "STORAGE", default_value = "local")]
    pub storage: String,

    /// Check the backups of every backup storage of the node, not only --storage.
    #[arg(long = "all-storages")]
    pub all_storages: bool,

    /// A newest backup older than this is a WARNING, e.g. `26h`, `2d`.
    #[arg(long = "max-age", value_name = "DURATION", default_value = "48h", value_parser = parse_positive_duration)]
    pub max_age: std::time::Duration,

    /// Check every backup, not only the newest of each guest.
    #[arg(long = "all-backups")]
    pub all_backups: bool,

    /// Include templates in the coverage check.
    #[arg(long = "include-templates")]
    pub include_templates: bool,

    /// Only this guest (repeatable, for several).
    #[arg(long = "vmid", value_name = "VMID")]
    pub vmid: Vec<String>,

    /// A newest backup smaller than this many bytes is suspiciously small (a WARNING).
    #[arg(long = "min-size", value_name = "BYTES", default_value_t = 1024)]
    pub min_size: u64,

    /// Read and check every byte of each archive (compression checksum, VMA extents or tar members).
    #[arg(long = "deep")]
    pub deep: bool,

    /// Read the archives from this directory here (a mounted dump folder) instead of on the node:
    /// `DIR` for every storage or `STORAGE=DIR` for one (repeatable). With no --node, --host, PVE_HOST or
    /// --env, no node is contacted: every vzdump archive in DIR is checked on its own (an offsite or USB
    /// copy): name, size, log, compression, VMA or tar, always read whole, and its SHA-256 against the
    /// manifest when it records it (by volid, else by file name); an empty DIR is an error.
    #[arg(long = "local-dir", value_name = "[STORAGE=]DIR")]
    pub local_dir: Vec<String>,

    /// Where a storage's dump folder is on the node, `STORAGE=DIR` (repeatable); by default the storage's
    /// `path` from `pvesh get /storage/<id>` plus `/dump`.
    #[arg(long = "dump-dir", value_name = "STORAGE=DIR")]
    pub dump_dir: Vec<String>,

    /// Archives checked at once by --deep --local-dir (default: the number of CPUs).
    #[arg(long = "jobs", short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Store the SHA-256 of every checked archive in the manifest (new archives are added; a changed
    /// archive is reported as corrupt and its recorded hash kept).
    #[arg(long = "record")]
    pub record: bool,

    /// The SHA-256 manifest (`sha256sum` format, one `<hash>  <volid>` line per archive); the default is
    /// in the systemd unit's StateDirectory.
    #[arg(
        long = "manifest",
        value_name = "FILE",
        env = "PVE_VERIFY_MANIFEST",
        default_value = "/var/lib/pve-verify-backups/sha256.manifest"
    )]
    pub manifest: PathBuf,

    /// Folder of the Terraform environments (each a subfolder) whose state in S3 is checked.
    #[arg(long = "root", value_name = "DIR", env = "PVE_DRIFT_ROOT")]
    pub root: Option<PathBuf>,

    /// terraform.tfvars with minio_access_key/minio_secret_key, when the S3 credentials are not in the
    /// environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or the backend configuration.
    #[arg(long = "tfvars", value_name = "FILE")]
    pub tfvars: Option<PathBuf>,

    /// The newest state version may not be older than this, e.g. `30d`.
    #[arg(long = "state-max-age", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub state_max_age: Option<std::time::Duration>,

    /// Also the node's backup jobs (`pvesh get /cluster/backup`: a disabled job, or a guest in no enabled
    /// job, is a WARNING) and the connectivity of every running guest (section "Verification de la
    /// connectivite": `qm guest cmd <vmid> ping` through the QEMU guest agent, `pct exec <vmid> -- true`;
    /// no answer is a WARNING), and the disaster-recovery final check: `terraform init` for every
    /// environment, and MinIO, Prometheus, Grafana and Alertmanager answer their health endpoints (those
    /// with a URL).
    #[arg(long = "full")]
    pub full: bool,

    /// Terraform binary for --full.
    #[arg(long = "terraform-bin", value_name = "PATH", env = "TF_BIN")]
    pub terraform_bin: Option<PathBuf>,

    /// MinIO (S3) base URL for --full (default: the S3 endpoint of the first environment).
    #[arg(long = "minio-url", value_name = "URL", env = "MINIO_URL")]
    pub minio_url: Option<String>,

    /// Prometheus base URL for --full.
    #[arg(long = "prometheus-url", value_name = "URL", env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,

    /// Grafana base URL for --full.
    #[arg(long = "grafana-url", value_name = "URL", env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,

    /// Alertmanager base URL for --full.
    #[arg(
        long = "alertmanager-url",
        value_name = "URL",
        env = "ALERTMANAGER_URL"
    )]
    pub alertmanager_url: Option<String>,

    /// Also print a table per component (every check with its reason) before the report.
    #[arg(long = "details")]
    pub details: bool,

    /// Write node_exporter textfile metrics (`pve_backup.prom`) into this folder.
    #[arg(
        long = "textfile-dir",
        value_name = "DIR",
        env = "PVE_BACKUP_TEXTFILE_DIR"
    )]
    pub textfile_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
