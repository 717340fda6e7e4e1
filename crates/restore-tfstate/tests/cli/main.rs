//! restore-tfstate end to end: the real binary against a real S3 server with versioning (moto on
//! loopback) and real Terraform using the S3 backend with `use_lockfile`.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pve_common::output::Document;
use pve_common::runner::Runner;
use pve_common::s3::Versioning;
use pve_common::s3::{S3Client, S3Credentials, S3Location};
use pve_common::secret::Secret;
use restore_tfstate::{ListDoc, WriteDoc};
use serde_json::Value;

/// prod's resources; [`write_prod`] puts the test bed's S3 backend block (bucket `tfstate`) before them.
const MAIN_TF: &str = r#"variable "memory" {
  type    = number
  default = 8192
}

resource "terraform_data" "jellyfin" {
  input = { name = "jellyfin", vm_id = 100, memory = var.memory, tags = ["media", "prod"] }
}

# Off by default; a test turns it on to keep an apply (and its state lock) running for a while.
variable "slow_seconds" {
  type    = number
  default = 0
}

resource "terraform_data" "slow" {
  count = var.slow_seconds > 0 ? 1 : 0
  provisioner "local-exec" {
    command = "sleep ${var.slow_seconds}"
  }
}
"#;

/// The tool, through the test bed's one command helper.
fn bin() -> Command {
    testbed::tool::command(env!("CARGO_BIN_EXE_restore-tfstate"))
}

/// prod in `env`: `main.tf` with the backend block of the state `tfstate/prod/terraform.tfstate`, and
/// `backend.hcl` naming `endpoint`.
fn write_prod(env: &Path, endpoint: &str) {
    let backend = testbed::terraform::S3Backend::at(endpoint, "prod");
    std::fs::create_dir_all(env).unwrap();
    std::fs::write(
        env.join("main.tf"),
        format!("{}\n{MAIN_TF}", backend.backend_block()),
    )
    .unwrap();
    std::fs::write(env.join("backend.hcl"), backend.backend_hcl()).unwrap();
}

fn start_moto() -> (testbed::s3::S3Server, String) {
    let server = testbed::s3::S3Server::start().unwrap();
    let endpoint = server.endpoint();
    (server, endpoint)
}

struct Bed {
    _moto: testbed::s3::S3Server,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new(versioning: bool) -> Bed {
        let (moto, endpoint) = start_moto();
        let dir = tempfile::tempdir().unwrap();
        write_prod(&dir.path().join("environments/prod"), &endpoint);
        let bed = Bed {
            _moto: moto,
            endpoint,
            dir,
        };
        let s3 = bed.s3();
        let runner = Runner::new(false);
        s3.create_bucket(&runner).unwrap();
        if versioning {
            s3.set_versioning(&runner, true).unwrap();
        }
        bed
    }

    fn s3(&self) -> S3Client {
        testbed::s3::S3Client::at(&self.endpoint)
            .and_then(|c| c.bucket(testbed::terraform::STATE_BUCKET))
            .unwrap()
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("environments")
    }

    fn env_dir(&self) -> PathBuf {
        self.root().join("prod")
    }

    fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    fn terraform(&self, args: &[&str]) -> Output {
        Command::new("terraform")
            .args(args)
            .current_dir(self.env_dir())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .unwrap()
    }

    fn apply(&self, memory: u32) {
        let init = self.terraform(&[
            "init",
            "-input=false",
            "-no-color",
            "-backend-config=backend.hcl",
        ]);
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let apply = self.terraform(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &format!("-var=memory={memory}"),
        ]);
        assert!(
            apply.status.success(),
            "{}",
            String::from_utf8_lossy(&apply.stderr)
        );
    }

    fn plan_code(&self, memory: u32) -> i32 {
        let plan = self.terraform(&[
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            &format!("-var=memory={memory}"),
        ]);
        plan.status.code().unwrap()
    }

    fn tool(&self, args: &[&str]) -> Output {
        bin()
            .arg("--root")
            .arg(self.root())
            .arg("--env")
            .arg("prod")
            .arg("--backup-dir")
            .arg(self.backups())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("PVE_RETRY_DELAY", "10ms")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Version ids of the state object, newest first.
    fn state_versions(&self) -> Vec<String> {
        self.s3()
            .list_versions("prod/terraform.tfstate")
            .unwrap()
            .into_iter()
            .filter(|v| v.key == "prod/terraform.tfstate")
            .map(|v| v.version_id)
            .collect()
    }

    fn latest_state(&self) -> Value {
        serde_json::from_slice(&self.s3().get("prod/terraform.tfstate", None).unwrap()).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A write's `--json` document, decoded.
fn write_doc(out: &Output) -> Document<WriteDoc> {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// A `--list --json` document, decoded.
fn list_doc(out: &Output) -> Document<ListDoc> {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn list_shows_every_version_newest_first_with_details() {
    let bed = Bed::new(true);
    for memory in [4096, 8192, 10240] {
        bed.apply(memory);
    }
    let out = bed.tool(&["--list", "--details", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = list_doc(&out);
    assert_eq!(doc.schema, "pve-tfstate/v1");
    assert_eq!(doc.body.versioning, Some(Versioning::Enabled));
    let versions = &doc.body.versions;
    assert_eq!(
        versions.len(),
        3,
        "three applies, the .tflock versions left out: {doc:#?}"
    );
    assert!(versions[0].version.is_latest);
    let serials: Vec<u64> = versions
        .iter()
        .map(|v| v.details.as_ref().unwrap().serial)
        .collect();
    assert!(
        serials.windows(2).all(|w| w[0] > w[1]),
        "newest first: {serials:?}"
    );
    assert_eq!(versions[0].details.as_ref().unwrap().resources, 1);

    let table = bed.tool(&["--list"]);
    assert!(table.status.success());
    let stdout = text(&table.stdout);
    // The script's heading first, then the table.
    assert!(
        stdout.starts_with("Available versions:\nVERSION ID"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 5);
}

#[test]
fn restore_an_older_version_then_terraform_plan_sees_it() {
    let bed = Bed::new(true);
    bed.apply(4096);
    bed.apply(10240);
    let versions = bed.state_versions();
    let oldest = versions.last().unwrap().clone();
    let serial_before = bed.latest_state()["serial"].as_u64().unwrap();
    assert_eq!(bed.plan_code(10240), 0);

    let out = bed.tool(&["--restore", &oldest, "--yes", "--json", "--verify-plan"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = write_doc(&out);
    assert_eq!(doc.schema, restore_tfstate::SCHEMA);
    let doc = doc.body;
    assert_eq!(doc.action, "restore");
    assert_eq!(doc.checksum_ok, Some(true));
    assert_eq!(doc.new_serial, Some(serial_before + 1));
    // The config's default memory (8192) differs from the restored 4096: plan reading the restored state
    // must plan a change (2); 0 would mean it did not see the restore, 1 that it could not read it.
    assert_eq!(doc.plan_exit_code, Some(2), "{doc:?}");
    let save_point = doc.save_point.clone().unwrap();
    assert_eq!(
        std::fs::metadata(&save_point).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let latest = bed.latest_state();
    assert_eq!(latest["serial"], serial_before + 1);
    assert_eq!(
        latest["resources"][0]["instances"][0]["attributes"]["input"]["value"]["memory"],
        4096
    );
    assert_eq!(
        bed.state_versions().len(),
        versions.len() + 1,
        "a new version; none deleted"
    );
    // Terraform itself now sees the older state: the newer config is a change again.
    assert_eq!(bed.plan_code(10240), 2);
    assert_eq!(bed.plan_code(4096), 0);
}

#[test]
fn invalid_and_foreign_versions_are_refused_and_nothing_changes() {
    let bed = Bed::new(true);
    bed.apply(8192);
    let s3 = bed.s3();
    let runner = Runner::new(false);
    let good = s3.get("prod/terraform.tfstate", None).unwrap();
    let garbage = s3
        .put(&runner, "prod/terraform.tfstate", b"{not json", false)
        .unwrap()
        .unwrap()
        .version_id
        .unwrap();
    let v3 = s3
        .put(
            &runner,
            "prod/terraform.tfstate",
            br#"{"version":3,"serial":1,"lineage":"x","modules":[]}"#,
            false,
        )
        .unwrap()
        .unwrap()
        .version_id
        .unwrap();
    let mut foreign: Value = serde_json::from_slice(&good).unwrap();
    foreign["lineage"] = Value::from("00000000-1111-2222-3333-444444444444");
    let foreign_id = s3
        .put(
            &runner,
            "prod/terraform.tfstate",
            &serde_json::to_vec(&foreign).unwrap(),
            false,
        )
        .unwrap()
        .unwrap()
        .version_id
        .unwrap();
    s3.put(&runner, "prod/terraform.tfstate", &good, false)
        .unwrap();
    let before = bed.state_versions();

    // Each refused with exit 1 and stderr saying every one of its words.
    for (version, says) in [
        (garbage.as_str(), &["not valid JSON"][..]),
        (v3.as_str(), &["format version 3"][..]),
        (
            foreign_id.as_str(),
            &["lineage", "--allow-lineage-change"][..],
        ),
        ("no-such-version", &["does not exist"][..]),
    ] {
        let out = bed.tool(&["--restore", version, "--yes"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{version}: {stderr}");
        assert!(
            says.iter().all(|s| stderr.contains(s)),
            "{version}: {stderr}"
        );
    }
    assert_eq!(bed.state_versions(), before, "nothing was written");
    assert!(
        s3.list_versions("prod/terraform.tfstate.tflock")
            .unwrap()
            .iter()
            .all(|v| v.delete_marker || !v.is_latest),
        "lock released"
    );

    let forced = bed.tool(&["--restore", &foreign_id, "--yes", "--allow-lineage-change"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_eq!(
        bed.latest_state()["lineage"],
        "00000000-1111-2222-3333-444444444444"
    );
}

#[test]
fn held_lock_exits_75_naming_the_holder() {
    let bed = Bed::new(true);
    bed.apply(8192);
    let version = bed.state_versions()[0].clone();
    let info = r#"{"ID":"3d2c0c38-6a0f-4a5e-9f3b-5c1c2f0b9a11","Operation":"OperationTypeApply","Info":"","Who":"ops@workstation","Version":"1.11.4","Created":"2026-11-21T06:00:00Z","Path":"tfstate/prod/terraform.tfstate"}"#;
    bed.s3()
        .put(
            &Runner::new(false),
            "prod/terraform.tfstate.tflock",
            info.as_bytes(),
            true,
        )
        .unwrap();
    let before = bed.state_versions();
    let out = bed.tool(&["--restore", &version, "--yes"]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ops@workstation")
            && stderr.contains("3d2c0c38-6a0f-4a5e-9f3b-5c1c2f0b9a11"),
        "{stderr}"
    );
    assert_eq!(bed.state_versions(), before);
    // The holder's lock is untouched: a terraform plan still cannot lock.
    let plan = bed.terraform(&["plan", "-input=false", "-no-color", "-lock-timeout=0s"]);
    assert_eq!(plan.status.code(), Some(1));
    assert!(
        text(&plan.stderr).contains("Error acquiring the state lock"),
        "{}",
        text(&plan.stderr)
    );
}

#[test]
fn lock_held_by_a_running_apply_exits_75() {
    let bed = Bed::new(true);
    bed.apply(8192);
    let version = bed.state_versions()[0].clone();
    let mut apply = Command::new("terraform")
        .args([
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var=slow_seconds=15",
        ])
        .current_dir(bed.env_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s3 = bed.s3();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s3
        .list_versions("prod/terraform.tfstate.tflock")
        .unwrap()
        .iter()
        .any(|v| v.is_latest && !v.delete_marker)
    {
        assert!(
            Instant::now() < deadline,
            "terraform apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = bed.tool(&["--restore", &version, "--yes"]);
    let code = out.status.code();
    let _ = apply.kill();
    let _ = apply.wait();
    assert_eq!(code, Some(75), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("operation OperationTypeApply"),
        "Terraform's own lock info is shown: {stderr}"
    );
}

#[test]
fn versioning_off_is_refused_without_force() {
    let bed = Bed::new(false);
    bed.apply(8192);
    let version = bed.state_versions()[0].clone();
    let out = bed.tool(&["--restore", &version, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no versioning"),
        "{}",
        text(&out.stderr)
    );
    let forced = bed.tool(&["--restore", &version, "--yes", "--allow-lineage-change"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(text(&forced.stderr).contains("the local save point is the only way back"));
    assert_eq!(std::fs::read_dir(bed.backups()).unwrap().count(), 1);
}

#[test]
fn preview_writes_nothing() {
    let bed = Bed::new(true);
    bed.apply(4096);
    bed.apply(8192);
    let oldest = bed.state_versions().last().unwrap().clone();
    let before = bed.s3().list_versions("prod/").unwrap();
    let out = bed.tool(&["--restore", &oldest, "--preview"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[dry-run] would put s3://tfstate/prod/terraform.tfstate.tflock"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[dry-run] would put s3://tfstate/prod/terraform.tfstate ("),
        "{stderr}"
    );
    assert!(stderr.contains("[dry-run] would write: "), "{stderr}");
    assert_eq!(
        bed.s3().list_versions("prod/").unwrap(),
        before,
        "no version, no lock, no marker"
    );
    assert!(!bed.backups().exists(), "no save point written");
}

#[test]
fn s3_down_to_local_apply_then_back_to_minio() {
    let bed = Bed::new(true);
    bed.apply(4096);
    let version = bed.state_versions()[0].clone();
    // A restore leaves a save point of the current state in the backup folder.
    assert!(bed.tool(&["--restore", &version, "--yes"]).status.success());

    // MinIO "down": an endpoint nobody answers on. The newest local save point is used.
    let out = bed.tool(&["--to-local", "--endpoint", "http://127.0.0.1:9", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = write_doc(&out);
    assert!(
        doc.body
            .source
            .as_deref()
            .unwrap()
            .starts_with("the local save point"),
        "{doc:#?}"
    );
    assert!(
        bed.env_dir()
            .join("pve_local_backend_override.tf")
            .is_file()
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("attempt 1/3 failed") && stderr.contains("--to-minio"),
        "{stderr}"
    );

    // Terraform works locally; apply a change there.
    let apply = bed.terraform(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-var=memory=16384",
    ]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    let local_serial = serde_json::from_slice::<Value>(
        &std::fs::read(bed.env_dir().join("terraform.tfstate")).unwrap(),
    )
    .unwrap()["serial"]
        .as_u64()
        .unwrap();

    // MinIO back: push, remove the override, prove Terraform uses S3 and kept the local change.
    let out = bed.tool(&["--to-minio", "--yes", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = write_doc(&out).body;
    assert_eq!(doc.checksum_ok, Some(true), "{doc:?}");
    assert_eq!(
        doc.plan_exit_code,
        Some(2),
        "default memory 8192 differs from the applied 16384: {doc:?}"
    );
    assert!(doc.new_serial.unwrap() >= local_serial);
    assert!(!bed.env_dir().join("pve_local_backend_override.tf").exists());
    assert!(!bed.env_dir().join("terraform.tfstate").exists());
    assert_eq!(
        bed.latest_state()["resources"][0]["instances"][0]["attributes"]["input"]["value"]["memory"],
        16384
    );
    assert_eq!(
        bed.plan_code(16384),
        0,
        "Terraform reads the pushed state from S3"
    );
}

#[test]
fn to_minio_refuses_a_newer_remote_serial() {
    let bed = Bed::new(true);
    bed.apply(4096);
    assert!(bed.tool(&["--to-local", "--yes"]).status.success());
    // Someone applies against S3 meanwhile (bumping the remote serial past the local one).
    let s3 = bed.s3();
    let mut remote: Value = bed.latest_state();
    remote["serial"] = Value::from(remote["serial"].as_u64().unwrap() + 5);
    s3.put(
        &Runner::new(false),
        "prod/terraform.tfstate",
        &serde_json::to_vec(&remote).unwrap(),
        false,
    )
    .unwrap();
    let out = bed.tool(&["--to-minio", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is newer than the local state"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        bed.env_dir()
            .join("pve_local_backend_override.tf")
            .is_file(),
        "still local"
    );
}

#[test]
fn usage_errors_exit_64_before_any_connection() {
    let bed = Bed::new(true);
    for args in [
        vec!["--list", "--restore", "x"],
        vec!["--restore", "bad id"],
        vec!["--details"],
        vec!["--list", "--version-id", "abc"],
    ] {
        let out = bed.tool(&args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = bin()
        .args([
            "--root",
            bed.root().to_str().unwrap(),
            "--env",
            "../etc",
            "--list",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("invalid environment name"),
        "{}",
        text(&out.stderr)
    );
    let version = bin().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(text(&version.stdout).starts_with("restore-tfstate "));
}

#[test]
fn credentials_come_from_tfvars_and_never_show() {
    let bed = Bed::new(true);
    bed.apply(8192);
    let tfvars = bed.dir.path().join("terraform.tfvars");
    std::fs::write(
        &tfvars,
        "minio_access_key = \"testing\"\nminio_secret_key = \"tfvars-secret-value-42\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&tfvars, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = bin()
        .args([
            "--root",
            bed.root().to_str().unwrap(),
            "--env",
            "prod",
            "--list",
            "--json",
            "-v",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("tfvars-secret-value-42"), "{all}");
    assert_eq!(list_doc(&out).body.versions.len(), 1);
}

/// `--dry-run` contacts nothing: S3 is not even running (a closed port), and every request is shown.
#[test]
fn dry_run_contacts_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("environments/prod");
    let refused = testbed::ports::RefusedPort::new().unwrap();
    let closed = refused.port();
    write_prod(&env, &format!("http://127.0.0.1:{closed}"));
    let before = std::fs::read_dir(&env).unwrap().count();
    for action in [
        vec!["--list"],
        vec!["--restore", "v1"],
        vec!["--fallback"],
        vec!["--to-local"],
    ] {
        let out = bin()
            .arg("--root")
            .arg(dir.path().join("environments"))
            .args(["--env", "prod", "--dry-run", "--backup-dir"])
            .arg(dir.path().join("backups"))
            .args(&action)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env_remove("LANG")
            .env_remove("LC_ALL")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{action:?}: {err}");
        assert!(
            err.contains("[DRY-RUN] GET http://127.0.0.1:"),
            "{action:?}: {err}"
        );
        assert!(!err.contains("attempt"), "nothing contacted: {err}");
        assert!(
            !err.contains(" written to ") && !err.contains("now uses a local state"),
            "a dry-run says nothing was done: {err}"
        );
        assert!(err.contains("Operation completed successfully"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&env).unwrap().count(), before);
    assert!(!dir.path().join("backups").exists());
}

/// A declined restore (no terminal, nothing on stdin) ends with 0, as the script did, and leaves no file
/// behind: the save point is taken only once confirmed.
#[test]
fn a_declined_restore_exits_0_and_writes_no_save_point() {
    let bed = Bed::new(true);
    bed.apply(4096);
    bed.apply(8192);
    let oldest = bed.state_versions().last().unwrap().clone();
    let before = bed.state_versions();
    let out = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_restore-tfstate"))
        .arg("--root")
        .arg(bed.root())
        .args(["--env", "prod", "--restore", &oldest, "--backup-dir"])
        .arg(bed.backups())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing was changed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(bed.state_versions(), before);
    assert!(
        !bed.backups().exists(),
        "no save point for a declined restore"
    );
}

/// The script's command line: its messages for what is missing, `-V` the version only.
#[test]
fn the_scripts_usage_messages() {
    let bed = Bed::new(true);
    let run = |args: &[&str]| {
        bin()
            .args(args)
            .env("PVE_TOOLS_LANG", "fr")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("Aucun argument fourni"));
    let root = bed.root();
    let root = root.to_str().unwrap();
    let out = run(&["--root", root, "--list"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("Option --env est requise"));
    let out = run(&["--root", root, "--env", "prod"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr)
            .contains("Veuillez specifier une action: --list, --restore, --fallback, ou --return")
    );
    let out = run(&["--root", root, "--env", "prod", "--restore"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("version-id requis"));
    for v in ["-V", "--version"] {
        let out = run(&[v]);
        assert_eq!(out.status.code(), Some(0));
        assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    }
}

/// The homelab's own layout: backend.tf with its s3 block commented out, the `minio` block in prod's
/// tfvars pointing at the S3 server. `--fallback` keeps backend.tf as backend.tf.minio-backup and rewrites
/// it; `--return` waits for /minio/health/live, pushes the state back and restores backend.tf.
#[test]
fn fallback_then_return_with_the_minio_block_only() {
    let (moto, endpoint) = start_moto();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("environments");
    let lab = root.join("lab");
    let prod = root.join("prod");
    std::fs::create_dir_all(&lab).unwrap();
    std::fs::create_dir_all(&prod).unwrap();
    let backend_tf = testbed::fixture::commented_backend_tf("lab");
    std::fs::write(lab.join("backend.tf"), &backend_tf).unwrap();
    std::fs::write(
        lab.join("main.tf"),
        "resource \"terraform_data\" \"vm\" {\n  input = 1\n}\n",
    )
    .unwrap();
    std::fs::write(
        prod.join("terraform.tfvars"),
        testbed::fixture::minio_block("127.0.0.1", Some(port), "minio-admin", "minio-secret-1"),
    )
    .unwrap();
    let runner = Runner::new(false);
    let client = |bucket: &str| {
        S3Client::new(
            S3Location {
                endpoint: endpoint.clone(),
                region: "us-east-1".into(),
                bucket: bucket.into(),
                path_style: true,
            },
            &S3Credentials {
                access_key: Secret::new("minio-admin"),
                secret_key: Secret::new("minio-secret-1"),
                session_token: None,
            },
            Duration::from_secs(10),
        )
        .unwrap()
    };
    let s3 = client("tfstate-lab");
    s3.create_bucket(&runner).unwrap();
    s3.set_versioning(&runner, true).unwrap();
    let state = r#"{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"lab-lineage","outputs":{},"resources":[]}"#;
    s3.put(&runner, "terraform.tfstate", state.as_bytes(), false)
        .unwrap();
    let tool = |args: &[&str]| {
        bin()
            .arg("--root")
            .arg(&root)
            .args(["--env", "lab", "--backup-dir"])
            .arg(dir.path().join("backups"))
            .args(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("PVE_RETRY_DELAY", "10ms")
            .env("PVE_RETRY_ATTEMPTS", "2")
            .env("PVE_TOOLS_LANG", "fr")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = tool(&["--list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Versions disponibles:"));

    let out = tool(&["--fallback", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Operation terminee avec succes"));
    assert_eq!(
        std::fs::read_to_string(lab.join("backend.tf.minio-backup")).unwrap(),
        backend_tf
    );
    let rewritten = std::fs::read_to_string(lab.join("backend.tf")).unwrap();
    assert!(rewritten.contains("backend \"local\""), "{rewritten}");
    let local: Value =
        serde_json::from_slice(&std::fs::read(lab.join("terraform.tfstate")).unwrap()).unwrap();
    assert_eq!(local["lineage"], "lab-lineage");

    // MinIO's health URL does not answer yet (no such bucket on this server): --return refuses and
    // changes nothing.
    let out = tool(&["--return", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("MinIO ne repond pas"),
        "{}",
        text(&out.stderr)
    );
    assert!(lab.join("backend.tf.minio-backup").is_file());

    // A live MinIO answers 200 on /minio/health/live, without credentials: a public object stands in.
    client("minio").create_bucket(&runner).unwrap();
    let put = Command::new("curl")
        .args([
            "-fs",
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read",
            "--data-binary",
            "",
        ])
        .arg(format!("{endpoint}/minio/health/live"))
        .output()
        .unwrap();
    assert!(put.status.success());
    let out = tool(&["--return", "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Operation terminee avec succes"));
    assert_eq!(
        std::fs::read_to_string(lab.join("backend.tf")).unwrap(),
        backend_tf
    );
    assert!(!lab.join("backend.tf.minio-backup").exists());
    // Terraform keeps a local state here (no active backend block): it stays.
    assert!(lab.join("terraform.tfstate").is_file());
    let pushed: Value =
        serde_json::from_slice(&s3.get("terraform.tfstate", None).unwrap()).unwrap();
    assert_eq!(pushed["lineage"], "lab-lineage");
    drop(moto);
}
