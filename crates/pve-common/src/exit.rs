//! The exit-code table shared by every tool (STYLE.md §5).
//!
//! Codes are decided in `main` only. `2` keeps Terraform's `-detailed-exitcode` meaning (drift) and is
//! reserved for check-drift, which is why clap's usage-error code (2) is remapped to 64 in [`crate::cli`].

/// A process exit status with a documented meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Everything asked for succeeded (check-drift: every environment in sync).
    Success,
    /// At least one thing failed.
    Failure,
    /// check-drift only: drift found in at least one environment and no errors.
    Drift,
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
            Code::Drift => 2,
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

/// `--help` footer for check-drift, which keeps Terraform's `-detailed-exitcode` meaning.
pub const HELP_EXIT_STATUS_DRIFT: &str = "\
Exit status:
  0    every environment in sync
  1    at least one environment errored (details on stderr)
  2    drift in at least one environment, no errors
  64   usage error (bad flag or value); nothing was done
  75   busy: another check-drift run holds the run lock
  130  interrupted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_style_guide() {
        let all = [
            (Code::Success, 0),
            (Code::Failure, 1),
            (Code::Drift, 2),
            (Code::Usage, 64),
            (Code::Busy, 75),
            (Code::Interrupted, 130),
        ];
        for (code, n) in all {
            assert_eq!(code.as_u8(), n, "{code:?}");
            assert!(HELP_EXIT_STATUS_DRIFT.contains(&format!("  {n} ")));
        }
        assert!(
            !HELP_EXIT_STATUS.contains("  2 "),
            "drift code is check-drift's only"
        );
    }
}
