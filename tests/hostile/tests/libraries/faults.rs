//! The libraries (pve-common, pve-ssh, pve-tf, pve-restore), injected faults (refused or cut
//! connections, a server gone mid-write, children killed or timing out, a full disk, signals at
//! random points, concurrent runs): each case ends with a clear error or a complete result, and
//! leaves nothing half-written behind.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pve_common::retry::{RetryPolicy, Sleeper};
use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshError, SshOptions, SshTarget, TransportKind};
use testbed::sshd::Sshd;

use crate::support::faults::mode;
use crate::support::{Tmpfs, fault, walk};

/// Records the delays instead of sleeping.
#[derive(Clone, Default)]
pub struct FakeSleeper(Arc<Mutex<Vec<Duration>>>);

impl Sleeper for FakeSleeper {
    fn sleep(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }
}

pub fn ssh_options(sshd: &Sshd, kind: TransportKind) -> SshOptions {
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

pub const KINDS: [TransportKind; 2] = [TransportKind::Libssh2, TransportKind::OpenSsh];

/// A client of `sshd` over `kind` whose retries wait on the returned sleeper, which records them.
fn client<'r>(
    runner: &'r Runner,
    sshd: &Sshd,
    kind: TransportKind,
) -> (SshClient<'r>, FakeSleeper) {
    let sleeper = FakeSleeper::default();
    let client = SshClient::new(
        runner,
        &SshTarget::new(sshd.alias()),
        ssh_options(sshd, kind),
    )
    .unwrap()
    .with_sleeper(Box::new(sleeper.clone()));
    (client, sleeper)
}

#[test]
fn sshd_refusing_the_first_two_connections_is_retried_and_succeeds() {
    let sshd = Sshd::start().unwrap();
    for kind in KINDS {
        let runner = Runner::new(false);
        let (mut client, sleeper) = client(&runner, &sshd, kind);
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
        let (mut client, sleeper) = client(&runner, &sshd, kind);
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
        let (mut client, _) = client(&runner, &sshd, kind);
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
