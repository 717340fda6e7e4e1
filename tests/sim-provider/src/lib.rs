//! A Terraform provider for the simulated Proxmox node, source `pve-tools.test/sim/proxmox`.
//!
//! It serves `proxmox_virtual_environment_vm` and `proxmox_virtual_environment_container`, a faithful
//! subset of bpg/proxmox's SDKv2 schema (nested blocks are lists: plan paths read `memory[0].dedicated`),
//! and keeps them in the simulator's state directory (the contract in `tests/testbed/SIM-STATE.md`:
//! guest files under the `state.lock` flock, journal entries with `"source": "provider"`). A change made
//! there outside Terraform (`qm set`, or an edit of a guest file through [`harness`]'s drift makers) is
//! real drift that `terraform plan` finds on refresh.
//!
//! # Using it from a test
//!
//! ```no_run
//! use sim_provider::harness::{self, Terraform};
//! # fn main() -> anyhow::Result<()> {
//! let tmp = tempfile::tempdir()?;
//! let state = tmp.path().join("state");
//! harness::init_state_dir(&state)?; // or the test bed's state directory
//! // Builds (or takes $SIM_PROVIDER_BIN) and lays out the mirror; returns the CLI config path.
//! let cli_config = harness::install_mirror(tmp.path())?;
//! let work = tmp.path().join("work");
//! std::fs::create_dir_all(&work)?;
//! std::fs::write(work.join("main.tf"), format!("{}\n{}", harness::provider_hcl(None), r#"
//! resource "proxmox_virtual_environment_vm" "jellyfin" {
//!   node_name = "pve"
//!   vm_id     = 100
//!   memory {
//!     dedicated = 8192
//!   }
//! }"#))?;
//! // Runs terraform with TF_CLI_CONFIG_FILE=<cli_config> and PVE_SIM_STATE=<state>.
//! let tf = Terraform::new(&work, &cli_config, &state);
//! tf.run(&["init", "-input=false"])?;
//! tf.run(&["apply", "-auto-approve", "-input=false"])?;
//! harness::set_memory(&state, 100, 10240)?; // drift: `plan -detailed-exitcode` now exits 2
//! # Ok(())
//! # }
//! ```
//!
//! `terraform init` records the binary's hash in `.terraform.lock.hcl`; a rebuilt provider no longer
//! matches it, so fixtures must not commit that file for this provider. `PLUGIN_LOG_FILE=<path>` makes
//! the provider log its gRPC traffic there.
//!
//! # Provider block
//!
//! `state_dir` (optional, default `$PVE_SIM_STATE`), `node_name` (optional; the node for resources that
//! leave theirs unset, default `node.json`'s, else `pve`). bpg's connection settings (`endpoint`,
//! `api_token`, `username`, `password`, `insecure`, `min_tls`, `tmp_dir`, `ssh { agent username
//! private_key node { name address port } }`...) are accepted and ignored, so a homelab's block works.
//!
//! # Schema subset (defaults and ForceNew as in bpg)
//!
//! VM: `id`, `node_name`†, `vm_id`†, `name` (""), `description` (""), `tags` (order-insensitive),
//! `started` (true), `on_boot` (true), `bios` ("seabios"), `machine` (""), `scsi_hardware`
//! ("virtio-scsi-pci"), `stop_on_destroy` (false), `agent { enabled (false) trim (false) type
//! ("virtio") }`, `operating_system { type ("other") }`, `clone { vm_id† full† datastore_id† }`,
//! `cpu { cores (1) sockets (1) }`, `memory { dedicated (512) floating (0) shared (0) }`,
//! `disk { datastore_id ("local-lvm") interface size (8) file_format }`,
//! `network_device { bridge ("vmbr0") model ("virtio") mac_address vlan_id (0) }`,
//! `startup { order up_delay down_delay (-1) }`, `initialization { datastore_id ("local-lvm")
//! interface ("ide2") user_account { keys† password† username† } (block†) ip_config { ipv4 { address
//! gateway } } }`.
//!
//! Container: `id`, `node_name`†, `vm_id`†, `description`, `tags`, `started` (true), `start_on_boot`
//! (true), `unprivileged`† (false), `clone { vm_id† datastore_id† }`, `cpu { cores (1) }`,
//! `memory { dedicated (512) swap (0) }`, `disk { datastore_id† ("local") size (4) }`,
//! `operating_system { template_file_id† type† ("unmanaged") }`, `initialization { hostname
//! user_account { keys† password† } ip_config { ipv4 { address gateway } } }`,
//! `network_interface { name bridge ("vmbr0") mac_address }`, `startup { ... }`.
//!
//! († forces a replacement.) Known false positive reproduced on purpose: Read re-formats SSH keys
//! (trailing newline and doubled blanks dropped), so a key configured with `file("id.pub")`'s trailing
//! newline drifts on `initialization[0].user_account[0].keys` on every plan, and since bpg marks it
//! ForceNew, the plan is a replacement.

// Test infrastructure (never shipped): a scenario or a simulated command reads best whole; the 80-line
// limit is for the tools' code.
#![allow(clippy::too_many_lines)]

pub mod container;
pub mod harness;
pub mod mapping;
pub mod provider;
pub mod resource;
pub mod simstate;
pub mod spec;
pub mod vm;

pub use provider::{PROVIDER_NAME, SimProvider};
