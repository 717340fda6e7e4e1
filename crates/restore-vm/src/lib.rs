//! `restore-vm`: restore a Proxmox VM or LXC container from a vzdump backup over SSH, with a save point
//! first. The flow is the `pve_restore` library's; this crate turns the command line into its options and
//! its outcome into the text or JSON the replaced script's callers read.
//!
//! The run, in order: check SSH access (with retry); list the VMID's backups on every backup storage;
//! pick one (`--backup` checked against that listing, `--latest`, `--at`); pre-flight (target storage
//! exists, is active and has room for size x `pve_restore::SPACE_FACTOR`; the target id is free or `--force`; not
//! locked; never protected); show the plan and confirm; take the save point (a full `vzdump` of the guest
//! about to be overwritten, checked to exist with a non-zero size); stop the target; `qmrestore` /
//! `pct restore` once, never retried; verify (start, wait for `running`, find the IP, ping and TCP-check
//! it); report. Any failure after the save point names it and the command that puts it back.

pub mod cli;
pub mod config;
pub mod locate;
pub mod report;
pub mod words;

/// The `restore-vm` binary, for [`pve_common::run`].
#[derive(Debug)]
pub struct RestoreVm;

impl pve_common::Tool for RestoreVm {
    const NAME: &'static str = "restore-vm";
    type Args = cli::Args;

    fn common(args: &cli::Args) -> &pve_common::cli::CommonArgs {
        &args.common
    }

    fn run(args: cli::Args) -> anyhow::Result<Code> {
        run(&Config::from_args(&args)?)
    }
}

use pve_common::exit::Code;
use pve_common::pve::GuestType;
use pve_restore::RestoreResult;

use config::Config;
use report::{BackupJson, Report};

/// Runs the tool: lists or restores through [`pve_restore`], then prints the list or the report on
/// stdout (text, or JSON with `--json`). A failed verification is exit 1, named on stderr with the way
/// back to the save point.
pub fn run(cfg: &Config) -> anyhow::Result<Code> {
    if cfg.list
        && let Some(lookup) = &cfg.lookup
        && !cfg.restore.offline
    {
        let found = locate::list(cfg, lookup)?;
        let backups: Vec<BackupJson> = found
            .iter()
            .map(|b| BackupJson::from(&b.backup).at(Some(&b.node), b.environment.as_deref()))
            .collect();
        report::write_list(cfg, None, &backups)?;
        return Ok(Code::Success);
    }
    let mut opts = cfg.restore.clone();
    let mut environment = None;
    if let Some(lookup) = &cfg.lookup {
        let found = locate::find(cfg, lookup)?;
        opts.access = found.access;
        environment = found.environment;
    }
    if cfg.list {
        let listing = pve_restore::list(&opts)?;
        let backups: Vec<BackupJson> = listing
            .backups
            .iter()
            .map(|b| BackupJson::from(b).at(Some(&listing.node), environment.as_deref()))
            .collect();
        report::write_list(cfg, Some(&listing.node), &backups)?;
        return Ok(Code::Success);
    }
    let restored = pve_restore::restore(&opts)?;
    let mut report = Report::new(&restored);
    report.environment = environment;
    pve_common::output::emit(cfg.json, &report, |r| r.text())?;
    if restored.result != RestoreResult::VerificationFailed {
        return Ok(Code::Success);
    }
    let msg = restored
        .verification
        .as_ref()
        .map(|v| v.message.clone())
        .unwrap_or_default();
    let e = restored.with_way_back(anyhow::anyhow!(
        "verification of {} {} failed: {msg}",
        GuestType::from_subtype(&restored.kind).map_or("guest", GuestType::label),
        opts.target_id
    ));
    pve_common::error!("{e:#}");
    Ok(Code::Failure)
}
