//! Messages in the operator's language: French or English, one catalog per language
//! (`locales/*.en.yml`, `locales/*.fr.yml`, compiled in by rust-i18n).
//!
//! The scripts the tools replace spoke French, and their callers (a TUI, runbooks, BATS suites) match
//! French words; the language is French when `--lang fr` or `PVE_TOOLS_LANG=fr` says so, or when the POSIX
//! locale does (`LC_ALL`, else `LC_MESSAGES`, else `LANG`: the first one set and non-empty decides, as POSIX
//! orders them), English otherwise. JSON documents never change with the language: only text for people
//! and the text report do.
//!
//! ```
//! use pve_common::i18n::{self, Lang};
//! assert_eq!(i18n::text_in(Lang::Fr, "common.prompt_yes_no"), "[O/n]");
//! assert_eq!(pve_common::tr_in!(Lang::En, "common.unknown_option", option = "--x"), "unknown option: --x");
//! ```

use std::borrow::Cow;
use std::sync::OnceLock;

/// The environment variable that chooses the language (`fr` or `en`), beaten only by `--lang`.
pub const ENV_LANG: &str = "PVE_TOOLS_LANG";

/// A language the tools speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// French, the language of the scripts the tools replace.
    Fr,
}

impl Lang {
    /// The catalog's locale code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// `fr`, `fr_FR.UTF-8`, `FR`... are French; any other non-empty value is English; empty is `None`.
    pub fn from_locale(value: &str) -> Option<Lang> {
        let value = value.trim();
        if value.is_empty() {
            None
        } else if value.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("fr")) {
            Some(Lang::Fr)
        } else {
            Some(Lang::En)
        }
    }

    /// Whether this is French.
    pub fn is_french(self) -> bool {
        self == Lang::Fr
    }
}

static LANG: OnceLock<Lang> = OnceLock::new();

/// Decides the language from `--lang` (`flag`), `PVE_TOOLS_LANG`, then the POSIX locale variables.
pub fn detect(flag: Option<Lang>) -> Lang {
    detect_with(flag, |name| std::env::var(name).ok())
}

/// [`detect`] with an explicit environment (for tests).
pub fn detect_with(flag: Option<Lang>, env: impl Fn(&str) -> Option<String>) -> Lang {
    if let Some(lang) = flag {
        return lang;
    }
    if let Some(lang) = env(ENV_LANG).as_deref().and_then(Lang::from_locale) {
        return lang;
    }
    // POSIX: the first of these that is set and non-empty decides; the others are not looked at.
    for name in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Some(lang) = env(name).as_deref().and_then(Lang::from_locale) {
            return lang;
        }
    }
    Lang::En
}

/// Sets the language for the rest of the process (from `main`). Later calls are ignored.
pub fn init(lang: Lang) {
    let _ = LANG.set(lang);
}

/// The language in force: the one given to [`init`], else what the environment says.
pub fn lang() -> Lang {
    *LANG.get_or_init(|| detect(None))
}

/// The message `key` in `lang`; a key missing from the catalog gives the key itself (a test checks that
/// both catalogs have the same keys, so that only happens to a typo).
pub fn text_in(lang: Lang, key: &str) -> String {
    crate::_rust_i18n_translate(lang.code(), key).into_owned()
}

/// The message `key` in the language in force.
pub fn text(key: &str) -> String {
    text_in(lang(), key)
}

/// The message `key` in `lang` with `%{name}` placeholders replaced by `args`.
pub fn format_in(lang: Lang, key: &str, args: &[(&str, String)]) -> String {
    let template: Cow<'_, str> = Cow::Owned(text_in(lang, key));
    let names: Vec<&str> = args.iter().map(|(n, _)| *n).collect();
    let values: Vec<String> = args.iter().map(|(_, v)| v.clone()).collect();
    rust_i18n::replace_patterns(&template, &names, &values)
}

/// A message from the catalog in the language in force: `tr!("check_drift.in_sync", env = name)`.
#[macro_export]
macro_rules! tr {
    ($key:expr) => {
        $crate::i18n::text($key)
    };
    ($key:expr, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::format_in(
            $crate::i18n::lang(),
            $key,
            &[$((stringify!($name), ($value).to_string())),+],
        )
    };
}

/// A message from the catalog in a given language: `tr_in!(Lang::Fr, "key", n = 3)`.
#[macro_export]
macro_rules! tr_in {
    ($lang:expr, $key:expr) => {
        $crate::i18n::text_in($lang, $key)
    };
    ($lang:expr, $key:expr, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::format_in(
            $lang,
            $key,
            &[$((stringify!($name), ($value).to_string())),+],
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn posix_order_first_non_empty_wins() {
        assert_eq!(detect_with(None, env(&[])), Lang::En);
        assert_eq!(detect_with(None, env(&[("LANG", "fr_FR.UTF-8")])), Lang::Fr);
        assert_eq!(
            detect_with(None, env(&[("LC_ALL", "C"), ("LANG", "fr_FR.UTF-8")])),
            Lang::En,
            "LC_ALL beats LANG"
        );
        assert_eq!(
            detect_with(
                None,
                env(&[("LC_ALL", ""), ("LC_MESSAGES", "fr_CA"), ("LANG", "C")])
            ),
            Lang::Fr,
            "an empty LC_ALL does not count"
        );
        assert_eq!(
            detect_with(
                None,
                env(&[("LC_MESSAGES", "en_US.UTF-8"), ("LANG", "fr_FR")])
            ),
            Lang::En
        );
    }

    #[test]
    fn flag_then_pve_tools_lang_then_locale() {
        let french_locale = [("LANG", "fr_FR.UTF-8"), (ENV_LANG, "en")];
        assert_eq!(detect_with(None, env(&french_locale)), Lang::En);
        assert_eq!(
            detect_with(Some(Lang::Fr), env(&[(ENV_LANG, "en")])),
            Lang::Fr
        );
        assert_eq!(detect_with(None, env(&[(ENV_LANG, "fr")])), Lang::Fr);
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            crate::tr_in!(Lang::Fr, "common.unknown_option", option = "--bogus"),
            "Option inconnue: --bogus"
        );
    }

    /// Every key of every `*.en.yml` catalog exists in the matching `*.fr.yml` and the other way round.
    #[test]
    fn both_catalogs_have_the_same_keys() {
        fn flatten(prefix: &str, value: &serde_norway::Value, out: &mut BTreeSet<String>) {
            match value {
                serde_norway::Value::Mapping(map) => {
                    for (k, v) in map {
                        let k = k.as_str().expect("catalog keys are strings");
                        let key = if prefix.is_empty() {
                            k.to_owned()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        flatten(&key, v, out);
                    }
                }
                _ => {
                    out.insert(prefix.to_owned());
                }
            }
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
        let mut keys = [BTreeSet::new(), BTreeSet::new()];
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let slot = if name.ends_with("en.yml") {
                0
            } else if name.ends_with("fr.yml") {
                1
            } else {
                panic!("{name}: catalogs are named <part>.en.yml or <part>.fr.yml");
            };
            let value: serde_norway::Value =
                serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            flatten("", &value, &mut keys[slot]);
            files += 1;
        }
        assert!(files >= 2);
        let only_en: Vec<_> = keys[0].difference(&keys[1]).collect();
        let only_fr: Vec<_> = keys[1].difference(&keys[0]).collect();
        assert!(only_en.is_empty(), "missing in French: {only_en:?}");
        assert!(only_fr.is_empty(), "missing in English: {only_fr:?}");
        for key in &keys[0] {
            assert_ne!(text_in(Lang::En, key), *key, "{key} is not compiled in");
            assert_ne!(text_in(Lang::Fr, key), *key, "{key} is not compiled in");
        }
    }
}
