//! Injected faults: refused and cut ssh connections, an S3 server gone mid-write, Terraform killed or
//! timing out mid-plan, a full disk, signals at random points, concurrent runs, a cut network link.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use check_drift::report::Status;
use check_drift::terraform::ErrorKind;
use pve_common::retry::{RetryPolicy, Sleeper};
use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshError, SshOptions, SshTarget, TransportKind};
use testbed::sshd::Sshd;

use crate::s3bed::{KEY, S3Bed};
use crate::support::{
    self, Action, FaultProxy, Rng, Tmpfs, drift_fixtures, fault, output_within, text, walk,
};

/// Records the delays instead of sleeping.
#[derive(Clone, Default)]
struct FakeSleeper(Arc<Mutex<Vec<Duration>>>);

impl Sleeper for FakeSleeper {
    fn sleep(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }
}

fn ssh_options(sshd: &Sshd, kind: TransportKind) -> SshOptions {
    SshOptions {
        transport: kind,
        config_file: Some(sshd.ssh_config()),
        known_hosts: Some(sshd.known_hosts()),
        use_agent: false,
        default_identities: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(30)),
        retry: RetryPolicy {
            attempts: 3,
            ..RetryPolicy::default()
        },
        ..SshOptions::default()
    }
}

const KINDS: [TransportKind; 2] = [TransportKind::Libssh2, TransportKind::OpenSsh];

#[test]
fn sshd_refusing_the_first_two_connections_is_retried_and_succeeds() {
    let sshd = Sshd::start().unwrap();
    for kind in KINDS {
        let runner = Runner::new(false);
        let sleeper = FakeSleeper::default();
        let mut client = SshClient::new(
            &runner,
            &SshTarget::new(sshd.alias()),
            ssh_options(&sshd, kind),
        )
        .unwrap()
        .with_sleeper(Box::new(sleeper.clone()));
        sshd.refuse_next(2);
        fault();
        fault();
        let out = client
            .ssh_exec_retry(&RemoteCommand::read_only("echo").arg("ok"))
            .unwrap()
            .unwrap();
        assert_eq!(out.stdout_text().trim(), "ok", "{kind:?}");
        assert_eq!(sleeper.0.lock().unwrap().len(), 2, "{kind:?}: two retries");
    }
}

#[test]
fn sshd_refusing_every_connection_fails_clearly_after_three_attempts() {
    let sshd = Sshd::start().unwrap();
    for kind in KINDS {
        let runner = Runner::new(false);
        let sleeper = FakeSleeper::default();
        let mut client = SshClient::new(
            &runner,
            &SshTarget::new(sshd.alias()),
            ssh_options(&sshd, kind),
        )
        .unwrap()
        .with_sleeper(Box::new(sleeper.clone()));
        let before = sshd.connections();
        sshd.refuse_next(1000);
        let err = client.check_ssh_access().unwrap_err();
        sshd.refuse_next(0);
        let msg = format!("{err:#}");
        let attempts = sshd.connections() - before;
        for _ in 0..attempts {
            fault();
        }
        assert_eq!(attempts, 3, "{kind:?}: {msg}");
        assert!(matches!(err, SshError::GaveUp { attempts: 3, .. }), "{msg}");
        assert!(
            msg.contains("3") && msg.contains(&sshd.port().to_string()),
            "{kind:?}: names attempts and port: {msg}"
        );
        assert_eq!(sleeper.0.lock().unwrap().len(), 2);
    }
}

#[test]
fn connection_cut_during_a_listing_is_retried() {
    // A listing of 150 lines over ~1.5 s; the connection is cut after ~0.4 s.
    let sshd = Sshd::start().unwrap();
    for kind in KINDS {
        let runner = Runner::new(false);
        let mut client = SshClient::new(
            &runner,
            &SshTarget::new(sshd.alias()),
            ssh_options(&sshd, kind),
        )
        .unwrap()
        .with_sleeper(Box::new(FakeSleeper::default()));
        client.connect().unwrap();
        let listing = RemoteCommand::read_only("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 150 ]; do echo vm-$i; i=$((i+1)); sleep 0.01; done",
            ])
            .idempotent();
        let before = sshd.connections();
        let cutter = {
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let d = done.clone();
            let sshd_port = sshd.port();
            let handle = thread::spawn(move || {
                thread::sleep(Duration::from_millis(400));
                !d.load(std::sync::atomic::Ordering::SeqCst) && sshd_port > 0
            });
            (done, handle)
        };
        // The cut must come from the harness thread that owns `sshd`.
        let start = Instant::now();
        let result = thread::scope(|s| {
            let h = s.spawn(|| client.ssh_exec_retry(&listing));
            while start.elapsed() < Duration::from_millis(400) {
                thread::sleep(Duration::from_millis(10));
            }
            sshd.cut_connections();
            fault();
            h.join().unwrap()
        });
        cutter.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = cutter.1.join();
        let out = result.unwrap().unwrap();
        let lines: Vec<_> = out.stdout_text().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 150, "{kind:?}: complete listing after retry");
        assert_eq!(lines[149], "vm-149");
        assert!(
            sshd.connections() > before,
            "{kind:?}: reconnected after the cut"
        );
    }
}

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

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A private root with environments `names` (check-drift's `basic` fixture), its TMPDIR and run lock.
struct DriftBed {
    dir: tempfile::TempDir,
}

impl DriftBed {
    fn new(names: &[&str]) -> DriftBed {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let env = dir.path().join("envs").join(name);
            std::fs::create_dir_all(&env).unwrap();
            for f in ["main.tf", "terraform.tfstate"] {
                std::fs::copy(drift_fixtures().join("envs/basic").join(f), env.join(f)).unwrap();
            }
        }
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        DriftBed { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn cmd(&self) -> Command {
        let mut cmd = support::tool("check-drift");
        cmd.arg("--root")
            .arg(self.path("envs"))
            .arg("--lock-file")
            .arg(self.path("run.lock"))
            .env("TMPDIR", self.path("tmp"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        cmd
    }
    fn fake_cmd(&self) -> Command {
        let mut cmd = self.cmd();
        cmd.arg("--terraform-bin")
            .arg(drift_fixtures().join("fake-terraform.sh"))
            .env("FAKE_TF_LOG", self.path("tf.log"))
            .env("FAKE_TF_STATE_LOCK", self.path("state.lock"))
            .env("FAKE_TF_MARK", self.path("mark"))
            .env(
                "FAKE_TF_SHOW_JSON",
                drift_fixtures().join("plans/bpg_mixed.json"),
            );
        cmd
    }
    fn run_lock_is_free(&self) -> bool {
        match File::options()
            .read(true)
            .write(true)
            .open(self.path("run.lock"))
        {
            Ok(f) => f.try_lock().is_ok(),
            Err(_) => true,
        }
    }
}

/// check-drift's `--json` report, decoded.
fn report(out: &std::process::Output) -> check_drift::report::Report {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn terraform_timing_out_mid_plan_is_interrupted_lock_released_status_timeout() {
    let bed = DriftBed::new(&["prod"]);
    let out = output_within(
        bed.fake_cmd()
            .args(["--json", "--timeout", "2s"])
            .env("FAKE_TF_MODE", "hang")
            .env("PVE_DRIFT_KILL_GRACE", "3s"),
        Duration::from_secs(60),
    );
    fault();
    let doc = report(&out);
    let env = &doc.environments[0];
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(env.status, Status::Error);
    assert_eq!(
        env.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Timeout),
        "{env:#?}"
    );
    assert!(
        !bed.path("state.lock").exists(),
        "Terraform got SIGINT and released its state lock"
    );
    assert_eq!(
        std::fs::read_to_string(bed.path("mark")).unwrap().trim(),
        "sigint"
    );
    assert!(walk(&bed.path("tmp")).is_empty(), "no plan file left");
    // The next plan works.
    let again = output_within(bed.fake_cmd().arg("--json"), Duration::from_secs(60));
    assert_eq!(report(&again).environments[0].status, Status::Drift);
    assert!(bed.run_lock_is_free());
}

#[test]
fn real_terraform_killed_mid_plan_then_the_next_plan_works() {
    let bed = DriftBed::new(&["prod"]);
    // Warm up: init once so the killed run is in `plan` quickly.
    let first = output_within(bed.cmd().arg("--json"), Duration::from_secs(120));
    assert!(
        matches!(first.status.code(), Some(0 | 1)),
        "{}",
        text(&first.stderr)
    );
    let child = bed
        .cmd()
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Find `terraform plan` and kill it with SIGKILL (no chance to clean up).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    while !killed && Instant::now() < deadline {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let line = text(&raw).replace('\0', " ");
            if line.contains("terraform plan")
                && line.contains(&bed.path("tmp").display().to_string())
            {
                let pid: u32 = entry.file_name().to_str().unwrap().parse().unwrap();
                support::kill(pid, libc::SIGKILL);
                killed = true;
                fault();
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(killed, "never saw terraform plan running");
    let doc = report(&out);
    assert_eq!(doc.environments[0].status, Status::Error, "{doc:#?}");
    assert_eq!(out.status.code(), Some(2));
    assert!(walk(&bed.path("tmp")).is_empty(), "no plan file left");
    let again = output_within(bed.cmd().arg("--json"), Duration::from_secs(120));
    let doc = report(&again);
    assert_ne!(doc.environments[0].status, Status::Error, "{doc:#?}");
    assert!(bed.run_lock_is_free());
}

#[test]
fn disk_full_while_writing_keeps_the_old_file_and_says_so() {
    let Some(fs) = Tmpfs::mount("size=64k,mode=0755") else {
        eprintln!("not root: tmpfs cannot be mounted; case skipped");
        return;
    };
    let runner = Runner::new(false);
    let file = fs.path().join("pve_drift.prom");
    let old = b"pve_drift_status{env=\"prod\"} 0\n".repeat(100);
    runner.write_file(&file, &old, 0o640).unwrap();
    let big = vec![b'x'; 200 * 1024];
    let e = runner.write_file(&file, &big, 0o640).unwrap_err();
    fault();
    let msg = format!("{e:#}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(format!("{e:?}").contains("StorageFull"), "{e:?}");
    assert_eq!(std::fs::read(&file).unwrap(), old, "old file intact");
    assert_eq!(
        walk(fs.path()).len(),
        1,
        "no temp file left: {:?}",
        walk(fs.path())
    );
    assert_eq!(mode(&file), 0o640);
}

#[test]
fn signals_at_random_points_leave_no_partial_file_and_no_stale_lock() {
    let bed = DriftBed::new(&["prod", "lab", "dev"]);
    let mut rng = Rng::new(0x5EED_0012);
    let iterations = 24;
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..iterations {
        let child = bed
            .fake_cmd()
            .args(["--json", "--jobs", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(u64::try_from(rng.below(400)).unwrap());
        thread::sleep(delay);
        let sig = if i % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        support::kill(child.id(), sig);
        fault();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
        assert!(
            matches!(code, Some(0 | 1 | 2 | 130)) || code.is_none(),
            "iteration {i} ({delay:?}, signal {sig}): exit {code:?}: {}",
            text(&out.stderr)
        );
        if !out.stdout.is_empty() {
            // The raw document on purpose: what is checked is that a signal never leaves half of one.
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("iteration {i}: partial JSON ({e}): {}", text(&out.stdout))
            });
            assert_eq!(doc["schema"], "pve-drift/v1");
        }
        assert!(
            walk(&bed.path("tmp")).is_empty(),
            "iteration {i}: left in TMPDIR: {:?}",
            walk(&bed.path("tmp"))
        );
        assert!(bed.run_lock_is_free(), "iteration {i}: run lock still held");
        // No stray Terraform keeps running after the tool has gone.
        assert!(!bed.path("state.lock").exists());
    }
    eprintln!("signal loop: {iterations} runs, exit codes {codes:?}");
    let out = output_within(bed.fake_cmd().arg("--json"), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "a normal run afterwards works");
}

#[test]
fn two_check_drift_runs_at_once_the_second_exits_75() {
    let bed = DriftBed::new(&["prod"]);
    let first = bed
        .fake_cmd()
        .env("FAKE_TF_MODE", "hang")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bed.path("state.lock").exists() {
        assert!(Instant::now() < deadline, "first run never reached plan");
        thread::sleep(Duration::from_millis(20));
    }
    let second = output_within(&mut bed.fake_cmd(), Duration::from_secs(30));
    fault();
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&bed.path("run.lock").display().to_string()),
        "{err}"
    );
    support::kill(first.id(), libc::SIGINT);
    let mut first = first;
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(bed.run_lock_is_free());
}

/// Writes a valid plan JSON of about `mb` MiB, streaming (never held in memory here): no-op resource
/// changes with 1 KiB attribute values, plus one real update at the end.
fn write_big_plan(path: &Path, mb: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(File::create(path).unwrap());
    w.write_all(br#"{"format_version":"1.2","terraform_version":"1.11.4","resource_changes":["#)
        .unwrap();
    let pad = "p".repeat(1000);
    let entry_len = 2150;
    let n = mb * 1024 * 1024 / entry_len;
    for i in 0..n {
        write!(
            w,
            r#"{{"address":"terraform_data.r{i}","mode":"managed","type":"terraform_data","name":"r{i}","change":{{"actions":["no-op"],"before":{{"input":"{pad}"}},"after":{{"input":"{pad}"}}}}}},"#
        )
        .unwrap();
    }
    w.write_all(br#"{"address":"terraform_data.vm","mode":"managed","type":"terraform_data","name":"vm","change":{"actions":["update"],"before":{"input":"a"},"after":{"input":"b"}}}]}"#)
        .unwrap();
    w.flush().unwrap();
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A huge plan JSON (`HOSTILE_PLAN_MB`, default 16 MiB in CI; 1024 for the 1 GB case in RELIABILITY.md):
/// the run ends with a report or a clear error, and the tool's peak memory is measured and bounded.
#[test]
fn huge_plan_json_is_handled_with_bounded_memory() {
    let mb: usize = std::env::var("HOSTILE_PLAN_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let bed = DriftBed::new(&["prod"]);
    let plan = bed.path("big-plan.json");
    let started = Instant::now();
    write_big_plan(&plan, mb);
    let size = std::fs::metadata(&plan).unwrap().len();
    let written = started.elapsed();
    let mut child = bed
        .fake_cmd()
        .arg("--json")
        .env("FAKE_TF_SHOW_JSON", &plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    let mut out_reader = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out_reader, &mut v).unwrap();
        v
    });
    let mut err_reader = child.stderr.take().unwrap();
    let err_thread = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err_reader, &mut v).unwrap();
        v
    });
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "check-drift did not finish on a {mb} MiB plan"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stdout = reader.join().unwrap();
    let stderr = err_thread.join().unwrap();
    let peak_mib = peak / 1024;
    eprintln!(
        "huge plan: {} MiB written in {written:?}; check-drift exit {:?} after {elapsed:?}, peak RSS {peak_mib} MiB \
         ({:.1}x the plan)",
        size / 1024 / 1024,
        status.code(),
        peak as f64 * 1024.0 / size as f64
    );
    assert!(matches!(status.code(), Some(1 | 2)), "{}", text(&stderr));
    if status.code() == Some(1) {
        let doc: check_drift::report::Report = serde_json::from_slice(&stdout).unwrap();
        assert_eq!(
            doc.environments[0].counts.update, 1,
            "{:#?}",
            doc.environments[0]
        );
    }
    // Bounded: at most 6x the plan (read buffer + copy + parsed tree) plus 64 MiB.
    assert!(
        peak * 1024 < size * 6 + 64 * 1024 * 1024,
        "peak RSS {peak_mib} MiB for a {} MiB plan",
        size / 1024 / 1024
    );
    assert!(walk(&bed.path("tmp")).is_empty());
}

/// Sends `signal` to `pid` alone (not its group: as `kill <pid>` or `systemctl stop` with `KillMode=mixed`).
fn signal(pid: u32, signal: i32) {
    support::kill(pid, signal);
    fault();
}

/// Waits (at most 60 s) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The proxy has held back its request.
fn fired(proxy: &FaultProxy) -> bool {
    proxy.fired.load(std::sync::atomic::Ordering::SeqCst) > 0
}

/// restore-tfstate restoring the oldest version of `bed` through `endpoint` with `args` added, started.
fn start_restore(bed: &S3Bed, endpoint: &str, args: &[&OsStr]) -> std::process::Child {
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
fn no_half_document(out: &std::process::Output, what: &str) {
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
fn fake_terraform(dir: &Path, body: &str) -> PathBuf {
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
fn start_verify_plan(bed: &S3Bed, dir: &Path, fake: &Path) -> std::process::Child {
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
fn grandchild_runs(token: &str) {
    wait_until("the grandchild never started", || {
        !support::processes_with(token).is_empty()
    });
}

/// Waits (at most 5 s) until no process has `token` among its arguments.
fn gone(token: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !support::processes_with(token).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}",
            support::processes_with(token)
        );
        thread::sleep(Duration::from_millis(20));
    }
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
