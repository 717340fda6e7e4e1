//! Command line of `restore-vm`.

use clap::Parser;
use pve_common::cli::{CommonArgs, ForceArgs, TfvarsArgs};
use pve_ssh::node::NodeArgs;

/// The examples at the end of `--help` (and of the man page).
const EXAMPLES: &str = "\
\x20 The backups of guest 101 on its node:
    restore-vm 101 --list
  What restoring the first backup of 30 November would do, contacting nothing:
    restore-vm 101 --date 2026-11-30 --dry-run
  Restore the newest backup over the running guest, without asking (a save point is taken first):
    restore-vm 101 --node pve --force
  Restore into a new guest 9101 and leave 101 alone:
    restore-vm 101 --target-id 9101
  Guest 200 of the lab environment, on whichever node holds it (its backups on every node):
    restore-vm 200 --list
    restore-vm 200 --env lab";

/// Restore a Proxmox VM or LXC container from a vzdump backup over SSH, with a save point first.
///
/// With no --node, --host, PVE_NODE, PVE_HOST, --tfvars or PVE_TFVARS in a homelab whose environments
/// name their nodes, the node is found: the node of the environment whose Terraform state manages VMID
/// (the cluster member holding the guest now, if it moved), asked together with every other node of the
/// homelab in parallel; when the guest or its backups are on several nodes, nothing is done (exit 64) and
/// each environment/node is named: choose with --node or --env. `--list` then lists VMID's backups on every
/// node that has any. When no node knows VMID, the default below applies.
///
/// Otherwise the node is `--node` (else PVE_NODE, else `default_node`/`pve_node`/`node_name` of the
/// homelab's terraform.tfvars); it is reached over SSH at `--host` (else PVE_HOST, else the host of tfvars
/// `proxmox_endpoint`, else the `proxmox_endpoint` of the environment whose `default_node` it is, else
/// the node name itself) as `--user` (else PVE_SSH_USER, else tfvars `ssh_user`, else root). The tfvars
/// file is `--tfvars`, else PVE_TFVARS, else the homelab root's terraform.tfvars (--homelab,
/// PVE_HOMELAB, or the folder above the current one holding infrastructure/proxmox/environments), else
/// ./terraform.tfvars. Host keys: --known-hosts, else HOMELAB_KNOWN_HOSTS; SSH_INIT_MODE=true accepts
/// a new key.
///
/// Backups are searched on `--storage` (default `local`; `--all-storages` searches every backup storage).
/// Overwriting an existing guest is asked first (`--force` answers yes); a full vzdump of it is taken
/// before (the save point) and its volid printed; if that fails, nothing is overwritten.
#[derive(Parser, Debug)]
#[command(name = "restore-vm", version, about, after_help = pve_common::exit::help_footer(EXAMPLES, pve_common::exit::HELP_EXIT_STATUS))]
pub struct Args {
    /// The guest id (VMID) whose backups to list or restore: a number from 100 to 999999999.
    #[arg(value_name = "VMID")]
    pub vmid: Option<String>,

    /// List the backups of VMID on the searched storage(s), newest first, and exit (with no node given,
    /// on every node of the homelab that has any, each with its node and environment).
    #[arg(long)]
    pub list: bool,

    /// Restore this backup volume (as listed by --list, e.g. local:backup/vzdump-qemu-100-....vma.zst).
    #[arg(long, value_name = "VOLID", conflicts_with_all = ["latest", "at", "date"])]
    pub backup: Option<String>,

    /// Restore the newest backup (the default).
    #[arg(long, conflicts_with_all = ["at", "date"])]
    pub latest: bool,

    /// Restore the oldest backup taken on or after this day (node-local time), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "at")]
    pub date: Option<String>,

    /// Restore the newest backup taken at or before this node-local time: YYYY-MM-DD (end of that day)
    /// or YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,

    /// Restore under this guest id instead of VMID (100 to 999999999).
    #[arg(long, value_name = "VMID")]
    pub target_id: Option<String>,

    /// The backup storage searched for VMID's backups.
    #[arg(long, value_name = "STORAGE", default_value = crate::config::DEFAULT_BACKUP_STORAGE)]
    pub storage: String,

    /// Search every backup storage of the node instead of --storage.
    #[arg(long, conflicts_with = "storage")]
    pub all_storages: bool,

    /// Storage for the restored disks (always passed to qmrestore/pct restore; Proxmox's default `local`
    /// is rarely right).
    #[arg(long, value_name = "STORAGE", default_value = crate::config::DEFAULT_STORAGE)]
    pub target_storage: String,

    /// Backup storage for the save point (default: the chosen backup's storage when it is a file storage,
    /// else the first active storage holding backups).
    #[arg(long, value_name = "STORAGE")]
    pub save_storage: Option<String>,

    /// Start the guest after the restore (the default, so that the check that it runs means something).
    #[arg(long, conflicts_with = "no_start")]
    pub start: bool,

    /// Leave the restored guest stopped (unless the old guest was running); the check is then skipped.
    #[arg(long)]
    pub no_start: bool,

    /// Give the restored guest new MAC addresses (qmrestore/pct restore --unique 1).
    #[arg(long)]
    pub unique: bool,

    /// Skip the check that the restored guest runs and answers.
    #[arg(long)]
    pub no_verify: bool,

    #[command(flatten)]
    pub force: ForceArgs,

    /// Accepted for callers of earlier versions, where it allowed overwriting: overwriting is now asked
    /// for (or answered by --force).
    #[arg(long, hide = true)]
    pub allow_overwrite: bool,

    /// With no --node: look for VMID only on the node of this environment (and the members of its
    /// cluster), even when another environment's node also has it.
    #[arg(long, value_name = "ENV", conflicts_with_all = ["node", "host"])]
    pub env: Option<String>,

    #[command(flatten)]
    pub node: NodeArgs,

    #[command(flatten)]
    pub tfvars: TfvarsArgs,

    /// Seconds to wait for the restored guest to run and answer.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::config::DEFAULT_VERIFY_TIMEOUT.as_secs(), value_parser = pve_common::cli::parse_seconds)]
    pub verify_timeout: u64,

    /// The TCP port checked on the restored guest's IP.
    #[arg(long, value_name = "PORT", default_value_t = crate::config::DEFAULT_VERIFY_PORT)]
    pub verify_port: u16,

    /// Seconds a running target gets to shut down cleanly before it is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::config::DEFAULT_SHUTDOWN_TIMEOUT.as_secs(), value_parser = pve_common::cli::parse_seconds)]
    pub shutdown_timeout: u64,

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
