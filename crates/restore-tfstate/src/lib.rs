//! `restore-tfstate`: List and restore earlier versions of a Terraform state from versioned S3 (MinIO), or work without MinIO.
//!
//! Not built yet: the binary parses its command line, then says so and exits 1.

pub mod cli;

/// Runs the tool.
pub fn run(_args: &cli::Args) -> anyhow::Result<pve_common::exit::Code> {
    anyhow::bail!("restore-tfstate is not built yet; see the open issues")
}
