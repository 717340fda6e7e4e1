//! restore-tfstate, injected faults (refused or cut connections, a server gone mid-write, children
//! killed or timing out, a full disk, signals at random points, concurrent runs): each case ends
//! with a clear error or a complete result, and leaves nothing half-written behind.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::s3bed::{KEY, S3Bed};
use crate::support::faults::gone;
use crate::support::faults::mode;
use crate::support::faults::signal;
use crate::support::{self, Action, FaultProxy, Rng, fault, output_within, text, walk};

/// The restore's state write never reaches S3: the server "goes away" (every connection through the
/// proxy refused from then on) exactly when the tool sends the PUT of the state object.
#[test]
fn s3_gone_during_restore_keeps_the_old_latest_and_reports_the_lock() {
    let bed = S3Bed::new();
    let versions = bed.versions();
    let oldest = versions.last().unwrap().clone();
    let latest_before = bed.s3().get(KEY, None).unwrap();
    let proxy = FaultProxy::start(
        bed.server.port(),
        "PUT /tfstate/prod/terraform.tfstate?",
        Action::Cut(Box::new(|| {})),
    );
    let out = output_within(
        bed.cmd_at(&proxy.endpoint())
            .args(["--restore", &oldest, "--yes"]),
        Duration::from_secs(120),
    );
    fault();
    let err = text(&out.stderr);
    eprintln!("restore with S3 gone at the state write:\n{err}");
    assert_eq!(proxy.fired.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nothing was lost") && err.contains("save point"),
        "names the save point: {err}"
    );
    // Old latest intact, no new version.
    assert_eq!(bed.s3().get(KEY, None).unwrap(), latest_before);
    assert_eq!(bed.versions(), versions);
    // The save point holds the previous latest, private.
    let saved = walk(&bed.backups());
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(std::fs::read(&saved[0]).unwrap(), latest_before);
    assert_eq!(mode(&saved[0]), 0o600);
    // The lock could not be released (S3 is gone): it must be reported with the ID that
    // `terraform force-unlock` needs (regression: the message used to omit it).
    if bed.lock_held() {
        let lock: pve_tf::lock::LockInfo =
            serde_json::from_slice(&bed.s3().get(&format!("{KEY}.tflock"), None).unwrap()).unwrap();
        let id = &lock.id;
        assert!(
            err.contains(&format!("terraform force-unlock {id}")) && err.contains("tflock"),
            "held lock is reported with its ID {id}: {err}"
        );
    }
}

#[test]
fn s3_gone_while_taking_the_lock_or_listing_changes_nothing() {
    let bed = S3Bed::new();
    let versions = bed.versions();
    let oldest = versions.last().unwrap().clone();
    let latest_before = bed.s3().get(KEY, None).unwrap();
    for (trigger, args) in [
        (
            "PUT /tfstate/prod/terraform.tfstate.tflock",
            vec!["--restore", oldest.as_str(), "--yes"],
        ),
        ("GET /tfstate", vec!["--list", "--json"]),
        ("GET /tfstate", vec!["--list", "--details"]),
    ] {
        let proxy = FaultProxy::start(bed.server.port(), trigger, Action::Cut(Box::new(|| {})));
        let out = output_within(
            bed.cmd_at(&proxy.endpoint()).args(&args),
            Duration::from_secs(120),
        );
        fault();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("127.0.0.1:{}", proxy.port)),
            "{args:?}: names the endpoint: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: no partial output");
    }
    assert_eq!(bed.s3().get(KEY, None).unwrap(), latest_before);
    assert_eq!(bed.versions(), versions);
    assert!(!bed.lock_held());
}

#[test]
fn two_restores_at_once_one_wins_the_other_reports_the_lock() {
    let bed = S3Bed::new();
    let versions = bed.versions();
    let (v1, v2) = (versions[2].clone(), versions[1].clone());
    // A's state write is held back 3 s while A holds the lock; B starts meanwhile.
    let proxy = FaultProxy::start(
        bed.server.port(),
        "PUT /tfstate/prod/terraform.tfstate?",
        Action::Delay(Duration::from_secs(3)),
    );
    let a = bed
        .cmd_at(&proxy.endpoint())
        .args(["--restore", &v1, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bed.lock_held() {
        assert!(Instant::now() < deadline, "A never took the lock");
        thread::sleep(Duration::from_millis(20));
    }
    let b = bed.run(&["--restore", &v2, "--yes"]);
    fault();
    let a = a.wait_with_output().unwrap();
    let (ea, eb) = (text(&a.stderr), text(&b.stderr));
    assert!(a.status.success(), "A: {ea}");
    assert_eq!(b.status.code(), Some(75), "B: {eb}");
    assert!(eb.contains("lock"), "B names the lock: {eb}");
    assert_eq!(bed.latest()["serial"], 4, "A's restore is the new latest");
    assert_eq!(
        bed.latest()["resources"][0]["instances"][0]["attributes"]["input"]["memory"],
        1024
    );
    assert!(!bed.lock_held());
}

/// Waits (at most 60 s) until `done` holds.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The proxy has held back its request.
pub fn fired(proxy: &FaultProxy) -> bool {
    proxy.fired.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// restore-tfstate restoring the oldest version of `bed` through `endpoint` with `args` added, started.
pub fn start_restore(bed: &S3Bed, endpoint: &str, args: &[&OsStr]) -> std::process::Child {
    let oldest = bed.versions().last().unwrap().clone();
    bed.cmd_at(endpoint)
        .args(["--restore", &oldest, "--yes"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Interrupted while it holds Terraform's state lock and has written nothing (its read of the current
/// state held back by the proxy): restore-tfstate releases the lock itself, exits 130 at once and says
/// nothing was restored. Before, SIGTERM killed it with the lock left in S3 (every later plan or apply
/// failed until `terraform force-unlock`).
#[test]
fn restore_tfstate_interrupted_holding_the_lock_releases_it() {
    let bed = S3Bed::new();
    let versions = bed.versions();
    let latest_before = bed.s3().get(KEY, None).unwrap();
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGINT, "INT")] {
        // 1st GET of the state object: the chosen version; 2nd: the current state, under the lock.
        let proxy = FaultProxy::start_at(
            bed.server.port(),
            "GET /tfstate/prod/terraform.tfstate?",
            2,
            Action::Delay(Duration::from_secs(20)),
        );
        let child = start_restore(&bed, &proxy.endpoint(), &[]);
        wait_until("the current state was never read", || fired(&proxy));
        assert!(bed.lock_held(), "SIG{name}: the lock is held at this point");
        let sent = Instant::now();
        signal(child.id(), sig);
        let out = support::wait_within(child, Duration::from_secs(15), "restore-tfstate");
        let err = text(&out.stderr);
        eprintln!(
            "SIG{name} under the lock, exit after {:?}:\n{err}",
            sent.elapsed()
        );
        assert_eq!(out.status.code(), Some(130), "SIG{name}: {err}");
        assert!(
            err.contains(&format!("interrupted by SIG{name}"))
                && err.contains("nothing was restored")
                && err.contains("released the state lock"),
            "SIG{name}: {err}"
        );
        assert!(out.stdout.is_empty(), "SIG{name}: no document");
        assert!(!bed.lock_held(), "SIG{name}: lock released");
        assert_eq!(bed.s3().get(KEY, None).unwrap(), latest_before);
        assert_eq!(bed.versions(), versions);
    }
}

/// `out.stdout` is empty or one whole `pve-tfstate/v1` document.
pub fn no_half_document(out: &std::process::Output, what: &str) {
    if !out.stdout.is_empty() {
        // The raw document on purpose: what is checked is that it is whole, whatever its action.
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{what}: half a document ({e}): {}", text(&out.stdout)));
        assert_eq!(doc["schema"], "pve-tfstate/v1", "{what}");
    }
}

/// Interrupted while the restored state is being written (the PUT held back 2 s): the write and the
/// release of the lock finish first, then exit 130 naming what was written. Never half a restore.
#[test]
fn restore_tfstate_interrupted_during_the_write_finishes_it_first() {
    let bed = S3Bed::new();
    let versions = bed.versions();
    let proxy = FaultProxy::start(
        bed.server.port(),
        "PUT /tfstate/prod/terraform.tfstate?",
        Action::Delay(Duration::from_secs(2)),
    );
    let child = start_restore(&bed, &proxy.endpoint(), &["--json".as_ref()]);
    wait_until("the state was never written", || fired(&proxy));
    signal(child.id(), libc::SIGTERM);
    let out = support::wait_within(child, Duration::from_secs(30), "restore-tfstate");
    let err = text(&out.stderr);
    eprintln!("SIGTERM during the write:\n{err}");
    // The exit comes when the write and the release are done: normally at once (130), but if the report
    // was already being printed it is printed whole first, and the run may even end normally (0).
    match out.status.code() {
        Some(130) => assert!(
            err.contains("interrupted by SIGTERM") && err.contains("had been restored as serial 4"),
            "{err}"
        ),
        Some(0) => assert!(!out.stdout.is_empty(), "{err}"),
        other => panic!("exit {other:?}: {err}"),
    }
    no_half_document(&out, "SIGTERM during the write");
    assert!(!bed.lock_held());
    let latest = bed.latest();
    assert_eq!(latest["serial"], 4, "the write finished");
    assert_eq!(
        latest["resources"][0]["instances"][0]["attributes"]["input"]["memory"],
        1024
    );
    assert_eq!(bed.versions().len(), versions.len() + 1);
}

/// A fake `terraform` in `dir` running `body` for `init` and `plan` (`version` answers at once). `$d` in
/// the body is `dir`.
pub fn fake_terraform(dir: &Path, body: &str) -> PathBuf {
    let fake = dir.join("terraform");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nd={}\ncase \"$1\" in version|-version|--version) echo 'Terraform v1.11.4'; exit 0;; esac\n{body}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fake
}

/// restore-tfstate `--verify-plan` with `fake` as Terraform, started; returns once the fake has written
/// `$d/started`.
pub fn start_verify_plan(bed: &S3Bed, dir: &Path, fake: &Path) -> std::process::Child {
    let child = start_restore(
        bed,
        &bed.server.endpoint(),
        &[
            "--verify-plan".as_ref(),
            "--terraform-bin".as_ref(),
            fake.as_os_str(),
        ],
    );
    wait_until("the fake terraform never started", || {
        dir.join("started").exists()
    });
    child
}

/// Waits until the fake's `sleep <token>` has been exec'd. The fake writes `started` right after forking
/// it, so the fork may still be a shell then: a single look right away once failed a loaded run.
pub fn grandchild_runs(token: &str) {
    wait_until("the grandchild never started", || {
        !support::processes_with(token).is_empty()
    });
}

/// A Terraform child (restore-tfstate `--verify-plan`'s `terraform init`, a fake that runs a grandchild
/// and records SIGINT) is stopped with its whole process group when the tool gets SIGTERM: before, the
/// tool exited 130 and Terraform and its providers ran on as orphans.
#[test]
fn children_are_stopped_with_the_tool() {
    let bed = S3Bed::new();
    let dir = tempfile::tempdir().unwrap();
    // A duration no other process uses: the grandchild's command line is `sleep 299.<our pid>`.
    let token = format!("299.{}", std::process::id());
    let fake = fake_terraform(
        dir.path(),
        &format!(
            "trap 'echo int > $d/got-sigint; exit 130' INT\n\
             sleep {token} &\n\
             echo started > $d/started\n\
             wait"
        ),
    );
    let child = start_verify_plan(&bed, dir.path(), &fake);
    grandchild_runs(&token);
    signal(child.id(), libc::SIGTERM);
    let out = support::wait_within(child, Duration::from_secs(20), "restore-tfstate");
    let err = text(&out.stderr);
    eprintln!("SIGTERM during terraform init:\n{err}");
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted by SIGTERM") && err.contains("had been restored as serial 4"),
        "{err}"
    );
    assert!(
        dir.path().join("got-sigint").exists(),
        "Terraform got SIGINT"
    );
    gone(&token, "the grandchild outlived the tool");
    assert!(!bed.lock_held());
}

/// SIGTERM/SIGINT at random points of restore-tfstate `--restore --json` (each S3 request slowed by the
/// proxy's 0.3 s hold of the state write): exit 0 or 130 only; never a lock left in S3, never half a state
/// (the latest always parses with the bed's lineage, one new version per finished restore), never half a
/// document on stdout, the save points whole.
#[test]
fn restore_tfstate_signals_at_random_points_leave_no_lock_and_no_half_state() {
    let bed = S3Bed::new();
    let lineage = bed.latest()["lineage"].clone();
    let mut rng = Rng::new(0x5EED_0017);
    let runs = 12;
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..runs {
        let before = bed.versions().len();
        let proxy = FaultProxy::start(
            bed.server.port(),
            "PUT /tfstate/prod/terraform.tfstate?",
            Action::Delay(Duration::from_millis(300)),
        );
        let child = start_restore(&bed, &proxy.endpoint(), &["--json".as_ref()]);
        // At least 30 ms: before `main` installs the handler the default action applies (RELIABILITY.md).
        let delay = Duration::from_millis(30 + u64::try_from(rng.below(900)).unwrap());
        thread::sleep(delay);
        let sig = if i % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        signal(child.id(), sig);
        let out = support::wait_within(child, Duration::from_secs(30), "restore-tfstate");
        let (code, err) = (out.status.code(), text(&out.stderr));
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
        assert!(
            matches!(code, Some(0 | 130)),
            "run {i} ({delay:?}, signal {sig}): {:?}\n{err}",
            out.status
        );
        no_half_document(&out, &format!("run {i}"));
        assert!(!bed.lock_held(), "run {i}: lock left in S3\n{err}");
        let latest = bed.latest();
        assert_eq!(
            latest["lineage"], lineage,
            "run {i}: the latest is a whole state"
        );
        let after = bed.versions().len();
        assert!(
            after == before || after == before + 1,
            "run {i}: {before} -> {after}"
        );
        if code == Some(0) || err.contains("had been restored") {
            assert_eq!(
                after,
                before + 1,
                "run {i}: a finished restore is one new version\n{err}"
            );
        }
        for saved in walk(&bed.backups()) {
            let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap())
                .unwrap_or_else(|e| panic!("run {i}: half a save point {saved:?}: {e}"));
            assert_eq!(state["lineage"], lineage);
        }
    }
    eprintln!("restore-tfstate signal loop: {runs} runs, exit codes {codes:?}");
}

/// After SIGINT a child that changes things (here `terraform init`, run as a mutating step) is waited for
/// however long it takes to stop (12 s, past the 10 s grace), never killed; a read-only one (`plan`) that
/// ignores SIGINT is killed with its group after the grace.
#[test]
fn a_mutating_child_is_waited_for_a_read_only_one_killed_after_the_grace() {
    for (step, patient) in [("init", true), ("plan", false)] {
        let bed = S3Bed::new();
        let dir = tempfile::tempdir().unwrap();
        let token = format!("298.{}{}", std::process::id(), u8::from(patient));
        let fake = fake_terraform(
            dir.path(),
            &format!(
                "[ \"$1\" = {step} ] || exit 0\n\
                 {}\n\
                 sleep {token} &\n\
                 echo started > $d/started\n\
                 wait\n\
                 echo finished > $d/finished",
                if patient {
                    // Stops cleanly, slowly: 12 s of "writing state" after SIGINT.
                    "trap 'sleep 12; echo finished > $d/finished; exit 130' INT"
                } else {
                    "trap '' INT"
                }
            ),
        );
        let child = start_verify_plan(&bed, dir.path(), &fake);
        grandchild_runs(&token);
        let sent = Instant::now();
        signal(child.id(), libc::SIGTERM);
        let out = support::wait_within(child, Duration::from_secs(40), "restore-tfstate");
        let (took, err) = (sent.elapsed(), text(&out.stderr));
        eprintln!("{step}: exit after {took:?}\n{err}");
        assert_eq!(out.status.code(), Some(130), "{step}: {err}");
        assert!(took >= Duration::from_secs(10), "{step}: {took:?}");
        if patient {
            assert!(dir.path().join("finished").exists(), "init was let finish");
            assert!(err.contains("waiting for it"), "{err}");
        } else {
            assert!(!dir.path().join("finished").exists(), "plan was killed");
            assert!(err.contains("killing it"), "{err}");
            assert!(took < Duration::from_secs(20), "{took:?}");
        }
        gone(&token, &format!("{step}: the grandchild outlived the tool"));
    }
}
