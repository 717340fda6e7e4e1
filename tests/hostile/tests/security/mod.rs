//! Attacks: unknown and changed host keys, secrets in output and on command lines, file modes, symlinks at
//! predictable paths, and shell-injection payloads through every flag that reaches a command.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use pve_common::runner::Runner;
use pve_ssh::{RemoteCommand, SshClient, SshOptions, SshTarget, TransportKind};
use testbed::sim::{self, GuestType};
use testbed::sshd::{Sshd, SshdOptions, keygen};

use crate::s3bed::{KEY, S3Bed};
use crate::support::{self, CmdlineScanner, drift_fixtures, output_within, text, walk};

const KINDS: [TransportKind; 2] = [TransportKind::Libssh2, TransportKind::OpenSsh];

fn options(sshd: &Sshd, kind: TransportKind, known_hosts: &Path) -> SshOptions {
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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
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
struct Node {
    sshd: Sshd,
    state: sim::State,
    _dir: tempfile::TempDir,
}

fn node() -> Node {
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

pub fn payloads(canary: &Path) -> Vec<String> {
    let c = canary.display();
    vec![
        format!("$(touch {c})"),
        format!("`touch {c}`"),
        format!(";touch {c}"),
        format!("100;touch {c}"),
        format!("100 && touch {c}"),
        format!("100 | touch {c}"),
        format!("'; touch {c}; '"),
        format!("\"; touch {c}; \""),
        format!("100\ntouch {c}"),
        format!("$({c})"),
        "$(id)".into(),
        ";reboot".into(),
        "-rf".into(),
        "--help".into(),
        "*".into(),
        "~root".into(),
        "a\\".into(),
        String::new(),
        "\u{202e}evil".into(),
    ]
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

#[test]
fn restore_tfstate_flags_carrying_payloads_stay_inert() {
    let bed = S3Bed::new();
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let versions = bed.versions();
    let latest = bed.latest();
    let mut tried = 0;
    for p in payloads(&canary) {
        for args in [
            vec!["--list".to_owned(), "--bucket".to_owned(), p.clone()],
            vec!["--list".to_owned(), "--key".to_owned(), p.clone()],
            vec!["--list".to_owned(), "--region".to_owned(), p.clone()],
            vec!["--show".to_owned(), p.clone()],
            vec!["--restore".to_owned(), p.clone(), "--yes".to_owned()],
        ] {
            let out = output_within(
                bed.cmd_at(&bed.server.endpoint())
                    .args(&args)
                    .current_dir(dir.path()),
                Duration::from_secs(60),
            );
            tried += 1;
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | 1 | 64)),
                "{args:?}: exit {code:?}: {}",
                text(&out.stderr)
            );
        }
        let endpoint = format!("http://127.0.0.1:{}/{p}", bed.server.port());
        let out = output_within(
            support::tool("restore-tfstate")
                .arg("--root")
                .arg(bed.root())
                .args(["--env", "prod", "--list", "--endpoint", &endpoint])
                .current_dir(dir.path()),
            Duration::from_secs(60),
        );
        tried += 1;
        assert!(matches!(out.status.code(), Some(1 | 64)));
    }
    assert!(!canary.exists(), "a payload ran");
    assert_eq!(bed.versions(), versions);
    assert_eq!(bed.latest(), latest);
    eprintln!("restore-tfstate: {tried} runs with payload flags, all inert");
}

const PASSWORD: &str = "Hostile-pw-7f3a9c1e";

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
fn no_s3_key_in_output_save_points_or_any_command_line_of_restore_tfstate() {
    let bed = S3Bed::new();
    let dir = tempfile::tempdir().unwrap();
    // Credentials only in the homelab tfvars, as the old script read them.
    let tfvars = dir.path().join("terraform.tfvars");
    std::fs::write(
        &tfvars,
        format!(
            "minio_access_key = \"{}\"\nminio_secret_key = \"{}\"\n",
            testbed::s3::ACCESS_KEY,
            testbed::s3::SECRET_KEY
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tfvars, std::fs::Permissions::from_mode(0o600)).unwrap();
    let oldest = bed.versions().last().unwrap().clone();
    let scanner = CmdlineScanner::start(
        vec![testbed::s3::SECRET_KEY.to_owned()],
        &bed.root().display().to_string(),
    );
    let mut outs = Vec::new();
    for args in [
        vec!["--list", "--details", "--json"],
        vec!["--list", "--verbose"],
        vec!["--restore", oldest.as_str(), "--yes", "--json", "--verbose"],
        vec!["--to-local", "--yes", "--verbose"],
    ] {
        let mut cmd = support::tool("restore-tfstate");
        cmd.arg("--root")
            .arg(bed.root())
            .args(["--env", "prod", "--endpoint", &bed.server.endpoint()])
            .arg("--backup-dir")
            .arg(bed.backups())
            .arg("--tfvars")
            .arg(&tfvars)
            .args(&args)
            .stdin(Stdio::null());
        let out = output_within(&mut cmd, Duration::from_secs(120));
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        outs.push(out);
    }
    let (found, lines) = scanner.finish();
    assert!(found.is_empty(), "S3 secret on a command line: {found:?}");
    // Sampling every 5 ms may miss a short run under load; at least some must have been seen.
    assert!(lines.len() >= 2, "{lines:?}");
    for out in &outs {
        for stream in [&out.stdout, &out.stderr] {
            let t = text(stream);
            assert!(!t.contains(testbed::s3::SECRET_KEY), "leaked: {t}");
        }
    }
    // Everything it wrote: save points 0600 in a 0700 folder, the local state 0600.
    assert_eq!(mode(&bed.backups()), 0o700);
    for f in walk(&bed.backups()) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
        assert!(
            !std::fs::read_to_string(&f)
                .unwrap()
                .contains(testbed::s3::SECRET_KEY)
        );
    }
    let env = bed.root().join("prod");
    for f in walk(&env) {
        let content = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !content.contains(testbed::s3::SECRET_KEY),
            "{}",
            f.display()
        );
        // `.terraform/` is Terraform's own (written by `terraform init`, mode from its umask).
        if f.extension().is_some_and(|e| e == "tfstate")
            && !f.to_string_lossy().contains("/.terraform/")
        {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    let _ = KEY;
}

#[test]
fn a_symlink_at_the_target_or_a_predictable_save_point_path_is_not_followed() {
    // Runner::write_file over a symlink replaces the link; the victim is untouched.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let target = dir.path().join("report.json");
    std::os::unix::fs::symlink(&victim, &target).unwrap();
    Runner::new(false)
        .write_file(&target, b"{}", 0o600)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        !std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(mode(&target), 0o600);

    // restore-tfstate names save points `<env>-<UTC stamp>.tfstate`: plant links for the next minute.
    let bed = S3Bed::new();
    std::fs::create_dir_all(bed.backups()).unwrap();
    std::fs::set_permissions(bed.backups(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = bed.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let dangling = bed.dir.path().join("created-by-attacker");
    let now = jiff::Timestamp::now();
    for s in 0..60 {
        let stamp = now
            .checked_add(jiff::SignedDuration::from_secs(s))
            .unwrap()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let link_to = if s % 2 == 0 { &victim } else { &dangling };
        for name in [
            format!("prod-{stamp}.tfstate"),
            format!("prod-{stamp}-1.tfstate"),
        ] {
            std::os::unix::fs::symlink(link_to, bed.backups().join(name)).unwrap();
        }
    }
    let oldest = bed.versions().last().unwrap().clone();
    let out = bed.run(&["--restore", &oldest, "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!dangling.exists(), "a dangling link was followed");
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
