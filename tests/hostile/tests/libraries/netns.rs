//! A real network cut: the client and sshd live in two network namespaces created here, joined by a veth
//! pair on a private /30 that exists only inside them. The client's link goes down while a command waits
//! and comes back up inside the retry window; the command must complete. The client side is this test
//! binary itself, re-executed inside the client namespace (`ip netns exec`) to run [`netns_client`].
//! Needs root (CAP_NET_ADMIN); without it the case says so and passes vacuously.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pve_common::retry::RetryPolicy;
use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshOptions, SshTarget, TransportKind};
use testbed::sshd::Sshd;

use crate::support::{fault, text};

/// Two namespaces and the veth between them, deleted on drop (which also removes the veth).
pub struct Namespaces {
    client: String,
    server: String,
}

pub fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Namespaces {
    pub fn create(tag: &str) -> Option<Namespaces> {
        let ns = Namespaces {
            client: format!("hostile-c-{tag}"),
            server: format!("hostile-s-{tag}"),
        };
        if !ip(&["netns", "add", &ns.client]) {
            return None;
        }
        let ok = ip(&["netns", "add", &ns.server])
            && ip(&[
                "-n", &ns.client, "link", "add", "vc", "type", "veth", "peer", "name", "vs",
                "netns", &ns.server,
            ])
            && ip(&[
                "-n",
                &ns.client,
                "addr",
                "add",
                "192.0.2.249/30",
                "dev",
                "vc",
            ])
            && ip(&[
                "-n",
                &ns.server,
                "addr",
                "add",
                "192.0.2.250/30",
                "dev",
                "vs",
            ])
            && ip(&["-n", &ns.client, "link", "set", "lo", "up"])
            && ip(&["-n", &ns.server, "link", "set", "lo", "up"])
            && ip(&["-n", &ns.client, "link", "set", "vc", "up"])
            && ip(&["-n", &ns.server, "link", "set", "vs", "up"]);
        ok.then_some(ns)
    }

    pub fn client_link(&self, up: bool) {
        assert!(ip(&[
            "-n",
            &self.client,
            "link",
            "set",
            "vc",
            if up { "up" } else { "down" }
        ]));
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.client]);
        let _ = ip(&["netns", "del", &self.server]);
    }
}

pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub const SERVER: &str = "192.0.2.250";

#[test]
fn link_down_and_up_inside_the_retry_window_recovers() {
    let tag = std::process::id().to_string();
    let Some(ns) = Namespaces::create(&tag) else {
        eprintln!(
            "network namespaces are not permitted here (need root/CAP_NET_ADMIN); case skipped"
        );
        return;
    };
    // Keys and authorized_keys from a test-bed sshd; our own sshd inside the server namespace.
    let bed = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = bed.dir();
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port 22\nListenAddress {SERVER}\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
             StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPrintMotd no\nUseDNS no\n\
             MaxStartups 100\n",
            hk = d.join("ssh_host_ed25519_key").display(),
            pid = dir.path().join("sshd.pid").display(),
            ak = d.join("authorized_keys").display(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let sshd_log = dir.path().join("sshd.log");
    let mut sshd = Killed(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.server,
                testbed::sshd::SSHD,
                "-D",
                "-e",
                "-f",
            ])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&sshd_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listening = Command::new("ip")
            .args(["netns", "exec", &ns.server, "ss", "-ltnH", "sport = :22"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        if listening {
            break;
        }
        assert!(
            Instant::now() < deadline && sshd.0.try_wait().unwrap().is_none(),
            "sshd in the namespace did not start: {}",
            std::fs::read_to_string(&sshd_log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let known_hosts = dir.path().join("known_hosts");
    let host_pub = std::fs::read_to_string(bed.host_key_pub_path()).unwrap();
    let mut f = host_pub.split_whitespace();
    std::fs::write(
        &known_hosts,
        format!("{SERVER} {} {}\n", f.next().unwrap(), f.next().unwrap()),
    )
    .unwrap();
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let exe = std::env::current_exe().unwrap();
    let client = Command::new("ip")
        .args(["netns", "exec", &ns.client])
        .arg(&exe)
        .args([
            "--exact",
            "libraries::netns::netns_client",
            "--ignored",
            "--nocapture",
        ])
        .env("HOSTILE_NETNS_KEY", bed.client_key())
        .env("HOSTILE_NETNS_KNOWN_HOSTS", &known_hosts)
        .env("HOSTILE_NETNS_USER", bed.user())
        .env("HOSTILE_NETNS_MARKS", &marks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = Killed(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marks.join("connected").exists() {
        if Instant::now() > deadline || client.0.try_wait().unwrap().is_some() {
            let _ = client.0.kill();
            let child = std::mem::replace(&mut client.0, Command::new("true").spawn().unwrap());
            let out = child.wait_with_output().unwrap();
            panic!(
                "client never connected:\n{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    // The second command is under way (it sleeps 1 s remotely); cut the link, then restore it.
    thread::sleep(Duration::from_millis(300));
    ns.client_link(false);
    fault();
    // Longer than the keepalive limit (4 x 500 ms, so the session counts as dropped), shorter than the
    // retry window (delays 1 s + 2 s + 4 s).
    thread::sleep(Duration::from_millis(4000));
    ns.client_link(true);
    let started = Instant::now();
    while client.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "client hung after the link came back"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let child = std::mem::replace(&mut client.0, Command::new("true").spawn().unwrap());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("RESULT after-cut"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("retrying") || stdout.contains("retrying"),
        "the cut was noticed and retried: {stderr}"
    );
}

/// The client half, run inside the client namespace by the test above; does nothing when run directly.
#[test]
#[ignore = "helper: run by link_down_and_up_inside_the_retry_window_recovers inside a network namespace"]
fn netns_client() {
    let Ok(key) = std::env::var("HOSTILE_NETNS_KEY") else {
        return;
    };
    let marks = PathBuf::from(std::env::var("HOSTILE_NETNS_MARKS").unwrap());
    let runner = Runner::new(false);
    pve_common::log::init(
        "netns-client",
        pve_common::log::Verbosity::Normal,
        pve_common::log::ColorChoice::Never,
    );
    let options = SshOptions {
        transport: TransportKind::Libssh2,
        config_file: None,
        known_hosts: Some(PathBuf::from(
            std::env::var("HOSTILE_NETNS_KNOWN_HOSTS").unwrap(),
        )),
        identity_files: vec![PathBuf::from(key)],
        use_agent: false,
        default_identities: false,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Some(Duration::from_secs(20)),
        keepalive_interval: Duration::from_millis(500),
        retry: RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
        },
        ..SshOptions::default()
    };
    let target = SshTarget::new(SERVER)
        .port(22)
        .user(std::env::var("HOSTILE_NETNS_USER").unwrap());
    let mut client = SshClient::new(&runner, &target, options).unwrap();
    let first = client
        .ssh_exec(&RemoteCommand::read_only("echo").arg("before-cut"))
        .unwrap()
        .unwrap();
    assert_eq!(first.stdout_text().trim(), "before-cut");
    touch(&marks.join("connected"));
    let listing = RemoteCommand::read_only("sh")
        .args(["-c", "sleep 1; echo after-cut"])
        .idempotent();
    let out = client.ssh_exec_retry(&listing).unwrap().unwrap();
    println!("RESULT {}", out.stdout_text().trim());
}

pub fn touch(path: &Path) {
    std::fs::write(path, "").unwrap();
}
