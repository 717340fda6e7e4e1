//! Component 6: the Terraform state of every environment in S3. Discovery and validation are
//! restore-tfstate's (`backend::discover`, `state::State::parse`); this module adds what a verification
//! wants on top: non-empty `resources`, bucket versioning, and the age of the newest version.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use pve_common::s3::{S3Client, Versioning};
use pve_tf::backend::{self, Backend, Overrides};
use pve_tf::state::StateInfo;

use crate::report::{CheckName, Component, EnvResult, Status};

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
    Ok(S3Client::new(
        backend.location(),
        &creds,
        Duration::from_secs(15),
    )?)
}

/// Parses a state, noting its size and whether it is JSON at all for the report. Neither check builds a
/// tree of the document: a state of hundreds of MiB costs its bytes, once.
fn parse_noting(bytes: &[u8], result: &mut EnvResult) -> Result<StateInfo> {
    result.size_bytes = Some(bytes.len() as u64);
    result.json_valid = Some(serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok());
    StateInfo::parse(bytes)
}

/// Checks one environment, adding its lines to `comp`: backend, bucket, object, versioning, age.
pub fn check_env(
    env: &Env,
    tfvars: Option<&Path>,
    max_age: Option<Duration>,
    now: i64,
    comp: &mut Component,
) -> EnvResult {
    let mut c = EnvCheck {
        result: EnvResult {
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
        },
        comp,
    };
    let backend = match &env.backend {
        Ok(b) => b,
        Err(e) => {
            c.add(CheckName::Backend, Status::Fail, e.clone());
            return c.result;
        }
    };
    let url = backend.url();
    c.result.state_url = Some(url.clone());
    c.result.bucket = Some(backend.bucket.clone());
    let s3 = match client(backend, tfvars) {
        Ok(s3) => s3,
        Err(e) => {
            c.add(CheckName::S3, Status::Fail, format!("{e:#}"));
            return c.result;
        }
    };
    if c.bucket(&s3, backend) {
        c.object(&s3, backend, &url);
        c.versioning(&s3, backend);
        c.age(&s3, backend, &url, max_age, now);
    }
    c.result
}

/// One environment under check: its result, and the component its lines go to.
struct EnvCheck<'c> {
    result: EnvResult,
    comp: &'c mut Component,
}

impl EnvCheck<'_> {
    fn add(&mut self, check: CheckName, status: Status, reason: String) {
        self.result.status = self.result.status.worst(status);
        self.comp.add(&self.result.env, check, status, reason);
    }

    /// Whether the bucket exists; when it does not, or S3 does not answer, nothing else is asked.
    fn bucket(&mut self, s3: &S3Client, backend: &Backend) -> bool {
        match s3.bucket_exists() {
            Ok(true) => {
                self.result.bucket_exists = Some(true);
                true
            }
            Ok(false) => {
                self.result.bucket_exists = Some(false);
                self.add(
                    CheckName::Bucket,
                    Status::Fail,
                    format!("bucket {} does not exist", backend.bucket),
                );
                false
            }
            Err(e) => {
                // Unreachable: every other request would fail the same way.
                self.add(
                    CheckName::S3,
                    Status::Fail,
                    format!("cannot check bucket {}: {e}", backend.bucket),
                );
                false
            }
        }
    }

    /// The object: exists, non-empty, valid JSON, version 4, lineage, serial, resources.
    fn object(&mut self, s3: &S3Client, backend: &Backend, url: &str) {
        let bytes = match pve_tf::fleet::read_state(s3, backend) {
            Ok(Some((_, bytes))) => bytes,
            Ok(None) => {
                return self.add(
                    CheckName::Object,
                    Status::Fail,
                    format!("{url} does not exist"),
                );
            }
            Err(e) => return self.add(CheckName::Object, Status::Fail, e),
        };
        if bytes.is_empty() {
            return self.add(
                CheckName::Object,
                Status::Fail,
                format!("{url} is empty (0 bytes)"),
            );
        }
        let summary = match parse_noting(&bytes, &mut self.result) {
            Ok(state) => state.summary(),
            Err(e) => return self.add(CheckName::State, Status::Fail, format!("{e:#}")),
        };
        self.result.serial = Some(summary.serial);
        self.result.resources = Some(summary.resources);
        if summary.resources == 0 {
            self.add(
                CheckName::State,
                Status::Fail,
                format!(
                    "the state (serial {}) has no resources: an apply against it would recreate everything",
                    summary.serial
                ),
            );
        } else {
            self.add(
                CheckName::State,
                Status::Ok,
                format!(
                    "{url}: version 4, serial {}, lineage {}, {} resources",
                    summary.serial, summary.lineage, summary.resources
                ),
            );
        }
    }

    fn versioning(&mut self, s3: &S3Client, backend: &Backend) {
        match s3.versioning() {
            Ok(Versioning::Enabled) => {
                self.result.versioning = Some("enabled".into());
                self.add(
                    CheckName::Versioning,
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
                self.result.versioning = Some(name.into());
                self.add(
                    CheckName::Versioning,
                    Status::Fail,
                    format!(
                        "bucket {} has versioning {name}: a bad write replaces the state for good",
                        backend.bucket
                    ),
                );
            }
            Err(e) => self.add(
                CheckName::Versioning,
                Status::Fail,
                format!(
                    "cannot read the versioning of bucket {}: {e}",
                    backend.bucket
                ),
            ),
        }
    }

    /// The number of versions, and the age of the newest against `max_age`.
    fn age(
        &mut self,
        s3: &S3Client,
        backend: &Backend,
        url: &str,
        max_age: Option<Duration>,
        now: i64,
    ) {
        let versions = match s3.list_versions(&backend.key) {
            Ok(versions) => versions,
            Err(e) => {
                if max_age.is_some() {
                    self.add(
                        CheckName::Age,
                        Status::Fail,
                        format!("cannot list the versions of {url}: {e}"),
                    );
                }
                return;
            }
        };
        let kept: Vec<_> = versions
            .iter()
            .filter(|v| v.key == backend.key && !v.delete_marker)
            .collect();
        self.result.versions = Some(kept.len());
        let Some(newest) = kept
            .iter()
            .filter_map(|v| v.last_modified.parse::<jiff::Timestamp>().ok())
            .max()
        else {
            return;
        };
        let age = now.saturating_sub(newest.as_second());
        self.result.age_seconds = Some(age);
        let Some(max) = max_age else {
            return;
        };
        let limit = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
        let text = humantime::format_duration(Duration::from_secs(age.max(0) as u64));
        if age > limit {
            self.add(
                CheckName::Age,
                Status::Fail,
                format!(
                    "newest state version is {text} old (limit {})",
                    humantime::format_duration(max)
                ),
            );
        } else {
            self.add(
                CheckName::Age,
                Status::Ok,
                format!("newest state version is {text} old"),
            );
        }
    }
}
