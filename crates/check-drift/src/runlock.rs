//! The run lock: one check-drift at a time per host.
//!
//! The lock file lives in a folder only its owner can write: `$RUNTIME_DIRECTORY` (systemd's
//! `RuntimeDirectory=`), else `/run/pve-tools` for root (created 0755), else `$XDG_RUNTIME_DIR`, else a
//! 0700 folder of our own under the temporary directory. A fixed name in a world-writable folder
//! (`/run/lock`) let any local user plant a symlink (root then created a file where it pointed) or hold the
//! lock forever (every run exited 75). The file is opened without following a symlink and refused unless
//! it is a regular file owned by us.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lock file's name in its folder.
pub const FILE_NAME: &str = "pve-drift.lock";

/// Root's folder for it when systemd made none.
pub const ROOT_DIR: &str = "/run/pve-tools";

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Where the lock goes without `--lock-file`, in order of preference; each folder is created when
/// missing and checked before use ([`private_dir`]).
pub fn default_candidates() -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    };
    // systemd may list several folders, separated by colons: the first is ours.
    if let Some(dir) = std::env::var("RUNTIME_DIRECTORY")
        .ok()
        .and_then(|d| d.split(':').next().map(PathBuf::from))
        .filter(|d| !d.as_os_str().is_empty())
    {
        out.push((dir, 0o755));
    }
    if euid() == 0 {
        out.push((PathBuf::from(ROOT_DIR), 0o755));
    }
    if let Some(dir) = env_dir("XDG_RUNTIME_DIR") {
        out.push((dir, 0o700));
    }
    out.push((
        std::env::temp_dir().join(format!("pve-tools-{}", euid())),
        0o700,
    ));
    out
}

/// Creates `dir` (with `mode`) when missing, then checks it is a real folder (not a symlink), owned by
/// us, that nobody else can write: only then can nobody else plant or hold a file in it.
pub fn private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a folder (a symlink?)",
            dir.display()
        )));
    }
    owned_by_us(dir, &meta, "")?;
    if meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "{} is writable by others (mode {:04o})",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A file or folder of ours: one somebody else owns could be held or swapped by them (`hint` says what
/// to do about it).
fn owned_by_us(path: &Path, meta: &std::fs::Metadata, hint: &str) -> io::Result<()> {
    if meta.uid() == euid() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} belongs to uid {}, not to us (uid {}){hint}",
        path.display(),
        meta.uid(),
        euid()
    )))
}

/// Opens (creating it 0644) the lock file `path`: never through a symlink, not inherited by children,
/// and only a regular file owned by us.
pub fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other(format!("{} is a symlink; refusing it", path.display()))
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    owned_by_us(path, &meta, ": somebody else made it; remove it")?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_open_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("link.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open(&link).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(!target.exists());
        assert!(open(&dir.path().join("ok.lock")).is_ok());

        let open_dir = dir.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(
            &open_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        assert!(private_dir(&open_dir, 0o755).is_err());
        let fresh = dir.path().join("fresh");
        private_dir(&fresh, 0o700).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        let dir_link = dir.path().join("dirlink");
        std::os::unix::fs::symlink(&fresh, &dir_link).unwrap();
        assert!(private_dir(&dir_link, 0o700).is_err());
    }
}
