//! Restoring a Proxmox VM or LXC container from a vzdump backup over SSH, with a save point first: the
//! flow restore-vm runs and rebuild-monitoring reuses for the monitoring VM.
//!
//! The run, in order: check SSH access (with retry); list the VMID's backups on every backup storage;
//! pick one (a volid checked against that listing, the newest, the newest within an age, at a time, from a
//! day); pre-flight (target storage exists, is active and has room for size x [`SPACE_FACTOR`]; the target
//! id is free or [`Options::force`]; not locked; never protected); show the plan and confirm; take the save
//! point (a full `vzdump` of the guest about to be overwritten, checked to exist with a non-zero size);
//! stop the target; `qmrestore` / `pct restore` once, never retried; verify (start, wait for `running`,
//! find the IP, ping and TCP-check it). Any failure after the save point names it and the command that
//! puts it back.

pub mod locate;
pub mod node;
pub mod options;
pub mod outcome;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pve_common::pve::{self, GuestType, StorageStatus};
use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshOptions, TransportKind};

use node::{Backup, Node};
pub use options::{Options, Selection};
pub use outcome::{BackupInfo, Listing, RestoreResult, Restored, Verification, VerificationResult};

/// Free space needed on the target storage, as a multiple of the backup's (compressed) size.
pub const SPACE_FACTOR: f64 = 1.5;

/// Test hook: the delay before the first retry of a transient SSH failure, in milliseconds.
pub const RETRY_DELAY_ENV: &str = "RESTORE_VM_RETRY_DELAY_MS";

fn ssh_options(cfg: &Options) -> SshOptions {
    let mut o = cfg.access.ssh_options();
    if let Some(ms) = std::env::var(RETRY_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        o.retry.initial_delay = Duration::from_millis(ms);
    }
    o
}

/// Lists the backups of `cfg.vmid` (on `cfg.backup_storage`, else every backup storage), newest first.
/// Prints nothing on stdout. With [`Options::offline`], shows the queries it would run and lists nothing.
pub fn list(cfg: &Options) -> anyhow::Result<Listing> {
    if cfg.offline {
        let (node, _) = offline_listing(cfg);
        return Ok(Listing {
            node,
            backups: Vec::new(),
        });
    }
    let runner = Runner::new(cfg.dry_run);
    let (node, offset, backups) = connect_and_list(cfg, &runner)?;
    Ok(Listing {
        backups: backups.iter().map(|b| BackupInfo::new(b, offset)).collect(),
        node: node.name,
    })
}

/// Restores the backup `cfg.selection` names and returns what it did, printing nothing on stdout (the
/// plan, progress, warnings and the dry-run echo go to stderr). Errors after the save point name it and
/// the command that puts the old guest back. With [`Options::offline`], says what it would do, with
/// placeholders for what only the node knows.
pub fn restore(cfg: &Options) -> anyhow::Result<Restored> {
    if cfg.offline {
        return Ok(offline_plan(cfg));
    }
    let started = Instant::now();
    let runner = Runner::new(cfg.dry_run);
    let (mut node, offset, backups) = connect_and_list(cfg, &runner)?;
    let backup = select(cfg, &backups, offset)?;
    run_restore(cfg, &mut node, backup, offset, started)
}

/// Connects to the node, learns its name and clock, and lists the backups the selection searches.
fn connect_and_list<'r>(
    cfg: &Options,
    runner: &'r Runner,
) -> anyhow::Result<(Node<'r>, jiff::tz::Offset, Vec<Backup>)> {
    let options = ssh_options(cfg);
    if options.transport == TransportKind::OpenSsh {
        pve_common::prereqs::check_prereqs(&[pve_common::prereqs::Prereq {
            command: "ssh",
            purpose: "the OpenSSH transport (PVE_SSH_TRANSPORT=openssh)",
        }])?;
    }
    let mut ssh = SshClient::new(runner, &cfg.access.target(), options)?;
    ssh.check_ssh_access()
        .context("checking SSH access to the Proxmox node")?;
    let mut node = Node {
        ssh,
        name: String::new(),
    };
    node.name = match &cfg.access.node {
        Some(n) => n.clone(),
        None => {
            #[derive(serde::Deserialize)]
            struct N {
                node: String,
            }
            let nodes: Vec<N> = node.get("/nodes", &[])?;
            match nodes.as_slice() {
                [one] => one.node.clone(),
                _ => bail!(
                    "the host has {} nodes: pass --node (or set PVE_NODE / tfvars node_name)",
                    nodes.len()
                ),
            }
        }
    };
    let offset = node.utc_offset().unwrap_or_else(|e| {
        pve_common::warn!("cannot read the node's time zone ({e:#}); showing times in UTC");
        jiff::tz::Offset::UTC
    });
    // `--backup VOLID` is checked against every backup storage's listing (it names its storage, which
    // may be none); otherwise `--storage` is searched (or every backup storage).
    let searched = match &cfg.selection {
        Selection::Volid(_) => None,
        _ => cfg.backup_storage.as_deref(),
    };
    let backups = match searched {
        Some(storage) => node.backups_sorted(storage, cfg.vmid)?,
        None => node.all_backups(cfg.vmid)?,
    };
    Ok((node, offset, backups))
}

/// Says what a run would do without contacting anything: every command, queries included, on a
/// `[DRY-RUN]` line with the values known from the command line and placeholders for what only the node
/// knows (the backup's volid, whether VMID is a VM or a container, whether the target exists), then the
/// usual report.
fn offline_plan(cfg: &Options) -> Restored {
    let (node, storages) = offline_listing(cfg);
    let target = cfg.target_id.to_string();
    let would = |cmd: &RemoteCommand| announce(cfg, cmd);
    let get = pvesh_get;
    let volid = match &cfg.selection {
        Selection::Volid(v) => v.to_string(),
        _ => "<volid>".to_owned(),
    };
    let source = placeholder_backup(cfg, &volid, &storages[0]);
    would(&get(
        format!("/nodes/{node}/storage/{}/status", cfg.storage),
        &[],
    ));
    would(&get("/cluster/resources".into(), &["--type", "vm"]));
    let mut report = Restored::new(cfg, &node, source);
    for kind in [GuestType::Qemu, GuestType::Lxc] {
        would(&get(
            format!("/nodes/{node}/{kind}/{target}/status/current"),
            &[],
        ));
    }
    let save = cfg
        .save_storage
        .clone()
        .unwrap_or_else(|| storages[0].clone());
    would(
        &RemoteCommand::mutating("vzdump")
            .arg(target.as_str())
            .args([
                "--storage",
                save.as_str(),
                "--mode",
                "snapshot",
                "--compress",
                "zstd",
            ]),
    );
    for kind in [GuestType::Qemu, GuestType::Lxc] {
        let secs = cfg.shutdown_timeout.as_secs().to_string();
        would(&RemoteCommand::mutating(kind.cli()).args([
            "shutdown",
            target.as_str(),
            "--timeout",
            secs.as_str(),
        ]));
    }
    for kind in [GuestType::Qemu, GuestType::Lxc] {
        would(&restore_command(kind, &volid, cfg.target_id, cfg, true));
    }
    report.restore_command =
        restore_command(GuestType::Qemu, &volid, cfg.target_id, cfg, true).to_string();
    if cfg.start {
        for kind in [GuestType::Qemu, GuestType::Lxc] {
            would(&RemoteCommand::mutating(kind.cli()).args(["start", target.as_str()]));
        }
        if cfg.verify {
            for kind in [GuestType::Qemu, GuestType::Lxc] {
                would(&get(
                    format!("/nodes/{node}/{kind}/{target}/status/current"),
                    &[],
                ));
            }
        }
    }
    report.overwrite = false;
    report.result = RestoreResult::DryRun;
    report.verification = Some(Verification::skipped("dry-run"));
    report
}

/// The backup of a dry-run: what the command line says of it, placeholders for what only the node knows.
fn placeholder_backup(cfg: &Options, volid: &str, storage: &str) -> BackupInfo {
    BackupInfo {
        volid: volid.to_owned(),
        storage: storage.to_owned(),
        kind: "<qemu|lxc>".to_owned(),
        format: "<format>".to_owned(),
        size: 0,
        ctime: 0,
        date: match &cfg.selection {
            Selection::OnOrAfter(d) => format!(">= {d}"),
            Selection::At(t) => format!("<= {t}"),
            _ => "<date>".to_owned(),
        },
        notes: None,
        protected: false,
        verification: None,
    }
}

/// Shows `cmd` as the offline plan would run it on the node (`ssh user@host cmd`), on a [DRY-RUN] line.
fn announce(cfg: &Options, cmd: &RemoteCommand) {
    let user = cfg.access.user.as_deref().unwrap_or("root");
    Runner::with_mode(pve_common::runner::Mode::DryRun)
        .announce(format!("ssh {user}@{} {cmd}", cfg.access.host));
}

/// `pvesh get PATH ARGS --output-format json`.
fn pvesh_get(path: String, args: &[&str]) -> RemoteCommand {
    RemoteCommand::read_only("pvesh")
        .arg("get")
        .arg(path)
        .args(args.iter().copied())
        .args(["--output-format", "json"])
}

/// The listing part of an offline plan: announces its queries; returns the node's name (or a
/// placeholder) and the storages it would search.
fn offline_listing(cfg: &Options) -> (String, Vec<String>) {
    let node = cfg
        .access
        .node
        .clone()
        .unwrap_or_else(|| "<node>".to_owned());
    let id = cfg.vmid.to_string();
    let would = |cmd: &RemoteCommand| announce(cfg, cmd);
    let get = pvesh_get;
    would(&RemoteCommand::read_only("true"));
    if cfg.access.node.is_none() {
        would(&get("/nodes".into(), &[]));
    }
    would(&RemoteCommand::read_only("date").arg("+%z"));
    let storages: Vec<String> = match &cfg.backup_storage {
        Some(s) => vec![s.clone()],
        None => {
            would(&get(
                format!("/nodes/{node}/storage"),
                &["--content", "backup"],
            ));
            vec!["<storage>".to_owned()]
        }
    };
    for s in &storages {
        would(&get(
            format!("/nodes/{node}/storage/{s}/content"),
            &["--content", "backup", "--vmid", &id],
        ));
    }
    (node, storages)
}

/// How old a backup taken at `ctime` (seconds since the epoch) is now; 0 for one from the future.
pub fn backup_age(ctime: i64) -> Duration {
    let now = jiff::Timestamp::now().as_second();
    Duration::from_secs(u64::try_from(now.saturating_sub(ctime)).unwrap_or(0))
}

/// Whether a backup taken at `ctime` is younger than `max_age` ([`Selection::NewestWithin`]'s rule). A
/// time beyond the clock skew allowed ([`pve::check_ctime`]) is never recent.
pub fn is_recent(ctime: i64, max_age: Duration) -> bool {
    pve::check_ctime(ctime, jiff::Timestamp::now().as_second()).is_ok()
        && backup_age(ctime) <= max_age
}

/// Picks the backup the configuration asks for.
pub fn select<'b>(
    cfg: &Options,
    backups: &'b [Backup],
    offset: jiff::tz::Offset,
) -> anyhow::Result<&'b Backup> {
    match &cfg.selection {
        Selection::Latest => backups
            .first()
            .with_context(|| format!("no backups of {} on any backup storage", cfg.vmid)),
        Selection::Volid(v) => {
            let text = v.to_string();
            backups
                .iter()
                .find(|b| b.content.volid == text)
                .with_context(|| {
                    format!(
                        "backup '{text}' is not a backup of {} on this node (see `restore-vm {} --list`)",
                        cfg.vmid, cfg.vmid
                    )
                })
        }
        Selection::NewestWithin(max_age) => {
            let newest = backups
                .first()
                .with_context(|| format!("no backups of {} on any backup storage", cfg.vmid))?;
            if !is_recent(newest.content.ctime, *max_age) {
                bail!(
                    "the newest backup of {} ({}) is {} old, older than {}",
                    cfg.vmid,
                    newest.content.volid,
                    humantime::format_duration(Duration::from_secs(
                        backup_age(newest.content.ctime).as_secs()
                    )),
                    humantime::format_duration(*max_age)
                );
            }
            Ok(newest)
        }
        Selection::OnOrAfter(day) => {
            let from = day
                .to_zoned(jiff::tz::TimeZone::fixed(offset))
                .context("--date")?
                .timestamp()
                .as_second();
            backups
                .iter()
                .filter(|b| b.content.ctime >= from)
                .min_by_key(|b| b.content.ctime)
                .with_context(|| format!("no backup of {} on or after {day}", cfg.vmid))
        }
        Selection::At(when) => {
            let limit = when
                .to_zoned(jiff::tz::TimeZone::fixed(offset))
                .context("--at")?
                .timestamp()
                .as_second();
            backups
                .iter()
                .find(|b| b.content.ctime <= limit)
                .with_context(|| format!("no backup of {} at or before {when}", cfg.vmid))
        }
    }
}

fn restore_command(
    kind: GuestType,
    volid: &str,
    id: u32,
    cfg: &Options,
    force: bool,
) -> RemoteCommand {
    let mut cmd = match kind {
        GuestType::Qemu => RemoteCommand::mutating("qmrestore")
            .arg(volid)
            .arg(id.to_string()),
        GuestType::Lxc => RemoteCommand::mutating("pct")
            .arg("restore")
            .arg(id.to_string())
            .arg(volid),
    };
    cmd = cmd.args(["--storage", cfg.storage.as_str()]);
    if force {
        cmd = cmd.args(["--force", "1"]);
    }
    if cfg.unique {
        cmd = cmd.args(["--unique", "1"]);
    }
    cmd.timeout(pve_ssh::DEFAULT_COMMAND_TIMEOUT)
}

/// What is at the target id now.
struct Existing {
    kind: GuestType,
    running: bool,
    name: Option<String>,
}

/// The target storage exists on the node, is active, holds the guest's kind of disks and has room for
/// the backup.
fn check_target_storage(cfg: &Options, node: &mut Node, backup: &Backup) -> anyhow::Result<()> {
    let s: StorageStatus = node.storage_status(&cfg.storage)?.with_context(|| {
        format!(
            "target storage '{}' does not exist on node {}",
            cfg.storage, node.name
        )
    })?;
    if !s.enabled || !s.active {
        bail!("target storage '{}' is not active", cfg.storage);
    }
    let content = match backup.guest_type {
        GuestType::Qemu => "images",
        GuestType::Lxc => "rootdir",
    };
    if !s.content.is_empty() && !s.has_content(content) {
        bail!(
            "target storage '{}' does not hold {content} (content: {})",
            cfg.storage,
            s.content
        );
    }
    let need = (backup.content.size as f64 * SPACE_FACTOR).ceil() as u64;
    let avail = s.avail.unwrap_or(0);
    if avail < need {
        bail!(
            "target storage '{}' has {} free; the backup needs about {} ({} x {SPACE_FACTOR})",
            cfg.storage,
            outcome::human(avail),
            outcome::human(need),
            outcome::human(backup.content.size)
        );
    }
    Ok(())
}

fn preflight(cfg: &Options, node: &mut Node, backup: &Backup) -> anyhow::Result<Option<Existing>> {
    check_target_storage(cfg, node, backup)?;
    let Some(res) = node.find_guest(cfg.target_id)? else {
        return Ok(None);
    };
    let kind = res
        .guest_type()
        .with_context(|| format!("guest {} has unknown type '{}'", cfg.target_id, res.kind))?;
    if res.node.as_deref().is_some_and(|n| n != node.name) {
        bail!(
            "guest {} exists on node {}, not {}: restore there or choose --target-id",
            cfg.target_id,
            res.node.as_deref().unwrap_or_default(),
            node.name
        );
    }
    let status = node.guest_status(kind, cfg.target_id)?;
    let config = node.guest_config(kind, cfg.target_id)?;
    if pve_common::pve::config_protected(&config) {
        bail!(
            "{} {} is protected (protection: 1): restore-vm never overwrites a protected guest; \
             remove the protection yourself if you really mean it, or choose --target-id",
            kind.label(),
            cfg.target_id
        );
    }
    if let Some(lock) = status.lock.as_deref().or(res.lock.as_deref()) {
        bail!(
            "{} {} is locked ({lock}); wait for the running task or unlock it (`{} unlock {}`) first",
            kind.label(),
            cfg.target_id,
            kind.cli(),
            cfg.target_id
        );
    }
    if kind != backup.guest_type {
        bail!(
            "guest {} is a {} but the backup is of a {}: Proxmox cannot restore over it; choose --target-id",
            cfg.target_id,
            kind.label(),
            backup.guest_type.label()
        );
    }
    if !cfg.force {
        bail!(
            "{} {} ({}) exists: pass --force to overwrite it (a save point is taken first), or choose --target-id",
            kind.label(),
            cfg.target_id,
            status.name.or(res.name).unwrap_or_default()
        );
    }
    Ok(Some(Existing {
        kind,
        running: status.is_running(),
        name: status.name.or(res.name),
    }))
}

fn pick_save_storage(
    cfg: &Options,
    node: &mut Node,
    backup: &Backup,
) -> anyhow::Result<StorageStatus> {
    let storages = node.backup_storages()?;
    let wanted = cfg.save_storage.clone().or_else(|| {
        storages
            .iter()
            .find(|s| s.storage == backup.storage && s.active && s.kind != "pbs")
            .or_else(|| storages.iter().find(|s| s.active))
            .map(|s| s.storage.clone())
    });
    let Some(name) = wanted else {
        bail!("no active backup storage for the save point: pass --save-storage")
    };
    let s = storages
        .into_iter()
        .find(|s| s.storage == name)
        .with_context(|| {
            format!("save-point storage '{name}' does not exist or holds no backups")
        })?;
    if !s.active {
        bail!("save-point storage '{name}' is not active");
    }
    Ok(s)
}

fn run_restore(
    cfg: &Options,
    node: &mut Node,
    backup: &Backup,
    offset: jiff::tz::Offset,
    started: Instant,
) -> anyhow::Result<Restored> {
    let kind = backup.guest_type;
    let volid = backup.content.volid.clone();
    let existing = preflight(cfg, node, backup)?;
    let save_storage = match &existing {
        Some(_) => Some(pick_save_storage(cfg, node, backup)?),
        None => None,
    };
    let same_mac = same_mac_warning(cfg, node, kind)?;
    let mut report = Restored::new(cfg, &node.name, BackupInfo::new(backup, offset));
    let force = existing.is_some();
    report.overwrite = force;
    let cmd = restore_command(kind, &volid, cfg.target_id, cfg, force);
    report.restore_command = cmd.to_string();

    show_plan(cfg, node, backup, offset, &cmd, &existing, &save_storage);
    if let Some(w) = same_mac {
        pve_common::warn!("{w}");
        report.warnings.push(w);
    }
    // As the script did, only overwriting is asked: a restore to a free id goes ahead.
    if !cfg.dry_run && existing.is_some() {
        confirm_overwrite(cfg, kind, &volid)?;
    }
    if let (Some(e), Some(s)) = (&existing, &save_storage) {
        take_save_point(cfg, node, e, s, &volid, &mut report)?;
    }
    let after = |e: anyhow::Error, report: &Restored| report.with_way_back(e);

    // Stop the target.
    let was_running = existing.as_ref().is_some_and(|e| e.running);
    if was_running {
        stop_guest(cfg, node, kind).map_err(|e| after(e, &report))?;
    }

    // Restore: once, never retried.
    let run = node
        .mutate(&cmd, true)
        .with_context(|| format!("restoring {volid} to {} {}", kind.label(), cfg.target_id))
        .map_err(|e| after(e, &report))?;
    if let Some(run) = &run {
        for w in &run.warnings {
            pve_common::warn!("restore: {w}");
        }
        report.warnings.extend(run.warnings.iter().cloned());
        report.restore_seconds = Some(run.elapsed.as_secs_f64());
        pve_common::success!(
            "restored {volid} to {} {} in {}",
            kind.label(),
            cfg.target_id,
            humantime::format_duration(Duration::from_secs(run.elapsed.as_secs()))
        );
    }

    // Start (asked for, or the old guest was running), then verify.
    let start = cfg.start || was_running;
    if start && !cfg.dry_run {
        start_guest(node, kind, cfg.target_id).map_err(|e| after(e, &report))?;
    }
    let verification = if !cfg.verify {
        Verification::skipped("--no-verify")
    } else if cfg.dry_run {
        Verification::skipped("dry-run")
    } else if !start {
        Verification::skipped(
            "not started (pass --start; it starts anyway when the old guest was running)",
        )
    } else {
        verify(cfg, node, kind).map_err(|e| after(e, &report))?
    };
    let failed = verification.result == VerificationResult::Failed;
    report.verification = Some(verification);
    report.result = if cfg.dry_run {
        RestoreResult::DryRun
    } else if failed {
        RestoreResult::VerificationFailed
    } else {
        RestoreResult::Restored
    };
    report.duration_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The warning for a restore under another id while the original guest runs: both would have the
/// same MAC address (unless `--unique`).
fn same_mac_warning(
    cfg: &Options,
    node: &mut Node,
    kind: GuestType,
) -> anyhow::Result<Option<String>> {
    if cfg.target_id == cfg.vmid {
        return Ok(None);
    }
    let original_running = match node.find_guest(cfg.vmid)? {
        Some(r) => r.status.as_deref() == Some("running"),
        None => false,
    };
    Ok((original_running && !cfg.unique).then(|| {
        format!(
            "the original guest {} is running: the restored {} {} gets the same MAC address{} \
             (duplicate MAC/IP on the network); pass --unique for new MACs and do not start both",
            cfg.vmid,
            kind.label(),
            cfg.target_id,
            " and, with a static IP, the same IP"
        )
    }))
}

/// Logs the plan: the backup, the target, and what an overwrite takes first.
fn show_plan(
    cfg: &Options,
    node: &Node,
    backup: &Backup,
    offset: jiff::tz::Offset,
    cmd: &RemoteCommand,
    existing: &Option<Existing>,
    save_storage: &Option<StorageStatus>,
) {
    let kind = backup.guest_type;
    let volid = &backup.content.volid;
    let when = BackupInfo::new(backup, offset).date;
    pve_common::info!(
        "plan: restore {} backup {volid} ({when}, {}) to {} {} on storage {} of node {}",
        kind,
        outcome::human(backup.content.size),
        kind.label(),
        cfg.target_id,
        cfg.storage,
        node.name
    );
    if let (Some(e), Some(s)) = (existing, save_storage) {
        pve_common::info!(
            "plan: {} {} ({}) will be OVERWRITTEN, with all its disks and snapshots{}",
            e.kind.label(),
            cfg.target_id,
            pve_common::output::escape(e.name.as_deref().unwrap_or("")),
            if e.running {
                "; it is running and will be shut down"
            } else {
                ""
            }
        );
        pve_common::info!(
            "plan: save point first: vzdump {} to storage {}",
            cfg.target_id,
            s.storage
        );
    }
    pve_common::info!("plan: {cmd}");
}

/// Asks before a guest is overwritten (`--force`: yes).
fn confirm_overwrite(cfg: &Options, kind: GuestType, volid: &str) -> anyhow::Result<()> {
    let question = pve_common::tr!(
        "restore_vm.overwrite_question",
        kind = kind.label(),
        id = cfg.target_id,
        volid = volid
    );
    pve_common::confirm::ask(
        &question,
        &pve_common::tr!(
            "restore_vm.overwrite_action",
            kind = kind.label(),
            id = cfg.target_id
        ),
        cfg.yes,
    )?;
    Ok(())
}

/// Takes the save point of the guest about to be overwritten and records in `report` how to put it
/// back (also for an interrupt from here on).
fn take_save_point(
    cfg: &Options,
    node: &mut Node,
    e: &Existing,
    s: &StorageStatus,
    volid: &str,
    report: &mut Restored,
) -> anyhow::Result<()> {
    pve_common::interrupt::set_note(Some(
        "it happened while the save point was taken: nothing was overwritten".to_owned(),
    ));
    let sp = save_point(cfg, node, e.kind, &s.storage, volid)
        .context("the save point failed: nothing was overwritten")?;
    report.save_point = sp.clone();
    report.save_point_restore_command = sp
        .as_ref()
        .map(|sp| restore_command(e.kind, sp, cfg.target_id, cfg, true).to_string());
    pve_common::interrupt::set_note(
        report
            .save_point_restore_command
            .as_ref()
            .zip(sp.as_ref())
            .map(|(back, sp)| {
                format!(
                    "the old guest is saved in {sp}; to put it back run on node {}: {back}",
                    report.node
                )
            }),
    );
    match &sp {
        Some(sp) => pve_common::success!("save point: {sp}"),
        None => pve_common::info!("save point: (dry-run: not taken)"),
    }
    Ok(())
}

/// Takes the save point: vzdump of the target to `storage`, then finds the new archive in the listing and
/// checks its size. `None` in dry-run.
fn save_point(
    cfg: &Options,
    node: &mut Node,
    kind: GuestType,
    storage: &str,
    volid: &str,
) -> anyhow::Result<Option<String>> {
    let before: Vec<String> = node
        .backups_on(storage, cfg.target_id)?
        .into_iter()
        .map(|b| b.content.volid)
        .collect();
    let notes = format!(
        "restore-vm save point of {} {} before restoring {volid}",
        kind.label(),
        cfg.target_id
    );
    let cmd = RemoteCommand::mutating("vzdump")
        .arg(cfg.target_id.to_string())
        .args([
            "--storage",
            storage,
            "--mode",
            "snapshot",
            "--compress",
            "zstd",
        ])
        .args(["--notes-template", notes.as_str()]);
    pve_common::info!("taking the save point: {cmd}");
    let Some(_) = node.mutate(&cmd, true)? else {
        return Ok(None);
    };
    let new = node
        .backups_on(storage, cfg.target_id)?
        .into_iter()
        .filter(|b| !before.contains(&b.content.volid))
        .max_by_key(|b| b.content.ctime)
        .with_context(|| {
            format!(
                "vzdump reported success but no new backup of {} is on storage {storage}",
                cfg.target_id
            )
        })?;
    if new.content.size == 0 {
        bail!("the save point {} has size 0", new.content.volid);
    }
    Ok(Some(new.content.volid))
}

/// Shuts the guest down cleanly within the timeout, else stops it.
fn stop_guest(cfg: &Options, node: &mut Node, kind: GuestType) -> anyhow::Result<()> {
    let id = cfg.target_id.to_string();
    let secs = cfg.shutdown_timeout.as_secs().to_string();
    let shutdown = RemoteCommand::mutating(kind.cli())
        .args(["shutdown", id.as_str(), "--timeout", secs.as_str()])
        .timeout(cfg.shutdown_timeout + Duration::from_secs(30));
    if let Err(e) = node.mutate(&shutdown, false) {
        pve_common::warn!(
            "clean shutdown failed ({e:#}); stopping {} {id}",
            kind.label()
        );
        let stop = RemoteCommand::mutating(kind.cli()).args(["stop", id.as_str()]);
        node.mutate(&stop, false)
            .with_context(|| format!("stopping {} {id}", kind.label()))?;
    }
    Ok(())
}

/// Starts the guest unless it already runs.
fn start_guest(node: &mut Node, kind: GuestType, id: u32) -> anyhow::Result<()> {
    if node.guest_status(kind, id)?.is_running() {
        return Ok(());
    }
    let start = RemoteCommand::mutating(kind.cli()).args(["start", &id.to_string()]);
    node.mutate(&start, false)
        .with_context(|| format!("starting {} {id}", kind.label()))?;
    Ok(())
}

/// Waits for `running`, finds the guest's IP and checks it answers.
fn verify(cfg: &Options, node: &mut Node, kind: GuestType) -> anyhow::Result<Verification> {
    let id = cfg.target_id;
    let deadline = Instant::now() + cfg.verify_timeout;
    loop {
        if node.guest_status(kind, id)?.is_running() {
            break;
        }
        if Instant::now() >= deadline {
            return Ok(Verification::failed(
                None,
                format!(
                    "{} {id} is not running after {}s",
                    kind.label(),
                    cfg.verify_timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let Some(ip) = guest_ip(node, kind, id)? else {
        let w = "no IP found (guest agent, ipconfig0, net0): reachability not checked".to_owned();
        pve_common::warn!("{w}");
        return Ok(Verification {
            result: VerificationResult::Running,
            ip: None,
            ping: None,
            port_open: None,
            message: w,
        });
    };
    let addr = std::net::SocketAddr::new(ip, cfg.verify_port);
    let can_ping = pve_common::prereqs::check_prereqs(&[pve_common::prereqs::Prereq {
        command: "ping",
        purpose: "pinging the restored guest",
    }])
    .is_ok();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ping = can_ping.then(|| ping(ip));
        let open = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok();
        if open {
            return Ok(Verification {
                result: VerificationResult::Passed,
                ip: Some(ip.to_string()),
                ping,
                port_open: Some(true),
                message: format!("{ip} answers on port {}", cfg.verify_port),
            });
        }
        if Instant::now() >= deadline {
            return Ok(Verification {
                result: VerificationResult::Failed,
                ip: Some(ip.to_string()),
                ping,
                port_open: Some(false),
                message: format!(
                    "{ip} port {} did not answer within {}s ({attempt} attempts){}",
                    cfg.verify_port,
                    cfg.verify_timeout.as_secs(),
                    match ping {
                        Some(true) => "; ping answered",
                        Some(false) => "; ping did not answer",
                        None => "",
                    }
                ),
            });
        }
        pve_common::debug!("{addr} not answering yet (attempt {attempt})");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The restored guest's IP: from the QEMU guest agent when it is enabled, else from its configuration.
fn guest_ip(node: &mut Node, kind: GuestType, id: u32) -> anyhow::Result<Option<std::net::IpAddr>> {
    let config = node.guest_config(kind, id)?;
    let mut ip = None;
    if kind == GuestType::Qemu
        && config
            .get("agent")
            .is_some_and(|a| a.starts_with('1') || a.contains("enabled=1"))
    {
        let cmd = RemoteCommand::read_only("qm").args([
            "guest",
            "cmd",
            &id.to_string(),
            "network-get-interfaces",
        ]);
        if let Ok(Some(out)) = node.ssh.ssh_exec(&cmd) {
            ip = node::ip_from_agent(&out.stdout_text());
        }
    }
    Ok(ip.or_else(|| node::ip_from_config(&config)))
}

fn ping(ip: std::net::IpAddr) -> bool {
    let cmd = pve_common::runner::LocalCommand::new("ping")
        .args(["-c", "1", "-W", "2"])
        .arg(ip.to_string());
    matches!(
        Runner::new(false).run(pve_common::runner::Access::ReadOnly, &cmd),
        Ok(Some(out)) if out.status.success()
    )
}
