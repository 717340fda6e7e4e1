//! A homelab checkout in the layout the replaced scripts expect, for the compatibility suites
//! (`tests/compat/*.bats` call `testbed fixture homelab DIR`).
//!
//! ```text
//! DIR/terraform.tfvars                                    default_node = "pve"
//! DIR/infrastructure/proxmox/environments/<env>/          prod, lab, monitoring: versions.tf,
//!     backend.tf (its s3 block commented out), variables.tf, main.tf, terraform.tfvars
//!     terraform.tfstate (only with --state ENV: the guests of the fleet scenario, see `fleet`)
//! DIR/scripts/drift/, DIR/scripts/restore/                where the shims go
//! ```
//!
//! Every address is from TEST-NET-1 (192.0.2.0/24) unless the caller points an environment elsewhere
//! (`--endpoint`, `--minio`): suites that read the fixture run inside `unshare -n`, so nothing can leave.
//! The environments need no provider download: `terraform_data` is built into Terraform, so `init` and
//! `plan` work offline. An environment is in sync (no resources) unless asked to show drift (one
//! `terraform_data` never applied: `plan -detailed-exitcode` exits 2) or an error (a reference to an
//! undeclared variable: `plan` fails).

use std::path::Path;

use anyhow::Context as _;
use assert_fs::fixture::{FileWriteStr, PathChild};

/// The environments of the fixture, in the scripts' order.
pub const ENVIRONMENTS: [&str; 3] = ["prod", "lab", "monitoring"];

/// What to lay out.
#[derive(Clone, Debug, Default)]
pub struct HomelabOptions {
    /// Environments whose plan shows one resource to create.
    pub drift: Vec<String>,
    /// Environments whose plan fails.
    pub error: Vec<String>,
    /// Environments left without terraform.tfvars (not deployed).
    pub without_tfvars: Vec<String>,
    /// `(env, url)`: a `proxmox_endpoint` other than the TEST-NET default.
    pub endpoints: Vec<(String, String)>,
    /// `(ip, port)` of the MinIO block in prod's tfvars (default 192.0.2.20, no port: 9000).
    pub minio: Option<(String, Option<u16>)>,
    /// Environments given a local `terraform.tfstate` listing their guests of the fleet scenario
    /// ([`crate::fleet::state_json`]).
    pub states: Vec<String>,
    /// `(env, node)`: a `default_node` other than the fixture's (`pve-<env>`, `pve-mon`).
    pub default_nodes: Vec<(String, String)>,
    /// `vm.ip` of the monitoring block (default 192.0.2.30).
    pub monitoring_ip: Option<String>,
    /// `vm.vmid` of the monitoring block (default 9000).
    pub monitoring_vmid: Option<u32>,
}

fn default_endpoint(env: &str) -> &'static str {
    match env {
        "prod" => "https://192.0.2.10:8006",
        "lab" => "https://192.0.2.11:8006",
        _ => "https://192.0.2.12:8006",
    }
}

fn default_node(env: &str) -> String {
    match env {
        "monitoring" => "pve-mon".to_owned(),
        other => format!("pve-{other}"),
    }
}

const VERSIONS_TF: &str = r#"terraform {
  required_version = ">= 1.5"
}
"#;

const BACKEND_TF: &str = r#"# State in MinIO; kept commented out until MinIO runs (restore-tfstate --return).
# terraform {
#   backend "s3" {
#     bucket = "tfstate-ENV"
#     key    = "terraform.tfstate"
#   }
# }
"#;

const VARIABLES_TF: &str = r#"variable "proxmox_endpoint" {
  type = string
}

variable "default_node" {
  type = string
}

variable "minio" {
  type    = any
  default = null
}

variable "monitoring" {
  type    = any
  default = null
}
"#;

/// Lays the homelab out under `dir` (created if missing; existing files are overwritten).
pub fn homelab(dir: &Path, options: &HomelabOptions) -> anyhow::Result<()> {
    let root = assert_fs::fixture::ChildPath::new(dir);
    let write = |child: assert_fs::fixture::ChildPath, text: &str| -> anyhow::Result<()> {
        child
            .write_str(text)
            .with_context(|| format!("writing {}", child.path().display()))?;
        set_private(child.path())
    };
    write(root.child("terraform.tfvars"), "default_node = \"pve\"\n")?;
    for sub in ["scripts/drift", "scripts/restore"] {
        std::fs::create_dir_all(root.child(sub).path())
            .with_context(|| format!("creating {}", root.child(sub).path().display()))?;
    }
    let (minio_ip, minio_port) = options
        .minio
        .clone()
        .unwrap_or_else(|| ("192.0.2.20".to_owned(), None));
    for env in ENVIRONMENTS {
        let env_dir = root.child(pve_common::homelab::ENVIRONMENTS_DIR).child(env);
        write(env_dir.child("versions.tf"), VERSIONS_TF)?;
        write(env_dir.child("backend.tf"), &commented_backend_tf(env))?;
        write(env_dir.child("variables.tf"), VARIABLES_TF)?;
        let main = if options.error.iter().any(|e| e == env) {
            "resource \"terraform_data\" \"broken\" {\n  input = var.not_declared\n}\n".to_owned()
        } else if options.drift.iter().any(|e| e == env) {
            "resource \"terraform_data\" \"guest\" {\n  input = var.default_node\n}\n".to_owned()
        } else {
            "locals {\n  node = var.default_node\n}\n".to_owned()
        };
        write(env_dir.child("main.tf"), &main)?;
        if options.states.iter().any(|e| e == env) {
            write(
                env_dir.child("terraform.tfstate"),
                &crate::fleet::state_json(env),
            )?;
        }
        let tfvars = env_dir.child("terraform.tfvars");
        if options.without_tfvars.iter().any(|e| e == env) {
            if tfvars.path().exists() {
                std::fs::remove_file(tfvars.path())
                    .with_context(|| format!("removing {}", tfvars.path().display()))?;
            }
            continue;
        }
        let endpoint = options
            .endpoints
            .iter()
            .find(|(e, _)| e == env)
            .map_or(default_endpoint(env).to_owned(), |(_, u)| u.clone());
        let node = options
            .default_nodes
            .iter()
            .find(|(e, _)| e == env)
            .map_or_else(|| default_node(env), |(_, n)| n.clone());
        let mut text =
            format!("proxmox_endpoint = \"{endpoint}\"\ndefault_node     = \"{node}\"\n");
        if env == "prod" {
            text.push('\n');
            text.push_str(&minio_block(
                &minio_ip,
                minio_port,
                "minioadmin",
                "fixture-minio-password",
            ));
        }
        if env == "monitoring" {
            text.push_str(&format!(
                "\nmonitoring = {{\n  node = null\n  vm = {{\n    ip    = \"{}\"\n    vmid  = {}\n    cores = 2\n  }}\n}}\n",
                options.monitoring_ip.as_deref().unwrap_or("192.0.2.30"),
                options.monitoring_vmid.unwrap_or(9000)
            ));
        }
        write(tfvars, &text)?;
    }
    Ok(())
}

/// `backend.tf` of environment `env` as the homelab keeps it while MinIO is the state store: the S3 block
/// commented out (bucket `tfstate-<env>`), so Terraform keeps a local state and the tools find the bucket
/// from the tfvars' `minio` block.
pub fn commented_backend_tf(env: &str) -> String {
    BACKEND_TF.replace("ENV", env)
}

/// The `minio = {...}` block of a homelab's tfvars: where MinIO listens (no `port`: 9000) and its root
/// credentials, which the tools use for the state buckets.
pub fn minio_block(ip: &str, port: Option<u16>, user: &str, password: &str) -> String {
    let port = port.map_or(String::new(), |p| format!("\n  port          = {p}"));
    format!(
        "minio = {{\n  ip            = \"{ip}\"{port}\n  root_user     = \"{user}\"\n  root_password = \"{password}\"\n}}\n"
    )
}

/// Variable files hold secrets: the tools warn about group- or world-readable ones.
fn set_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pve_common::homelab::Homelab;

    #[test]
    fn the_tools_read_the_fixture() {
        let dir = assert_fs::TempDir::new().unwrap();
        let options = HomelabOptions {
            drift: vec!["lab".into()],
            without_tfvars: vec!["monitoring".into()],
            ..HomelabOptions::default()
        };
        homelab(dir.path(), &options).unwrap();
        let h = Homelab::locate_with(None, None, &dir.path().join("scripts/drift")).unwrap();
        assert_eq!(h.root(), dir.path());
        assert_eq!(
            h.root_settings().unwrap().default_node.as_deref(),
            Some("pve")
        );
        let prod = h.env_settings("prod").unwrap().unwrap();
        assert_eq!(prod.ssh_host.as_deref(), Some("192.0.2.10"));
        let (_, minio) = h.minio().unwrap().unwrap();
        assert_eq!(minio.endpoint(), "http://192.0.2.20:9000");
        assert!(h.env_settings("monitoring").unwrap().is_none());
        assert_eq!(
            pve_common::environments::discover(&h.environments_dir()).unwrap(),
            vec!["lab", "monitoring", "prod"]
        );
    }
}
