//! `verify-backups`: prove every backup is there, fresh and intact, and every Terraform state in S3 is
//! sound. Drop-in for `scripts/restore/verify-backups.sh`.
//!
//! A run asks the node (one SSH session) for its guests, backup storages and backups, then checks, each a
//! component of the report: coverage and freshness, archive soundness (name, size, task log), integrity
//! (`--deep`: on the node with its tools, or here with the native one-pass reader for `--local-dir`),
//! bit-rot (SHA-256 manifest), PBS verification state, the Terraform state of every environment, and with
//! `--full` the DR final checks. Per-item failures never stop the run; the exit code is decided at the end.

pub mod archive;
pub mod cli;
pub mod config;
pub mod contract;
pub mod full;
pub mod homelab;
pub mod lzop;
pub mod manifest;
pub mod node;
mod offline;
pub mod pve;
pub mod report;
pub mod services;
pub mod tfstate;
pub mod words;

/// The `verify-backups` binary, for [`pve_common::run`].
#[derive(Debug)]
pub struct VerifyBackups;

impl pve_common::Tool for VerifyBackups {
    const NAME: &'static str = "verify-backups";
    type Args = cli::Args;

    fn common(args: &cli::Args) -> &pve_common::cli::CommonArgs {
        &args.common
    }

    /// A run that could not finish is an error (2), as the replaced script counted it.
    fn failure_code(_args: &cli::Args) -> Code {
        Code::Errors
    }

    // The replaced script's codes: 0 all OK, 1 warnings, 2 errors.
    fn run(args: cli::Args) -> Result<Code> {
        Ok(match run(&Config::from_args(&args)?)? {
            Verdict::Ok => Code::Success,
            Verdict::Warnings => Code::Warnings,
            Verdict::Errors => Code::Errors,
        })
    }
}

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use pve_common::exit::Code;
use pve_common::fleet::ManagedGuest;
use pve_common::output::ToolInfo;
use pve_common::runner::Runner;

pub use config::Config;
pub use contract::Verdict;

use archive::{Integrity, Job, Outcome};
use manifest::Manifest;
use node::{Inventory, Node};
use pve::{Backup, Container, VzdumpFile};
use report::{
    BackupResult, CheckName, Component, ComponentName, GuestResult, Report, SCHEMA, Status,
};

/// The textfile name.
pub const METRICS_FILE: &str = "pve_backup.prom";

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn age_text(secs: i64) -> String {
    let secs = u64::try_from(secs.max(0)).unwrap_or(0);
    // Minutes are precise enough for a backup age.
    humantime::format_duration(std::time::Duration::from_secs(secs - secs % 60)).to_string()
}

/// Where an archive is read from.
#[derive(Clone)]
enum Place {
    Local(PathBuf),
    Remote(String),
}

impl Place {
    fn join(&self, name: &str) -> Place {
        match self {
            Place::Local(d) => Place::Local(d.join(name)),
            Place::Remote(d) => Place::Remote(format!("{}/{name}", d.trim_end_matches('/'))),
        }
    }

    fn display(&self) -> String {
        match self {
            Place::Local(p) => p.display().to_string(),
            Place::Remote(p) => format!("node:{p}"),
        }
    }
}

/// The guest-side components (1 to 5), filled from the node.
struct GuestChecks {
    coverage: Component,
    archives: Component,
    integrity: Component,
    bitrot: Component,
    pbs: Component,
    /// `--full` on the node (jobs, connectivity): checks of the `services` component.
    full: Component,
    findings: Vec<full::Finding>,
    guests: Vec<GuestResult>,
    backups: Vec<BackupResult>,
}

impl GuestChecks {
    fn new() -> GuestChecks {
        GuestChecks {
            coverage: Component::new(ComponentName::Coverage, "Coverage and freshness"),
            archives: Component::new(ComponentName::Archives, "Archive soundness"),
            integrity: Component::new(ComponentName::Integrity, "Integrity (--deep)"),
            bitrot: Component::new(ComponentName::Bitrot, "Bit-rot (SHA-256 manifest)"),
            pbs: Component::new(ComponentName::Pbs, "PBS verification"),
            full: Component::new(ComponentName::Services, "DR services (--full)"),
            findings: Vec::new(),
            guests: Vec::new(),
            backups: Vec::new(),
        }
    }

    /// Its components, in the report's order.
    fn components(&mut self) -> [&mut Component; 6] {
        [
            &mut self.coverage,
            &mut self.archives,
            &mut self.integrity,
            &mut self.bitrot,
            &mut self.pbs,
            &mut self.full,
        ]
    }

    /// Names the environment and node of every check, guest and backup that does not name its own.
    fn place(&mut self, env: Option<&String>, node: Option<&String>) {
        for c in self.components() {
            for ch in &mut c.checks {
                if ch.environment.is_none() {
                    ch.environment = env.cloned();
                }
                if ch.node.is_none() {
                    ch.node = node.cloned();
                }
            }
        }
        for g in &mut self.guests {
            if g.environment.is_none() {
                g.environment = env.cloned();
            }
        }
        for b in &mut self.backups {
            if b.environment.is_none() {
                b.environment = env.cloned();
            }
            if b.node.is_none() {
                b.node = node.cloned();
            }
        }
    }

    /// Adds one node's checks to the run's.
    fn merge(&mut self, one: GuestChecks) {
        merge_component(&mut self.coverage, one.coverage);
        merge_component(&mut self.archives, one.archives);
        merge_component(&mut self.integrity, one.integrity);
        merge_component(&mut self.bitrot, one.bitrot);
        merge_component(&mut self.pbs, one.pbs);
        merge_component(&mut self.full, one.full);
        self.findings.extend(one.findings);
        self.guests.extend(one.guests);
        self.backups.extend(one.backups);
    }

    /// Marks every guest-side component without checks as not run (`--full`'s services say why they did
    /// not run themselves).
    fn skip_all(&mut self, why: &str) {
        for c in self.components() {
            if c.checks.is_empty() && c.name != ComponentName::Services {
                c.skip(why);
            }
        }
    }
}

fn outcome_status(o: &Outcome) -> (Status, String) {
    match o {
        Outcome::Ok(t) => (Status::Ok, t.clone()),
        Outcome::Failed(t) => (Status::Fail, t.clone()),
        Outcome::Skipped(t) if t == "not compressed" => (Status::Info, t.clone()),
        Outcome::Skipped(t) => (Status::Warn, format!("not checked: {t}")),
    }
}

/// One file backup under check.
struct FileBackup {
    index: usize,
    place: Place,
    name: Option<VzdumpFile>,
    present: bool,
    sha256: Option<String>,
}

/// The check that reads a container of this kind.
fn content_check(container: Container) -> CheckName {
    match container {
        Container::Vma => CheckName::Vma,
        Container::Tar => CheckName::Tar,
    }
}

/// The compression and container checks of one archive, into the `integrity` component.
fn record_integrity(
    r: &mut BackupResult,
    integrity: &mut Component,
    container: Container,
    (compression, content): (&Outcome, &Outcome),
) {
    for (check, o) in [
        (CheckName::Compression, compression),
        (content_check(container), content),
    ] {
        let (status, reason) = outcome_status(o);
        r.record(integrity, check, status, reason);
    }
}

fn merge_component(into: &mut Component, from: Component) {
    into.duration_ms += from.duration_ms;
    if from.checks.is_empty() {
        if into.checks.is_empty() && into.skipped.is_none() {
            into.skipped = from.skipped;
            into.status = from.status;
        }
        return;
    }
    if into.checks.is_empty() && into.skipped.is_some() {
        into.skipped = None;
        into.status = Status::Ok;
    }
    into.status = into.status.worst(from.status);
    into.checks.extend(from.checks);
}

/// What the Terraform states of a node's environments say must be backed up there.
#[derive(Default)]
struct Managed {
    /// VMID -> (environment, resource address), over every environment of the node whose state was read.
    guests: BTreeMap<u32, (String, String)>,
    /// Whether any state of the node's environments was read (else coverage is the node's own listing).
    proven: bool,
    /// VMID -> node of the environment managing it, over every environment of the fleet.
    all: BTreeMap<u32, Option<String>>,
    /// The nodes this run checks.
    checked_nodes: BTreeSet<String>,
}

/// The guests each environment's state manages: the local terraform.tfstate, else the object its backend
/// (or the homelab's MinIO block) names in S3. `Err` says why an environment's state could not be read.
fn managed_by_env(
    config: &Config,
) -> BTreeMap<String, std::result::Result<Vec<ManagedGuest>, String>> {
    let mut out = BTreeMap::new();
    if config.fleet.is_empty() || config.dry_run {
        return out;
    }
    let backends = config
        .root
        .as_deref()
        .and_then(|root| tfstate::discover(root).ok())
        .unwrap_or_default();
    for env in &config.fleet {
        let got = env.managed_guests(|e| {
            let found = backends
                .iter()
                .find(|b| b.name == e.env)
                .ok_or_else(|| "no S3 backend or MinIO block for its state".to_owned())?;
            let backend = found.backend.as_ref().map_err(Clone::clone)?;
            let s3 =
                tfstate::client(backend, config.tfvars.as_deref()).map_err(|e| format!("{e:#}"))?;
            pve_tf::fleet::read_state(&s3, backend)
        });
        out.insert(
            env.env.clone(),
            got.map_err(|e| format!("{:#}", anyhow::Error::new(e))),
        );
    }
    out
}

/// What the states of `check`'s environments say about its node, and the environments whose state could
/// not be read (with why).
fn managed_on(
    check: &config::NodeCheck,
    states: &BTreeMap<String, std::result::Result<Vec<ManagedGuest>, String>>,
    all: &BTreeMap<u32, Option<String>>,
    checked_nodes: &BTreeSet<String>,
) -> (Managed, Vec<(String, String)>) {
    let mut managed = Managed {
        all: all.clone(),
        checked_nodes: checked_nodes.clone(),
        ..Managed::default()
    };
    let mut problems = Vec::new();
    for env in &check.envs {
        match states.get(env) {
            Some(Ok(list)) => {
                managed.proven |= !list.is_empty();
                for g in list {
                    managed
                        .guests
                        .entry(g.vmid)
                        .or_insert_with(|| (env.clone(), g.address.clone()));
                }
            }
            Some(Err(e)) => problems.push((env.clone(), e.clone())),
            None => {}
        }
    }
    (managed, problems)
}

fn run_guest_checks(config: &Config, runner: &Runner, now: i64, gc: &mut GuestChecks) {
    if config.targets.is_empty() && config.local.is_set() {
        offline::check(config, runner, gc);
        return;
    }
    if config.targets.is_empty() {
        gc.skip_all("no node (--node, --host, or default_node and proxmox_endpoint in the environments' tfvars): guests and backups not checked");
        return;
    }
    let states = managed_by_env(config);
    let mut all = BTreeMap::new();
    for env in &config.fleet {
        if let Some(Ok(list)) = states.get(&env.env) {
            for g in list {
                all.entry(g.vmid).or_insert_with(|| env.node.clone());
            }
        }
    }
    let checked_nodes: BTreeSet<String> = config
        .targets
        .iter()
        .filter_map(|t| t.node.clone())
        .collect();
    // One thread and one SSH session per node: the run takes as long as the slowest node, not the sum.
    let per_node: Vec<GuestChecks> = std::thread::scope(|scope| {
        let handles: Vec<_> = config
            .targets
            .iter()
            .map(|check| {
                let (managed, problems) = managed_on(check, &states, &all, &checked_nodes);
                scope.spawn(move || {
                    let mut one = GuestChecks::new();
                    for (env, e) in problems {
                        one.coverage.add(
                            &format!("env {env}"),
                            CheckName::TerraformState,
                            // The state component reports the failure itself; here it only explains
                            // why coverage falls back to the node's own listing.
                            Status::Info,
                            format!("coverage not proven against Terraform: {e}"),
                        );
                    }
                    run_node_checks(config, check, runner, now, &managed, &mut one);
                    one
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut one = GuestChecks::new();
                    one.coverage.add(
                        "node",
                        CheckName::Inventory,
                        Status::Fail,
                        "the node's check panicked",
                    );
                    one
                })
            })
            .collect()
    });
    let mut shared_seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (check, mut one) in config.targets.iter().zip(per_node) {
        // A cluster's shared storage is listed by every member: its backups count once.
        one.backups
            .retain(|b| !b.shared || shared_seen.insert((b.storage.clone(), b.volid.clone())));
        one.place(check.envs.first(), check.node.as_ref());
        gc.merge(one);
    }
    if config.targets.len() > 1 {
        // The report groups by environment and node.
        gc.guests.sort_by(|a, b| {
            (&a.environment, &a.node, a.vmid).cmp(&(&b.environment, &b.node, b.vmid))
        });
    }
}

fn run_node_checks(
    config: &Config,
    check: &config::NodeCheck,
    runner: &Runner,
    now: i64,
    managed: &Managed,
    gc: &mut GuestChecks,
) {
    let target = &check.target;
    let started = Instant::now();
    let mut node = match Node::connect(runner, target, config.ssh.clone()) {
        Ok(n) => n,
        Err(e) => {
            // Once for the node (its environments are on the check, in the JSON); the other nodes are
            // still checked.
            let reason = if check.envs.is_empty() {
                e.to_string()
            } else {
                format!("node of environment {}: {e}", check.envs.join(", "))
            };
            gc.coverage
                .add(check.label(), CheckName::Connect, Status::Fail, reason);
            gc.skip_all("the node could not be reached");
            return;
        }
    };
    let inv = match node.inventory(check.node.as_deref(), config.storage.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            gc.coverage.add(
                check.label(),
                CheckName::Inventory,
                Status::Fail,
                format!("{e:#}"),
            );
            gc.skip_all("the node's inventory could not be read");
            return;
        }
    };
    coverage(config, now, &inv, managed, gc);
    gc.coverage.duration_ms = ms(started);
    let selected = select(config, &inv, gc);
    let started = Instant::now();
    let files = soundness(config, &mut node, &inv, &selected, gc);
    pbs(&inv, &selected, gc);
    gc.archives.duration_ms = ms(started);
    let started = Instant::now();
    let mut files = files;
    if config.deep {
        integrity(config, &mut node, &inv, &mut files, gc);
    } else {
        gc.integrity
            .skip("not run: give --deep to read and check every byte of the archives");
    }
    gc.integrity.duration_ms = ms(started);
    let started = Instant::now();
    bitrot(config, runner, &mut node, &mut files, gc);
    gc.bitrot.duration_ms = ms(started);
    if config.full {
        let started = Instant::now();
        let mut findings = full::jobs(config, &mut node, &inv);
        findings.extend(full::connectivity(config, &mut node, &inv));
        for f in &findings {
            f.record(&mut gc.full);
        }
        gc.findings.extend(findings);
        gc.full.duration_ms = ms(started);
    }
    // A guest's status is the worst of its coverage and its checked backups.
    for g in &mut gc.guests {
        for b in gc.backups.iter().filter(|b| b.vmid == g.vmid) {
            g.status = g.status.worst(b.status);
        }
    }
}

/// A local read: `None` when the file does not exist; any other error (permission denied, I/O) is one,
/// named with the path (an unreadable folder is not a missing backup).
fn local_or_missing<T>(
    path: &std::path::Path,
    read: std::io::Result<T>,
) -> std::result::Result<Option<T>, String> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn guest_subject(kind: &str, vmid: u32, name: &str) -> String {
    if name.is_empty() {
        format!("{kind} {vmid}")
    } else {
        format!("{kind} {vmid} ({name})")
    }
}

fn wanted(config: &Config, vmid: u32) -> bool {
    config.vmids.is_empty() || config.vmids.contains(&vmid)
}

fn coverage(config: &Config, now: i64, inv: &Inventory, managed: &Managed, gc: &mut GuestChecks) {
    for p in &inv.problems {
        gc.coverage
            .add(&inv.node_label, CheckName::Listing, Status::Fail, p.clone());
    }
    // A guest this node's environments manage that a cluster member holds now is checked here, where its
    // environment says it belongs; a guest another checked node's environment manages is left to that check.
    let mut here: Vec<&pve::Guest> = inv.guests.iter().collect();
    for vmid in managed.guests.keys() {
        if !here.iter().any(|g| g.vmid == *vmid)
            && let Some(g) = inv.cluster_guests.get(vmid)
        {
            here.push(g);
        }
    }
    here.sort_by_key(|g| g.vmid);
    for g in here.iter().copied().filter(|g| wanted(config, g.vmid)) {
        if g.template && !config.include_templates {
            continue;
        }
        if !managed.guests.contains_key(&g.vmid)
            && managed.all.get(&g.vmid).is_some_and(|n| {
                n.as_ref()
                    .is_some_and(|n| n != &g.node && managed.checked_nodes.contains(n))
            })
        {
            continue;
        }
        listed_guest(config, now, inv, managed, g, gc);
    }
    let known: BTreeSet<u32> = here.iter().map(|g| g.vmid).collect();
    managed_not_listed(config, now, inv, managed, &known, gc);
    orphans(config, inv, managed, &known, gc);
}

/// Coverage of a guest the node lists: the freshness of its newest backup, and whether a state manages it.
fn listed_guest(
    config: &Config,
    now: i64,
    inv: &Inventory,
    managed: &Managed,
    g: &pve::Guest,
    gc: &mut GuestChecks,
) {
    let max_age = i64::try_from(config.max_age.as_secs()).unwrap_or(i64::MAX);
    let subject = guest_subject(&g.kind, g.vmid, &g.name);
    let backups: Vec<&Backup> = inv.backups.iter().filter(|b| b.vmid == g.vmid).collect();
    let newest = backups.iter().max_by_key(|b| b.ctime);
    let mut result = GuestResult {
        vmid: g.vmid,
        kind: g.kind.clone(),
        name: g.name.clone(),
        template: g.template,
        backups: backups.len(),
        newest_volid: newest.map(|b| b.volid.clone()),
        newest_ctime: newest.map(|b| b.ctime),
        age_seconds: newest.map(|b| now.saturating_sub(b.ctime)),
        status: Status::Ok,
        node: Some(g.node.clone()),
        environment: managed.guests.get(&g.vmid).map(|(env, _)| env.clone()),
    };
    let (status, reason) = match newest {
        None => (Status::Fail, "no backup at all".to_owned()),
        // The replaced script's rule: an old backup is a warning, a missing one an error.
        Some(b) if now.saturating_sub(b.ctime) > max_age => (
            Status::Warn,
            format!(
                "stale: newest backup is {} old (limit {}): {}",
                age_text(now.saturating_sub(b.ctime)),
                humantime::format_duration(config.max_age),
                b.volid
            ),
        ),
        Some(b) => (
            Status::Ok,
            format!(
                "{} backup(s), newest {} old: {}",
                backups.len(),
                age_text(now.saturating_sub(b.ctime)),
                b.volid
            ),
        ),
    };
    result.status = status;
    gc.coverage
        .add(&subject, CheckName::Freshness, status, reason);
    if managed.proven && !managed.all.contains_key(&g.vmid) {
        result.status = result.status.worst(Status::Warn);
        gc.coverage.add(
            &subject,
            CheckName::Unmanaged,
            Status::Warn,
            format!(
                "unmanaged: on node {} but in no Terraform state of its environments",
                g.node
            ),
        );
    }
    gc.guests.push(result);
}

/// Coverage proven against Terraform: a guest the state manages needs a backup on its node even when the
/// node does not list it (destroyed, or never created).
fn managed_not_listed(
    config: &Config,
    now: i64,
    inv: &Inventory,
    managed: &Managed,
    known: &BTreeSet<u32>,
    gc: &mut GuestChecks,
) {
    for (vmid, (env, address)) in managed
        .guests
        .iter()
        .filter(|(v, _)| !known.contains(v) && wanted(config, **v))
    {
        let backups: Vec<&Backup> = inv.backups.iter().filter(|b| b.vmid == *vmid).collect();
        let newest = backups.iter().max_by_key(|b| b.ctime);
        let kind = if address.contains("_container") {
            "lxc"
        } else {
            "qemu"
        };
        let subject = format!("{kind} {vmid} ({address})");
        let (status, reason) = match newest {
            None => (
                Status::Fail,
                format!(
                    "no backup at all of a guest environment {env} manages ({address}), and the node does not list it"
                ),
            ),
            Some(b) => (
                Status::Warn,
                format!(
                    "managed by environment {env} ({address}) but not on the node; newest backup {}",
                    b.volid
                ),
            ),
        };
        gc.coverage
            .add(&subject, CheckName::Freshness, status, reason);
        gc.guests.push(GuestResult {
            vmid: *vmid,
            kind: kind.to_owned(),
            name: address.rsplit('.').next().unwrap_or_default().to_owned(),
            template: false,
            backups: backups.len(),
            newest_volid: newest.map(|b| b.volid.clone()),
            newest_ctime: newest.map(|b| b.ctime),
            age_seconds: newest.map(|b| now.saturating_sub(b.ctime)),
            status,
            node: Some(inv.node_label.clone()),
            environment: Some(env.clone()),
        });
    }
}

/// Backups of a VMID no guest has: orphans, or unmanaged when the states prove coverage.
fn orphans(
    config: &Config,
    inv: &Inventory,
    managed: &Managed,
    known: &BTreeSet<u32>,
    gc: &mut GuestChecks,
) {
    let mut orphans: BTreeMap<u32, Vec<&Backup>> = BTreeMap::new();
    // Backups of a guest on another member (shared storage) or of one a state manages are not orphans.
    for b in inv.backups.iter().filter(|b| {
        !known.contains(&b.vmid)
            && !inv.cluster_guests.contains_key(&b.vmid)
            && !managed.all.contains_key(&b.vmid)
            && wanted(config, b.vmid)
    }) {
        orphans.entry(b.vmid).or_default().push(b);
    }
    for (vmid, list) in orphans {
        let newest = list
            .iter()
            .max_by_key(|b| b.ctime)
            .map_or("", |b| b.volid.as_str());
        if managed.proven {
            gc.coverage.add(
                &format!("vmid {vmid}"),
                CheckName::Unmanaged,
                Status::Warn,
                format!(
                    "unmanaged: {} backup(s) on node {} of a VMID no guest and no Terraform state has; newest {newest}",
                    list.len(),
                    inv.node_label
                ),
            );
        } else {
            gc.coverage.add(
                &format!("vmid {vmid}"),
                CheckName::Orphan,
                Status::Info,
                format!(
                    "{} backup(s) of a VMID that no longer exists; newest {newest}",
                    list.len()
                ),
            );
        }
    }
}

/// The backups to check: the newest of each guest on each storage, or all with `--all-backups`.
fn select<'a>(config: &Config, inv: &'a Inventory, gc: &mut GuestChecks) -> Vec<&'a Backup> {
    let known: BTreeSet<u32> = inv.guests.iter().map(|g| g.vmid).collect();
    let counted: BTreeSet<u32> = gc.guests.iter().map(|g| g.vmid).collect();
    let mut newest: BTreeMap<(u32, &str), &Backup> = BTreeMap::new();
    let mut out = Vec::new();
    for b in inv.backups.iter().filter(|b| wanted(config, b.vmid)) {
        if config.all_backups {
            if counted.contains(&b.vmid) || !known.contains(&b.vmid) {
                out.push(b);
            }
            continue;
        }
        if !counted.contains(&b.vmid) {
            continue;
        }
        let e = newest.entry((b.vmid, b.storage.as_str())).or_insert(b);
        if b.ctime > e.ctime {
            *e = b;
        }
    }
    if !config.all_backups {
        out = newest.into_values().collect();
    }
    out.sort_by(|a, b| a.volid.cmp(&b.volid));
    let newest_of: BTreeMap<u32, i64> = gc
        .guests
        .iter()
        .filter_map(|g| g.newest_ctime.map(|t| (g.vmid, t)))
        .collect();
    for b in &out {
        gc.backups.push(BackupResult {
            volid: b.volid.clone(),
            storage: b.storage.clone(),
            vmid: b.vmid,
            kind: b.subtype.clone(),
            ctime: b.ctime,
            size: b.size,
            format: b.format.clone(),
            protected: b.protected,
            notes: b.notes.clone(),
            guest_exists: known.contains(&b.vmid),
            newest: newest_of.get(&b.vmid) == Some(&b.ctime),
            sha256: None,
            status: Status::Ok,
            checks: Vec::new(),
            node: None,
            environment: None,
            shared: inv.storages.get(&b.storage).is_some_and(|s| s.shared),
        });
    }
    out
}

fn soundness(
    config: &Config,
    node: &mut Node<'_>,
    inv: &Inventory,
    selected: &[&Backup],
    gc: &mut GuestChecks,
) -> Vec<FileBackup> {
    let mut dump_dirs: BTreeMap<String, Result<Place, String>> = BTreeMap::new();
    let mut files = Vec::new();
    for (index, b) in selected.iter().enumerate() {
        if inv
            .storages
            .get(&b.storage)
            .is_some_and(pve::Storage::is_pbs)
        {
            continue;
        }
        let GuestChecks {
            backups, archives, ..
        } = gc;
        let mut add = |check: CheckName, (status, reason): (Status, String)| {
            backups[index].record(archives, check, status, reason);
        };
        let file_name = b.file_name().to_owned();
        let name = VzdumpFile::parse(&file_name);
        add(CheckName::Name, name_verdict(b, &file_name, name.as_ref()));
        let dir = dump_dirs
            .entry(b.storage.clone())
            .or_insert_with(|| dump_dir(config, node, &b.storage));
        let place = match dir {
            Ok(place) => place.clone(),
            Err(e) => {
                add(CheckName::Size, (Status::Fail, e.clone()));
                continue;
            }
        };
        let path = place.join(&file_name);
        let size = match &path {
            Place::Local(p) => local_or_missing(p, std::fs::metadata(p).map(|m| m.len())),
            Place::Remote(p) => node.file_size(p).map_err(|e| format!("{e}")),
        };
        let (verdict, present) = size_verdict(config, b, &path, size);
        add(CheckName::Size, verdict);
        if let Some(n) = &name {
            let log_path = place.join(&n.log_name());
            let text = match &log_path {
                Place::Local(p) => local_or_missing(p, std::fs::read_to_string(p)),
                Place::Remote(p) => node.read_text(p).map_err(|e| format!("{e}")),
            };
            add(CheckName::Log, log_verdict(b, &log_path, text));
        }
        if b.protected || b.notes.is_some() {
            let mut what = Vec::new();
            if b.protected {
                what.push("protected".to_owned());
            }
            if let Some(n) = &b.notes {
                what.push(format!("notes: {}", n.lines().next().unwrap_or("")));
            }
            add(CheckName::Meta, (Status::Info, what.join("; ")));
        }
        files.push(FileBackup {
            index,
            place: path,
            name,
            present,
            sha256: None,
        });
    }
    if gc.archives.checks.is_empty() {
        gc.archives.skip("no backup on file storage to check");
    }
    files
}

/// Where a storage's archives are: `--local-dir`, `--dump-dir`, else what the node says.
fn dump_dir(config: &Config, node: &mut Node<'_>, storage: &str) -> Result<Place, String> {
    if let Some(d) = config.local.for_storage(storage) {
        return Ok(Place::Local(d.clone()));
    }
    if let Some(d) = config.dump_dirs.get(storage) {
        return Ok(Place::Remote(d.clone()));
    }
    node.dump_dir(storage).map(Place::Remote).map_err(|e| {
        format!(
            "cannot find the dump folder of storage {storage} on the node ({e:#}); give --dump-dir {storage}=DIR"
        )
    })
}

/// The name check: a vzdump file name, of the VMID Proxmox lists the backup for.
fn name_verdict(b: &Backup, file_name: &str, name: Option<&VzdumpFile>) -> (Status, String) {
    match name {
        Some(n) if n.archive.vmid == b.vmid => (Status::Ok, file_name.to_owned()),
        Some(n) => (
            Status::Fail,
            format!(
                "name says VMID {} but Proxmox lists it for {}",
                n.archive.vmid, b.vmid
            ),
        ),
        None => (
            Status::Fail,
            format!("`{file_name}` is not vzdump-{{qemu|lxc}}-<vmid>-<YYYY_MM_DD-HH_MM_SS>.<ext>"),
        ),
    }
}

/// The size check, and whether the archive is there to read.
fn size_verdict(
    config: &Config,
    b: &Backup,
    path: &Place,
    size: Result<Option<u64>, String>,
) -> ((Status, String), bool) {
    match size {
        Err(e) => ((Status::Fail, e), false),
        Ok(None) => (
            (
                Status::Fail,
                format!("archive file {} is missing", path.display()),
            ),
            false,
        ),
        Ok(Some(0)) => ((Status::Fail, "archive is empty (0 bytes)".into()), true),
        Ok(Some(s)) if s < config.min_size => (
            (
                Status::Warn,
                format!(
                    "suspiciously small: {s} bytes (under {} bytes)",
                    config.min_size
                ),
            ),
            true,
        ),
        Ok(Some(s)) if s != b.size => (
            (
                Status::Fail,
                format!(
                    "{} is {s} bytes but Proxmox reports {} bytes",
                    path.display(),
                    b.size
                ),
            ),
            true,
        ),
        Ok(Some(s)) => ((Status::Ok, format!("{s} bytes, as Proxmox reports")), true),
    }
}

/// The task log check: it ends with a finished backup of this VMID.
fn log_verdict(
    b: &Backup,
    log_path: &Place,
    text: Result<Option<String>, String>,
) -> (Status, String) {
    match text {
        Err(e) => (Status::Fail, e),
        Ok(None) => (
            Status::Fail,
            format!("task log {} is missing", log_path.display()),
        ),
        Ok(Some(t)) => match pve::log_verdict(&t, b.vmid) {
            Ok(()) => (Status::Ok, "task log ends with a finished backup".into()),
            Err(e) => (Status::Fail, e),
        },
    }
}

fn pbs(inv: &Inventory, selected: &[&Backup], gc: &mut GuestChecks) {
    for (index, b) in selected.iter().enumerate() {
        if !inv
            .storages
            .get(&b.storage)
            .is_some_and(pve::Storage::is_pbs)
        {
            continue;
        }
        let (status, reason) = match b.verification.as_deref() {
            Some("ok") => (Status::Ok, "verification state ok".to_owned()),
            Some("failed") => (
                Status::Fail,
                "PBS verification failed: the snapshot is corrupt".to_owned(),
            ),
            Some(other) => (Status::Warn, format!("verification state `{other}`")),
            None => (
                Status::Warn,
                "never verified by PBS (schedule a verify job)".to_owned(),
            ),
        };
        gc.backups[index].add(CheckName::PbsVerification, status, reason.clone());
        gc.pbs
            .add(&b.volid, CheckName::Verification, status, reason);
    }
    if gc.pbs.checks.is_empty() {
        gc.pbs
            .skip("no Proxmox Backup Server snapshot among the checked backups");
    }
}

fn progress_bar(config: &Config, total: u64) -> Option<indicatif::ProgressBar> {
    if config.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} checking archives {bytes}/{total_bytes} ({bytes_per_sec}, {eta}) {wide_bar}",
    ) {
        pb.set_style(style);
    }
    Some(pb)
}

fn integrity(
    config: &Config,
    node: &mut Node<'_>,
    inv: &Inventory,
    files: &mut [FileBackup],
    gc: &mut GuestChecks,
) {
    let _ = inv;
    // Hash only what the bit-rot check will record or compare; an unreadable manifest hashes everything
    // (the bit-rot check reports the manifest itself).
    let manifest = config
        .deep
        .then(|| Manifest::load(&config.manifest).ok())
        .flatten();
    let wants_hash = |f: &FileBackup| {
        config.record
            || manifest
                .as_ref()
                .is_none_or(|m| m.entries.contains_key(&gc.backups[f.index].volid))
    };
    let checkable: Vec<usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.present && f.name.is_some())
        .map(|(i, _)| i)
        .collect();
    let total: u64 = checkable
        .iter()
        .map(|&i| gc.backups[files[i].index].size)
        .sum();
    let pb = progress_bar(config, total);
    // Local archives: the native one-pass reader, several at once.
    let local: Vec<usize> = checkable
        .iter()
        .copied()
        .filter(|&i| matches!(files[i].place, Place::Local(_)))
        .collect();
    let jobs: Vec<Job> = local
        .iter()
        .filter_map(|&i| {
            let (Place::Local(path), Some(n)) = (&files[i].place, &files[i].name) else {
                return None;
            };
            Some(Job {
                path: path.clone(),
                container: n.container,
                compression: n.compression,
                hash: wants_hash(&files[i]),
            })
        })
        .collect();
    let on_read: Option<archive::OnRead> = pb.clone().map(|pb| {
        let f: archive::OnRead = Arc::new(move |n| pb.inc(n));
        f
    });
    let results: Vec<Integrity> = archive::check_all(&jobs, config.jobs, on_read);
    for (&i, result) in local.iter().zip(results) {
        let Some(container) = files[i].name.as_ref().map(|n| n.container) else {
            continue;
        };
        files[i].sha256 = result.sha256.clone();
        record_integrity(
            &mut gc.backups[files[i].index],
            &mut gc.integrity,
            container,
            (&result.compression, &result.content),
        );
    }
    integrity_remote(node, &checkable, files, gc, pb.as_ref());
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if gc.integrity.checks.is_empty() {
        gc.integrity.skip("no archive present to read");
    }
}

/// Remote archives: the node's tools, one after the other over the one session.
fn integrity_remote(
    node: &mut Node<'_>,
    checkable: &[usize],
    files: &[FileBackup],
    gc: &mut GuestChecks,
    pb: Option<&indicatif::ProgressBar>,
) {
    for &i in checkable
        .iter()
        .filter(|&&i| matches!(files[i].place, Place::Remote(_)))
    {
        let (Place::Remote(path), Some(n)) = (&files[i].place, &files[i].name) else {
            continue;
        };
        let outcome = node
            .integrity(path, n.container, n.compression)
            .unwrap_or_else(|e| {
                let why = format!("{e}");
                (Outcome::Failed(why.clone()), Outcome::Failed(why))
            });
        record_integrity(
            &mut gc.backups[files[i].index],
            &mut gc.integrity,
            n.container,
            (&outcome.0, &outcome.1),
        );
        if let Some(pb) = pb {
            pb.inc(gc.backups[files[i].index].size);
        }
    }
}

fn bitrot(
    config: &Config,
    runner: &Runner,
    node: &mut Node<'_>,
    files: &mut [FileBackup],
    gc: &mut GuestChecks,
) {
    if !config.deep && !config.record {
        gc.bitrot
            .skip("not run: give --deep to compare with the manifest, --record to store hashes");
        return;
    }
    let mut manifest = match Manifest::load(&config.manifest) {
        Ok(m) => m,
        Err(e) => {
            gc.bitrot.add(
                &config.manifest.display().to_string(),
                CheckName::Manifest,
                Status::Fail,
                format!("{e:#}"),
            );
            return;
        }
    };
    let mut changed = false;
    for f in files.iter_mut().filter(|f| f.present) {
        let volid = gc.backups[f.index].volid.clone();
        let recorded = manifest.entries.get(&volid).cloned();
        if f.sha256.is_none() && (config.record || recorded.is_some()) {
            f.sha256 = match &f.place {
                Place::Local(p) => archive::hash_file(p).ok(),
                Place::Remote(p) => node.sha256(p).ok().flatten(),
            };
        }
        let Some(sha) = f.sha256.clone() else {
            let (status, reason) = if recorded.is_some() {
                (Status::Fail, format!("cannot hash {}", f.place.display()))
            } else {
                // Neither recorded nor to be recorded: not hashed at all (it would only cost CPU).
                (
                    Status::Info,
                    "not in the manifest (run with --record to add it)".to_owned(),
                )
            };
            gc.backups[f.index].record(&mut gc.bitrot, CheckName::Sha256, status, reason);
            continue;
        };
        gc.backups[f.index].sha256 = Some(sha.clone());
        let (status, reason) = match recorded {
            Some(r) if r == sha => (Status::Ok, "matches the recorded SHA-256".to_owned()),
            Some(r) => (
                Status::Fail,
                format!(
                    "corrupt: the archive changed since it was recorded (SHA-256 {sha}, recorded {r}); bit rot or tampering"
                ),
            ),
            None if config.record => {
                manifest.entries.insert(volid.clone(), sha.clone());
                changed = true;
                (Status::Ok, format!("recorded SHA-256 {sha}"))
            }
            None => (
                Status::Info,
                "not in the manifest (run with --record to add it)".to_owned(),
            ),
        };
        gc.backups[f.index].record(&mut gc.bitrot, CheckName::Sha256, status, reason);
    }
    if changed && let Err(e) = manifest.save(runner, &config.manifest) {
        gc.bitrot.add(
            &config.manifest.display().to_string(),
            CheckName::Manifest,
            Status::Fail,
            format!("{e:#}"),
        );
    }
    if gc.bitrot.checks.is_empty() {
        gc.bitrot.skip("no archive present to hash");
    }
}

/// Runs every check and builds the report (no output).
pub fn verify(config: &Config) -> Result<Report> {
    let started = Instant::now();
    let now_st = SystemTime::now();
    let now = now_st
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let runner = Runner::new(config.dry_run);
    let mut gc = GuestChecks::new();
    run_guest_checks(config, &runner, now, &mut gc);
    let findings = std::mem::take(&mut gc.findings);

    let mut state = Component::new(ComponentName::Tfstate, "Terraform state in S3");
    let mut services = Component::new(ComponentName::Services, "DR services (--full)");
    let mut environments = Vec::new();
    let envs = match &config.root {
        None => {
            state.skip("no --root (PVE_DRIFT_ROOT) given: Terraform states not checked");
            Vec::new()
        }
        Some(root) => match tfstate::discover(root) {
            Ok(mut envs) => {
                if !config.envs.is_empty() {
                    envs.retain(|e| config.envs.contains(&e.name));
                }
                envs
            }
            Err(e) => {
                state.add(
                    &root.display().to_string(),
                    CheckName::Environments,
                    Status::Fail,
                    format!("{e:#}"),
                );
                Vec::new()
            }
        },
    };
    let t = Instant::now();
    for env in &envs {
        environments.push(tfstate::check_env(
            env,
            config.tfvars.as_deref(),
            config.state_max_age,
            now,
            &mut state,
        ));
    }
    if config.root.is_some() && envs.is_empty() && state.checks.is_empty() {
        state.add(
            "root",
            CheckName::Environments,
            Status::Fail,
            "no environment found",
        );
    }
    state.duration_ms = ms(t);
    let t = Instant::now();
    if config.full {
        // The node's part (jobs, connectivity) first, as the replaced script's report ordered them.
        merge_component(
            &mut services,
            std::mem::replace(&mut gc.full, Component::new(ComponentName::Services, "")),
        );
        services::check(&mut services, config, &runner, &envs);
    } else {
        services.skip("not run: give --full for the disaster-recovery final check");
    }
    services.duration_ms = ms(t);

    let mode = if config.local.is_set() {
        "local"
    } else {
        "remote"
    };
    let mut report = assemble(config, now, mode, gc, state, services, environments);
    report.findings = findings;
    report.duration_ms = ms(started);
    report.finish();
    Ok(report)
}

/// The report of a run (or of a dry run, whose checks are all skipped): every component in its fixed order.
fn assemble(
    config: &Config,
    now: i64,
    mode: &str,
    gc: GuestChecks,
    state: Component,
    services: Component,
    environments: Vec<report::EnvResult>,
) -> Report {
    Report {
        schema: SCHEMA.to_owned(),
        tool: ToolInfo::new("verify-backups", env!("CARGO_PKG_VERSION")),
        started_at: jiff::Timestamp::from_second(now)
            .map_or_else(|_| String::new(), |t| t.to_string()),
        started_epoch: now,
        duration_ms: 0,
        mode: mode.to_owned(),
        deep: config.deep,
        full: config.full,
        status: Status::Ok,
        counts: report::Counts::default(),
        components: vec![
            gc.coverage,
            gc.archives,
            gc.integrity,
            gc.bitrot,
            gc.pbs,
            state,
            services,
        ],
        guests: gc.guests,
        backups: gc.backups,
        environments,
        findings: Vec::new(),
    }
}

/// What `--dry-run` says it would run, one `[DRY-RUN]` line each (on stderr, with the values known
/// and a placeholder for the rest), then a sample report from placeholder rows; nothing is contacted.
fn dry_run(config: &Config) -> Result<Verdict> {
    let w = &words::words(config.french);
    for warning in &config.node_warnings {
        pve_common::warn!("{warning}");
    }
    let storages: Vec<String> = config
        .storage
        .clone()
        .map_or_else(|| vec!["<stockage>".to_owned()], |s| vec![s]);
    let targets = dry_run_targets(config);
    let dry = |line: String| {
        pve_common::log::emit(
            pve_common::log::Level::DryRun,
            format_args!("[DRY-RUN] {line}"),
        );
    };
    dry_run_nodes(config, &targets, &storages, w, &dry);
    let envs = dry_run_envs(config);
    for (_, url, endpoint) in &envs {
        dry(format!(
            "s3 list-object-versions {url} (endpoint {endpoint})"
        ));
        dry(format!("s3 get {url} | verification JSON"));
    }
    if config.full {
        dry_run_services(config, &dry);
    }
    dry(w.sample.clone());
    let now = jiff::Timestamp::now().as_second();
    let (rows, findings) = sample(config, now, &envs, &storages[0], w);
    if config.json {
        let mut gc = GuestChecks::new();
        gc.skip_all("dry-run: nothing contacted");
        let mut state = Component::new(ComponentName::Tfstate, "Terraform state in S3");
        state.skip("dry-run: nothing contacted");
        let mut services = Component::new(ComponentName::Services, "DR services (--full)");
        services.skip("dry-run: nothing contacted");
        let mut report = assemble(config, now, "remote", gc, state, services, Vec::new());
        report.finish();
        pve_common::output::write_json(&report)?;
    } else {
        let mut text = String::new();
        if config.full {
            text.push_str(&contract::render_full(&findings, w));
        }
        text.push_str(&contract::render(&rows, w));
        pve_common::output::write_stdout(&text)?;
    }
    Ok(Verdict::Ok)
}

/// The nodes a dry run names: `(node, [user@]host[ -p port])`, placeholders when none is known.
fn dry_run_targets(config: &Config) -> Vec<(String, String)> {
    if config.targets.is_empty() {
        vec![("<noeud>".to_owned(), "root@<noeud>".to_owned())]
    } else {
        config
            .targets
            .iter()
            .map(|t| {
                let user = t
                    .target
                    .user
                    .as_deref()
                    .map_or_else(String::new, |u| format!("{u}@"));
                let port = t
                    .target
                    .port
                    .map_or_else(String::new, |p| format!(" -p {p}"));
                (
                    t.node.clone().unwrap_or_else(|| "<noeud>".to_owned()),
                    format!("{user}{}{port}", t.target.host),
                )
            })
            .collect()
    }
}

/// What a dry run would ask each node: its backups and dump folders, and with `--full` its jobs and guests.
fn dry_run_nodes(
    config: &Config,
    targets: &[(String, String)],
    storages: &[String],
    w: &words::Words,
    dry: &dyn Fn(String),
) {
    for (node, host) in targets {
        for storage in storages {
            dry(format!(
                "ssh {host} pvesh get /nodes/{node}/storage/{storage}/content --content backup --output-format json"
            ));
            let dump = config.dump_dirs.get(storage).cloned().unwrap_or_else(|| {
                if storage == "local" {
                    "/var/lib/vz/dump".to_owned()
                } else {
                    format!("<chemin de {storage}>/dump")
                }
            });
            dry(format!("ssh {host} ls -la {dump}/vzdump-*"));
        }
        if config.full {
            dry(format!(
                "ssh {host} pvesh get /cluster/backup --output-format json"
            ));
            dry(format!(
                "ssh {host} pvesh get /cluster/resources --type vm --output-format json"
            ));
            let id = config
                .vmids
                .first()
                .map_or_else(|| "<vmid>".to_owned(), u32::to_string);
            dry(format!(
                "ssh {host} qm guest cmd {id} ping ({})",
                w.dry_each_vm
            ));
            dry(format!(
                "ssh {host} pct exec {id} -- true ({})",
                w.dry_each_ct
            ));
        }
    }
}

/// The environments a dry run names: `(env, state URL, endpoint)`, the homelab's three when none is found.
fn dry_run_envs(config: &Config) -> Vec<(String, String, String)> {
    let envs: Vec<(String, String, String)> = match &config.root {
        Some(root) => tfstate::discover(root)
            .unwrap_or_default()
            .into_iter()
            .map(|e| match e.backend {
                Ok(b) => (e.name, b.url(), b.endpoint),
                Err(_) => (
                    e.name.clone(),
                    format!("s3://tfstate-{}/terraform.tfstate", e.name),
                    "<minio>".to_owned(),
                ),
            })
            .collect(),
        None => Vec::new(),
    };
    if envs.is_empty() {
        ["prod", "lab", "monitoring"]
            .iter()
            .map(|e| {
                (
                    (*e).to_owned(),
                    format!("s3://tfstate-{e}/terraform.tfstate"),
                    "<minio>".to_owned(),
                )
            })
            .collect()
    } else {
        envs
    }
}

/// The sample report of a dry run: a guest, each environment's state and, with `--full`, a job and a guest
/// that answers.
fn sample(
    config: &Config,
    now: i64,
    envs: &[(String, String, String)],
    storage: &str,
    w: &words::Words,
) -> (Vec<contract::Row>, Vec<full::Finding>) {
    let vmid = config.vmids.first().copied().unwrap_or(100);
    let mut rows = vec![contract::Row {
        kind: "vzdump".into(),
        component: format!("VM {vmid}"),
        status: report::Status::Ok,
        last: Some(now - 3600),
        details: contract::human_size(512 * 1024 * 1024),
    }];
    for (env, _, _) in envs {
        rows.push(contract::Row {
            kind: "minio".into(),
            component: format!("tfstate-{env}"),
            status: report::Status::Ok,
            last: Some(now - 3600),
            details: format!("{}, 3 {}", contract::human_size(4 * 1024), w.versions),
        });
    }
    let findings = if config.full {
        let guest = full::GuestRef {
            kind: "qemu".into(),
            vmid,
            name: String::new(),
        };
        vec![
            full::Finding::Job(full::BackupJob::from_value(&serde_json::json!({
                "id": "backup-<job>", "schedule": "21:00", "storage": storage,
                "mode": "snapshot", "all": 1
            }))),
            full::Finding::Reach {
                guest,
                command: format!("qm guest cmd {vmid} ping"),
                reach: full::Reach::Answers,
            },
        ]
    } else {
        Vec::new()
    };
    rows.extend(findings.iter().map(|f| contract::finding_row(f, w)));
    (rows, findings)
}

/// `--full`'s local part in a dry run: `terraform init` of each environment and the health URLs known.
fn dry_run_services(config: &Config, dry: &dyn Fn(String)) {
    let envs = config
        .root
        .as_deref()
        .and_then(|r| tfstate::discover(r).ok())
        .unwrap_or_default();
    for env in &envs {
        dry(format!(
            "TF_DATA_DIR=<temp> terraform -chdir={} init -input=false -no-color",
            env.dir.display()
        ));
    }
    let minio = config.services.minio.clone().or_else(|| {
        envs.iter()
            .find_map(|e| e.backend.as_ref().ok())
            .map(|b| b.endpoint.trim_end_matches('/').to_owned())
    });
    let s = &config.services;
    for (base, path) in [
        (minio.as_deref(), "/minio/health/live"),
        (s.prometheus.as_deref(), "/-/ready"),
        (s.grafana.as_deref(), "/api/health"),
        (s.alertmanager.as_deref(), "/-/ready"),
    ] {
        if let Some(base) = base {
            dry(format!("GET {base}{path}"));
        }
    }
}

/// Runs the tool: checks, prints the report, writes the metrics, says how the run ends (`main` turns it
/// into the exit code).
pub fn run(config: &Config) -> Result<Verdict> {
    if config.dry_run {
        return dry_run(config);
    }
    for warning in &config.node_warnings {
        pve_common::warn!("{warning}");
    }
    let report = verify(config)?;
    let w = &words::words(config.french);
    let mut rows = contract::rows(&report, config, w);
    if rows.is_empty() {
        // Checking nothing and saying OK was the bug the menu's call (no argument) hit.
        rows.push(contract::Row {
            kind: "vzdump".into(),
            component: "-".into(),
            status: report::Status::Fail,
            last: None,
            details: w.nothing_checked.clone(),
        });
    }
    pve_common::output::emit(config.json, &report, |report| {
        let mut text = String::new();
        if config.details {
            text.push_str(&report.render_text());
            text.push('\n');
        }
        if config.full {
            text.push_str(&contract::render_full(&report.findings, w));
        }
        text.push_str(&contract::render(&rows, w));
        text
    })?;
    if let Some(dir) = &config.textfile_dir {
        let runner = Runner::new(config.dry_run);
        let path = dir.join(METRICS_FILE);
        runner
            .write_file(&path, report::render_metrics(&report).as_bytes(), 0o644)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(contract::verdict(&rows))
}
