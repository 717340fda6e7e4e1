//! The guests each environment of the fleet manages, wherever its state is: the local
//! `terraform.tfstate` (pve-common's [`pve_common::fleet`] reads it), else the S3 object its backend block
//! or the homelab's `minio` block names ([`crate::backend::discover`]). restore-vm with no `--node` and
//! rebuild-monitoring find here which environment owns a guest. rebuild-minio does not: MinIO may be what
//! is down, so it reads only the local states, through [`pve_common::fleet`].

use std::time::Duration;

use pve_common::fleet::{Fleet, FleetEnv, ManagedGuest, StateSource};
use pve_common::s3::S3Client;

use crate::backend::{self, Backend, Overrides};

/// How long one state download may take.
const S3_TIMEOUT: Duration = Duration::from_secs(15);

/// The state of an environment that has no local one: `Ok(None)` when its bucket holds none yet; `Err`
/// with the whole cause chain when it cannot be read.
pub fn remote_state(env: &FleetEnv) -> Result<Option<(String, Vec<u8>)>, String> {
    let backend = backend::discover(&env.dir, &[], &Overrides::default())
        .map_err(|e| format!("no S3 location for its state: {e:#}"))?;
    let tfvars = env.dir.join("terraform.tfvars");
    let creds = backend::s3_credentials(&backend, Some(&tfvars)).map_err(|e| format!("{e:#}"))?;
    let client = S3Client::new(backend.location(), &creds, S3_TIMEOUT)
        .map_err(|e| format!("{}: {e}", backend.url()))?;
    read_state(&client, &backend)
}

/// The state object `backend` names, read through `client` (a client for its bucket): its URL and bytes;
/// `Ok(None)` when the bucket holds none yet; `Err` names the URL and why it cannot be read.
pub fn read_state(
    client: &S3Client,
    backend: &Backend,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let url = backend.url();
    match client.get(&backend.key, None) {
        Ok(bytes) => Ok(Some((url, bytes))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(format!("cannot read {url}: {e}")),
    }
}

/// What one environment's state says it manages.
#[derive(Debug)]
struct EnvGuests<'f> {
    /// The environment.
    env: &'f FleetEnv,
    /// Its guests, or why its state could not be read (with the environment's name).
    guests: Result<Vec<ManagedGuest>, String>,
}

/// The guests of every environment of `fleet`. With `local_only` (a dry-run: nothing is contacted), a
/// state kept in S3 is not read and the environment manages nothing known.
fn managed_guests(fleet: &Fleet, local_only: bool) -> Vec<EnvGuests<'_>> {
    fleet
        .envs
        .iter()
        .map(|env| EnvGuests {
            env,
            guests: if local_only && env.state == StateSource::Remote {
                Ok(Vec::new())
            } else {
                env.managed_guests(remote_state)
                    .map_err(|e| format!("{:#}", anyhow::Error::new(e)))
            },
        })
        .collect()
}

/// The environments whose state manages `vmid`, and the warnings about states that could not be read.
fn owners_of<'f>(all: &[EnvGuests<'f>], vmid: u32) -> (Vec<&'f FleetEnv>, Vec<String>) {
    let mut owners = Vec::new();
    let mut warnings = Vec::new();
    for e in all {
        match &e.guests {
            Ok(list) if list.iter().any(|g| g.vmid == vmid) => owners.push(e.env),
            Ok(_) => {}
            Err(why) => warnings.push(why.clone()),
        }
    }
    (owners, warnings)
}

/// The environments of `fleet` whose state manages `vmid`: the local state, else the one in S3 (with
/// `local_only`, a dry-run that contacts nothing, a state kept in S3 is not read and manages nothing
/// known). A state that cannot be read is warned about, followed by `unread`: what the caller makes of
/// it.
pub fn owners<'f>(
    fleet: &'f Fleet,
    vmid: u32,
    local_only: bool,
    unread: &str,
) -> Vec<&'f FleetEnv> {
    let all = managed_guests(fleet, local_only);
    let (owners, problems) = owners_of(&all, vmid);
    for p in problems {
        pve_common::warn!("{p}; {unread}");
    }
    owners
}
