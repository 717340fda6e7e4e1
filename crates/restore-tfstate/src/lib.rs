//! `restore-tfstate`: list and restore earlier versions of a Terraform state from versioned S3 (MinIO),
//! and move an environment to a local backend while MinIO is down (`--to-local`) and back (`--to-minio`).
//!
//! Safety rules, in order of every write: refuse invalid states; take Terraform's own state lock; save the
//! current state locally (0600) and rely on bucket versioning; confirm; write a new version (never delete
//! one); release the lock; read back and compare. `--dry-run` performs the reads and none of the writes.

pub mod cli;
pub mod words;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pve_common::exit::{Code, UsageError};
use pve_common::output::{self, ToolInfo};
use pve_common::retry::{self, RetryPolicy, ThreadSleeper};
use pve_common::rundir::PrivateDir;
use pve_common::runner::{Access, LocalCommand, Runner};
use pve_common::s3::{ObjectVersion, S3Client, S3Credentials, S3Error, S3Location, Versioning};
use pve_tf::{backend, lock, state};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use pve_tf::backend::{BACKEND_BACKUP_FILE, BACKEND_FILE, Backend, LOCAL_OVERRIDE_FILE, Overrides};
use pve_tf::state::{Diff, State, StateInfo, Summary};

/// The JSON schema name of every document this tool prints.
pub const SCHEMA: &str = "pve-tfstate/v1";
/// Marker written next to the local state by `--to-local`.
pub const LOCAL_MARKER_FILE: &str = ".pve-local-backend.json";
/// At most this many versions are fetched at once by `--list --details`.
pub const DETAIL_FETCHES: usize = 8;

/// The `restore-tfstate` binary, for [`pve_common::run`].
#[derive(Debug)]
pub struct RestoreTfstate;

impl pve_common::Tool for RestoreTfstate {
    const NAME: &'static str = "restore-tfstate";
    type Args = cli::Args;

    fn common(args: &cli::Args) -> &pve_common::cli::CommonArgs {
        &args.common
    }

    fn run(args: cli::Args) -> Result<Code> {
        run(&Config::from_args(&args)?)
    }
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--list [--details]`.
    List {
        /// Fetch each version.
        details: bool,
    },
    /// `--show VERSION [--show-sensitive]`.
    Show {
        /// Version id.
        version: String,
        /// Do not mask.
        sensitive: bool,
    },
    /// `--restore VERSION [--verify-plan]`.
    Restore {
        /// Version id.
        version: String,
        /// Run terraform plan afterwards.
        verify_plan: bool,
    },
    /// `--to-local [--version ID]`.
    ToLocal {
        /// Version id, or the latest.
        version: Option<String>,
    },
    /// `--to-minio`.
    ToMinio,
    /// `--fallback [--version-id ID]`: `--to-local` that rewrites backend.tf (kept as
    /// backend.tf.minio-backup) instead of adding an override file.
    Fallback {
        /// Version id, or the latest.
        version: Option<String>,
    },
    /// `--return`: `--to-minio` once MinIO's health URL answers.
    Return,
    /// `--force-unlock LOCK_ID`: remove the state lock while it holds that ID.
    ForceUnlock {
        /// The lock ID expected.
        id: String,
    },
}

/// A validated run configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Environment name.
    pub env: String,
    /// Its folder.
    pub env_dir: PathBuf,
    /// The mode.
    pub mode: Mode,
    /// `--bucket`, `--key`, `--endpoint`, `--region`.
    pub overrides: Overrides,
    /// `--backend-config` files.
    pub backend_configs: Vec<PathBuf>,
    /// The homelab variable file for credentials, if any.
    pub tfvars: Option<PathBuf>,
    /// Save-point folder.
    pub backup_dir: PathBuf,
    /// `--terraform-bin`.
    pub terraform_bin: Option<PathBuf>,
    /// `--force`.
    pub force: bool,
    /// `--yes`.
    pub yes: bool,
    /// Nothing is written (`--dry-run`, `--preview`).
    pub dry_run: bool,
    /// Nothing is contacted either (`--dry-run`): the requests are shown, not sent.
    pub offline: bool,
    /// `--json`.
    pub json: bool,
}

fn check_version_id(id: &str, flag: &str) -> Result<String, UsageError> {
    let ok = !id.is_empty() && id.len() <= 1024 && id.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(id.to_owned())
    } else {
        Err(UsageError(format!(
            "{flag}: {id:?} is not an S3 version id (printable ASCII without spaces)"
        )))
    }
}

/// Where save points go without `--backup-dir`: `$XDG_STATE_HOME/pve-tools/tfstate-backups`, else
/// `~/.local/state/pve-tools/tfstate-backups`, else `/var/backups/pve-tools/tfstate`.
pub fn default_backup_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match (std::env::var_os("XDG_STATE_HOME"), home) {
        (Some(state), _) if !state.is_empty() => {
            PathBuf::from(state).join("pve-tools/tfstate-backups")
        }
        (_, Some(home)) if home != Path::new("/") && !home.as_os_str().is_empty() => {
            home.join(".local/state/pve-tools/tfstate-backups")
        }
        _ => PathBuf::from("/var/backups/pve-tools/tfstate"),
    }
}

impl Config {
    /// Validates the command line; a problem is a [`UsageError`].
    pub fn from_args(args: &cli::Args) -> Result<Config, UsageError> {
        let modes = [
            args.list,
            args.show.is_some(),
            args.restore.is_some(),
            args.fallback,
            args.return_,
            args.to_local,
            args.to_minio,
            args.force_unlock.is_some(),
        ];
        let Some(env) = args.env.clone() else {
            // The shims add --homelab, --lang and --prog-name: "no argument" is about the caller's.
            return Err(UsageError(if modes.iter().any(|m| *m) {
                words::env_required()
            } else {
                words::no_argument()
            }));
        };
        let root = match &args.root {
            Some(root) => root.clone(),
            None => args.common.homelab().map_or_else(
                |_| PathBuf::from(pve_common::homelab::ENVIRONMENTS_DIR),
                |h| h.environments_dir(),
            ),
        };
        let env_dir = pve_common::environments::resolve(&root, &env)
            .map_err(|e| UsageError(e.to_string()))?;
        match modes.iter().filter(|m| **m).count() {
            0 => return Err(UsageError(words::action_required())),
            1 => {}
            _ => {
                return Err(UsageError(
                    "give one of --list, --restore, --fallback, --return, --show, --to-local, --to-minio, \
                     --force-unlock"
                        .to_owned(),
                ));
            }
        }
        if args.version_id.is_some() && !(args.to_local || args.fallback) {
            return Err(UsageError(
                "--version-id goes with --fallback or --to-local".to_owned(),
            ));
        }
        let version = args
            .version_id
            .as_deref()
            .map(|v| check_version_id(v, "--version-id"))
            .transpose()?;
        let mode = if args.list {
            Mode::List {
                details: args.details,
            }
        } else if let Some(v) = &args.show {
            Mode::Show {
                version: check_version_id(v, "--show")?,
                sensitive: args.show_sensitive,
            }
        } else if let Some(v) = &args.restore {
            let Some(v) = v else {
                return Err(UsageError(words::version_id_required()));
            };
            Mode::Restore {
                version: check_version_id(v, "--restore")?,
                verify_plan: args.verify_plan,
            }
        } else if args.to_local {
            Mode::ToLocal { version }
        } else if args.fallback {
            Mode::Fallback { version }
        } else if args.return_ {
            Mode::Return
        } else if let Some(id) = &args.force_unlock {
            Mode::ForceUnlock {
                id: check_version_id(id, "--force-unlock")?,
            }
        } else {
            Mode::ToMinio
        };
        let workspace = std::env::var("TF_WORKSPACE")
            .ok()
            .filter(|w| !w.is_empty() && w != "default");
        let checks_with_terraform = args.verify_plan || args.to_minio || args.return_;
        if let (Some(ws), Some(_), true) = (&workspace, &args.key, checks_with_terraform) {
            return Err(UsageError(format!(
                "--key with TF_WORKSPACE={ws}: this tool writes the key as given, but Terraform would read \
                 it under the workspace prefix, so its check would look at another object; unset \
                 TF_WORKSPACE or give the full key without --verify-plan/--to-minio"
            )));
        }
        let root_tfvars = root.join("../terraform.tfvars");
        Ok(Config {
            env,
            env_dir,
            mode,
            overrides: Overrides {
                bucket: args.bucket.clone(),
                key: args.key.clone(),
                endpoint: args.endpoint.clone(),
                region: args.region.clone(),
            },
            backend_configs: args.backend_config.clone(),
            tfvars: args
                .tfvars
                .tfvars
                .clone()
                .or_else(|| root_tfvars.is_file().then_some(root_tfvars)),
            backup_dir: args.backup_dir.clone().unwrap_or_else(default_backup_dir),
            terraform_bin: args.terraform_bin.clone(),
            force: args.allow_lineage_change,
            yes: args.force.force,
            dry_run: args.common.mode() != pve_common::runner::Mode::Live,
            offline: args.common.mode() == pve_common::runner::Mode::DryRun,
            json: args.common.json,
        })
    }
}

/// Credentials for `config`'s environment: [`backend::s3_credentials`] with its `--tfvars`.
pub fn credentials(config: &Config, backend: &Backend) -> Result<S3Credentials> {
    backend::s3_credentials(backend, config.tfvars.as_deref())
}

/// Everything a mode needs.
struct Ctx<'a> {
    config: &'a Config,
    runner: Runner,
    backend: Backend,
    creds: S3Credentials,
    s3: S3Client,
    policy: RetryPolicy,
}

impl Ctx<'_> {
    /// A read-only S3 call, retried on transient failures.
    fn read<T>(&self, what: &str, op: impl FnMut(u32) -> Result<T, S3Error>) -> Result<T, S3Error> {
        retry::retry_with_backoff(&self.policy, &ThreadSleeper, what, op)
            .map_err(S3Error::from_retry)
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.backend.bucket, self.backend.key)
    }

    fn versions(&self) -> Result<Vec<ObjectVersion>, S3Error> {
        let key = self.backend.key.clone();
        let all = self.read("list state versions", |_| self.s3.list_versions(&key))?;
        Ok(all.into_iter().filter(|v| v.key == key).collect())
    }

    fn get(&self, version: Option<&str>) -> Result<Vec<u8>, S3Error> {
        self.read("fetch state", |_| self.s3.get(&self.backend.key, version))
    }

    /// The current state, judged, `None` when there is none (no object, or a delete marker on top). It is
    /// parsed as it arrives and not kept: its save point is fetched again once the change is confirmed
    /// (see [`Ctx::save_point_of_current`]), so a run holds at most the one state it writes.
    fn current(&self) -> Result<Option<CurrentDoc>> {
        let latest = self
            .versions()
            .with_context(|| format!("cannot list {}", self.url()))?;
        let top = latest.iter().find(|v| v.is_latest && !v.delete_marker);
        let version_id = top.map(|v| v.version_id.clone());
        let fetched = self.read("fetch state", |_| {
            self.s3.get_with(&self.backend.key, None, |r| {
                let mut hashing = Hashing::new(r);
                let parsed = StateInfo::read(&mut hashing);
                // What the parser left unread (nothing, for a valid state) still counts.
                let rest = std::io::copy(&mut hashing, &mut std::io::sink());
                (parsed, rest.map(|_| hashing.finish()))
            })
        });
        let (parsed, hashed) = match fetched {
            Ok(out) => out,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the current state {}", self.url()));
            }
        };
        let (sha256, size) =
            hashed.with_context(|| format!("cannot read the current state {}", self.url()))?;
        let judged = self.judge_current(parsed, version_id.as_deref())?;
        Ok(Some(CurrentDoc {
            judged,
            version_id,
            sha256,
            size,
        }))
    }

    /// Judges the current state; a corrupt one is reported as such, with the newest valid version of the
    /// history standing in for it (its lineage guards, its serial is the one to exceed: serials only grow,
    /// so it is the highest valid one). Versions are read one at a time, each dropped before the next.
    fn judge_current(
        &self,
        parsed: Result<StateInfo>,
        current_id: Option<&str>,
    ) -> Result<Current> {
        let error = match parsed {
            Ok(state) => return Ok(Current::Valid(state)),
            Err(e) => format!("{e:#}"),
        };
        let versions = self
            .versions()
            .with_context(|| format!("cannot list {}", self.url()))?;
        let mut last_valid = None;
        for v in versions
            .iter()
            .filter(|v| !v.delete_marker && Some(v.version_id.as_str()) != current_id)
        {
            if let Ok(state) = self.read_info(&v.version_id) {
                match state {
                    Ok(state) => {
                        last_valid = Some((v.version_id.clone(), state));
                        break;
                    }
                    Err(e) => {
                        pve_common::warn!("version {} is not valid either: {e:#}", v.version_id)
                    }
                }
            }
        }
        match &last_valid {
            Some((id, s)) => pve_common::warn!(
                "the current state{} is CORRUPT ({error}); the last valid version {id} (serial {}, lineage {}) \
                 stands in for it: its lineage is checked and the new serial exceeds its serial",
                current_id.map_or_else(String::new, |v| format!(" (version {v})")),
                s.serial,
                s.lineage
            ),
            None => pve_common::warn!(
                "the current state{} is CORRUPT ({error}), and no earlier version is a valid state",
                current_id.map_or_else(String::new, |v| format!(" (version {v})"))
            ),
        }
        Ok(Current::Corrupt { last_valid })
    }

    /// One version's facts, parsed as it arrives (never held whole).
    fn read_info(&self, version: &str) -> Result<Result<StateInfo>, S3Error> {
        self.read("fetch state", |_| {
            self.s3
                .get_with(&self.backend.key, Some(version), StateInfo::read)
        })
    }

    /// SHA-256 of the latest state as S3 serves it now, streamed.
    fn read_back_sha256(&self) -> Result<Vec<u8>> {
        self.read("read the state back", |_| {
            self.s3.get_with(&self.backend.key, None, state::sha256_of)
        })
        .context("cannot read the state back")?
        .context("cannot read the state back")
    }

    fn check_versioning(&self) -> Result<Versioning> {
        let v = self.read("read bucket versioning", |_| self.s3.versioning())?;
        if v != Versioning::Enabled {
            if !self.config.force {
                bail!(
                    "bucket {} has no versioning enabled ({v:?}): a write would replace the current state for good, \
                     and the local save point would be the only way back; enable versioning \
                     (mc version enable ...), or pass --allow-lineage-change to accept",
                    self.backend.bucket
                );
            }
            pve_common::warn!(
                "bucket {} has no versioning: the local save point is the only way back",
                self.backend.bucket
            );
        }
        Ok(v)
    }

    fn lock(&self, operation: &str) -> Result<Option<lock::HeldLock<'_>>> {
        if let Some(table) = &self.backend.dynamodb_table {
            bail!(
                "the backend locks with the DynamoDB table `{table}`, which restore-tfstate does not support; \
                 switch the backend to use_lockfile = true (Terraform >= 1.10)"
            );
        }
        if !self.backend.use_lockfile {
            pve_common::warn!(
                "the backend does not set use_lockfile, so Terraform takes no lock on {}; make sure no apply runs meanwhile",
                self.url()
            );
            return Ok(None);
        }
        match lock::acquire(&self.s3, &self.runner, &self.backend.key, operation) {
            Ok(held) => Ok(Some(held)),
            Err(e @ lock::LockError::Held { .. }) => {
                let id = match &e {
                    lock::LockError::Held { info, .. } => output::escape(&info.id).into_owned(),
                    _ => String::new(),
                };
                let how = format!(
                    "state locked (if its holder is gone: `restore-tfstate --env {} --force-unlock {id}`)",
                    self.config.env
                );
                Err(e.into_anyhow().context(how))
            }
            Err(e) => Err(e.into_anyhow()),
        }
    }

    /// A new save-point name in the save-point folder (created 0700).
    fn save_point_path(&self) -> Result<PathBuf> {
        self.runner
            .create_dir_all(&self.config.backup_dir, 0o700)
            .with_context(|| {
                format!(
                    "cannot create the save-point folder {}",
                    self.config.backup_dir.display()
                )
            })?;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut path = self
            .config
            .backup_dir
            .join(format!("{}-{stamp}.tfstate", self.config.env));
        let mut n = 1;
        while path.exists() {
            path = self
                .config
                .backup_dir
                .join(format!("{}-{stamp}-{n}.tfstate", self.config.env));
            n += 1;
        }
        Ok(path)
    }

    fn saved(&self, path: &Path, what: &str) {
        if self.config.dry_run {
            pve_common::info!("save point: {what} would be written to {}", path.display());
        } else {
            pve_common::info!("save point: {what} written to {}", path.display());
        }
    }

    fn save_point(&self, bytes: &[u8], what: &str) -> Result<PathBuf> {
        let path = self.save_point_path()?;
        self.runner
            .write_file(&path, bytes, 0o600)
            .with_context(|| format!("cannot write the save point {}", path.display()))?;
        self.saved(&path, what);
        Ok(path)
    }

    /// The save point of a local file, copied as a stream.
    fn save_point_of_file(&self, file: &Path, what: &str) -> Result<PathBuf> {
        let path = self.save_point_path()?;
        let mut source =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        let len = source.metadata().map_or(0, |m| m.len());
        self.runner
            .write_file_from(&path, &mut source, len, 0o600)
            .with_context(|| format!("cannot write the save point {}", path.display()))?;
        self.saved(&path, what);
        Ok(path)
    }

    /// The save point of the current state judged earlier: fetched again (by its version id when the
    /// bucket has one) straight into the file, and checked to be the very bytes that were judged.
    fn save_point_of_current(&self, current: &CurrentDoc, what: &str) -> Result<PathBuf> {
        let path = self.save_point_path()?;
        if self.config.dry_run {
            // Says what it would write, and fetches nothing.
            self.runner
                .write_file_from(&path, &mut std::io::empty(), current.size, 0o600)?;
            self.saved(&path, what);
            return Ok(path);
        }
        let version = current.version_id.as_deref().filter(|v| *v != "null");
        let written = self
            .read("fetch state", |_| {
                self.s3.get_with(&self.backend.key, version, |r| {
                    let mut hashing = Hashing::new(r);
                    let written =
                        self.runner
                            .write_file_from(&path, &mut hashing, current.size, 0o600);
                    (written, hashing.finish())
                })
            })
            .with_context(|| format!("cannot fetch {} for its save point", self.url()))?;
        let (written, (sha256, _)) = written;
        written.with_context(|| format!("cannot write the save point {}", path.display()))?;
        if sha256 != current.sha256 {
            let _ = std::fs::remove_file(&path);
            bail!(
                "the current state {} changed while this run held the lock (a writer that takes no lock?); \
                 nothing was written",
                self.url()
            );
        }
        self.saved(&path, what);
        Ok(path)
    }

    fn terraform(&self, args: &[&str]) -> Result<LocalCommand> {
        let bin = pve_common::terraform::resolve(
            self.config.terraform_bin.as_deref().map(|p| p.as_os_str()),
        )?;
        let mut cmd = LocalCommand::new(OsString::from(&bin.path))
            .dir(&self.config.env_dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_secret("AWS_ACCESS_KEY_ID", self.creds.access_key.clone())
            .env_secret("AWS_SECRET_ACCESS_KEY", self.creds.secret_key.clone())
            .args(args.iter().copied());
        if let Some(token) = &self.creds.session_token {
            cmd = cmd.env_secret("AWS_SESSION_TOKEN", token.clone());
        }
        Ok(cmd)
    }

    /// `terraform init` for the local backend, or for S3 with the same backend configuration files this
    /// tool read, then the command-line overrides (`--bucket`, `--key`, `--endpoint`, `--region`) as one
    /// more file in a private folder: Terraform then checks the very object this tool wrote, not the
    /// one the backend block names. The folder must live until init has run.
    fn init_args(&self, backend_s3: bool) -> Result<(Vec<String>, Option<PrivateDir>)> {
        let mut args = vec![
            "init".to_owned(),
            "-input=false".to_owned(),
            "-reconfigure".to_owned(),
            "-no-color".to_owned(),
        ];
        if !backend_s3 {
            return Ok((args, None));
        }
        for file in &self.backend.config_files {
            args.push(format!("-backend-config={}", file.display()));
        }
        let o = &self.config.overrides;
        if o.bucket.is_none() && o.key.is_none() && o.endpoint.is_none() && o.region.is_none() {
            return Ok((args, None));
        }
        let quoted = |v: &str| serde_json::Value::from(v).to_string();
        let mut text = String::from("# restore-tfstate: the command line's overrides\n");
        if let Some(b) = &o.bucket {
            text.push_str(&format!("bucket = {}\n", quoted(b)));
        }
        if o.key.is_some() {
            text.push_str(&format!("key = {}\n", quoted(&self.backend.key)));
        }
        if let Some(r) = &o.region {
            text.push_str(&format!("region = {}\n", quoted(r)));
        }
        if let Some(e) = &o.endpoint {
            text.push_str(&format!("endpoints = {{ s3 = {} }}\n", quoted(e)));
        }
        let dir = pve_common::rundir::private_dir("backend")
            .context("cannot create a private folder for the backend overrides")?;
        let file = dir.path().join("overrides.s3.tfbackend");
        self.runner
            .write_file(&file, text.as_bytes(), 0o600)
            .context("cannot write the backend overrides")?;
        args.push(format!("-backend-config={}", file.display()));
        Ok((args, Some(dir)))
    }

    /// Runs a Terraform command; `Ok(None)` in dry-run when `access` is mutating.
    fn run_terraform(
        &self,
        access: Access,
        args: &[String],
    ) -> Result<Option<pve_common::runner::CommandOutput>> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let cmd = self.terraform(&refs)?;
        Ok(self.runner.run_checked(access, &cmd)?)
    }
}

/// Releases `lock` after a write: a lock that changed hands meanwhile is left alone (never
/// `force-unlock` another holder's lock), one S3 failed to delete is named with its ID.
pub fn release_after_write(lock: lock::HeldLock<'_>, done: &str) -> Result<()> {
    let id = lock.id().to_owned();
    match lock.release() {
        Ok(()) => Ok(()),
        Err(e @ lock::LockError::Lost { .. }) => {
            Err(anyhow::Error::new(e).context(format!("{done}, but then")))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "{done}, but releasing the lock failed; run `terraform force-unlock {id}`"
        ))),
    }
}

/// Files a multi-step change wrote, with what they held before (`None`: they did not exist).
#[derive(Default)]
struct Rollback(Vec<(PathBuf, Option<Earlier>)>);

/// A file's content before a change (or the copy that holds it) and its mode.
type Earlier = (Content, u32);

enum Content {
    Bytes(Vec<u8>),
    /// A save point with the same bytes (a state is not held in memory for a rollback).
    CopyIn(PathBuf),
}

/// Whether `path` holds exactly `bytes`, compared as a stream.
fn same_content(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    if file.metadata()?.len() != bytes.len() as u64 {
        return Ok(false);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut rest = bytes;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(rest.is_empty());
        }
        let (head, tail) = rest.split_at(n.min(rest.len()));
        if buf.get(..n) != Some(head) {
            return Ok(false);
        }
        rest = tail;
    }
}

impl Rollback {
    fn remember(&mut self, path: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let before = match std::fs::read(path) {
            Ok(bytes) => {
                let mode =
                    std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
                Some((Content::Bytes(bytes), mode))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        self.0.push((path.to_owned(), before));
        Ok(())
    }

    /// Remembers a state file about to be overwritten: by its save point `saved` (same bytes), and not at
    /// all when it is about to be overwritten with what it already holds.
    fn remember_state(&mut self, path: &Path, saved: Option<&Path>) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        match (std::fs::metadata(path), saved) {
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {
                self.0.push((path.to_owned(), None));
            }
            (Err(e), _) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
            (Ok(meta), Some(copy)) => self.0.push((
                path.to_owned(),
                Some((
                    Content::CopyIn(copy.to_owned()),
                    meta.permissions().mode() & 0o7777,
                )),
            )),
            (Ok(_), None) => {}
        }
        Ok(())
    }

    /// Puts every file back, newest first; says what was undone and, exactly, what could not be.
    fn run(self, runner: &Runner) -> String {
        let mut undone = Vec::new();
        let mut left = Vec::new();
        for (path, before) in self.0.into_iter().rev() {
            let result = match &before {
                Some((Content::Bytes(bytes), mode)) => runner.write_file(&path, bytes, *mode),
                Some((Content::CopyIn(copy), mode)) => match std::fs::File::open(copy) {
                    Ok(mut file) => {
                        let len = file.metadata().map_or(0, |m| m.len());
                        runner.write_file_from(&path, &mut file, len, *mode)
                    }
                    Err(cause) => Err(pve_common::runner::RunError::File {
                        action: "read",
                        path: copy.clone(),
                        cause,
                    }),
                },
                None => runner.remove_file(&path),
            };
            match result {
                Ok(()) => undone.push(path.display().to_string()),
                Err(e) => left.push(format!("{} ({e})", path.display())),
            }
        }
        if left.is_empty() {
            format!(
                "nothing was changed: rolled back {}",
                if undone.is_empty() {
                    "nothing (no file had been written)".to_owned()
                } else {
                    undone.join(", ")
                }
            )
        } else {
            format!(
                "rolling back failed; these files were LEFT as written by this run: {}; rolled back: {}",
                left.join(", "),
                if undone.is_empty() {
                    "none".to_owned()
                } else {
                    undone.join(", ")
                }
            )
        }
    }
}

/// The current state as found before a write.
enum Current {
    /// It parses.
    Valid(StateInfo),
    /// It does not; the newest valid version of the history, if any.
    Corrupt {
        /// Version id and state.
        last_valid: Option<(String, StateInfo)>,
    },
}

/// The current state object: judged, and what identifies its bytes for the save point.
struct CurrentDoc {
    judged: Current,
    version_id: Option<String>,
    sha256: Vec<u8>,
    size: u64,
}

/// Hashes (and counts) what goes through it.
struct Hashing<'r> {
    inner: &'r mut dyn std::io::Read,
    hash: Sha256,
    size: u64,
}

impl<'r> Hashing<'r> {
    fn new(inner: &'r mut dyn std::io::Read) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (Vec<u8>, u64) {
        (self.hash.finalize().to_vec(), self.size)
    }
}

impl std::io::Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or_default();
        self.hash.update(read);
        self.size += read.len() as u64;
        Ok(n)
    }
}

impl Current {
    /// The state the guards compare against, and how to name it in a message.
    fn reference(&self) -> Option<(&StateInfo, &'static str)> {
        match self {
            Current::Valid(s) => Some((s, "the current state")),
            Current::Corrupt {
                last_valid: Some((_, s)),
                ..
            } => Some((s, "the last valid version (the current state is corrupt)")),
            Current::Corrupt { .. } => None,
        }
    }
}

#[derive(Serialize)]
struct ListedVersion {
    #[serde(flatten)]
    version: ObjectVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details_error: Option<String>,
}

/// The `--list --json` document's own fields (under [`output::Document`]).
#[derive(Serialize)]
struct ListDoc<'a> {
    action: &'static str,
    env: &'a str,
    bucket: &'a str,
    key: &'a str,
    versioning: Option<Versioning>,
    /// The state lock object, when one is held now.
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: Option<lock::LockInfo>,
    versions: Vec<ListedVersion>,
}

/// What a write (`--restore`, `--to-local`, `--to-minio`) did: with `--json`, the fields of an
/// [`output::Document`] of schema [`SCHEMA`] (in `docs/json/restore-tfstate.md`).
#[derive(Serialize, Deserialize, Default, Clone, Debug)]
pub struct WriteDoc {
    /// `restore`, `to_local` or `to_minio`.
    pub action: std::borrow::Cow<'static, str>,
    /// Environment name.
    pub env: String,
    /// Bucket.
    pub bucket: String,
    /// State key.
    pub key: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Where the content came from.
    pub source: Option<String>,
    /// `--restore`: the version made current.
    pub restored_version: Option<String>,
    /// The state replaced.
    pub previous: Option<Summary>,
    /// Its S3 version id.
    pub previous_version: Option<String>,
    /// The serial written.
    pub new_serial: Option<u64>,
    /// The S3 version id written.
    pub new_version: Option<String>,
    /// The local copy taken before the write.
    pub save_point: Option<PathBuf>,
    /// `--restore`: addresses added and removed.
    pub diff: Option<Diff>,
    /// The write was read back and matches.
    pub checksum_ok: Option<bool>,
    /// `terraform plan -detailed-exitcode` afterwards.
    pub plan_exit_code: Option<i32>,
    /// Files written.
    pub files_written: Vec<PathBuf>,
    /// Files removed.
    pub files_removed: Vec<PathBuf>,
    /// `--to-local`: the command that goes back.
    pub how_to_go_back: Option<String>,
}

/// The outcome of [`to_local`] or [`to_minio`] called as a library: the exit code the CLI would give
/// and the document it would print.
#[derive(Clone, Debug)]
pub struct WriteReport {
    /// Success, or Failure when the read-back or the plan afterwards failed.
    pub code: Code,
    /// The document.
    pub doc: WriteDoc,
}

fn tool_info() -> ToolInfo {
    ToolInfo::new("restore-tfstate", env!("CARGO_PKG_VERSION"))
}

fn context(config: &Config) -> Result<Ctx<'_>> {
    let backend = backend::discover(&config.env_dir, &config.backend_configs, &config.overrides)?;
    let creds = credentials(config, &backend)?;
    let location = S3Location {
        endpoint: backend.endpoint.clone(),
        region: backend.region.clone(),
        bucket: backend.bucket.clone(),
        path_style: backend.path_style,
    };
    let s3 = S3Client::new(location, &creds, Duration::from_secs(30))?;
    let policy = retry_policy();
    Ok(Ctx {
        config,
        runner: Runner::with_mode(if config.offline {
            pve_common::runner::Mode::DryRun
        } else if config.dry_run {
            pve_common::runner::Mode::Preview
        } else {
            pve_common::runner::Mode::Live
        }),
        backend,
        creds,
        s3,
        policy,
    })
}

/// `--to-local` as a library call: moves `config.env` to a local backend (state from S3, or from the
/// newest save point in `config.backup_dir` when S3 is unreachable) and returns what it did, printing
/// nothing on stdout. `config.mode` is ignored.
pub fn to_local(config: &Config, version: Option<&str>) -> Result<WriteReport> {
    let ctx = context(config)?;
    let doc = to_local_doc(&ctx, version, false)?;
    Ok(WriteReport {
        code: Code::Success,
        doc,
    })
}

/// `--to-minio` as a library call: pushes the local state of `config.env` to S3, removes the override and
/// proves Terraform uses S3 again; prints nothing on stdout. `config.mode` is ignored.
pub fn to_minio(config: &Config) -> Result<WriteReport> {
    let ctx = context(config)?;
    let (code, doc) = to_minio_doc(&ctx)?;
    Ok(WriteReport { code, doc })
}

/// Runs the tool. An operator who declines (or cannot be asked) ends the run with success and nothing
/// written, as the script did; a successful run ends with the script's closing line.
pub fn run(config: &Config) -> Result<Code> {
    let ctx = context(config)?;
    if config.offline {
        let code = dry_run(&ctx)?;
        if !config.json {
            pve_common::success!("{}", words::success_dry_run());
        }
        return Ok(code);
    }
    let result = match &config.mode {
        Mode::List { details } => list(&ctx, *details),
        Mode::Show { version, sensitive } => show(&ctx, version, *sensitive),
        Mode::ForceUnlock { id } => force_unlock(&ctx, id),
        Mode::Restore {
            version,
            verify_plan,
        } => restore(&ctx, version, *verify_plan),
        Mode::ToLocal { version } => {
            let doc = to_local_doc(&ctx, version.as_deref(), false)?;
            print_write_doc(&ctx, &doc)?;
            Ok(Code::Success)
        }
        Mode::Fallback { version } => {
            let doc = to_local_doc(&ctx, version.as_deref(), true)?;
            print_write_doc(&ctx, &doc)?;
            Ok(Code::Success)
        }
        Mode::ToMinio => to_minio_doc(&ctx).and_then(|(code, doc)| {
            print_write_doc(&ctx, &doc)?;
            Ok(code)
        }),
        Mode::Return => {
            minio_health(&ctx)?;
            to_minio_doc(&ctx).and_then(|(code, doc)| {
                print_write_doc(&ctx, &doc)?;
                Ok(code)
            })
        }
    };
    match result {
        Ok(Code::Success) => {
            // The script's closing line, for the callers that read the text; a JSON reader has the
            // document.
            if !config.json {
                pve_common::success!(
                    "{}",
                    if config.dry_run {
                        words::success_dry_run()
                    } else {
                        words::success()
                    }
                );
            }
            Ok(Code::Success)
        }
        Err(e) if is_declined(&e) => {
            pve_common::warn!("{}", words::declined(&format!("{e:#}")));
            Ok(Code::Success)
        }
        other => other,
    }
}

fn is_declined(e: &anyhow::Error) -> bool {
    use pve_common::confirm::ConfirmError;
    matches!(
        e.downcast_ref::<ConfirmError>(),
        Some(ConfirmError::Declined { .. } | ConfirmError::NoTerminal { .. })
    )
}

/// `<endpoint>/minio/health/live`, the URL `--return` waits on.
pub fn health_url(endpoint: &str) -> String {
    format!("{}/minio/health/live", endpoint.trim_end_matches('/'))
}

/// `--return` goes back only once MinIO says it is live (HTTP 200), retried on transient failures.
fn minio_health(ctx: &Ctx<'_>) -> Result<()> {
    let url = health_url(&ctx.backend.endpoint);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let result = retry::retry_with_backoff(
        &ctx.policy,
        &ThreadSleeper,
        "MinIO health check",
        |_| match agent.get(&url).call() {
            Ok(r) if r.status().as_u16() == 200 => Ok(()),
            Ok(r) => Err(HealthError(format!("HTTP {}", r.status().as_u16()), false)),
            Err(e) => Err(HealthError(e.to_string(), true)),
        },
    );
    result.map_err(|e| anyhow::anyhow!("{}", words::minio_down(&url, &e.to_string())))?;
    pve_common::info!("{}", words::minio_up(&url));
    Ok(())
}

#[derive(Debug, Error)]
#[error("{0}")]
struct HealthError(String, bool);

impl pve_common::retry::Transient for HealthError {
    fn is_transient(&self) -> bool {
        self.1
    }
}

/// `--dry-run`: every request and command the action would make, on `[DRY-RUN]` lines, with the values
/// read from the local files (endpoint, bucket, key, paths) and placeholders for what only S3 knows;
/// nothing is contacted and nothing written. Then the usual summary.
fn dry_run(ctx: &Ctx<'_>) -> Result<Code> {
    let config = ctx.config;
    let b = &ctx.backend;
    let base = format!("{}/{}", b.endpoint.trim_end_matches('/'), b.bucket);
    let obj = format!("{base}/{}", b.key);
    let lock = format!("{obj}.tflock");
    let would = |what: String| ctx.runner.announce(what);
    let save_point = config
        .backup_dir
        .join(format!("{}-<YYYYMMDDTHHMMSSZ>.tfstate", config.env));
    let list_versions = || would(format!("GET {base}?versions&prefix={}", b.key));
    let tf = |args: &str| format!("cd {} && terraform {args}", config.env_dir.display());
    let mut doc = WriteDoc {
        env: config.env.clone(),
        bucket: b.bucket.clone(),
        key: b.key.clone(),
        dry_run: true,
        ..WriteDoc::default()
    };
    let lock_lines = |what: &str| {
        if b.use_lockfile {
            would(format!(
                "PUT {lock} (If-None-Match: *; the state lock, {what})"
            ));
        }
    };
    let unlock = || {
        if b.use_lockfile {
            would(format!("DELETE {lock}"));
        }
    };
    match &config.mode {
        Mode::List { details } => {
            list_versions();
            would(format!("GET {base}?versioning"));
            if *details {
                would(format!("GET {obj}?versionId=<version-id> (each version)"));
            }
            let doc = output::Document::new(
                SCHEMA,
                tool_info(),
                ListDoc {
                    action: "list",
                    env: &config.env,
                    bucket: &b.bucket,
                    key: &b.key,
                    versioning: None,
                    lock: None,
                    versions: Vec::new(),
                },
            );
            output::emit(config.json, &doc, |doc| {
                list_text(&doc.body.versions, false)
            })?;
            return Ok(Code::Success);
        }
        Mode::Show { version, .. } => {
            would(format!("GET {obj}?versionId={version}"));
            return Ok(Code::Success);
        }
        Mode::ForceUnlock { id } => {
            would(format!("GET {lock} (compare its ID with {id})"));
            would(format!("DELETE {lock} (only while it holds lock ID {id})"));
            return Ok(Code::Success);
        }
        Mode::Restore {
            version,
            verify_plan,
        } => {
            doc.action = "restore".into();
            doc.restored_version = Some(version.clone());
            would(format!("GET {obj}?versionId={version}"));
            would(format!("GET {base}?versioning"));
            lock_lines("restore");
            list_versions();
            would(format!("GET {obj} (the current state)"));
            would(format!(
                "write {} (0600: the current state)",
                save_point.display()
            ));
            would(format!(
                "PUT {obj} (version {version}, serial <current + 1>)"
            ));
            unlock();
            would(format!("GET {obj} (read back, checksum)"));
            if *verify_plan {
                would(tf("init -input=false -reconfigure -no-color"));
                would(tf(
                    "plan -input=false -lock=false -refresh=false -detailed-exitcode -no-color",
                ));
            }
            doc.save_point = Some(save_point);
        }
        Mode::ToLocal { version } | Mode::Fallback { version } => {
            let fallback = matches!(config.mode, Mode::Fallback { .. });
            doc.action = if fallback { "fallback" } else { "to_local" }.into();
            match version {
                Some(v) => would(format!("GET {obj}?versionId={v}")),
                None => would(format!(
                    "GET {obj} (if S3 does not answer: the newest save point {}/{}-*.tfstate)",
                    config.backup_dir.display(),
                    config.env
                )),
            }
            let state_file = config.env_dir.join("terraform.tfstate");
            if state_file.exists() {
                would(format!(
                    "write {} (0600: the existing {}, if it differs)",
                    save_point.display(),
                    state_file.display()
                ));
            }
            would(format!("write {} (0600)", state_file.display()));
            let backend_tf = config.env_dir.join(BACKEND_FILE);
            if fallback && backend_tf.is_file() {
                if !config.env_dir.join(BACKEND_BACKUP_FILE).exists() {
                    would(format!(
                        "copy {} to {}",
                        backend_tf.display(),
                        config.env_dir.join(BACKEND_BACKUP_FILE).display()
                    ));
                }
                would(format!(
                    "write {} (backend \"local\")",
                    backend_tf.display()
                ));
            } else {
                would(format!(
                    "write {} (backend \"local\")",
                    config.env_dir.join(LOCAL_OVERRIDE_FILE).display()
                ));
            }
            would(format!(
                "write {}",
                config.env_dir.join(LOCAL_MARKER_FILE).display()
            ));
            would(tf("init -input=false -reconfigure -no-color"));
            doc.files_written = vec![state_file];
        }
        Mode::ToMinio | Mode::Return => {
            doc.action = if config.mode == Mode::Return {
                "return"
            } else {
                "to_minio"
            }
            .into();
            if config.mode == Mode::Return {
                would(format!("GET {}", health_url(&b.endpoint)));
            }
            let state_file = config.env_dir.join("terraform.tfstate");
            would(format!("GET {base}?versioning"));
            lock_lines("push");
            list_versions();
            would(format!("GET {obj} (the current S3 state)"));
            would(format!(
                "write {} (0600: the S3 state)",
                save_point.display()
            ));
            would(format!(
                "PUT {obj} ({}, serial <max(local, S3 + 1)>)",
                state_file.display()
            ));
            unlock();
            let backup = config.env_dir.join(BACKEND_BACKUP_FILE);
            if backup.is_file() {
                would(format!(
                    "write {} (from {}), remove {}",
                    config.env_dir.join(BACKEND_FILE).display(),
                    backup.display(),
                    backup.display()
                ));
            } else {
                would(format!(
                    "remove {}",
                    config.env_dir.join(LOCAL_OVERRIDE_FILE).display()
                ));
            }
            would(format!(
                "remove {}",
                config.env_dir.join(LOCAL_MARKER_FILE).display()
            ));
            if b.from_minio_block {
                would(format!("GET {obj} (read back, checksum)"));
            } else {
                would(format!("remove {}", state_file.display()));
                would(tf("init -input=false -reconfigure -no-color"));
                would(tf("state pull"));
                would(tf(
                    "plan -input=false -lock=false -detailed-exitcode -no-color",
                ));
            }
            doc.source = Some(state_file.display().to_string());
        }
    }
    print_write_doc(ctx, &doc)?;
    Ok(Code::Success)
}

/// 3 attempts from 1 s, unless `PVE_RETRY_ATTEMPTS` / `PVE_RETRY_DELAY` (humantime) say otherwise.
fn retry_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(n) = std::env::var("PVE_RETRY_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy.attempts = n;
    }
    if let Some(d) = std::env::var("PVE_RETRY_DELAY")
        .ok()
        .and_then(|v| pve_common::cli::parse_duration(&v).ok())
    {
        policy.initial_delay = d;
    }
    policy
}

fn list(ctx: &Ctx<'_>, details: bool) -> Result<Code> {
    let versions = ctx
        .versions()
        .with_context(|| format!("cannot list the versions of {}", ctx.url()))?;
    if versions.is_empty() {
        bail!("no state at {} (no version of that key exists)", ctx.url());
    }
    let versioning = match ctx.s3.versioning() {
        Ok(v) => Some(v),
        Err(e) => {
            pve_common::warn!(
                "cannot read the versioning of bucket {}: {e}",
                ctx.backend.bucket
            );
            None
        }
    };
    let held = match lock::current(&ctx.s3, &ctx.backend.key) {
        Ok(held) => held,
        Err(e) => {
            pve_common::warn!("cannot read the state lock: {e}");
            None
        }
    };
    if let Some(info) = &held {
        pve_common::warn!(
            "the state is {}; if its holder is gone, run `restore-tfstate --env {} --force-unlock {}` \
             (or `terraform force-unlock {}` in the environment)",
            lock::describe(info),
            ctx.config.env,
            output::escape(&info.id),
            output::escape(&info.id)
        );
    }
    let mut listed: Vec<ListedVersion> = versions
        .into_iter()
        .map(|version| ListedVersion {
            version,
            details: None,
            details_error: None,
        })
        .collect();
    if details {
        fetch_details(ctx, &mut listed);
    }
    let doc = output::Document::new(
        SCHEMA,
        tool_info(),
        ListDoc {
            action: "list",
            env: &ctx.config.env,
            bucket: &ctx.backend.bucket,
            key: &ctx.backend.key,
            versioning,
            lock: held,
            versions: listed,
        },
    );
    output::emit(ctx.config.json, &doc, |doc| {
        list_text(&doc.body.versions, details)
    })?;
    Ok(Code::Success)
}

/// The `--list` table (`--details`: with each version's serial, lineage, Terraform version, resources).
fn list_text(listed: &[ListedVersion], details: bool) -> String {
    let mut text = format!("{}\n", words::versions_heading());
    let header = if details {
        format!(
            "{:<36}  {:<24}  {:>9}  {:<6}  {:>6}  {:<36}  {:<9}  {:>9}\n",
            "VERSION ID",
            "LAST MODIFIED",
            "SIZE",
            "LATEST",
            "SERIAL",
            "LINEAGE",
            "TERRAFORM",
            "RESOURCES"
        )
    } else {
        format!(
            "{:<36}  {:<24}  {:>9}  {:<6}\n",
            "VERSION ID", "LAST MODIFIED", "SIZE", "LATEST"
        )
    };
    text.push_str(&header);
    for v in listed {
        let o = &v.version;
        let latest = if o.is_latest { "yes" } else { "" };
        let size = if o.delete_marker {
            "(deleted)".to_owned()
        } else {
            o.size.to_string()
        };
        // Ids and times come from the S3 server, lineage and version from the state: printed escaped.
        text.push_str(&format!(
            "{:<36}  {:<24}  {:>9}  {:<6}",
            output::escape(&o.version_id),
            output::escape(&o.last_modified),
            size,
            latest
        ));
        if details {
            match (&v.details, &v.details_error) {
                (Some(d), _) => text.push_str(&format!(
                    "  {:>6}  {:<36}  {:<9}  {:>9}",
                    d.serial,
                    output::escape(&d.lineage),
                    output::escape(&d.terraform_version),
                    d.resources
                )),
                (None, Some(e)) => text.push_str(&format!("  invalid: {}", output::escape(e))),
                (None, None) => {}
            }
        }
        text.push('\n');
    }
    text
}

/// Fetches every non-marker version with at most [`DETAIL_FETCHES`] requests in flight. Each is parsed
/// as it arrives and only its summary is kept, so memory does not grow with the states' sizes.
fn fetch_details(ctx: &Ctx<'_>, listed: &mut [ListedVersion]) {
    let next = AtomicUsize::new(0);
    let ids: Vec<Option<String>> = listed
        .iter()
        .map(|v| (!v.version.delete_marker).then(|| v.version.version_id.clone()))
        .collect();
    let results: Vec<(usize, Result<Summary, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..DETAIL_FETCHES.min(ids.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = ids.get(i) else { break };
                        let Some(id) = slot else { continue };
                        let result = match ctx.read_info(id) {
                            Ok(Ok(info)) => Ok(info.summary()),
                            Ok(Err(e)) => Err(format!("{e:#}")),
                            Err(e) => Err(e.to_string()),
                        };
                        out.push((i, result));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, result) in results {
        match result {
            Ok(summary) => listed[i].details = Some(summary),
            Err(e) => listed[i].details_error = Some(e),
        }
    }
}

fn fetch_version(ctx: &Ctx<'_>, version: &str) -> Result<Vec<u8>> {
    ctx.get(Some(version)).map_err(|e| {
        if e.is_not_found() {
            anyhow::anyhow!(
                "version {version} of {} does not exist; see --list",
                ctx.url()
            )
        } else {
            anyhow::Error::new(e)
                .context(format!("cannot fetch version {version} of {}", ctx.url()))
        }
    })
}

fn show(ctx: &Ctx<'_>, version: &str, sensitive: bool) -> Result<Code> {
    let bytes = fetch_version(ctx, version)?;
    let state =
        State::parse(&bytes).with_context(|| format!("version {version} is not a usable state"))?;
    // A document JSON accepts may still hold what a tree refuses (a lone UTF-16 surrogate escape, which
    // Terraform reads as U+FFFD): a dry pass first, so stdout gets the whole document or nothing.
    serde_json::to_writer(std::io::sink(), &state.masked(sensitive))
        .with_context(|| format!("version {version} cannot be shown"))?;
    output::write_json(&state.masked(sensitive))?;
    Ok(Code::Success)
}

/// `--force-unlock LOCK_ID`: Terraform's `force-unlock` for the S3 lock file. The lock is removed only
/// while it holds `id` (read again right before the delete), so a lock taken meanwhile by a live run is
/// never removed; a wrong ID or no lock at all is an error and nothing changes.
fn force_unlock(ctx: &Ctx<'_>, id: &str) -> Result<Code> {
    let path = format!(
        "s3://{}/{}",
        ctx.backend.bucket,
        lock::lock_key(&ctx.backend.key)
    );
    let held = lock::current(&ctx.s3, &ctx.backend.key)
        .with_context(|| format!("cannot read the state lock {path}"))?;
    let Some(info) = held else {
        bail!(
            "the state {} is not locked ({path} does not exist); nothing to unlock",
            ctx.url()
        );
    };
    let holder = lock::describe(&info);
    if info.id != id {
        bail!(
            "the state lock {path} has lock ID {}, not {}: it is {holder}; nothing was removed \
             (check the ID with --list)",
            output::escape(&info.id),
            output::escape(id)
        );
    }
    pve_common::warn!(
        "the state lock {path} is {holder}; remove it only if that run is gone (a run still working would \
         then write without a lock)"
    );
    if !ctx.config.dry_run {
        pve_common::confirm::ask(
            &format!("Remove the state lock {path} (lock ID {id})?"),
            &format!("remove the state lock of {}", ctx.config.env),
            ctx.config.yes,
        )?;
    }
    lock::force_unlock(&ctx.s3, &ctx.runner, &ctx.backend.key, id)?;
    if ctx.config.json {
        output::write_json(&serde_json::json!({
            "schema": SCHEMA,
            "tool": tool_info(),
            "action": "force_unlock",
            "env": ctx.config.env,
            "bucket": ctx.backend.bucket,
            "key": ctx.backend.key,
            "dry_run": ctx.config.dry_run,
            "lock": info,
        }))?;
    }
    if !ctx.config.dry_run {
        pve_common::success!("removed the state lock {path} (lock ID {id})");
    }
    Ok(Code::Success)
}

fn restore(ctx: &Ctx<'_>, version: &str, verify_plan: bool) -> Result<Code> {
    let config = ctx.config;
    let chosen_bytes = fetch_version(ctx, version)?;
    let chosen = State::parse(&chosen_bytes)
        .with_context(|| format!("refusing to restore version {version}"))?;
    ctx.check_versioning()?;
    let lock = ctx.lock("OperationTypeApply")?;
    pve_common::interrupt::set_note(Some(
        "nothing was restored; the state is as it was".to_owned(),
    ));
    let current = ctx.current()?;
    let previous = current.as_ref().map(|c| &c.judged);
    let previous_version = current.as_ref().and_then(|c| c.version_id.clone());
    // A corrupt current state guards nothing: the last valid version stands in for it.
    let guard = previous.and_then(Current::reference);
    if let Some((prev, what)) = guard
        && prev.lineage != chosen.lineage
    {
        let msg = format!(
            "version {version} has lineage {} but {what} has lineage {}: it belongs to another state \
                 (a re-created environment or another key). Restoring it would make Terraform forget every resource \
                 of the current lineage",
            chosen.lineage, prev.lineage
        );
        if !config.force {
            bail!("{msg}; pass --allow-lineage-change if that is really intended");
        }
        pve_common::warn!("{msg}; continuing because of --allow-lineage-change");
    }
    let new_serial =
        state::next_serial(guard.map_or(chosen.serial, |(p, _)| p.serial.max(chosen.serial)))?;
    let diff = guard.map(|(p, _)| p.diff(&chosen));
    describe_restore(ctx, version, &chosen, previous, new_serial, diff.as_ref());
    if !config.dry_run {
        pve_common::confirm::ask(
            &format!(
                "Restore version {version} as the current state of {}?",
                ctx.url()
            ),
            &format!("overwrite the state of {}", config.env),
            config.yes,
        )?;
    }
    // Only once confirmed: a declined restore leaves no file behind.
    let save_point = match &current {
        Some(current) => Some(ctx.save_point_of_current(current, "the current state")?),
        None => None,
    };
    let new_doc = chosen.with_serial(new_serial);
    // SIGINT/SIGTERM from here waits until the state is written and the lock released; before, the
    // interrupt handler releases the lock itself.
    let write = pve_common::interrupt::critical();
    if let Some(lock) = &lock {
        lock.verify()?;
    }
    let put = ctx
        .s3
        .put_parts(&ctx.runner, &ctx.backend.key, &new_doc.parts(), false)
        .with_context(|| {
            format!(
                "writing the restored state failed; nothing was lost: the previous state is {}{}",
                save_point
                    .as_deref()
                    .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
                previous_version
                    .as_deref()
                    .map_or_else(String::new, |v| format!(" and version {v} in the bucket"))
            )
        })?;
    if let Some(lock) = lock {
        release_after_write(lock, "the state was restored")?;
    }
    drop(write);
    if put.is_some() {
        pve_common::interrupt::set_note(Some(format!(
            "version {version} had been restored as serial {new_serial} (the previous state is {}); it was \
             not read back or verified",
            save_point
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string())
        )));
    }
    let mut doc = WriteDoc {
        action: "restore".into(),
        env: config.env.clone(),
        bucket: ctx.backend.bucket.clone(),
        key: ctx.backend.key.clone(),
        dry_run: config.dry_run,
        restored_version: Some(version.to_owned()),
        previous: guard.map(|(p, _)| p.summary()),
        previous_version,
        new_serial: Some(new_serial),
        new_version: put.as_ref().and_then(|p| p.version_id.clone()),
        save_point,
        diff,
        ..WriteDoc::default()
    };
    let mut code = Code::Success;
    if put.is_some() {
        let ok = ctx.read_back_sha256()? == new_doc.sha256();
        doc.checksum_ok = Some(ok);
        if ok {
            pve_common::success!(
                "restored version {version} as serial {new_serial}; read back, checksum matches"
            );
        } else {
            pve_common::error!("the state read back differs from what was written");
            code = Code::Failure;
        }
        if verify_plan {
            doc.plan_exit_code = Some(verify_with_plan(ctx)?);
            if doc.plan_exit_code == Some(1) {
                code = Code::Failure;
            }
        }
    }
    print_write_doc(ctx, &doc)?;
    Ok(code)
}

fn describe_restore(
    ctx: &Ctx<'_>,
    version: &str,
    chosen: &StateInfo,
    previous: Option<&Current>,
    new_serial: u64,
    diff: Option<&Diff>,
) {
    pve_common::info!(
        "restore {} version {version} (serial {}, {} resources) as serial {new_serial}",
        ctx.url(),
        chosen.serial,
        chosen.addresses().len()
    );
    match previous {
        Some(Current::Valid(p)) => pve_common::info!(
            "current state: serial {}, {} resources",
            p.serial,
            p.addresses().len()
        ),
        Some(Current::Corrupt { last_valid, .. }) => match last_valid {
            Some((v, p)) => pve_common::info!(
                "current state: CORRUPT; the last valid version {v} has serial {}, {} resources",
                p.serial,
                p.addresses().len()
            ),
            None => pve_common::info!("current state: CORRUPT, and no earlier version is valid"),
        },
        None => pve_common::info!("there is no current state"),
    }
    if let Some(diff) = diff {
        for a in &diff.added {
            pve_common::info!("  + {a} (back in the state)");
        }
        for r in &diff.removed {
            pve_common::info!("  - {r} (no longer in the state)");
        }
    }
}

/// `terraform init -reconfigure` then `plan -lock=false -refresh=false -detailed-exitcode`: 0 or 2 means
/// Terraform reads the state; 1 means it cannot.
fn verify_with_plan(ctx: &Ctx<'_>) -> Result<i32> {
    let (init, _overrides) = ctx.init_args(true)?;
    ctx.run_terraform(Access::Mutating, &init)
        .context("terraform init failed")?;
    let plan: Vec<String> = [
        "plan",
        "-input=false",
        "-lock=false",
        "-refresh=false",
        "-detailed-exitcode",
        "-no-color",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let refs: Vec<&str> = plan.iter().map(String::as_str).collect();
    let out = ctx.runner.run(Access::ReadOnly, &ctx.terraform(&refs)?)?;
    let code = out.as_ref().and_then(|o| o.status.code()).unwrap_or(1);
    match code {
        0 => pve_common::success!("terraform plan reads the restored state: no changes"),
        2 => pve_common::success!(
            "terraform plan reads the restored state: it plans changes (see `terraform plan`)"
        ),
        _ => pve_common::error!(
            "terraform plan failed on the restored state: {}",
            pve_common::runner::stderr_excerpt(out.as_ref().map_or(&[][..], |o| &o.stderr), 10)
        ),
    }
    Ok(code)
}

fn newest_local_backup(ctx: &Ctx<'_>) -> Result<PathBuf> {
    newest_save_point(&ctx.config.backup_dir, &ctx.config.env)
}

/// The newest save point of `env` in `dir` (`<env>-<UTC stamp>[-n].tfstate`, as this tool writes them).
pub fn newest_save_point(dir: &Path, env: &str) -> Result<PathBuf> {
    let mut found: Vec<((String, u32), PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the save-point folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let key = save_point_key(p.file_name()?.to_str()?, env)?;
            Some((key, p))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, p)| p)
        .with_context(|| format!("no save point of `{env}` in {}", dir.display()))
}

/// The (UTC stamp, same-second counter) of a save point of `env` named as [`Ctx::save_point`] names
/// them (`<env>-YYYYMMDDTHHMMSSZ[-N].tfstate`), or `None` for any other file: `prod` must not pick up
/// `prod-eu`'s save points, and `-N` (a later one in the same second) sorts after the plain name.
fn save_point_key(name: &str, env: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix(env)?
        .strip_prefix('-')?
        .strip_suffix(".tfstate")?;
    let (stamp, n) = match rest.split_once('-') {
        Some((stamp, n)) => (stamp, n.parse::<u32>().ok()?),
        None => (rest, 0),
    };
    let b = stamp.as_bytes();
    let shape = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    shape.then(|| (stamp.to_owned(), n))
}

fn override_text(env: &str, how: &str, back: &str) -> String {
    format!(
        "# Written by restore-tfstate {how} on {}.\n\
         # This environment uses a LOCAL state (terraform.tfstate in this folder) while MinIO is unavailable.\n\
         # Go back with: restore-tfstate --env {env} {back}\n\
         terraform {{\n  backend \"local\" {{\n    path = \"terraform.tfstate\"\n  }}\n}}\n",
        jiff::Timestamp::now()
    )
}

/// `--to-local`, or with `rewrite_backend` `--fallback`: backend.tf is copied to
/// backend.tf.minio-backup (once) and rewritten with the local backend, instead of an override file.
fn to_local_doc(ctx: &Ctx<'_>, version: Option<&str>, rewrite_backend: bool) -> Result<WriteDoc> {
    let config = ctx.config;
    let (bytes, source) = match version {
        Some(v) => (fetch_version(ctx, v)?, format!("S3 version {v}")),
        None => match ctx.get(None) {
            Ok(bytes) => (bytes, "the latest S3 version".to_owned()),
            Err(e) if pve_common::retry::Transient::is_transient(&e) => {
                pve_common::warn!("S3 is unreachable ({e}); using the newest local save point");
                let file = newest_local_backup(ctx)?;
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                (bytes, format!("the local save point {}", file.display()))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", ctx.url())),
        },
    };
    let state = State::parse(&bytes).with_context(|| format!("{source} is not a usable state"))?;
    let state_file = config.env_dir.join("terraform.tfstate");
    let override_file = config.env_dir.join(LOCAL_OVERRIDE_FILE);
    let mut doc = WriteDoc {
        action: "to_local".into(),
        env: config.env.clone(),
        bucket: ctx.backend.bucket.clone(),
        key: ctx.backend.key.clone(),
        dry_run: config.dry_run,
        source: Some(source.clone()),
        previous: Some(state.summary()),
        ..WriteDoc::default()
    };
    // The existing local state is compared and saved as a stream (never a second state in memory); the
    // rollback below puts it back from its save point.
    let mut earlier_state = None;
    if state_file.exists() {
        let same = same_content(&state_file, &bytes)
            .with_context(|| format!("cannot read {}", state_file.display()))?;
        if !same {
            let saved =
                ctx.save_point_of_file(&state_file, "the existing local terraform.tfstate")?;
            earlier_state = Some(saved.clone());
            doc.save_point = Some(saved);
        }
    }
    pve_common::info!(
        "writing {source} (serial {}) to {}",
        state.serial,
        state_file.display()
    );
    // Each file's earlier content, put back if a later step fails: a half-done switch must not leave the
    // environment on a local state nobody knows about.
    let mut undo = Rollback::default();
    let switched = (|| -> Result<PathBuf> {
        undo.remember_state(&state_file, earlier_state.as_deref())?;
        ctx.runner.write_file(&state_file, &bytes, 0o600)?;
        let mut write = |path: &Path, body: &[u8], mode: u32| -> Result<()> {
            undo.remember(path)?;
            ctx.runner.write_file(path, body, mode)?;
            Ok(())
        };
        let backend_tf = config.env_dir.join(BACKEND_FILE);
        let backend_backup = config.env_dir.join(BACKEND_BACKUP_FILE);
        let switch_file = if rewrite_backend && backend_tf.is_file() {
            if !backend_backup.exists() {
                let original = std::fs::read(&backend_tf)
                    .with_context(|| format!("cannot read {}", backend_tf.display()))?;
                write(&backend_backup, &original, 0o644)?;
            }
            write(
                &backend_tf,
                override_text(&config.env, "--fallback", "--return").as_bytes(),
                0o644,
            )?;
            backend_tf
        } else {
            write(
                &override_file,
                override_text(&config.env, "--to-local", "--to-minio").as_bytes(),
                0o644,
            )?;
            override_file.clone()
        };
        let marker = serde_json::json!({
            "source": source, "serial": state.serial, "lineage": state.lineage,
            "bucket": ctx.backend.bucket, "key": ctx.backend.key, "created": jiff::Timestamp::now().to_string(),
        });
        write(
            &config.env_dir.join(LOCAL_MARKER_FILE),
            format!("{marker:#}\n").as_bytes(),
            0o644,
        )?;
        let (init, _) = ctx.init_args(false)?;
        ctx.run_terraform(Access::Mutating, &init)
            .context("terraform init with the local backend failed")?;
        Ok(switch_file)
    })();
    let switch_file = match switched {
        Ok(file) => file,
        Err(e) => return Err(e.context(undo.run(&ctx.runner))),
    };
    let switch_name = switch_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    doc.files_written = vec![
        state_file,
        switch_file,
        config.env_dir.join(LOCAL_MARKER_FILE),
    ];
    if rewrite_backend {
        doc.action = "fallback".into();
    }
    let back = format!(
        "restore-tfstate --env {} {}",
        config.env,
        if rewrite_backend {
            "--return"
        } else {
            "--to-minio"
        }
    );
    if !config.dry_run {
        pve_common::success!(
            "{} now uses a local state; terraform plan/apply work there. Files: {switch_name}, {}. Go back with: {back}",
            config.env,
            "terraform.tfstate"
        );
    }
    doc.how_to_go_back = Some(back);
    Ok(doc)
}

fn to_minio_doc(ctx: &Ctx<'_>) -> Result<(Code, WriteDoc)> {
    let config = ctx.config;
    let override_file = config.env_dir.join(LOCAL_OVERRIDE_FILE);
    let backend_backup = config.env_dir.join(BACKEND_BACKUP_FILE);
    if !override_file.is_file() && !backend_backup.is_file() {
        bail!(
            "{} is not on a local backend (neither {} nor {} exists); nothing to move back",
            config.env,
            override_file.display(),
            backend_backup.display()
        );
    }
    let state_file = config.env_dir.join("terraform.tfstate");
    let local_bytes = std::fs::read(&state_file)
        .with_context(|| format!("cannot read {}", state_file.display()))?;
    let local = State::parse(&local_bytes)
        .with_context(|| format!("{} is not a usable state", state_file.display()))?;
    ctx.check_versioning()?;
    let lock = ctx.lock("OperationTypeApply")?;
    let current = ctx.current()?;
    let mut save_point = None;
    let mut previous = None;
    let mut previous_version = None;
    if let Some(cur) = &current {
        previous_version = cur.version_id.clone();
        if let Some((remote, what)) = cur.judged.reference() {
            if remote.lineage != local.lineage && !config.force {
                bail!(
                    "{what} on S3 has lineage {} but the local state has {}: they are different states; pass --allow-lineage-change to replace the S3 one",
                    remote.lineage,
                    local.lineage
                );
            }
            if remote.serial > local.serial && !config.force {
                bail!(
                    "{what} on S3 (serial {}) is newer than the local state (serial {}): something applied against S3 \
                     while this environment was local; reconcile by hand, or pass --allow-lineage-change to replace it",
                    remote.serial,
                    local.serial
                );
            }
        }
        previous = cur.judged.reference().map(|(s, _)| s.clone());
    }
    let new_serial = match previous.as_ref() {
        Some(r) => local.serial.max(state::next_serial(r.serial)?),
        None => local.serial,
    };
    pve_common::info!(
        "push {} (serial {}) to {} as serial {new_serial}",
        state_file.display(),
        local.serial,
        ctx.url()
    );
    if !config.dry_run {
        pve_common::confirm::ask(
            &format!("Push the local state of {} to {}?", config.env, ctx.url()),
            &format!("push the local state of {} to S3", config.env),
            config.yes,
        )?;
    }
    // Only once confirmed: a declined push leaves no file behind.
    if let Some(cur) = &current {
        save_point = Some(ctx.save_point_of_current(cur, "the S3 state before the push")?);
    }
    let new_doc = local.with_serial(new_serial);
    let new_sha256 = new_doc.sha256();
    // As in `restore`: an interrupt waits for the push and the release of the lock.
    let write = pve_common::interrupt::critical();
    if let Some(lock) = &lock {
        lock.verify()?;
    }
    let put = ctx
        .s3
        .put_parts(&ctx.runner, &ctx.backend.key, &new_doc.parts(), false)
        .context("pushing the local state failed; the local state is unchanged")?;
    if let Some(lock) = lock {
        release_after_write(lock, "the state was pushed")?;
    }
    drop(write);
    let kept = ctx.save_point(&local_bytes, "the local state that was pushed")?;
    let local = local.into_info();
    // The local state is not needed any more: `terraform state pull` below returns another copy.
    drop(new_doc);
    drop(local_bytes);
    let mut files_written = vec![kept];
    let mut files_removed = Vec::new();
    if backend_backup.is_file() {
        let backend_tf = config.env_dir.join(BACKEND_FILE);
        let original = std::fs::read(&backend_backup)
            .with_context(|| format!("cannot read {}", backend_backup.display()))?;
        ctx.runner.write_file(&backend_tf, &original, 0o644)?;
        ctx.runner.remove_file(&backend_backup)?;
        files_written.push(backend_tf);
        files_removed.push(backend_backup);
    }
    if override_file.is_file() {
        ctx.runner.remove_file(&override_file)?;
        files_removed.push(override_file);
    }
    ctx.runner
        .remove_file(&config.env_dir.join(LOCAL_MARKER_FILE))?;
    files_removed.push(config.env_dir.join(LOCAL_MARKER_FILE));
    // Without an active backend block Terraform keeps using the local state: it stays.
    if !ctx.backend.from_minio_block {
        ctx.runner.remove_file(&state_file)?;
        files_removed.push(state_file.clone());
    }
    let mut doc = WriteDoc {
        action: "to_minio".into(),
        env: config.env.clone(),
        bucket: ctx.backend.bucket.clone(),
        key: ctx.backend.key.clone(),
        dry_run: config.dry_run,
        source: Some(state_file.display().to_string()),
        previous: previous.as_ref().map(StateInfo::summary),
        previous_version,
        new_serial: Some(new_serial),
        new_version: put.as_ref().and_then(|p| p.version_id.clone()),
        save_point,
        files_removed,
        files_written,
        ..WriteDoc::default()
    };
    if config.mode == Mode::Return {
        doc.action = "return".into();
    }
    let mut code = Code::Success;
    if put.is_some() && ctx.backend.from_minio_block {
        let ok = ctx.read_back_sha256()? == new_sha256;
        doc.checksum_ok = Some(ok);
        if ok {
            pve_common::success!(
                "{} is back in {} as serial {new_serial}; read back, checksum matches",
                config.env,
                ctx.url()
            );
        } else {
            pve_common::error!("the state read back differs from what was pushed");
            code = Code::Failure;
        }
    } else if put.is_some() {
        let (init, _overrides) = ctx.init_args(true)?;
        ctx.run_terraform(Access::Mutating, &init)
            .context("terraform init -reconfigure against S3 failed")?;
        let pulled =
            ctx.run_terraform(Access::ReadOnly, &["state".to_owned(), "pull".to_owned()])?;
        let pulled = pulled.map(|o| o.stdout).unwrap_or_default();
        let seen =
            State::parse(&pulled).context("terraform state pull did not return a usable state")?;
        let ok = seen.serial == new_serial && seen.lineage == local.lineage;
        doc.checksum_ok = Some(ok);
        if !ok {
            pve_common::error!(
                "Terraform reads serial {} lineage {} from S3, expected serial {new_serial}",
                seen.serial,
                seen.lineage
            );
            code = Code::Failure;
        }
        let plan_code = verify_plan_only(ctx)?;
        doc.plan_exit_code = Some(plan_code);
        if plan_code == 1 {
            code = Code::Failure;
        } else if ok {
            pve_common::success!(
                "{} uses S3 again: terraform state pull shows serial {new_serial}, terraform plan succeeds",
                config.env
            );
        }
    }
    Ok((code, doc))
}

fn verify_plan_only(ctx: &Ctx<'_>) -> Result<i32> {
    let plan = [
        "plan",
        "-input=false",
        "-lock=false",
        "-detailed-exitcode",
        "-no-color",
    ];
    let out = ctx.runner.run(Access::ReadOnly, &ctx.terraform(&plan)?)?;
    let code = out.as_ref().and_then(|o| o.status.code()).unwrap_or(1);
    if code == 1 {
        pve_common::error!(
            "terraform plan against S3 failed: {}",
            pve_common::runner::stderr_excerpt(out.as_ref().map_or(&[][..], |o| &o.stderr), 10)
        );
    }
    Ok(code)
}

fn print_write_doc(ctx: &Ctx<'_>, doc: &WriteDoc) -> Result<()> {
    let doc = output::Document::new(SCHEMA, tool_info(), doc);
    output::emit(ctx.config.json, &doc, |doc| write_doc_text(doc.body))?;
    Ok(())
}

/// A write's summary as `key: value` lines.
fn write_doc_text(doc: &WriteDoc) -> String {
    let mut lines = vec![
        format!("env: {}", doc.env),
        format!("state: s3://{}/{}", doc.bucket, doc.key),
    ];
    // Version ids come from the S3 server: one value per line, escaped.
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            lines.push(format!("{k}: {}", output::escape(&v)));
        }
    };
    push("action", Some(doc.action.to_string()));
    push("dry_run", doc.dry_run.then(|| "yes".to_owned()));
    push("source", doc.source.clone());
    push("restored_version", doc.restored_version.clone());
    push(
        "previous_serial",
        doc.previous.as_ref().map(|p| p.serial.to_string()),
    );
    push("previous_version", doc.previous_version.clone());
    push("new_serial", doc.new_serial.map(|s| s.to_string()));
    push("new_version", doc.new_version.clone());
    push(
        "save_point",
        doc.save_point.as_ref().map(|p| p.display().to_string()),
    );
    push("checksum_ok", doc.checksum_ok.map(|b| b.to_string()));
    push("plan_exit_code", doc.plan_exit_code.map(|c| c.to_string()));
    push("go_back", doc.how_to_go_back.clone());
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn save_points_belong_to_their_env_and_same_second_ones_sort_last() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "prod-20261120T020000Z.tfstate",
            "prod-20261121T020000Z.tfstate",
            "prod-20261121T020000Z-1.tfstate",
            "prod-eu-20261122T020000Z.tfstate",
            "prod-notes.tfstate",
        ] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let newest = super::newest_save_point(dir.path(), "prod").unwrap();
        assert_eq!(
            newest.file_name().unwrap(),
            "prod-20261121T020000Z-1.tfstate"
        );
        let eu = super::newest_save_point(dir.path(), "prod-eu").unwrap();
        assert_eq!(eu.file_name().unwrap(), "prod-eu-20261122T020000Z.tfstate");
        assert!(super::newest_save_point(dir.path(), "lab").is_err());
    }
}
