//! Moves of an environment's state between S3 and a local backend, with their save points: `to_local`
//! (S3, or the newest save point when S3 is unreachable, into `terraform.tfstate` plus an override
//! file), `to_minio` (the local state back to S3 under the lock, guarded by lineage and serial, then
//! proved with Terraform), and the [`Session`] they share with the tools that read or restore versions.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pve_common::exit::Code;
use pve_common::output;
use pve_common::retry::{self, RetryPolicy, ThreadSleeper};
use pve_common::rundir::PrivateDir;
use pve_common::runner::{Access, LocalCommand, Runner};
use pve_common::s3::{
    ObjectVersion, PutResult, S3Client, S3Credentials, S3Error, S3Location, Versioning,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{
    self, BACKEND_BACKUP_FILE, BACKEND_FILE, Backend, LOCAL_OVERRIDE_FILE, Overrides,
};
use crate::lock;
use crate::state::{self, Diff, State, StateInfo, Summary};

/// Marker written next to the local state by [`to_local`]: where it came from.
pub const LOCAL_MARKER_FILE: &str = ".pve-local-backend.json";

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

/// Credentials for `config`'s environment: [`backend::s3_credentials`] with its `--tfvars`.
pub fn credentials(opts: &MoveOptions, backend: &Backend) -> Result<S3Credentials> {
    backend::s3_credentials(backend, opts.tfvars.as_deref())
}

/// What a move of an environment's state needs to know: its folder, where its backend is, the
/// credentials, the save-point folder and how far it may go. Nothing here is about a command line.
#[derive(Clone, Debug, Default)]
pub struct MoveOptions {
    /// Environment name (names the save points).
    pub env: String,
    /// Its folder.
    pub env_dir: PathBuf,
    /// Replaces parts of the backend found in the folder.
    pub overrides: Overrides,
    /// Backend configuration files, read after the backend block.
    pub backend_configs: Vec<PathBuf>,
    /// The homelab variable file for credentials, if any.
    pub tfvars: Option<PathBuf>,
    /// Save-point folder.
    pub backup_dir: PathBuf,
    /// Terraform binary, else found on `PATH`.
    pub terraform_bin: Option<PathBuf>,
    /// A state of another lineage (or a newer serial) may replace the one on S3, and a bucket without
    /// versioning may be written.
    pub allow_lineage_change: bool,
    /// Confirmations are answered yes.
    pub yes: bool,
    /// Nothing is written.
    pub dry_run: bool,
    /// Nothing is contacted either: the requests are shown, not sent.
    pub offline: bool,
}

/// An environment's S3 state opened for reading and writing: its backend, credentials and client, and
/// the runner every side effect goes through.
pub struct Session {
    /// What it was opened with.
    pub opts: MoveOptions,
    /// Honours `dry_run` and `offline`.
    pub runner: Runner,
    /// The backend found in the folder, with the overrides.
    pub backend: Backend,
    /// Its credentials.
    pub creds: S3Credentials,
    /// The client of its bucket.
    pub s3: S3Client,
    /// Retries of read-only calls.
    pub policy: RetryPolicy,
}

impl Session {
    /// A read-only S3 call, retried on transient failures.
    pub fn read<T>(
        &self,
        what: &str,
        op: impl FnMut(u32) -> Result<T, S3Error>,
    ) -> Result<T, S3Error> {
        retry::retry_with_backoff(&self.policy, &ThreadSleeper, what, op)
            .map_err(S3Error::from_retry)
    }

    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.backend.bucket, self.backend.key)
    }

    pub fn versions(&self) -> Result<Vec<ObjectVersion>, S3Error> {
        let key = self.backend.key.clone();
        let all = self.read("list state versions", |_| self.s3.list_versions(&key))?;
        Ok(all.into_iter().filter(|v| v.key == key).collect())
    }

    pub fn get(&self, version: Option<&str>) -> Result<Vec<u8>, S3Error> {
        self.read("fetch state", |_| self.s3.get(&self.backend.key, version))
    }

    /// The current state, judged, `None` when there is none (no object, or a delete marker on top). It is
    /// parsed as it arrives and not kept: its save point is fetched again once the change is confirmed
    /// (see [`Ctx::save_point_of_current`]), so a run holds at most the one state it writes.
    pub fn current(&self) -> Result<Option<CurrentDoc>> {
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
    pub fn judge_current(
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

    /// One version's bytes; a missing one is named as such.
    pub fn fetch_version(&self, version: &str) -> Result<Vec<u8>> {
        self.get(Some(version)).map_err(|e| {
            if e.is_not_found() {
                anyhow::anyhow!(
                    "version {version} of {} does not exist; see --list",
                    self.url()
                )
            } else {
                anyhow::Error::new(e)
                    .context(format!("cannot fetch version {version} of {}", self.url()))
            }
        })
    }

    /// One version's facts, parsed as it arrives (never held whole).
    pub fn read_info(&self, version: &str) -> Result<Result<StateInfo>, S3Error> {
        self.read("fetch state", |_| {
            self.s3
                .get_with(&self.backend.key, Some(version), StateInfo::read)
        })
    }

    /// SHA-256 of the latest state as S3 serves it now, streamed.
    pub fn read_back_sha256(&self) -> Result<Vec<u8>> {
        self.read("read the state back", |_| {
            self.s3.get_with(&self.backend.key, None, state::sha256_of)
        })
        .context("cannot read the state back")?
        .context("cannot read the state back")
    }

    pub fn check_versioning(&self) -> Result<Versioning> {
        let v = self.read("read bucket versioning", |_| self.s3.versioning())?;
        if v != Versioning::Enabled {
            if !self.opts.allow_lineage_change {
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

    /// Writes `doc` as the new current state under `lock` (checked to be still ours just before, released
    /// after) in a critical section: SIGINT/SIGTERM from here waits until the state is written and the
    /// lock released; before, the interrupt handler releases the lock itself. `failed` gives the context
    /// of a failed write, `done` what a lost lock's error says was done. `None` in a dry-run.
    pub fn write_locked(
        &self,
        lock: Option<lock::HeldLock<'_>>,
        doc: &state::Rewritten<'_>,
        failed: impl FnOnce() -> String,
        done: &str,
    ) -> Result<Option<PutResult>> {
        let write = pve_common::interrupt::critical();
        if let Some(lock) = &lock {
            lock.verify()?;
        }
        let put = self
            .s3
            .put_parts(&self.runner, &self.backend.key, &doc.parts(), false)
            .with_context(failed)?;
        if let Some(lock) = lock {
            release_after_write(lock, done)?;
        }
        drop(write);
        Ok(put)
    }

    pub fn lock(&self, operation: &str) -> Result<Option<lock::HeldLock<'_>>> {
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
                    self.opts.env
                );
                Err(e.into_anyhow().context(how))
            }
            Err(e) => Err(e.into_anyhow()),
        }
    }

    /// A new save-point name in the save-point folder (created 0700).
    pub fn save_point_path(&self) -> Result<PathBuf> {
        self.runner
            .create_dir_all(&self.opts.backup_dir, 0o700)
            .with_context(|| {
                format!(
                    "cannot create the save-point folder {}",
                    self.opts.backup_dir.display()
                )
            })?;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut path = self
            .opts
            .backup_dir
            .join(format!("{}-{stamp}.tfstate", self.opts.env));
        let mut n = 1;
        while path.exists() {
            path = self
                .opts
                .backup_dir
                .join(format!("{}-{stamp}-{n}.tfstate", self.opts.env));
            n += 1;
        }
        Ok(path)
    }

    pub fn saved(&self, path: &Path, what: &str) {
        if self.opts.dry_run {
            pve_common::info!("save point: {what} would be written to {}", path.display());
        } else {
            pve_common::info!("save point: {what} written to {}", path.display());
        }
    }

    pub fn save_point(&self, bytes: &[u8], what: &str) -> Result<PathBuf> {
        let path = self.save_point_path()?;
        self.runner
            .write_file(&path, bytes, 0o600)
            .with_context(|| format!("cannot write the save point {}", path.display()))?;
        self.saved(&path, what);
        Ok(path)
    }

    /// The save point of a local file, copied as a stream.
    pub fn save_point_of_file(&self, file: &Path, what: &str) -> Result<PathBuf> {
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
    pub fn save_point_of_current(&self, current: &CurrentDoc, what: &str) -> Result<PathBuf> {
        let path = self.save_point_path()?;
        if self.opts.dry_run {
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
            // Through the runner like every other effect; the refusal below is the error that matters.
            let _ = self.runner.remove_file(&path);
            bail!(
                "the current state {} changed while this run held the lock (a writer that takes no lock?); \
                 nothing was written",
                self.url()
            );
        }
        self.saved(&path, what);
        Ok(path)
    }

    pub fn terraform(&self, args: &[&str]) -> Result<LocalCommand> {
        let bin = pve_common::terraform::resolve(
            self.opts.terraform_bin.as_deref().map(|p| p.as_os_str()),
        )?;
        let mut cmd = LocalCommand::new(OsString::from(&bin.path))
            .dir(&self.opts.env_dir)
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
    pub fn init_args(&self, backend_s3: bool) -> Result<(Vec<String>, Option<PrivateDir>)> {
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
        let o = &self.opts.overrides;
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
    pub fn run_terraform(
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
    /// Writes `path` through `runner` once its earlier content is remembered.
    fn write(&mut self, runner: &Runner, path: &Path, body: &[u8], mode: u32) -> Result<()> {
        self.remember(path)?;
        runner.write_file(path, body, mode)?;
        Ok(())
    }

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
pub enum Current {
    /// It parses.
    Valid(StateInfo),
    /// It does not; the newest valid version of the history, if any.
    Corrupt {
        /// Version id and state.
        last_valid: Option<(String, StateInfo)>,
    },
}

/// The current state object: judged, and what identifies its bytes for the save point.
pub struct CurrentDoc {
    /// Valid, or corrupt with the newest valid version standing in.
    pub judged: Current,
    /// Its S3 version id, if the bucket gives one.
    pub version_id: Option<String>,
    /// SHA-256 of its bytes as judged.
    pub sha256: Vec<u8>,
    /// Their length.
    pub size: u64,
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
    pub fn reference(&self) -> Option<(&StateInfo, &'static str)> {
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

/// What a write (a restore, [`to_local`], [`to_minio`]) did: restore-tfstate prints it as the fields of an
/// [`output::Document`] of schema `pve-tfstate/v1` (in `docs/json/restore-tfstate.md`).
#[derive(Serialize, Deserialize, Default, Clone, Debug)]
pub struct WriteDoc {
    /// `restore`, `to_local`, `fallback`, `to_minio` or `return`.
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

impl Session {
    /// Finds `opts.env_dir`'s backend and its credentials and opens its bucket; contacts nothing yet.
    pub fn open(opts: MoveOptions) -> Result<Session> {
        let backend = backend::discover(&opts.env_dir, &opts.backend_configs, &opts.overrides)?;
        let creds = credentials(&opts, &backend)?;
        let location = S3Location {
            endpoint: backend.endpoint.clone(),
            region: backend.region.clone(),
            bucket: backend.bucket.clone(),
            path_style: backend.path_style,
        };
        let s3 = S3Client::new(location, &creds, Duration::from_secs(30))?;
        let policy = retry_policy();
        let runner = Runner::with_mode(if opts.offline {
            pve_common::runner::Mode::DryRun
        } else if opts.dry_run {
            pve_common::runner::Mode::Preview
        } else {
            pve_common::runner::Mode::Live
        });
        Ok(Session {
            opts,
            runner,
            backend,
            creds,
            s3,
            policy,
        })
    }
}

/// Moves `opts.env` to a local backend (state from S3, or from the newest save point in
/// `opts.backup_dir` when S3 is unreachable) with an override file, and returns what it did, printing
/// nothing on stdout (restore-tfstate's `--to-local`).
pub fn to_local(opts: &MoveOptions, version: Option<&str>) -> Result<WriteReport> {
    let ctx = Session::open(opts.clone())?;
    let doc = to_local_doc(&ctx, version, false)?;
    Ok(WriteReport {
        code: Code::Success,
        doc,
    })
}

/// Pushes the local state of `opts.env` to S3, removes the override and proves Terraform uses S3 again;
/// prints nothing on stdout (restore-tfstate's `--to-minio`). A state of another lineage, or an older
/// serial, replaces the S3 one only with `opts.allow_lineage_change`.
pub fn to_minio(opts: &MoveOptions) -> Result<WriteReport> {
    let ctx = Session::open(opts.clone())?;
    let (code, doc) = to_minio_doc(&ctx)?;
    Ok(WriteReport { code, doc })
}

/// 3 attempts from 1 s, unless `PVE_RETRY_ATTEMPTS` / `PVE_RETRY_DELAY` (humantime) say otherwise.
pub fn retry_policy() -> RetryPolicy {
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

pub fn newest_local_backup(ctx: &Session) -> Result<PathBuf> {
    newest_save_point(&ctx.opts.backup_dir, &ctx.opts.env)
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
pub fn to_local_doc(
    ctx: &Session,
    version: Option<&str>,
    rewrite_backend: bool,
) -> Result<WriteDoc> {
    let config = &ctx.opts;
    let (bytes, source) = state_for_local(ctx, version)?;
    let state = State::parse(&bytes).with_context(|| format!("{source} is not a usable state"))?;
    let state_file = config.env_dir.join("terraform.tfstate");
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
    let earlier_state = save_differing_state(ctx, &state_file, &bytes)?;
    doc.save_point.clone_from(&earlier_state);
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
        let switch_file = write_local_backend(ctx, &mut undo, rewrite_backend)?;
        let marker = serde_json::json!({
            "source": source, "serial": state.serial, "lineage": state.lineage,
            "bucket": ctx.backend.bucket, "key": ctx.backend.key, "created": jiff::Timestamp::now().to_string(),
        });
        undo.write(
            &ctx.runner,
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

/// The save point of the local state `state_file` when it exists and differs from `bytes`, the state
/// about to replace it.
fn save_differing_state(ctx: &Session, state_file: &Path, bytes: &[u8]) -> Result<Option<PathBuf>> {
    if !state_file.exists() {
        return Ok(None);
    }
    let same = same_content(state_file, bytes)
        .with_context(|| format!("cannot read {}", state_file.display()))?;
    if same {
        return Ok(None);
    }
    let saved = ctx.save_point_of_file(state_file, "the existing local terraform.tfstate")?;
    Ok(Some(saved))
}

/// The state `--to-local` writes, and where it came from: S3's version `version` (else the latest), or
/// the newest local save point when S3 is unreachable.
fn state_for_local(ctx: &Session, version: Option<&str>) -> Result<(Vec<u8>, String)> {
    Ok(match version {
        Some(v) => (ctx.fetch_version(v)?, format!("S3 version {v}")),
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
    })
}

/// Writes the file that switches the environment to its local state: the override file, or with
/// `rewrite_backend` backend.tf itself (its original copied aside once). The file written.
fn write_local_backend(
    ctx: &Session,
    undo: &mut Rollback,
    rewrite_backend: bool,
) -> Result<PathBuf> {
    let config = &ctx.opts;
    let override_file = config.env_dir.join(LOCAL_OVERRIDE_FILE);
    let backend_tf = config.env_dir.join(BACKEND_FILE);
    let backend_backup = config.env_dir.join(BACKEND_BACKUP_FILE);
    let switch_file = if rewrite_backend && backend_tf.is_file() {
        if !backend_backup.exists() {
            let original = std::fs::read(&backend_tf)
                .with_context(|| format!("cannot read {}", backend_tf.display()))?;
            undo.write(&ctx.runner, &backend_backup, &original, 0o644)?;
        }
        undo.write(
            &ctx.runner,
            &backend_tf,
            override_text(&config.env, "--fallback", "--return").as_bytes(),
            0o644,
        )?;
        backend_tf
    } else {
        undo.write(
            &ctx.runner,
            &override_file,
            override_text(&config.env, "--to-local", "--to-minio").as_bytes(),
            0o644,
        )?;
        override_file
    };
    Ok(switch_file)
}

pub fn to_minio_doc(ctx: &Session) -> Result<(Code, WriteDoc)> {
    let config = &ctx.opts;
    let (override_file, backend_backup) = local_backend_files(config)?;
    let state_file = config.env_dir.join("terraform.tfstate");
    let local_bytes = std::fs::read(&state_file)
        .with_context(|| format!("cannot read {}", state_file.display()))?;
    let local = State::parse(&local_bytes)
        .with_context(|| format!("{} is not a usable state", state_file.display()))?;
    ctx.check_versioning()?;
    let lock = ctx.lock("OperationTypeApply")?;
    let current = ctx.current()?;
    let previous_version = current.as_ref().and_then(|c| c.version_id.clone());
    let reference = current.as_ref().and_then(|c| c.judged.reference());
    if let Some((remote, what)) = reference
        && !config.allow_lineage_change
    {
        refuse_divergent(remote, what, &local)?;
    }
    let previous = reference.map(|(s, _)| s.clone());
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
    let save_point = match &current {
        Some(cur) => Some(ctx.save_point_of_current(cur, "the S3 state before the push")?),
        None => None,
    };
    let new_doc = local.with_serial(new_serial);
    let new_sha256 = new_doc.sha256();
    let put = ctx.write_locked(
        lock,
        &new_doc,
        || "pushing the local state failed; the local state is unchanged".to_owned(),
        "the state was pushed",
    )?;
    let kept = ctx.save_point(&local_bytes, "the local state that was pushed")?;
    let local = local.into_info();
    // The local state is not needed any more: `terraform state pull` below returns another copy.
    drop(new_doc);
    drop(local_bytes);
    let (files_written, files_removed) =
        leave_local_backend(ctx, kept, &state_file, override_file, backend_backup)?;
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
    let code = match put {
        Some(_) => prove_pushed(ctx, &mut doc, new_serial, &new_sha256, &local.lineage)?,
        None => Code::Success,
    };
    Ok((code, doc))
}

/// The override file and the copy of backend.tf that put an environment on its local state; an error
/// when it has neither (it is not on a local backend).
fn local_backend_files(config: &MoveOptions) -> Result<(PathBuf, PathBuf)> {
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
    Ok((override_file, backend_backup))
}

/// Refuses to push over a state on S3 of another lineage, or newer than the local one.
fn refuse_divergent(remote: &StateInfo, what: &str, local: &StateInfo) -> Result<()> {
    if remote.lineage != local.lineage {
        bail!(
            "{what} on S3 has lineage {} but the local state has {}: they are different states; pass --allow-lineage-change to replace the S3 one",
            remote.lineage,
            local.lineage
        );
    }
    if remote.serial > local.serial {
        bail!(
            "{what} on S3 (serial {}) is newer than the local state (serial {}): something applied against S3 \
             while this environment was local; reconcile by hand, or pass --allow-lineage-change to replace it",
            remote.serial,
            local.serial
        );
    }
    Ok(())
}

/// Once the state is pushed: the local backend's files go (backend.tf is put back from its copy) and
/// the pushed state is kept as save point `kept`. The files written and removed.
fn leave_local_backend(
    ctx: &Session,
    kept: PathBuf,
    state_file: &Path,
    override_file: PathBuf,
    backend_backup: PathBuf,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let config = &ctx.opts;
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
        ctx.runner.remove_file(state_file)?;
        files_removed.push(state_file.to_owned());
    }
    Ok((files_written, files_removed))
}

/// Proves the pushed state is what S3 now serves: read back and compared by checksum when the homelab's
/// MinIO block names the bucket, else through Terraform (`state pull`, then a plan).
fn prove_pushed(
    ctx: &Session,
    doc: &mut WriteDoc,
    new_serial: u64,
    new_sha256: &[u8],
    lineage: &str,
) -> Result<Code> {
    let config = &ctx.opts;
    let mut code = Code::Success;
    if ctx.backend.from_minio_block {
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
    } else {
        let (init, _overrides) = ctx.init_args(true)?;
        ctx.run_terraform(Access::Mutating, &init)
            .context("terraform init -reconfigure against S3 failed")?;
        let pulled =
            ctx.run_terraform(Access::ReadOnly, &["state".to_owned(), "pull".to_owned()])?;
        let pulled = pulled.map(|o| o.stdout).unwrap_or_default();
        let seen =
            State::parse(&pulled).context("terraform state pull did not return a usable state")?;
        let ok = seen.serial == new_serial && seen.lineage == lineage;
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
    Ok(code)
}

pub fn verify_plan_only(ctx: &Session) -> Result<i32> {
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
