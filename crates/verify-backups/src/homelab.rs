//! What verify-backups reads of the homelab (pve-common's [`pve_common::homelab`]): each deployed
//! environment's node (`default_node`, host of `proxmox_endpoint`) and the `minio` block.

use std::path::Path;

use pve_common::fleet::{Fleet, FleetEnv};
use pve_common::homelab::Homelab;
use pve_common::secret::Secret;

/// Where the environments are, under the root.
pub const ENVIRONMENTS: &str = "infrastructure/proxmox/environments";

/// The homelab root from `--homelab`, `PVE_HOMELAB`, or the cwd; `None` when there is none.
pub fn find_root(flag: Option<&Path>) -> Option<Homelab> {
    Homelab::locate(flag).ok()
}

/// The deployed environments under `envs_dir` (the homelab's environments folder, or `--root`), in name
/// order, each with its node, SSH host and state location (pve-common's fleet); an unreadable tfvars makes
/// the fleet empty, with a warning.
pub fn env_nodes(envs_dir: &Path) -> Vec<FleetEnv> {
    match Fleet::discover(&Homelab::at(envs_root(envs_dir))) {
        Ok(fleet) => fleet.envs,
        Err(e) => {
            pve_common::warn!("{e}");
            Vec::new()
        }
    }
}

/// The homelab root a folder of environments belongs to (`<root>/infrastructure/proxmox/environments`).
fn envs_root(envs_dir: &Path) -> &Path {
    envs_dir
        .ancestors()
        .nth(3)
        .filter(|r| r.join(ENVIRONMENTS) == envs_dir)
        .unwrap_or(envs_dir)
}

/// The homelab's MinIO, from the `minio` block of the prod environment, else monitoring.
#[derive(Clone, Debug)]
pub struct Minio {
    /// `http://<ip>:<port>`.
    pub endpoint: String,
    /// Access key (`AWS_ACCESS_KEY_ID` wins over `root_user`).
    pub access_key: Option<Secret>,
    /// Secret key (`AWS_SECRET_ACCESS_KEY` wins over `root_password`).
    pub secret_key: Option<Secret>,
}

/// Reads the `minio` block.
pub fn minio(envs_dir: &Path) -> Option<Minio> {
    let (_, m) = Homelab::at(envs_root(envs_dir)).minio().ok().flatten()?;
    let creds = m.credentials();
    Some(Minio {
        endpoint: m.endpoint(),
        access_key: creds.as_ref().map(|(a, _)| Secret::new(a.clone())),
        secret_key: creds.map(|(_, s)| s),
    })
}
