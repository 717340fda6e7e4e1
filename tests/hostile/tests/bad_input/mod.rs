//! Bad input: each case must end with a clear error naming the input, exit 64 (usage) or 1 (failure) as
//! documented, and change nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use check_drift::report::{Report, Status};
use pve_common::runner::Runner;
use pve_common::tfvars::{TfvarsError, parse_tfvars_file, parse_tfvars_str};

use crate::s3bed::{KEY, S3Bed};
use crate::support::{self, drift_fixtures, output_within, text, walk};

pub fn bad_env_names() -> Vec<String> {
    vec![
        "../etc".into(),
        "a/b".into(),
        String::new(),
        "x".repeat(300),
        "prød".into(),
        "..".into(),
        "$(id)".into(),
        "a\nb".into(),
        "prod;reboot".into(),
        "/etc".into(),
    ]
}

/// A root with one real environment, `prod`, so that "unknown" is the only reason to refuse a name.
fn drift_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::add_drift_env(&dir.path().join("envs"), "prod");
    dir
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn env_names_are_refused_with_64_by_every_tool_and_by_pve_common() {
    let root = drift_root();
    let before = snapshot(root.path());
    for name in bad_env_names() {
        assert!(
            pve_common::environments::validate_name(&name).is_err(),
            "pve_common accepted {name:?}"
        );
        // The fake terraform would log any call; /bin/false proves none is needed.
        let out = output_within(
            support::tool("check-drift")
                .arg("--root")
                .arg(root.path().join("envs"))
                .arg(format!("--env={name}"))
                .arg("--lock-file")
                .arg(root.path().join("run.lock"))
                .args(["--terraform-bin", "/bin/false"]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(64),
            "check-drift --env {name:?}: {err}"
        );
        assert!(err.contains("check-drift: error:"), "{err}");
        if !name.is_empty() {
            let shown = name.lines().next().unwrap_or_default();
            assert!(err.contains(shown), "error does not name {name:?}: {err}");
        }
        let out = output_within(
            support::tool("restore-tfstate")
                .arg("--root")
                .arg(root.path().join("envs"))
                .arg(format!("--env={name}"))
                .args(["--list", "--endpoint", "http://127.0.0.1:9"]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(64),
            "restore-tfstate --env {name:?}: {err}"
        );
        assert!(err.contains("invalid environment name"), "{err}");
    }
    assert_eq!(
        snapshot(root.path()),
        before,
        "nothing changed under the root"
    );
}

#[test]
fn malformed_version_ids_are_usage_errors_before_any_connection() {
    // Port 9 (discard) is closed here: reaching it would be a connection error (exit 1), not 64.
    let root = drift_root();
    for id in ["a\nb", "a b", "", "\u{7f}x", "é"] {
        for flag in ["--restore", "--show"] {
            let out = output_within(
                support::tool("restore-tfstate")
                    .arg("--root")
                    .arg(root.path().join("envs"))
                    .args(["--env", "prod", "--endpoint", "http://127.0.0.1:9", "--yes"])
                    .arg(format!("{flag}={id}")),
                Duration::from_secs(20),
            );
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{flag} {id:?}: {err}");
            assert!(err.contains(flag), "{err}");
        }
    }
}

#[test]
fn version_ids_that_do_not_exist_or_carry_payloads_change_nothing() {
    let bed = S3Bed::new();
    let before = bed.versions();
    let latest = bed.latest();
    for id in [
        "no-such-version",
        "x;reboot",
        "'quoted'",
        "\"dq\"",
        "$(id)",
        "`id`",
        "../../etc/passwd",
        "a&versionId=b",
        "%00",
    ] {
        for args in [vec!["--restore", id, "--yes"], vec!["--show", id]] {
            let out = bed.run(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains(id) && (err.contains("does not exist") || err.contains("404")),
                "{args:?}: {err}"
            );
            assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        }
    }
    assert_eq!(bed.versions(), before);
    assert_eq!(bed.latest(), latest);
    assert!(!bed.lock_held(), "no lock left behind");
    assert!(walk(&bed.backups()).is_empty() || bed.backups().exists());
}

#[test]
fn tfvars_that_are_not_hcl_truncated_binary_or_huge_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not-hcl", b"<?xml version=\"1.0\"?><vars/>".to_vec()),
        ("truncated", b"password = \"hun".to_vec()),
        ("truncated-map", b"tags = { a = 1,".to_vec()),
        ("binary", (0u8..=255).cycle().take(4096).collect()),
        ("nul", b"a = \"x\0y\"\n\0\0".to_vec()),
        ("json-ish", b"{\"a\": 1}".to_vec()),
        ("block", b"resource \"x\" \"y\" {}".to_vec()),
        ("reference", b"a = var.b".to_vec()),
    ];
    for (name, bytes) in &cases {
        let path = dir.path().join(format!("{name}.tfvars"));
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        match parse_tfvars_file(&path) {
            Err(e) => assert!(
                e.to_string().contains(&path.display().to_string()),
                "{name}: {e}"
            ),
            Ok(v) if *name == "nul" => {
                // NUL inside a quoted string is valid HCL; the trailing NULs are not.
                panic!("{name}: accepted {:?}", v.keys().collect::<Vec<_>>())
            }
            Ok(v) => panic!("{name}: accepted {:?}", v.keys().collect::<Vec<_>>()),
        }
    }
    // 100 MB, sparse: refused by size before it is read.
    let huge = dir.path().join("huge.tfvars");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    match parse_tfvars_file(&huge) {
        Err(TfvarsError::TooLarge { size, .. }) => assert_eq!(size, 100 * 1024 * 1024),
        other => panic!("100 MB: {other:?}"),
    }
    // A missing file and a directory are read errors naming the path.
    for path in [dir.path().join("missing.tfvars"), dir.path().to_owned()] {
        let e = parse_tfvars_file(&path).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}

#[test]
fn duplicate_tfvars_keys_are_refused_as_terraform_does() {
    // Terraform: "Attribute redefined: The argument "a" was already set at ...".
    let e = parse_tfvars_str("a = 1\na = 2\n", Path::new("dup.tfvars"));
    match e {
        Err(e) => assert!(e.to_string().contains("dup.tfvars"), "{e}"),
        Ok(v) => panic!(
            "duplicate key accepted, value {:?}",
            v.get("a").map(|x| format!("{x:?}"))
        ),
    }
}

/// check-drift with the fake terraform of check-drift's own tests, `show` printing `json`.
fn drift_with_plan(json: &Path) -> std::process::Output {
    let root = drift_root();
    output_within(
        support::tool("check-drift")
            .arg("--root")
            .arg(root.path().join("envs"))
            .arg("--lock-file")
            .arg(root.path().join("run.lock"))
            .arg("--terraform-bin")
            .arg(drift_fixtures().join("fake-terraform.sh"))
            .arg("--json")
            .env("TMPDIR", root.path())
            .env("FAKE_TF_SHOW_JSON", json),
        Duration::from_secs(60),
    )
}

/// The first environment's status, and its error as the report has it (JSON).
fn env_status(out: &std::process::Output) -> (Status, String) {
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
fn tfstate_that_is_not_json_v3_empty_or_without_lineage_is_refused() {
    use pve_tf::state::State;
    let cases: &[(&str, &[u8], &str)] = &[
        ("not-json", b"{not json", "not valid JSON"),
        ("empty", b"", "empty"),
        ("blank", b"  \n\t", "empty"),
        (
            "v3",
            br#"{"version":3,"serial":1,"lineage":"x","modules":[]}"#,
            "format version 3",
        ),
        (
            "no-lineage",
            br#"{"version":4,"serial":1,"resources":[]}"#,
            "lineage",
        ),
        (
            "empty-lineage",
            br#"{"version":4,"serial":1,"lineage":"","resources":[]}"#,
            "lineage",
        ),
        (
            "serial-string",
            br#"{"version":4,"serial":"1","lineage":"x","resources":[]}"#,
            "serial",
        ),
        (
            "version-string",
            br#"{"version":"4","serial":1,"lineage":"x","resources":[]}"#,
            "version",
        ),
        ("array", b"[]", "not a JSON object"),
        (
            "no-resources",
            br#"{"version":4,"serial":1,"lineage":"x"}"#,
            "resources",
        ),
    ];
    for (name, bytes, want) in cases {
        let e = State::parse(bytes).expect_err(name);
        assert!(format!("{e:#}").contains(want), "{name}: {e:#}");
    }
}

#[test]
fn bad_tfstate_versions_in_the_bucket_are_never_restored() {
    let bed = S3Bed::new();
    let runner = Runner::new(false);
    let s3 = bed.s3();
    let good = s3.get(KEY, None).unwrap();
    let mut bad_ids = Vec::new();
    for body in [
        &b""[..],
        b"{\"version\":3,\"serial\":9,\"lineage\":\"x\",\"modules\":[]}",
        b"{\"version\":4,\"serial\":9,\"resources\":[]}",
        b"\x00\x01\x02",
    ] {
        let put = s3.put(&runner, KEY, body, false).unwrap().unwrap();
        bad_ids.push(put.version_id.unwrap());
    }
    s3.put(&runner, KEY, &good, false).unwrap();
    let before = bed.versions();
    for id in &bad_ids {
        let out = bed.run(&["--restore", id, "--yes"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(id.as_str()), "names the version: {err}");
    }
    assert_eq!(bed.versions(), before, "nothing written");
    assert!(!bed.lock_held());
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
            support::tool("check-drift")
                .arg("--root")
                .arg(root.path().join("envs"))
                .arg("--lock-file")
                .arg(root.path().join("run.lock"))
                .arg("--terraform-bin")
                .arg(drift_fixtures().join("fake-terraform.sh"))
                .arg("--ignore-file")
                .arg(&file)
                .env("TMPDIR", root.path())
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
fn missing_or_unusable_root_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    for root in [dir.path().join("missing"), file.clone(), dangling.clone()] {
        let out = output_within(
            support::tool("check-drift")
                .arg("--root")
                .arg(&root)
                .arg("--lock-file")
                .arg(dir.path().join("run.lock"))
                .args(["--terraform-bin", "/bin/false"]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert!(matches!(out.status.code(), Some(64 | 1)), "{root:?}: {err}");
        assert!(err.contains(&root.display().to_string()), "{err}");
        let out = output_within(
            support::tool("restore-tfstate")
                .arg("--root")
                .arg(&root)
                .args([
                    "--env",
                    "prod",
                    "--list",
                    "--endpoint",
                    "http://127.0.0.1:9",
                ]),
            Duration::from_secs(20),
        );
        let err = text(&out.stderr);
        assert!(matches!(out.status.code(), Some(64 | 1)), "{root:?}: {err}");
        assert!(err.contains(&root.display().to_string()), "{err}");
    }
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

#[test]
fn textfile_dir_that_is_missing_or_read_only_is_a_clear_error_and_keeps_the_old_file() {
    // No tool writes Prometheus textfiles yet; every file write goes through Runner::write_file.
    let runner = Runner::new(false);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/pve_drift.prom");
    let e = runner
        .write_file(&missing, b"pve_drift 1\n", 0o644)
        .unwrap_err();
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
    let Some(fs) = support::Tmpfs::mount("size=64k,mode=0755") else {
        return;
    };
    let file = fs.path().join("pve_drift.prom");
    std::fs::write(&file, b"pve_drift 0\n").unwrap();
    fs.remount("ro");
    let e = runner
        .write_file(&file, b"pve_drift 1\n", 0o644)
        .unwrap_err();
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    assert!(format!("{e:?}").contains("ReadOnlyFilesystem"), "{e:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"pve_drift 0\n");
    assert_eq!(walk(fs.path()).len(), 1, "no temp file left");
}
