//! The Terraform command line every tool runs: the chosen binary, in the environment's folder, told it runs
//! unattended, with the S3 credentials of the state backend passed as secrets (never shown in a dry-run
//! echo, never on the command line).

use std::ffi::OsString;
use std::path::Path;

use pve_common::runner::LocalCommand;
use pve_common::s3::S3Credentials;
use pve_common::terraform::TerraformError;

/// `terraform ARGS` (or `tofu`, per [`pve_common::terraform::resolve`] of `bin_flag`) run in `dir`.
/// `creds`, when given, become `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
pub fn command<I, S>(
    bin_flag: Option<&Path>,
    dir: &Path,
    creds: Option<&S3Credentials>,
    args: I,
) -> Result<LocalCommand, TerraformError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let bin = pve_common::terraform::resolve(bin_flag.map(Path::as_os_str))?;
    let mut cmd = LocalCommand::new(OsString::from(&bin.path))
        .dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1");
    if let Some(c) = creds {
        cmd = cmd
            .env_secret("AWS_ACCESS_KEY_ID", c.access_key.clone())
            .env_secret("AWS_SECRET_ACCESS_KEY", c.secret_key.clone());
        if let Some(token) = &c.session_token {
            cmd = cmd.env_secret("AWS_SESSION_TOKEN", token.clone());
        }
    }
    Ok(cmd.args(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pve_common::secret::Secret;

    #[test]
    fn credentials_are_secret_and_the_automation_environment_is_set() {
        let creds = S3Credentials {
            access_key: Secret::new("AKIAEXAMPLE".to_owned()),
            secret_key: Secret::new("very-secret".to_owned()),
            session_token: Some(Secret::new("token-secret".to_owned())),
        };
        // Any executable file names the binary; no Terraform is run.
        let cmd = command(
            Some(Path::new("/bin/sh")),
            Path::new("/nonexistent"),
            Some(&creds),
            ["plan", "-input=false"],
        )
        .unwrap();
        let shown = cmd.to_string();
        assert!(shown.contains("TF_IN_AUTOMATION=1"), "{shown}");
        assert!(shown.contains("/bin/sh plan '-input=false'"), "{shown}");
        assert!(shown.contains("AWS_SESSION_TOKEN=*"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("token-secret"), "{shown}");
        assert!(!shown.contains("AKIAEXAMPLE"), "{shown}");
    }
}
