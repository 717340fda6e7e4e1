//! Several tools at once, attacks (secrets in outputs and on command lines, file modes, symlinks at
//! predictable paths, host keys, injection payloads through flags): nothing leaks, no link is
//! followed, no payload runs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::pvenode::{Node, run, temp_files};
use crate::support::{self, CmdlineScanner};

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o777
}

pub const S3_SECRET: &str = "hostile-S3-secret-9f1c2e";

pub const S3_ACCESS: &str = "hostile-access-7d3b";

pub const PVE_PASSWORD: &str = "hostile-pve-password-51aa";

/// A root with one environment whose S3 backend points at a closed port, and tfvars holding the keys.
pub fn secret_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("envs/monitoring");
    std::fs::create_dir_all(&env).unwrap();
    let port = testbed::ports::free_port().unwrap();
    std::fs::write(
        env.join("main.tf"),
        format!(
            "terraform {{\n  backend \"s3\" {{\n    bucket = \"tfstate-monitoring\"\n    key = \"monitoring/terraform.tfstate\"\n    region = \"us-east-1\"\n    endpoints = {{ s3 = \"http://127.0.0.1:{port}\" }}\n    use_path_style = true\n    skip_credentials_validation = true\n    skip_requesting_account_id = true\n    skip_region_validation = true\n  }}\n}}\nmodule \"minio\" {{\n  source = \"./m\"\n}}\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.join("m")).unwrap();
    std::fs::write(env.join("m/main.tf"), "").unwrap();
    let tfvars = dir.path().join("terraform.tfvars");
    std::fs::write(
        &tfvars,
        format!(
            "minio_access_key = \"{S3_ACCESS}\"\nminio_secret_key = \"{S3_SECRET}\"\nproxmox_password = \"{PVE_PASSWORD}\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tfvars, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A Terraform that takes its time, so the scanner sees it and its arguments.
    let tf = dir.path().join("terraform");
    std::fs::write(
        &tf,
        "#!/bin/sh\nsleep 0.3\necho \"Terraform v1.11.4\"\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, tfvars)
}

#[test]
fn no_secret_in_command_lines_outputs_or_files() {
    let node = Node::start();
    let (root, tfvars) = secret_root();
    let metrics = tempfile::tempdir().unwrap();
    let secrets = vec![
        S3_SECRET.to_owned(),
        S3_ACCESS.to_owned(),
        PVE_PASSWORD.to_owned(),
    ];
    // Watch the fake Terraform's command lines: proof the scanner looked while children ran.
    let scanner = CmdlineScanner::start(secrets.clone(), &root.path().display().to_string());
    let mut outputs = Vec::new();
    // verify-backups --full with the keys only in the tfvars, metrics, OpenSSH transport (an ssh child).
    for transport in ["libssh2", "openssh"] {
        let mut c = node.verify_backups();
        c.env("PVE_SSH_TRANSPORT", transport)
            .args(["--full", "--json", "--record", "--deep", "-v"])
            .arg("--root")
            .arg(root.path().join("envs"))
            .arg("--tfvars")
            .arg(&tfvars)
            .arg("--terraform-bin")
            .arg(root.path().join("terraform"))
            .arg("--textfile-dir")
            .arg(metrics.path());
        outputs.push(run(&mut c));
    }
    // restore-vm reading host/node/user from tfvars that also hold a password; a real restore.
    std::fs::write(
        node.dir.path().join("terraform.tfvars"),
        format!(
            "proxmox_endpoint = \"https://{}:8006/\"\nnode_name = \"pve\"\nssh_user = \"{}\"\nproxmox_password = \"{PVE_PASSWORD}\"\nminio_secret_key = \"{S3_SECRET}\"\n",
            node.sshd.alias(),
            node.sshd.user()
        ),
    )
    .unwrap();
    for transport in ["libssh2", "openssh"] {
        let mut c = support::tool("restore-vm");
        c.env("HOME", node.home())
            .env("PVE_SSH_TRANSPORT", transport)
            .env_remove("SSH_AUTH_SOCK")
            .env("RESTORE_VM_RETRY_DELAY_MS", "10")
            .current_dir(node.dir.path())
            .arg("--ssh-config")
            .arg(node.sshd.ssh_config())
            .args(["100", "--force", "--yes", "--no-verify", "--json", "-v"]);
        outputs.push(run(&mut c));
    }
    // rebuild-minio, preview (its read-only checks and plan run), S3 down: reads the keys, runs (fake) Terraform.
    let mut c = support::tool("rebuild-minio");
    c.arg("--root")
        .arg(root.path().join("envs"))
        .args(["--env", "monitoring", "--preview", "--json", "-v", "--yes"])
        .arg("--tfvars")
        .arg(&tfvars)
        .arg("--terraform-bin")
        .arg(root.path().join("terraform"))
        .arg("--state-from")
        .arg(root.path().join("save-points"))
        .env("PVE_RETRY_ATTEMPTS", "1");
    outputs.push(run(&mut c));
    let (found, children) = scanner.finish();
    assert!(found.is_empty(), "secrets on command lines: {found:?}");
    assert!(!children.is_empty(), "the scanner saw no Terraform child");
    eprintln!(
        "command lines with the root seen while scanning: {}",
        children.len()
    );
    for (code, out, err) in &outputs {
        assert!(code.is_some());
        for s in &secrets {
            assert!(!out.contains(s.as_str()), "secret in stdout: {out}");
            assert!(!err.contains(s.as_str()), "secret in stderr: {err}");
        }
    }
    for dir in [metrics.path(), node.dir.path()] {
        for f in support::walk(dir) {
            if f.ends_with("terraform.tfvars") {
                continue;
            }
            let bytes = std::fs::read(&f).unwrap_or_default();
            let t = String::from_utf8_lossy(&bytes);
            for s in &secrets {
                assert!(!t.contains(s.as_str()), "secret in {}", f.display());
            }
        }
    }
    assert!(
        node.journal().iter().any(|a| a[0] == "qmrestore"),
        "the restore ran"
    );
}

#[test]
fn files_written_have_private_modes_and_symlinks_are_not_followed() {
    let node = Node::start();
    let metrics = tempfile::tempdir().unwrap();
    let victim = tempfile::NamedTempFile::new().unwrap();
    // A comment line: a valid (empty) manifest, so the run reads through the link and then writes.
    std::fs::write(victim.path(), b"# victim\n").unwrap();
    // Symlinks planted at the manifest and the metrics file.
    std::os::unix::fs::symlink(victim.path(), node.manifest()).unwrap();
    std::os::unix::fs::symlink(victim.path(), metrics.path().join("pve_backup.prom")).unwrap();
    let (code, out, err) = run(node
        .verify_backups()
        .args(["--record", "--deep"])
        .arg("--textfile-dir")
        .arg(metrics.path()));
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert_eq!(
        std::fs::read(victim.path()).unwrap(),
        b"# victim\n",
        "victim untouched"
    );
    let manifest = node.manifest();
    let prom = metrics.path().join("pve_backup.prom");
    assert!(
        !manifest.is_symlink() && !prom.is_symlink(),
        "the links were replaced"
    );
    // The manifest lists every archive: 0640 (regression: it was written 0644). Metrics are 0644 by
    // design: node_exporter runs as another user, and they hold counts and times only.
    assert_eq!(mode(&manifest), 0o640);
    assert_eq!(mode(&prom), 0o644);
    assert!(temp_files(metrics.path()).is_empty() && temp_files(node.dir.path()).is_empty());
    // restore-vm writes no file at all (its report goes to stdout): HOME and cwd unchanged.
    let cwd = tempfile::tempdir().unwrap();
    let (code, _, err) = run(node.restore_vm().current_dir(cwd.path()).args([
        "100",
        "--force",
        "--yes",
        "--no-verify",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        support::walk(cwd.path()).is_empty(),
        "restore-vm wrote no local file"
    );
}
