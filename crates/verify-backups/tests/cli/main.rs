//! Integration tests of the `verify-backups` binary against the test bed: a simulated Proxmox node behind a
//! real sshd, moto as S3, Terraform, and small HTTP responders for the monitoring services.

#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::print_stderr)]

mod backups;
mod bed;
mod contract;
mod fleet;
mod full;
mod homelab;
mod offline;
mod state;
