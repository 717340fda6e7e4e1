//! `restore-tfstate`: list and restore earlier versions of a Terraform state from versioned S3 (MinIO),
//! and move an environment to a local backend while MinIO is down (`--to-local`) and back (`--to-minio`).
//!
//! Safety rules, in order of every write: refuse invalid states; take Terraform's own state lock; save the
//! current state locally (0600) and rely on bucket versioning; confirm; write a new version (never delete
//! one); release the lock; read back and compare. `--dry-run` performs the reads and none of the writes.
//! The moves to and from a local backend, and the S3 session every mode uses, are `pve_tf::moves`
//! (rebuild-minio runs the same moves); this crate adds the command line, the modes and the output.

pub mod cli;
pub mod words;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pve_common::exit::{Code, UsageError};
use pve_common::output::{self, ToolInfo};
use pve_common::retry::{self, ThreadSleeper};
use pve_common::runner::Access;
use pve_common::s3::{ObjectVersion, Versioning};
use pve_tf::moves::{self, Current, MoveOptions, Session, default_backup_dir};
use pve_tf::{lock, state};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use pve_tf::backend::{BACKEND_BACKUP_FILE, BACKEND_FILE, LOCAL_OVERRIDE_FILE, Overrides};
use pve_tf::state::{Diff, State, StateInfo, Summary};

pub use pve_tf::moves::{LOCAL_MARKER_FILE, WriteDoc, WriteReport};

/// The JSON schema name of every document this tool prints.
pub const SCHEMA: &str = "pve-tfstate/v1";
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
    /// The mode.
    pub mode: Mode,
    /// The environment, its backend, credentials and save points, and how far a write may go:
    /// `--allow-lineage-change` is what lets another lineage in.
    pub moves: MoveOptions,
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
        let root = args
            .environments
            .root_in(args.common.homelab().ok().as_ref());
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
        let mode = mode_of(args, version)?;
        check_workspace_key(args)?;
        let root_tfvars = root.join("../terraform.tfvars");
        Ok(Config {
            mode,
            moves: MoveOptions {
                env,
                env_dir,
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
                terraform_bin: args.environments.terraform_bin.clone(),
                allow_lineage_change: args.allow_lineage_change,
                yes: args.force.force,
                dry_run: args.common.mode() != pve_common::runner::Mode::Live,
                offline: args.common.mode() == pve_common::runner::Mode::DryRun,
            },
            json: args.common.json,
        })
    }
}

/// The mode of a command line that names exactly one; `version` is `--version-id`, checked.
fn mode_of(args: &cli::Args, version: Option<String>) -> Result<Mode, UsageError> {
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
    Ok(mode)
}

/// Refuses `--key` under a Terraform workspace when Terraform checks the result: it would read another
/// object.
fn check_workspace_key(args: &cli::Args) -> Result<(), UsageError> {
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
    Ok(())
}

/// Everything a mode needs: the library's [`Session`] and this run's configuration (its mode and
/// `--json`).
struct Ctx<'a> {
    session: Session,
    config: &'a Config,
}

impl std::ops::Deref for Ctx<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

fn context(config: &Config) -> Result<Ctx<'_>> {
    Ok(Ctx {
        session: Session::open(config.moves.clone())?,
        config,
    })
}

/// One version in `--list`: S3's fields, and with `--details` the state's summary or why it could not be
/// read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListedVersion {
    /// The S3 version.
    #[serde(flatten)]
    pub version: ObjectVersion,
    /// `--details`: the state's serial, lineage, Terraform version and resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Summary>,
    /// `--details`: why the version could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_error: Option<String>,
}

/// The `--list --json` document's own fields (under [`output::Document`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListDoc {
    /// `list`.
    pub action: String,
    /// The environment.
    pub env: String,
    /// The state's bucket.
    pub bucket: String,
    /// The state's key.
    pub key: String,
    /// The bucket's versioning (null in a dry-run).
    pub versioning: Option<Versioning>,
    /// The state lock object, when one is held now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<lock::LockInfo>,
    /// Newest first.
    pub versions: Vec<ListedVersion>,
}

fn tool_info() -> ToolInfo {
    ToolInfo::new("restore-tfstate", env!("CARGO_PKG_VERSION"))
}

/// Runs the tool. An operator who declines (or cannot be asked) ends the run with success and nothing
/// written, as the script did; a successful run ends with the script's closing line.
pub fn run(config: &Config) -> Result<Code> {
    let ctx = context(config)?;
    if config.moves.offline {
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
            let doc = moves::to_local_doc(&ctx, version.as_deref(), false)?;
            print_write_doc(&ctx, &doc)?;
            Ok(Code::Success)
        }
        Mode::Fallback { version } => {
            let doc = moves::to_local_doc(&ctx, version.as_deref(), true)?;
            print_write_doc(&ctx, &doc)?;
            Ok(Code::Success)
        }
        Mode::ToMinio => moves::to_minio_doc(&ctx).and_then(|(code, doc)| {
            print_write_doc(&ctx, &doc)?;
            Ok(code)
        }),
        Mode::Return => {
            minio_health(&ctx)?;
            moves::to_minio_doc(&ctx).and_then(|(code, mut doc)| {
                doc.action = "return".into();
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
                    if config.moves.dry_run {
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
    let planned = Planned {
        ctx,
        obj: format!("{base}/{}", b.key),
        base,
        save_point: config
            .moves
            .backup_dir
            .join(format!("{}-<YYYYMMDDTHHMMSSZ>.tfstate", config.moves.env)),
    };
    let (base, obj) = (&planned.base, &planned.obj);
    let lock = format!("{obj}.tflock");
    let would = |what: String| ctx.runner.announce(what);
    let mut doc = WriteDoc {
        env: config.moves.env.clone(),
        bucket: b.bucket.clone(),
        key: b.key.clone(),
        dry_run: true,
        ..WriteDoc::default()
    };
    match &config.mode {
        Mode::List { details } => {
            planned.list_versions();
            would(format!("GET {base}?versioning"));
            if *details {
                would(format!("GET {obj}?versionId=<version-id> (each version)"));
            }
            let doc = output::Document::new(
                SCHEMA,
                tool_info(),
                ListDoc {
                    action: "list".to_owned(),
                    env: config.moves.env.clone(),
                    bucket: b.bucket.clone(),
                    key: b.key.clone(),
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
        } => planned.restore(&mut doc, version, *verify_plan),
        Mode::ToLocal { version } | Mode::Fallback { version } => {
            planned.to_local(&mut doc, version.as_deref());
        }
        Mode::ToMinio | Mode::Return => planned.to_minio(&mut doc),
    }
    print_write_doc(ctx, &doc)?;
    Ok(Code::Success)
}

/// What a dry-run shows of a mode that writes: its requests and commands, on `[DRY-RUN]` lines.
struct Planned<'c> {
    ctx: &'c Ctx<'c>,
    /// `<endpoint>/<bucket>`.
    base: String,
    /// The state object's URL.
    obj: String,
    /// The save point's path, with a placeholder for its time.
    save_point: PathBuf,
}

impl Planned<'_> {
    fn would(&self, what: String) {
        self.ctx.runner.announce(what);
    }

    fn tf(&self, args: &str) -> String {
        format!(
            "cd {} && terraform {args}",
            self.ctx.config.moves.env_dir.display()
        )
    }

    fn list_versions(&self) {
        self.would(format!(
            "GET {}?versions&prefix={}",
            self.base, self.ctx.backend.key
        ));
    }

    fn lock_lines(&self, what: &str) {
        if self.ctx.backend.use_lockfile {
            self.would(format!(
                "PUT {}.tflock (If-None-Match: *; the state lock, {what})",
                self.obj
            ));
        }
    }

    fn unlock(&self) {
        if self.ctx.backend.use_lockfile {
            self.would(format!("DELETE {}.tflock", self.obj));
        }
    }

    /// `--restore VERSION`.
    fn restore(&self, doc: &mut WriteDoc, version: &str, verify_plan: bool) {
        let (base, obj) = (&self.base, &self.obj);
        let save_point = self.save_point.clone();
        doc.action = "restore".into();
        doc.restored_version = Some(version.to_owned());
        self.would(format!("GET {obj}?versionId={version}"));
        self.would(format!("GET {base}?versioning"));
        self.lock_lines("restore");
        self.list_versions();
        self.would(format!("GET {obj} (the current state)"));
        self.would(format!(
            "write {} (0600: the current state)",
            save_point.display()
        ));
        self.would(format!(
            "PUT {obj} (version {version}, serial <current + 1>)"
        ));
        self.unlock();
        self.would(format!("GET {obj} (read back, checksum)"));
        if verify_plan {
            self.would(self.tf("init -input=false -reconfigure -no-color"));
            self.would(
                self.tf(
                    "plan -input=false -lock=false -refresh=false -detailed-exitcode -no-color",
                ),
            );
        }
        doc.save_point = Some(save_point);
    }

    /// `--to-local` and `--fallback`.
    fn to_local(&self, doc: &mut WriteDoc, version: Option<&str>) {
        let (config, obj) = (self.ctx.config, &self.obj);
        let save_point = &self.save_point;
        let fallback = matches!(config.mode, Mode::Fallback { .. });
        doc.action = if fallback { "fallback" } else { "to_local" }.into();
        match version {
            Some(v) => self.would(format!("GET {obj}?versionId={v}")),
            None => self.would(format!(
                "GET {obj} (if S3 does not answer: the newest save point {}/{}-*.tfstate)",
                config.moves.backup_dir.display(),
                config.moves.env
            )),
        }
        let state_file = config.moves.env_dir.join("terraform.tfstate");
        if state_file.exists() {
            self.would(format!(
                "write {} (0600: the existing {}, if it differs)",
                save_point.display(),
                state_file.display()
            ));
        }
        self.would(format!("write {} (0600)", state_file.display()));
        let backend_tf = config.moves.env_dir.join(BACKEND_FILE);
        if fallback && backend_tf.is_file() {
            if !config.moves.env_dir.join(BACKEND_BACKUP_FILE).exists() {
                self.would(format!(
                    "copy {} to {}",
                    backend_tf.display(),
                    config.moves.env_dir.join(BACKEND_BACKUP_FILE).display()
                ));
            }
            self.would(format!(
                "write {} (backend \"local\")",
                backend_tf.display()
            ));
        } else {
            self.would(format!(
                "write {} (backend \"local\")",
                config.moves.env_dir.join(LOCAL_OVERRIDE_FILE).display()
            ));
        }
        self.would(format!(
            "write {}",
            config.moves.env_dir.join(LOCAL_MARKER_FILE).display()
        ));
        self.would(self.tf("init -input=false -reconfigure -no-color"));
        doc.files_written = vec![state_file];
    }

    /// `--to-minio` and `--return`.
    fn to_minio(&self, doc: &mut WriteDoc) {
        let (config, b, base, obj) = (self.ctx.config, &self.ctx.backend, &self.base, &self.obj);
        let save_point = &self.save_point;
        doc.action = if config.mode == Mode::Return {
            "return"
        } else {
            "to_minio"
        }
        .into();
        if config.mode == Mode::Return {
            self.would(format!("GET {}", health_url(&b.endpoint)));
        }
        let state_file = config.moves.env_dir.join("terraform.tfstate");
        self.would(format!("GET {base}?versioning"));
        self.lock_lines("push");
        self.list_versions();
        self.would(format!("GET {obj} (the current S3 state)"));
        self.would(format!(
            "write {} (0600: the S3 state)",
            save_point.display()
        ));
        self.would(format!(
            "PUT {obj} ({}, serial <max(local, S3 + 1)>)",
            state_file.display()
        ));
        self.unlock();
        let backup = config.moves.env_dir.join(BACKEND_BACKUP_FILE);
        if backup.is_file() {
            self.would(format!(
                "write {} (from {}), remove {}",
                config.moves.env_dir.join(BACKEND_FILE).display(),
                backup.display(),
                backup.display()
            ));
        } else {
            self.would(format!(
                "remove {}",
                config.moves.env_dir.join(LOCAL_OVERRIDE_FILE).display()
            ));
        }
        self.would(format!(
            "remove {}",
            config.moves.env_dir.join(LOCAL_MARKER_FILE).display()
        ));
        if b.from_minio_block {
            self.would(format!("GET {obj} (read back, checksum)"));
        } else {
            self.would(format!("remove {}", state_file.display()));
            self.would(self.tf("init -input=false -reconfigure -no-color"));
            self.would(self.tf("state pull"));
            self.would(self.tf("plan -input=false -lock=false -detailed-exitcode -no-color"));
        }
        doc.source = Some(state_file.display().to_string());
    }
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
            ctx.config.moves.env,
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
            action: "list".to_owned(),
            env: ctx.config.moves.env.clone(),
            bucket: ctx.backend.bucket.clone(),
            key: ctx.backend.key.clone(),
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
        let workers: Vec<_> = (0..detail_workers(listed).min(ids.len()).max(1))
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

/// How many versions `--list --details` reads at once: [`DETAIL_FETCHES`] while they are small (the
/// time goes into round trips), one per core once they are large (parsing is then the work, and each
/// parser holds a version's resource addresses).
fn detail_workers(listed: &[ListedVersion]) -> usize {
    const LARGE: u64 = 16 << 20;
    if listed.iter().any(|v| v.version.size > LARGE) {
        std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(1, DETAIL_FETCHES)
    } else {
        DETAIL_FETCHES
    }
}

fn show(ctx: &Ctx<'_>, version: &str, sensitive: bool) -> Result<Code> {
    let bytes = ctx.fetch_version(version)?;
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
    if !ctx.config.moves.dry_run {
        pve_common::confirm::ask(
            &format!("Remove the state lock {path} (lock ID {id})?"),
            &format!("remove the state lock of {}", ctx.config.moves.env),
            ctx.config.moves.yes,
        )?;
    }
    lock::force_unlock(&ctx.s3, &ctx.runner, &ctx.backend.key, id)?;
    if ctx.config.json {
        output::write_json(&serde_json::json!({
            "schema": SCHEMA,
            "tool": tool_info(),
            "action": "force_unlock",
            "env": ctx.config.moves.env,
            "bucket": ctx.backend.bucket,
            "key": ctx.backend.key,
            "dry_run": ctx.config.moves.dry_run,
            "lock": info,
        }))?;
    }
    if !ctx.config.moves.dry_run {
        pve_common::success!("removed the state lock {path} (lock ID {id})");
    }
    Ok(Code::Success)
}

fn restore(ctx: &Ctx<'_>, version: &str, verify_plan: bool) -> Result<Code> {
    let config = ctx.config;
    let chosen_bytes = ctx.fetch_version(version)?;
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
    if let Some((prev, what)) = guard {
        check_lineage(config, version, &chosen, prev, what)?;
    }
    let new_serial =
        state::next_serial(guard.map_or(chosen.serial, |(p, _)| p.serial.max(chosen.serial)))?;
    let diff = guard.map(|(p, _)| p.diff(&chosen));
    describe_restore(ctx, version, &chosen, previous, new_serial, diff.as_ref());
    if !config.moves.dry_run {
        confirm_restore(ctx, version)?;
    }
    // Only once confirmed: a declined restore leaves no file behind.
    let save_point = match &current {
        Some(current) => Some(ctx.save_point_of_current(current, "the current state")?),
        None => None,
    };
    let new_doc = chosen.with_serial(new_serial);
    let put = ctx.write_locked(
        lock,
        &new_doc,
        || {
            format!(
                "writing the restored state failed; nothing was lost: the previous state is {}{}",
                shown(save_point.as_deref()),
                previous_version
                    .as_deref()
                    .map_or_else(String::new, |v| format!(" and version {v} in the bucket"))
            )
        },
        "the state was restored",
    )?;
    if put.is_some() {
        pve_common::interrupt::set_note(Some(format!(
            "version {version} had been restored as serial {new_serial} (the previous state is {}); it was \
             not read back or verified",
            shown(save_point.as_deref())
        )));
    }
    let mut doc = WriteDoc {
        action: "restore".into(),
        env: config.moves.env.clone(),
        bucket: ctx.backend.bucket.clone(),
        key: ctx.backend.key.clone(),
        dry_run: config.moves.dry_run,
        restored_version: Some(version.to_owned()),
        previous: guard.map(|(p, _)| p.summary()),
        previous_version,
        new_serial: Some(new_serial),
        new_version: put.as_ref().and_then(|p| p.version_id.clone()),
        save_point,
        diff,
        ..WriteDoc::default()
    };
    let code = match put {
        Some(_) => prove_restored(ctx, &mut doc, (version, new_serial), &new_doc, verify_plan)?,
        None => Code::Success,
    };
    print_write_doc(ctx, &doc)?;
    Ok(code)
}

/// A save point's path as a message names it.
fn shown(save_point: Option<&std::path::Path>) -> String {
    save_point.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string())
}

/// Refuses a version of another lineage than the state it replaces, unless `--allow-lineage-change`.
fn check_lineage(
    config: &Config,
    version: &str,
    chosen: &StateInfo,
    prev: &StateInfo,
    what: &str,
) -> Result<()> {
    if prev.lineage == chosen.lineage {
        return Ok(());
    }
    let msg = format!(
        "version {version} has lineage {} but {what} has lineage {}: it belongs to another state \
             (a re-created environment or another key). Restoring it would make Terraform forget every resource \
             of the current lineage",
        chosen.lineage, prev.lineage
    );
    if !config.moves.allow_lineage_change {
        bail!("{msg}; pass --allow-lineage-change if that is really intended");
    }
    pve_common::warn!("{msg}; continuing because of --allow-lineage-change");
    Ok(())
}

/// Asks before the state of the environment is overwritten (`--force`: yes).
fn confirm_restore(ctx: &Ctx<'_>, version: &str) -> Result<()> {
    pve_common::confirm::ask(
        &format!(
            "Restore version {version} as the current state of {}?",
            ctx.url()
        ),
        &format!("overwrite the state of {}", ctx.config.moves.env),
        ctx.config.moves.yes,
    )?;
    Ok(())
}

/// Reads the restored state back (`written`: `version` as serial `new_serial`) and compares checksums; with `--verify-plan`, runs the plan too.
fn prove_restored(
    ctx: &Ctx<'_>,
    doc: &mut WriteDoc,
    (version, new_serial): (&str, u64),
    written: &state::Rewritten<'_>,
    verify_plan: bool,
) -> Result<Code> {
    let mut code = Code::Success;
    let ok = ctx.read_back_sha256()? == written.sha256();
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
