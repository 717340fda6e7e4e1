//! The homelab root and everything the tools read from it by default.
//!
//! The scripts the tools replace find the homelab from their own location (`<script>/../..`), never from
//! the current directory: the TUI runs them from the user's cwd, the systemd unit from `/opt/pve-home`.
//! The tools find it in this order: `--homelab DIR` (the shims pass their own `../..`), `PVE_HOMELAB`,
//! then the nearest folder at or above the cwd that holds `infrastructure/proxmox/environments`. Every
//! default path derives from that root; a tool's own flags (`--root`, `--tfvars`...) still override.
//!
//! The homelab's variable files are read as typed settings: the root's `default_node`/`pve_node`; each
//! environment's `proxmox_endpoint` (whose host is the SSH host) and `default_node`; the `minio = {...}`
//! block (prod's, else monitoring's) and the `monitoring = {...}` block (monitoring's). SSH host keys are
//! checked against `HOMELAB_KNOWN_HOSTS` (default `~/.ssh/homelab_known_hosts`), and an unknown key is
//! accepted only when `SSH_INIT_MODE=true`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use crate::secret::Secret;
use crate::tfvars::{self, TfVars, TfvarsError};

/// The environment variable naming the homelab root.
pub const ENV_HOMELAB: &str = "PVE_HOMELAB";
/// Where the environments live under the root.
pub const ENVIRONMENTS_DIR: &str = "infrastructure/proxmox/environments";
/// The environments of the homelab, in the order the scripts name them.
pub const KNOWN_ENVIRONMENTS: [&str; 3] = ["prod", "lab", "monitoring"];
/// The known-hosts file variable.
pub const ENV_KNOWN_HOSTS: &str = "HOMELAB_KNOWN_HOSTS";
/// `true` accepts (and records) an unknown host key, as `StrictHostKeyChecking=accept-new`.
pub const ENV_SSH_INIT_MODE: &str = "SSH_INIT_MODE";
/// The MinIO port when the block sets none.
pub const DEFAULT_MINIO_PORT: u16 = 9000;
/// The state object in every `tfstate-<env>` bucket.
pub const STATE_KEY: &str = "terraform.tfstate";
/// The six scripts, by path under the root: what the shims replace.
pub const SCRIPTS: [(&str, &str); 6] = [
    ("check-drift", "scripts/drift/check-drift.sh"),
    ("restore-vm", "scripts/restore/restore-vm.sh"),
    ("restore-tfstate", "scripts/restore/restore-tfstate.sh"),
    ("rebuild-minio", "scripts/restore/rebuild-minio.sh"),
    (
        "rebuild-monitoring",
        "scripts/restore/rebuild-monitoring.sh",
    ),
    ("verify-backups", "scripts/restore/verify-backups.sh"),
];

/// Why the homelab or its settings cannot be used.
#[derive(Debug, Error)]
pub enum HomelabError {
    /// No root given and none found above the cwd.
    #[error(
        "no homelab root: pass --homelab DIR, set PVE_HOMELAB, or run from inside the homelab (a folder holding {ENVIRONMENTS_DIR}); searched from {}",
        cwd.display()
    )]
    NotFound {
        /// Where the search started.
        cwd: PathBuf,
    },
    /// A variable file is unreadable or malformed.
    #[error(transparent)]
    Tfvars(#[from] TfvarsError),
    /// A block has a value of the wrong shape.
    #[error("{}: `{key}` {message}", file.display())]
    Shape {
        /// The file.
        file: PathBuf,
        /// The dotted key (`minio.port`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// How the root was found (said in `-v` output and in error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--homelab DIR`.
    Flag,
    /// `PVE_HOMELAB`.
    Env,
    /// Found above the current directory.
    Cwd,
}

/// A homelab checkout: the root and the paths under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Homelab {
    root: PathBuf,
    source: Source,
}

impl Homelab {
    /// A homelab at `root`, as given (no check that it exists: a dry-run of a fresh machine may name one
    /// that does not yet).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Homelab {
            root: root.into(),
            source: Source::Flag,
        }
    }

    /// Finds the root: `flag`, else `PVE_HOMELAB`, else the nearest folder at or above the cwd holding
    /// `infrastructure/proxmox/environments`.
    pub fn locate(flag: Option<&Path>) -> Result<Self, HomelabError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::locate_with(flag, std::env::var_os(ENV_HOMELAB).map(PathBuf::from), &cwd)
    }

    /// [`Homelab::locate`] with explicit inputs (for tests).
    pub fn locate_with(
        flag: Option<&Path>,
        env: Option<PathBuf>,
        cwd: &Path,
    ) -> Result<Self, HomelabError> {
        if let Some(dir) = flag {
            return Ok(Homelab {
                root: dir.to_owned(),
                source: Source::Flag,
            });
        }
        if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
            return Ok(Homelab {
                root: dir,
                source: Source::Env,
            });
        }
        cwd.ancestors()
            .find(|dir| dir.join(ENVIRONMENTS_DIR).is_dir())
            .map(|dir| Homelab {
                root: dir.to_owned(),
                source: Source::Cwd,
            })
            .ok_or_else(|| HomelabError::NotFound {
                cwd: cwd.to_owned(),
            })
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How the root was found.
    pub fn source(&self) -> Source {
        self.source
    }

    /// `<root>/terraform.tfvars` (restore-vm's default node).
    pub fn root_tfvars(&self) -> PathBuf {
        self.root.join("terraform.tfvars")
    }

    /// `<root>/infrastructure/proxmox/environments`.
    pub fn environments_dir(&self) -> PathBuf {
        self.root.join(ENVIRONMENTS_DIR)
    }

    /// `<environments>/<env>`.
    pub fn env_dir(&self, env: &str) -> PathBuf {
        self.environments_dir().join(env)
    }

    /// `<environments>/<env>/terraform.tfvars` (absent: the environment is not deployed).
    pub fn env_tfvars(&self, env: &str) -> PathBuf {
        self.env_dir(env).join("terraform.tfvars")
    }

    /// `<environments>/<env>/backend.tf`.
    pub fn env_backend(&self, env: &str) -> PathBuf {
        self.env_dir(env).join("backend.tf")
    }

    /// `<root>/scripts`.
    pub fn scripts_dir(&self) -> PathBuf {
        self.root.join("scripts")
    }

    /// The script a tool replaces (`restore-vm` -> `<root>/scripts/restore/restore-vm.sh`).
    pub fn script(&self, tool: &str) -> Option<PathBuf> {
        SCRIPTS
            .iter()
            .find(|(t, _)| *t == tool)
            .map(|(_, p)| self.root.join(p))
    }

    /// The root's settings; an absent `<root>/terraform.tfvars` gives empty settings.
    pub fn root_settings(&self) -> Result<RootSettings, HomelabError> {
        let path = self.root_tfvars();
        if !path.is_file() {
            return Ok(RootSettings::default());
        }
        let vars = tfvars::parse_tfvars_file(&path)?;
        Ok(RootSettings {
            default_node: node_name(&vars)?,
        })
    }

    /// One environment's settings; `None` when it has no terraform.tfvars (not deployed).
    pub fn env_settings(&self, env: &str) -> Result<Option<EnvSettings>, HomelabError> {
        let path = self.env_tfvars(env);
        if !path.is_file() {
            return Ok(None);
        }
        let vars = tfvars::parse_tfvars_file(&path)?;
        EnvSettings::from_vars(env, &vars).map(Some)
    }

    /// The MinIO block: prod's, else monitoring's, with the environment it came from.
    pub fn minio(&self) -> Result<Option<(String, Minio)>, HomelabError> {
        for env in ["prod", "monitoring"] {
            if let Some(minio) = self.env_settings(env)?.and_then(|s| s.minio) {
                return Ok(Some((env.to_owned(), minio)));
            }
        }
        Ok(None)
    }

    /// The monitoring block of the monitoring environment, its null node replaced by `default_node`.
    pub fn monitoring(&self) -> Result<Option<Monitoring>, HomelabError> {
        Ok(self.env_settings("monitoring")?.and_then(|s| s.monitoring))
    }
}

/// What `<root>/terraform.tfvars` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootSettings {
    /// `default_node`, else `pve_node`.
    pub default_node: Option<String>,
}

/// What one environment's terraform.tfvars says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvSettings {
    /// The environment.
    pub env: String,
    /// The file read.
    pub file: PathBuf,
    /// `default_node`, else `pve_node`.
    pub default_node: Option<String>,
    /// `proxmox_endpoint` as written (`https://<ip>:8006`).
    pub proxmox_endpoint: Option<String>,
    /// The host of `proxmox_endpoint`: where SSH goes.
    pub ssh_host: Option<String>,
    /// The `minio = {...}` block.
    pub minio: Option<Minio>,
    /// The `monitoring = {...}` block.
    pub monitoring: Option<Monitoring>,
}

/// The `minio = { ip, port, root_user, root_password }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minio {
    /// `ip`.
    pub ip: String,
    /// `port` (default 9000).
    pub port: u16,
    /// `root_user`.
    pub root_user: Option<String>,
    /// `root_password`, never shown.
    pub root_password: Option<Secret>,
}

impl Minio {
    /// `http://<ip>:<port>`.
    pub fn endpoint(&self) -> String {
        if self.ip.contains(':') {
            format!("http://[{}]:{}", self.ip, self.port)
        } else {
            format!("http://{}:{}", self.ip, self.port)
        }
    }

    /// `http://<ip>:<port>/minio/health/live`.
    pub fn health_url(&self) -> String {
        format!("{}/minio/health/live", self.endpoint())
    }

    /// The state bucket of an environment: `tfstate-<env>`.
    pub fn bucket(env: &str) -> String {
        format!("tfstate-{env}")
    }

    /// The S3 credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` when both are set, else the block's
    /// `root_user`/`root_password`; `None` when neither gives a pair.
    pub fn credentials(&self) -> Option<(String, Secret)> {
        self.credentials_with(|name| std::env::var(name).ok())
    }

    /// [`Minio::credentials`] with an explicit environment (for tests).
    pub fn credentials_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<(String, Secret)> {
        let non_empty = |name| env(name).filter(|v: &String| !v.is_empty());
        if let (Some(id), Some(key)) = (
            non_empty("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Some((id, Secret::new(key)));
        }
        match (&self.root_user, &self.root_password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            _ => None,
        }
    }
}

/// The `monitoring = { node, vm = { ip, ... } }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monitoring {
    /// `node`; a null node is the environment's `default_node` (already substituted here).
    pub node: Option<String>,
    /// `vm.ip`.
    pub vm_ip: Option<String>,
    /// `vm.vmid` (or `vm.id`), when set.
    pub vmid: Option<u32>,
    /// The whole `vm` map, for what a tool needs beyond the above.
    pub vm: serde_json::Map<String, Value>,
}

fn node_name(vars: &TfVars) -> Result<Option<String>, HomelabError> {
    for key in ["default_node", "pve_node"] {
        if let Some(v) = vars.get_str(key)? {
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
}

fn shape(file: &Path, key: &str, message: &str) -> HomelabError {
    HomelabError::Shape {
        file: file.to_owned(),
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn opt_str(
    map: &serde_json::Map<String, Value>,
    file: &Path,
    key: &str,
    field: &str,
) -> Result<Option<String>, HomelabError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(shape(file, &format!("{key}.{field}"), "must be a string")),
    }
}

impl EnvSettings {
    /// Reads the settings of `env` from its parsed variables.
    pub fn from_vars(env: &str, vars: &TfVars) -> Result<Self, HomelabError> {
        let file = vars.files().last().cloned().unwrap_or_default();
        let default_node = node_name(vars)?;
        let proxmox_endpoint = vars.get_str("proxmox_endpoint")?.map(str::to_owned);
        let ssh_host = proxmox_endpoint
            .as_deref()
            .and_then(crate::pve::endpoint_host);
        let minio = match vars.get_map("minio")? {
            None => None,
            Some(map) => {
                let ip = opt_str(map, &file, "minio", "ip")?
                    .ok_or_else(|| shape(&file, "minio.ip", "is required"))?;
                let port = match map.get("port") {
                    None | Some(Value::Null) => DEFAULT_MINIO_PORT,
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| shape(&file, "minio.port", "must be a port (1-65535)"))?,
                    Some(Value::String(s)) => s
                        .parse::<u16>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| shape(&file, "minio.port", "must be a port (1-65535)"))?,
                    Some(_) => return Err(shape(&file, "minio.port", "must be a number")),
                };
                Some(Minio {
                    ip,
                    port,
                    root_user: opt_str(map, &file, "minio", "root_user")?,
                    root_password: opt_str(map, &file, "minio", "root_password")?.map(Secret::new),
                })
            }
        };
        let monitoring = match vars.get_map("monitoring")? {
            None => None,
            Some(map) => {
                let node = opt_str(map, &file, "monitoring", "node")?.or(default_node.clone());
                let vm = match map.get("vm") {
                    None | Some(Value::Null) => serde_json::Map::new(),
                    Some(Value::Object(vm)) => vm.clone(),
                    Some(_) => return Err(shape(&file, "monitoring.vm", "must be a map")),
                };
                let vm_ip = opt_str(&vm, &file, "monitoring.vm", "ip")?;
                let vmid = ["vmid", "id", "vm_id"]
                    .iter()
                    .find_map(|k| match vm.get(*k) {
                        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                        Some(Value::String(s)) => s.parse().ok(),
                        _ => None,
                    });
                Some(Monitoring {
                    node,
                    vm_ip,
                    vmid,
                    vm,
                })
            }
        };
        Ok(EnvSettings {
            env: env.to_owned(),
            file,
            default_node,
            proxmox_endpoint,
            ssh_host,
            minio,
            monitoring,
        })
    }
}

/// Host-key policy for the homelab's nodes: the known-hosts file and whether an unknown key is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKeyPolicy {
    /// `HOMELAB_KNOWN_HOSTS`, default `~/.ssh/homelab_known_hosts`.
    pub known_hosts: PathBuf,
    /// `SSH_INIT_MODE=true`: accept and record a key never seen (a changed key is always refused).
    pub accept_new: bool,
}

impl HostKeyPolicy {
    /// From the environment.
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`HostKeyPolicy::from_env`] with an explicit environment (for tests).
    pub fn from_env_with(env: impl Fn(&str) -> Option<String>) -> Self {
        let known_hosts = env(ENV_KNOWN_HOSTS)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                env("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/root"))
                    .join(".ssh/homelab_known_hosts")
            });
        HostKeyPolicy {
            known_hosts,
            accept_new: env(ENV_SSH_INIT_MODE).as_deref() == Some("true"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn flag_then_env_then_walk_up() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home lab");
        std::fs::create_dir_all(root.join(ENVIRONMENTS_DIR).join("prod")).unwrap();
        let deep = root.join(ENVIRONMENTS_DIR).join("prod");
        let found = Homelab::locate_with(None, None, &deep).unwrap();
        assert_eq!(
            (found.root(), found.source()),
            (root.as_path(), Source::Cwd)
        );
        let env = Homelab::locate_with(None, Some("/srv/h".into()), &deep).unwrap();
        assert_eq!(
            (env.root(), env.source()),
            (Path::new("/srv/h"), Source::Env)
        );
        let flag =
            Homelab::locate_with(Some(Path::new("/opt/x")), Some("/srv/h".into()), &deep).unwrap();
        assert_eq!(
            (flag.root(), flag.source()),
            (Path::new("/opt/x"), Source::Flag)
        );
        let empty_env = Homelab::locate_with(None, Some("".into()), &deep).unwrap();
        assert_eq!(empty_env.source(), Source::Cwd);
        let err = Homelab::locate_with(None, None, dir.path()).unwrap_err();
        assert!(matches!(err, HomelabError::NotFound { .. }), "{err}");
    }

    #[test]
    fn paths_derive_from_the_root() {
        let h = Homelab::at("/opt/pve-home");
        assert_eq!(h.root_tfvars(), Path::new("/opt/pve-home/terraform.tfvars"));
        assert_eq!(
            h.env_tfvars("lab"),
            Path::new("/opt/pve-home/infrastructure/proxmox/environments/lab/terraform.tfvars")
        );
        assert_eq!(
            h.env_backend("prod"),
            Path::new("/opt/pve-home/infrastructure/proxmox/environments/prod/backend.tf")
        );
        assert_eq!(h.scripts_dir(), Path::new("/opt/pve-home/scripts"));
        assert_eq!(
            h.script("verify-backups").unwrap(),
            Path::new("/opt/pve-home/scripts/restore/verify-backups.sh")
        );
        assert_eq!(
            h.script("check-drift").unwrap(),
            Path::new("/opt/pve-home/scripts/drift/check-drift.sh")
        );
    }

    #[test]
    fn reads_the_homelab_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let h = Homelab::at(dir.path());
        write(&h.root_tfvars(), "pve_node = \"pve-root\"\n");
        write(
            &h.env_tfvars("prod"),
            r#"
proxmox_endpoint = "https://192.0.2.10:8006"
default_node = "pve-prod"
minio = {
  ip            = "192.0.2.20"
  root_user     = "minioadmin"
  root_password = "Min10-Sup3r-Secret"
}
"#,
        );
        write(
            &h.env_tfvars("monitoring"),
            r#"
proxmox_endpoint = "https://192.0.2.30:8006/"
default_node = "pve-mon"
minio = { ip = "192.0.2.99", port = 9100 }
monitoring = {
  node = null
  vm = { ip = "192.0.2.31", vmid = 9001, cores = 2 }
}
"#,
        );
        assert_eq!(
            h.root_settings().unwrap().default_node.as_deref(),
            Some("pve-root")
        );
        let prod = h.env_settings("prod").unwrap().unwrap();
        assert_eq!(prod.ssh_host.as_deref(), Some("192.0.2.10"));
        assert_eq!(prod.default_node.as_deref(), Some("pve-prod"));
        assert!(h.env_settings("lab").unwrap().is_none(), "lab not deployed");
        let (from, minio) = h.minio().unwrap().unwrap();
        assert_eq!(from, "prod", "prod's block first");
        assert_eq!(minio.port, 9000, "default port");
        assert_eq!(minio.endpoint(), "http://192.0.2.20:9000");
        assert_eq!(
            minio.health_url(),
            "http://192.0.2.20:9000/minio/health/live"
        );
        assert_eq!(Minio::bucket("lab"), "tfstate-lab");
        let debug = format!("{prod:?}");
        assert!(!debug.contains("Min10-Sup3r-Secret"), "{debug}");
        let (user, key) = minio.credentials_with(|_| None).unwrap();
        assert_eq!(
            (user.as_str(), key.expose()),
            ("minioadmin", "Min10-Sup3r-Secret")
        );
        let (user, key) = minio
            .credentials_with(|n| match n {
                "AWS_ACCESS_KEY_ID" => Some("envid".into()),
                "AWS_SECRET_ACCESS_KEY" => Some("envkey-123".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            (user.as_str(), key.expose()),
            ("envid", "envkey-123"),
            "env wins"
        );
        let mon = h.monitoring().unwrap().unwrap();
        assert_eq!(
            mon.node.as_deref(),
            Some("pve-mon"),
            "null node = default_node"
        );
        assert_eq!(mon.vm_ip.as_deref(), Some("192.0.2.31"));
        assert_eq!(mon.vmid, Some(9001));
        let mon_minio = h
            .env_settings("monitoring")
            .unwrap()
            .unwrap()
            .minio
            .unwrap();
        assert_eq!(mon_minio.endpoint(), "http://192.0.2.99:9100");
        std::fs::remove_file(h.env_tfvars("prod")).unwrap();
        assert_eq!(
            h.minio().unwrap().unwrap().0,
            "monitoring",
            "else monitoring's"
        );
    }

    #[test]
    fn bad_shapes_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let h = Homelab::at(dir.path());
        write(
            &h.env_tfvars("prod"),
            "minio = { ip = \"192.0.2.1\", port = 70000 }\n",
        );
        let err = h.env_settings("prod").unwrap_err().to_string();
        assert!(err.contains("`minio.port` must be a port"), "{err}");
        write(&h.env_tfvars("prod"), "minio = { port = 9000 }\n");
        let err = h.env_settings("prod").unwrap_err().to_string();
        assert!(err.contains("`minio.ip` is required"), "{err}");
    }

    #[test]
    fn host_key_policy() {
        let p = HostKeyPolicy::from_env_with(|n| (n == "HOME").then(|| "/home/op".into()));
        assert_eq!(
            p.known_hosts,
            Path::new("/home/op/.ssh/homelab_known_hosts")
        );
        assert!(!p.accept_new);
        let p = HostKeyPolicy::from_env_with(|n| match n {
            ENV_KNOWN_HOSTS => Some("/tmp/kh".into()),
            ENV_SSH_INIT_MODE => Some("true".into()),
            _ => None,
        });
        assert_eq!(
            (p.known_hosts.as_path(), p.accept_new),
            (Path::new("/tmp/kh"), true)
        );
    }
}
