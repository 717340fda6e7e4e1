//! `rebuild-monitoring`: bring the monitoring VM (Prometheus, Alertmanager, Grafana) back, from a backup
//! (restore-vm) or with a targeted `terraform apply`, then prove the stack works: readiness, active
//! targets, the drift and host alert rules loaded, Grafana's health and node_exporter's textfile series.
//! `--json` prints `pve-rebuild-monitoring/v1` (docs/json/rebuild-monitoring.md).

pub mod backup;
pub mod cli;
pub mod containers;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pve_common::confirm::ConfirmError;
use pve_common::exit::{Code, UsageError};
use pve_common::output::{self, ToolInfo};
use pve_common::retry::ThreadSleeper;
use pve_common::runner::{Access, LocalCommand, Runner};
use pve_common::s3::S3Credentials;
use pve_common::terraform::TerraformError;
use pve_ssh::node::{NodeAccess, NodeError};
use pve_tf::TargetedPlan;
use serde::{Deserialize, Serialize};

use crate::backup::{RestoreRequest, RestoreVm, VmRestorer};
use crate::verify::{Check, CheckResult, Kind};

/// The JSON schema name of the report.
pub const SCHEMA: &str = "pve-rebuild-monitoring/v1";

/// Rule groups Prometheus must have loaded: `packaging/prometheus/alerts/drift.yml` and `host.yml`.
pub const DEFAULT_RULE_GROUPS: [&str; 2] = ["drift-alerts", "host-alerts"];

/// The `rebuild-monitoring` binary, for [`pve_common::run`].
#[derive(Debug)]
pub struct RebuildMonitoring;

impl pve_common::Tool for RebuildMonitoring {
    const NAME: &'static str = "rebuild-monitoring";
    type Args = cli::Args;

    fn common(args: &cli::Args) -> &pve_common::cli::CommonArgs {
        &args.common
    }

    fn run(args: cli::Args) -> anyhow::Result<Code> {
        run(&Config::from_args(&args)?)
    }
}

/// How the stack is brought back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Mode {
    /// No mode flag: from a backup if one younger than `max_age` exists, else from Terraform.
    Auto,
    /// `--from-backup [VOLID]`.
    FromBackup {
        /// The backup, or the newest.
        volid: Option<String>,
    },
    /// `--from-terraform`.
    FromTerraform,
    /// `--verify-only`.
    VerifyOnly,
}

/// The four URLs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Urls {
    /// Prometheus.
    pub prometheus: String,
    /// Alertmanager.
    pub alertmanager: String,
    /// Grafana.
    pub grafana: String,
    /// node_exporter.
    pub node_exporter: String,
}

/// A validated run configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The mode.
    pub mode: Mode,
    /// The monitoring VM.
    pub vmid: Option<u32>,
    /// `--max-age`.
    pub max_age: Duration,
    /// The Proxmox node (needed by `--from-backup` and the default mode).
    pub access: Option<NodeAccess>,
    /// `--storage`.
    pub storage: String,
    /// The monitoring environment.
    pub env: String,
    /// Its folder (resolved only when Terraform is used).
    pub env_dir: PathBuf,
    /// `--root`.
    pub root: PathBuf,
    /// `--target`.
    pub target: String,
    /// Variable file.
    pub tfvars: Option<PathBuf>,
    /// `--terraform-bin`.
    pub terraform_bin: Option<PathBuf>,
    /// Where to check.
    pub urls: Urls,
    /// Required rule groups.
    pub rule_groups: Vec<String>,
    /// `--deadline`.
    pub deadline: Duration,
    /// `--yes`.
    pub yes: bool,
    /// `--dry-run` or `--preview`: change nothing.
    pub dry_run: bool,
    /// `--dry-run`: contact nothing either (print what would run).
    pub offline: bool,
    /// The monitoring VM over SSH (`root@<monitoring.vm.ip>` or `--vm-host`), for `docker ps`.
    pub vm_access: Option<NodeAccess>,
    /// `--json`.
    pub json: bool,
}

fn check_url(flag: &str, url: &str) -> Result<String, UsageError> {
    match url::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(UsageError(format!(
            "{flag} {url:?}: give an http(s)://host:port URL"
        ))),
    }
}

/// The environment whose Terraform state manages the monitoring VM `vmid` (local state, else S3 unless
/// `local_only`), when exactly one does and it names its node.
fn owning_env(
    homelab: Option<&pve_common::homelab::Homelab>,
    vmid: Option<u32>,
    local_only: bool,
) -> Option<pve_common::fleet::FleetEnv> {
    let (homelab, vmid) = (homelab?, vmid?);
    let fleet = pve_common::fleet::Fleet::discover(homelab).ok()?;
    let owners = pve_tf::fleet::owners(
        &fleet,
        vmid,
        local_only,
        "not used to find the monitoring VM's node",
    );
    match owners.as_slice() {
        [one] if one.node.is_some() => Some((*one).clone()),
        [] | [_] => None,
        several => {
            pve_common::warn!(
                "VM {vmid} is managed by several environments ({}): its node is not taken from them",
                several
                    .iter()
                    .map(|e| e.env.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            None
        }
    }
}

/// The node settings with the homelab filling what the flags, the environment and the variable file
/// leave open: the node of the environment whose Terraform state manages the monitoring VM (`owner`), at
/// the host of its `proxmox_endpoint`; else the node of the `monitoring` block (null: the monitoring
/// environment's `default_node`) at the host of that environment's `proxmox_endpoint` (each environment
/// has its own node; the root's default node is never taken for it).
fn homelab_node_args(
    args: &pve_ssh::node::NodeArgs,
    vars: Option<&pve_common::tfvars::TfVars>,
    homelab: Option<&pve_common::homelab::Homelab>,
    owner: Option<&pve_common::fleet::FleetEnv>,
) -> pve_ssh::node::NodeArgs {
    let mut args = args.clone();
    let settings = homelab.and_then(|h| h.env_settings("monitoring").ok().flatten());
    if owner.is_none() && settings.is_none() {
        return args;
    }
    let unset = |flag: &Option<String>, var: &str, keys: &[&str]| {
        flag.is_none()
            && std::env::var(var).map_or(true, |v| v.trim().is_empty())
            && !keys
                .iter()
                .any(|k| vars.is_some_and(|v| v.get_str(k).ok().flatten().is_some()))
    };
    let mut from_owner = false;
    if unset(
        &args.node,
        pve_ssh::node::ENV_NODE,
        &pve_ssh::node::TFVARS_NODE_KEYS,
    ) {
        args.node = match owner.and_then(|o| o.node.clone()) {
            Some(node) => {
                from_owner = true;
                Some(node)
            }
            None => settings.as_ref().and_then(|s| {
                s.monitoring
                    .as_ref()
                    .and_then(|m| m.node.clone())
                    .or(s.default_node.clone())
            }),
        };
    }
    if unset(
        &args.host,
        pve_ssh::node::ENV_HOST,
        &pve_ssh::node::TFVARS_ENDPOINT_KEYS,
    ) {
        let env_host = if from_owner {
            owner.and_then(|o| o.ssh_host.clone())
        } else {
            // A node named otherwise is reached at the endpoint of the environment whose node it is.
            let of_node = args.node.as_deref().and_then(|node| {
                let fleet = pve_common::fleet::Fleet::discover(homelab?).ok()?;
                fleet.on_node(node).find_map(|e| e.ssh_host.clone())
            });
            of_node.or_else(|| settings.as_ref().and_then(|s| s.ssh_host.clone()))
        };
        args.host = env_host.or_else(|| args.node.clone());
    }
    args
}

/// The mode the flags ask for (the replaced script's default: restore the newest backup).
fn mode_of(args: &cli::Args) -> Result<Mode, UsageError> {
    let mode = if let Some(name) = &args.mode {
        match name.as_str() {
            "restore" => Mode::FromBackup { volid: None },
            "rebuild" => Mode::FromTerraform,
            "auto" => Mode::Auto,
            other => {
                return Err(UsageError(pve_common::tr!(
                    "rebuild_monitoring.invalid_mode",
                    mode = other
                )));
            }
        }
    } else if let Some(volid) = &args.from_backup {
        Mode::FromBackup {
            volid: volid.clone(),
        }
    } else if args.from_terraform {
        Mode::FromTerraform
    } else if args.verify_only {
        Mode::VerifyOnly
    } else {
        Mode::FromBackup { volid: None }
    };
    if let Some(v) = args.from_backup.clone().flatten()
        && let Err(e) = pve_common::pve::Volid::parse(&v)
    {
        return Err(UsageError(format!(
            "--from-backup {v:?}: give a backup volume id (storage:backup/vzdump-qemu-...): {e}"
        )));
    }
    Ok(mode)
}

/// `--storage`, `--target` and `--env`, which need nothing else to be checked.
fn check_names(args: &cli::Args) -> Result<(), UsageError> {
    if let Err(e) = pve_common::pve::validate_storage_id(&args.storage) {
        return Err(UsageError(format!("--storage: {e}")));
    }
    if !args.target.starts_with("module.") || args.target.len() <= "module.".len() {
        return Err(UsageError(format!(
            "--target {:?}: give a module address such as module.monitoring_stack",
            args.target
        )));
    }
    // Checked in every mode: Auto may fall back to Terraform in `<root>/<env>`, and `../etc` must
    // never become a folder to run in.
    pve_common::environments::validate_name(&args.env)
        .map_err(|e| UsageError(format!("--env: {e}")))
}

/// A string variable of the variable file, if there is one.
fn tfvar(vars: Option<&pve_common::tfvars::TfVars>, key: &str) -> Option<String> {
    vars.and_then(|v| v.get_str(key).ok().flatten())
        .map(str::to_owned)
}

/// The four URLs: each flag, else its variable, else `http://<monitoring host>:<port>`.
fn urls_of(
    args: &cli::Args,
    vars: Option<&pve_common::tfvars::TfVars>,
    host: Option<&String>,
) -> Result<Urls, UsageError> {
    let pick = |flag: &Option<String>,
                key: &str,
                port: u16,
                name: &str|
     -> Result<String, UsageError> {
        let url = flag
            .clone()
            .or_else(|| tfvar(vars, key))
            .or_else(|| host.map(|h| format!("http://{h}:{port}")))
            .ok_or_else(|| {
                UsageError(format!(
                    "no URL for {name}: give --{}, or {key} (or monitoring_host) in terraform.tfvars",
                    key.replace('_', "-")
                ))
            })?;
        check_url(&format!("--{}", key.replace('_', "-")), &url)
    };
    Ok(Urls {
        prometheus: pick(&args.prometheus_url, "prometheus_url", 9090, "Prometheus")?,
        alertmanager: pick(
            &args.alertmanager_url,
            "alertmanager_url",
            9093,
            "Alertmanager",
        )?,
        grafana: pick(&args.grafana_url, "grafana_url", 3000, "Grafana")?,
        node_exporter: pick(
            &args.node_exporter_url,
            "node_exporter_url",
            9100,
            "node_exporter",
        )?,
    })
}

/// The monitoring VM's id: `--vmid`, else `monitoring_vmid`, else the homelab's monitoring block.
fn vmid_of(
    args: &cli::Args,
    vars: Option<&pve_common::tfvars::TfVars>,
    homelab_monitoring: Option<&pve_common::homelab::Monitoring>,
) -> Result<Option<u32>, UsageError> {
    let vmid = args
        .vmid
        .or_else(|| {
            vars.and_then(|v| v.get_u64("monitoring_vmid").ok().flatten())
                .and_then(|n| u32::try_from(n).ok())
        })
        .or_else(|| homelab_monitoring.and_then(|m| m.vmid));
    if let Some(v) = vmid
        && !(100..=999_999_999).contains(&v)
    {
        return Err(UsageError(format!(
            "--vmid {v}: Proxmox VM ids are 100 to 999999999"
        )));
    }
    Ok(vmid)
}

/// How to reach the node: needed (and then an error when unknown) by the modes that look for a backup,
/// unless `--dry-run` contacts nothing.
fn node_access(
    args: &cli::Args,
    mode: &Mode,
    vars: Option<&pve_common::tfvars::TfVars>,
    homelab: Option<&pve_common::homelab::Homelab>,
    vmid: Option<u32>,
) -> Result<Option<NodeAccess>, UsageError> {
    // --dry-run contacts nothing: what it cannot know it shows as a placeholder.
    let needs_node = matches!(mode, Mode::Auto | Mode::FromBackup { .. })
        && args.common.mode() != pve_common::runner::Mode::DryRun;
    // The node is the one of the environment that owns the VM (asked only when nothing else names it).
    let node_named = args.node.node.is_some()
        || std::env::var(pve_ssh::node::ENV_NODE).is_ok_and(|v| !v.trim().is_empty())
        || pve_ssh::node::TFVARS_NODE_KEYS
            .iter()
            .any(|k| vars.is_some_and(|v| v.get_str(k).ok().flatten().is_some()));
    let owner = if matches!(mode, Mode::Auto | Mode::FromBackup { .. }) && !node_named {
        owning_env(
            homelab,
            vmid,
            args.common.mode() == pve_common::runner::Mode::DryRun,
        )
    } else {
        None
    };
    let node_args = homelab_node_args(&args.node, vars, homelab, owner.as_ref());
    let access = match pve_ssh::node::resolve(&node_args, vars) {
        Ok(mut a) => {
            a.apply_host_key_env();
            Some(a)
        }
        Err(NodeError::NoHost) if !needs_node => None,
        Err(e) if needs_node => {
            return Err(UsageError(format!(
                "{}: {e}",
                if *mode == Mode::Auto {
                    "no mode given, so a backup of the monitoring VM is looked for on the node \
                     (or pass --from-terraform or --verify-only)"
                } else {
                    "--from-backup"
                }
            )));
        }
        Err(_) => None,
    };
    if needs_node && vmid.is_none() {
        return Err(UsageError(format!(
            "{} needs the monitoring VM id: --vmid N, or monitoring_vmid in terraform.tfvars",
            if *mode == Mode::Auto {
                "no mode given: looking for a backup"
            } else {
                "--from-backup"
            }
        )));
    }
    Ok(access)
}

/// The monitoring VM over SSH for `docker ps`: `--vm-host`, else the homelab's `monitoring.vm.ip`.
fn vm_access(
    args: &cli::Args,
    homelab_monitoring: Option<&pve_common::homelab::Monitoring>,
) -> Result<Option<NodeAccess>, UsageError> {
    let vm_host = args
        .vm_host
        .clone()
        .or_else(|| homelab_monitoring.and_then(|m| m.vm_ip.clone()));
    match vm_host {
        None => Ok(None),
        Some(host)
            if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) =>
        {
            Err(UsageError(format!("--vm-host: invalid host {host:?}")))
        }
        Some(host) => {
            // The scripts log in as root on the VM, with the same SSH settings as on the node.
            let mut vm = NodeAccess {
                host,
                node: None,
                user: Some("root".to_owned()),
                port: None,
                ssh_config: args.node.ssh_config.clone(),
                identity: args.node.identity.clone(),
                known_hosts: args.node.known_hosts.clone(),
                accept_new_host_key: args.node.accept_new_host_key,
            };
            vm.apply_host_key_env();
            Ok(Some(vm))
        }
    }
}

impl Config {
    /// Validates the command line; a problem is a [`UsageError`].
    pub fn from_args(args: &cli::Args) -> Result<Config, UsageError> {
        let mode = mode_of(args)?;
        check_names(args)?;
        let homelab = args.common.homelab().ok();
        // The shims run from any folder: the environments are the homelab's, not the cwd's.
        let root = args.environments.root_in(homelab.as_ref());
        let env_dir = if matches!(mode, Mode::FromTerraform) {
            pve_common::environments::resolve(&root, &args.env)
                .map_err(|e| UsageError(e.to_string()))?
        } else {
            root.join(&args.env)
        };
        let root_tfvars = match (&args.environments.root, &homelab) {
            (None, Some(h)) => h.root_tfvars(),
            _ => root.join("../terraform.tfvars"),
        };
        let tfvars = args
            .tfvars
            .clone()
            .or_else(|| root_tfvars.is_file().then_some(root_tfvars));
        let vars = match &tfvars {
            Some(file) => Some(
                pve_common::tfvars::parse_tfvars_file(file)
                    .map_err(|e| UsageError(e.to_string()))?,
            ),
            None => None,
        };
        // The homelab's `monitoring = { vm = { ip } }` block of the monitoring environment, when the
        // homelab is found.
        let homelab_monitoring = homelab.as_ref().and_then(|h| h.monitoring().ok().flatten());
        let host = tfvar(vars.as_ref(), "monitoring_host")
            .or_else(|| homelab_monitoring.as_ref().and_then(|m| m.vm_ip.clone()));
        let urls = urls_of(args, vars.as_ref(), host.as_ref())?;
        let vmid = vmid_of(args, vars.as_ref(), homelab_monitoring.as_ref())?;
        let access = node_access(args, &mode, vars.as_ref(), homelab.as_ref(), vmid)?;
        let vm_access = vm_access(args, homelab_monitoring.as_ref())?;
        if args.deadline.is_zero() {
            return Err(UsageError("--deadline must be above 0".to_owned()));
        }
        Ok(Config {
            mode,
            vmid,
            max_age: args.max_age,
            access,
            storage: args.storage.clone(),
            env: args.env.clone(),
            env_dir,
            root,
            target: args.target.clone(),
            tfvars,
            terraform_bin: args.environments.terraform_bin.clone(),
            urls,
            rule_groups: if args.rule_group.is_empty() {
                DEFAULT_RULE_GROUPS
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            } else {
                args.rule_group.clone()
            },
            deadline: args.deadline,
            yes: args.force.force,
            dry_run: args.common.dry_run || args.common.preview,
            offline: args.common.mode() == pve_common::runner::Mode::DryRun,
            vm_access,
            json: args.common.json,
        })
    }

    /// The checks to run.
    pub fn checks(&self) -> Vec<Check> {
        let c = |kind: Kind, base: &str| Check {
            kind,
            base_url: base.to_owned(),
            rule_groups: self.rule_groups.clone(),
        };
        vec![
            c(Kind::PrometheusReady, &self.urls.prometheus),
            c(Kind::PrometheusTargets, &self.urls.prometheus),
            c(Kind::PrometheusRules, &self.urls.prometheus),
            c(Kind::AlertmanagerReady, &self.urls.alertmanager),
            c(Kind::GrafanaHealth, &self.urls.grafana),
            c(Kind::NodeExporterTextfile, &self.urls.node_exporter),
        ]
    }
}

/// How the stack was brought back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Method {
    /// restore-vm's library restored the monitoring VM.
    FromBackup,
    /// A targeted `terraform apply` of the monitoring module.
    FromTerraform,
    /// Nothing was rebuilt.
    None,
}

/// How the rebuild ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RebuildStatus {
    /// Done.
    Ok,
    /// Dry-run: would be done.
    Planned,
    /// Declined, or the plan changed something outside the target.
    Refused,
    /// It failed.
    Failed,
    /// Not asked for (`--verify-only`).
    Skipped,
}

/// How the whole run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Not decided yet (a printed report always has another).
    #[serde(rename = "")]
    #[strum(serialize = "")]
    Pending,
    /// Rebuilt (or verified) and every check passed.
    Ok,
    /// The rebuild or a check failed.
    Failed,
    /// The rebuild was refused.
    Refused,
    /// Dry-run: the stack would be rebuilt.
    WouldRebuild,
}

/// The rebuild part of the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RebuildReport {
    /// How the stack was brought back.
    pub method: Method,
    /// How that ended.
    pub status: RebuildStatus,
    /// What happened.
    pub detail: String,
    /// `--from-terraform`: the plan's changes within the target.
    pub changes: Vec<String>,
    /// `--from-terraform`: destructive changes outside the target that made the plan unacceptable.
    pub refused_changes: Vec<String>,
    /// Why this method: the mode flag, or the default mode's choice and its reason.
    pub reason: Option<String>,
    /// `from_backup`: what restore-vm did (or would do in a dry-run).
    pub restore: Option<backup::RestoreOutcome>,
}

/// The whole report (`--json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// This tool.
    pub tool: ToolInfo,
    /// The mode asked for.
    pub mode: Mode,
    /// Environment.
    pub env: String,
    /// `--target`.
    pub target: String,
    /// The monitoring VM id, when known.
    pub vmid: Option<u32>,
    /// Nothing was changed.
    pub dry_run: bool,
    /// How the run ended.
    pub outcome: Outcome,
    /// The URLs checked.
    pub urls: Urls,
    /// The rebuild.
    pub rebuild: RebuildReport,
    /// The checks, in a fixed order; empty when not run.
    pub checks: Vec<CheckResult>,
    /// `docker ps` on the monitoring VM; absent when the checks did not run or no VM address is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<containers::ContainersReport>,
}

fn tool_info() -> ToolInfo {
    ToolInfo::new("rebuild-monitoring", env!("CARGO_PKG_VERSION"))
}

/// Runs the tool, with the restore library restore-vm also runs for `--from-backup` (see [`backup`]).
pub fn run(config: &Config) -> Result<Code> {
    let restorer = config.access.clone().map(|access| RestoreVm {
        access,
        storage: config.storage.clone(),
    });
    run_with(config, restorer.as_ref().map(|r| r as &dyn VmRestorer))
}

/// The report before anything ran.
fn new_report(config: &Config) -> Report {
    Report {
        schema: SCHEMA.to_owned(),
        tool: tool_info(),
        mode: config.mode.clone(),
        env: config.env.clone(),
        target: config.target.clone(),
        vmid: config.vmid,
        dry_run: config.dry_run,
        outcome: Outcome::Pending,
        urls: config.urls.clone(),
        rebuild: RebuildReport {
            method: Method::None,
            status: RebuildStatus::Skipped,
            detail: String::new(),
            changes: Vec::new(),
            refused_changes: Vec::new(),
            reason: None,
            restore: None,
        },
        checks: Vec::new(),
        containers: None,
    }
}

/// Brings the stack back as the mode says, recording how in `rebuild`.
fn rebuild_stack(
    config: &Config,
    runner: &Runner,
    restorer: Option<&dyn VmRestorer>,
    rebuild: &mut RebuildReport,
) -> Result<()> {
    match &config.mode {
        Mode::VerifyOnly => {
            rebuild.detail = "--verify-only: nothing rebuilt".to_owned();
            Ok(())
        }
        Mode::FromTerraform => {
            rebuild.reason = Some("--from-terraform".to_owned());
            from_terraform(config, runner, rebuild)
        }
        Mode::FromBackup { volid } => {
            rebuild.reason = Some("--from-backup".to_owned());
            from_backup(config, runner, restorer, volid.clone(), rebuild)
        }
        Mode::Auto => match choose(config, restorer) {
            Err(e) => {
                rebuild.method = Method::FromBackup;
                Err(e)
            }
            Ok(Choice { backup, reason }) => {
                pve_common::info!("{reason}");
                rebuild.reason = Some(reason);
                match backup {
                    Some(volid) => from_backup(config, runner, restorer, Some(volid), rebuild),
                    None => from_terraform(config, runner, rebuild),
                }
            }
        },
    }
}

/// The stack's checks and, with the VM's address, its containers, each logged as it ends.
fn verify_stack(config: &Config, runner: &Runner, report: &mut Report) {
    pve_common::info!(
        "verifying the monitoring stack (each check retried for up to {})",
        humantime::format_duration(config.deadline)
    );
    report.checks = verify::run_all(
        &config.checks(),
        config.deadline,
        &verify::http_get,
        &ThreadSleeper,
    );
    for c in &report.checks {
        if c.ok {
            pve_common::success!("{:?}: {}", c.name, c.detail.as_deref().unwrap_or(""));
        } else {
            pve_common::error!(
                "{} check {:?} failed after {} attempt(s): {}",
                c.component,
                c.name,
                c.attempts,
                c.error.as_deref().unwrap_or("")
            );
        }
    }
    match &config.vm_access {
        Some(vm) => {
            let found = containers::check(vm, runner);
            match &found.error {
                Some(e) => pve_common::error!("docker ps on {}: {e}", found.host),
                None => {
                    for c in &found.containers {
                        let status = c.status.as_deref().unwrap_or("");
                        if c.ok {
                            pve_common::success!("container {}: {status}", c.name);
                        } else if c.container.is_none() {
                            pve_common::error!("container {}: missing on {}", c.name, found.host);
                        } else {
                            pve_common::error!("container {}: not up ({status})", c.name);
                        }
                    }
                }
            }
            report.containers = Some(found);
        }
        None => pve_common::warn!(
            "no monitoring VM address (monitoring.vm.ip of the monitoring environment, or --vm-host): \
             its containers were not checked with docker ps"
        ),
    }
}

/// Runs the tool with `restorer` for `--from-backup` and the default mode (`None`: no node configured).
pub fn run_with(config: &Config, restorer: Option<&dyn VmRestorer>) -> Result<Code> {
    if config.offline {
        return dry_run(config);
    }
    let runner = Runner::new(config.dry_run);
    let mut report = new_report(config);
    let rebuilt = rebuild_stack(config, &runner, restorer, &mut report.rebuild);
    if let Err(e) = rebuilt {
        if report.rebuild.status != RebuildStatus::Refused {
            report.rebuild.status = RebuildStatus::Failed;
        }
        report.rebuild.detail = format!("{e:#}");
        pve_common::error!("{e:#}");
        report.outcome = if report.rebuild.status == RebuildStatus::Refused {
            Outcome::Refused
        } else {
            Outcome::Failed
        };
        print_report(config, &report)?;
        return Ok(Code::Failure);
    }
    if config.dry_run && config.mode != Mode::VerifyOnly {
        pve_common::info!("dry-run: the stack would be verified after the rebuild");
        report.outcome = Outcome::WouldRebuild;
        print_report(config, &report)?;
        return Ok(Code::Success);
    }
    verify_stack(config, &runner, &mut report);
    let failed =
        report.checks.iter().any(|c| !c.ok) || report.containers.as_ref().is_some_and(|c| !c.ok);
    report.outcome = if failed { Outcome::Failed } else { Outcome::Ok };
    print_report(config, &report)?;
    Ok(if failed { Code::Failure } else { Code::Success })
}

/// `--dry-run`: every command the run would make, on `[DRY-RUN]` lines, then the summary; nothing is
/// contacted or changed.
fn dry_run(config: &Config) -> Result<Code> {
    let dry = |line: String| {
        pve_common::log::emit(
            pve_common::log::Level::DryRun,
            format_args!("[DRY-RUN] {line}"),
        );
    };
    let vmid = config.vmid.map_or_else(
        || pve_common::runner::placeholder("vmid"),
        |v| v.to_string(),
    );
    let host = config.access.as_ref().map_or_else(
        || pve_common::runner::placeholder("node"),
        |a| a.host.clone(),
    );
    let node = config
        .access
        .as_ref()
        .and_then(|a| a.node.clone())
        .unwrap_or_else(|| pve_common::runner::placeholder("node"));
    let list = format!(
        "ssh root@{host} pvesh get /nodes/{node}/storage/<storage>/content --content backup --vmid {vmid}"
    );
    let mode = match &config.mode {
        Mode::FromBackup { volid } => {
            let volid = volid
                .clone()
                .unwrap_or_else(|| pve_common::runner::placeholder("newest backup"));
            dry(format!("restore-vm {vmid} --node {node} (backup {volid})"));
            dry(list);
            dry(format!("ssh root@{host} qmrestore {volid} {vmid} --force"));
            dry(format!("ssh root@{host} qm start {vmid}"));
            "restore"
        }
        Mode::FromTerraform => {
            dry(format!(
                "terraform -chdir={} apply -target={} -auto-approve",
                config.env_dir.display(),
                config.target
            ));
            "rebuild"
        }
        Mode::Auto => {
            dry(list);
            "auto"
        }
        Mode::VerifyOnly => "verify-only",
    };
    // The URLs a live run fetches: readiness (stricter than the script's `/-/healthy`), then what proves
    // the stack works.
    for check in config.checks() {
        dry(format!("GET {}", check.url()));
    }
    let ip = config.vm_access.as_ref().map_or_else(
        || pve_common::runner::placeholder("monitoring.vm.ip"),
        |a| a.host.clone(),
    );
    dry(format!(
        "ssh root@{ip} docker ps --all --format '{}'",
        containers::FORMAT
    ));
    if config.json {
        return Ok(Code::Success);
    }
    let summary = pve_common::tr!("rebuild_monitoring.summary");
    let text = format!(
        "\n{summary}\n{}\n  Mode: {mode}\n  {}\n",
        "=".repeat(summary.len()),
        pve_common::tr!("common.dry_run_note")
    );
    pve_common::output::write_stdout(&text)?;
    Ok(Code::Success)
}

/// The default mode's decision: restore `backup`, or (None) apply Terraform; and why.
struct Choice {
    backup: Option<String>,
    reason: String,
}

fn choose(config: &Config, restorer: Option<&dyn VmRestorer>) -> Result<Choice> {
    let (Some(vmid), Some(restorer)) = (config.vmid, restorer) else {
        bail!(
            "no mode given and no monitoring VM id or Proxmox node to look for a backup; \
             pass --from-terraform, --from-backup or --verify-only"
        );
    };
    let max_age = humantime::format_duration(config.max_age);
    let newest = restorer
        .newest_backup(vmid)
        .context("no mode given: looking for a recent backup of the monitoring VM")?;
    let Some(b) = newest else {
        return Ok(Choice {
            reason: format!(
                "no mode given: VM {vmid} has no backup on any backup storage: rebuilding from \
                 Terraform (--from-terraform)"
            ),
            backup: None,
        });
    };
    let recent = b.is_recent(config.max_age);
    Ok(Choice {
        reason: format!(
            "no mode given: the newest backup of VM {vmid}, {} ({}), is {} old, {} than --max-age \
             {max_age}: {}",
            b.volid,
            b.date,
            humantime::format_duration(Duration::from_secs(b.age_seconds)),
            if recent { "younger" } else { "older" },
            if recent {
                "restoring from it (--from-backup)"
            } else {
                "rebuilding from Terraform (--from-terraform)"
            }
        ),
        backup: recent.then_some(b.volid),
    })
}

fn from_backup(
    config: &Config,
    runner: &Runner,
    restorer: Option<&dyn VmRestorer>,
    volid: Option<String>,
    out: &mut RebuildReport,
) -> Result<()> {
    out.method = Method::FromBackup;
    let (Some(vmid), Some(restorer)) = (config.vmid, restorer) else {
        bail!(
            "--from-backup needs the monitoring VM id (--vmid N, or monitoring_vmid in terraform.tfvars) \
             and the Proxmox node (--host, PVE_HOST, or proxmox_endpoint in terraform.tfvars)"
        );
    };
    let outcome = restorer
        .restore(
            &RestoreRequest {
                vmid,
                volid,
                max_age: config.max_age,
                yes: config.yes,
            },
            runner,
        )
        .inspect_err(|e| {
            let declined = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ConfirmError>(),
                    Some(ConfirmError::NoTerminal { .. } | ConfirmError::Declined { .. })
                )
            });
            if declined {
                out.status = RebuildStatus::Refused;
            }
        })?;
    out.status = if config.dry_run {
        RebuildStatus::Planned
    } else {
        RebuildStatus::Ok
    };
    out.detail = if config.dry_run {
        format!(
            "would restore VM {vmid} on node {} from {}{} and start it",
            outcome.node,
            outcome.backup.volid,
            if outcome.overwrite {
                " after a save point of the existing VM"
            } else {
                ""
            }
        )
    } else {
        format!(
            "VM {vmid} on node {} restored from {}{}{}",
            outcome.node,
            outcome.backup.volid,
            match &outcome.save_point {
                Some(sp) => format!(" (save point of the old VM: {sp})"),
                None => String::new(),
            },
            if outcome.started { " and started" } else { "" }
        )
    };
    if config.dry_run {
        pve_common::info!("[dry-run] {}", out.detail);
    } else {
        pve_common::success!("{}", out.detail);
    }
    out.restore = Some(outcome);
    Ok(())
}

fn terraform(
    config: &Config,
    creds: Option<&S3Credentials>,
    args: Vec<String>,
) -> Result<LocalCommand, TerraformError> {
    pve_tf::command(
        config.terraform_bin.as_deref(),
        &config.env_dir,
        creds,
        args,
    )
}

/// S3 credentials for an environment on the S3 backend, as restore-tfstate finds them; none for others.
fn credentials(config: &Config) -> Option<S3Credentials> {
    let Ok(backend) = pve_tf::backend::discover(&config.env_dir, &[], &Default::default()) else {
        return None;
    };
    match pve_tf::backend::s3_credentials(&backend, config.tfvars.as_deref()) {
        Ok(c) => Some(c),
        Err(e) => {
            pve_common::warn!("{e:#}; Terraform gets the S3 credentials from its own environment");
            None
        }
    }
}

fn from_terraform(config: &Config, runner: &Runner, out: &mut RebuildReport) -> Result<()> {
    out.method = Method::FromTerraform;
    let creds = credentials(config);
    let terraform = |args: Vec<String>| terraform(config, creds.as_ref(), args);
    // `init` only fills Terraform's working cache (.terraform); it changes no state and no infrastructure.
    let init: Vec<String> = ["init", "-input=false", "-no-color"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    runner
        .run_checked(Access::ReadOnly, &terraform(init)?)
        .context("terraform init failed")?;
    let plan = TargetedPlan::create(runner, &terraform, &config.target, "monitoring.tfplan")?;
    out.changes = plan.within().iter().map(ToString::to_string).collect();
    let outside = plan.destructive_outside();
    if !outside.is_empty() {
        out.status = RebuildStatus::Refused;
        out.refused_changes = outside.iter().map(ToString::to_string).collect();
        bail!(
            "refused: the plan would destroy or replace resources outside {}: {}; nothing was applied",
            config.target,
            out.refused_changes.join(", ")
        );
    }
    if config.dry_run {
        out.status = RebuildStatus::Planned;
        out.detail = format!(
            "would apply {} change(s) within {}",
            out.changes.len(),
            config.target
        );
        pve_common::info!("[dry-run] {}", out.detail);
        return Ok(());
    }
    // The scripts' prompt: the terminal, else stdin; `o`/`oui`/`y`/`yes`; end of input is no.
    plan.confirm(&config.env, config.yes)
        .inspect_err(|_| out.status = RebuildStatus::Refused)?;
    plan.apply(runner, &terraform)?;
    out.status = RebuildStatus::Ok;
    out.detail = format!(
        "applied {} change(s) within {}",
        out.changes.len(),
        config.target
    );
    pve_common::success!("{}", out.detail);
    Ok(())
}

fn print_report(config: &Config, report: &Report) -> Result<()> {
    output::emit(config.json, report, report_text)?;
    Ok(())
}

/// The report for people: what was done, then the summary.
fn report_text(report: &Report) -> String {
    let mut text = format!(
        "env: {}\nrebuild: {} {}{}\noutcome: {}\n",
        report.env,
        report.rebuild.method,
        report.rebuild.status,
        if report.rebuild.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", report.rebuild.detail)
        },
        report.outcome
    );
    if !report.checks.is_empty() {
        text.push_str("\nCOMPONENT      CHECK                   RESULT  DETAIL\n");

        for c in &report.checks {
            text.push_str(&format!(
                "{:<14} {:<23} {:<7} {}\n",
                c.component,
                c.name.as_str(),
                if c.ok { "ok" } else { "FAILED" },
                c.detail.as_deref().or(c.error.as_deref()).unwrap_or("")
            ));
        }
        if let Some(found) = &report.containers {
            if let Some(e) = &found.error {
                text.push_str(&format!(
                    "{:<14} {:<23} {:<7} {e}\n",
                    "docker", "docker_ps", "FAILED"
                ));
            }
            for c in &found.containers {
                text.push_str(&format!(
                    "{:<14} {:<23} {:<7} {}\n",
                    "docker",
                    c.name,
                    if c.ok { "ok" } else { "FAILED" },
                    c.status.as_deref().unwrap_or("missing")
                ));
            }
        }
    }
    // The replaced script's closing summary, which runbooks look for.
    let summary = pve_common::tr!("rebuild_monitoring.summary");
    let word = |ok: bool| {
        if ok {
            "OK".to_owned()
        } else {
            pve_common::tr!("rebuild_monitoring.failed")
        }
    };
    text.push_str(&format!("\n{summary}\n{}\n", "=".repeat(summary.len())));
    text.push_str(&format!(
        "  {}: {} {}\n",
        pve_common::tr!("rebuild_monitoring.rebuild"),
        report.rebuild.method,
        word(!matches!(
            report.rebuild.status,
            RebuildStatus::Failed | RebuildStatus::Refused
        ))
    ));
    for c in &report.checks {
        text.push_str(&format!("  {}: {}\n", c.component, word(c.ok)));
    }
    if let Some(found) = &report.containers {
        text.push_str(&format!("  docker ps: {}\n", word(found.ok)));
    }
    text.push_str(&format!(
        "  {}: {}\n",
        pve_common::tr!("rebuild_monitoring.result"),
        word(matches!(
            report.outcome,
            Outcome::Ok | Outcome::WouldRebuild
        ))
    ));
    text
}
