//! restore-tfstate against its S3 bed (moto) under the hostile conditions of issue 23: a state lock
//! taken over mid-run, keys that would leave the bucket, a corrupt current state, plan checks against
//! another object than the one written, a `--to-local` that fails part-way, and the lock a killed run
//! leaves behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use pve_common::output::Document;
use pve_common::runner::Runner;
use pve_tf::lock::LockInfo;
use restore_tfstate::ListDoc;
use serde_json::json;

use crate::s3bed::{KEY, S3Bed, state};
use crate::support::{self, Action, FaultProxy, fault, output_within, text};

/// The `--force-unlock --json` document's own fields.
#[derive(serde::Deserialize)]
pub struct Unlocked {
    action: String,
    lock: LockInfo,
}

pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

pub fn lock_key() -> String {
    format!("{KEY}.tflock")
}

pub fn lock_json(id: &str, created: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ID": id, "Operation": "OperationTypeApply", "Info": "", "Who": "other@desk",
        "Version": "1.11.4", "Created": created, "Path": format!("tfstate/{KEY}")
    }))
    .unwrap()
}

/// Issue 23 defect 2: between the tool's lock and its write, the lock is force-unlocked and taken by
/// another holder (the read of the current state is held back 3 s meanwhile). The tool must not write
/// the state and must not delete the other holder's lock; it says the lock is no longer its own. Before,
/// it wrote a new version and deleted the other lock.
#[test]
fn a_lock_taken_over_mid_run_stops_the_write_and_is_left_alone() {
    let bed = S3Bed::new();
    let versions = bed.versions();
    let oldest = versions.last().unwrap().clone();
    let latest_before = bed.s3().get(KEY, None).unwrap();
    let proxy = FaultProxy::start_at(
        bed.server.port(),
        "GET /tfstate/prod/terraform.tfstate?",
        2,
        Action::Delay(Duration::from_secs(3)),
    );
    let child = bed
        .cmd_at(&proxy.endpoint())
        .args(["--restore", &oldest, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the tool never took the lock", || bed.lock_held());
    // terraform force-unlock, then another holder's lock.
    let runner = Runner::new(false);
    bed.s3().delete(&runner, &lock_key()).unwrap();
    let theirs = lock_json("other-holder-0001", &jiff::Timestamp::now().to_string());
    bed.s3().put(&runner, &lock_key(), &theirs, true).unwrap();
    fault();
    let out = support::wait_within(child, Duration::from_secs(60), "restore-tfstate");
    let err = text(&out.stderr);
    eprintln!("lock taken over mid-run:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no longer held by this run") && err.contains("other-holder-0001"),
        "{err}"
    );
    assert_eq!(bed.versions(), versions, "no state was written");
    assert_eq!(bed.s3().get(KEY, None).unwrap(), latest_before);
    assert_eq!(
        bed.s3().get(&lock_key(), None).unwrap(),
        theirs,
        "the other holder's lock is still there"
    );
}

/// Issue 23 defect 3: `..` in the key, from every place a key comes from (`--key`, the backend block,
/// `--backend-config`, `TF_WORKSPACE`), is refused before any request: nothing is read from or written to
/// the bucket `victim` (before, `--key ../victim/secret/terraform.tfstate --restore V --yes` wrote there).
#[test]
fn keys_that_leave_the_bucket_are_refused_wherever_they_come_from() {
    let bed = S3Bed::new();
    let victim = testbed::s3::S3Client::at(&bed.server.endpoint())
        .and_then(|c| c.bucket("victim"))
        .unwrap();
    let runner = Runner::new(false);
    victim.create_bucket(&runner).unwrap();
    victim.set_versioning(&runner, true).unwrap();
    let secret_key = "secret/terraform.tfstate";
    victim
        .put(&runner, secret_key, &state(1, 1), false)
        .unwrap();
    victim
        .put(&runner, secret_key, &state(2, 2), false)
        .unwrap();
    let victim_versions = || victim.list_versions("").unwrap();
    let before = victim_versions();
    let v = before
        .iter()
        .find(|o| o.key == secret_key && !o.is_latest)
        .unwrap()
        .version_id
        .clone();
    let env = bed.root().join("prod");
    let extra = bed.dir.path().join("evil.tfbackend");
    std::fs::write(
        &extra,
        "key = \"prod/../../victim/secret/terraform.tfstate\"\n",
    )
    .unwrap();
    let cases: Vec<(&str, Vec<String>, Option<&str>)> = vec![
        (
            "--key",
            vec![
                "--key".into(),
                "../victim/secret/terraform.tfstate".into(),
                "--restore".into(),
                v.clone(),
                "--yes".into(),
            ],
            None,
        ),
        (
            "--backend-config",
            vec![
                "--backend-config".into(),
                extra.display().to_string(),
                "--restore".into(),
                v.clone(),
                "--yes".into(),
            ],
            None,
        ),
        (
            "TF_WORKSPACE",
            vec!["--restore".into(), v.clone(), "--yes".into()],
            Some("../../victim"),
        ),
        (
            "--key /",
            vec![
                "--key".into(),
                "/prod/terraform.tfstate".into(),
                "--list".into(),
            ],
            None,
        ),
    ];
    for (what, args, workspace) in cases {
        let mut cmd = bed.cmd_at(&bed.server.endpoint());
        cmd.args(&args);
        if let Some(ws) = workspace {
            cmd.env("TF_WORKSPACE", ws);
        }
        let out = output_within(&mut cmd, Duration::from_secs(60));
        let err = text(&out.stderr);
        eprintln!("{what}:\n{err}");
        assert_ne!(out.status.code(), Some(0), "{what}: {err}");
        assert!(
            err.contains("`..` segment")
                || err.contains("starts with `/`")
                || err.contains("contains `/`"),
            "{what}: {err}"
        );
        assert!(!err.contains("s3://tfstate/../"), "{what}: {err}");
    }
    // The backend block itself.
    let main_tf = std::fs::read_to_string(env.join("main.tf")).unwrap();
    std::fs::write(
        env.join("main.tf"),
        main_tf.replace(
            "\"prod/terraform.tfstate\"",
            "\"../victim/secret/terraform.tfstate\"",
        ),
    )
    .unwrap();
    let out = bed.run(&["--restore", &v, "--yes"]);
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "backend key: {err}");
    assert!(err.contains("`..` segment"), "backend key: {err}");
    assert_eq!(
        victim_versions(),
        before,
        "nothing was written to bucket victim"
    );
}

/// Issue 23 defect 15: the current state is corrupt (serial 9 was the last valid one). The run says the
/// current state is CORRUPT (not "there is no current state"), the new serial exceeds the last valid
/// version's, and the lineage guard compares with that version. Before, it wrote serial 2 and restored
/// another lineage without --force.
#[test]
fn a_corrupt_current_state_is_reported_and_the_last_valid_version_guards() {
    let bed = S3Bed::new();
    let runner = Runner::new(false);
    let s3 = bed.s3();
    s3.put(&runner, KEY, &state(9, 9), false).unwrap();
    s3.put(
        &runner,
        KEY,
        b"{\"version\": 4, \"serial\": 8, \"lin",
        false,
    )
    .unwrap();
    let mut other = serde_json::from_slice::<serde_json::Value>(&state(5, 5)).unwrap();
    other["lineage"] = json!("another-lineage");
    s3.put(&runner, KEY, &serde_json::to_vec(&other).unwrap(), false)
        .unwrap();
    s3.put(&runner, KEY, b"not json at all", false).unwrap();
    let versions = bed.versions();
    // newest first: corrupt, other lineage, corrupt, 9, 3, 2, 1
    let (other_id, oldest) = (versions[1].clone(), versions.last().unwrap().clone());
    let out = bed.run(&["--restore", &other_id, "--yes"]);
    let err = text(&out.stderr);
    eprintln!("restore of another lineage over a corrupt state:\n{err}");
    // The newest valid version is the other lineage's own: restoring it over itself is allowed, and
    // the serial exceeds it.
    assert!(out.status.success(), "{err}");
    assert!(err.contains("CORRUPT"), "{err}");
    assert!(!err.contains("there is no current state"), "{err}");
    assert_eq!(bed.latest()["serial"], 6, "{err}");
    // Now corrupt again on top of the other lineage; restoring serial 1 of the bed's lineage is a
    // lineage change (refused without --force), and with --force its serial exceeds 6.
    s3.put(&runner, KEY, b"{", false).unwrap();
    let out = bed.run(&["--restore", &oldest, "--yes"]);
    let err = text(&out.stderr);
    eprintln!("restore of serial 1 over a corrupt state:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lineage") && err.contains("the last valid version"),
        "{err}"
    );
    let out = bed.run(&["--restore", &oldest, "--yes", "--allow-lineage-change"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(bed.latest()["serial"], 7, "{err}");
}

/// A fake `terraform` logging its arguments, its backend configuration files' content, and exiting with
/// `code` for `init` (0 otherwise).
pub fn logging_terraform(dir: &Path, init_code: i32) -> PathBuf {
    let fake = dir.join("terraform");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nlog={}/log\necho \"ARGS $*\" >> $log\n\
             for a in \"$@\"; do case \"$a\" in -backend-config=*) f=${{a#-backend-config=}}; [ -f \"$f\" ] && cat \"$f\" >> $log;; esac; done\n\
             [ \"$1\" = init ] && exit {init_code}\n\
             [ \"$1\" = state ] && exit 1\nexit 0\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fake
}

/// Issue 23 defect 14: `--verify-plan` after a restore under `--key`/`--bucket`/`--endpoint`/`--region`
/// checks the object written: Terraform's `init` gets those as backend configuration. Before, it read
/// the backend block's key and reported "no changes" on another state.
#[test]
fn verify_plan_checks_the_object_that_was_written() {
    let bed = S3Bed::new();
    let runner = Runner::new(false);
    let other = "elsewhere/terraform.tfstate";
    bed.s3().put(&runner, other, &state(1, 1), false).unwrap();
    bed.s3().put(&runner, other, &state(2, 2), false).unwrap();
    let v = bed
        .s3()
        .list_versions(other)
        .unwrap()
        .into_iter()
        .find(|o| o.key == other && !o.is_latest)
        .unwrap()
        .version_id;
    let dir = tempfile::tempdir().unwrap();
    let fake = logging_terraform(dir.path(), 0);
    let out = bed.run(&[
        "--key",
        other,
        "--region",
        "us-east-1",
        "--restore",
        &v,
        "--yes",
        "--verify-plan",
        "--terraform-bin",
        fake.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
    eprintln!("{err}\nterraform log:\n{log}");
    assert!(out.status.success(), "{err}");
    let init = log.split("ARGS ").find(|l| l.starts_with("init")).unwrap();
    assert!(
        init.contains(&format!("key = \"{other}\"")),
        "init is told the key written: {init}"
    );
    assert!(
        init.contains(&format!("\"{}\"", bed.server.endpoint())),
        "and the endpoint: {init}"
    );
}

/// Issue 23 defect 20: `--to-local` whose `terraform init` fails leaves the environment as it was (no
/// terraform.tfstate, no override, no marker; an existing terraform.tfstate put back) and says so.
/// Before, terraform.tfstate and the override stayed without a word.
#[test]
fn a_to_local_that_fails_part_way_is_rolled_back_and_says_so() {
    let bed = S3Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let fake = logging_terraform(dir.path(), 1);
    let env = bed.root().join("prod");
    let names = |env: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(env)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = names(&env);
    let out = bed.run(&["--to-local", "--terraform-bin", fake.to_str().unwrap()]);
    let err = text(&out.stderr);
    eprintln!("--to-local, init fails:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(names(&env), before, "nothing left in the environment");
    // An existing local state is put back as it was.
    std::fs::write(env.join("terraform.tfstate"), "{\"old\": true}\n").unwrap();
    let out = bed.run(&["--to-local", "--terraform-bin", fake.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.join("terraform.tfstate")).unwrap(),
        "{\"old\": true}\n"
    );
    assert!(!env.join("pve_local_backend_override.tf").exists());
}

/// Also seen in issue 23: a restore-tfstate killed with SIGKILL while it holds the state lock leaves the
/// lock; `--list` then shows its holder and age (stderr and `--json`), and a restore's refusal its age.
#[test]
fn a_killed_runs_lock_shows_its_holder_and_age() {
    let bed = S3Bed::new();
    let oldest = bed.versions().last().unwrap().clone();
    let proxy = FaultProxy::start_at(
        bed.server.port(),
        "GET /tfstate/prod/terraform.tfstate?",
        2,
        Action::Delay(Duration::from_secs(30)),
    );
    let child = bed
        .cmd_at(&proxy.endpoint())
        .args(["--restore", &oldest, "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the tool never took the lock", || bed.lock_held());
    support::kill(child.id(), libc::SIGKILL);
    fault();
    let mut child = child;
    let _ = child.wait();
    assert!(bed.lock_held(), "SIGKILL leaves the lock");
    let out = bed.run(&["--list", "--json"]);
    let err = text(&out.stderr);
    eprintln!("--list with a killed run's lock:\n{err}");
    assert!(out.status.success(), "{err}");
    let doc: Document<ListDoc> = support::decoded(&out.stdout, &err);
    let lock = doc.body.lock.expect("the held lock is listed");
    let id = lock.id;
    assert_eq!(lock.info, "restore-tfstate");
    assert!(
        err.contains("locked by") && err.contains(" ago") && err.contains(&id),
        "{err}"
    );
    let out = bed.run(&["--restore", &oldest, "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains(" ago") && err.contains(&id), "{err}");
}

/// Also seen in issue 23: the lock a killed run left (two hours old) is cleared with
/// `--force-unlock LOCK_ID`, Terraform's `force-unlock` semantics: a wrong ID removes nothing (exit 1, the
/// real ID and holder named), no answer to the question removes nothing, the right ID removes it (a delete
/// marker; the lock's versions stay), and then there is nothing to unlock. A restore refused by the lock
/// names the command. Before, there was no way to clear it but `terraform force-unlock` in a working
/// environment.
#[test]
fn a_stale_lock_is_cleared_by_its_id_only() {
    let bed = S3Bed::new();
    let oldest = bed.versions().last().unwrap().clone();
    let created = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let id = "0b6ec3f4-5d0e-4b8e-9f3c-2a1d7e6f8a90";
    bed.s3()
        .put(
            &Runner::new(false),
            &lock_key(),
            &lock_json(id, &created.to_string()),
            false,
        )
        .unwrap();
    let out = bed.run(&["--restore", &oldest, "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("--force-unlock {id}")) && err.contains("2h ago"),
        "{err}"
    );

    let out = bed.run(&[
        "--force-unlock",
        "11111111-2222-4333-8444-555555555555",
        "--yes",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(id) && err.contains("other@desk") && err.contains("nothing was removed"),
        "{err}"
    );
    assert!(bed.lock_held(), "a wrong ID removed the lock");

    // No terminal and no input: the question is answered "no".
    let out = bed.run(&["--force-unlock", id]);
    assert!(
        bed.lock_held(),
        "removed without a yes: {}",
        text(&out.stderr)
    );

    let out = bed.run(&["--force-unlock", id, "--yes", "--json"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!bed.lock_held(), "{err}");
    let doc: Document<Unlocked> = support::decoded(&out.stdout, &err);
    assert_eq!(
        (doc.body.action.as_str(), doc.body.lock.id.as_str()),
        ("force_unlock", id)
    );

    let out = bed.run(&["--force-unlock", id, "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not locked"), "{err}");
    let out = bed.run(&["--restore", &oldest, "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
