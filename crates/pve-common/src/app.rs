//! The one `main` of every tool: parse, set up the process, run, turn the outcome into an exit code.
//!
//! Each binary's `main.rs` is `pve_common::run::<Tool>()`; the tool's library implements [`Tool`]. Doing
//! the set-up in one place keeps the order the same everywhere (language and logger before the first
//! message, the interrupt handler before the first side effect, the run folder removed on every return)
//! and gives every error one shape on stderr (`tool: error: {err:#}`, the whole cause chain) and one code
//! ([`crate::exit::classify`]).

use std::process::ExitCode;

use crate::cli::CommonArgs;
use crate::exit::Code;

/// A command-line tool built on pve-common.
pub trait Tool {
    /// The binary's name: the prefix of its messages.
    const NAME: &'static str;
    /// Whether [`run`] installs [`crate::interrupt`]'s handler (cleanups, then exit 130). A tool that
    /// stops its own children on a signal and reports what it found says `false`.
    const INTERRUPT_HANDLER: bool = true;
    /// Its command line.
    type Args: clap::Parser;

    /// The shared flags (language, verbosity, colour) that set up messages for this command line.
    fn common(args: &Self::Args) -> &CommonArgs;

    /// The exit code of an error that is no usage error, busy lock or interrupt: 1 unless the tool's
    /// table says otherwise for this command line.
    fn failure_code(_args: &Self::Args) -> Code {
        Code::Failure
    }

    /// Validates the command line (a problem is a [`crate::exit::UsageError`]) and runs; the code of a run
    /// that finished.
    fn run(args: Self::Args) -> anyhow::Result<Code>;
}

/// Runs tool `T` in this process and returns its exit code: `fn main() -> ExitCode { pve_common::run::<T>() }`.
pub fn run<T: Tool>() -> ExitCode {
    // Removes this run's private folder (plans, children's output) on every return.
    let _run = crate::rundir::RemoveOnExit;
    let args = match crate::cli::parse::<T::Args>() {
        Ok(args) => args,
        Err(code) => return code.into(),
    };
    T::common(&args).init(T::NAME);
    if T::INTERRUPT_HANDLER {
        crate::interrupt::install_or_warn();
    }
    let failure = T::failure_code(&args);
    finish(T::run(args), failure).into()
}

/// The exit code of a run's outcome; an error is printed once, with its whole cause chain.
pub fn finish(result: anyhow::Result<Code>, failure: Code) -> Code {
    match result {
        Ok(code) => code,
        Err(err) => {
            crate::error!("{err:#}");
            crate::exit::classify(&err, failure)
        }
    }
}
