//! The replaced script's contract on the test bed: with no argument the node comes from the environments'
//! terraform.tfvars (`default_node`, `proxmox_endpoint`), the report and exit codes are the script's
//! (1 warnings, 2 errors), `--dry-run` contacts nothing, and a failing `pvesh` is not retried.

use std::path::{Path, PathBuf};
use std::process::Output;

use testbed::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

use crate::bed::Node;

/// A homelab whose `prod` environment names the test node; ssh settings the script would take from the
/// operator's environment (user, port through ssh_config, known hosts).
struct Homelab {
    dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

impl Homelab {
    fn new(node: &Node, s3: Option<&S3Server>) -> Homelab {
        let dir = tempfile::tempdir().unwrap();
        let envs_dir = dir.path().join("infrastructure/proxmox/environments");
        for env in ["prod", "lab", "monitoring"] {
            std::fs::create_dir_all(envs_dir.join(env)).unwrap();
            std::fs::write(
                envs_dir.join(env).join("versions.tf"),
                "terraform {\n  # backend \"s3\" {}\n}\n",
            )
            .unwrap();
        }
        let tfvars = envs_dir.join("prod/terraform.tfvars");
        let minio = s3.map_or_else(String::new, |s| {
            format!(
                "minio = {{\n  ip = \"127.0.0.1\"\n  port = {}\n  root_user = \"{ACCESS_KEY}\"\n  root_password = \"{SECRET_KEY}\"\n}}\n",
                s.port()
            )
        });
        std::fs::write(
            &tfvars,
            format!(
                "default_node = \"pve\"\nproxmox_endpoint = \"https://127.0.0.1:8006\"\n{minio}"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&tfvars, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let ssh_config = dir.path().join("ssh_config");
        std::fs::write(
            &ssh_config,
            format!(
                "Host 127.0.0.1\n  Port {}\n  IdentityFile {}\n",
                node.sshd.port(),
                node.sshd.client_key().display()
            ),
        )
        .unwrap();
        let envs = vec![
            ("PVE_SSH_USER".into(), node.sshd.user().into()),
            ("PVE_SSH_CONFIG".into(), ssh_config.display().to_string()),
            (
                "HOMELAB_KNOWN_HOSTS".into(),
                node.sshd.known_hosts().display().to_string(),
            ),
        ];
        Homelab { dir, envs }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the binary from a folder inside the homelab, as the TUI does (no argument but `args`).
    fn run(&self, args: &[&str]) -> Output {
        let sub: PathBuf = self.path().join("infrastructure");
        let mut cmd = crate::bed::bin();
        cmd.current_dir(&sub)
            .args(args)
            .env("PVE_VERIFY_MANIFEST", self.path().join("manifest"));
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn state() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": 4, "terraform_version": "1.11.4", "serial": 3,
        "lineage": "0b8e4c1e-5a5e-4f8e-9c39-6c1f1b5e0d11", "outputs": {},
        "resources": [{"mode": "managed", "type": "terraform_data", "name": "x",
            "provider": "provider[\"terraform.io/builtin/terraform\"]",
            "instances": [{"schema_version": 0, "attributes": {"id": "x"}}]}]
    }))
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_argument_finds_the_node_in_the_tfvars_old_backup_1_missing_backup_2() {
    let node = Node::start();
    let fresh = node.vm(100, "jellyfin");
    let old = node.ct(101, "pihole");
    node.backup(&fresh, 1, 1);
    node.backup(&old, 50, 2);
    // The state of prod in MinIO, found from the `minio` block alone (the backend block is commented out).
    let s3 = S3Server::start().unwrap();
    let c = s3.client();
    c.create_bucket("tfstate-prod").unwrap();
    c.set_versioning("tfstate-prod", true).unwrap();
    c.put_object("tfstate-prod", "terraform.tfstate", &state())
        .unwrap();
    let lab = Homelab::new(&node, Some(&s3));
    let out = lab.run(&["--lang", "fr"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("minio | tfstate-prod | OK |"), "{stdout}");
    assert!(stdout.contains("1 versions"), "{stdout}");
    assert!(
        !stderr.contains("restore-tfstate"),
        "another tool's message: {stderr}"
    );
    assert!(
        stdout.contains("RAPPORT DE VERIFICATION DES SAUVEGARDES"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Type | Composant | Statut | Dernier backup | Details"),
        "{stdout}"
    );
    assert!(
        stdout.contains("vzdump | VM 100 (jellyfin) | OK |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("vzdump | CT 101 (pihole) | WARNING |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Sauvegarde trop ancienne (50h)"),
        "{stdout}"
    );
    assert!(stdout.contains(" KB"), "sizes in KB: {stdout}");
    assert!(
        stdout.contains("Warnings: 1") && stdout.contains("Erreurs: 0"),
        "{stdout}"
    );
    assert_eq!(node.sshd.logins(), 1, "the node of the tfvars was asked");

    // A guest with no backup at all: ERROR "Aucune sauvegarde", exit 2.
    node.vm(102, "nobackup");
    let out = lab.run(&["--lang", "fr"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("vzdump | VM 102 (nobackup) | ERROR | - | Aucune sauvegarde"),
        "{stdout}"
    );
    assert!(stdout.contains("Total verifie: 4"), "{stdout}");
    assert!(stdout.contains("Erreurs: 1"), "{stdout}");

    // The archive file gone (the node then lists no backup of it): ERROR too, in English without --lang.
    let g = node.vm(103, "gone");
    let p = node.backup(&g, 1, 3);
    std::fs::remove_file(&p).unwrap();
    let out = lab.run(&["--vmid", "103"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("vzdump | VM 103 (gone) | ERROR | - | No backup"),
        "English without --lang: {stdout}"
    );
}

#[test]
fn a_node_without_address_is_named_and_skipped() {
    let node = Node::start();
    let lab = Homelab::new(&node, None);
    std::fs::write(
        lab.path()
            .join("infrastructure/proxmox/environments/prod/terraform.tfvars"),
        "default_node = \"pve-prod\"\n",
    )
    .unwrap();
    let out = lab.run(&["--lang", "fr"]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("pve-prod"), "{stderr}");
    assert!(stderr.contains("verification vzdump ignoree"), "{stderr}");
    assert_eq!(node.sshd.logins(), 0);
}

#[test]
fn dry_run_contacts_nothing_and_prints_a_sample_report() {
    let node = Node::start();
    let g = node.vm(100, "jellyfin");
    node.backup(&g, 1, 1);
    let lab = Homelab::new(&node, None);
    let out = lab.run(&["--dry-run", "--lang", "fr"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(node.sshd.logins(), 0, "dry-run logged in to the node");
    for needle in [
        "[DRY-RUN] ssh ",
        "pvesh get /nodes/pve/storage/local/content --content backup",
        "[DRY-RUN] ssh ",
        "ls -la /var/lib/vz/dump/vzdump-*",
        "s3 list-object-versions s3://tfstate-prod/terraform.tfstate",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(
        stdout.contains("RAPPORT DE VERIFICATION DES SAUVEGARDES"),
        "{stdout}"
    );
    assert!(
        stdout.contains("RESUME") && stdout.contains("Erreurs: 0"),
        "{stdout}"
    );
    assert!(stdout.contains("| OK |"), "{stdout}");
}

/// Regression: a `pvesh` that ran and failed (a permanent answer) was run three times.
#[test]
fn a_failing_pvesh_is_not_retried() {
    let node = Node::start();
    let count = node.dir.path().join("pvesh-calls");
    let pvesh = node.dir.path().join("bin/pvesh");
    std::fs::remove_file(&pvesh).unwrap();
    std::fs::write(
        &pvesh,
        format!(
            "#!/bin/sh\necho call >> '{}'\necho 'ipcc_send_rec[1] failed: Permission denied' >&2\nexit 2\n",
            count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pvesh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = crate::bed::run(&node.ssh_args(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        1,
        "{stderr}"
    );
    assert!(stdout.contains("Permission denied"), "{stdout}");
}

/// The contract's "suspiciously small" newest backup (under `--min-size`, 1024 bytes by default): a
/// WARNING "Taille suspecte", exit 1.
#[test]
fn a_suspiciously_small_backup_is_a_warning() {
    let node = Node::start();
    let g = node.vm(100, "jellyfin");
    let path = node.backup(&g, 1, 1);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(512).unwrap();
    let mut args = node.ssh_args();
    args.extend(["--lang".into(), "fr".into()]);
    let out = crate::bed::run(&args, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("vzdump | VM 100 (jellyfin) | WARNING |")
            && stdout.contains("Taille suspecte"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Warnings: 1") && stdout.contains("Erreurs: 0"),
        "{stdout}"
    );
}
