//! Shims: POSIX sh files at the replaced scripts' paths (`scripts/drift/check-drift.sh`,
//! `scripts/restore/*.sh`) that run the tools instead, so the homelab's systemd unit, TUI menu, runbooks and
//! BATS suites keep calling the scripts they know.
//!
//! Each shim finds the homelab root from its own location (`<shim>/../..`), as the scripts did, never from the
//! caller's directory; speaks French unless `PVE_TOOLS_LANG` says otherwise; names itself in `--help`
//! (`Usage: restore-vm.sh ...`); and passes every argument on. `check-drift --install-shims DIR` writes them
//! under DIR (a homelab root) pointing at the binaries next to check-drift; the .deb ships them under
//! `/usr/share/pve-tools/shims/` pointing at `/usr/bin`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pve_common::homelab::SCRIPTS;
use pve_common::runner::Runner;

/// The text of the shim for `tool`, running the binary found in `bin_dir`.
pub fn text(tool: &str, script: &str, bin_dir: &Path) -> String {
    let name = Path::new(script)
        .file_name()
        .map_or_else(|| script.to_owned(), |n| n.to_string_lossy().into_owned());
    let binary = bin_dir.join(tool);
    let binary = shlex::try_quote(&binary.to_string_lossy())
        .map_or_else(|_| binary.display().to_string(), |q| q.into_owned());
    format!(
        "#!/bin/sh\n\
         # {name}: runs pve-tools' {tool} in place of the script (written by check-drift --install-shims).\n\
         # The homelab root is this file's ../.., as for the script; output is French unless PVE_TOOLS_LANG\n\
         # says otherwise. To go back to the script, put the original file back at this path.\n\
         here=$(CDPATH='' cd -- \"$(dirname -- \"$0\")\" && pwd -P) || exit 2\n\
         root=$(CDPATH='' cd -- \"$here/../..\" && pwd -P) || exit 2\n\
         PVE_TOOLS_LANG=${{PVE_TOOLS_LANG:-fr}}\n\
         export PVE_TOOLS_LANG\n\
         exec {binary} --prog-name {name} --homelab \"$root\" \"$@\"\n"
    )
}

/// Writes the six shims under `root` (mode 0755), each pointing at `bin_dir`; returns their paths.
pub fn install(root: &Path, bin_dir: &Path, runner: &Runner) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (tool, script) in SCRIPTS {
        let path = root.join(script);
        if let Some(parent) = path.parent() {
            runner.create_dir_all(parent, 0o755)?;
        }
        runner
            .write_file(&path, text(tool, script, bin_dir).as_bytes(), 0o755)
            .with_context(|| format!("writing the shim {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shims the .deb ships are what `text` writes for `/usr/bin`.
    #[test]
    fn packaged_shims_are_current() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/shims");
        for (tool, script) in SCRIPTS {
            let committed = std::fs::read_to_string(base.join(script))
                .unwrap_or_else(|e| panic!("{script}: {e}"));
            assert_eq!(
                committed,
                text(tool, script, Path::new("/usr/bin")),
                "{script}"
            );
        }
    }

    #[test]
    fn install_writes_six_executable_shims() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = install(dir.path(), Path::new("/opt/x y/bin"), &Runner::new(false)).unwrap();
        assert_eq!(paths.len(), 6);
        let shim =
            std::fs::read_to_string(dir.path().join("scripts/restore/restore-vm.sh")).unwrap();
        assert!(shim.contains("exec '/opt/x y/bin/restore-vm' --prog-name restore-vm.sh --homelab \"$root\" \"$@\""), "{shim}");
        let mode = std::fs::metadata(&paths[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
    }
}
