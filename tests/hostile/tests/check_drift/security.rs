//! check-drift, attacks (secrets in outputs and on command lines, file modes, symlinks at
//! predictable paths, host keys, injection payloads through flags): nothing leaks, no link is
//! followed, no payload runs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::support::security::mode;
use crate::support::security::payloads;
use crate::support::{self, CmdlineScanner, drift_fixtures, output_within, text, walk};

#[test]
fn payload_environment_folders_and_binary_paths_stay_inert_in_check_drift() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let root = dir.path().join("envs");
    let mut names = Vec::new();
    for p in payloads(&canary) {
        // Folder names cannot hold `/`; keep the ones the filesystem can.
        if p.is_empty() || p.contains('/') || p.starts_with('-') || p == "*" {
            continue;
        }
        support::add_drift_env(&root, &p);
        names.push(p);
    }
    // A fake terraform whose own path carries a payload, logging its argv one per line.
    let bin_dir = dir.path().join("bin;touch pwned2 $(id)");
    std::fs::create_dir(&bin_dir).unwrap();
    let fake = bin_dir.join("terraform 'x'");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> '{}'\nprintf '\\n' >> '{}'\nexec '{}' \"$@\"\n",
            dir.path().join("argv").display(),
            dir.path().join("argv").display(),
            drift_fixtures().join("fake-terraform.sh").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let out = output_within(
        support::tool("check-drift")
            .arg("--root")
            .arg(&root)
            .arg("--lock-file")
            .arg(dir.path().join("run.lock"))
            .arg("--terraform-bin")
            .arg(&fake)
            .args(["--json", "--jobs", "2"])
            .current_dir(dir.path())
            .env("TMPDIR", dir.path().join("tmp"))
            .env(
                "FAKE_TF_SHOW_JSON",
                drift_fixtures().join("plans/bpg_in_sync.json"),
            )
            .env("FAKE_TF_PLAN_EXIT", "0"),
        Duration::from_secs(120),
    );
    let doc: check_drift::report::Report = support::decoded(&out.stdout, &text(&out.stderr));
    let reported: Vec<String> = doc.environments.into_iter().map(|e| e.env).collect();
    for n in &names {
        assert!(reported.contains(n), "{n:?} missing from {reported:?}");
    }
    assert!(!canary.exists(), "a folder name ran as a command");
    assert!(
        !dir.path().join("pwned2").exists(),
        "the binary path ran as a command"
    );
    // A folder name reaches Terraform only inside the plan file path, as one whole argument (the log is
    // NUL-separated per argument, one line per call).
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    for call in argv.lines() {
        for arg in call.split('\0') {
            for n in &names {
                if arg.contains(n.as_str()) {
                    assert!(
                        arg.ends_with(&format!("/{n}.tfplan")),
                        "{n:?} in terraform argv outside the plan path: {arg:?}"
                    );
                }
            }
        }
    }
    eprintln!(
        "check-drift: {} payload folder names, {} terraform calls, all inert",
        names.len(),
        argv.lines().count()
    );
}

pub const PASSWORD: &str = "Hostile-pw-7f3a9c1e";

#[test]
fn no_secret_in_output_reports_temp_files_or_any_command_line_of_check_drift() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("envs/prod");
    std::fs::create_dir_all(&env).unwrap();
    for f in ["main.tf", "terraform.tfstate"] {
        std::fs::copy(drift_fixtures().join("envs/basic").join(f), env.join(f)).unwrap();
    }
    std::fs::write(
        env.join("secret.tf"),
        "variable \"root_password\" {\n  type      = string\n  sensitive = true\n}\n\
         resource \"terraform_data\" \"secret\" {\n  input = { password = var.root_password, user = \"root\" }\n}\n\
         output \"password\" {\n  value     = var.root_password\n  sensitive = true\n}\n",
    )
    .unwrap();
    let tfvars = env.join("terraform.tfvars");
    std::fs::write(&tfvars, format!("root_password = \"{PASSWORD}\"\n")).unwrap();
    std::fs::set_permissions(&tfvars, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let scanner = CmdlineScanner::start(vec![PASSWORD.to_owned()], "terraform");
    let mut outputs = Vec::new();
    for args in [vec!["--json"], vec!["--verbose"]] {
        let out = output_within(
            support::tool("check-drift")
                .arg("--root")
                .arg(dir.path().join("envs"))
                .arg("--lock-file")
                .arg(dir.path().join("run.lock"))
                .args(&args)
                .env("TMPDIR", &tmp)
                .env("CHECKPOINT_DISABLE", "1"),
            Duration::from_secs(180),
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        outputs.push(out);
    }
    let (found, terraform_lines) = scanner.finish();
    assert!(found.is_empty(), "secret on a command line: {found:?}");
    assert!(
        terraform_lines.len() >= 3,
        "the scanner saw terraform run: {terraform_lines:?}"
    );
    for out in &outputs {
        assert!(
            !text(&out.stdout).contains(PASSWORD),
            "stdout: {}",
            text(&out.stdout)
        );
        assert!(!text(&out.stderr).contains(PASSWORD), "stderr");
    }
    let doc: serde_json::Value = serde_json::from_slice(&outputs[0].stdout).unwrap();
    assert!(
        doc.to_string().contains("terraform_data.secret"),
        "the secret's resource is reported (masked)"
    );
    assert!(
        walk(&tmp).is_empty(),
        "plan files (which hold secrets) removed"
    );
    eprintln!(
        "check-drift secrets: {} terraform processes scanned, none carried the secret",
        terraform_lines.len()
    );
}

#[test]
fn check_drift_plan_files_are_private_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    support::add_drift_env(&dir.path().join("envs"), "prod");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = output_within(
        support::tool("check-drift")
            .arg("--root")
            .arg(dir.path().join("envs"))
            .arg("--lock-file")
            .arg(dir.path().join("run.lock"))
            .arg("--terraform-bin")
            .arg(drift_fixtures().join("fake-terraform.sh"))
            .env("TMPDIR", &tmp)
            .env("FAKE_TF_PLANINFO", dir.path().join("planinfo"))
            .env(
                "FAKE_TF_SHOW_JSON",
                drift_fixtures().join("plans/bpg_mixed.json"),
            ),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let info = std::fs::read_to_string(dir.path().join("planinfo")).unwrap();
    let (path, file_mode) = info.trim().rsplit_once(' ').unwrap();
    assert_eq!(file_mode, "600", "plan file mode");
    let parent = Path::new(path).parent().unwrap();
    assert!(parent.starts_with(&tmp), "{path}");
    if parent != tmp {
        // A private folder of its own, with an unpredictable name.
        assert!(parent.file_name().unwrap().len() >= 6, "{path}");
    }
    assert!(walk(&tmp).is_empty());
    // The run lock is not world-writable.
    assert_eq!(mode(&dir.path().join("run.lock")) & 0o022, 0);
}
