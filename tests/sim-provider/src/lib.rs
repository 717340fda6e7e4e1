//! A Terraform provider for the simulated Proxmox node, source `pve-tools.test/sim/proxmox`.
//!
//! It serves `proxmox_virtual_environment_vm` and `proxmox_virtual_environment_container`, a faithful
//! subset of bpg/proxmox's schema, and keeps them in the simulator's state directory (the contract in
//! `tests/testbed/SIM-STATE.md`). A change made there outside Terraform (`qm set`, or an edit of a guest
//! file through [`harness`]'s drift makers) is real drift that `terraform plan` finds on refresh.

pub mod container;
pub mod harness;
pub mod mapping;
pub mod provider;
pub mod resource;
pub mod simstate;
pub mod spec;
pub mod vm;

pub use provider::{PROVIDER_NAME, SimProvider};
