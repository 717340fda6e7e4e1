//! Messages for people, on stderr, in one shape: `check-drift: warning: ...`, so an operator, a log and a
//! script matching the replaced scripts' lines read every tool the same way.
//!
//! Configured once by `main` from `--color`, `-v` and `-q`; colour only on a terminal and only without
//! `NO_COLOR`. No timestamps ever: on a terminal they are noise, and under systemd journald adds its own.
//! Every line passes through [`crate::secret::mask`]. Tests can capture lines with [`capture`] instead of
//! writing to stderr.

use std::cell::RefCell;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use crate::secret;

/// How much to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors and warnings only.
    Quiet,
    /// The default: also progress and results.
    Normal,
    /// `-v`: also debug detail (commands run, timings).
    Verbose,
}

/// The kind of a message, which decides its tag, colour and whether it is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is wrong but the run goes on.
    Warn,
    /// Progress.
    Info,
    /// A step finished well.
    Success,
    /// Detail for `-v`.
    Debug,
    /// A dry-run echo: always shown, even with `-q`, because it is what the user asked for.
    DryRun,
}

/// `--color`: when to colour messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Decides colour for a stream that is (or is not) a terminal, honouring `NO_COLOR`.
    pub fn resolve(self, is_terminal: bool, no_color_set: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color_set,
        }
    }
}

#[derive(Debug)]
struct Config {
    tool: &'static str,
    verbosity: Verbosity,
    color: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

thread_local! {
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Sets the tool name, verbosity and colour for the rest of the process. Later calls are ignored.
pub fn init(tool: &'static str, verbosity: Verbosity, color: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = color.resolve(std::io::stderr().is_terminal(), no_color);
    let _ = CONFIG.set(Config {
        tool,
        verbosity,
        color,
    });
}

/// The tool name given to [`init`] (`pve-tools` before).
pub fn tool_name() -> &'static str {
    CONFIG.get().map_or("pve-tools", |c| c.tool)
}

/// The configured verbosity (Normal before [`init`]).
pub fn verbosity() -> Verbosity {
    CONFIG.get().map_or(Verbosity::Normal, |c| c.verbosity)
}

/// Whether messages are coloured.
pub fn color_enabled() -> bool {
    CONFIG.get().is_some_and(|c| c.color)
}

fn shown(level: Level, verbosity: Verbosity) -> bool {
    match level {
        Level::Error | Level::Warn | Level::DryRun => true,
        Level::Info | Level::Success => verbosity >= Verbosity::Normal,
        Level::Debug => verbosity >= Verbosity::Verbose,
    }
}

/// Formats one message line without the trailing newline, in English.
pub fn format_line(tool: &str, level: Level, color: bool, message: &str) -> String {
    format_line_in(crate::i18n::Lang::En, tool, level, color, message)
}

/// Formats one message line in `lang`. French lines take the replaced scripts' shape (`[INFO] ...`,
/// `[OK] ...`, `[WARN] ...`, `[ERROR] ...`), which their callers grep; English keeps `tool: warning: ...`.
pub fn format_line_in(
    lang: crate::i18n::Lang,
    tool: &str,
    level: Level,
    color: bool,
    message: &str,
) -> String {
    if lang.is_french() {
        let (tag, ansi) = match level {
            Level::Error => ("[ERROR] ", "1;31"),
            Level::Warn => ("[WARN] ", "1;33"),
            Level::Info => ("[INFO] ", "1;34"),
            Level::Success => ("[OK] ", "1;32"),
            Level::Debug => ("[DEBUG] ", "2"),
            Level::DryRun => ("", "36"),
        };
        let message = secret::mask(message);
        return if color && !ansi.is_empty() {
            format!("\x1b[{ansi}m{tag}\x1b[0m{message}")
        } else {
            format!("{tag}{message}")
        };
    }
    let (tag, ansi) = match level {
        Level::Error => ("error: ", "1;31"),
        Level::Warn => ("warning: ", "1;33"),
        Level::Info => ("", ""),
        Level::Success => ("ok: ", "1;32"),
        Level::Debug => ("debug: ", "2"),
        Level::DryRun => ("", "36"),
    };
    // Terminal control from a remote message or a file name never reaches the terminal; a newline stays
    // (multi-line messages), so fields that must stay on one line are escaped where they are formatted.
    let message = secret::mask(message);
    let message = crate::output::escape_keep_lines(&message);
    if color && !ansi.is_empty() {
        format!("{tool}: \x1b[{ansi}m{tag}\x1b[0m{message}")
    } else {
        format!("{tool}: {tag}{message}")
    }
}

/// Writes one message if the verbosity allows it. Used by the macros; call them instead.
pub fn emit(level: Level, args: fmt::Arguments<'_>) {
    let verbosity = verbosity();
    if !shown(level, verbosity) {
        return;
    }
    let tool = CONFIG.get().map_or("pve-tools", |c| c.tool);
    let line = format_line_in(
        crate::i18n::lang(),
        tool,
        level,
        color_enabled(),
        &args.to_string(),
    );
    let captured = CAPTURE.with(|cap| {
        if let Some(lines) = cap.borrow_mut().as_mut() {
            lines.push(line.clone());
            true
        } else {
            false
        }
    });
    if !captured {
        // A closed stderr is not worth failing over; there is nobody left to tell.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Runs `f` with this thread's messages collected instead of written; returns them with `f`'s result.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    CAPTURE.with(|cap| *cap.borrow_mut() = Some(Vec::new()));
    let result = f();
    let lines = CAPTURE
        .with(|cap| cap.borrow_mut().take())
        .unwrap_or_default();
    (result, lines)
}

/// Logs an error: `tool: error: ...`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Error, format_args!($($arg)*)) };
}
/// Logs a warning: `tool: warning: ...`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Warn, format_args!($($arg)*)) };
}
/// Logs progress: `tool: ...` (hidden by `-q`).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Info, format_args!($($arg)*)) };
}
/// Logs a finished step: `tool: ok: ...` (hidden by `-q`).
#[macro_export]
macro_rules! success {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Success, format_args!($($arg)*)) };
}
/// Logs detail shown only with `-v`: `tool: debug: ...`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Debug, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_without_colour() {
        assert_eq!(
            format_line("restore-vm", Level::Error, false, "boom"),
            "restore-vm: error: boom"
        );
        assert_eq!(
            format_line("restore-vm", Level::Warn, false, "hm"),
            "restore-vm: warning: hm"
        );
        assert_eq!(
            format_line("restore-vm", Level::Info, false, "step"),
            "restore-vm: step"
        );
    }

    #[test]
    fn french_lines_have_the_scripts_tags() {
        use crate::i18n::Lang;
        let fr = |level| format_line_in(Lang::Fr, "check-drift", level, false, "x");
        assert_eq!(fr(Level::Info), "[INFO] x");
        assert_eq!(fr(Level::Success), "[OK] x");
        assert_eq!(fr(Level::Warn), "[WARN] x");
        assert_eq!(fr(Level::Error), "[ERROR] x");
        assert_eq!(fr(Level::DryRun), "x");
        assert_eq!(
            format_line_in(Lang::En, "check-drift", Level::Warn, false, "x"),
            "check-drift: warning: x"
        );
    }

    #[test]
    fn colour_only_when_resolved() {
        assert!(format_line("t", Level::Error, true, "x").contains("\x1b[1;31m"));
        assert!(!format_line("t", Level::Error, false, "x").contains('\x1b'));
        assert!(!format_line("t", Level::Info, false, "name \x1b]0;owned\x07").contains('\x1b'));
        assert!(ColorChoice::Auto.resolve(true, false));
        assert!(!ColorChoice::Auto.resolve(false, false));
        assert!(
            !ColorChoice::Auto.resolve(true, true),
            "NO_COLOR wins over a terminal"
        );
        assert!(ColorChoice::Always.resolve(false, true));
        assert!(!ColorChoice::Never.resolve(true, false));
    }

    #[test]
    fn quiet_keeps_errors_warnings_and_dry_run() {
        assert!(shown(Level::Error, Verbosity::Quiet));
        assert!(shown(Level::Warn, Verbosity::Quiet));
        assert!(shown(Level::DryRun, Verbosity::Quiet));
        assert!(!shown(Level::Info, Verbosity::Quiet));
        assert!(!shown(Level::Debug, Verbosity::Normal));
        assert!(shown(Level::Debug, Verbosity::Verbose));
    }

    #[test]
    fn lines_are_masked() {
        crate::secret::register("s3cr3t-token-value");
        assert_eq!(
            format_line("t", Level::Info, false, "token=s3cr3t-token-value"),
            format!("t: token={}", crate::secret::MASK)
        );
    }

    #[test]
    fn capture_collects_instead_of_writing() {
        let ((), lines) = capture(|| {
            crate::warn!("attempt {}/{} failed", 1, 3);
            crate::debug!("hidden at normal verbosity");
        });
        assert_eq!(
            lines,
            vec!["pve-tools: warning: attempt 1/3 failed".to_owned()]
        );
    }
}
