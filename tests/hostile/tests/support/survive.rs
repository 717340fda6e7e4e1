//! Helpers of the killed-run cases (a fake Terraform that writes a lot, a bed of environments) that more than one tool's module uses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self};

pub fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A fake `terraform` in `dir` (`$d`): `version` and `init` answer at once; `plan` runs `plan_body`
/// with `$out` set to its `-out=` file.
pub fn fake(dir: &Path, plan_body: &str) -> PathBuf {
    let path = dir.join("terraform");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nd={}\n\
             case \"$1\" in\n\
             version) echo '{{\"terraform_version\":\"1.11.4\"}}'; exit 0;;\n\
             init) mkdir -p .terraform; echo initialised; exit 0;;\n\
             show) echo '{{\"format_version\":\"1.2\",\"resource_changes\":[]}}'; exit 0;;\n\
             plan) out=''; for a in \"$@\"; do case \"$a\" in -out=*) out=\"${{a#-out=}}\";; esac; done\n\
             {plan_body}\n\
             exit 0;;\n\
             esac\nexit 0\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

pub struct Bed {
    dir: tempfile::TempDir,
}

impl Bed {
    pub fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        support::add_drift_env(&dir.path().join("envs"), "prod");
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::create_dir(dir.path().join("tf")).unwrap();
        Bed { dir }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn drift(&self, fake: &Path) -> Command {
        let mut cmd = support::tool("check-drift");
        cmd.arg("--root")
            .arg(self.path("envs"))
            .arg("--lock-file")
            .arg(self.path("run.lock"))
            .arg("--terraform-bin")
            .arg(fake)
            .arg("--json")
            .env("TMPDIR", self.path("tmp"));
        cmd
    }
    /// Private run folders left under TMPDIR.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path("tmp"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pve-tools-"))
            .flat_map(|base| std::fs::read_dir(base.path()).unwrap().flatten())
            .map(|e| e.path())
            .collect()
    }
}
