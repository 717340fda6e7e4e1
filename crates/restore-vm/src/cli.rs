//! Command line of `restore-vm`.

use std::path::PathBuf;

use clap::Parser;
use pve_common::cli::{CommonArgs, ConfirmArgs, NodeArgs};

/// Restore a Proxmox VM or LXC container from a vzdump backup over SSH, with a save point first.
///
/// The node is reached over SSH: host, node name and SSH user come from the flags, else the environment
/// (PVE_HOST, PVE_NODE, PVE_SSH_USER), else the homelab's terraform.tfvars (--tfvars, PVE_TFVARS, or
/// ./terraform.tfvars): the host of `proxmox_endpoint` (or `pm_api_url`, `proxmox_api_url`,
/// `endpoint`), `node_name` (or `proxmox_node`), `ssh_user` (or `proxmox_ssh_user`).
///
/// Before overwriting an existing guest, a full vzdump of it is taken (the save point) and its volid
/// printed; if that fails, nothing is overwritten.
#[derive(Parser, Debug)]
#[command(name = "restore-vm", version, about, after_help = pve_common::exit::HELP_EXIT_STATUS)]
pub struct Args {
    /// The guest id (VMID) whose backups to list or restore: an integer from 100 to 999999999.
    #[arg(value_name = "VMID")]
    pub vmid: String,

    /// List the backups of VMID on every storage holding backups, newest first, and exit.
    #[arg(long)]
    pub list: bool,

    /// Restore this backup volume (as listed by --list, e.g. local:backup/vzdump-qemu-100-....vma.zst).
    #[arg(long, value_name = "VOLID", conflicts_with_all = ["latest", "at"])]
    pub backup: Option<String>,

    /// Restore the newest backup (the default).
    #[arg(long, conflicts_with = "at")]
    pub latest: bool,

    /// Restore the newest backup taken at or before this node-local time: YYYY-MM-DD (end of that day)
    /// or YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,

    /// Restore under this guest id instead of VMID (100 to 999999999).
    #[arg(long, value_name = "ID")]
    pub target_id: Option<String>,

    /// Storage for the restored disks (always passed to qmrestore/pct restore; Proxmox's default `local`
    /// is rarely right).
    #[arg(long, value_name = "STORAGE", default_value = crate::config::DEFAULT_STORAGE)]
    pub storage: String,

    /// Backup storage for the save point (default: the chosen backup's storage when it is a file storage,
    /// else the first active storage holding backups).
    #[arg(long, value_name = "STORAGE")]
    pub save_storage: Option<String>,

    /// Start the guest after the restore (it is started anyway when the old guest was running).
    #[arg(long)]
    pub start: bool,

    /// Give the restored guest new MAC addresses (qmrestore/pct restore --unique 1).
    #[arg(long)]
    pub unique: bool,

    /// Skip the check that the restored guest runs and answers.
    #[arg(long)]
    pub no_verify: bool,

    /// Allow overwriting an existing guest (after the save point). It does not skip the confirmation:
    /// use --yes for that.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub confirm: ConfirmArgs,

    #[command(flatten)]
    pub node: NodeArgs,

    /// The Terraform variables file to read host, node and user from (else PVE_TFVARS, else
    /// ./terraform.tfvars when present).
    #[arg(long, value_name = "FILE")]
    pub tfvars: Option<PathBuf>,

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
