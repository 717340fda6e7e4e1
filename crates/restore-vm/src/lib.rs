//! `restore-vm`: Restore a Proxmox VM or LXC container from a vzdump backup over SSH, with a save point first.
//!
//! Not built yet: the binary parses its command line, then says so and exits 1.

pub mod cli;

/// Runs the tool.
pub fn run(_args: &cli::Args) -> anyhow::Result<pve_common::exit::Code> {
    anyhow::bail!("restore-vm is not built yet; see the open issues")
}
