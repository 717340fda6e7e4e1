//! Integration tests of the `verify-backups` binary against the test bed: a simulated Proxmox node behind a
//! real sshd, moto as S3, Terraform, and small HTTP responders for the monitoring services.

#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::print_stderr)]

#[path = "cli/backups.rs"]
mod backups;
#[path = "cli/bed.rs"]
mod bed;
#[path = "cli/contract.rs"]
mod contract;
#[path = "cli/fleet.rs"]
mod fleet;
#[path = "cli/full.rs"]
mod full;
#[path = "cli/homelab.rs"]
mod homelab;
#[path = "cli/offline.rs"]
mod offline;
#[path = "cli/state.rs"]
mod state;
