//! The test bed: real servers and real Terraform for the pve-tools' tests (issue 3).
//!
//! Each module owns one concern: [`process`] (children that die with the test), [`ports`] (free
//! loopback ports), [`require`] (the programs the bed needs and their packages), [`s3`] (a moto S3
//! server and a small signed client), [`terraform`] (fixture environments with an S3 or local backend,
//! drift and lock injection), [`docker`] (the monitoring VM's simulated `docker` CLI), [`monitoring`] (node_exporter, Alertmanager, Prometheus), [`sshd`] (a real
//! OpenSSH server on loopback with fault knobs), [`sim`] (the simulated Proxmox CLI and its state
//! directory), [`fixture`] (a homelab checkout in the replaced scripts' layout), [`fleet`] (one node per environment), [`bed`] (everything at
//! once, for the `testbed` command) and [`tool`] (reading a tool's run in its integration tests).

// Test infrastructure (never shipped): a scenario or a simulated command reads best whole; the 80-line
// limit is for the tools' code.
#![allow(clippy::too_many_lines)]

pub mod bed;
pub mod docker;
pub mod fixture;
pub mod fleet;
pub mod http;
pub mod monitoring;
pub mod ports;
pub mod process;
pub mod require;
pub mod s3;
pub mod sim;
pub mod sshd;
pub mod terraform;
pub mod tool;
