//! The exit-code table shared by every tool, and the errors that carry their code.
//!
//! Codes are decided in one place, [`crate::app::run`], which every `main` calls; an error says which code
//! it stands for by being (or wrapping) one of [`UsageError`], [`Busy`] or [`Interrupted`], found by
//! [`classify`] anywhere in the error chain, so a tool adding context to an error keeps its code. They keep the replaced scripts' meanings: 0 success, 1 failure, except
//! check-drift (1 drift, 2 error) and verify-backups (1 warnings, 2 errors). `2` is therefore never a usage
//! error: clap's usage-error code (2) is remapped to 64 in [`crate::cli`]. check-drift's
//! `--detailed-exitcode` gives Terraform's meaning instead (1 error, 2 changes).

/// A process exit status with a documented meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Everything asked for succeeded (check-drift: every environment in sync).
    Success,
    /// At least one thing failed.
    Failure,
    /// check-drift: drift found in at least one environment and no errors (1, as the script).
    Drift,
    /// check-drift: at least one environment errored; verify-backups: at least one error (2).
    Errors,
    /// verify-backups: warnings and no errors (1).
    Warnings,
    /// check-drift `--detailed-exitcode`: changes, in Terraform's meaning (2).
    Changes,
    /// The command line was wrong; nothing was done (BSD `EX_USAGE`).
    Usage,
    /// Another run holds the lock, or a state lock is held (BSD `EX_TEMPFAIL`).
    Busy,
    /// Stopped by SIGINT/SIGTERM (128 + 2).
    Interrupted,
}

impl Code {
    /// The numeric status handed to the operating system.
    pub fn as_u8(self) -> u8 {
        match self {
            Code::Success => 0,
            Code::Failure => 1,
            Code::Drift => 1,
            Code::Errors => 2,
            Code::Warnings => 1,
            Code::Changes => 2,
            Code::Usage => 64,
            Code::Busy => 75,
            Code::Interrupted => 130,
        }
    }
}

impl From<Code> for std::process::ExitCode {
    fn from(code: Code) -> Self {
        std::process::ExitCode::from(code.as_u8())
    }
}

/// A command line or value that cannot be acted on: exit 64 ([`Code::Usage`]), nothing was done. The
/// message is printed as is after `tool: error: `.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// A usage error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        UsageError(message.into())
    }
}

/// Another run holds a lock this run needs: exit 75 ([`Code::Busy`]). It wraps the error that says which
/// lock and who holds it, and prints exactly that error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Busy(pub anyhow::Error);

impl Busy {
    /// Marks `err` (a lock held by somebody else) as busy.
    pub fn new(err: impl Into<anyhow::Error>) -> Self {
        Busy(err.into())
    }

    /// A busy error saying `message`.
    pub fn msg(message: impl std::fmt::Display + std::fmt::Debug + Send + Sync + 'static) -> Self {
        Busy(anyhow::Error::msg(message))
    }
}

/// The run was stopped by SIGINT/SIGTERM: exit 130 ([`Code::Interrupted`]).
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The exit code `err` stands for: the first [`UsageError`] (64), [`Busy`] (75) or [`Interrupted`] (130)
/// found walking its chain of causes (context added on the way does not hide it), else `otherwise` (the
/// tool's failure code: 1, or 2 for check-drift and verify-backups).
pub fn classify(err: &anyhow::Error, otherwise: Code) -> Code {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return Code::Usage;
        }
        if cause.is::<Busy>() {
            return Code::Busy;
        }
        if cause.is::<Interrupted>() {
            return Code::Interrupted;
        }
    }
    otherwise
}

/// `--help` footer for tools that take no lock (restore-vm, rebuild-monitoring).
pub const HELP_EXIT_STATUS: &str = "\
Exit status:
  0    success
  1    failure (details on stderr)
  64   usage error (bad flag or value); nothing was done
  130  interrupted";

/// `--help` footer for tools that take Terraform's state lock (restore-tfstate, rebuild-minio).
pub const HELP_EXIT_STATUS_BUSY: &str = "\
Exit status:
  0    success (restore-tfstate: also when the operator declines)
  1    failure (details on stderr)
  64   usage error (bad flag or value); nothing was done
  75   busy: the state lock is held by another run
  130  interrupted";

/// A tool's whole `--help` footer: its examples (lines "  What it does:" then "    tool args"; `cargo
/// xtask check` parses each with the tool's own parser), then its exit status table.
pub fn help_footer(examples: &str, exit_status: &str) -> String {
    format!("Examples:\n{examples}\n\n{exit_status}")
}

/// `--help` footer for check-drift, which keeps the replaced script's codes.
pub const HELP_EXIT_STATUS_DRIFT: &str = "\
Exit status:
  0    every environment in sync (or skipped: no terraform.tfvars); always 0 with --dry-run
  1    drift in at least one environment, no errors
  2    at least one environment errored (details on stderr)
  64   usage error (bad flag or value); nothing was done
  75   busy: another check-drift run holds the run lock
  130  interrupted
With --detailed-exitcode, Terraform's meaning instead: 1 error, 2 drift.";

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn classify_walks_the_chain() {
        let usage = anyhow::Error::new(UsageError::new("--vmid: not a number"));
        assert_eq!(classify(&usage, Code::Failure), Code::Usage);
        assert_eq!(format!("{usage:#}"), "--vmid: not a number");

        // Context added over the error keeps its code.
        let busy: anyhow::Result<()> = Err(Busy::msg("the lock is held by x").into());
        let busy = busy.context("restoring env1").unwrap_err();
        assert_eq!(classify(&busy, Code::Errors), Code::Busy);
        assert_eq!(format!("{busy:#}"), "restoring env1: the lock is held by x");

        // A wrapped error prints once, as itself.
        let inner = anyhow::anyhow!("held by y").context("lock s3://b/k");
        let wrapped = anyhow::Error::new(Busy::new(inner));
        assert_eq!(format!("{wrapped:#}"), "lock s3://b/k: held by y");

        let stopped = anyhow::Error::new(Interrupted).context("terraform plan");
        assert_eq!(classify(&stopped, Code::Failure), Code::Interrupted);

        let plain = anyhow::anyhow!("ssh: connection refused").context("listing backups");
        assert_eq!(classify(&plain, Code::Failure), Code::Failure);
        assert_eq!(classify(&plain, Code::Errors), Code::Errors);
    }

    #[test]
    fn table_matches_style_guide() {
        let all = [
            (Code::Success, 0),
            (Code::Drift, 1),
            (Code::Errors, 2),
            (Code::Usage, 64),
            (Code::Busy, 75),
            (Code::Interrupted, 130),
        ];
        for (code, n) in all {
            assert_eq!(code.as_u8(), n, "{code:?}");
            assert!(HELP_EXIT_STATUS_DRIFT.contains(&format!("  {n} ")));
        }
        assert_eq!(Code::Failure.as_u8(), 1);
        assert_eq!(Code::Warnings.as_u8(), 1);
        assert_eq!(Code::Changes.as_u8(), 2);
        assert!(
            !HELP_EXIT_STATUS.contains("  2 "),
            "2 is check-drift's and verify-backups' only"
        );
    }
}
