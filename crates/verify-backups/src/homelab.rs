//! The homelab as the replaced scripts see it: the root (`--homelab`, `PVE_HOMELAB`, else the first folder
//! up from the working directory holding `infrastructure/proxmox/environments`), and what each
//! environment's terraform.tfvars says about its node (`default_node`/`pve_node`, `proxmox_endpoint`) and
//! MinIO (the `minio = { ip, port, root_user, root_password }` block).

use std::path::{Path, PathBuf};

use pve_common::secret::Secret;
use pve_common::tfvars::parse_tfvars_file;

/// Where the environments are, under the root.
pub const ENVIRONMENTS: &str = "infrastructure/proxmox/environments";

/// The homelab root: the flag (or `PVE_HOMELAB`, which clap folds into it), else walking up from the cwd.
pub fn find_root(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_owned());
    }
    let mut dir = std::env::current_dir().ok()?;
    loop {
        if dir.join(ENVIRONMENTS).is_dir() {
            return Some(dir);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// One deployed environment (one with a terraform.tfvars) and its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvNode {
    /// Environment name.
    pub env: String,
    /// `default_node` (or `pve_node`).
    pub node: Option<String>,
    /// Host of `proxmox_endpoint`.
    pub host: Option<String>,
}

/// The deployed environments under `envs_dir`, in name order; unreadable tfvars are skipped with a warning.
pub fn env_nodes(envs_dir: &Path) -> Vec<EnvNode> {
    let Ok(names) = pve_common::environments::discover(envs_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for env in names {
        let file = envs_dir.join(&env).join("terraform.tfvars");
        if !file.is_file() {
            continue;
        }
        let vars = match parse_tfvars_file(&file) {
            Ok(v) => v,
            Err(e) => {
                pve_common::warn!("{}: {e}", file.display());
                continue;
            }
        };
        let text = |k: &str| vars.get_str(k).ok().flatten().map(str::to_owned);
        out.push(EnvNode {
            node: text("default_node").or_else(|| text("pve_node")),
            host: text("proxmox_endpoint").and_then(|e| pve_common::node::endpoint_host(&e)),
            env,
        });
    }
    out
}

/// The homelab's MinIO, from the `minio` block of the prod environment, else monitoring.
#[derive(Clone, Debug)]
pub struct Minio {
    /// `http://<ip>:<port>`.
    pub endpoint: String,
    /// `root_user`.
    pub access_key: Option<Secret>,
    /// `root_password`.
    pub secret_key: Option<Secret>,
}

/// Reads the `minio` block (prod first, then monitoring).
pub fn minio(envs_dir: &Path) -> Option<Minio> {
    for env in ["prod", "monitoring"] {
        let file = envs_dir.join(env).join("terraform.tfvars");
        let Ok(vars) = parse_tfvars_file(&file) else {
            continue;
        };
        let Ok(Some(block)) = vars.get_map("minio") else {
            continue;
        };
        let Some(ip) = block.get("ip").and_then(|v| v.as_str()) else {
            continue;
        };
        let port = block.get("port").and_then(|v| v.as_u64()).unwrap_or(9000);
        let text = |k: &str| block.get(k).and_then(|v| v.as_str()).map(Secret::new);
        return Some(Minio {
            endpoint: format!("http://{ip}:{port}"),
            access_key: text("root_user"),
            secret_key: text("root_password"),
        });
    }
    None
}

/// Whether output is French: `--lang`, else `PVE_TOOLS_LANG`, else `LC_ALL` > `LC_MESSAGES` > `LANG`.
pub fn french(flag: Option<&str>) -> bool {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let lang = flag.map(str::to_owned).or_else(|| {
        ["PVE_TOOLS_LANG", "LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| from_env(k))
    });
    lang.is_some_and(|l| l.starts_with("fr"))
}
