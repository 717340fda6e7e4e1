//! One private folder per run for everything a tool must not leave readable or lying around: Terraform
//! plans (which hold sensitive values in clear), generated backend configuration, and the output of the
//! children it starts.
//!
//! The folder is `<base>/<tool>-<pid>-<random>`, 0700, under a base that is ours alone: `$XDG_RUNTIME_DIR/
//! pve-tools` when set, else `<temp dir>/pve-tools-<uid>` (0700, owned by us, not a symlink; anything else is
//! refused rather than used). Files are created 0600 with `O_EXCL`. It is removed when the [`RunDir`] is
//! dropped (success and error paths) and by the interrupt handler (exit 130). A run killed outright (SIGKILL,
//! the OOM killer) runs neither: its folder records the run's process and the children it started
//! ([`RunDir::record_child`]), and the next run of any tool ([`RunDir::create`]) reports what it left and
//! cleans it: a child still running is left to finish (its output is in that folder), a process group
//! whose leader has died (an orphaned Terraform provider) is killed, then the folder is removed.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use thiserror::Error;

/// The file holding the run's process id and start time.
const OWNER_FILE: &str = "owner";
/// One line per child started: `<pid> <start time> <command>`.
const CHILDREN_FILE: &str = "children";

/// Why the private folder could not be made.
#[derive(Debug, Error)]
pub enum RunDirError {
    /// A filesystem call failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The base folder exists but is not ours alone.
    #[error("{} is not a private folder of this user (it must be a real directory, owned by uid {uid}, mode 0700); remove it or set XDG_RUNTIME_DIR", path.display())]
    NotPrivate {
        /// The base folder.
        path: PathBuf,
        /// Our user id.
        uid: u32,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RunDirError + 'a {
    move |source| RunDirError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// This process's effective user id (the owner of `/proc/self`).
fn euid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// The start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22), which tells a
/// reused pid from the original; `None` when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // Field 3 (state) is the first after the command name; the start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid` still runs and is the one that started at `start` (not a zombie, not a reuse).
fn alive(pid: u32, start: u64) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st == "Z" || st == "X"))
        })
        .unwrap_or(true);
    !zombie && start_time(pid) == Some(start)
}

/// Live processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        // Fields after the name: state, ppid, pgrp.
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

/// The base folder of every run folder of this user.
pub fn base() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("pve-tools"),
        None => std::env::temp_dir().join(format!("pve-tools-{}", euid())),
    }
}

fn private_base(base: &Path) -> Result<(), RunDirError> {
    match std::fs::DirBuilder::new().mode(0o700).create(base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create", base)(e)),
    }
    let meta = std::fs::symlink_metadata(base).map_err(io("inspect", base))?;
    let uid = euid();
    if !meta.file_type().is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(RunDirError::NotPrivate {
            path: base.to_owned(),
            uid,
        });
    }
    Ok(())
}

/// A private folder of this run; removed on drop and on interrupt.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    children: Mutex<()>,
    _on_interrupt: crate::interrupt::Cleanup,
}

impl RunDir {
    /// Cleans what killed runs left under [`base`] (see the module text), then creates this run's folder.
    pub fn create(tool: &str) -> Result<RunDir, RunDirError> {
        RunDir::create_in(&base(), tool)
    }

    /// [`RunDir::create`] under `base` (tests).
    pub fn create_in(base: &Path, tool: &str) -> Result<RunDir, RunDirError> {
        private_base(base)?;
        sweep(base);
        let make = || {
            tempfile::Builder::new()
                .prefix(&format!("{tool}-{}-", std::process::id()))
                .tempdir_in(base)
        };
        let made = match make() {
            // Another run removed the (then empty) base as it ended: make it again, once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                private_base(base)?;
                make()
            }
            other => other,
        };
        let path = made.map_err(io("create a folder in", base))?.keep();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .map_err(io("set the mode of", &path))?;
        let me = std::process::id();
        let owner = format!("{me} {}\n", start_time(me).unwrap_or(0));
        let dir = RunDir {
            _on_interrupt: {
                let path = path.clone();
                crate::interrupt::on_interrupt(
                    format!("remove the private folder {}", path.display()),
                    move || remove_run_folder(&path),
                )
            },
            path,
            children: Mutex::new(()),
        };
        dir.write_private(OWNER_FILE, owner.as_bytes())?;
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` in the folder, 0600, failing if it exists, and writes `bytes`.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, RunDirError> {
        let path = self.path.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io("create", &path))?;
        file.write_all(bytes).map_err(io("write", &path))?;
        Ok(path)
    }

    /// A fresh path in the folder for a file a child creates (`<stem>-<n><ext>`); nothing is created.
    pub fn file_path(&self, stem: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.path.join(format!("{n}-{stem}"))
    }

    /// Records a started child (its pid leads its own process group), so that the next run can tell
    /// whether it still runs after this run was killed.
    pub fn record_child(&self, pid: u32, what: &str) {
        let _one = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        let line = format!(
            "{pid} {} {}\n",
            start_time(pid).unwrap_or(0),
            what.replace(['\n', '\r'], " ")
        );
        let path = self.path.join(CHILDREN_FILE);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        remove_run_folder(&self.path);
    }
}

/// The process-wide run folder, created on first use (`tool` names it). Children started through
/// [`crate::runner::Runner`] write their output here.
pub fn global() -> Result<&'static RunDir, &'static RunDirError> {
    GLOBAL
        .get_or_init(|| RunDir::create(crate::log::tool_name()))
        .as_ref()
}

static GLOBAL: std::sync::OnceLock<Result<RunDir, RunDirError>> = std::sync::OnceLock::new();

/// Removes the process-wide run folder, if one was made, when dropped: statics are never dropped, so each
/// tool's `main` holds one of these (`let _run = pve_common::rundir::RemoveOnExit;`).
#[derive(Debug)]
pub struct RemoveOnExit;

impl Drop for RemoveOnExit {
    fn drop(&mut self) {
        if let Some(Ok(dir)) = GLOBAL.get() {
            remove_run_folder(dir.path());
        }
    }
}

/// Removes a run folder, and its base when that is left empty (nothing of ours stays in TMPDIR).
fn remove_run_folder(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
    if let Some(base) = path.parent() {
        let _ = std::fs::remove_dir(base);
    }
}

/// A private (0700) subfolder of the process-wide run folder, for files holding secrets (a Terraform
/// plan): removed when dropped, with the run folder on an interrupt, and by the next run if this one is
/// killed. Files a child creates there get its umask; the folder keeps everyone else out.
#[derive(Debug)]
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// The folder (absolute when the temp dir is).
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Creates the empty file `name` here, 0600, failing if it exists, for a child to fill: Terraform
    /// truncates an existing plan file and keeps its mode, so its plan is never readable by others.
    pub fn empty_file(&self, name: &str) -> Result<PathBuf, RunDirError> {
        let path = self.0.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io("create", &path))?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a [`PrivateDir`] named after `stem` in this run's folder.
pub fn private_dir(stem: &str) -> Result<PrivateDir, RunDirError> {
    let run = global().map_err(|e| RunDirError::Io {
        action: "use the private run folder",
        path: base(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let path = run.file_path(stem);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(io("create", &path))?;
    let path = std::path::absolute(&path).unwrap_or(path);
    Ok(PrivateDir(path))
}

/// What a killed run left, as found by [`sweep`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Its folder.
    pub dir: PathBuf,
    /// Children still running (left to finish).
    pub running: Vec<String>,
    /// Process groups killed because their leader was gone (orphaned providers).
    pub killed: Vec<u32>,
    /// Whether the folder was removed.
    pub removed: bool,
}

/// Reports and cleans the folders of runs that are no longer alive under `base`.
pub fn sweep(base: &Path) -> Vec<Leftover> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(base) else {
        return found;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join(OWNER_FILE)).unwrap_or_default();
        let mut parts = owner.split_whitespace().map(|p| p.parse::<u64>().ok());
        let (Some(Some(pid)), Some(Some(start))) = (parts.next(), parts.next()) else {
            // Being created right now by another run (the owner file comes right after the folder), or
            // not ours: left alone.
            continue;
        };
        let Ok(pid) = u32::try_from(pid) else {
            continue;
        };
        if alive(pid, start) {
            continue;
        }
        let mut leftover = Leftover {
            dir: dir.clone(),
            ..Leftover::default()
        };
        let children = std::fs::read_to_string(dir.join(CHILDREN_FILE)).unwrap_or_default();
        for line in children.lines() {
            let mut parts = line.splitn(3, ' ');
            let (Some(Ok(cpid)), Some(Ok(cstart))) = (
                parts.next().map(str::parse::<u32>),
                parts.next().map(str::parse::<u64>),
            ) else {
                continue;
            };
            let what = parts.next().unwrap_or("").to_owned();
            match start_time(cpid) {
                // The pid now belongs to another process: the child and its group are long gone (a pid
                // that still names a group is never handed out again).
                Some(t) if t != cstart => continue,
                _ => {}
            }
            if alive(cpid, cstart) {
                leftover.running.push(format!("pid {cpid}: {what}"));
            } else if cpid > 1 && !group_members(cpid).is_empty() {
                crate::process::signal_group(cpid, crate::process::Signal::SIGKILL);
                leftover.killed.push(cpid);
            }
        }
        if leftover.running.is_empty() {
            leftover.removed = std::fs::remove_dir_all(&dir).is_ok();
            crate::warn!(
                "a run (pid {pid}) ended without cleaning up (killed?): removed its private folder {}{}",
                dir.display(),
                if leftover.killed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and killed the orphaned process group(s) {:?} it had started",
                        leftover.killed
                    )
                }
            );
        } else {
            crate::warn!(
                "a run (pid {pid}) ended without cleaning up (killed?), but its children still run and are left \
                 to finish: {}; their output is in {}",
                leftover.running.join("; "),
                dir.display()
            );
        }
        found.push(leftover);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_and_files_are_private_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let b = base.path().join("pve-tools");
        let dir = RunDir::create_in(&b, "t").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&b), 0o700);
        assert_eq!(mode(dir.path()), 0o700);
        let f = dir.write_private("plan", b"secret").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(dir.write_private("plan", b"again").is_err(), "O_EXCL");
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_shared_or_linked_base_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            RunDir::create_in(&open, "t"),
            Err(RunDirError::NotPrivate { .. })
        ));
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(RunDir::create_in(&link, "t").is_err());
    }

    #[test]
    fn a_dead_runs_folder_is_removed_a_live_ones_kept() {
        let top = tempfile::tempdir().unwrap();
        let base = top.path().join("pve-tools");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&base)
            .unwrap();
        let dead = base.join("t-1-x");
        std::fs::create_dir(&dead).unwrap();
        // pid 1 never has start time u64::MAX: the owner is gone.
        std::fs::write(dead.join(OWNER_FILE), format!("1 {}\n", u64::MAX)).unwrap();
        std::fs::write(dead.join("plan"), "secret").unwrap();
        let live = RunDir::create_in(&base, "t").unwrap();
        assert!(!dead.exists(), "the dead run's folder is removed");
        assert!(live.path().exists());
        let found = sweep(&base);
        assert!(found.is_empty(), "{found:?}");
    }
}
