//! Integration tests of the `verify-backups` binary against the test bed: a simulated Proxmox node behind a
//! real sshd, moto as S3, Terraform, and small HTTP responders for the monitoring services.

#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::print_stderr)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

mod backups;
mod bed;
mod contract;
mod fleet;
mod full;
mod homelab;
mod offline;
mod state;
