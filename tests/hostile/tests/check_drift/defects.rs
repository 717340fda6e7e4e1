//! check-drift, issue 23's defects it showed, each test naming its defect; each was seen failing on
//! the code before its fix.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{self, output_within, text, walk};

pub fn drift(root: &Path) -> Command {
    let mut c = support::tool("check-drift");
    c.arg("--root")
        .arg(root.join("envs"))
        .arg("--report-dir")
        .arg(root.join("reports"))
        .arg("--state-file")
        .arg(root.join("state.json"))
        .args(["--textfile-dir", ""])
        .env("HOME", root)
        .env("TMPDIR", root);
    c
}

/// check-drift on `prod` with a Terraform that fails at once (what is tested happens before any plan),
/// taking the run lock `lock`.
fn prod_locked(root: &Path, lock: &Path) -> Command {
    let mut c = prod(root);
    c.arg("--lock-file").arg(lock);
    c
}

/// [`prod_locked`] with its default run lock.
fn prod(root: &Path) -> Command {
    let mut c = drift(root);
    c.args(["--env", "prod", "--terraform-bin", "/bin/false"]);
    c
}

pub fn within(c: &mut Command) -> Output {
    output_within(c, Duration::from_secs(180))
}

/// Defect 4: Terraform's diagnostic quotes the tfvars line holding a password; check-drift's `--json`,
/// its stderr and its report files keep the file and line, not the text.
#[test]
fn terraform_diagnostic_does_not_carry_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let env = support::add_drift_env(&dir.path().join("envs"), "prod");
    std::fs::write(
        env.join("terraform.tfvars"),
        "memory = 4096\nproxmox_password = \"hunter2-drift-SECRET\"x\n",
    )
    .unwrap();
    let out = within(
        drift(dir.path())
            .args(["--env", "prod", "--json", "--terraform-bin", "terraform"])
            .arg("--lock-file")
            .arg(dir.path().join("run.lock")),
    );
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    // An error: 1 today, 2 under the scripts' contract (1 is drift there); never 0 or a panic.
    assert!(matches!(out.status.code(), Some(1 | 2)), "{stdout}\n{err}");
    let doc: check_drift::report::Report = serde_json::from_str(&stdout).unwrap();
    let shown = doc.environments[0]
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(
        shown.contains("Error:"),
        "Terraform's error is not reported: {shown}"
    );
    assert!(
        !stdout.contains("hunter2") && !err.contains("hunter2"),
        "{stdout}\n{err}"
    );
    let reports = walk(&dir.path().join("reports"));
    assert!(!reports.is_empty(), "no report written");
    for file in reports {
        let body = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !body.contains("hunter2"),
            "{} holds the secret:\n{body}",
            file.display()
        );
    }
}

/// Defect 6: the lock file is never opened through a symlink nor used when another user owns it, and
/// without `--lock-file` it lives in the service's own runtime folder.
#[test]
fn run_lock_refuses_symlinks_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    support::add_drift_env(&dir.path().join("envs"), "prod");
    let target = dir.path().join("created-by-root");
    let link = dir.path().join("planted.lock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = within(&mut prod_locked(dir.path(), &link));
    let err = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(1 | 2)), "{err}");
    assert!(err.contains("symlink"), "{err}");
    assert!(!target.exists(), "the symlink was followed");

    if nix_is_root() {
        let foreign = dir.path().join("foreign.lock");
        std::fs::write(&foreign, "").unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        let out = within(&mut prod_locked(dir.path(), &foreign));
        let err = text(&out.stderr);
        assert!(matches!(out.status.code(), Some(1 | 2)), "{err}");
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }

    // The default place: the runtime folder systemd gives the service (RuntimeDirectory=).
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let out = within(
        prod(dir.path())
            .env("RUNTIME_DIRECTORY", &runtime)
            .env_remove("PVE_DRIFT_LOCK_FILE"),
    );
    let lock = runtime.join("pve-drift.lock");
    assert!(
        lock.is_file(),
        "no lock in $RUNTIME_DIRECTORY: {}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&lock).unwrap().uid(),
        std::fs::metadata(dir.path()).unwrap().uid()
    );
    // Held there, the next run is busy (75): it is the one lock every run takes.
    let held = std::fs::File::open(&lock).unwrap();
    held.try_lock().unwrap();
    let out = within(prod(dir.path()).env("RUNTIME_DIRECTORY", &runtime));
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    drop(held);
}

pub fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Defect 10: durations past the cap are usage errors (64), whatever flag or variable carries them.
#[test]
fn huge_durations_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    support::add_drift_env(&dir.path().join("envs"), "prod");
    type Case<'a> = (Vec<&'a str>, Option<(&'a str, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        (vec!["--timeout", "500000000000y"], None),
        (vec!["--lock-timeout", "18446744073709551615s"], None),
        (vec!["--retention", "101y"], None),
        (vec![], Some(("PVE_DRIFT_KILL_GRACE", "500000000000y"))),
        (vec![], Some(("PVE_DRIFT_TIMEOUT", "500000000000y"))),
    ];
    for (args, env) in cases {
        let mut c = prod_locked(dir.path(), &dir.path().join("run.lock"));
        c.args(&args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = within(&mut c);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?} {env:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Defect 11: a 1 MB ignore pattern and a 100,000-way alternation are refused with an error naming the
/// line; globset never sees them.
#[test]
fn huge_ignore_globs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    support::add_drift_env(&dir.path().join("envs"), "prod");
    let alternation = format!(
        "{{{}}}",
        (0..100_000)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let stars = "*a".repeat(5000);
    for (what, pattern) in [
        ("1 MB pattern", "x".repeat(1024 * 1024)),
        ("100,000-way alternation", alternation),
        ("5000 wildcards", stars),
    ] {
        let file = dir.path().join("driftignore");
        std::fs::write(
            &file,
            format!("# accepted\nmodule.a.b  # fine\n{pattern} # reason\n"),
        )
        .unwrap();
        let out = within(
            prod_locked(dir.path(), &dir.path().join("run.lock"))
                .arg("--ignore-file")
                .arg(&file),
        );
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(
            matches!(out.status.code(), Some(1 | 2 | 64)),
            "{what}: {:?} {err}",
            out.status.code()
        );
        assert!(
            err.contains("driftignore:3"),
            "{what}: {}",
            &err[..err.len().min(400)]
        );
        assert!(
            err.len() < 4096,
            "{what}: the error quotes the pattern ({} bytes)",
            err.len()
        );
    }
}

/// Issue 23, "the next run reports what a killed run left": a Terraform killed with SIGKILL while it holds
/// the S3 state lock (`use_lockfile`; here `terraform console`, which holds it as long as it runs, as
/// `plan` does while it refreshes) leaves `<key>.tflock` in the bucket. The next check-drift run reports
/// the environment as a lock error with the lock's ID, holder and age, and how to clear it (in `--json`
/// and in the text report); before, the age and the way out were missing.
#[test]
fn a_killed_terraforms_s3_lock_is_reported_with_id_age_and_the_way_out() {
    use testbed::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
    let mut server = S3Server::start().unwrap();
    server.client().create_bucket("tfstate").unwrap();
    server.client().set_versioning("tfstate", true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("envs/prod");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(
        env.join("main.tf"),
        format!(
            r#"terraform {{
  backend "s3" {{
    bucket                      = "tfstate"
    key                         = "prod/terraform.tfstate"
    region                      = "us-east-1"
    endpoints                   = {{ s3 = "{}" }}
    use_path_style              = true
    use_lockfile                = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
  }}
}}
resource "terraform_data" "guest" {{
  input = "prod"
}}
"#,
            server.endpoint()
        ),
    )
    .unwrap();
    let terraform = |args: &[&str]| {
        let mut c = Command::new("terraform");
        c.args(args)
            .current_dir(&env)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("TF_IN_AUTOMATION", "1");
        c
    };
    let init = within(terraform(&["init", "-input=false", "-no-color"]).stdin(Stdio::null()));
    assert!(init.status.success(), "{}", text(&init.stderr));
    let apply = within(
        terraform(&["apply", "-auto-approve", "-input=false", "-no-color"]).stdin(Stdio::null()),
    );
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    let lock_held = || {
        server
            .client()
            .list_object_versions("tfstate", "prod/terraform.tfstate.tflock")
            .unwrap()
            .iter()
            .any(|v| v.is_latest && !v.is_delete_marker)
    };
    let mut console = terraform(&["console"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !lock_held() {
        assert!(std::time::Instant::now() < deadline, "console never locked");
        std::thread::sleep(Duration::from_millis(20));
    }
    support::kill(console.id(), libc::SIGKILL);
    let _ = console.wait();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(lock_held(), "a SIGKILLed Terraform leaves its lock");

    let run = |json: bool| {
        let mut c = drift(dir.path());
        c.args(["--lock-timeout", "1s", "--terraform-bin", "terraform"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("NO_COLOR", "1");
        if json {
            c.arg("--json");
        }
        within(&mut c)
    };
    let out = run(true);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let doc: check_drift::report::Report = serde_json::from_slice(&out.stdout).unwrap();
    let prod = doc.environments.iter().find(|e| e.env == "prod").unwrap();
    let error = prod.error.as_ref().unwrap();
    assert_eq!(
        error.kind,
        check_drift::terraform::ErrorKind::Lock,
        "{prod:#?}"
    );
    let lock = error.lock.as_ref().unwrap();
    let id = lock.id.clone().unwrap();
    assert!(!id.is_empty() && lock.who.is_some(), "{prod:#?}");
    assert!(lock.age_seconds.is_some_and(|a| a < 600), "{prod:#?}");
    let out = run(false);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        report.contains(&id)
            && report.contains(" ago")
            && report.contains(&format!("--env prod --force-unlock {id}")),
        "{report}"
    );
    assert!(lock_held(), "check-drift never removes a lock");
    server.stop().unwrap();
}
