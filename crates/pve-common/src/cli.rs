//! Flags every tool shares, defined once and flattened into each tool's clap struct (so they read and behave the same in every tool), and the
//! parse step: clap's usage-error code 2 becomes 64, an unknown option reads "Option inconnue: X" in French,
//! `-h`/`--help` anywhere prints the usage on stdout (starting `Usage: <name>`), and `--prog-name NAME`
//! (what the shims pass) shows the script's name instead of the binary's.
//!
//! [`CommonArgs`] goes into every tool; [`ForceArgs`] (`--force`, `-y`, `--yes`) and [`TfvarsArgs`]
//! (`--tfvars`) into those that ask before changing anything or read a variable file; `--root` and
//! `--terraform-bin` in [`EnvironmentsArgs`]; `--node` lives in pve-ssh's `NodeArgs` with the other SSH settings.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::exit::Code;
use crate::homelab::{Homelab, HomelabError};
use crate::i18n::{self, Lang};
use crate::log::{ColorChoice, Verbosity};
use crate::runner::Mode;

/// The flag the shims pass so `--help` and messages name the script (`restore-vm.sh`); removed from the
/// arguments before clap sees them, so no tool has to declare it.
pub const PROG_NAME_FLAG: &str = "--prog-name";
/// The environment variable with the same effect as [`PROG_NAME_FLAG`].
pub const ENV_PROG: &str = "PVE_TOOLS_PROG";

/// `--dry-run`, `--preview`, `--homelab`, `--lang`, `--json`, `--color`, `-v`, `-q`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CommonArgs {
    /// Contact nothing and change nothing: print every command this run would make, queries included,
    /// on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and
    /// exit 0.
    #[arg(long)]
    pub dry_run: bool,

    /// Like --dry-run, but run the read-only queries, to show exactly what would change.
    #[arg(long)]
    pub preview: bool,

    /// The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding
    /// infrastructure/proxmox/environments); default paths derive from it.
    #[arg(long, value_name = "DIR")]
    pub homelab: Option<PathBuf>,

    /// Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES /
    /// LANG). JSON output is the same in every language.
    #[arg(long, value_enum, value_name = "LANG")]
    pub lang: Option<Lang>,

    /// Print one JSON document on stdout (schema in docs/json/) instead of the text report.
    #[arg(long)]
    pub json: bool,

    /// When to colour messages on stderr.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Say more on stderr (commands run, timings).
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,

    /// Say only warnings and errors on stderr.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl CommonArgs {
    /// The runner mode: `--dry-run` (contacts nothing) wins over `--preview`.
    pub fn mode(&self) -> Mode {
        if self.dry_run {
            Mode::DryRun
        } else if self.preview {
            Mode::Preview
        } else {
            Mode::Live
        }
    }

    /// The homelab root (`--homelab`, else `PVE_HOMELAB`, else found above the cwd).
    pub fn homelab(&self) -> Result<Homelab, HomelabError> {
        Homelab::locate(self.homelab.as_deref())
    }

    /// Sets the language and the logger for the rest of the process: the first thing `main` does after
    /// parsing.
    pub fn init(&self, tool: &'static str) {
        i18n::init(i18n::detect(self.lang));
        crate::log::init(tool, self.verbosity(), self.color);
    }

    /// The verbosity these flags ask for.
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

/// `--force` (`-y`, `--yes`): the scripts' meaning, non-interactive. Every confirmation is taken as yes;
/// no safety check is loosened.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ForceArgs {
    /// Non-interactive: answer yes to every confirmation. It does not loosen any safety check.
    // Given twice (`--force --yes`, as callers of the earlier `--yes` write it) is still yes.
    #[arg(
        long = "force",
        short = 'y',
        visible_alias = "yes",
        overrides_with = "force"
    )]
    pub force: bool,
}

/// `--tfvars FILE`: the variable file a tool reads its settings from, instead of the homelab's default.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TfvarsArgs {
    /// The Terraform variable file to read settings from (default: the homelab's own, as each tool's
    /// help says).
    #[arg(long = "tfvars", value_name = "FILE")]
    pub tfvars: Option<PathBuf>,
}

/// `--root DIR` and `--terraform-bin PATH`: where the Terraform environments are and what runs them, for
/// the tools that run Terraform in an environment (restore-tfstate, rebuild-minio, rebuild-monitoring).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EnvironmentsArgs {
    /// Folder holding one subfolder per environment (default: the homelab's
    /// infrastructure/proxmox/environments; without a homelab root, that path under the current folder).
    #[arg(long, value_name = "DIR", env = "PVE_DRIFT_ROOT")]
    pub root: Option<PathBuf>,

    /// The Terraform or OpenTofu binary (default: TF_BIN, else tofu, else terraform).
    #[arg(long, value_name = "PATH")]
    pub terraform_bin: Option<PathBuf>,
}

impl EnvironmentsArgs {
    /// `--root`, else the environments folder of `homelab`, else that path under the current folder.
    pub fn root_in(&self, homelab: Option<&Homelab>) -> PathBuf {
        match (&self.root, homelab) {
            (Some(root), _) => root.clone(),
            (None, Some(h)) => h.environments_dir(),
            (None, None) => PathBuf::from(crate::homelab::ENVIRONMENTS_DIR),
        }
    }
}

/// Longest duration any flag or environment variable accepts: 100 years. Deadlines are computed as
/// `now + duration` and ages as `now - duration`; a larger value would overflow those sums (a panic in
/// debug builds, a wrap in release builds) long before it could mean anything.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The one duration parser of every tool's flags and environment variables: humantime syntax (`90s`,
/// `5m`, `26h`, `30d`), at most [`MAX_DURATION`]. Use as clap's `value_parser`; its error becomes a usage
/// error (64).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (examples: 90s, 5m, 1h, 30d)"))?;
    check_duration(d)
}

/// [`parse_duration`], refusing zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// A count of whole seconds (`--verify-timeout 300`), at most [`MAX_DURATION`].
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let secs: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("expected a whole number of seconds: {e}"))?;
    check_duration(Duration::from_secs(secs))?;
    Ok(secs)
}

fn check_duration(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!(
            "{} is longer than the longest accepted ({}, {} s)",
            humantime::format_duration(Duration::from_secs(d.as_secs())),
            humantime::format_duration(MAX_DURATION),
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

/// Parses the process arguments. `--help`/`--version` print to stdout and give `Err(Success)`; a usage error
/// prints clap's message to stderr and gives `Err(Usage)` (64), never clap's 2.
pub fn parse<P: Parser>() -> Result<P, Code> {
    parse_from(std::env::args_os())
}

/// The help layout of every tool: the usage line first, as the scripts printed it.
pub const HELP_TEMPLATE: &str =
    "{usage-heading} {usage}\n\n{about-with-newline}\n{all-args}{after-help}";

/// Takes `--prog-name NAME` / `--prog-name=NAME` out of `args`; returns the name (else `PVE_TOOLS_PROG`).
fn take_prog_name(args: &mut Vec<OsString>) -> Option<String> {
    let mut name = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        if arg == "--" {
            break;
        }
        if arg == PROG_NAME_FLAG && i + 1 < args.len() {
            name = Some(args[i + 1].to_string_lossy().into_owned());
            args.drain(i..i + 2);
            continue;
        }
        if let Some(v) = arg.strip_prefix("--prog-name=") {
            name = Some(v.to_owned());
            args.remove(i);
            continue;
        }
        i += 1;
    }
    name.or_else(|| std::env::var(ENV_PROG).ok().filter(|v| !v.is_empty()))
}

/// The `--lang` value on the command line, read before clap so its own errors speak that language.
fn early_lang(args: &[OsString]) -> Option<Lang> {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--lang=") {
            Some(v) => Some(v),
            None if arg == "--lang" => args.get(i + 1).map(String::as_str),
            None => None,
        };
        if let Some(v) = value {
            found = match v {
                "fr" => Some(Lang::Fr),
                "en" => Some(Lang::En),
                _ => found,
            };
        }
    }
    found
}

fn wants_help(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "-h" || a == "--help")
}

fn context_string(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        other => Some(other.to_string()),
    }
}

/// A usage error in `lang`: clap's own text in English; in French the scripts' words for what callers
/// match ("Option inconnue: X", "... invalide ..."), clap's text for the rest.
pub fn usage_error_text(e: &clap::Error, lang: Lang, prog: &str) -> String {
    if lang.is_french() {
        let arg = context_string(e, ContextKind::InvalidArg).unwrap_or_default();
        let line = match e.kind() {
            ErrorKind::UnknownArgument => Some(crate::tr_in!(
                Lang::Fr,
                "common.unknown_option",
                option = arg
            )),
            ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
                let value = context_string(e, ContextKind::InvalidValue).unwrap_or_default();
                Some(crate::tr_in!(
                    Lang::Fr,
                    "common.invalid_value",
                    arg = arg,
                    value = value
                ))
            }
            _ => None,
        };
        if let Some(line) = line {
            return format!(
                "{line}\n{}\n",
                crate::tr_in!(Lang::Fr, "common.usage_hint", prog = prog)
            );
        }
    }
    e.render().to_string()
}

/// [`parse`] over explicit arguments (for tests).
pub fn parse_from<P, I, T>(args: I) -> Result<P, Code>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let prog = take_prog_name(&mut args);
    if let Some(lang) = early_lang(&args) {
        i18n::init(lang);
    }
    let mut command = P::command().help_template(HELP_TEMPLATE);
    if let Some(prog) = &prog {
        command = command.bin_name(prog.clone());
    }
    let shown = prog.unwrap_or_else(|| command.get_name().to_owned());
    let result = command
        .clone()
        .try_get_matches_from(args.clone())
        .and_then(|m| P::from_arg_matches(&m));
    result.map_err(|e| {
        if e.use_stderr() && wants_help(&args) {
            // `--help` anywhere, even after a bad flag, is a request for help.
            let help = command.render_long_help().to_string();
            let _ = crate::output::write_stdout(&help);
            return Code::Success;
        }
        if !e.use_stderr() {
            // Printing help into a closed pipe (`tool --help | head -1`) is fine.
            let _ = e.print();
            return Code::Success;
        }
        let text = usage_error_text(&e, i18n::lang(), &shown);
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        Code::Usage
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(Parser, Debug)]
    #[command(name = "demo", version)]
    struct Demo {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        count: Option<u32>,
    }

    #[test]
    fn usage_error_is_64_not_2() {
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--count", "abc"]).unwrap_err(),
            Code::Usage
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--nope"]).unwrap_err(),
            Code::Usage
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "-v", "-q"]).unwrap_err(),
            Code::Usage
        );
    }

    #[test]
    fn help_and_version_are_success() {
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--help"]).unwrap_err(),
            Code::Success
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--version"]).unwrap_err(),
            Code::Success
        );
    }

    #[test]
    fn verbosity() {
        let d = parse_from::<Demo, _, _>(["demo", "-q"]).unwrap();
        assert_eq!(d.common.verbosity(), Verbosity::Quiet);
        let d = parse_from::<Demo, _, _>(["demo", "--verbose", "--dry-run"]).unwrap();
        assert_eq!(d.common.verbosity(), Verbosity::Verbose);
        assert!(d.common.dry_run);
    }

    #[test]
    fn durations_are_capped() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0s").is_err());
        for huge in ["500000000000y", "101y", "18446744073709551615s"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("longest accepted"), "{huge}: {e}");
        }
        assert_eq!(parse_seconds("300"), Ok(300));
        assert!(parse_seconds("18446744073709551615").is_err());
        assert!(parse_seconds("-1").is_err());
        assert_eq!(
            parse_seconds(&MAX_DURATION.as_secs().to_string()),
            Ok(MAX_DURATION.as_secs())
        );
    }

    #[test]
    fn french_usage_errors_use_the_scripts_words() {
        let e = Demo::try_parse_from(["demo", "--bogus"]).unwrap_err();
        let fr = usage_error_text(&e, Lang::Fr, "check-drift.sh");
        assert!(fr.starts_with("Option inconnue: --bogus\n"), "{fr}");
        assert!(fr.contains("check-drift.sh --help"), "{fr}");
        let en = usage_error_text(&e, Lang::En, "demo");
        assert!(en.contains("unexpected argument '--bogus'"), "{en}");
        let e = Demo::try_parse_from(["demo", "--count", "abc"]).unwrap_err();
        let fr = usage_error_text(&e, Lang::Fr, "demo");
        assert!(fr.contains("invalide"), "{fr}");
        assert!(fr.contains("abc"), "{fr}");
    }

    #[test]
    fn prog_name_is_taken_out_and_help_anywhere_succeeds() {
        let mut args: Vec<OsString> = ["t", "--prog-name", "restore-vm.sh", "--count", "1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(take_prog_name(&mut args).as_deref(), Some("restore-vm.sh"));
        assert_eq!(args, ["t", "--count", "1"]);
        let mut args: Vec<OsString> = vec!["t".into(), "--prog-name=x.sh".into()];
        assert_eq!(take_prog_name(&mut args).as_deref(), Some("x.sh"));
        assert_eq!(args.len(), 1);
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--nope", "--help"]).unwrap_err(),
            Code::Success
        );
        assert_eq!(
            parse_from::<Demo, _, _>(["demo", "--prog-name", "demo.sh", "--count", "2"])
                .unwrap()
                .count,
            Some(2)
        );
    }

    #[test]
    fn help_starts_with_the_usage_line_of_the_shown_name() {
        let help = Demo::command()
            .help_template(HELP_TEMPLATE)
            .bin_name("demo.sh")
            .render_help()
            .to_string();
        assert!(help.starts_with("Usage: demo.sh"), "{help}");
    }

    #[test]
    fn modes_and_force_alias() {
        #[derive(Parser, Debug)]
        struct F {
            #[command(flatten)]
            common: CommonArgs,
            #[command(flatten)]
            force: ForceArgs,
        }
        let f = F::try_parse_from(["f", "-y", "--dry-run", "--preview"]).unwrap();
        assert!(f.force.force);
        assert_eq!(f.common.mode(), Mode::DryRun, "dry-run wins");
        let f = F::try_parse_from(["f", "--yes", "--preview"]).unwrap();
        assert!(f.force.force);
        assert_eq!(f.common.mode(), Mode::Preview);
        let f = F::try_parse_from(["f", "--force", "--lang", "fr"]).unwrap();
        assert_eq!((f.force.force, f.common.lang), (true, Some(Lang::Fr)));
        assert_eq!(f.common.mode(), Mode::Live);
        F::command().debug_assert();
    }

    #[test]
    fn debug_assert() {
        use clap::CommandFactory;
        Demo::command().debug_assert();
    }
}
