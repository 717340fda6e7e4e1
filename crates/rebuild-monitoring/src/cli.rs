//! Command line of `rebuild-monitoring` (drop-in for `scripts/restore/rebuild-monitoring.sh`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use pve_common::cli::{CommonArgs, EnvironmentsArgs, ForceArgs};
use pve_ssh::node::NodeArgs;

/// The examples at the end of `--help` (and of the man page).
const EXAMPLES: &str = "\
\x20 What restoring the monitoring VM from its newest backup would do, contacting nothing:
    rebuild-monitoring --dry-run
  Restore it from its newest backup without asking, then check Prometheus, Grafana and Alertmanager:
    rebuild-monitoring --mode restore --force
  Rebuild it from Terraform instead:
    rebuild-monitoring --mode rebuild --force
  Only check the stack:
    rebuild-monitoring --verify-only";

/// Rebuild the monitoring VM (Prometheus, Alertmanager, Grafana) and prove the stack is healthy.
///
/// Brings the stack back from a backup of the monitoring VM (--from-backup) or with a targeted
/// `terraform apply` of the monitoring module (--from-terraform), then verifies it: Prometheus is ready,
/// has active targets and has loaded the drift and host alert rules, Alertmanager is ready, Grafana is
/// healthy, and node_exporter serves the textfile collector's series. Each check is retried with backoff
/// until --deadline; the report names each failed check and why. URLs come from the flags, else from the
/// homelab's terraform.tfvars (prometheus_url, alertmanager_url, grafana_url, node_exporter_url, or
/// monitoring_host with the default ports).
///
/// Last, `docker ps` on the monitoring VM (root@monitoring.vm.ip, or --vm-host) must list the prometheus,
/// grafana and alertmanager containers up; one missing or stopped fails the run.
///
/// Without a mode flag the mode is `restore` (--from-backup with the newest backup); `--mode auto` chooses
/// --from-backup when the monitoring VM has a backup younger than --max-age, else --from-terraform; the
/// choice and its reason are logged and in the --json report.
/// --from-backup reaches the Proxmox node over SSH like restore-vm: host, node and SSH user come from the
/// flags, else the environment (PVE_HOST, PVE_NODE, PVE_SSH_USER), else the same terraform.tfvars (the host
/// of `proxmox_endpoint`, `node_name`, `ssh_user`), else the homelab: the node of the environment whose
/// Terraform state manages the monitoring VM (local terraform.tfstate, else S3; its `default_node` and the
/// host of its `proxmox_endpoint`), else the monitoring environment's (the node of its `monitoring` block,
/// null meaning its `default_node`; the host of its `proxmox_endpoint`); never the root's default node.
/// A --node given alone is reached at the endpoint of the environment whose node it is. Host keys:
/// --known-hosts, else HOMELAB_KNOWN_HOSTS; SSH_INIT_MODE=true accepts a new key.
#[derive(Parser, Debug)]
#[command(
    name = "rebuild-monitoring",
    version,
    about,
    after_help = pve_common::exit::help_footer(EXAMPLES, pve_common::exit::HELP_EXIT_STATUS),
    group(ArgGroup::new("mode_flags").args(["mode", "from_backup", "from_terraform", "verify_only"])),
)]
pub struct Args {
    /// `restore` (the default): restore-vm of the monitoring VM's newest backup; `rebuild`: `terraform
    /// apply -target=module.monitoring_stack -auto-approve` in the monitoring environment; `auto`: restore
    /// when a backup younger than --max-age exists, else rebuild.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,

    /// Restore the monitoring VM from a backup (the newest younger than --max-age, or VOLID) as restore-vm
    /// does (a save point of the VM first when it exists), start it, verify.
    #[arg(long, value_name = "VOLID", num_args = 0..=1)]
    pub from_backup: Option<Option<String>>,

    /// Re-create the stack with `terraform apply -target=<module>` in the monitoring environment, verify.
    #[arg(long)]
    pub from_terraform: bool,

    /// Rebuild nothing: only verify the running stack.
    #[arg(long)]
    pub verify_only: bool,

    /// The monitoring VM's id (for --from-backup; default: vmid of the monitoring VM in terraform.tfvars,
    /// monitoring_vmid).
    #[arg(long, value_name = "N")]
    pub vmid: Option<u32>,

    /// With no mode flag: --from-backup is chosen when a backup younger than this exists. --from-backup
    /// without VOLID refuses a newest backup older than this.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = pve_common::cli::parse_duration)]
    pub max_age: Duration,

    /// The environment holding the monitoring module (a folder name under --root).
    #[arg(long, value_name = "NAME", default_value = "monitoring")]
    pub env: String,

    /// The Terraform address of the monitoring module.
    #[arg(
        long,
        value_name = "ADDRESS",
        default_value = "module.monitoring_stack"
    )]
    pub target: String,

    #[command(flatten)]
    pub environments: EnvironmentsArgs,

    /// The homelab's variable file, for the URLs, the VM id and the node (default:
    /// <root>/../terraform.tfvars).
    #[arg(long, value_name = "FILE")]
    pub tfvars: Option<PathBuf>,

    /// The monitoring VM's SSH host, where `docker ps` must show the prometheus, grafana and alertmanager
    /// containers up (default: monitoring.vm.ip of the monitoring environment's terraform.tfvars; none: not
    /// checked). Logged in as root, with the node's SSH settings.
    #[arg(long, value_name = "HOST")]
    pub vm_host: Option<String>,

    /// Prometheus base URL (http://host:9090).
    #[arg(long, value_name = "URL", env = "PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,

    /// Alertmanager base URL (http://host:9093).
    #[arg(long, value_name = "URL", env = "ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,

    /// Grafana base URL (http://host:3000).
    #[arg(long, value_name = "URL", env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,

    /// node_exporter base URL (http://host:9100).
    #[arg(long, value_name = "URL", env = "NODE_EXPORTER_URL")]
    pub node_exporter_url: Option<String>,

    /// Alert rule groups Prometheus must have loaded (repeatable; default: drift-alerts and host-alerts).
    #[arg(long, value_name = "NAME")]
    pub rule_group: Vec<String>,

    /// How long each check may keep retrying (humantime: 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = pve_common::cli::parse_duration)]
    pub deadline: Duration,

    /// --from-backup: storage for the restored disks (passed to qmrestore).
    #[arg(long, value_name = "STORAGE", default_value = pve_restore::options::DEFAULT_STORAGE)]
    pub storage: String,

    #[command(flatten)]
    pub node: NodeArgs,

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
