//! A simulated Proxmox VE node: `pvesh`, `qm`, `pct`, `qmrestore` and `vzdump` acting on a state
//! directory (`tests/testbed/SIM-STATE.md`), so the tools can be tested over a real SSH session
//! without Proxmox. The `pve-sim` binary is multi-call (by `argv[0]` basename, or `pve-sim <name> ...`);
//! the library side lets tests and the bed build fixtures: [`State::create`], [`State::add_storage`],
//! [`State::add_guest`], [`fixtures::add_backup`], [`State::journal`], [`State::set_faults`].
//!
//! Every state-changing call appends one line to `journal.jsonl` (read-only calls do not). Fault knobs
//! from `faults.json` fail, delay or cut commands and fill storages.
//!
//! Output and exit codes follow Proxmox: errors print the Proxmox message on stderr and exit 255
//! (the `exit(-1)` of PVE::CLIHandler); task commands print their task log on stdout.
//!
//! ```text
//! PVE_SIM_STATE=/tmp/bed/state pvesh get /nodes/pve/storage/local/content --content backup --output-format json
//! PVE_SIM_STATE=... qm status 100 | qm config 100 | qm list | qm set 100 --memory 4096 --delete tags
//! PVE_SIM_STATE=... qmrestore local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst 100 --force 1
//! PVE_SIM_STATE=... pct restore 101 /path/vzdump-lxc-101-....tar.zst --storage local-lvm
//! PVE_SIM_STATE=... vzdump 100 --storage local --mode snapshot --compress zstd --protected 1
//! PVE_SIM_STATE=... pve-sim qm status 100          # without a symlink named qm
//! ```
//!
//! Simulated: `pvesh get` (`/version`, `/nodes`, `/cluster/resources`, `/cluster/nextid`, `/cluster/backup`,
//! `/nodes/{node}/storage[/{id}[/status|/content]]`, `/nodes/{node}/{qemu|lxc}[/{vmid}/config|/status/current]`);
//! `qm` and `pct` `status|config|list|start|stop|shutdown|reboot|suspend|resume|destroy|set|create|unlock|
//! snapshot|delsnapshot|listsnapshot|rollback`, `pct restore`; `qm guest cmd <vmid> ping` (and `qm agent`);
//! `pct exec <vmid> -- true`; `qmrestore`; `vzdump`; `vma list|config|verify`.

pub mod args;
pub mod conf;
pub mod fixtures;
mod guest;
pub mod lxc_tar;
mod pvesh;
mod restore;
pub mod state;
pub mod vma;
mod vmacmd;
mod vzdump;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub use state::{
    BackupEntry, CutFault, DelayFault, FailFault, Faults, FillFault, Guest, GuestType,
    JournalEntry, NodeInfo, State, StateLock, StorageDef,
};

/// The commands the binary answers to.
pub const COMMANDS: [&str; 6] = ["pvesh", "qm", "pct", "qmrestore", "vzdump", "vma"];

/// What a simulated command produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Bytes for stderr.
    pub stderr: Vec<u8>,
    /// Exit code.
    pub exit: i32,
    /// When set, a `cut` fault fired: write this many stdout bytes, then kill the session.
    pub cut_after: Option<u64>,
}

/// A command failure: message for stderr and exit code.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    pub message: String,
    pub exit: i32,
}

impl Fail {
    /// Exit 255 with `message`.
    pub fn new(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            exit: 255,
        }
    }
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Fail {
        Fail::new(format!("pve-sim: internal error: {e:#}"))
    }
}

pub(crate) type CmdResult = Result<i32, Fail>;

/// Per-invocation context handed to the command implementations.
pub(crate) struct Ctx {
    pub state: State,
    pub node: NodeInfo,
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    /// Warnings printed by the task so far (for `TASK WARNINGS: N`).
    pub warnings: usize,
    lock: Option<StateLock>,
}

impl Ctx {
    /// Lines for stdout.
    pub fn say(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", line.as_ref());
    }

    /// Lines for stderr.
    pub fn warn(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.err, "{}", line.as_ref());
    }

    /// Releases the state lock (long operations like vzdump's archive writing).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// Takes the state lock again.
    pub fn relock(&mut self) -> anyhow::Result<()> {
        if self.lock.is_none() {
            self.lock = Some(self.state.lock()?);
        }
        Ok(())
    }
}

/// Does this command line change state (and so get journaled)?
pub fn is_mutating(argv: &[String]) -> bool {
    let sub = argv.get(1).map(String::as_str).unwrap_or("");
    match argv.first().map(String::as_str).unwrap_or("") {
        "pvesh" => !matches!(sub, "get" | "ls" | "usage" | "help" | ""),
        // `guest cmd`/`agent` and `exec` are simulated only in read-only forms (`ping`, `true`).
        "qm" | "pct" => !matches!(
            sub,
            "status"
                | "config"
                | "list"
                | "pending"
                | "listsnapshot"
                | "help"
                | "guest"
                | "agent"
                | "exec"
                | ""
        ),
        "qmrestore" | "vzdump" => true,
        _ => false,
    }
}

fn matches_command(pattern: &str, argv: &[String]) -> bool {
    let pat: Vec<&str> = pattern.split_whitespace().collect();
    !pat.is_empty()
        && pat.len() <= argv.len()
        && pat.iter().zip(argv).enumerate().all(|(i, (p, a))| {
            if i + 1 == pat.len() && i > 0 && p.starts_with('/') {
                a.starts_with(p)
            } else {
                p == a
            }
        })
}

/// Runs a command line (`argv[0]` is the command name: `qm`, `pvesh`...) against `$PVE_SIM_STATE`.
pub fn run_env(argv: &[String]) -> Outcome {
    match std::env::var_os("PVE_SIM_STATE") {
        Some(dir) if !dir.is_empty() => match State::open(Path::new(&dir)) {
            Ok(state) => run(&state, argv),
            Err(e) => failure(format!("pve-sim: error: {e:#}")),
        },
        _ => failure(
            "pve-sim: error: PVE_SIM_STATE is not set (the simulator's state directory)".into(),
        ),
    }
}

fn failure(message: String) -> Outcome {
    Outcome {
        stderr: format!("{message}\n").into_bytes(),
        exit: 255,
        ..Outcome::default()
    }
}

/// Strips a `pve-sim` prefix and normalises `argv[0]` to its basename.
pub fn normalize_argv(raw: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = raw.to_vec();
    if let Some(first) = argv.first_mut() {
        *first = Path::new(first.as_str())
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if argv.first().is_some_and(|a| a == "pve-sim") {
        argv.remove(0);
    }
    argv
}

/// Runs a command line against `state`, applying faults and journaling state changes.
pub fn run(state: &State, argv: &[String]) -> Outcome {
    match run_inner(state, argv) {
        Ok(o) => o,
        Err(e) => failure(format!("pve-sim: internal error: {e:#}")),
    }
}

fn run_inner(state: &State, argv: &[String]) -> anyhow::Result<Outcome> {
    let Some(name) = argv.first().cloned() else {
        return Ok(failure(format!(
            "usage: pve-sim <{}> [ARGS]...",
            COMMANDS.join("|")
        )));
    };
    if !COMMANDS.contains(&name.as_str()) {
        return Ok(failure(format!(
            "pve-sim: unknown command '{name}' (one of {})",
            COMMANDS.join(", ")
        )));
    }
    let mutating = is_mutating(argv);

    // Delay first, outside the lock.
    let delay = {
        let _l = state.lock()?;
        let mut faults = state.faults()?;
        let mut secs = None;
        if let Some(d) = faults
            .delay
            .iter_mut()
            .find(|d| matches_command(&d.command, argv))
        {
            secs = Some(d.seconds);
            if let Some(t) = d.times.as_mut() {
                *t = t.saturating_sub(1);
            }
            faults.delay.retain(|d| d.times != Some(0));
            state.save_faults(&faults)?;
        }
        secs
    };
    if let Some(s) = delay {
        std::thread::sleep(Duration::from_secs_f64(s.max(0.0)));
    }

    let lock = state.lock()?;
    let mut faults = state.faults()?;
    if let Some(pos) = faults
        .fail
        .iter()
        .position(|f| matches_command(&f.command, argv) && f.times > 0)
    {
        let f = faults.fail[pos].clone();
        faults.fail[pos].times -= 1;
        faults.fail.retain(|f| f.times > 0);
        state.save_faults(&faults)?;
        if mutating {
            state.append_journal(argv, Some(f.exit))?;
        }
        drop(lock);
        return Ok(Outcome {
            stderr: format!("{}\n", f.message.trim_end_matches('\n')).into_bytes(),
            exit: f.exit,
            ..Outcome::default()
        });
    }
    let mut cut_after = None;
    if let Some(pos) = faults
        .cut
        .iter()
        .position(|c| matches_command(&c.command, argv) && c.times > 0)
    {
        cut_after = Some(faults.cut[pos].after_bytes);
        faults.cut[pos].times -= 1;
        faults.cut.retain(|c| c.times > 0);
        state.save_faults(&faults)?;
    }

    let mut ctx = Ctx {
        state: state.clone(),
        node: state.node()?,
        out: Vec::new(),
        err: Vec::new(),
        warnings: 0,
        lock: Some(lock),
    };
    let args = &argv[1..];
    let result = match name.as_str() {
        "pvesh" => pvesh::main(&mut ctx, args),
        "qm" => guest::qm(&mut ctx, args),
        "pct" => guest::pct(&mut ctx, args),
        "qmrestore" => restore::qmrestore(&mut ctx, args),
        "vma" => vmacmd::main(&mut ctx, args),
        _ => vzdump::main(&mut ctx, args),
    };
    let exit = match result {
        Ok(code) => code,
        Err(f) => {
            ctx.warn(f.message.trim_end_matches('\n'));
            f.exit
        }
    };
    ctx.relock()?;
    if mutating {
        state.append_journal(
            argv,
            if cut_after.is_some() {
                None
            } else {
                Some(exit)
            },
        )?;
    }
    Ok(Outcome {
        stdout: ctx.out,
        stderr: ctx.err,
        exit,
        cut_after,
    })
}

/// `(comm, ppid, pgrp)` of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(String, u32, i64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace().skip(1);
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((comm, ppid, pgrp))
}

/// The process group a `cut` fault kills, or `None` when no group can be killed safely:
/// 1. `$PVE_SIM_CUT_PGID` when set: a group id, or `self` for the simulator's own group (for a
///    harness that starts each session command in a group of its own);
/// 2. else the group of the parent or grandparent (through a shell) when its name contains `sshd`
///    (OpenSSH's per-connection process calls setsid, so that group is exactly this connection);
/// 3. else the parent's group, but only when the parent leads a group of its own that its own parent
///    is not in (a test's `sh -c` wrapper spawned with `process_group(0)`), never a shared group such
///    as a test runner's.
pub fn cut_target() -> Option<i64> {
    if let Some(v) = std::env::var_os("PVE_SIM_CUT_PGID") {
        let v = v.to_string_lossy();
        if v == "self" {
            // The harness put each session command in a group of its own (process_group(0)).
            return proc_stat(std::process::id()).map(|(_, _, pgrp)| pgrp);
        }
        return v.parse().ok();
    }
    let ppid = std::os::unix::process::parent_id();
    let (comm, grandparent, pgrp) = proc_stat(ppid)?;
    if comm.contains("sshd") {
        return Some(pgrp);
    }
    // Under `sh -c '... ; ...'` the shell sits between sshd and us; look no further up, so a test
    // run from an SSH login never hits the login's session.
    if let Some((gcomm, _, gpgrp)) = proc_stat(grandparent)
        && gcomm.contains("sshd")
    {
        return Some(gpgrp);
    }
    let leader = i64::from(ppid) == pgrp;
    let shared = proc_stat(grandparent).is_some_and(|(_, _, g)| g == pgrp);
    (leader && !shared).then_some(pgrp)
}

/// Kills the session (see [`cut_target`]) with SIGKILL, then exits 255 in case it survived (or when
/// no group could be killed safely).
#[allow(clippy::disallowed_methods, clippy::exit)]
pub fn cut_session() -> ! {
    match cut_target().filter(|p| *p > 1) {
        Some(pgid) => {
            // No libc here (unsafe is denied workspace-wide): kill(1) does the same.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .status();
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "pve-sim: cut: no session process group to kill safely"
            );
        }
    }
    std::process::exit(255)
}
