//! Shared helpers: a private root of environments, a private TMPDIR (to prove plan files are removed) and
//! a private run lock per test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use check_drift::plan::{AttributeChange, ResourceReport};
use check_drift::report::{EnvReport, Report};
use serde_json::Value;
use testbed::tool::entry;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fake_terraform() -> PathBuf {
    fixtures().join("fake-terraform.sh")
}

pub fn plan_fixture(name: &str) -> PathBuf {
    fixtures().join("plans").join(name)
}

/// The binary, with nothing inherited that could change its behaviour.
pub fn bin() -> Command {
    Command::from_std(bin_std())
}

/// [`bin`] as a `std::process::Command`, for the tests that spawn it and signal it.
pub fn bin_std() -> std::process::Command {
    let mut cmd = testbed::tool::command(env!("CARGO_BIN_EXE_check-drift"));
    for var in [
        "TF_BIN",
        "PVE_DRIFT_LOCK_FILE",
        "PVE_DRIFT_KILL_GRACE",
        "PVE_DRIFT_ALERTMANAGER_URL",
        "PVE_DRIFT_TIMEOUT",
        "PVE_DRIFT_RETENTION",
        "PVE_DRIFT_RETRY_DELAY",
    ] {
        cmd.env_remove(var);
    }
    // Never the machine's node_exporter directory, /var/log or ~/.local/state: tests that want these
    // outputs pass the options, which win over the environment.
    cmd.env("PVE_DRIFT_TEXTFILE_DIR", "")
        .env("PVE_DRIFT_REPORT_DIR", "")
        .env("PVE_DRIFT_STATE_FILE", scratch_state_file());
    cmd
}

/// A state file in a folder of this test process under $TMPDIR. It used to be `/nonexistent/...`, which
/// check-drift, running as root and creating the state file's folder, turned into a real `/nonexistent`.
fn scratch_state_file() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("state.json")
}

pub struct Bed {
    pub dir: tempfile::TempDir,
}

impl Bed {
    pub fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("envs")).unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Bed { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("envs")
    }

    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.path().join("run.lock")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn env_dir(&self, env: &str) -> PathBuf {
        self.root().join(env)
    }

    /// Copies fixture environment `fixture` to `<root>/<env>`.
    pub fn add_env(&self, env: &str, fixture: &str) -> PathBuf {
        let from = fixtures().join("envs").join(fixture);
        let to = self.env_dir(env);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            if entry.path().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
        to
    }

    /// check-drift on this bed's root, TMPDIR and run lock.
    pub fn cmd(&self) -> Command {
        let mut cmd = bin();
        cmd.arg("--root")
            .arg(self.root())
            .env("TMPDIR", self.tmp())
            .env("PVE_DRIFT_LOCK_FILE", self.lock_file());
        cmd
    }

    /// check-drift with the fake terraform logging to `<bed>/tf.log`.
    pub fn fake_cmd(&self) -> Command {
        let mut cmd = self.cmd();
        cmd.arg("--terraform-bin")
            .arg(fake_terraform())
            .env("FAKE_TF_LOG", self.path("tf.log"))
            .env("FAKE_TF_PLANINFO", self.path("planinfo"))
            .env("FAKE_TF_STATE_LOCK", self.path("state.lock"))
            .env("FAKE_TF_MARK", self.path("mark"));
        cmd
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Nothing may stay in TMPDIR: plan files hold secrets.
    pub fn assert_no_plan_files(&self) {
        let left: Vec<_> = walk(&self.tmp());
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    }

    pub fn state(&self, env: &str) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.env_dir(env).join("terraform.tfstate")).unwrap(),
        )
        .unwrap()
    }

    pub fn set_state(&self, env: &str, state: &Value) {
        std::fs::write(
            self.env_dir(env).join("terraform.tfstate"),
            serde_json::to_string_pretty(state).unwrap(),
        )
        .unwrap();
    }

    /// Edits the attributes of resource `name` in the state of `env`.
    pub fn edit_attributes(&self, env: &str, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut state = self.state(env);
        let resource = state["resources"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["name"] == name)
            .unwrap();
        edit(&mut resource["instances"][0]["attributes"]);
        self.set_state(env, &state);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(entry.path());
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

pub fn json(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// The `--json` document, decoded into check-drift's report type.
pub fn report(stdout: &[u8]) -> Report {
    testbed::tool::decode(&json(stdout), "check-drift --json")
}

/// The environment `env` of a decoded report; panics naming the report when it is missing.
pub fn env_in<'a>(doc: &'a Report, env: &str) -> &'a EnvReport {
    entry(&doc.environments, |e| e.env == env, env, doc)
}

/// The resource `address` of a decoded environment; panics naming the environment when it is missing.
pub fn resource_in<'a>(env: &'a EnvReport, address: &str) -> &'a ResourceReport {
    entry(&env.resources, |r| r.address == address, address, env)
}

/// The change of attribute `path` in a resource's `changed_attributes`; panics naming the list when it is
/// missing.
pub fn attribute<'a>(list: &'a [AttributeChange], path: &str) -> &'a AttributeChange {
    entry(list, |a| a.path == path, path, &list)
}

/// The paths of a resource's `changed_attributes`, in order.
pub fn paths(list: &[AttributeChange]) -> Vec<&str> {
    list.iter().map(|a| a.path.as_str()).collect()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a real terraform command in `dir` (test setup only).
pub fn terraform(dir: &Path, args: &[&str]) {
    testbed::terraform::run_in(dir, args, &[]).unwrap();
}
