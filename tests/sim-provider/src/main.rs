//! `terraform-provider-proxmox`: serves the simulated-node provider over the Terraform plugin protocol.
//! Terraform starts it; it prints the go-plugin handshake on stdout and serves until Terraform stops it.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match tf_provider::serve(
        sim_provider::PROVIDER_NAME,
        sim_provider::SimProvider::new(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr, reason = "the provider's only error report")]
            {
                eprintln!("terraform-provider-proxmox: error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
