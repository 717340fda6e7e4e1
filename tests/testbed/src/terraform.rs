//! Real Terraform against the fixture environments, with an S3 (moto) or local backend.
//!
//! The environments `{prod,lab,monitoring}` are the example homelab's (`examples/homelab`: one
//! configuration serves the example and the tests). [`copy_fixtures`] copies its modules and
//! environments and lays `fixtures/` over them, which holds only what the bed runs differently (each
//! environment's S3 `backend.tf`). They are homelab-shaped configurations built on the simulated
//! Proxmox provider (`tests/sim-provider`, source `pve-tools.test/sim/proxmox`, local name
//! `proxmox`), so addresses read as a homelab's (`module.jellyfin.proxmox_virtual_environment_vm.vm`)
//! and a change made on the simulated node is real drift that Terraform's refresh finds. A [`Sim`]
//! holds what every run needs for that: the provider in a filesystem mirror with its CLI config
//! (`TF_CLI_CONFIG_FILE`, so `terraform init` needs no network) and a simulator state directory
//! (`PVE_SIM_STATE`). [`copy_fixtures`] installs one in `<copy>/.sim`, and [`Env::in_copy`] uses it.
//!
//! Their `backend.tf` declares an empty `backend "s3" {}`; the bed writes the settings into a
//! `.tfbackend` file in the environment's private data directory and passes it with
//! `-backend-config`, so fixture files never change. The local variant rewrites `backend.tf` of the
//! copy to `backend "local" {}`.
//!
//! Every run gets its own `TF_DATA_DIR` and plugin cache, `-input=false`, `TF_IN_AUTOMATION=1` and
//! `CHECKPOINT_DISABLE=1`, so tests can run environments in parallel and nothing leaves loopback.
//! Real drift is made on the node ([`Sim::set_memory`], [`Sim::destroy_guest`], ..., or `qm`/`pct`
//! of `pve-sim` on [`Sim::state_dir`]). [`Drift`] edits the stored state instead (through S3 for the
//! S3 backend, serial bumped, lineage kept): a refresh overwrites an edited provider attribute with
//! what the node has, so use it for what a refresh cannot undo (a resource forgotten or added). The
//! state lock is held by writing Terraform's `<key>.tflock` object, exactly what `use_lockfile =
//! true` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::process;
use crate::s3::{self, S3Client, S3Server};
use crate::sim;

/// The environments of the example homelab that the bed runs (`examples/homelab/environments`).
pub const ENVIRONMENTS: [&str; 3] = ["prod", "lab", "monitoring"];

/// Bucket holding the Terraform states in the bed.
pub const STATE_BUCKET: &str = "tfstate";

/// `tests/testbed/fixtures`: the files [`copy_fixtures`] lays over the example homelab's, i.e. what the
/// bed's environments have that the example's do not (`environments/<env>/backend.tf`: S3).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `examples/homelab` at the workspace root.
pub fn example_homelab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/homelab")
}

/// Copies the guests the example homelab's committed states describe (`examples/homelab/sim/guests`)
/// into `sim`'s state, as `examples/homelab/run-check-drift` does: each on its environment's node, as the
/// example's environments name them (one simulated node answers for all three).
pub fn seed_example_guests(sim: &Sim) -> Result<()> {
    let from = example_homelab_dir().join("sim/guests");
    let to = sim.state_dir().join("guests");
    std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))
            .with_context(|| format!("copying {}", entry.path().display()))?;
    }
    Ok(())
}

/// Which backend a copied environment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `backend "s3" {}`, settings from `-backend-config`.
    S3,
    /// `backend "local" {}`: `terraform.tfstate` beside the configuration.
    Local,
}

/// Where [`copy_fixtures`] installs the copy's [`Sim`].
pub const SIM_DIR: &str = ".sim";

/// What Terraform runs with the simulated provider need: the provider in a filesystem mirror and the
/// CLI config naming it, and a simulator state directory (a standard node `pve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sim {
    cli_config: PathBuf,
    state_dir: PathBuf,
}

impl Sim {
    /// Installs the provider (built once per process, or `$SIM_PROVIDER_BIN`) into `dir/mirror`,
    /// writes `dir/terraform.rc` and creates a standard simulator state in `dir/state` (storages
    /// `local` and `local-lvm`, no guests) unless one exists there.
    pub fn install(dir: &Path) -> Result<Sim> {
        let binary = match fresh_sibling(sim_provider::harness::BINARY_NAME, "../sim-provider") {
            Some(found) if std::env::var_os(sim_provider::harness::BINARY_ENV).is_none() => found,
            _ => sim_provider::harness::provider_binary()?,
        };
        let cli_config = sim_provider::harness::install_mirror_from(&binary, dir)?;
        let state_dir = dir.join("state");
        if !state_dir.join("node.json").is_file() {
            sim::State::create_standard(&state_dir, "pve")?;
        }
        Ok(Sim {
            cli_config,
            state_dir,
        })
    }

    /// A `Sim` already installed in `dir` by [`Sim::install`], if there is one.
    pub fn existing(dir: &Path) -> Option<Sim> {
        let sim = Sim {
            cli_config: dir.join("terraform.rc"),
            state_dir: dir.join("state"),
        };
        (sim.cli_config.is_file() && sim.state_dir.join("node.json").is_file()).then_some(sim)
    }

    /// An installed mirror's CLI config with another state directory (which must exist).
    pub fn with_state_dir(&self, state_dir: &Path) -> Sim {
        Sim {
            cli_config: self.cli_config.clone(),
            state_dir: state_dir.to_owned(),
        }
    }

    /// The CLI config for `TF_CLI_CONFIG_FILE`.
    pub fn cli_config(&self) -> &Path {
        &self.cli_config
    }

    /// The simulator state directory for `PVE_SIM_STATE`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The simulator state, for guests, backups, the journal.
    pub fn state(&self) -> Result<sim::State> {
        sim::State::open(&self.state_dir)
    }

    /// `TF_CLI_CONFIG_FILE` and `PVE_SIM_STATE`.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        vec![
            (
                "TF_CLI_CONFIG_FILE".to_owned(),
                self.cli_config.display().to_string(),
            ),
            (
                "PVE_SIM_STATE".to_owned(),
                self.state_dir.display().to_string(),
            ),
        ]
    }

    /// Runs the real `pve-sim` as `program` (`qm`, `pct`, `pvesh`...) on this state, as an operator on
    /// the node would; fails unless it exits 0. Returns its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let output = process::command(pve_sim_binary()?)
            .arg(program)
            .args(args)
            .env("PVE_SIM_STATE", &self.state_dir)
            .output()
            .with_context(|| format!("running pve-sim {program} {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "{program} {} exited with {}: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Drift: guest `vmid`'s memory set to `mib` outside Terraform (as in the Proxmox UI).
    pub fn set_memory(&self, vmid: u32, mib: u64) -> Result<()> {
        sim_provider::harness::set_memory(&self.state_dir, vmid, mib)
    }

    /// Drift: guest `vmid`'s tags replaced outside Terraform.
    pub fn set_tags(&self, vmid: u32, tags: &[&str]) -> Result<()> {
        sim_provider::harness::set_tags(&self.state_dir, vmid, tags)
    }

    /// Drift: guest `vmid`'s startup order changed outside Terraform.
    pub fn set_startup_order(&self, vmid: u32, order: u32) -> Result<()> {
        sim_provider::harness::set_startup_order(&self.state_dir, vmid, order)
    }

    /// Drift: any configuration key of guest `vmid` set (`Some`) or deleted (`None`).
    pub fn set_config(&self, vmid: u32, key: &str, value: Option<&str>) -> Result<()> {
        sim_provider::harness::set_config(&self.state_dir, vmid, key, value)
    }

    /// Drift: guest `vmid` destroyed outside Terraform.
    pub fn destroy_guest(&self, vmid: u32) -> Result<()> {
        sim_provider::harness::destroy_guest(&self.state_dir, vmid)
    }
}

/// The `pve-sim` binary: built beside the running test binary (the test bed's own tests), else built
/// once per process with `cargo build -p testbed --bin pve-sim` (other crates' tests cannot name
/// another package's binary).
pub fn pve_sim_binary() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    if let Some(found) = fresh_sibling("pve-sim", ".") {
        return Ok(found);
    }
    BUILT
        .get_or_init(|| {
            sim_provider::harness::cargo_build_binary("testbed", "pve-sim")
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

/// Binary `name` beside the running one ([`crate::bed::sibling_binary`]) if it is newer than every file
/// of its package's sources (`src_dir/src`, `src_dir/Cargo.toml`, relative to this crate): no cargo
/// run (and no wait for cargo's lock) when the workspace build is current.
fn fresh_sibling(name: &str, src_dir: &str) -> Option<PathBuf> {
    fn newest(path: &Path) -> Option<std::time::SystemTime> {
        let meta = std::fs::metadata(path).ok()?;
        let own = meta.modified().ok();
        if !meta.is_dir() {
            return own;
        }
        std::fs::read_dir(path)
            .ok()?
            .flatten()
            .filter_map(|e| newest(&e.path()))
            .chain(own)
            .max()
    }
    let binary = crate::bed::sibling_binary(name).ok()?;
    let built = std::fs::metadata(&binary).ok()?.modified().ok()?;
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join(src_dir);
    let sources = [package.join("src"), package.join("Cargo.toml")]
        .iter()
        .filter_map(|p| newest(p))
        .max()?;
    (sources <= built).then_some(binary)
}

/// Writes `sim_override.tf` into every environment under `root` (a [`copy_fixtures`] tree), pinning
/// the provider to `state_dir` whatever `PVE_SIM_STATE` says: for a copy that a shell (the
/// `testbed up` bed) runs beside another simulator state.
pub fn pin_sim_state(root: &Path, state_dir: &Path) -> Result<()> {
    for name in ENVIRONMENTS {
        let file = root.join("environments").join(name).join("sim_override.tf");
        let text = format!(
            "# Written by the test bed: this copy's simulator state.\nprovider \"proxmox\" {{\n  state_dir = {:?}\n}}\n",
            state_dir.display().to_string()
        );
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// Copies the fixture tree to `dest`: the example homelab's `modules/` and `environments/` as an
/// operator commits them ([`copy_configuration`]), with [`fixtures_dir`] laid over them; rewrites each
/// `backend.tf` for `kind` and installs a [`Sim`] in `dest/.sim` (see [`Env::in_copy`]). Returns
/// `dest/environments`.
pub fn copy_fixtures(dest: &Path, kind: BackendKind) -> Result<PathBuf> {
    let example = example_homelab_dir();
    for sub in ["modules", "environments"] {
        copy_configuration(&example.join(sub), &dest.join(sub))?;
    }
    copy_tree(&fixtures_dir(), dest)?;
    Sim::install(&dest.join(SIM_DIR))?;
    let envs = dest.join("environments");
    if kind == BackendKind::Local {
        for name in ENVIRONMENTS {
            let backend = envs.join(name).join("backend.tf");
            std::fs::write(&backend, LOCAL_BACKEND_TF)
                .with_context(|| format!("writing {}", backend.display()))?;
        }
    }
    Ok(envs)
}

/// Rewrites `backend.tf` of every environment under `root` (a [`copy_fixtures`] tree) with the complete
/// S3 settings for `endpoint` ([`S3Backend::backend_tf`]), so tools that run a plain `terraform init`
/// in the copy reach the test server.
pub fn write_inline_s3_backends(root: &Path, endpoint: &str) -> Result<()> {
    for name in ENVIRONMENTS {
        let file = root.join("environments").join(name).join("backend.tf");
        std::fs::write(&file, S3Backend::at(endpoint, name).backend_tf())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// A copy of the fixture tree in a temporary directory, removed on drop.
#[derive(Debug)]
pub struct Fixtures {
    tmp: tempfile::TempDir,
}

impl Fixtures {
    /// Copies the fixtures for `kind` into a new temporary directory.
    pub fn copy(kind: BackendKind) -> Result<Fixtures> {
        let tmp = tempfile::Builder::new()
            .prefix("testbed-tf-")
            .tempdir()
            .context("creating temporary directory for the fixtures")?;
        copy_fixtures(tmp.path(), kind)?;
        Ok(Fixtures { tmp })
    }

    /// The copy's root (holding `modules/` and `environments/`).
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `<root>/environments`, what the tools take as `--root`.
    pub fn environments_dir(&self) -> PathBuf {
        self.root().join("environments")
    }

    /// The copy's provider mirror and simulator state (`<root>/.sim`).
    pub fn sim(&self) -> Result<Sim> {
        Sim::existing(&self.root().join(SIM_DIR))
            .context("the fixture copy has no simulator (.sim)")
    }

    /// Environment `name` with `backend` (data in `<root>/.tf-data/<name>`).
    pub fn env(&self, name: &str, backend: Backend) -> Result<Env> {
        Env::in_copy(self.root(), name, backend)
    }

    /// Every environment on `server`'s S3, after creating the versioned state bucket there and writing
    /// complete `backend.tf` files (see [`write_inline_s3_backends`]).
    pub fn s3_envs(&self, server: &S3Server) -> Result<Vec<Env>> {
        let client = server.client();
        client.create_bucket(STATE_BUCKET)?;
        client.set_versioning(STATE_BUCKET, true)?;
        write_inline_s3_backends(self.root(), &server.endpoint())?;
        ENVIRONMENTS
            .iter()
            .map(|name| self.env(name, Backend::S3(S3Backend::for_env(server, name))))
            .collect()
    }

    /// Every environment with the local backend (the copy must be of [`BackendKind::Local`]).
    pub fn local_envs(&self) -> Result<Vec<Env>> {
        ENVIRONMENTS
            .iter()
            .map(|name| self.env(name, Backend::Local))
            .collect()
    }
}

/// `init` then `apply` in every environment, side by side.
pub fn init_and_apply_all(envs: &[Env]) -> Result<()> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = envs
            .iter()
            .map(|env| scope.spawn(|| env.init().and_then(|_| env.apply()).map(|_| ())))
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("terraform thread panicked"))?
        })
    })
}

/// `backend.tf` of the local variant (and of the example homelab).
pub const LOCAL_BACKEND_TF: &str = "# State lives beside the configuration.\nterraform {\n  required_version = \">= 1.6\"\n\n  backend \"local\" {}\n}\n";

/// Recursively copies `src` to `dest`, skipping `.terraform` directories.
pub fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    copy_tree_except(src, dest, &|name, _| name == ".terraform")
}

/// Recursively copies the Terraform configuration under `src` to `dest`: what git tracks in the
/// example homelab minus its data. Left out: Terraform's working data (`.terraform/`,
/// `.terraform.lock.hcl`, which pins the provider build that ran there last, lock info, plans),
/// local states (`terraform.tfstate*`: the example's committed states would be migrated into an S3
/// backend or taken as a local environment's state) and modules' `tests/` (`terraform test` files,
/// run by `examples/homelab/test-modules`, not by the bed).
pub fn copy_configuration(src: &Path, dest: &Path) -> Result<()> {
    copy_tree_except(src, dest, &|name, is_dir| {
        if is_dir {
            matches!(name, ".terraform" | "tests")
        } else {
            // The example's environments each name their own node and a TEST-NET endpoint in
            // terraform.tfvars; the bed runs its copies on its one simulated node, with the defaults.
            matches!(
                name,
                ".terraform.lock.hcl" | ".terraform.tfstate.lock.info" | "terraform.tfvars"
            ) || name.starts_with("terraform.tfstate")
                || name.ends_with(".tfplan")
        }
    })
}

/// [`copy_tree`] leaving out the entries for which `skip(file name, is a directory)` holds.
fn copy_tree_except(src: &Path, dest: &Path, skip: &dyn Fn(&str, bool) -> bool) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        // Through symbolic links: a linked file is copied as a file.
        let is_dir = from.is_dir();
        if skip(&entry.file_name().to_string_lossy(), is_dir) {
            continue;
        }
        if is_dir {
            copy_tree_except(&from, &to, skip)?;
        } else {
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Settings of the S3 backend of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Backend {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// State bucket.
    pub bucket: String,
    /// State object key, e.g. `prod/terraform.tfstate`.
    pub key: String,
    /// Region.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// The backend's `max_retries` (Terraform's default, 5, makes a run against a stopped S3 server
    /// take ~18 s; tests of "MinIO down" may want 0).
    pub max_retries: Option<u32>,
}

impl S3Backend {
    /// The backend of environment `env` on `server`: bucket [`STATE_BUCKET`], key
    /// `<env>/terraform.tfstate`, the test credentials.
    pub fn for_env(server: &S3Server, env: &str) -> S3Backend {
        S3Backend::at(&server.endpoint(), env)
    }

    /// Like [`S3Backend::for_env`] for a server known by its endpoint.
    pub fn at(endpoint: &str, env: &str) -> S3Backend {
        S3Backend {
            endpoint: endpoint.to_owned(),
            bucket: STATE_BUCKET.to_owned(),
            key: format!("{env}/terraform.tfstate"),
            region: s3::REGION.to_owned(),
            access_key: s3::ACCESS_KEY.to_owned(),
            secret_key: s3::SECRET_KEY.to_owned(),
            max_retries: None,
        }
    }

    /// The `.tfbackend` file content passed with `-backend-config`.
    pub fn tfbackend(&self) -> String {
        let mut text = format!(
            "bucket = {bucket:?}\n\
             key = {key:?}\n\
             region = {region:?}\n\
             endpoints = {{ s3 = {endpoint:?} }}\n\
             access_key = {access:?}\n\
             secret_key = {secret:?}\n\
             use_path_style = true\n\
             skip_credentials_validation = true\n\
             skip_requesting_account_id = true\n\
             skip_metadata_api_check = true\n\
             skip_region_validation = true\n\
             use_lockfile = true\n",
            bucket = self.bucket,
            key = self.key,
            region = self.region,
            endpoint = self.endpoint,
            access = self.access_key,
            secret = self.secret_key,
        );
        if let Some(retries) = self.max_retries {
            text.push_str(&format!("max_retries = {retries}\n"));
        }
        text
    }

    /// A `backend.tf` with the complete settings except the credentials (which Terraform then takes
    /// from [`S3Backend::aws_env`]): a plain `terraform init`, as the tools run it, reaches the server.
    pub fn backend_tf(&self) -> String {
        format!(
            "# Written by the test bed: its S3 server.\n{}",
            self.block(Some(&self.endpoint))
        )
    }

    /// The `terraform { backend "s3" {...} }` block without the endpoint and the credentials, as a
    /// homelab that keeps its S3 address out of Git has it: `terraform init
    /// -backend-config=backend.hcl` ([`S3Backend::backend_hcl`]) adds the endpoint, and the tools read it
    /// from there.
    pub fn backend_block(&self) -> String {
        self.block(None)
    }

    /// `backend.hcl`, the endpoint that [`S3Backend::backend_block`] leaves out.
    pub fn backend_hcl(&self) -> String {
        format!("endpoints = {{ s3 = {:?} }}\n", self.endpoint)
    }

    fn block(&self, endpoint: Option<&str>) -> String {
        let endpoint = endpoint.map_or(String::new(), |e| {
            format!("    endpoints                   = {{ s3 = {e:?} }}\n")
        });
        format!(
            "terraform {{\n  backend \"s3\" {{\n    \
             bucket                      = {bucket:?}\n    \
             key                         = {key:?}\n    \
             region                      = {region:?}\n\
             {endpoint}    \
             use_path_style              = true\n    \
             skip_credentials_validation = true\n    \
             skip_requesting_account_id  = true\n    \
             skip_metadata_api_check     = true\n    \
             skip_region_validation      = true\n    \
             use_lockfile                = true\n  }}\n}}\n",
            bucket = self.bucket,
            key = self.key,
            region = self.region,
        )
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` for a Terraform (or tool) run.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret_key.clone()),
            ("AWS_REGION".to_owned(), self.region.clone()),
        ]
    }

    /// A client for the backend's server.
    pub fn client(&self) -> Result<S3Client> {
        S3Client::new(
            &self.endpoint,
            &self.access_key,
            &self.secret_key,
            &self.region,
        )
    }

    /// `<bucket>/<key>`, as Terraform writes into the lock's `Path`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.bucket, self.key)
    }
}

/// Where an environment keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `terraform.tfstate` in the environment directory.
    Local,
    /// An S3 bucket.
    S3(S3Backend),
}

/// What a Terraform run returned.
#[derive(Debug, Clone)]
pub struct TfRun {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error (always carries this machine's CLI-configuration warning).
    pub stderr: String,
}

impl TfRun {
    fn ok(self, what: &str) -> Result<TfRun> {
        if self.code == 0 {
            Ok(self)
        } else {
            bail!(
                "{what} exited with {}:\n{}\n{}",
                self.code,
                self.stdout,
                self.stderr
            )
        }
    }
}

/// `terraform <args>` in `dir` as the tools run it (its data in `dir/.terraform`), with
/// `TF_IN_AUTOMATION=1`, `CHECKPOINT_DISABLE=1` and `envs`: test setup that fails with Terraform's output
/// unless it exits 0.
pub fn run_in(dir: &Path, args: &[&str], envs: &[(String, String)]) -> Result<TfRun> {
    let output = process::command("terraform")
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .with_context(|| format!("running terraform {} in {}", args.join(" "), dir.display()))?;
    TfRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
    .ok(&format!(
        "terraform {} in {}",
        args.join(" "),
        dir.display()
    ))
}

/// One Terraform environment: a configuration directory, its backend and a private data directory.
#[derive(Debug, Clone)]
pub struct Env {
    name: String,
    dir: PathBuf,
    data_dir: PathBuf,
    backend: Backend,
    sim: Option<Sim>,
    extra_vars: Vec<(String, String)>,
}

impl Env {
    /// The environment in `dir` with `backend`, keeping Terraform's data (`TF_DATA_DIR`, plugin cache,
    /// backend config file) in `data_dir`, outside the configuration.
    pub fn new(dir: &Path, backend: Backend, data_dir: &Path) -> Result<Env> {
        crate::require::require("terraform")?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Env {
            name,
            dir: dir.to_owned(),
            data_dir: data_dir.to_owned(),
            backend,
            sim: None,
            extra_vars: Vec::new(),
        })
    }

    /// Environment `name` of a tree made by [`copy_fixtures`] at `root`, data in `root/.tf-data/<name>`,
    /// with the copy's [`Sim`] (`root/.sim`).
    pub fn in_copy(root: &Path, name: &str, backend: Backend) -> Result<Env> {
        let env = Env::new(
            &root.join("environments").join(name),
            backend,
            &root.join(".tf-data").join(name),
        )?;
        Ok(match Sim::existing(&root.join(SIM_DIR)) {
            Some(sim) => env.with_sim(sim),
            None => env,
        })
    }

    /// Runs Terraform with `sim`'s `TF_CLI_CONFIG_FILE` and `PVE_SIM_STATE`.
    pub fn with_sim(mut self, sim: Sim) -> Env {
        self.sim = Some(sim);
        self
    }

    /// The simulator this environment's runs use, if any.
    pub fn sim(&self) -> Option<&Sim> {
        self.sim.as_ref()
    }

    /// The environment's name (its directory name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The private data directory (`TF_DATA_DIR` is `<data_dir>/tf`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Adds an environment variable to every run (after the bed's own, so it can override them): for
    /// instance `TF_CLI_CONFIG_FILE` for a provider mirror, or `PVE_SIM_STATE`.
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.extra_vars.push((name.to_owned(), value.to_owned()));
    }

    /// The environment variables every run gets.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("TF_IN_AUTOMATION".to_owned(), "1".to_owned()),
            ("TF_INPUT".to_owned(), "0".to_owned()),
            ("CHECKPOINT_DISABLE".to_owned(), "1".to_owned()),
            (
                "TF_DATA_DIR".to_owned(),
                self.data_dir.join("tf").display().to_string(),
            ),
            (
                "TF_PLUGIN_CACHE_DIR".to_owned(),
                self.data_dir.join("plugin-cache").display().to_string(),
            ),
        ];
        if let Backend::S3(b) = &self.backend {
            vars.extend(b.aws_env());
        }
        if let Some(sim) = &self.sim {
            vars.extend(sim.env_vars());
        }
        vars.extend(self.extra_vars.iter().cloned());
        vars
    }

    /// `terraform <args>` in the environment directory with the private environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = process::command("terraform");
        cmd.args(args).current_dir(&self.dir);
        cmd.envs(self.env_vars());
        cmd
    }

    /// Runs `terraform <args>` and captures its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Result<TfRun> {
        let output = self
            .command(args)
            .output()
            .with_context(|| format!("running terraform {}", args.join(" ")))?;
        Ok(TfRun {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// `terraform init` (with the S3 settings as `-backend-config`).
    pub fn init(&self) -> Result<TfRun> {
        let plugin_cache = self.data_dir.join("plugin-cache");
        std::fs::create_dir_all(&plugin_cache)
            .with_context(|| format!("creating {}", plugin_cache.display()))?;
        let mut args = vec![
            "init".to_owned(),
            "-input=false".to_owned(),
            "-no-color".to_owned(),
            "-reconfigure".to_owned(),
        ];
        if let Backend::S3(b) = &self.backend {
            let file = self.data_dir.join("s3.tfbackend");
            std::fs::write(&file, b.tfbackend())
                .with_context(|| format!("writing {}", file.display()))?;
            args.push(format!("-backend-config={}", file.display()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)?
            .ok(&format!("terraform init in {}", self.name))
    }

    /// `terraform apply -auto-approve`.
    pub fn apply(&self) -> Result<TfRun> {
        self.run(&["apply", "-auto-approve", "-input=false", "-no-color"])?
            .ok(&format!("terraform apply in {}", self.name))
    }

    /// `terraform plan -detailed-exitcode -out=<data_dir>/plan.tfplan`: code 0 no changes, 2 changes,
    /// 1 error.
    pub fn plan(&self) -> Result<TfRun> {
        let out = format!("-out={}", self.plan_file().display());
        self.run(&[
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            &out,
        ])
    }

    /// The plan file the last [`Env::plan`] wrote.
    pub fn plan_file(&self) -> PathBuf {
        self.data_dir.join("plan.tfplan")
    }

    /// `terraform show -json` of the last plan.
    pub fn show_plan_json(&self) -> Result<Value> {
        let plan = self.plan_file().display().to_string();
        let run = self
            .run(&["show", "-json", "-no-color", &plan])?
            .ok(&format!("terraform show in {}", self.name))?;
        serde_json::from_str(&run.stdout).context("parsing terraform show -json")
    }

    /// The current state document.
    pub fn read_state(&self) -> Result<Value> {
        let bytes = match &self.backend {
            Backend::Local => {
                let path = self.dir.join("terraform.tfstate");
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
            }
            Backend::S3(b) => b
                .client()?
                .get_object(&b.bucket, &b.key)?
                .with_context(|| format!("no state at s3://{}", b.path()))?,
        };
        serde_json::from_slice(&bytes).context("parsing the state")
    }

    /// Replaces the state document (no serial bump: see [`Env::inject_drift`]).
    pub fn write_state(&self, state: &Value) -> Result<()> {
        let text = serde_json::to_vec_pretty(state).context("serialising the state")?;
        match &self.backend {
            Backend::Local => {
                let path = self.dir.join("terraform.tfstate");
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
            }
            Backend::S3(b) => b.client()?.put_object(&b.bucket, &b.key, &text).map(|_| ()),
        }
    }

    /// Edits the stored state as a refresh that found `drift` would: the change, serial + 1, same
    /// lineage.
    pub fn inject_drift(&self, drift: &Drift) -> Result<()> {
        let mut state = self.read_state()?;
        apply_drift(&mut state, drift)?;
        bump_serial(&mut state)?;
        self.write_state(&state)
    }

    /// Holds the state lock as another Terraform run would: `<key>.tflock` in S3, or an fcntl lock
    /// on the local `terraform.tfstate` (which must exist: apply first).
    pub fn hold_lock(&self, operation: &str, who: &str) -> Result<StateLock> {
        match &self.backend {
            Backend::S3(b) => StateLock::acquire(b, operation, who),
            Backend::Local => {
                StateLock::acquire_local(&self.dir.join("terraform.tfstate"), operation, who)
            }
        }
    }
}

/// A change to a state document, as a refresh would record it.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// Sets the attribute at `path` (keys into the instance's `attributes`) of resource `address`.
    SetAttribute {
        /// Resource address, e.g. `module.jellyfin.terraform_data.vm`.
        address: String,
        /// Path below `attributes`, e.g. `["input", "value", "memory"]`.
        path: Vec<String>,
        /// New value.
        value: Value,
    },
    /// Forgets resource `address` (the object was deleted outside Terraform).
    RemoveResource {
        /// Resource address.
        address: String,
    },
    /// Adds a `terraform_data` resource that the configuration does not have.
    AddResource {
        /// Resource address, e.g. `module.pihole.terraform_data.stray`.
        address: String,
        /// The value of its `input` (and `output`).
        input: Value,
    },
}

impl Drift {
    /// A `terraform_data` input field changed in the state (for configurations built on
    /// `terraform_data`; the fixtures' provider resources take drift through [`Sim`]): sets `input.value.<field>` and
    /// `output.value.<field>` (what a real provider's refresh would report for a changed setting).
    pub fn input_changed(address: &str, field: &str, value: Value) -> Vec<Drift> {
        ["input", "output"]
            .iter()
            .map(|attr| Drift::SetAttribute {
                address: address.to_owned(),
                path: vec![(*attr).to_owned(), "value".to_owned(), field.to_owned()],
                value: value.clone(),
            })
            .collect()
    }
}

/// A resource address split into module path, type and name (no index keys: `count`/`for_each`
/// instances are not used by the fixtures).
fn split_address(address: &str) -> Result<(Option<String>, String, String)> {
    let parts: Vec<&str> = address.split('.').collect();
    if parts.len() < 2 || !parts.len().is_multiple_of(2) || parts[0] == "data" {
        bail!("unsupported resource address {address:?}");
    }
    let (module, resource) = parts.split_at(parts.len() - 2);
    if module.chunks(2).any(|c| c[0] != "module") {
        bail!("unsupported resource address {address:?}");
    }
    let module = (!module.is_empty()).then(|| module.join("."));
    Ok((module, resource[0].to_owned(), resource[1].to_owned()))
}

fn resource_matches(resource: &Value, module: Option<&str>, rtype: &str, name: &str) -> bool {
    resource["mode"] == "managed"
        && resource["type"] == rtype
        && resource["name"] == name
        && resource.get("module").and_then(Value::as_str) == module
}

/// Applies `drift` to a state document (serial untouched).
pub fn apply_drift(state: &mut Value, drift: &Drift) -> Result<()> {
    let resources = state["resources"]
        .as_array_mut()
        .context("state has no resources array")?;
    match drift {
        Drift::SetAttribute {
            address,
            path,
            value,
        } => {
            let (module, rtype, name) = split_address(address)?;
            let resource = resources
                .iter_mut()
                .find(|r| resource_matches(r, module.as_deref(), &rtype, &name))
                .with_context(|| format!("no resource {address} in the state"))?;
            let mut target = &mut resource["instances"][0]["attributes"];
            for key in path {
                target = target
                    .get_mut(key.as_str())
                    .with_context(|| format!("{address} has no attribute {}", path.join(".")))?;
            }
            *target = value.clone();
        }
        Drift::RemoveResource { address } => {
            let (module, rtype, name) = split_address(address)?;
            let before = resources.len();
            resources.retain(|r| !resource_matches(r, module.as_deref(), &rtype, &name));
            if resources.len() == before {
                bail!("no resource {address} in the state");
            }
        }
        Drift::AddResource { address, input } => {
            let (module, rtype, name) = split_address(address)?;
            if rtype != "terraform_data" {
                bail!("only terraform_data resources can be added, not {address}");
            }
            let typed = json!({ "value": input, "type": cty_type(input) });
            let mut resource = json!({
                "mode": "managed",
                "type": rtype,
                "name": name,
                "provider": "provider[\"terraform.io/builtin/terraform\"]",
                "instances": [{
                    "schema_version": 0,
                    "attributes": {
                        "id": pseudo_uuid(),
                        "input": typed,
                        "output": typed,
                        "triggers_replace": null
                    },
                    "sensitive_attributes": []
                }]
            });
            if let Some(module) = module {
                resource["module"] = Value::String(module);
            }
            resources.push(resource);
        }
    }
    Ok(())
}

/// The cty type JSON of a value, as Terraform records dynamic attributes.
fn cty_type(value: &Value) -> Value {
    match value {
        Value::Null => json!("dynamic"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => json!(["tuple", items.iter().map(cty_type).collect::<Vec<_>>()]),
        Value::Object(map) => {
            let fields: serde_json::Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), cty_type(v))).collect();
            json!(["object", fields])
        }
    }
}

/// Increments the state's `serial`, as every write by Terraform does.
pub fn bump_serial(state: &mut Value) -> Result<()> {
    let serial = state["serial"].as_u64().context("state has no serial")?;
    state["serial"] = json!(serial + 1);
    Ok(())
}

/// A UUID-shaped id, unique enough for lock and resource ids in tests.
fn pseudo_uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = jiff::Timestamp::now().as_nanosecond() as u128;
    let mix = now
        ^ (u128::from(std::process::id()) << 64)
        ^ (u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)) << 96);
    let hex = format!("{mix:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Terraform's lock information (the JSON in `<key>.tflock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LockInfo {
    /// Lock id (a UUID); `terraform force-unlock` takes it.
    #[serde(rename = "ID")]
    pub id: String,
    /// e.g. `OperationTypeApply`.
    pub operation: String,
    /// Free text.
    pub info: String,
    /// `user@host`.
    pub who: String,
    /// Terraform version.
    pub version: String,
    /// RFC 3339 time.
    pub created: String,
    /// `<bucket>/<key>`.
    pub path: String,
}

/// Holds a local state's lock: an fcntl write lock on the state file, as Terraform takes it (Rust's
/// `File::lock` is flock(2), which Terraform does not see), held by a small Python process.
const LOCAL_LOCK_PY: &str = r#"import fcntl, signal, sys
state = open(sys.argv[1], "r+")
fcntl.lockf(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
with open(sys.argv[2] + ".tmp", "w") as info:
    info.write(sys.argv[3])
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
signal.pause()
"#;

/// Where a [`StateLock`] lives.
#[derive(Debug)]
enum LockHolder {
    /// `<key>.tflock` in the bucket.
    S3(S3Backend),
    /// The fcntl lock of a helper process, plus `.terraform.tfstate.lock.info`.
    Local {
        daemon: process::Daemon,
        info_file: PathBuf,
        _log: tempfile::NamedTempFile,
    },
}

/// A state lock held by the test as another Terraform run would hold it: through the S3 lock file
/// (`use_lockfile`), or for the local backend through an fcntl lock on `terraform.tfstate` and the
/// `.terraform.tfstate.lock.info` beside it. Released by [`StateLock::release`] or on drop.
#[derive(Debug)]
pub struct StateLock {
    holder: Option<LockHolder>,
    info: LockInfo,
}

fn new_lock_info(operation: &str, who: &str, path: String) -> LockInfo {
    LockInfo {
        id: pseudo_uuid(),
        operation: operation.to_owned(),
        info: String::new(),
        who: who.to_owned(),
        version: "1.11.4".to_owned(),
        created: jiff::Timestamp::now().to_string(),
        path,
    }
}

impl StateLock {
    /// Writes `<key>.tflock` (only if absent, as Terraform does) with `operation` and `who`.
    pub fn acquire(backend: &S3Backend, operation: &str, who: &str) -> Result<StateLock> {
        let info = new_lock_info(operation, who, backend.path());
        let body = serde_json::to_vec(&info).context("serialising lock info")?;
        let key = format!("{}.tflock", backend.key);
        if !backend
            .client()?
            .put_object_if_absent(&backend.bucket, &key, &body)?
        {
            bail!("the state s3://{} is already locked", backend.path());
        }
        Ok(StateLock {
            holder: Some(LockHolder::S3(backend.clone())),
            info,
        })
    }

    /// Locks the local state `state_file` (which must exist) with `operation` and `who`.
    pub fn acquire_local(state_file: &Path, operation: &str, who: &str) -> Result<StateLock> {
        let dir = state_file.parent().unwrap_or(Path::new("."));
        let info = new_lock_info(operation, who, state_file.display().to_string());
        let info_file = dir.join(".terraform.tfstate.lock.info");
        let text = serde_json::to_string(&info).context("serialising lock info")?;
        let log = tempfile::NamedTempFile::new().context("creating the lock helper's log")?;
        let mut cmd = process::command("python3");
        cmd.arg("-c")
            .arg(LOCAL_LOCK_PY)
            .arg(state_file)
            .arg(&info_file)
            .arg(&text);
        let mut daemon = process::Daemon::spawn("state-lock", cmd, log.path())?;
        process::wait_until(
            "the local state lock",
            std::time::Duration::from_secs(10),
            || {
                daemon.check_alive()?;
                Ok(info_file.exists())
            },
        )?;
        Ok(StateLock {
            holder: Some(LockHolder::Local {
                daemon,
                info_file,
                _log: log,
            }),
            info,
        })
    }

    /// The lock information written.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Releases the lock (deletes the lock file; stops the local lock's holder).
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        match self.holder.take() {
            None => Ok(()),
            Some(LockHolder::S3(backend)) => {
                let key = format!("{}.tflock", backend.key);
                backend.client()?.delete_object(&backend.bucket, &key)
            }
            Some(LockHolder::Local {
                mut daemon,
                info_file,
                ..
            }) => {
                daemon.stop()?;
                std::fs::remove_file(&info_file)
                    .with_context(|| format!("removing {}", info_file.display()))
            }
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Value {
        json!({
            "version": 4, "serial": 3, "lineage": "l-1",
            "resources": [{
                "module": "module.jellyfin", "mode": "managed", "type": "terraform_data", "name": "vm",
                "provider": "provider[\"terraform.io/builtin/terraform\"]",
                "instances": [{"schema_version": 0, "attributes": {
                    "id": "x", "input": {"value": {"memory": 8192}, "type": ["object", {"memory": "number"}]}
                }}]
            }]
        })
    }

    #[test]
    fn the_backend_block_is_backend_tf_without_the_endpoint() {
        let b = S3Backend::at("http://127.0.0.1:9000", "prod");
        assert_eq!(
            b.backend_tf(),
            "# Written by the test bed: its S3 server.\nterraform {\n  backend \"s3\" {\n    \
             bucket                      = \"tfstate\"\n    \
             key                         = \"prod/terraform.tfstate\"\n    \
             region                      = \"us-east-1\"\n    \
             endpoints                   = { s3 = \"http://127.0.0.1:9000\" }\n    \
             use_path_style              = true\n    \
             skip_credentials_validation = true\n    \
             skip_requesting_account_id  = true\n    \
             skip_metadata_api_check     = true\n    \
             skip_region_validation      = true\n    \
             use_lockfile                = true\n  }\n}\n"
        );
        let complete = b.backend_tf();
        let without: Vec<&str> = complete
            .lines()
            .skip(1)
            .filter(|l| !l.contains("endpoints"))
            .collect();
        assert_eq!(b.backend_block().lines().collect::<Vec<_>>(), without);
        assert_eq!(
            b.backend_hcl(),
            "endpoints = { s3 = \"http://127.0.0.1:9000\" }\n"
        );
    }

    #[test]
    fn splits_addresses() {
        assert_eq!(
            split_address("module.a.module.b.terraform_data.vm").unwrap(),
            (
                Some("module.a.module.b".to_owned()),
                "terraform_data".to_owned(),
                "vm".to_owned()
            )
        );
        assert_eq!(split_address("terraform_data.x").unwrap().0, None);
        assert!(split_address("data.x.y").is_err());
        assert!(split_address("module.a.terraform_data").is_err());
    }

    #[test]
    fn drift_edits_keep_lineage_and_bump_serial() {
        let mut s = state();
        apply_drift(
            &mut s,
            &Drift::SetAttribute {
                address: "module.jellyfin.terraform_data.vm".into(),
                path: vec!["input".into(), "value".into(), "memory".into()],
                value: json!(4096),
            },
        )
        .unwrap();
        bump_serial(&mut s).unwrap();
        assert_eq!(
            s["resources"][0]["instances"][0]["attributes"]["input"]["value"]["memory"],
            4096
        );
        assert_eq!(s["serial"], 4);
        assert_eq!(s["lineage"], "l-1");

        apply_drift(
            &mut s,
            &Drift::AddResource {
                address: "module.jellyfin.terraform_data.extra".into(),
                input: json!({"name": "x", "n": 1, "tags": ["a"]}),
            },
        )
        .unwrap();
        let added = &s["resources"][1];
        assert_eq!(added["module"], "module.jellyfin");
        assert_eq!(
            added["instances"][0]["attributes"]["input"]["type"],
            json!(["object", {"name": "string", "n": "number", "tags": ["tuple", ["string"]]}])
        );

        apply_drift(
            &mut s,
            &Drift::RemoveResource {
                address: "module.jellyfin.terraform_data.vm".into(),
            },
        )
        .unwrap();
        assert_eq!(s["resources"].as_array().unwrap().len(), 1);
        assert!(
            apply_drift(
                &mut s,
                &Drift::RemoveResource {
                    address: "terraform_data.none".into()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn lock_info_has_terraforms_field_names() {
        let info = LockInfo {
            id: pseudo_uuid(),
            operation: "OperationTypeApply".into(),
            info: String::new(),
            who: "ops@pve".into(),
            version: "1.11.4".into(),
            created: "2026-11-21T20:00:00Z".into(),
            path: "tfstate/prod/terraform.tfstate".into(),
        };
        let v = serde_json::to_value(&info).unwrap();
        for key in [
            "ID",
            "Operation",
            "Info",
            "Who",
            "Version",
            "Created",
            "Path",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(info.id.len(), 36);
    }

    #[test]
    fn inline_backend_is_complete() {
        let text = S3Backend::at("http://127.0.0.1:1234", "lab").backend_tf();
        assert!(
            text.contains("key                         = \"lab/terraform.tfstate\""),
            "{text}"
        );
        assert!(
            text.contains("endpoints                   = { s3 = \"http://127.0.0.1:1234\" }"),
            "{text}"
        );
    }
}
