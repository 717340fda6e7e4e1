//! The validated configuration: every usage problem (exit 64) is found here, before any connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pve_common::ssh::{SshOptions, SshTarget};

use crate::cli::Args;

/// A usage problem (exit 64).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node, if any.
    pub target: Option<SshTarget>,
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

impl Config {
    /// Validates the command line.
    pub fn from_args(args: &Args) -> Result<Config, UsageError> {
        let target = match &args.host {
            None => None,
            Some(h) => {
                let mut t = SshTarget::parse(h)
                    .ok_or_else(|| UsageError(format!("--host `{h}` is not [user@]host[:port]")))?;
                if let Some(p) = args.ssh_port {
                    t.port = Some(p);
                }
                if let Some(u) = &args.ssh_user {
                    t.user = Some(u.clone());
                }
                Some(t)
            }
        };
        // The list of guests and backups comes from the node: without it these flags would check nothing
        // and still end "OK", which an operator could take for proof.
        if target.is_none() && (args.deep || args.record || !args.local_dir.is_empty()) {
            return Err(UsageError(
                "--deep, --local-dir and --record check the node's backups: give --host (or PVE_HOST), \
                 which lists the guests and backups to check"
                    .into(),
            ));
        }
        let mut local = LocalDirs::default();
        for item in &args.local_dir {
            match item.split_once('=') {
                Some((s, d)) if !s.is_empty() && !s.contains('/') => {
                    local.by_storage.insert(s.to_owned(), PathBuf::from(d));
                }
                _ => {
                    if local.any.is_some() {
                        return Err(UsageError(
                            "--local-dir DIR (for every storage) given twice; use STORAGE=DIR"
                                .into(),
                        ));
                    }
                    local.any = Some(PathBuf::from(item));
                }
            }
        }
        for dir in local.any.iter().chain(local.by_storage.values()) {
            if !dir.is_dir() {
                return Err(UsageError(format!(
                    "--local-dir {}: no such directory",
                    dir.display()
                )));
            }
        }
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
        if let Some(root) = &args.root
            && !root.is_dir()
        {
            return Err(UsageError(format!(
                "--root {}: no such directory",
                root.display()
            )));
        }
        if let Some(dir) = &args.textfile_dir
            && !dir.is_dir()
        {
            return Err(UsageError(format!(
                "--textfile-dir {}: no such directory",
                dir.display()
            )));
        }
        let ssh = SshOptions {
            config_file: args.ssh_config.clone(),
            known_hosts: args.known_hosts.clone(),
            identity_files: args.identity.clone(),
            ..SshOptions::default()
        };
        // A guest id Proxmox cannot have would select nothing and the run would end "OK".
        for id in &args.vmid {
            pve_common::pve::parse_vmid(&id.to_string())
                .map_err(|e| UsageError(format!("--vmid: {e}")))?;
        }
        let jobs = args.jobs.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        });
        Ok(Config {
            target,
            ssh,
            max_age: args.max_age,
            all_backups: args.all_backups,
            include_templates: args.include_templates,
            vmids: args.vmid.clone(),
            deep: args.deep,
            local,
            dump_dirs,
            jobs,
            record: args.record,
            manifest: args.manifest.clone(),
            root: args.root.clone(),
            tfvars: args.tfvars.clone(),
            state_max_age: args.state_max_age,
            full: args.full,
            terraform_bin: args.terraform_bin.clone(),
            services: Services {
                minio: url("minio-url", &args.minio_url)?,
                prometheus: url("prometheus-url", &args.prometheus_url)?,
                grafana: url("grafana-url", &args.grafana_url)?,
                alertmanager: url("alertmanager-url", &args.alertmanager_url)?,
            },
            textfile_dir: args.textfile_dir.clone(),
            dry_run: args.common.dry_run,
            json: args.common.json,
        })
    }
}
