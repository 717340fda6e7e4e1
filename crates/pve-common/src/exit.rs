//! The exit-code table shared by every tool (STYLE.md §5).
//!
//! Codes are decided in `main` only. They keep the replaced scripts' meanings: 0 success, 1 failure, except
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

/// `--help` footer for tools without a drift status.
pub const HELP_EXIT_STATUS: &str = "\
Exit status:
  0    success
  1    failure (details on stderr)
  64   usage error (bad flag or value); nothing was done
  75   busy: another run or a state lock holds the lock
  130  interrupted";

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
