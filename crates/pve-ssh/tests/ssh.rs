//! `pve_ssh` against a real sshd on loopback (`testbed::sshd`), for both transports.
//!
//! Each test starts its own sshd (about 100 ms) so tests can run in parallel and fault knobs do not leak.
//! Retries use a fake sleeper: no test sleeps for a backoff.

// Test helpers are plain functions shared by the `#[test]` wrappers; a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pve_common::log;
use pve_common::retry::{Sleeper, Transient};
use pve_common::runner::Runner;
use pve_ssh::{LineSink, RemoteCommand, SshClient, SshError, SshOptions, SshTarget, TransportKind};
use testbed::sshd::{SshAgent, Sshd, keygen, keygen_with_passphrase};

/// Records the delays instead of sleeping.
#[derive(Clone, Default)]
struct FakeSleeper(Arc<Mutex<Vec<Duration>>>);

impl Sleeper for FakeSleeper {
    fn sleep(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }
}

impl FakeSleeper {
    fn delays(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

/// Options reaching `sshd` through its `Host` alias, no agent, short timeouts.
fn options(sshd: &Sshd, kind: TransportKind) -> SshOptions {
    SshOptions {
        transport: kind,
        config_file: Some(sshd.ssh_config()),
        known_hosts: Some(sshd.known_hosts()),
        use_agent: false,
        default_identities: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(30)),
        ..SshOptions::default()
    }
}

fn client<'r>(runner: &'r Runner, sshd: &Sshd, kind: TransportKind) -> SshClient<'r> {
    SshClient::new(runner, &SshTarget::new(sshd.alias()), options(sshd, kind)).unwrap()
}

fn echo(text: &str) -> RemoteCommand {
    RemoteCommand::read_only("printf").args(["%s", text])
}

fn stdout_of(client: &mut SshClient<'_>, cmd: &RemoteCommand) -> String {
    client.ssh_exec(cmd).unwrap().unwrap().stdout_text()
}

/// Runs a test body once per transport, as two tests.
macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn libssh2() {
                super::$name(pve_ssh::TransportKind::Libssh2);
            }
            #[test]
            fn openssh() {
                super::$name(pve_ssh::TransportKind::OpenSsh);
            }
        }
    )*};
}

both_transports!(
    key_auth_through_ssh_config,
    agent_auth_without_key_file,
    unknown_host_key_is_refused,
    hashed_known_hosts_after_marker_lines,
    changed_host_key_is_refused,
    accept_new_adds_unknown_key_but_never_a_changed_one,
    one_connection_for_ten_commands,
    command_timeout_fails_fast,
    refused_first_connection_is_retried,
    exit_status_and_stderr_are_kept,
    large_output_streams_without_deadlock,
    arguments_arrive_verbatim,
    stdin_is_fed_then_closed,
    dry_run_skips_mutating_but_runs_read_only,
    check_ssh_access_names_host_port_user_and_cause,
    dropped_session_reconnects_on_next_command,
    restarted_sshd_is_reconnected_transparently,
    silent_link_is_a_dropped_session_after_keepalives,
    non_idempotent_failure_is_not_retried,
);

fn key_auth_through_ssh_config(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    // known_hosts comes from the config's UserKnownHostsFile here.
    let opts = SshOptions {
        known_hosts: None,
        ..options(&sshd, kind)
    };
    let mut c = SshClient::new(&runner, &SshTarget::new(sshd.alias()), opts).unwrap();
    assert_eq!(c.endpoint().host, "127.0.0.1");
    assert_eq!(c.endpoint().port, sshd.port());
    assert_eq!(c.endpoint().user, sshd.user());
    c.connect().unwrap();
    c.check_ssh_access().unwrap();
    let who = stdout_of(&mut c, &RemoteCommand::read_only("id").arg("-un"));
    assert_eq!(who.trim(), sshd.user());
    assert_eq!(sshd.logins(), 1);
}

fn agent_auth_without_key_file(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let agent = SshAgent::start().unwrap();
    agent.add(&sshd.client_key()).unwrap();
    // A config with no IdentityFile at all, and no default identities: only the agent can log in.
    let config = sshd.dir().join("agent_config");
    std::fs::write(
        &config,
        format!(
            "Host agent-only\n  HostName 127.0.0.1\n  Port {}\n  User {}\n",
            sshd.port(),
            sshd.user()
        ),
    )
    .unwrap();
    let runner = Runner::new(false);
    let target = SshTarget::new("agent-only");
    let with_agent = SshOptions {
        config_file: Some(config),
        use_agent: true,
        agent_socket: Some(agent.socket()),
        ..options(&sshd, kind)
    };
    let mut c = SshClient::new(&runner, &target, with_agent.clone()).unwrap();
    assert_eq!(stdout_of(&mut c, &echo("via agent")), "via agent");
    drop(c);

    let without_agent = SshOptions {
        use_agent: false,
        ..with_agent
    };
    let mut c = SshClient::new(&runner, &target, without_agent).unwrap();
    let err = c.ssh_exec(&echo("x")).unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
    assert!(!err.is_transient());
}

fn unknown_host_key_is_refused(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let empty = sshd.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let (err, msg) = host_key_refusal(&sshd, kind, &empty);
    assert!(matches!(err, SshError::HostKeyUnknown { .. }), "{msg}");
    assert!(
        msg.contains(&format!("127.0.0.1 port {}", sshd.port())),
        "{msg}"
    );
    assert!(msg.contains("accept"), "{msg}");
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
}

/// Runs a command with `known_hosts`, which must refuse the sshd's key: the error names that key's
/// fingerprint, and nobody logged in.
fn host_key_refusal(sshd: &Sshd, kind: TransportKind, known_hosts: &Path) -> (SshError, String) {
    let runner = Runner::new(false);
    let opts = SshOptions {
        known_hosts: Some(known_hosts.to_owned()),
        ..options(sshd, kind)
    };
    let mut c = SshClient::new(&runner, &SshTarget::new(sshd.alias()), opts).unwrap();
    let err = c.ssh_exec(&echo("x")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&sshd.host_key_fingerprint().unwrap()), "{msg}");
    assert_eq!(sshd.logins(), 0);
    (err, msg)
}

fn hashed_known_hosts_after_marker_lines(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    // A user's file: a CA line first (libssh2's own reader would stop there), then hashed entries.
    let hashed = sshd.dir().join("hashed_known_hosts");
    std::fs::copy(sshd.known_hosts(), &hashed).unwrap();
    let status = duct::cmd!("ssh-keygen", "-H", "-f", &hashed)
        .stdout_null()
        .stderr_null()
        .run()
        .unwrap()
        .status;
    assert!(status.success());
    let entries = std::fs::read_to_string(&hashed).unwrap();
    assert!(entries.starts_with("|1|"), "{entries}");
    std::fs::write(
        &hashed,
        format!("@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQxcY+/ZPW6c/mEOmQ1pWEuu7PweC2469onk8p+H38r\n{entries}"),
    )
    .unwrap();
    let runner = Runner::new(false);
    let opts = SshOptions {
        known_hosts: Some(hashed),
        ..options(&sshd, kind)
    };
    let mut c = SshClient::new(&runner, &SshTarget::new(sshd.alias()), opts).unwrap();
    assert_eq!(stdout_of(&mut c, &echo("hashed")), "hashed");
}

/// A known_hosts that records another key for the sshd.
fn wrong_known_hosts(sshd: &Sshd) -> std::path::PathBuf {
    let other = sshd.dir().join("other_host_key");
    keygen(&other, "impostor").unwrap();
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut f = public.split_whitespace();
    let path = sshd.dir().join("wrong_known_hosts");
    std::fs::write(
        &path,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            sshd.port(),
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    path
}

fn changed_host_key_is_refused(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let wrong = wrong_known_hosts(&sshd);
    let (err, msg) = host_key_refusal(&sshd, kind, &wrong);
    assert!(matches!(err, SshError::HostKeyChanged { .. }), "{msg}");
    assert!(!err.is_transient());
}

fn accept_new_adds_unknown_key_but_never_a_changed_one(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let target = SshTarget::new(sshd.alias());

    let fresh = sshd.dir().join("fresh_known_hosts");
    let accept = SshOptions {
        known_hosts: Some(fresh.clone()),
        accept_new_host_key: true,
        ..options(&sshd, kind)
    };
    let mut c = SshClient::new(&runner, &target, accept.clone()).unwrap();
    assert_eq!(stdout_of(&mut c, &echo("first")), "first");
    drop(c);
    let recorded = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port())),
        "{recorded}"
    );
    // Now strict checking accepts it.
    let strict = SshOptions {
        accept_new_host_key: false,
        ..accept.clone()
    };
    let mut c = SshClient::new(&runner, &target, strict).unwrap();
    assert_eq!(stdout_of(&mut c, &echo("second")), "second");
    drop(c);

    // A changed key is refused even with accept-new, and the file is left alone.
    let wrong = wrong_known_hosts(&sshd);
    let before = std::fs::read_to_string(&wrong).unwrap();
    let changed = SshOptions {
        known_hosts: Some(wrong.clone()),
        ..accept
    };
    let mut c = SshClient::new(&runner, &target, changed).unwrap();
    let err = c.ssh_exec(&echo("x")).unwrap_err();
    assert!(matches!(err, SshError::HostKeyChanged { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&wrong).unwrap(), before);
}

fn one_connection_for_ten_commands(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    let started = Instant::now();
    for i in 0..10 {
        assert_eq!(stdout_of(&mut c, &echo(&format!("n{i}"))), format!("n{i}"));
    }
    let took = started.elapsed();
    assert_eq!(sshd.connections(), 1, "one TCP connection for 10 commands");
    assert_eq!(sshd.logins(), 1);
    // Our side costs little; a fresh connection per command would cost ~400 ms each (measured on
    // the loopback sshd).
    assert!(
        took < Duration::from_secs(3),
        "{kind:?}: 10 commands took {took:?}"
    );
}

fn command_timeout_fails_fast(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    c.connect().unwrap();
    let started = Instant::now();
    let err = c
        .ssh_exec(
            &RemoteCommand::read_only("sleep")
                .arg("30")
                .timeout(Duration::from_secs(1)),
        )
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SshError::CommandTimeout { .. }), "{err}");
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The client is still usable afterwards.
    assert_eq!(stdout_of(&mut c, &echo("after")), "after");
}

fn refused_first_connection_is_retried(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    sshd.refuse_next(1);
    let runner = Runner::new(false);
    let sleeper = FakeSleeper::default();
    let mut c = client(&runner, &sshd, kind).with_sleeper(Box::new(sleeper.clone()));
    let (result, lines) = log::capture(|| c.ssh_exec_retry(&echo("made it")));
    assert_eq!(result.unwrap().unwrap().stdout_text(), "made it");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("warning:"), "{lines:?}");
    assert!(lines[0].contains("attempt 1/3 failed"), "{lines:?}");
    assert!(lines[0].contains("retrying in 1s"), "{lines:?}");
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(1)]);
    assert_eq!(sshd.connections(), 2);
}

fn exit_status_and_stderr_are_kept(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    let cmd = RemoteCommand::read_only("sh").args(["-c", "echo out; echo 'lock held' >&2; exit 3"]);
    let out = c.ssh_exec_unchecked(&cmd).unwrap().unwrap();
    assert_eq!(out.exit_status, 3);
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "lock held\n");
    let err = c.ssh_exec(&cmd).unwrap_err();
    assert_eq!(err.exit_status(), Some(3));
    let msg = err.to_string();
    assert!(msg.contains("exit status 3"), "{msg}");
    assert!(msg.contains("lock held"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{}", sshd.port())), "{msg}");
    assert!(msg.contains("echo out"), "{msg}");
    assert!(!err.is_transient());
    // Secrets in the remote stderr are masked.
    pve_common::secret::register("hunter2-remote-secret");
    let leak = RemoteCommand::read_only("sh").args([
        "-c",
        "echo token=$0 >&2; exit 1",
        "hunter2-remote-secret",
    ]);
    let msg = c.ssh_exec(&leak).unwrap_err().to_string();
    assert!(!msg.contains("hunter2-remote-secret"), "{msg}");
}

/// Counts bytes instead of keeping them.
struct Counter(usize);
impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn large_output_streams_without_deadlock(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    // 20 MB on stdout with 4 MB on stderr interleaved: a reader that waits on one stream would stall.
    let script = "i=0; while [ $i -lt 4 ]; do head -c 1000000 /dev/zero >&2; \
                  head -c 5000000 /dev/zero; i=$((i+1)); done";
    let mut sink = Counter(0);
    let started = Instant::now();
    let out = c
        .ssh_exec_stream(
            &RemoteCommand::read_only("sh").args(["-c", script]),
            &mut sink,
        )
        .unwrap()
        .unwrap();
    assert_eq!(sink.0, 20_000_000);
    // stderr is read whole but kept only up to the bound (issue 23: remote output is bounded).
    assert_eq!(
        out.stderr.len(),
        4_000_000.min(pve_ssh::MAX_CAPTURED_STDERR)
    );
    assert!(out.stdout.is_empty(), "streamed, not kept");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "{kind:?}: 20 MB took {took:?}"
    );

    let mut lines = Vec::new();
    let mut sink = LineSink::new(|l: &str| lines.push(l.to_owned()));
    c.ssh_exec_stream(&RemoteCommand::read_only("seq").arg("3"), &mut sink)
        .unwrap();
    sink.finish();
    assert_eq!(lines, vec!["1", "2", "3"]);
}

fn arguments_arrive_verbatim(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    let marker = sshd.dir().join("x");
    for arg in [
        "$(id); rm -rf /tmp/x 'quote\"".to_owned(),
        format!("`touch {}`; $HOME * ? ~ \\ \t\nnext line", marker.display()),
        String::new(),
        "-n".to_owned(),
    ] {
        let cmd = RemoteCommand::read_only("printf").args(["%s|", &arg]);
        assert_eq!(stdout_of(&mut c, &cmd), format!("{arg}|"), "{cmd}");
    }
    assert!(!marker.exists(), "nothing was executed by the remote shell");
}

fn stdin_is_fed_then_closed(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    // Without stdin a command reading it gets end of file at once instead of hanging.
    let cat = RemoteCommand::read_only("cat").timeout(Duration::from_secs(5));
    assert_eq!(stdout_of(&mut c, &cat), "");
    assert_eq!(
        stdout_of(&mut c, &cat.clone().stdin("secret\n")),
        "secret\n"
    );
    // 8 MB through `cat`: output flows back while input is still being fed.
    let big: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut sink = Vec::new();
    c.ssh_exec_stream(&cat.clone().stdin(big.clone()), &mut sink)
        .unwrap();
    assert!(sink == big, "8 MB round trip differs");
    // A command that stops reading early does not make us fail.
    let head = RemoteCommand::read_only("head")
        .args(["-c", "3"])
        .stdin(big);
    assert_eq!(stdout_of(&mut c, &head).len(), 3);
}

fn dry_run_skips_mutating_but_runs_read_only(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(true);
    let mut c = client(&runner, &sshd, kind);
    let marker = sshd.dir().join("touched by dry-run");
    let touch = RemoteCommand::mutating("touch").arg(marker.display().to_string());
    let ((skipped, read), lines) = log::capture(|| {
        (
            c.ssh_exec(&touch).unwrap(),
            c.ssh_exec(&echo("still reads")).unwrap(),
        )
    });
    assert!(skipped.is_none());
    assert!(
        !marker.exists(),
        "dry-run must not run the mutating command"
    );
    assert_eq!(read.unwrap().stdout_text(), "still reads");
    assert_eq!(
        lines,
        vec![format!(
            "pve-tools: [dry-run] would run: touch '{}' (on {}@127.0.0.1:{})",
            marker.display(),
            sshd.user(),
            sshd.port()
        )]
    );
    assert_eq!(runner.skipped().len(), 1);
}

fn check_ssh_access_names_host_port_user_and_cause(kind: TransportKind) {
    // A port where nothing listens, held for the whole test: connection refused every time.
    let refused = testbed::ports::RefusedPort::new().unwrap();
    let port = refused.port();
    let runner = Runner::new(false);
    let sleeper = FakeSleeper::default();
    let opts = SshOptions {
        transport: kind,
        config_file: Some(Path::new("/dev/null").to_owned()),
        known_hosts: Some(Path::new("/dev/null").to_owned()),
        use_agent: false,
        default_identities: false,
        connect_timeout: Duration::from_secs(2),
        ..SshOptions::default()
    };
    let target = SshTarget::new("127.0.0.1").port(port).user("backup-user");
    let mut c = SshClient::new(&runner, &target, opts)
        .unwrap()
        .with_sleeper(Box::new(sleeper.clone()));
    let (result, lines) = log::capture(|| c.check_ssh_access());
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SshError::GaveUp { attempts: 3, .. }), "{msg}");
    assert!(msg.contains("host 127.0.0.1"), "{msg}");
    assert!(msg.contains(&format!("port {port}")), "{msg}");
    assert!(msg.contains("user backup-user"), "{msg}");
    assert!(msg.contains("3 attempts"), "{msg}");
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("attempt 2/3 failed"), "{lines:?}");
    assert_eq!(
        sleeper.delays(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
}

fn dropped_session_reconnects_on_next_command(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    c.connect().unwrap();
    assert_eq!(sshd.connections(), 1);
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            sshd.cut_connections();
        });
        c.ssh_exec(&RemoteCommand::read_only("sleep").arg("5"))
            .unwrap_err()
    });
    assert!(err.is_transient(), "{err}");
    assert!(matches!(err, SshError::SessionDropped { .. }), "{err}");
    assert_eq!(stdout_of(&mut c, &echo("back")), "back");
    assert_eq!(sshd.connections(), 2, "reconnected once");
}

fn restarted_sshd_is_reconnected_transparently(kind: TransportKind) {
    let mut sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let mut c = client(&runner, &sshd, kind);
    assert_eq!(stdout_of(&mut c, &echo("before")), "before");
    sshd.restart().unwrap();
    // Between commands: the dead session is noticed before anything runs, so no error at all.
    assert_eq!(stdout_of(&mut c, &echo("after")), "after");
    assert_eq!(stdout_of(&mut c, &echo("reused")), "reused");
    assert_eq!(sshd.connections(), 2);
}

fn silent_link_is_a_dropped_session_after_keepalives(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let opts = SshOptions {
        keepalive_interval: Duration::from_secs(1),
        ..options(&sshd, kind)
    };
    let mut c = SshClient::new(&runner, &SshTarget::new(sshd.alias()), opts).unwrap();
    c.connect().unwrap();
    // The node goes silent (no reset, no close) while a command runs: only unanswered keepalives tell.
    let started = Instant::now();
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            sshd.freeze_connections(true);
        });
        c.ssh_exec(
            &RemoteCommand::read_only("sleep")
                .arg("30")
                .timeout(Duration::from_secs(25)),
        )
        .unwrap_err()
    });
    let took = started.elapsed();
    assert!(matches!(err, SshError::SessionDropped { .. }), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    sshd.freeze_connections(false);
    assert_eq!(stdout_of(&mut c, &echo("alive")), "alive");
}

fn non_idempotent_failure_is_not_retried(kind: TransportKind) {
    let sshd = Sshd::start().unwrap();
    let runner = Runner::new(false);
    let sleeper = FakeSleeper::default();
    let mut c = client(&runner, &sshd, kind).with_sleeper(Box::new(sleeper.clone()));
    let counter = sshd.dir().join("count");
    let script = format!("echo x >> '{}'; exit 1", counter.display());
    let once = RemoteCommand::mutating("sh").args(["-c", &script]);
    let (result, _) = log::capture(|| c.ssh_exec_retry(&once));
    assert_eq!(result.unwrap_err().exit_status(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        1
    );

    let again = once.clone().idempotent();
    let (result, lines) = log::capture(|| c.ssh_exec_retry(&again));
    let err = result.unwrap_err();
    assert!(matches!(err, SshError::GaveUp { attempts: 3, .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        4
    );
    assert_eq!(lines.len(), 2);
}

#[test]
fn passphrase_key_is_reported_not_prompted() {
    let sshd = Sshd::start().unwrap();
    let locked = sshd.dir().join("locked_key");
    keygen_with_passphrase(&locked, "locked", "correct horse").unwrap();
    let runner = Runner::new(false);
    let opts = SshOptions {
        identity_files: vec![locked.clone()],
        ..options(&sshd, TransportKind::Libssh2)
    };
    let mut c = SshClient::new(
        &runner,
        &SshTarget::new("127.0.0.1")
            .port(sshd.port())
            .user(sshd.user()),
        opts,
    )
    .unwrap();
    let err = c.ssh_exec(&echo("x")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SshError::Auth { .. }), "{msg}");
    assert!(msg.contains("needs a passphrase"), "{msg}");
    assert!(msg.contains(&locked.display().to_string()), "{msg}");
}

#[test]
fn proxy_jump_in_ssh_config_selects_the_openssh_transport() {
    let sshd = Sshd::start().unwrap();
    // Jump through the test sshd to itself: two TCP connections, the second forwarded by sshd.
    let config = sshd.dir().join("jump_config");
    let base = std::fs::read_to_string(sshd.ssh_config()).unwrap();
    std::fs::write(
        &config,
        format!(
            "Host behind-jump\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
             ProxyJump {}\n\n{base}",
            sshd.port(),
            sshd.user(),
            sshd.client_key().display(),
            sshd.alias()
        ),
    )
    .unwrap();
    let runner = Runner::new(false);
    let opts = SshOptions {
        config_file: Some(config),
        ..options(&sshd, TransportKind::Libssh2)
    };
    let mut c = SshClient::new(&runner, &SshTarget::new("behind-jump"), opts).unwrap();
    assert_eq!(stdout_of(&mut c, &echo("jumped")), "jumped");
    assert_eq!(stdout_of(&mut c, &echo("again")), "again");
    assert_eq!(sshd.connections(), 2, "jump host + forwarded, both reused");
}
