//! Component 6: the Terraform state of every environment in S3. Discovery and validation are
//! restore-tfstate's (`backend::discover`, `state::State::parse`); this module adds what a verification
//! wants on top: non-empty `resources`, bucket versioning, and the age of the newest version.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use pve_common::s3::{S3Client, S3Location, Versioning};
use pve_tf::backend::{self, Backend, Overrides};
use pve_tf::state::StateInfo;

use crate::report::{Component, EnvResult, Status};

/// An environment and its S3 backend, for the state and `--full` checks.
pub struct Env {
    /// Name.
    pub name: String,
    /// Folder.
    pub dir: std::path::PathBuf,
    /// Backend, or why there is none.
    pub backend: Result<Backend, String>,
}

/// The homelab's own settings when an environment has no active `backend "s3"` block (the homelab keeps
/// it commented out): bucket `tfstate-<env>`, key `terraform.tfstate`, at the `minio` block's address.
fn from_minio_block(name: &str, minio: &crate::homelab::Minio) -> Backend {
    Backend {
        bucket: format!("tfstate-{name}"),
        key: "terraform.tfstate".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: minio.endpoint.clone(),
        path_style: true,
        use_lockfile: false,
        dynamodb_table: None,
        access_key: minio.access_key.clone(),
        secret_key: minio.secret_key.clone(),
        config_files: Vec::new(),
        from_minio_block: true,
    }
}

/// Finds the deployed environments under `root` (those with a terraform.tfvars, as the homelab deploys
/// them; every folder when none has one) and their state location: the `backend "s3"` block, else the
/// homelab's `minio` block.
pub fn discover(root: &Path) -> Result<Vec<Env>> {
    let mut names = pve_common::environments::discover(root)?;
    if names
        .iter()
        .any(|n| root.join(n).join("terraform.tfvars").is_file())
    {
        names.retain(|n| root.join(n).join("terraform.tfvars").is_file());
    }
    let minio = crate::homelab::minio(root);
    Ok(names
        .into_iter()
        .map(|name| {
            let dir = root.join(&name);
            let backend = match backend::discover(&dir, &[], &Overrides::default()) {
                Ok(b) => Ok(b),
                Err(e) => match &minio {
                    Some(m) => Ok(from_minio_block(&name, m)),
                    None => Err(format!(
                        "{}: no S3 state location: no active `backend \"s3\"` block and no `minio` block \
                         in the prod or monitoring terraform.tfvars ({e:#})",
                        dir.display()
                    )
                    .replace("; restore-tfstate needs an S3 backend", "")),
                },
            };
            Env { name, dir, backend }
        })
        .collect())
}

/// A client for the backend's bucket.
pub fn client(backend: &Backend, tfvars: Option<&Path>) -> Result<S3Client> {
    let creds = pve_tf::backend::s3_credentials(backend, tfvars)?;
    let location = S3Location {
        endpoint: backend.endpoint.clone(),
        region: backend.region.clone(),
        bucket: backend.bucket.clone(),
        path_style: backend.path_style,
    };
    Ok(S3Client::new(location, &creds, Duration::from_secs(15))?)
}

/// Parses a state, noting its size and whether it is JSON at all for the report. Neither check builds a
/// tree of the document: a state of hundreds of MiB costs its bytes, once.
fn parse_noting(bytes: &[u8], result: &mut EnvResult) -> Result<StateInfo> {
    result.size_bytes = Some(bytes.len() as u64);
    result.json_valid = Some(serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok());
    StateInfo::parse(bytes)
}

/// Checks one environment, adding its lines to `comp`.
pub fn check_env(
    env: &Env,
    tfvars: Option<&Path>,
    max_age: Option<Duration>,
    now: i64,
    comp: &mut Component,
) -> EnvResult {
    let mut result = EnvResult {
        env: env.name.clone(),
        state_url: None,
        serial: None,
        resources: None,
        versioning: None,
        age_seconds: None,
        status: Status::Ok,
        bucket: None,
        size_bytes: None,
        versions: None,
        bucket_exists: None,
        json_valid: None,
    };
    let subject = env.name.clone();
    let mut add = |result: &mut EnvResult, check: &str, status: Status, reason: String| {
        result.status = result.status.worst(status);
        comp.add(&subject, check, status, reason);
    };
    let backend = match &env.backend {
        Ok(b) => b,
        Err(e) => {
            add(&mut result, "backend", Status::Fail, e.clone());
            return result;
        }
    };
    let url = format!("s3://{}/{}", backend.bucket, backend.key);
    result.state_url = Some(url.clone());
    result.bucket = Some(backend.bucket.clone());
    let s3 = match client(backend, tfvars) {
        Ok(c) => c,
        Err(e) => {
            add(&mut result, "s3", Status::Fail, format!("{e:#}"));
            return result;
        }
    };
    match s3.bucket_exists() {
        Ok(true) => result.bucket_exists = Some(true),
        Ok(false) => {
            result.bucket_exists = Some(false);
            add(
                &mut result,
                "bucket",
                Status::Fail,
                format!("bucket {} does not exist", backend.bucket),
            );
            return result;
        }
        Err(e) => {
            // Unreachable: every other request would fail the same way.
            add(
                &mut result,
                "s3",
                Status::Fail,
                format!("cannot check bucket {}: {e}", backend.bucket),
            );
            return result;
        }
    }
    // The object: exists, non-empty, valid JSON, version 4, lineage, serial, resources.
    match s3.get(&backend.key, None) {
        Err(e) if e.is_not_found() => {
            add(
                &mut result,
                "object",
                Status::Fail,
                format!("{url} does not exist"),
            );
        }
        Err(e) => add(
            &mut result,
            "object",
            Status::Fail,
            format!("cannot read {url}: {e}"),
        ),
        Ok(bytes) if bytes.is_empty() => {
            add(
                &mut result,
                "object",
                Status::Fail,
                format!("{url} is empty (0 bytes)"),
            );
        }
        Ok(bytes) => match parse_noting(&bytes, &mut result) {
            Err(e) => add(&mut result, "state", Status::Fail, format!("{e:#}")),
            Ok(state) => {
                let summary = state.summary();
                result.serial = Some(summary.serial);
                result.resources = Some(summary.resources);
                if summary.resources == 0 {
                    add(
                        &mut result,
                        "state",
                        Status::Fail,
                        format!(
                            "the state (serial {}) has no resources: an apply against it would recreate everything",
                            summary.serial
                        ),
                    );
                } else {
                    add(
                        &mut result,
                        "state",
                        Status::Ok,
                        format!(
                            "{url}: version 4, serial {}, lineage {}, {} resources",
                            summary.serial, summary.lineage, summary.resources
                        ),
                    );
                }
            }
        },
    }
    match s3.versioning() {
        Ok(Versioning::Enabled) => {
            result.versioning = Some("enabled".into());
            add(
                &mut result,
                "versioning",
                Status::Ok,
                format!("bucket {} keeps versions", backend.bucket),
            );
        }
        Ok(v) => {
            let name = if v == Versioning::Suspended {
                "suspended"
            } else {
                "off"
            };
            result.versioning = Some(name.into());
            add(
                &mut result,
                "versioning",
                Status::Fail,
                format!(
                    "bucket {} has versioning {name}: a bad write replaces the state for good",
                    backend.bucket
                ),
            );
        }
        Err(e) => add(
            &mut result,
            "versioning",
            Status::Fail,
            format!(
                "cannot read the versioning of bucket {}: {e}",
                backend.bucket
            ),
        ),
    }
    match s3.list_versions(&backend.key) {
        Ok(versions) => {
            result.versions = Some(
                versions
                    .iter()
                    .filter(|v| v.key == backend.key && !v.delete_marker)
                    .count(),
            );
            let newest = versions
                .iter()
                .filter(|v| v.key == backend.key && !v.delete_marker)
                .filter_map(|v| v.last_modified.parse::<jiff::Timestamp>().ok())
                .max();
            if let Some(t) = newest {
                let age = now.saturating_sub(t.as_second());
                result.age_seconds = Some(age);
                if let Some(max) = max_age {
                    let limit = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
                    let text = humantime::format_duration(Duration::from_secs(age.max(0) as u64));
                    if age > limit {
                        add(
                            &mut result,
                            "age",
                            Status::Fail,
                            format!(
                                "newest state version is {text} old (limit {})",
                                humantime::format_duration(max)
                            ),
                        );
                    } else {
                        add(
                            &mut result,
                            "age",
                            Status::Ok,
                            format!("newest state version is {text} old"),
                        );
                    }
                }
            }
        }
        Err(e) if max_age.is_some() => add(
            &mut result,
            "age",
            Status::Fail,
            format!("cannot list the versions of {url}: {e}"),
        ),
        Err(_) => {}
    }
    result
}
