//! restore-tfstate, attacks (secrets in outputs and on command lines, file modes, symlinks at
//! predictable paths, host keys, injection payloads through flags): nothing leaks, no link is
//! followed, no payload runs.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use pve_common::runner::Runner;

use crate::s3bed::{KEY, S3Bed};
use crate::support::security::mode;
use crate::support::security::payloads;
use crate::support::{self, CmdlineScanner, output_within, text, walk};

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
