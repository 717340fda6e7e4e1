//! `rebuild-minio`: rebuild the MinIO server that holds the Terraform states, and prove it is healthy.
//!
//! MinIO holds its own environment's state, so the rebuild cannot use the S3 backend: the environment is
//! moved to a local state first (`pve_tf::moves::to_local`, restore-tfstate's `--to-local`, which falls back to the newest save point
//! when S3 is down), only the MinIO module is applied (the plan is refused if it would destroy or replace
//! anything else), the buckets are created with versioning, the other states are uploaded from the save
//! points with serial and lineage checks, the environment moves back (`--to-minio`), and every environment
//! is verified against S3. Each step is reported; `--json` prints `pve-rebuild-minio/v1`.

pub mod cli;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pve_common::exit::{Code, UsageError};
use pve_common::output::{self, ToolInfo};
use pve_common::runner::{Access, LocalCommand, Mode, Runner};
use pve_common::s3::{S3Client, S3Credentials, S3Location, Versioning};
use pve_tf::TargetedPlan;
use pve_tf::backend::{self, Backend, LOCAL_OVERRIDE_FILE, Overrides};
use pve_tf::moves::MoveOptions;
use pve_tf::state::{State, StateInfo};
use serde::{Deserialize, Serialize};

/// The JSON schema name of the report.
pub const SCHEMA: &str = "pve-rebuild-minio/v1";

/// The `rebuild-minio` binary, for [`pve_common::run`].
#[derive(Debug)]
pub struct RebuildMinio;

impl pve_common::Tool for RebuildMinio {
    const NAME: &'static str = "rebuild-minio";
    type Args = cli::Args;

    fn common(args: &cli::Args) -> &pve_common::cli::CommonArgs {
        &args.common
    }

    fn run(args: cli::Args) -> anyhow::Result<Code> {
        run(&Config::from_args(&args)?)
    }
}

/// A validated run configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The MinIO environment's state moves: the environment and its folder, `--endpoint`, the variable
    /// file for credentials, `--state-from` (the save points), `--terraform-bin`,
    /// `--allow-lineage-change`, `--force` and whether anything is changed (`--preview` or `--dry-run`:
    /// nothing). The other environments' moves take the same options ([`Config::move_options`]).
    pub moves: MoveOptions,
    /// Its node (`default_node` of its own terraform.tfvars; never the root's).
    pub node: Option<String>,
    /// `--root`.
    pub root: PathBuf,
    /// `--target`.
    pub target: String,
    /// `--buckets` (empty: from the backends).
    pub buckets: Vec<String>,
    /// `--health-timeout`.
    pub health_timeout: Duration,
    /// `--rebuild-healthy`.
    pub rebuild_healthy: bool,
    /// How much the run may do: `--dry-run` contacts nothing, `--preview` runs the read-only checks.
    pub mode: Mode,
    /// `--json`.
    pub json: bool,
}

fn valid_target(target: &str) -> bool {
    target.starts_with("module.")
        && target.len() > "module.".len()
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-[]\"".contains(c))
}

/// The MinIO environment when neither `--env` nor a local state says otherwise (the script's default).
pub const DEFAULT_ENV: &str = "monitoring";

/// The environment whose local Terraform state manages a guest under `target` (`module.minio.`...): the
/// MinIO container's. Only local states: the others are in MinIO, which may be the thing that is down.
fn owner_of_target(root: &Path, target: &str) -> Option<String> {
    let prefix = format!("{target}.");
    let names = pve_common::environments::discover(root).ok()?;
    let owners: Vec<String> = names
        .into_iter()
        .filter(|name| {
            let file = root.join(name).join(pve_common::fleet::LOCAL_STATE);
            std::fs::read(&file)
                .ok()
                .and_then(|b| pve_common::fleet::managed_guests(&b).ok())
                .is_some_and(|guests| guests.iter().any(|g| g.address.starts_with(&prefix)))
        })
        .collect();
    match owners.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The node an environment's own terraform.tfvars names (`default_node`, else `pve_node`).
fn env_node(env_dir: &Path, env: &str) -> Option<String> {
    let vars = pve_common::tfvars::parse_tfvars_file(&env_dir.join("terraform.tfvars")).ok()?;
    pve_common::homelab::EnvSettings::from_vars(env, &vars)
        .ok()?
        .default_node
}

impl Config {
    /// Validates the command line; a problem is a [`UsageError`].
    pub fn from_args(args: &cli::Args) -> Result<Config, UsageError> {
        let root = args
            .environments
            .root_in(args.common.homelab().ok().as_ref());
        if !valid_target(&args.target) {
            return Err(UsageError(format!(
                "--target {:?}: give a module address such as module.minio",
                args.target
            )));
        }
        let env = match &args.env {
            Some(e) => e.clone(),
            None => owner_of_target(&root, &args.target).unwrap_or_else(|| DEFAULT_ENV.to_owned()),
        };
        let env_dir = pve_common::environments::resolve(&root, &env)
            .map_err(|e| UsageError(e.to_string()))?;
        let node = env_node(&env_dir, &env);
        for b in &args.buckets {
            let ok = (3..=63).contains(&b.len())
                && b.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !ok {
                return Err(UsageError(format!(
                    "--buckets: {b:?} is not an S3 bucket name (3-63 of a-z 0-9 . -)"
                )));
            }
        }
        if args.health_timeout.is_zero() {
            return Err(UsageError("--health-timeout must be above 0".to_owned()));
        }
        let root_tfvars = root.join("../terraform.tfvars");
        Ok(Config {
            moves: MoveOptions {
                env,
                env_dir,
                overrides: Overrides {
                    endpoint: args.endpoint.clone(),
                    ..Overrides::default()
                },
                backend_configs: Vec::new(),
                tfvars: args
                    .tfvars
                    .clone()
                    .or_else(|| root_tfvars.is_file().then_some(root_tfvars)),
                backup_dir: args
                    .state_from
                    .clone()
                    .unwrap_or_else(pve_tf::moves::default_backup_dir),
                terraform_bin: args.environments.terraform_bin.clone(),
                allow_lineage_change: args.allow_lineage_change,
                yes: args.force.force,
                dry_run: args.common.mode() != Mode::Live,
                offline: false,
            },
            node,
            root,
            target: args.target.clone(),
            buckets: args.buckets.clone(),
            health_timeout: args.health_timeout,
            rebuild_healthy: args.rebuild_healthy,
            mode: args.common.mode(),
            json: args.common.json,
        })
    }

    /// The options of the state moves for environment `env` in `env_dir`: the MinIO environment's, for
    /// another folder.
    fn move_options(&self, env: &str, env_dir: &Path) -> MoveOptions {
        MoveOptions {
            env: env.to_owned(),
            env_dir: env_dir.to_owned(),
            ..self.moves.clone()
        }
    }
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Done and fine.
    Ok,
    /// Done and failed (the run fails).
    Failed,
    /// Not needed, or not reached.
    Skipped,
    /// Dry-run: would have been done.
    Planned,
}

/// The steps of a rebuild, in the order they run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StepName {
    /// MinIO and every state bucket are checked.
    Health,
    /// The MinIO environment moves to a local state.
    ToLocal,
    /// The targeted plan is made and checked.
    Plan,
    /// The plan is applied.
    Apply,
    /// MinIO is awaited.
    WaitHealthy,
    /// The state buckets are created, with versioning.
    Buckets,
    /// The states are uploaded from the save points.
    States,
    /// The MinIO environment moves back to S3.
    ToMinio,
    /// Every environment is checked against S3.
    Verify,
}

impl StepName {
    /// Every step, in order.
    pub const ALL: [StepName; 9] = [
        StepName::Health,
        StepName::ToLocal,
        StepName::Plan,
        StepName::Apply,
        StepName::WaitHealthy,
        StepName::Buckets,
        StepName::States,
        StepName::ToMinio,
        StepName::Verify,
    ];

    /// The name in the JSON report and the text table.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The step an error belongs to when this one was the last recorded: the next (the last stays
    /// itself).
    fn next(self) -> StepName {
        let i = Self::ALL
            .iter()
            .position(|n| *n == self)
            .map_or(0, |i| i + 1);
        Self::ALL.get(i).copied().unwrap_or(StepName::Verify)
    }
}

/// One step of the rebuild.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// Which step.
    pub name: StepName,
    /// How it ended.
    pub status: StepStatus,
    /// What happened, for people.
    pub detail: String,
}

/// The health check's findings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    /// The endpoint answered.
    pub live: bool,
    /// `minio` (`/minio/health/live` answered 200), `s3` (an S3 request answered) or `none`.
    pub probe: String,
    /// Why not live.
    pub error: Option<String>,
}

/// One bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketReport {
    /// Name.
    pub name: String,
    /// It existed before this run.
    pub existed: bool,
    /// This run created it.
    pub created: bool,
    /// This run enabled versioning.
    pub versioning_enabled_now: bool,
    /// Versioning at the end (`enabled`, `suspended`, `off`; null when unknown).
    pub versioning: Option<Versioning>,
    /// Problem, if any.
    pub error: Option<String>,
}

/// What a rebuild did with an environment's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StateAction {
    /// The save point was uploaded.
    Uploaded,
    /// S3 already had that serial or a newer one.
    Kept,
    /// The MinIO environment's local state went back by to-minio.
    MovedBack,
    /// Dry-run: the MinIO environment's local state would go back.
    WouldMoveBack,
    /// Dry-run: the save point would be uploaded.
    WouldUpload,
    /// Uploading failed.
    Failed,
    /// Left to to-minio, which does its own serial checks.
    Unchecked,
}

/// How a rebuild ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Not decided yet (a finished report always has another).
    #[serde(rename = "")]
    #[strum(serialize = "")]
    Pending,
    /// MinIO and every bucket were fine: nothing to do.
    Healthy,
    /// MinIO was rebuilt.
    Rebuilt,
    /// Dry-run: MinIO would be rebuilt.
    WouldRebuild,
    /// A confirmation was declined or the plan was refused.
    Refused,
    /// A step failed.
    Failed,
}

/// One environment's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateReport {
    /// Environment.
    pub env: String,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The save point uploaded (or that would be).
    pub source: Option<PathBuf>,
    /// Serial of the save point.
    pub source_serial: Option<u64>,
    /// What became of it.
    pub action: StateAction,
    /// Serial in S3 at the end.
    pub serial: Option<u64>,
    /// S3 version id written.
    pub version_id: Option<String>,
    /// The S3 state parses as a valid Terraform state (and the bucket is versioned).
    pub sound: Option<bool>,
    /// `terraform init -reconfigure` against S3 succeeded.
    pub init_ok: Option<bool>,
    /// `terraform plan -detailed-exitcode` against S3: 0 no changes, 2 changes, 1 error.
    pub plan_exit_code: Option<i32>,
    /// Problem, if any.
    pub error: Option<String>,
}

impl StateReport {
    /// An environment's entry before anything is known of its state in S3.
    fn new(
        env: &str,
        bucket: &str,
        key: &str,
        action: StateAction,
        source: Option<PathBuf>,
    ) -> StateReport {
        StateReport {
            env: env.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source,
            source_serial: None,
            action,
            serial: None,
            version_id: None,
            sound: None,
            init_ok: None,
            plan_exit_code: None,
            error: None,
        }
    }
}

/// A change outside the target that made the plan unacceptable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outside {
    /// Resource address.
    pub address: String,
    /// Terraform's actions (`delete`, `create`...).
    pub actions: Vec<String>,
}

/// The whole report: with `--json`, the fields of a [`output::Document`] of schema [`SCHEMA`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The MinIO environment.
    pub env: String,
    /// Its node (its terraform.tfvars' `default_node`), when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `--target`.
    pub target: String,
    /// The S3 endpoint.
    pub endpoint: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// How the rebuild ended.
    pub outcome: Outcome,
    /// The health check before anything else.
    pub health: Health,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Changes of the plan outside the target that would destroy or replace something.
    pub refused_changes: Vec<Outside>,
    /// Buckets.
    pub buckets: Vec<BucketReport>,
    /// One entry per environment with an S3 backend.
    pub states: Vec<StateReport>,
}

impl Report {
    fn step(&mut self, name: StepName, status: StepStatus, detail: impl Into<String>) {
        let detail = detail.into();
        match status {
            StepStatus::Ok => pve_common::success!("{name}: {detail}"),
            StepStatus::Failed => pve_common::error!("{name}: {detail}"),
            StepStatus::Skipped | StepStatus::Planned => pve_common::info!("{name}: {detail}"),
        }
        self.steps.push(Step {
            name,
            status,
            detail,
        });
    }

    fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == StepStatus::Failed)
    }
}

/// An environment with an S3 backend.
struct EnvBackend {
    name: String,
    dir: PathBuf,
    backend: Backend,
}

struct Ctx<'a> {
    config: &'a Config,
    runner: Runner,
    creds: S3Credentials,
    endpoint: String,
    minio: EnvBackend,
    envs: Vec<EnvBackend>,
    buckets: Vec<String>,
}

fn tool_info() -> ToolInfo {
    ToolInfo::new("rebuild-minio", env!("CARGO_PKG_VERSION"))
}

impl Ctx<'_> {
    /// The status of a step that went well: only planned in a dry-run.
    fn done(&self) -> StepStatus {
        if self.config.moves.dry_run {
            StepStatus::Planned
        } else {
            StepStatus::Ok
        }
    }

    fn client(&self, bucket: &str, backend: Option<&Backend>) -> Result<S3Client> {
        let (region, path_style) = backend
            .or(Some(&self.minio.backend))
            .map(|b| (b.region.clone(), b.path_style))
            .unwrap_or_else(|| ("us-east-1".to_owned(), true));
        Ok(S3Client::new(
            S3Location {
                endpoint: self.endpoint.clone(),
                region,
                bucket: bucket.to_owned(),
                path_style,
            },
            &self.creds,
            Duration::from_secs(10),
        )?)
    }

    fn terraform(&self, dir: &Path, args: &[String]) -> Result<LocalCommand> {
        Ok(self.terraform_command(dir, args.to_vec())?)
    }

    fn terraform_command(
        &self,
        dir: &Path,
        args: Vec<String>,
    ) -> Result<LocalCommand, pve_common::terraform::TerraformError> {
        pve_tf::command(
            self.config.moves.terraform_bin.as_deref(),
            dir,
            Some(&self.creds),
            args,
        )
    }

    /// MinIO's own health URL, else an S3 ListBuckets.
    fn health(&self) -> Health {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/minio/health/live", self.endpoint.trim_end_matches('/'));
        match agent.get(&url).call() {
            Err(e) => {
                return Health {
                    live: false,
                    probe: "none".to_owned(),
                    error: Some(format!("{url}: {e}")),
                };
            }
            Ok(r) if r.status() == 200 => {
                return Health {
                    live: true,
                    probe: "minio".to_owned(),
                    error: None,
                };
            }
            Ok(_) => {}
        }
        // Not MinIO (or an old one): an S3 ListBuckets; any answer that is not a server error counts as
        // alive (a refusal of the credentials is then found by the bucket checks, with its reason).
        let result = self
            .client(self.buckets.first().map_or("", String::as_str), None)
            .and_then(|c| c.list_buckets().map_err(anyhow::Error::from));
        match result {
            Ok(_) => Health {
                live: true,
                probe: "s3".to_owned(),
                error: None,
            },
            Err(e) => {
                let answered = e
                    .downcast_ref::<pve_common::s3::S3Error>()
                    .and_then(pve_common::s3::S3Error::status)
                    .is_some_and(|s| s < 500);
                Health {
                    live: answered,
                    probe: if answered { "s3" } else { "none" }.to_owned(),
                    error: (!answered).then(|| format!("{e:#}")),
                }
            }
        }
    }

    fn bucket_sound(&self, bucket: &str) -> Result<(), String> {
        let client = self.client(bucket, None).map_err(|e| format!("{e:#}"))?;
        match client.bucket_exists() {
            Ok(true) => {}
            Ok(false) => return Err(format!("bucket {bucket} does not exist")),
            Err(e) => return Err(e.to_string()),
        }
        match client.versioning() {
            Ok(Versioning::Enabled) => Ok(()),
            Ok(v) => Err(format!("bucket {bucket} has versioning {v:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The state in S3, parsed as it arrives (never held whole).
    fn state_sound(&self, env: &EnvBackend) -> Result<StateInfo, String> {
        let client = self
            .client(&env.backend.bucket, Some(&env.backend))
            .map_err(|e| format!("{e:#}"))?;
        client
            .get_with(&env.backend.key, None, StateInfo::read)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("s3://{}/{}: {e:#}", env.backend.bucket, env.backend.key))
    }

    fn all_envs(&self) -> impl Iterator<Item = &EnvBackend> {
        std::iter::once(&self.minio).chain(self.envs.iter())
    }
}

fn discover_envs(config: &Config) -> Result<(EnvBackend, Vec<EnvBackend>)> {
    let minio_backend = backend::discover(&config.moves.env_dir, &[], &config.moves.overrides)
        .with_context(|| format!("the MinIO environment `{}`", config.moves.env))?;
    let minio = EnvBackend {
        name: config.moves.env.clone(),
        dir: config.moves.env_dir.clone(),
        backend: minio_backend,
    };
    let mut envs = Vec::new();
    for name in pve_common::environments::discover(&config.root)? {
        if name == config.moves.env {
            continue;
        }
        let dir = config.root.join(&name);
        match backend::discover(&dir, &[], &config.moves.overrides) {
            Ok(backend) => envs.push(EnvBackend { name, dir, backend }),
            Err(e) => pve_common::warn!("environment `{name}` is left alone: {e:#}"),
        }
    }
    Ok((minio, envs))
}

/// Runs the tool.
pub fn run(config: &Config) -> Result<Code> {
    pve_common::info!(
        "MinIO environment {}{}",
        config.moves.env,
        config
            .node
            .as_deref()
            .map(|n| format!(", on node {n}"))
            .unwrap_or_default()
    );
    if config.mode == Mode::DryRun {
        return dry_run(config);
    }
    let (minio, envs) = discover_envs(config)?;
    let creds = pve_tf::moves::credentials(
        &config.move_options(&config.moves.env, &config.moves.env_dir),
        &minio.backend,
    )?;
    let buckets = bucket_names(config, &minio, &envs);
    let ctx = Ctx {
        config,
        runner: Runner::with_mode(config.mode),
        creds,
        endpoint: minio.backend.endpoint.clone(),
        minio,
        envs,
        buckets,
    };
    let mut report = Report {
        env: config.moves.env.clone(),
        node: config.node.clone(),
        target: config.target.clone(),
        endpoint: pve_common::secret::redact_urls(&ctx.endpoint).into_owned(),
        dry_run: config.moves.dry_run,
        outcome: Outcome::Pending,
        health: Health::default(),
        steps: Vec::new(),
        refused_changes: Vec::new(),
        buckets: Vec::new(),
        states: Vec::new(),
    };
    let code = match rebuild(&ctx, &mut report) {
        Ok(code) => code,
        Err(e) => {
            let declined = e
                .downcast_ref::<pve_common::confirm::ConfirmError>()
                .is_some();
            // The step an error belongs to: the one after the last recorded.
            let name = report
                .steps
                .last()
                .map_or(StepName::Health, |s| s.name)
                .next();
            report.step(name, StepStatus::Failed, format!("{e:#}"));
            if report.outcome == Outcome::Pending {
                report.outcome = if declined {
                    Outcome::Refused
                } else {
                    Outcome::Failed
                };
            }
            match pve_common::exit::classify(&e, Code::Failure) {
                Code::Busy => Code::Busy,
                _ => Code::Failure,
            }
        }
    };
    print_report(config, &report)?;
    Ok(code)
}

/// `--buckets`, else every bucket an environment's backend names.
fn bucket_names(config: &Config, minio: &EnvBackend, envs: &[EnvBackend]) -> Vec<String> {
    let mut buckets: Vec<String> = if config.buckets.is_empty() {
        let set: BTreeSet<String> = std::iter::once(minio)
            .chain(envs.iter())
            .map(|e| e.backend.bucket.clone())
            .collect();
        set.into_iter().collect()
    } else {
        config.buckets.clone()
    };
    buckets.dedup();
    buckets
}

/// `--dry-run`: every request and command the rebuild would make, on `[DRY-RUN]` lines, with what the
/// local files tell (endpoint, buckets, keys, folders) and placeholders for what only a query would;
/// nothing is contacted (no HTTP, no S3, no Terraform) and nothing written. Then the usual summary.
fn dry_run(config: &Config) -> Result<Code> {
    let runner = Runner::with_mode(Mode::DryRun);
    let placeholder_backend = |env: &str| Backend {
        bucket: pve_common::homelab::Minio::bucket(env),
        key: pve_common::homelab::STATE_KEY.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: config
            .moves
            .overrides
            .endpoint
            .clone()
            .unwrap_or_else(|| pve_common::runner::placeholder("endpoint")),
        path_style: true,
        use_lockfile: false,
        dynamodb_table: None,
        access_key: None,
        secret_key: None,
        config_files: Vec::new(),
        from_minio_block: false,
    };
    let (minio, envs) = match discover_envs(config) {
        Ok(found) => found,
        Err(e) => {
            pve_common::warn!("{e:#}");
            let minio = EnvBackend {
                name: config.moves.env.clone(),
                dir: config.moves.env_dir.clone(),
                backend: placeholder_backend(&config.moves.env),
            };
            (minio, Vec::new())
        }
    };
    let buckets = bucket_names(config, &minio, &envs);
    let endpoint = minio.backend.endpoint.trim_end_matches('/').to_owned();
    let mut report = Report {
        env: config.moves.env.clone(),
        node: config.node.clone(),
        target: config.target.clone(),
        endpoint: pve_common::secret::redact_urls(&endpoint).into_owned(),
        dry_run: true,
        outcome: Outcome::WouldRebuild,
        health: Health {
            live: false,
            probe: "none".to_owned(),
            error: None,
        },
        steps: Vec::new(),
        refused_changes: Vec::new(),
        buckets: Vec::new(),
        states: Vec::new(),
    };
    let dry = DryRun {
        config,
        runner,
        minio,
        envs,
        buckets,
        endpoint,
    };
    dry.health(&mut report);
    dry.rebuild(&mut report);
    dry.create_buckets(&mut report);
    dry.upload_states(&mut report);
    dry.to_minio(&mut report);
    dry.verify(&mut report);
    pve_common::info!("{}", pve_common::tr!("common.dry_run_note"));
    print_report(config, &report)?;
    Ok(Code::Success)
}

/// What `--dry-run` knows from the local files: the environments and their backends, the buckets and
/// MinIO's endpoint. Each step says what it would do, on `[DRY-RUN]` lines, and adds its planned step to
/// the report.
struct DryRun<'c> {
    config: &'c Config,
    runner: Runner,
    minio: EnvBackend,
    envs: Vec<EnvBackend>,
    buckets: Vec<String>,
    endpoint: String,
}

/// `terraform -chdir=DIR ARGS`, as a dry-run shows it.
fn tf(dir: &Path, args: &str) -> String {
    format!("terraform -chdir={} {args}", dir.display())
}

/// The URL of a backend's state object.
fn object(b: &Backend) -> String {
    format!(
        "{}/{}/{}",
        b.endpoint.trim_end_matches('/'),
        b.bucket,
        b.key
    )
}

impl DryRun<'_> {
    fn would(&self, what: String) {
        self.runner.announce(what);
    }

    fn all(&self) -> impl Iterator<Item = &EnvBackend> {
        std::iter::once(&self.minio).chain(self.envs.iter())
    }

    fn save_point(&self, env: &str) -> String {
        self.config
            .moves
            .backup_dir
            .join(format!("{env}-<YYYYMMDDTHHMMSSZ>.tfstate"))
            .display()
            .to_string()
    }

    fn lock(&self, b: &Backend, what: &str) {
        if b.use_lockfile {
            self.would(format!("{what} {}.tflock", object(b)));
        }
    }

    /// The health checks: MinIO, its buckets and every state.
    fn health(&self, report: &mut Report) {
        let endpoint = &self.endpoint;
        let buckets = &self.buckets;
        let health = format!("GET {endpoint}/minio/health/live");
        self.would(health.clone());
        self.would(format!(
            "GET {endpoint}/ (S3 ListBuckets, when the health URL is not MinIO's)"
        ));
        for b in buckets {
            self.would(format!("HEAD {endpoint}/{b}"));
            self.would(format!("GET {endpoint}/{b}?versioning"));
        }
        for e in self.all() {
            self.would(format!("GET {} (is the state sound?)", object(&e.backend)));
        }
        report.step(StepName::Health, StepStatus::Planned, health);
    }

    /// The MinIO environment moved to a local state, its targeted plan and apply, the wait for MinIO.
    fn rebuild(&self, report: &mut Report) {
        let config = self.config;
        let endpoint = &self.endpoint;
        let env_dir = &self.config.moves.env_dir;
        let target = &self.config.target;
        let minio = &self.minio;
        let local_state = env_dir.join("terraform.tfstate");
        self.would(format!(
            "GET {} -> {} (else the newest save point {})",
            object(&minio.backend),
            local_state.display(),
            self.save_point(&minio.name)
        ));
        self.would(format!(
            "write {} (local backend)",
            env_dir.join(LOCAL_OVERRIDE_FILE).display()
        ));
        report.step(
            StepName::ToLocal,
            StepStatus::Planned,
            format!(
                "{} would move to {}",
                config.moves.env,
                local_state.display()
            ),
        );
        let plan = pve_common::runner::placeholder("plan");
        self.would(tf(
            env_dir,
            &format!("plan -input=false -no-color -target={target} -out={plan}"),
        ));
        self.would(tf(env_dir, &format!("show -json -no-color {plan}")));
        report.step(
            StepName::Plan,
            StepStatus::Planned,
            format!("terraform plan -target={target}, refused if it destroys anything outside it"),
        );
        let apply = tf(env_dir, &format!("apply -target={target} -auto-approve"));
        self.would(format!(
            "{apply} (as the saved plan {plan}, once confirmed: --force answers yes)"
        ));
        report.step(StepName::Apply, StepStatus::Planned, apply);

        self.would(format!(
            "GET {endpoint}/minio/health/live (until MinIO answers, at most {})",
            humantime::format_duration(config.health_timeout)
        ));
        report.step(
            StepName::WaitHealthy,
            StepStatus::Planned,
            format!("GET {endpoint}/minio/health/live"),
        );
    }

    /// The buckets created and versioned.
    fn create_buckets(&self, report: &mut Report) {
        let endpoint = &self.endpoint;
        let buckets = &self.buckets;
        for b in buckets {
            self.would(format!(
                "PUT {endpoint}/{b} (create bucket {b} when missing)"
            ));
            self.would(format!("PUT {endpoint}/{b}?versioning (Enabled)"));
        }
        report.step(StepName::Buckets, StepStatus::Planned, buckets.join(", "));
    }

    /// Every other environment's save point uploaded.
    fn upload_states(&self, report: &mut Report) {
        let config = self.config;
        let envs = &self.envs;
        for e in envs {
            self.would(format!(
                "GET {} (its serial and lineage)",
                object(&e.backend)
            ));
            self.lock(&e.backend, "PUT");
            self.would(format!(
                "PUT {} (from {}, unless S3 holds that serial or a newer one)",
                object(&e.backend),
                self.save_point(&e.name)
            ));
            self.lock(&e.backend, "DELETE");
            report.states.push(StateReport::new(
                &e.name,
                &e.backend.bucket,
                &e.backend.key,
                StateAction::WouldUpload,
                Some(PathBuf::from(self.save_point(&e.name))),
            ));
        }
        report.step(
            StepName::States,
            StepStatus::Planned,
            format!("from {}", config.moves.backup_dir.display()),
        );
    }

    /// The MinIO environment's state moved back to S3.
    fn to_minio(&self, report: &mut Report) {
        let config = self.config;
        let env_dir = &self.config.moves.env_dir;
        let minio = &self.minio;
        let local_state = self.config.moves.env_dir.join("terraform.tfstate");
        self.lock(&minio.backend, "PUT");
        self.would(format!(
            "PUT {} (from {})",
            object(&minio.backend),
            local_state.display()
        ));
        self.lock(&minio.backend, "DELETE");
        self.would(format!(
            "remove {} (back to S3)",
            env_dir.join(LOCAL_OVERRIDE_FILE).display()
        ));
        report.states.insert(
            0,
            StateReport::new(
                &minio.name,
                &minio.backend.bucket,
                &minio.backend.key,
                StateAction::WouldMoveBack,
                Some(local_state),
            ),
        );
        report.step(
            StepName::ToMinio,
            StepStatus::Planned,
            format!("{} back to {}", config.moves.env, object(&minio.backend)),
        );
    }

    /// Terraform re-initialised and planned in every environment.
    fn verify(&self, report: &mut Report) {
        let mut reinit = Vec::new();
        for e in self.all() {
            self.would(tf(&e.dir, "init -input=false -reconfigure -no-color"));
            self.would(tf(
                &e.dir,
                "plan -input=false -lock=false -detailed-exitcode -no-color",
            ));
            reinit.push(e.name.clone());
        }
        report.step(
            StepName::Verify,
            StepStatus::Planned,
            format!(
                "terraform init -reconfigure and plan in {}",
                reinit.join(", ")
            ),
        );
    }
}

fn rebuild(ctx: &Ctx<'_>, report: &mut Report) -> Result<Code> {
    let config = ctx.config;
    // 1. Health first.
    let healthy = check_health(ctx, report);
    if healthy {
        if !config.rebuild_healthy {
            report.outcome = Outcome::Healthy;
            pve_common::success!("nothing to do (pass --rebuild-healthy to rebuild anyway)");
            return Ok(Code::Success);
        }
        pve_common::warn!("--rebuild-healthy: rebuilding a healthy MinIO");
    }
    let needs_apply = !report.health.live || healthy;
    if needs_apply {
        if !apply_minio(ctx, report)? {
            return Ok(Code::Failure);
        }
        if config.moves.dry_run {
            for name in [
                StepName::WaitHealthy,
                StepName::Buckets,
                StepName::States,
                StepName::ToMinio,
                StepName::Verify,
            ] {
                report.step(
                    name,
                    StepStatus::Planned,
                    "would follow once the apply has brought MinIO back",
                );
            }
            report.outcome = Outcome::WouldRebuild;
            return Ok(Code::Success);
        }
        wait_healthy(ctx, report)?;
    } else {
        for name in [
            StepName::ToLocal,
            StepName::Plan,
            StepName::Apply,
            StepName::WaitHealthy,
        ] {
            report.step(name, StepStatus::Skipped, "MinIO is live: no apply needed");
        }
    }
    buckets(ctx, report)?;
    states(ctx, report, needs_apply)?;
    if needs_apply {
        move_back(ctx, report)?;
    } else {
        report.step(
            StepName::ToMinio,
            StepStatus::Skipped,
            "the MinIO environment stayed on S3",
        );
    }
    verify(ctx, report)?;
    report.outcome = if report.failed() {
        Outcome::Failed
    } else if config.moves.dry_run {
        Outcome::WouldRebuild
    } else {
        Outcome::Rebuilt
    };
    Ok(if report.failed() {
        Code::Failure
    } else {
        Code::Success
    })
}

/// Step 1: MinIO's health, its buckets' and every state's soundness, recorded as the health step.
/// Whether all of it is fine.
fn check_health(ctx: &Ctx<'_>, report: &mut Report) -> bool {
    report.health = ctx.health();
    let mut unsound = Vec::new();
    if report.health.live {
        for b in &ctx.buckets {
            if let Err(e) = ctx.bucket_sound(b) {
                unsound.push(e);
            }
        }
        for env in ctx.all_envs() {
            if let Err(e) = ctx.state_sound(env) {
                unsound.push(format!("{}: {e}", env.name));
            }
        }
    }
    let healthy = report.health.live && unsound.is_empty();
    let how = format!("probe {}", report.health.probe);
    if healthy {
        report.step(
            StepName::Health,
            StepStatus::Ok,
            format!(
                "MinIO at {} is live ({how}); buckets {} exist with versioning; every state is sound",
                ctx.endpoint,
                ctx.buckets.join(", ")
            ),
        );
    } else if report.health.live {
        report.step(
            StepName::Health,
            StepStatus::Skipped,
            format!(
                "MinIO at {} is live ({how}) but not sound: {}",
                ctx.endpoint,
                unsound.join("; ")
            ),
        );
    } else {
        report.step(
            StepName::Health,
            StepStatus::Skipped,
            format!(
                "MinIO at {} is down: {}",
                ctx.endpoint,
                report.health.error.clone().unwrap_or_default()
            ),
        );
    }
    healthy
}

/// The MinIO environment's state back to S3 (restore-tfstate --to-minio), recorded as its step and in
/// its state's entry.
fn move_back(ctx: &Ctx<'_>, report: &mut Report) -> Result<()> {
    let config = ctx.config;
    let back =
        pve_tf::moves::to_minio(&config.move_options(&config.moves.env, &config.moves.env_dir))
            .context("moving the MinIO environment back to S3 (restore-tfstate --to-minio)")?;
    let detail = format!(
        "{} uses S3 again: serial {} written{}",
        config.moves.env,
        back.doc
            .new_serial
            .map_or_else(|| "?".to_owned(), |s| s.to_string()),
        back.doc
            .new_version
            .as_deref()
            .map_or_else(String::new, |v| format!(" as version {v}"))
    );
    if config.moves.dry_run {
        report.step(
            StepName::ToMinio,
            StepStatus::Planned,
            "would push the local state back",
        );
    } else if back.code == Code::Success {
        report.step(StepName::ToMinio, StepStatus::Ok, detail);
    } else {
        report.step(StepName::ToMinio, StepStatus::Failed, detail);
    }
    if let Some(s) = report.states.iter_mut().find(|s| s.env == config.moves.env) {
        s.action = if config.moves.dry_run {
            StateAction::WouldMoveBack
        } else {
            StateAction::MovedBack
        };
        s.serial = back.doc.new_serial;
        s.version_id = back.doc.new_version.clone();
    }
    Ok(())
}

/// Steps 2: to-local, plan, refusal check, confirmation, apply. `Ok(false)` when refused.
fn apply_minio(ctx: &Ctx<'_>, report: &mut Report) -> Result<bool> {
    let config = ctx.config;
    if !move_to_local(ctx, report)? {
        return Ok(true);
    }
    let terraform = |args: Vec<String>| ctx.terraform_command(&config.moves.env_dir, args);
    let plan = TargetedPlan::create(&ctx.runner, &terraform, &config.target, "minio.tfplan")?;
    let outside = plan.destructive_outside();
    if !outside.is_empty() {
        report.refused_changes = outside
            .iter()
            .map(|c| Outside {
                address: c.address.clone(),
                actions: c.actions.clone(),
            })
            .collect();
        let list: Vec<String> = outside.iter().map(ToString::to_string).collect();
        report.step(
            StepName::Plan,
            StepStatus::Failed,
            format!(
                "refused: the plan would destroy or replace resources outside {}: {}; nothing was applied \
                 ({} is still on its local state; fix the configuration, then run again)",
                config.target,
                list.join(", "),
                config.moves.env
            ),
        );
        report.outcome = Outcome::Refused;
        return Ok(false);
    }
    report.step(
        StepName::Plan,
        StepStatus::Ok,
        format!(
            "{} change(s), all within {}",
            plan.within().len(),
            config.target
        ),
    );
    plan.confirm(&config.moves.env, config.moves.yes)?;
    plan.apply(&ctx.runner, &terraform)?;
    report.step(
        StepName::Apply,
        StepStatus::Ok,
        format!("applied the plan of {}", config.target),
    );
    Ok(true)
}

/// Step 2a: the MinIO environment onto a local state (unless it is already). `Ok(false)` in a dry-run,
/// where the plan and the apply are only described.
fn move_to_local(ctx: &Ctx<'_>, report: &mut Report) -> Result<bool> {
    let config = ctx.config;
    let override_file = config.moves.env_dir.join(LOCAL_OVERRIDE_FILE);
    let already_local = override_file.is_file();
    if already_local {
        report.step(
            StepName::ToLocal,
            StepStatus::Ok,
            format!(
                "{} already uses a local state ({LOCAL_OVERRIDE_FILE})",
                config.moves.env
            ),
        );
    } else {
        let local = pve_tf::moves::to_local(
            &config.move_options(&config.moves.env, &config.moves.env_dir),
            None,
        )
        .context("moving the MinIO environment to a local state (restore-tfstate --to-local)")?;
        let detail = format!(
            "{} moved to a local state from {}",
            config.moves.env,
            local.doc.source.as_deref().unwrap_or("?")
        );
        if config.moves.dry_run {
            report.step(
                StepName::ToLocal,
                StepStatus::Planned,
                format!("would be: {detail}"),
            );
            report.step(
                StepName::Plan,
                StepStatus::Planned,
                format!(
                    "would run terraform plan -target={} on the local state",
                    config.target
                ),
            );
            report.step(
                StepName::Apply,
                StepStatus::Planned,
                "would apply that plan after confirmation",
            );
            return Ok(false);
        }
        report.step(StepName::ToLocal, StepStatus::Ok, detail);
    }
    Ok(true)
}

fn wait_healthy(ctx: &Ctx<'_>, report: &mut Report) -> Result<()> {
    let timeout = ctx.config.health_timeout;
    let start = Instant::now();
    let mut last_note = Instant::now();
    loop {
        let h = ctx.health();
        if h.live {
            let waited = start.elapsed();
            report.health = h;
            report.step(
                StepName::WaitHealthy,
                StepStatus::Ok,
                format!("MinIO answers after {:.1}s", waited.as_secs_f64()),
            );
            return Ok(());
        }
        if start.elapsed() >= timeout {
            bail!(
                "MinIO at {} did not answer within {}: {}",
                ctx.endpoint,
                humantime::format_duration(timeout),
                h.error.unwrap_or_default()
            );
        }
        if last_note.elapsed() >= Duration::from_secs(5) {
            pve_common::info!(
                "waiting for MinIO at {} ({}s of {})",
                ctx.endpoint,
                start.elapsed().as_secs(),
                humantime::format_duration(timeout)
            );
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn buckets(ctx: &Ctx<'_>, report: &mut Report) -> Result<()> {
    let mut problems = Vec::new();
    for name in &ctx.buckets {
        let client = ctx.client(name, None)?;
        let existed = client
            .bucket_exists()
            .with_context(|| format!("cannot check bucket {name}"))?;
        let mut entry = BucketReport {
            name: name.clone(),
            existed,
            created: false,
            versioning_enabled_now: false,
            versioning: None,
            error: None,
        };
        if !existed {
            client
                .create_bucket(&ctx.runner)
                .with_context(|| format!("cannot create bucket {name}"))?;
            entry.created = !ctx.config.moves.dry_run;
        }
        let versioning = if existed || !ctx.config.moves.dry_run {
            Some(
                client
                    .versioning()
                    .with_context(|| format!("cannot read the versioning of {name}"))?,
            )
        } else {
            None
        };
        if versioning != Some(Versioning::Enabled) {
            client
                .set_versioning(&ctx.runner, true)
                .with_context(|| format!("cannot enable versioning on {name}"))?;
            entry.versioning_enabled_now = !ctx.config.moves.dry_run;
        }
        if !ctx.config.moves.dry_run {
            let now = client.versioning()?;
            entry.versioning = Some(now);
            if now != Versioning::Enabled {
                entry.error = Some(format!("versioning is {now:?} after enabling it"));
                problems.push(format!("{name}: versioning is {now:?}"));
            }
        }
        report.buckets.push(entry);
    }
    let created: Vec<&str> = report
        .buckets
        .iter()
        .filter(|b| b.created)
        .map(|b| b.name.as_str())
        .collect();
    if problems.is_empty() {
        report.step(
            StepName::Buckets,
            ctx.done(),
            format!(
                "{} with versioning enabled (created: {})",
                ctx.buckets.join(", "),
                if created.is_empty() {
                    "none".to_owned()
                } else {
                    created.join(", ")
                }
            ),
        );
    } else {
        report.step(StepName::Buckets, StepStatus::Failed, problems.join("; "));
    }
    Ok(())
}

/// Step 3b: upload each environment's newest save point, unless S3 holds the same or a newer serial.
fn states(ctx: &Ctx<'_>, report: &mut Report, minio_moves_back: bool) -> Result<()> {
    let mut failed = Vec::new();
    let mut uploaded = 0;
    let mut considered = 0;
    for env in ctx.all_envs() {
        let is_minio = env.name == ctx.minio.name;
        let mut entry = StateReport::new(
            &env.name,
            &env.backend.bucket,
            &env.backend.key,
            StateAction::Failed,
            None,
        );
        if is_minio && minio_moves_back {
            // Its local state goes back through to-minio, which does its own serial checks.
            entry.source = Some(ctx.config.moves.env_dir.join("terraform.tfstate"));
            entry.action = StateAction::Unchecked;
            report.states.push(entry);
            continue;
        }
        considered += 1;
        match upload_state(ctx, env, &mut entry) {
            Ok(()) => {
                if entry.action == StateAction::Uploaded {
                    uploaded += 1;
                }
            }
            Err(e) => {
                entry.action = StateAction::Failed;
                entry.error = Some(format!("{e:#}"));
                failed.push(format!("{}: {e:#}", env.name));
            }
        }
        report.states.push(entry);
    }
    if failed.is_empty() {
        report.step(
            StepName::States,
            ctx.done(),
            format!(
                "{uploaded} state(s) uploaded from {}, {} kept",
                ctx.config.moves.backup_dir.display(),
                considered - uploaded
            ),
        );
    } else {
        report.step(StepName::States, StepStatus::Failed, failed.join("; "));
    }
    Ok(())
}

fn upload_state(ctx: &Ctx<'_>, env: &EnvBackend, entry: &mut StateReport) -> Result<()> {
    let config = ctx.config;
    let client = ctx.client(&env.backend.bucket, Some(&env.backend))?;
    let remote = s3_state(&client, env)?;
    let file = match pve_tf::moves::newest_save_point(&config.moves.backup_dir, &env.name) {
        Ok(file) => file,
        Err(e) => {
            if let Some(Ok(r)) = &remote {
                entry.action = StateAction::Kept;
                entry.serial = Some(r.serial);
                pve_common::warn!("{}: {e:#}; S3 still has serial {}", env.name, r.serial);
                return Ok(());
            }
            return Err(e);
        }
    };
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let local =
        State::parse(&bytes).with_context(|| format!("refusing to upload {}", file.display()))?;
    entry.source = Some(file.clone());
    entry.source_serial = Some(local.serial);
    let mut new_serial = local.serial;
    match remote {
        Some(Ok(r)) if r.lineage != local.lineage && !config.moves.allow_lineage_change => bail!(
            "S3 holds a state of lineage {} but the save point {} has lineage {}: different states; \
             pass --allow-lineage-change to replace the S3 one",
            r.lineage,
            file.display(),
            local.lineage
        ),
        Some(Ok(r)) if r.lineage == local.lineage && r.serial >= local.serial => {
            entry.action = StateAction::Kept;
            entry.serial = Some(r.serial);
            pve_common::info!(
                "{}: S3 already has serial {} (save point: {}), kept",
                env.name,
                r.serial,
                local.serial
            );
            return Ok(());
        }
        Some(Ok(r)) => {
            new_serial = local.serial.max(pve_tf::state::next_serial(r.serial)?);
        }
        Some(Err(e)) => {
            pve_common::warn!("{}: {e:#}; the save point replaces it", env.name);
        }
        None => {}
    }
    let body = local.with_serial(new_serial);
    let put = put_state(ctx, &client, env, &body, &file)?;
    if put.is_none() {
        entry.action = StateAction::WouldUpload;
        return Ok(());
    }
    let back = client
        .get_with(&env.backend.key, None, pve_tf::state::sha256_of)?
        .context("cannot read the state back")?;
    if back != body.sha256() {
        bail!("the state read back from S3 differs from what was uploaded");
    }
    entry.action = StateAction::Uploaded;
    entry.serial = Some(new_serial);
    entry.version_id = put.and_then(|p| p.version_id);
    pve_common::info!(
        "{}: uploaded {} as serial {new_serial}",
        env.name,
        file.display()
    );
    Ok(())
}

/// Writes `body` (the save point `file`) as `env`'s state, under Terraform's state lock when its
/// backend uses one. `None` in a dry-run.
fn put_state(
    ctx: &Ctx<'_>,
    client: &S3Client,
    env: &EnvBackend,
    body: &pve_tf::state::Rewritten<'_>,
    file: &Path,
) -> Result<Option<pve_common::s3::PutResult>> {
    let lock = if env.backend.use_lockfile {
        Some(
            pve_tf::lock::acquire(client, &ctx.runner, &env.backend.key, "OperationTypeApply")
                .map_err(pve_tf::lock::LockError::into_anyhow)?,
        )
    } else {
        None
    };
    if let Some(lock) = &lock {
        lock.verify()?;
    }
    let put = client
        .put_parts(&ctx.runner, &env.backend.key, &body.parts(), false)
        .with_context(|| format!("uploading {} failed", file.display()))?;
    if let Some(lock) = lock {
        pve_tf::moves::release_after_write(lock, "the state was uploaded")?;
    }
    Ok(put)
}

/// `env`'s state in S3, parsed as it arrives (only the local save point is held in memory): `None` when
/// there is none, `Some(Err)` when it is not a usable state.
fn s3_state(client: &S3Client, env: &EnvBackend) -> Result<Option<Result<StateInfo>>> {
    match client.get_with(&env.backend.key, None, StateInfo::read) {
        Ok(parsed) => Ok(Some(parsed.with_context(|| {
            format!(
                "s3://{}/{} is not a usable state",
                env.backend.bucket, env.backend.key
            )
        }))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Step 4: buckets with versioning, each state sound, `terraform init -reconfigure` and `plan` per env.
fn verify(ctx: &Ctx<'_>, report: &mut Report) -> Result<()> {
    if ctx.config.moves.dry_run {
        report.step(
            StepName::Verify,
            StepStatus::Planned,
            "would check buckets, states and plans",
        );
        return Ok(());
    }
    let mut problems = Vec::new();
    for b in &ctx.buckets {
        if let Err(e) = ctx.bucket_sound(b) {
            problems.push(e);
        }
    }
    let envs: Vec<&EnvBackend> = ctx.all_envs().collect();
    for env in envs {
        let idx = report.states.iter().position(|s| s.env == env.name);
        let sound;
        let mut err = None;
        match ctx.state_sound(env) {
            Ok(state) => {
                sound = Some(ctx.bucket_sound(&env.backend.bucket).is_ok());
                if let Some(i) = idx {
                    report.states[i].serial = Some(state.serial);
                }
            }
            Err(e) => {
                sound = Some(false);
                err = Some(e.clone());
                problems.push(format!("{}: {e}", env.name));
            }
        }
        let (init_ok, plan_code, failed) = terraform_check(ctx, env)?;
        if let Some(e) = failed {
            problems.push(format!("{}: {e}", env.name));
            err.get_or_insert(e);
        }
        if let Some(i) = idx {
            let s = &mut report.states[i];
            s.sound = sound;
            s.init_ok = init_ok;
            s.plan_exit_code = plan_code;
            if s.error.is_none() {
                s.error = err;
            }
        }
    }
    if problems.is_empty() {
        report.step(
            StepName::Verify,
            StepStatus::Ok,
            format!(
                "buckets versioned, {} state(s) sound, terraform init -reconfigure and plan succeed against S3",
                report.states.len()
            ),
        );
    } else {
        report.step(StepName::Verify, StepStatus::Failed, problems.join("; "));
    }
    Ok(())
}

/// `terraform init -reconfigure` and `plan -detailed-exitcode` in `env` against S3: whether init
/// succeeded, the plan's exit code, and what failed.
fn terraform_check(
    ctx: &Ctx<'_>,
    env: &EnvBackend,
) -> Result<(Option<bool>, Option<i32>, Option<String>)> {
    let mut init: Vec<String> = vec![
        "init".into(),
        "-input=false".into(),
        "-reconfigure".into(),
        "-no-color".into(),
    ];
    init.extend(
        env.backend
            .config_files
            .iter()
            .map(|f| format!("-backend-config={}", f.display())),
    );
    let out = ctx
        .runner
        .run(Access::Mutating, &ctx.terraform(&env.dir, &init)?)?;
    if !out.as_ref().is_some_and(|o| o.status.success()) {
        let e = format!(
            "terraform init -reconfigure failed: {}",
            pve_common::runner::stderr_excerpt(out.as_ref().map_or(&[][..], |o| &o.stderr), 8)
        );
        return Ok((Some(false), None, Some(e)));
    }
    let plan: Vec<String> = [
        "plan",
        "-input=false",
        "-lock=false",
        "-detailed-exitcode",
        "-no-color",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = ctx
        .runner
        .run(Access::ReadOnly, &ctx.terraform(&env.dir, &plan)?)?;
    let code = out.as_ref().and_then(|o| o.status.code()).unwrap_or(1);
    if code == 1 {
        let e = format!(
            "terraform plan against S3 failed: {}",
            pve_common::runner::stderr_excerpt(out.as_ref().map_or(&[][..], |o| &o.stderr), 8)
        );
        return Ok((Some(true), Some(code), Some(e)));
    }
    Ok((Some(true), Some(code), None))
}

fn print_report(config: &Config, report: &Report) -> Result<()> {
    let doc = output::Document::new(SCHEMA, tool_info(), report);
    output::emit(config.json, &doc, |doc| report_text(doc.body))?;
    Ok(())
}

/// The report for people: steps, states, then the summary.
fn report_text(report: &Report) -> String {
    let mut text = format!(
        "env: {}\ntarget: {}\nendpoint: {}\noutcome: {}\n",
        report.env, report.target, report.endpoint, report.outcome
    );
    if report.dry_run {
        text.push_str("dry_run: yes\n");
    }
    text.push_str("\nSTEP          STATUS   DETAIL\n");
    for s in &report.steps {
        let status = match s.status {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
            StepStatus::Planned => "planned",
        };
        text.push_str(&format!("{:<13} {:<8} {}\n", s.name, status, s.detail));
    }
    if !report.states.is_empty() {
        text.push_str("\nENV           BUCKET/KEY                               ACTION        SERIAL  SOUND  PLAN\n");
        for s in &report.states {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
            text.push_str(&format!(
                "{:<13} {:<40} {:<13} {:>6}  {:<5}  {}\n",
                s.env,
                format!("{}/{}", s.bucket, s.key),
                s.action,
                opt(s.serial.map(|v| v.to_string())),
                opt(s.sound.map(|v| if v { "yes" } else { "no" }.to_owned())),
                opt(s.plan_exit_code.map(|v| v.to_string())),
            ));
        }
    }
    summary(&mut text, report);
    text
}

/// The replaced script's closing summary, which runbooks look for.
fn summary(text: &mut String, report: &Report) {
    let heading = pve_common::tr!("rebuild_minio.summary");
    let word = |status: StepStatus| match status {
        StepStatus::Ok => "OK".to_owned(),
        StepStatus::Failed => pve_common::tr!("rebuild_minio.failed"),
        StepStatus::Skipped => pve_common::tr!("rebuild_minio.skipped"),
        StepStatus::Planned => pve_common::tr!("rebuild_minio.planned"),
    };
    text.push_str(&format!("\n{heading}\n{}\n", "=".repeat(heading.len())));
    text.push_str(&format!(
        "  {}: {}\n",
        pve_common::tr!("rebuild_minio.endpoint"),
        report.endpoint
    ));
    for s in &report.steps {
        text.push_str(&format!("  {}: {}\n", s.name, word(s.status)));
    }
    let result = match report.outcome {
        Outcome::Healthy | Outcome::Rebuilt => StepStatus::Ok,
        Outcome::WouldRebuild => StepStatus::Planned,
        Outcome::Pending | Outcome::Refused | Outcome::Failed => StepStatus::Failed,
    };
    text.push_str(&format!(
        "  {}: {}\n",
        pve_common::tr!("rebuild_minio.result"),
        word(result)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_module_addresses() {
        assert!(valid_target("module.minio"));
        assert!(valid_target("module.infra.module.minio"));
        assert!(!valid_target("module."));
        assert!(!valid_target("terraform_data.x"));
        assert!(!valid_target("module.minio; rm -rf /"));
    }

    #[test]
    fn errors_belong_to_the_next_step() {
        assert_eq!(StepName::Health.next(), StepName::ToLocal);
        assert_eq!(StepName::Apply.next(), StepName::WaitHealthy);
        assert_eq!(StepName::Verify.next(), StepName::Verify);
    }
}
