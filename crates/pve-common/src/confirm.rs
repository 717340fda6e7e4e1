//! Confirmation before anything is overwritten: one shared prompt, so no tool can assume yes by mistake.
//!
//! [`ask`] is the scripts' contract: `--force` answers yes to every question; without it the prompt
//! (`question [O/n] ` in French, `[y/N]` in English) goes to stderr and the answer is read from the
//! controlling terminal (`/dev/tty`), or from stdin when there is none (a runbook piping `yes`). `o`,
//! `oui`, `y`, `yes` (any case) confirm; anything else, an empty line or end of input declines: it never
//! hangs and never assumes yes.
//!
//! [`confirm`] is the older form (terminal only, `--yes`), kept for the tools that have not moved to
//! `--force` yet.

use std::io::{self, BufRead, BufReader, Write};

use thiserror::Error;

/// Why a confirmation did not succeed.
#[derive(Debug, Error)]
pub enum ConfirmError {
    /// No terminal to ask on, and `--yes` was not given.
    #[error(
        "refusing to {action} without confirmation: no terminal to ask on; pass --yes to confirm"
    )]
    NoTerminal {
        /// What would have been done.
        action: String,
    },
    /// The operator answered something other than yes.
    #[error("{}", crate::i18n::format_in(crate::i18n::lang(), "common.declined", &[("action", .action.clone())]))]
    Declined {
        /// What would have been done.
        action: String,
    },
    /// Reading the answer failed.
    #[error("could not read the answer from the terminal: {0}")]
    Io(io::Error),
}

// Written by hand rather than `#[from]`: the message already shows the cause, and a `source()` too
// would make the error chain say it twice.
impl From<io::Error> for ConfirmError {
    fn from(e: io::Error) -> Self {
        ConfirmError::Io(e)
    }
}

/// Whether an answer confirms: `o`, `oui`, `y`, `yes`, in any case.
pub fn is_yes(answer: &str) -> bool {
    matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "o" | "oui"
    )
}

/// Asks `question` unless `force` (`--force`: every confirmation is yes). The answer comes from the
/// terminal, else from stdin; end of input is no. `action` names what is at stake in the refusal message.
pub fn ask(question: &str, action: &str, force: bool) -> Result<(), ConfirmError> {
    if force {
        return Ok(());
    }
    let mut prompt = io::stderr().lock();
    match std::fs::OpenOptions::new().read(true).open("/dev/tty") {
        Ok(tty) => ask_with(question, action, &mut BufReader::new(tty), &mut prompt),
        // No controlling terminal (cron, systemd, CI, `setsid`): the answer is on stdin, if anywhere.
        Err(_) => ask_with(question, action, &mut io::stdin().lock(), &mut prompt),
    }
}

/// [`ask`] with an explicit answer reader and prompt writer (for tests).
pub fn ask_with(
    question: &str,
    action: &str,
    answers: &mut dyn BufRead,
    prompt: &mut dyn Write,
) -> Result<(), ConfirmError> {
    let _ = write!(prompt, "{question} {} ", crate::tr!("common.prompt_yes_no"));
    let _ = prompt.flush();
    let mut answer = String::new();
    // End of input (0 bytes) leaves the answer empty: no.
    answers.read_line(&mut answer)?;
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(ConfirmError::Declined {
            action: action.to_owned(),
        })
    }
}

/// Asks `question` (e.g. "Restore VM 100 over the existing guest?") unless `assume_yes`; `action` names
/// what is at stake in the refusal message (e.g. "overwrite VM 100").
pub fn confirm(question: &str, action: &str, assume_yes: bool) -> Result<(), ConfirmError> {
    if assume_yes {
        return Ok(());
    }
    // Opening /dev/tty fails (ENXIO) when the process has no controlling terminal: cron, systemd, CI,
    // `setsid`. That is the "no terminal" case.
    let tty = match std::fs::OpenOptions::new().read(true).open("/dev/tty") {
        Ok(tty) => tty,
        Err(_) => {
            return Err(ConfirmError::NoTerminal {
                action: action.to_owned(),
            });
        }
    };
    confirm_with(
        question,
        action,
        &mut BufReader::new(tty),
        &mut io::stderr().lock(),
    )
}

/// [`confirm`] with an explicit terminal reader and prompt writer (for tests).
pub fn confirm_with(
    question: &str,
    action: &str,
    terminal: &mut dyn BufRead,
    prompt: &mut dyn Write,
) -> Result<(), ConfirmError> {
    write!(prompt, "{question} [y/N] ")?;
    prompt.flush()?;
    let mut answer = String::new();
    terminal.read_line(&mut answer)?;
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(ConfirmError::Declined {
            action: action.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(input: &str) -> (Result<(), ConfirmError>, String) {
        let mut out = Vec::new();
        let result = confirm_with(
            "Overwrite VM 100?",
            "overwrite VM 100",
            &mut input.as_bytes(),
            &mut out,
        );
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \n"] {
            assert!(ask(yes).0.is_ok(), "{yes:?}");
        }
        for no in ["\n", "n\n", "no\n", "yep\n", "ja\n", "", "non\n"] {
            assert!(
                matches!(ask(no).0, Err(ConfirmError::Declined { .. })),
                "{no:?}"
            );
        }
    }

    #[test]
    fn ask_accepts_french_and_english_and_end_of_input_is_no() {
        let run = |input: &str| {
            let mut out = Vec::new();
            ask_with(
                "Ecraser la VM 100 ?",
                "ecraser la VM 100",
                &mut input.as_bytes(),
                &mut out,
            )
        };
        for yes in ["o\n", "O\n", "oui\n", "OUI\n", "y\n", "yes\n", "yes"] {
            assert!(run(yes).is_ok(), "{yes:?}");
        }
        for no in ["", "\n", "n\n", "non\n", "nope\n"] {
            assert!(
                matches!(run(no), Err(ConfirmError::Declined { .. })),
                "{no:?}"
            );
        }
        assert!(
            super::ask("q?", "do it", true).is_ok(),
            "--force answers yes"
        );
    }

    #[test]
    fn ask_prompt_in_french() {
        let mut out = Vec::new();
        let _ = ask_with("Continuer ?", "x", &mut "o\n".as_bytes(), &mut out);
        let expected = format!("Continuer ? {} ", crate::tr!("common.prompt_yes_no"));
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(
            crate::i18n::text_in(crate::i18n::Lang::Fr, "common.prompt_yes_no"),
            "[O/n]"
        );
    }

    #[test]
    fn prompt_shows_default_no() {
        assert_eq!(ask("y\n").1, "Overwrite VM 100? [y/N] ");
    }

    #[test]
    fn assume_yes_skips_the_terminal() {
        assert!(confirm("q?", "do it", true).is_ok());
    }

    #[test]
    fn messages() {
        let e = ConfirmError::NoTerminal {
            action: "overwrite VM 100".into(),
        };
        assert_eq!(
            e.to_string(),
            "refusing to overwrite VM 100 without confirmation: no terminal to ask on; pass --yes to confirm"
        );
    }
}
