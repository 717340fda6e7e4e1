//! check-drift, bad input: each case ends with a clear error naming the input, exit 64 (usage) or 1
//! (failure) as documented, and changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use check_drift::report::{Report, Status};

use crate::support::bad_input::drift_root;
use crate::support::{self, drift_fixtures, output_within, text};

/// check-drift on the environments of `root` (a [`drift_root`]) with the fake terraform of check-drift's
/// own tests, its run lock and TMPDIR in `root`.
fn fake_drift(root: &Path) -> std::process::Command {
    let mut c = support::tool("check-drift");
    c.arg("--root")
        .arg(root.join("envs"))
        .arg("--lock-file")
        .arg(root.join("run.lock"))
        .arg("--terraform-bin")
        .arg(drift_fixtures().join("fake-terraform.sh"))
        .env("TMPDIR", root);
    c
}

/// [`fake_drift`] `--json`, `show` printing `json`.
pub fn drift_with_plan(json: &Path) -> std::process::Output {
    let root = drift_root();
    output_within(
        fake_drift(root.path())
            .arg("--json")
            .env("FAKE_TF_SHOW_JSON", json),
        Duration::from_secs(60),
    )
}

/// The first environment's status, and its error as the report has it (JSON).
pub fn env_status(out: &std::process::Output) -> (Status, String) {
    let doc: Report = support::decoded(&out.stdout, &text(&out.stderr));
    let env = doc.environments.first().expect("one environment");
    (env.status, serde_json::to_string(&env.error).unwrap())
}

#[test]
fn broken_plan_json_is_an_error_for_that_environment_not_a_crash() {
    let good = std::fs::read(drift_fixtures().join("plans/bpg_mixed.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("not-json", b"Error: something went wrong".to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        ("wrong-types", br#"{"resource_changes": 7}"#.to_vec()),
        (
            "change-wrong-types",
            br#"{"format_version":"1.2","resource_changes":[{"address":5,"change":"x"}]}"#.to_vec(),
        ),
        ("binary", (0u8..=255).collect()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, &bytes).unwrap();
        let out = drift_with_plan(&path);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let (status, error) = env_status(&out);
        assert_eq!(status, Status::Error, "{name}: {error}");
        assert!(
            error.contains("show") || error.contains("JSON") || error.contains("json"),
            "{name}: error names the plan JSON: {error}"
        );
    }
}

#[test]
fn plan_json_missing_fields_is_in_sync_only_when_it_really_says_nothing() {
    // `{}` and `{"format_version":"1.2"}` carry no change: Terraform prints those for an empty plan.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty-object.json");
    std::fs::write(&path, br#"{"format_version":"1.2"}"#).unwrap();
    let out = drift_with_plan(&path);
    let (status, _) = env_status(&out);
    // The fake plan exits 2 ("changes present"): the tool must not call that in sync.
    assert_ne!(status, Status::InSync, "{}", text(&out.stderr));
}

#[test]
fn plan_json_with_an_unknown_format_major_is_refused() {
    let good = std::fs::read_to_string(drift_fixtures().join("plans/bpg_mixed.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["format_version"] = "2.0".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = drift_with_plan(&path);
    let (status, error) = env_status(&out);
    assert_eq!(status, Status::Error, "format 2.0 accepted as {status:?}");
    assert!(
        error.contains("format_version") && error.contains("2.0"),
        "{error}"
    );
}

#[test]
fn ignore_files_with_bad_globs_or_syntax_are_refused_naming_file_and_line() {
    let root = drift_root();
    let plan = drift_fixtures().join("plans/bpg_mixed.json");
    for (name, body) in [
        ("unclosed-class", "proxmox_vm.[a  memory  # reason\n"),
        (
            "bad-date",
            "proxmox_vm.a memory expires=2026-13-45  # reason\n",
        ),
        (
            "junk-key",
            "proxmox_vm.a memory frobnicate=yes extra # reason\n",
        ),
        ("binary", "\u{0}\u{1}\u{2} \u{ff}\n"),
    ] {
        let file = root.path().join(format!("{name}.driftignore"));
        std::fs::write(&file, body).unwrap();
        let out = output_within(
            fake_drift(root.path())
                .arg("--ignore-file")
                .arg(&file)
                .env("FAKE_TF_SHOW_JSON", &plan),
            Duration::from_secs(60),
        );
        let err = text(&out.stderr);
        match out.status.code() {
            Some(64 | 2) => {
                assert!(
                    err.contains(&format!("{}:1", file.display())),
                    "{name}: error names file:line: {err}"
                );
            }
            code => {
                // Accepting a rule is fine only if it is taken literally (globs escaped): then the file
                // must have parsed into a rule that matches nothing unexpected.
                assert!(
                    name == "unclosed-class" || name == "binary",
                    "{name}: exit {code:?}: {err}"
                );
            }
        }
    }
    let missing = root.path().join("no-such.driftignore");
    let out = output_within(
        support::tool("check-drift")
            .arg("--root")
            .arg(root.path().join("envs"))
            .arg("--lock-file")
            .arg(root.path().join("run.lock"))
            .args(["--terraform-bin", "/bin/false", "--ignore-file"])
            .arg(&missing),
        Duration::from_secs(20),
    );
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(64 | 2)), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn unreadable_directory_is_a_clear_error_for_an_unprivileged_user() {
    // Root reads any directory whatever its mode, so the check runs the tool as `nobody` (setpriv).
    let Ok(status) = std::process::Command::new("setpriv").arg("--help").output() else {
        return;
    };
    if !status.status.success() || unsafe_is_not_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("envs");
    std::fs::create_dir_all(root.join("prod")).unwrap();
    std::fs::write(root.join("prod/main.tf"), "").unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let lock_dir = dir.path().join("lock");
    std::fs::create_dir(&lock_dir).unwrap();
    std::fs::set_permissions(&lock_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = output_within(
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(support::bin("check-drift"))
            .arg("--root")
            .arg(&root)
            .arg("--lock-file")
            .arg(lock_dir.join("run.lock"))
            .args(["--terraform-bin", "/bin/false"])
            .env("NO_COLOR", "1"),
        Duration::from_secs(20),
    );
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(64 | 2)), "{err}");
    assert!(
        err.contains(&root.display().to_string()) && err.to_lowercase().contains("permission"),
        "{err}"
    );
}

pub fn unsafe_is_not_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() != "0")
        .unwrap_or(true)
}
