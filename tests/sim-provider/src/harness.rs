//! Helpers for tests that drive real Terraform against the simulated node with this provider.
//!
//! - [`provider_binary`] finds (or builds) `terraform-provider-proxmox`;
//! - [`install_mirror`] lays it out as a `filesystem_mirror` and writes a CLI config for
//!   `TF_CLI_CONFIG_FILE`, so `terraform init` works offline;
//! - [`Terraform`] runs terraform in a fixture directory with that environment;
//! - the drift makers ([`set_memory`], [`set_tags`], [`set_startup_order`], [`set_config`],
//!   [`set_status`], [`destroy_guest`], [`edit_guest`]) change guest files the way an operator does in
//!   the Proxmox UI: under the state lock, without a journal entry from the provider.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

use crate::simstate::{Guest, STATE_ENV, StateDir};

/// Source address of the provider; configurations declare it under the local name `proxmox`.
pub const SOURCE: &str = "pve-tools.test/sim/proxmox";
/// Version the mirror offers (the crate's version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Environment variable naming a prebuilt provider binary (skips the cargo build).
pub const BINARY_ENV: &str = "SIM_PROVIDER_BIN";
/// File name of the binary.
pub const BINARY_NAME: &str = "terraform-provider-proxmox";

/// The provider binary: `$SIM_PROVIDER_BIN` if set, else built once per test process with
/// `cargo build -p sim-provider --bin terraform-provider-proxmox` (debug profile, the workspace's target
/// directory; up to date after the first time, a few hundred milliseconds).
pub fn provider_binary() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(p) = std::env::var_os(BINARY_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    BUILT
        .get_or_init(|| {
            cargo_build_binary("sim-provider", BINARY_NAME).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Prefixes of the variables cargo sets for a test process (not for a build).
const CARGO_INJECTED: [&str; 8] = [
    "CARGO_PKG_",
    "CARGO_BIN_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_TARGET_TMPDIR",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

#[allow(
    clippy::disallowed_methods,
    reason = "test harness: runs cargo, never part of a tool's side effects"
)]
/// Builds binary `bin` of workspace package `package` with `cargo build` (the cargo running the tests,
/// `$CARGO`; debug profile, the workspace's target directory) and returns the path cargo reports.
/// The variables cargo sets for a test process are removed first.
pub fn cargo_build_binary(package: &str, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    // `cargo test` gives the test process its package's variables; build scripts that watch them
    // (ring watches CARGO_MANIFEST_DIR) would rebuild on every switch between the two builds.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if CARGO_INJECTED.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name.as_ref());
        }
    }
    let output = command
        .args([
            "build",
            "-p",
            package,
            "--bin",
            bin,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .with_context(|| format!("running cargo build for {bin}"))?;

    if !output.status.success() {
        bail!(
            "cargo build of {bin} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == bin
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build did not report the {bin} executable")
}

/// Terraform's name for this machine's platform (`linux_amd64`).
pub fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

/// Install the provider (built or located by [`provider_binary`]) into a filesystem mirror under `dir`
/// and write `dir/terraform.rc`; returns that CLI config's path, for `TF_CLI_CONFIG_FILE`.
pub fn install_mirror(dir: &Path) -> Result<PathBuf> {
    install_mirror_from(&provider_binary()?, dir)
}

/// [`install_mirror`] with an explicit binary.
pub fn install_mirror_from(binary: &Path, dir: &Path) -> Result<PathBuf> {
    let mirror = dir.join("mirror");
    let plat = mirror.join(SOURCE).join(VERSION).join(platform());
    fs::create_dir_all(&plat).with_context(|| format!("creating {}", plat.display()))?;
    let target = plat.join(format!("{BINARY_NAME}_v{VERSION}"));
    if target.exists() {
        fs::remove_file(&target).with_context(|| format!("removing {}", target.display()))?;
    }
    if fs::hard_link(binary, &target).is_err() {
        fs::copy(binary, &target)
            .with_context(|| format!("copying {} to {}", binary.display(), target.display()))?;
    }
    let config = dir.join("terraform.rc");
    let text = format!(
        r#"provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["pve-tools.test/*/*"]
  }}
  direct {{
    exclude = ["pve-tools.test/*/*"]
  }}
}}
"#,
        mirror = mirror.display()
    );
    fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok(config)
}

/// The `terraform { required_providers }` block a fixture needs, plus a provider block pointing at
/// `state_dir` when given.
pub fn provider_hcl(state_dir: Option<&Path>) -> String {
    let mut text = format!(
        "terraform {{\n  required_providers {{\n    proxmox = {{\n      source = \"{SOURCE}\"\n    }}\n  }}\n}}\n\n"
    );
    match state_dir {
        Some(dir) => text.push_str(&format!(
            "provider \"proxmox\" {{\n  state_dir = \"{}\"\n}}\n",
            dir.display()
        )),
        None => text.push_str("provider \"proxmox\" {}\n"),
    }
    text
}

/// Terraform run in one working directory with the mirror's CLI config and the simulator state.
#[derive(Debug, Clone)]
pub struct Terraform {
    /// Working directory (the fixture).
    pub dir: PathBuf,
    /// Extra environment for every run.
    pub env: Vec<(OsString, OsString)>,
}

impl Terraform {
    /// Terraform in `dir`, with `TF_CLI_CONFIG_FILE=cli_config`, `PVE_SIM_STATE=state_dir`, no input,
    /// no checkpoint calls.
    pub fn new(dir: &Path, cli_config: &Path, state_dir: &Path) -> Self {
        let env = [
            ("TF_CLI_CONFIG_FILE", cli_config.as_os_str()),
            (STATE_ENV, state_dir.as_os_str()),
            ("TF_IN_AUTOMATION", "1".as_ref()),
            ("TF_INPUT", "0".as_ref()),
            ("CHECKPOINT_DISABLE", "1".as_ref()),
        ]
        .into_iter()
        .map(|(k, v)| (OsString::from(k), v.to_owned()))
        .collect();
        Self {
            dir: dir.to_owned(),
            env,
        }
    }

    /// Run `terraform <args>` and return its output, whatever the exit status.
    #[allow(
        clippy::disallowed_methods,
        reason = "test harness: runs terraform, never part of a tool's side effects"
    )]
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        Command::new("terraform")
            .args(args)
            .current_dir(&self.dir)
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .with_context(|| format!("running terraform {}", args.join(" ")))
    }
}

/// Create a minimal state directory (`node.json`, `storage.json`, `guests/`) for tests that do not start
/// the whole test bed.
pub fn init_state_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("guests"))
        .with_context(|| format!("creating {}", dir.join("guests").display()))?;
    let node = serde_json::json!({
        "node": "pve", "version": "8.3.2", "release": "8.3", "repoid": "3e76eec21c4a14a7",
        "timezone": "UTC", "cpus": 8, "maxmem": 68_719_476_736_u64,
    });
    fs::write(dir.join("node.json"), format!("{node:#}\n")).context("writing node.json")?;
    let storage = serde_json::json!([
        {"storage": "local", "type": "dir", "content": "iso,vztmpl,backup",
         "path": dir.join("storage/local").display().to_string(), "total": 107_374_182_400_u64,
         "enabled": 1, "active": 1, "shared": 0},
        {"storage": "local-lvm", "type": "lvmthin", "content": "images,rootdir",
         "total": 107_374_182_400_u64, "enabled": 1, "active": 1, "shared": 0, "used_extra": 0},
    ]);
    fs::write(dir.join("storage.json"), format!("{storage:#}\n"))
        .context("writing storage.json")?;
    fs::create_dir_all(dir.join("storage/local/dump")).context("creating storage/local")?;
    Ok(())
}

/// Read a guest file (under the lock).
pub fn read_guest(state_dir: &Path, vmid: u32) -> Result<Option<Guest>> {
    StateDir::lock(state_dir)?.read_guest(vmid)
}

/// Change a guest's file as an operator would through the UI: under the lock, no provider journal entry.
pub fn edit_guest(state_dir: &Path, vmid: u32, edit: impl FnOnce(&mut Guest)) -> Result<()> {
    let dir = StateDir::lock(state_dir)?;
    let mut guest = dir
        .read_guest(vmid)?
        .with_context(|| format!("guest {vmid} does not exist"))?;
    edit(&mut guest);
    dir.write_guest(&guest)
}

/// Drift: memory raised (or lowered) to `mib` in the UI.
pub fn set_memory(state_dir: &Path, vmid: u32, mib: u64) -> Result<()> {
    edit_guest(state_dir, vmid, |g| g.set("memory", mib.to_string()))
}

/// Drift: tags replaced in the UI (stored `;`-joined in the given order, as Proxmox does).
pub fn set_tags(state_dir: &Path, vmid: u32, tags: &[&str]) -> Result<()> {
    edit_guest(state_dir, vmid, |g| {
        g.set_opt("tags", (!tags.is_empty()).then(|| tags.join(";")))
    })
}

/// Drift: startup order changed in the UI (other `startup` properties kept).
pub fn set_startup_order(state_dir: &Path, vmid: u32, order: u32) -> Result<()> {
    edit_guest(state_dir, vmid, |g| {
        let mut parts: Vec<String> = g
            .get("startup")
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.is_empty() && !p.starts_with("order="))
            .map(str::to_owned)
            .collect();
        parts.insert(0, format!("order={order}"));
        g.set("startup", parts.join(","));
    })
}

/// Drift: any configuration key set (`Some`) or deleted (`None`), as `qm set 100 --key value` /
/// `--delete key` would.
pub fn set_config(state_dir: &Path, vmid: u32, key: &str, value: Option<&str>) -> Result<()> {
    edit_guest(state_dir, vmid, |g| {
        g.set_opt(key, value.map(str::to_owned))
    })
}

/// Drift: the guest stopped (`"stopped"`) or started (`"running"`) outside Terraform.
pub fn set_status(state_dir: &Path, vmid: u32, status: &str) -> Result<()> {
    edit_guest(state_dir, vmid, |g| status.clone_into(&mut g.status))
}

/// Drift: the guest destroyed outside Terraform (its file removed).
pub fn destroy_guest(state_dir: &Path, vmid: u32) -> Result<()> {
    let dir = StateDir::lock(state_dir)?;
    if !dir.remove_guest(vmid)? {
        bail!("guest {vmid} does not exist");
    }
    Ok(())
}

/// Write a guest file as if it had been created outside Terraform (for import tests).
pub fn write_guest(state_dir: &Path, guest: &Guest) -> Result<()> {
    StateDir::lock(state_dir)?.write_guest(guest)
}
