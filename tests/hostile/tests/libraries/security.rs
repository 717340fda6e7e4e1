//! The libraries (pve-common, pve-ssh, pve-tf, pve-restore), attacks (secrets in outputs and on
//! command lines, file modes, symlinks at predictable paths, host keys, injection payloads through
//! flags): nothing leaks, no link is followed, no payload runs.

use std::path::Path;
use std::time::Duration;

use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshOptions, SshTarget, TransportKind};
use testbed::sim::{self, GuestType};
use testbed::sshd::{Sshd, SshdOptions, keygen};

use crate::support::security::payloads;
use crate::support::{self};

pub const KINDS: [TransportKind; 2] = [TransportKind::Libssh2, TransportKind::OpenSsh];

pub fn options(sshd: &Sshd, kind: TransportKind, known_hosts: &Path) -> SshOptions {
    SshOptions {
        transport: kind,
        config_file: Some(sshd.ssh_config()),
        known_hosts: Some(known_hosts.to_owned()),
        use_agent: false,
        default_identities: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Some(Duration::from_secs(30)),
        ..SshOptions::default()
    }
}

#[test]
fn unknown_host_key_is_refused_and_a_changed_one_always_with_its_fingerprint() {
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    // A known_hosts entry for this host and port, but with another key.
    let other = dir.path().join("other_key");
    keygen(&other, "impostor").unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = other_pub.split_whitespace();
    let (kind_name, blob) = (fields.next().unwrap(), fields.next().unwrap());
    let changed = dir.path().join("changed_known_hosts");
    std::fs::write(
        &changed,
        format!("[{}]:{} {kind_name} {blob}\n", sshd.host(), sshd.port()),
    )
    .unwrap();
    let fingerprint = sshd.host_key_fingerprint().unwrap();
    for kind in KINDS {
        let runner = Runner::new(false);
        let mut c = SshClient::new(
            &runner,
            &SshTarget::new(sshd.alias()),
            options(&sshd, kind, &empty),
        )
        .unwrap();
        let e = format!("{:#}", c.connect().unwrap_err());
        assert!(
            e.to_lowercase().contains("host key"),
            "{kind:?} unknown: {e}"
        );
        assert_eq!(std::fs::read_to_string(&empty).unwrap(), "", "not recorded");
        for accept_new in [false, true] {
            let mut o = options(&sshd, kind, &changed);
            o.accept_new_host_key = accept_new;
            let mut c = SshClient::new(&runner, &SshTarget::new(sshd.alias()), o).unwrap();
            let e = format!("{:#}", c.connect().unwrap_err());
            assert!(
                e.contains(&fingerprint),
                "{kind:?} changed (accept_new={accept_new}): fingerprint {fingerprint} missing: {e}"
            );
        }
    }
    assert_eq!(sshd.logins(), 0, "never authenticated to an untrusted host");
}

/// A simulated node behind sshd: the `pve-sim` multi-call binary as pvesh/qm/pct/... on the remote PATH.
pub struct Node {
    sshd: Sshd,
    state: sim::State,
    _dir: tempfile::TempDir,
}

pub fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let state = sim::State::create_standard(&state_dir, "pve").unwrap();
    state
        .add_guest(&sim::Guest::new(
            100,
            GuestType::Qemu,
            "pve",
            &[("name", "jellyfin"), ("memory", "8192")],
        ))
        .unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    for name in sim::COMMANDS {
        std::os::unix::fs::symlink(support::bin("pve-sim"), bin_dir.join(name)).unwrap();
    }
    let sshd = Sshd::start_with(
        SshdOptions::new()
            .path_prefix(&bin_dir)
            .env("PVE_SIM_STATE", state_dir.display().to_string()),
    )
    .unwrap();
    Node {
        sshd,
        state,
        _dir: dir,
    }
}

#[test]
fn injection_payloads_reach_the_node_as_single_inert_arguments() {
    let node = node();
    let canary_dir = tempfile::tempdir().unwrap();
    let canary = canary_dir.path().join("pwned");
    let runner = Runner::new(false);
    let mut tried = 0;
    for kind in KINDS {
        let mut client = SshClient::new(
            &runner,
            &SshTarget::new(node.sshd.alias()),
            options(&node.sshd, kind, &node.sshd.known_hosts()),
        )
        .unwrap();
        for payload in payloads(&canary) {
            // State-changing calls (refused ones too) are journaled with their exact argv.
            for (prog, args) in [
                ("qm", vec!["start".to_owned(), payload.clone()]),
                ("pct", vec!["stop".to_owned(), payload.clone()]),
                (
                    "qmrestore",
                    vec![
                        payload.clone(),
                        "999".to_owned(),
                        "--storage".to_owned(),
                        payload.clone(),
                    ],
                ),
            ] {
                let before = node.state.journal().unwrap().len();
                let cmd = RemoteCommand::mutating(prog).args(args.clone());
                let _ = client.ssh_exec_unchecked(&cmd).unwrap();
                tried += 1;
                let journal = node.state.journal().unwrap();
                assert_eq!(
                    journal.len(),
                    before + 1,
                    "{kind:?} {prog} {payload:?}: one call"
                );
                let mut want = vec![prog.to_owned()];
                want.extend(args);
                assert_eq!(journal[before].argv, want, "{kind:?}: arrived verbatim");
                // The same bytes through printf prove the remote shell did not reinterpret them.
                let echoed = client
                    .ssh_exec(&RemoteCommand::read_only("printf").args(["%s", &payload]))
                    .unwrap()
                    .unwrap();
                assert_eq!(echoed.stdout, payload.as_bytes(), "{kind:?} {payload:?}");
            }
        }
    }
    assert!(!canary.exists(), "a payload ran");
    eprintln!("injection: {tried} remote commands with payloads, all inert");
}
