//! `check-drift`: Detect, classify and report drift between Terraform/OpenTofu and the Proxmox homelab, per environment.
//!
//! Not built yet: the binary parses its command line, then says so and exits 1.

pub mod cli;

/// Runs the tool.
pub fn run(_args: &cli::Args) -> anyhow::Result<pve_common::exit::Code> {
    anyhow::bail!("check-drift is not built yet; see the open issues")
}
