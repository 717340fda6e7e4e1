//! Which Terraform-compatible binary to run, and its version.
//!
//! Order: `--terraform-bin PATH` (a path, or a name looked up in `PATH`), then the `TF_BIN` environment
//! variable, then `tofu`, then `terraform` from `PATH`. OpenTofu comes first because a host that has
//! installed it alongside Terraform has usually moved to it; pass `--terraform-bin terraform` to choose.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::runner::{Access, LocalCommand, RunError, Runner};

/// Where the binary choice came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--terraform-bin`.
    Flag,
    /// `TF_BIN`.
    Env,
    /// `tofu` found in `PATH`.
    Tofu,
    /// `terraform` found in `PATH`.
    Terraform,
}

/// The chosen binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerraformBin {
    /// Absolute path (or the path given).
    pub path: PathBuf,
    /// Why this one.
    pub source: Source,
}

/// Why no binary could be used.
#[derive(Debug, Error)]
pub enum TerraformError {
    /// The binary named by the flag or `TF_BIN` does not exist.
    #[error("{origin} names `{name}`, which is not an executable file or a command in PATH")]
    NotFound {
        /// `--terraform-bin` or `TF_BIN`.
        origin: &'static str,
        /// What it named.
        name: String,
    },
    /// Neither `tofu` nor `terraform` is in `PATH`.
    #[error(
        "neither `tofu` nor `terraform` found in PATH; install one, or name it with --terraform-bin or TF_BIN"
    )]
    Missing,
    /// `version -json` failed or printed something else.
    #[error("could not read the version of {}: {message}", path.display())]
    Version {
        /// The binary.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Running it failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Resolves the binary from the process environment.
pub fn resolve(flag: Option<&OsStr>) -> Result<TerraformBin, TerraformError> {
    resolve_in(
        flag,
        std::env::var_os("TF_BIN").as_deref(),
        std::env::var_os("PATH").as_deref(),
    )
}

/// [`resolve`] with explicit `TF_BIN` and `PATH` values (for tests).
pub fn resolve_in(
    flag: Option<&OsStr>,
    tf_bin: Option<&OsStr>,
    path: Option<&OsStr>,
) -> Result<TerraformBin, TerraformError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let lookup = |name: &OsStr| which::which_in(name, path, &cwd).ok();
    for (value, origin, source) in [
        (flag, "--terraform-bin", Source::Flag),
        (tf_bin, "TF_BIN", Source::Env),
    ] {
        if let Some(name) = value.filter(|v| !v.is_empty()) {
            return lookup(name)
                .map(|path| TerraformBin { path, source })
                .ok_or_else(|| TerraformError::NotFound {
                    origin,
                    name: name.to_string_lossy().into_owned(),
                });
        }
    }
    for (name, source) in [("tofu", Source::Tofu), ("terraform", Source::Terraform)] {
        if let Some(path) = lookup(OsStr::new(name)) {
            return Ok(TerraformBin { path, source });
        }
    }
    Err(TerraformError::Missing)
}

#[derive(Deserialize)]
struct VersionJson {
    terraform_version: String,
}

/// Runs `<bin> version -json` (read-only; both Terraform and OpenTofu print `terraform_version`).
pub fn version(runner: &Runner, bin: &Path) -> Result<String, TerraformError> {
    let cmd = LocalCommand::new(OsString::from(bin))
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1");
    let out =
        runner
            .run_checked(Access::ReadOnly, &cmd)?
            .ok_or_else(|| TerraformError::Version {
                path: bin.to_owned(),
                message: "not run".to_owned(),
            })?;
    serde_json::from_slice::<VersionJson>(&out.stdout)
        .map(|v| v.terraform_version)
        .map_err(|e| TerraformError::Version {
            path: bin.to_owned(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_bin(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\necho '{\"terraform_version\":\"1.8.0\"}'\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn order_is_flag_env_tofu_terraform() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().as_os_str());
        assert!(matches!(
            resolve_in(None, None, path),
            Err(TerraformError::Missing)
        ));
        let terraform = fake_bin(dir.path(), "terraform");
        assert_eq!(
            resolve_in(None, None, path).unwrap(),
            TerraformBin {
                path: terraform.clone(),
                source: Source::Terraform
            }
        );
        let tofu = fake_bin(dir.path(), "tofu");
        assert_eq!(resolve_in(None, None, path).unwrap().path, tofu);
        let env = resolve_in(None, Some(OsStr::new("terraform")), path).unwrap();
        assert_eq!((env.path, env.source), (terraform.clone(), Source::Env));
        let flag = resolve_in(Some(terraform.as_os_str()), Some(OsStr::new("tofu")), path).unwrap();
        assert_eq!((flag.path, flag.source), (terraform, Source::Flag));
    }

    #[test]
    fn named_binary_that_does_not_exist_is_an_error() {
        let err = resolve_in(Some(OsStr::new("/nope/terraform")), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--terraform-bin names `/nope/terraform`, which is not an executable file or a command in PATH"
        );
    }

    #[test]
    fn version_reads_json() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_bin(dir.path(), "tofu");
        assert_eq!(
            version(&Runner::new(true), &bin).unwrap(),
            "1.8.0",
            "read-only: runs in dry-run too"
        );
    }
}
