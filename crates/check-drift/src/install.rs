//! `check-drift install-timer`: installs the daily schedule from the files shipped in `packaging/`
//! (compiled in, so the binary alone is enough): `pve-drift-check.service` and `.timer` into the unit
//! directory (`ExecStart` pointed at this binary), `/etc/default/pve-drift-check` only when it does not exist
//! (it holds local settings), the tmpfiles.d entry creating the textfile and report directories, then
//! `systemd-tmpfiles --create`, `systemctl daemon-reload` and `systemctl enable --now pve-drift-check.timer`.
//!
//! Idempotent: files already up to date are not rewritten (and said so), enabling an enabled timer changes
//! nothing. Every write and command goes through the runner, so `--dry-run` shows them all and does none.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pve_common::runner::{Access, LocalCommand, Runner};

/// The service unit as shipped.
pub const SERVICE: &str = include_str!("../../../packaging/systemd/pve-drift-check.service");
/// The timer unit as shipped.
pub const TIMER: &str = include_str!("../../../packaging/systemd/pve-drift-check.timer");
/// The settings file as shipped.
pub const DEFAULTS: &str = include_str!("../../../packaging/default/pve-drift-check");
/// The tmpfiles.d entry as shipped.
pub const TMPFILES: &str = include_str!("../../../packaging/systemd/pve-tools.tmpfiles.conf");

/// Where things go.
#[derive(Clone, Debug)]
pub struct InstallConfig {
    /// Unit directory.
    pub unit_dir: PathBuf,
    /// `/etc/default/pve-drift-check`.
    pub defaults_file: PathBuf,
    /// tmpfiles.d directory.
    pub tmpfiles_dir: PathBuf,
    /// Binary for `ExecStart`.
    pub binary: PathBuf,
    /// Run systemd-tmpfiles and systemctl.
    pub enable: bool,
    /// Show, change nothing.
    pub dry_run: bool,
}

/// The service text with `ExecStart` running `binary`.
pub fn service_for(binary: &Path) -> String {
    SERVICE.replace("/usr/bin/check-drift", &binary.display().to_string())
}

/// Writes `contents` unless the file already holds exactly that; `Ok(true)` when written.
fn write_if_changed(
    runner: &Runner,
    path: &Path,
    contents: &str,
    mode: u32,
) -> anyhow::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        pve_common::info!("{}: up to date", path.display());
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        runner.create_dir_all(dir, 0o755)?;
    }
    runner
        .write_file(path, contents.as_bytes(), mode)
        .with_context(|| format!("installing {}", path.display()))?;
    if !runner.is_dry_run() {
        pve_common::success!("{}: installed", path.display());
    }
    Ok(true)
}

/// Installs; returns how many files were written.
pub fn run(config: &InstallConfig) -> anyhow::Result<usize> {
    let runner = Runner::new(config.dry_run);
    let mut written = 0;
    written += usize::from(write_if_changed(
        &runner,
        &config.unit_dir.join("pve-drift-check.service"),
        &service_for(&config.binary),
        0o644,
    )?);
    written += usize::from(write_if_changed(
        &runner,
        &config.unit_dir.join("pve-drift-check.timer"),
        TIMER,
        0o644,
    )?);
    if config.defaults_file.exists() {
        pve_common::info!(
            "{}: kept as it is (local settings; compare with `check-drift install-timer --dry-run -v` output \
             or docs/DRIFT-DETECTION.md)",
            config.defaults_file.display()
        );
    } else {
        written += usize::from(write_if_changed(
            &runner,
            &config.defaults_file,
            DEFAULTS,
            0o644,
        )?);
    }
    let tmpfiles = config.tmpfiles_dir.join("pve-tools.conf");
    written += usize::from(write_if_changed(&runner, &tmpfiles, TMPFILES, 0o644)?);
    if config.enable {
        let commands = [
            LocalCommand::new("systemd-tmpfiles")
                .arg("--create")
                .arg(&tmpfiles),
            LocalCommand::new("systemctl").arg("daemon-reload"),
            LocalCommand::new("systemctl").args(["enable", "--now", "pve-drift-check.timer"]),
        ];
        for cmd in &commands {
            runner
                .run_checked(Access::Mutating, cmd)
                .with_context(|| format!("running `{cmd}`"))?;
        }
        if !config.dry_run {
            pve_common::success!(
                "pve-drift-check.timer enabled: `systemctl list-timers pve-drift-check.timer` shows the next run"
            );
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_points_at_the_binary_and_keeps_the_rest() {
        let s = service_for(Path::new("/opt/pve-tools/bin/check-drift"));
        assert!(
            s.contains("ExecStart=/opt/pve-tools/bin/check-drift --all $CHECK_DRIFT_ARGS"),
            "{s}"
        );
        assert_eq!(s.lines().count(), SERVICE.lines().count());
    }

    #[test]
    fn idempotent_and_keeps_local_settings() {
        let dir = tempfile::tempdir().unwrap();
        let config = InstallConfig {
            unit_dir: dir.path().join("units"),
            defaults_file: dir.path().join("default/pve-drift-check"),
            tmpfiles_dir: dir.path().join("tmpfiles.d"),
            binary: PathBuf::from("/usr/local/bin/check-drift"),
            enable: false,
            dry_run: false,
        };
        assert_eq!(
            run(&InstallConfig {
                dry_run: true,
                ..config.clone()
            })
            .unwrap(),
            4
        );
        assert!(!dir.path().join("units").exists(), "dry-run wrote nothing");
        assert_eq!(run(&config).unwrap(), 4);
        std::fs::write(&config.defaults_file, "PVE_DRIFT_ROOT=/srv/envs\n").unwrap();
        assert_eq!(run(&config).unwrap(), 0, "second run changes nothing");
        assert_eq!(
            std::fs::read_to_string(&config.defaults_file).unwrap(),
            "PVE_DRIFT_ROOT=/srv/envs\n"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("units/pve-drift-check.timer"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
    }
}
