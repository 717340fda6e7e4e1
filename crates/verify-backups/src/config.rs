//! The validated configuration: every usage problem (exit 64) is found here, before any connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pve_common::exit::UsageError;
use pve_ssh::{SshOptions, SshTarget};

use crate::cli::Args;

/// Where to read archives from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalDirs {
    /// `DIR` for every storage.
    pub any: Option<PathBuf>,
    /// `STORAGE=DIR`.
    pub by_storage: BTreeMap<String, PathBuf>,
}

impl LocalDirs {
    /// Whether local mode is on.
    pub fn is_set(&self) -> bool {
        self.any.is_some() || !self.by_storage.is_empty()
    }

    /// The folder for `storage`.
    pub fn for_storage(&self, storage: &str) -> Option<&PathBuf> {
        self.by_storage.get(storage).or(self.any.as_ref())
    }
}

/// --full service URLs.
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// MinIO.
    pub minio: Option<String>,
    /// Prometheus.
    pub prometheus: Option<String>,
    /// Grafana.
    pub grafana: Option<String>,
    /// Alertmanager.
    pub alertmanager: Option<String>,
}

/// One node whose backups are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCheck {
    /// The Proxmox node name, when known (only its guests are checked).
    pub node: Option<String>,
    /// Where to SSH to.
    pub target: SshTarget,
    /// The environments whose node this is (their states say which guests must have backups here).
    pub envs: Vec<String>,
}

impl NodeCheck {
    /// The node name, else the host.
    pub fn label(&self) -> &str {
        self.node.as_deref().unwrap_or(&self.target.host)
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The nodes to check (none: the vzdump part is skipped).
    pub targets: Vec<NodeCheck>,
    /// The deployed environments (after `--env`), whose states say which guests must have backups.
    pub fleet: Vec<pve_common::fleet::FleetEnv>,
    /// `--env`: only these environments (empty: all).
    pub envs: Vec<String>,
    /// Why some node is not checked (printed as warnings).
    pub node_warnings: Vec<String>,
    /// The backup storage checked (`None`: every backup storage).
    pub storage: Option<String>,
    /// A newest backup smaller than this is suspiciously small.
    pub min_size: u64,
    /// French output.
    pub french: bool,
    /// SSH settings.
    pub ssh: SshOptions,
    /// Freshness limit.
    pub max_age: Duration,
    /// Check every backup.
    pub all_backups: bool,
    /// Count templates.
    pub include_templates: bool,
    /// Only these VMIDs (empty: all).
    pub vmids: Vec<u32>,
    /// --deep.
    pub deep: bool,
    /// --local-dir.
    pub local: LocalDirs,
    /// --dump-dir.
    pub dump_dirs: BTreeMap<String, String>,
    /// Parallel archive checks.
    pub jobs: usize,
    /// --record.
    pub record: bool,
    /// Manifest file.
    pub manifest: PathBuf,
    /// Terraform environments root.
    pub root: Option<PathBuf>,
    /// tfvars with MinIO credentials.
    pub tfvars: Option<PathBuf>,
    /// State age limit.
    pub state_max_age: Option<Duration>,
    /// --full.
    pub full: bool,
    /// Terraform binary flag.
    pub terraform_bin: Option<PathBuf>,
    /// Service URLs.
    pub services: Services,
    /// Metrics folder.
    pub textfile_dir: Option<PathBuf>,
    /// --dry-run.
    pub dry_run: bool,
    /// --json.
    pub json: bool,
    /// --details.
    pub details: bool,
}

fn url(flag: &str, value: &Option<String>) -> Result<Option<String>, UsageError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
            Ok(Some(v.trim_end_matches('/').to_owned()))
        }
        Some(v) => Err(UsageError(format!(
            "--{flag} `{v}` is not an http:// or https:// URL"
        ))),
    }
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The deployed environments with their nodes, only those `--env` names when it is given.
fn env_nodes(
    args: &Args,
    envs_dir: Option<&std::path::Path>,
) -> Result<Vec<pve_common::fleet::FleetEnv>, UsageError> {
    let mut env_nodes = envs_dir.map(crate::homelab::env_nodes).unwrap_or_default();
    if !args.env.is_empty() {
        for name in &args.env {
            pve_common::environments::validate_name(name)
                .map_err(|e| UsageError(format!("--env: {e}")))?;
            if !env_nodes.iter().any(|e| &e.env == name) {
                return Err(UsageError(format!(
                    "--env {name}: no deployed environment of that name (known: {})",
                    env_nodes
                        .iter()
                        .map(|e| e.env.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        env_nodes.retain(|e| args.env.contains(&e.env));
    }
    Ok(env_nodes)
}

/// The nodes to check and the warnings about those that cannot be: `--node` (host from the environment
/// whose `default_node` it is, else `--host`, else the name), `--host` alone (every node of that host),
/// else every environment's `default_node` at its `proxmox_endpoint`.
fn node_checks(
    args: &Args,
    envs_dir: Option<&std::path::Path>,
    french: bool,
) -> Result<(Vec<NodeCheck>, Vec<String>), UsageError> {
    let w = &crate::words::words(french);
    let env_nodes = env_nodes(args, envs_dir)?;
    let host_flag = args
        .node
        .host
        .clone()
        .or_else(|| env_value(pve_ssh::node::ENV_HOST));
    let user = args
        .node
        .user
        .clone()
        .or_else(|| env_value(pve_ssh::node::ENV_USER));
    let make = |host: &str, node: Option<String>, default_root: bool| {
        let mut t = SshTarget::parse(host)
            .ok_or_else(|| UsageError(format!("--host `{host}` is not [user@]host[:port]")))?;
        if let Some(p) = args.node.port {
            t.port = Some(p);
        }
        if let Some(u) = &user {
            t.user = Some(u.clone());
        } else if default_root && t.user.is_none() {
            // The homelab's scripts log in as root@<host>.
            t.user = Some("root".to_owned());
        }
        Ok(NodeCheck {
            node,
            target: t,
            envs: Vec::new(),
        })
    };
    if let Some(node) = &args.node.node {
        pve_common::pve::validate_node_name(node)
            .map_err(|e| UsageError(format!("--node: {e}")))?;
        let of_node: Vec<_> = env_nodes
            .iter()
            .filter(|e| e.node.as_deref() == Some(node.as_str()))
            .collect();
        let from_env = of_node.iter().find_map(|e| e.ssh_host.clone());
        let host = host_flag
            .clone()
            .or(from_env)
            .unwrap_or_else(|| node.clone());
        let mut check = make(&host, Some(node.clone()), host_flag.is_none())?;
        check.envs = of_node.iter().map(|e| e.env.clone()).collect();
        return Ok((vec![check], Vec::new()));
    }
    if let Some(host) = &host_flag {
        return Ok((vec![make(host, None, false)?], Vec::new()));
    }
    let mut checks: Vec<NodeCheck> = Vec::new();
    let mut warnings = Vec::new();
    for e in &env_nodes {
        match (&e.node, &e.ssh_host) {
            (Some(node), Some(host)) => {
                let mut c = make(host, Some(node.clone()), true)?;
                match checks
                    .iter_mut()
                    .find(|k| k.node == c.node && k.target == c.target)
                {
                    Some(k) => k.envs.push(e.env.clone()),
                    None => {
                        c.envs.push(e.env.clone());
                        checks.push(c);
                    }
                }
            }
            (Some(node), None) => warnings.push(format!(
                "{} {node} ({}/terraform.tfvars: proxmox_endpoint): {}",
                w.node_without_host, e.env, w.checked_on
            )),
            (None, _) => {}
        }
    }
    if checks.is_empty() && warnings.is_empty() {
        warnings.push(w.no_node.clone());
    }
    Ok((checks, warnings))
}

/// `--vmid`: a guest id Proxmox cannot have would select nothing and the run would end "OK".
fn vmids(args: &Args, french: bool) -> Result<Vec<u32>, UsageError> {
    let w = &crate::words::words(french);
    let mut vmids = Vec::new();
    for id in &args.vmid {
        let n: u32 = id
            .parse()
            .map_err(|_| UsageError(format!("{}: {id}", w.vmid_invalid)))?;
        pve_common::pve::parse_vmid(&n.to_string())
            .map_err(|e| UsageError(format!("--vmid: {e}")))?;
        vmids.push(n);
    }
    Ok(vmids)
}

/// A folder a flag names must exist.
fn existing_dir(flag: &str, dir: &std::path::Path) -> Result<(), UsageError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{flag} {}: no such directory",
            dir.display()
        )))
    }
}

/// `--local-dir DIR` (every storage) and `--local-dir STORAGE=DIR`, each an existing folder.
fn local_dirs(args: &Args) -> Result<LocalDirs, UsageError> {
    let mut local = LocalDirs::default();
    for item in &args.local_dir {
        match item.split_once('=') {
            Some((s, d)) if !s.is_empty() && !s.contains('/') => {
                local.by_storage.insert(s.to_owned(), PathBuf::from(d));
            }
            _ => {
                if local.any.is_some() {
                    return Err(UsageError(
                        "--local-dir DIR (for every storage) given twice; use STORAGE=DIR".into(),
                    ));
                }
                local.any = Some(PathBuf::from(item));
            }
        }
    }
    for dir in local.any.iter().chain(local.by_storage.values()) {
        existing_dir("--local-dir", dir)?;
    }
    Ok(local)
}

/// `--dump-dir STORAGE=DIR`: where a storage keeps its archives on the node.
fn dump_dirs(args: &Args) -> Result<BTreeMap<String, String>, UsageError> {
    let mut dump_dirs = BTreeMap::new();
    for item in &args.dump_dir {
        let Some((s, d)) = item
            .split_once('=')
            .filter(|(s, d)| !s.is_empty() && !d.is_empty())
        else {
            return Err(UsageError(format!(
                "--dump-dir `{item}` is not STORAGE=DIR"
            )));
        };
        dump_dirs.insert(s.to_owned(), d.to_owned());
    }
    Ok(dump_dirs)
}

/// How to reach the nodes: the homelab's known hosts when the nodes come from the homelab (or
/// HOMELAB_KNOWN_HOSTS says so).
fn ssh_options(args: &Args, in_homelab: bool) -> SshOptions {
    let policy = pve_common::homelab::HostKeyPolicy::from_env();
    let known_hosts = args.node.known_hosts.clone().or_else(|| {
        (in_homelab || env_value("HOMELAB_KNOWN_HOSTS").is_some())
            .then(|| policy.known_hosts.clone())
    });
    SshOptions {
        config_file: args.node.ssh_config.clone(),
        known_hosts,
        identity_files: args.node.identity.iter().cloned().collect(),
        accept_new_host_key: args.node.accept_new_host_key || policy.accept_new,
        ..SshOptions::default()
    }
}

impl Services {
    /// `--minio-url`, `--prometheus-url`, `--grafana-url`, `--alertmanager-url`.
    fn from_args(args: &Args) -> Result<Services, UsageError> {
        Ok(Services {
            minio: url("minio-url", &args.minio_url)?,
            prometheus: url("prometheus-url", &args.prometheus_url)?,
            grafana: url("grafana-url", &args.grafana_url)?,
            alertmanager: url("alertmanager-url", &args.alertmanager_url)?,
        })
    }
}

impl Config {
    /// Validates the command line.
    pub fn from_args(args: &Args) -> Result<Config, UsageError> {
        let french = pve_common::i18n::detect(args.common.lang).is_french();
        let vmids = vmids(args, french)?;
        let homelab = crate::homelab::find_root(args.common.homelab.as_deref());
        if let Some(h) = &homelab {
            existing_dir("--homelab", h.root())?;
        }
        let envs_dir = args.root.clone().or_else(|| {
            homelab
                .as_ref()
                .map(|h| h.environments_dir())
                .filter(|d| d.is_dir())
        });
        // `--local-dir` with nothing naming a node: the folder is checked on its own (an offsite or USB
        // copy), contacting no node and no S3.
        let offline = !args.local_dir.is_empty()
            && args.node.node.is_none()
            && args.node.host.is_none()
            && env_value(pve_ssh::node::ENV_HOST).is_none()
            && args.env.is_empty();
        let (targets, node_warnings) = if offline {
            (Vec::new(), Vec::new())
        } else {
            node_checks(args, envs_dir.as_deref(), french)?
        };
        let envs_dir = if offline { args.root.clone() } else { envs_dir };
        let fleet: Vec<_> = envs_dir
            .as_deref()
            .map(crate::homelab::env_nodes)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| args.env.is_empty() || args.env.contains(&e.env))
            .collect();
        // The list of guests and backups comes from the node: without it these flags would check nothing
        // and still end "OK", which an operator could take for proof.
        if targets.is_empty() && !offline && (args.deep || args.record) {
            return Err(UsageError(
                "--deep and --record check the node's backups: give --node or --host (or PVE_HOST), which \
                 lists the guests and backups to check, or --local-dir DIR to check the archives of a \
                 folder on their own"
                    .into(),
            ));
        }
        let local = local_dirs(args)?;
        let dump_dirs = dump_dirs(args)?;
        if let Some(root) = &args.root {
            existing_dir("--root", root)?;
        }
        if let Some(dir) = &args.textfile_dir {
            existing_dir("--textfile-dir", dir)?;
        }
        let ssh = ssh_options(args, homelab.is_some());
        let jobs = args.jobs.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        });
        Ok(Config {
            targets,
            fleet,
            envs: args.env.clone(),
            node_warnings,
            storage: (!args.all_storages).then(|| args.storage.clone()),
            min_size: args.min_size,
            french,
            ssh,
            max_age: args.max_age,
            all_backups: args.all_backups,
            include_templates: args.include_templates,
            vmids,
            deep: args.deep,
            local,
            dump_dirs,
            jobs,
            record: args.record,
            manifest: args.manifest.clone(),
            root: envs_dir,
            tfvars: args.tfvars.clone(),
            state_max_age: args.state_max_age,
            full: args.full,
            terraform_bin: args.terraform_bin.clone(),
            services: Services::from_args(args)?,
            textfile_dir: args.textfile_dir.clone(),
            dry_run: args.common.dry_run,
            json: args.common.json,
            details: args.details,
        })
    }
}
