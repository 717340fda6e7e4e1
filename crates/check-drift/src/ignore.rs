//! Ignore rules (`.driftignore`): known, accepted differences that should not page anyone.
//!
//! One rule per line: `<address glob> [<attribute path glob>] [expires=YYYY-MM-DD]  # reason`. Blank lines
//! and lines starting with `#` are skipped. In globs `*` matches any run of characters (dots included) and
//! `?` one character; `[`, `]`, `{` and `}` are literal, so `module.vm.proxmox_virtual_environment_vm.x["a"]`
//! can be written as is. An attribute glob matches a changed attribute path (see [`crate::plan`] for the
//! path convention) or any of its ancestors, so `initialization` covers `initialization.user_account.keys`.
//! A rule without an attribute ignores the whole resource, whatever the action.
//!
//! A resource counts as ignored when every changed attribute is covered by a rule (values known only after
//! apply are left out of that test when anything else changed: they follow from other changes). A rule is
//! valid through its `expires` date; after it, it no longer applies and is warned about. An invalid line is
//! an error naming the file and the line.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use jiff::civil::Date;

use crate::plan::ResourceReport;

/// A line of an ignore file that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Debug)]
struct Rule {
    source: String,
    address: GlobSet,
    attribute: Option<GlobSet>,
}

/// A set of rules from one or more files.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// Rules read from a file, and the warnings about it (expired rules).
#[derive(Debug)]
pub struct Parsed {
    /// The rules still in force.
    pub rules: Rules,
    /// One message per expired rule.
    pub warnings: Vec<String>,
}

/// Longest glob accepted. Resource addresses and attribute paths are a few dozen characters; a longer
/// pattern compiles to a regular expression past globset's size limit, and its `compile_matcher` panics
/// on that.
pub const MAX_GLOB_CHARS: usize = 1024;
/// Most wildcards (`*`, `?`) in one glob: each becomes a repetition in the compiled expression.
pub const MAX_GLOB_WILDCARDS: usize = 64;

fn glob(text: &str) -> Result<GlobSet, String> {
    let chars = text.chars().count();
    if chars > MAX_GLOB_CHARS {
        return Err(format!(
            "{chars} characters long; a glob is at most {MAX_GLOB_CHARS}"
        ));
    }
    let wildcards = text.chars().filter(|c| matches!(c, '*' | '?')).count();
    if wildcards > MAX_GLOB_WILDCARDS {
        return Err(format!(
            "{wildcards} wildcards; a glob has at most {MAX_GLOB_WILDCARDS}"
        ));
    }
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | '{' | '}' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    let glob = GlobBuilder::new(&escaped)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|e| e.to_string())?;
    // A set, not `compile_matcher`: building a set returns the regex compiler's errors instead of
    // panicking on them.
    GlobSetBuilder::new()
        .add(glob)
        .build()
        .map_err(|e| e.to_string())
}

/// Parses the text of an ignore file. `file` names it in messages; `today` decides what has expired.
pub fn parse(text: &str, file: &Path, today: Date) -> Result<Parsed, ParseError> {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| ParseError {
            file: file.display().to_string(),
            line,
            message,
        };
        let (body, reason) = match raw.split_once('#') {
            Some((body, reason)) => (body, reason.trim()),
            None => (raw, ""),
        };
        let mut patterns = Vec::new();
        let mut expires = None;
        for token in body.split_whitespace() {
            if let Some(date) = token.strip_prefix("expires=") {
                let date: Date = date.parse().map_err(|e| {
                    error(format!(
                        "invalid date in `{token}` (want expires=YYYY-MM-DD): {e}"
                    ))
                })?;
                expires = Some(date);
            } else {
                patterns.push(token);
            }
        }
        let (address, attribute) = match patterns.as_slice() {
            [] if expires.is_none() => continue,
            [] => {
                return Err(error(
                    "a rule needs an address glob before `expires=`".to_owned(),
                ));
            }
            [address] => (*address, None),
            [address, attribute] => (*address, Some(*attribute)),
            _ => {
                return Err(error(format!(
                    "expected `<address glob> [<attribute glob>] [expires=YYYY-MM-DD]  # reason`, got {} words; \
                     put the reason after `#`",
                    patterns.len()
                )));
            }
        };
        let source = format!("{}:{line}", file.display());
        if let Some(date) = expires
            && date < today
        {
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            };
            warnings.push(format!(
                "{source}: ignore rule `{}` expired on {date} and no longer applies{why}",
                body.trim()
            ));
            continue;
        }
        let address = glob(address).map_err(|e| error(format!("invalid address glob: {e}")))?;
        let attribute = attribute
            .map(glob)
            .transpose()
            .map_err(|e| error(format!("invalid attribute glob: {e}")))?;
        rules.push(Rule {
            source,
            address,
            attribute,
        });
    }
    Ok(Parsed {
        rules: Rules { rules },
        warnings,
    })
}

/// `path` and each of its ancestors (`a.b[1].c`, `a.b[1]`, `a.b`, `a`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let cuts = path
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '['))
        .map(|(i, _)| i);
    std::iter::once(path).chain(cuts.map(|i| &path[..i]))
}

impl Rules {
    /// Adds the rules of `other` after these.
    pub fn extend(&mut self, other: &Rules) {
        self.rules.extend(other.rules.iter().cloned());
    }

    /// Number of rules in force.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when a rule without an attribute glob matches `address`: every change of it is ignored,
    /// whatever its attributes (so they need not be known to decide).
    pub fn ignores_whole(&self, address: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.attribute.is_none() && r.address.is_match(address))
    }

    /// Marks `resource` ignored when the rules cover its whole change, recording which rules did.
    pub fn apply(&self, resource: &mut ResourceReport) {
        let matching: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.address.is_match(&resource.address))
            .collect();
        if matching.is_empty() {
            return;
        }
        if let Some(whole) = matching.iter().find(|r| r.attribute.is_none()) {
            resource.ignored = true;
            resource.ignored_by = vec![whole.source.clone()];
            return;
        }
        let known: Vec<&str> = resource
            .changed_attributes
            .iter()
            .filter(|a| !a.after_is_unknown())
            .map(|a| a.path.as_str())
            .collect();
        let considered: Vec<&str> = if known.is_empty() {
            resource
                .changed_attributes
                .iter()
                .map(|a| a.path.as_str())
                .collect()
        } else {
            known
        };
        if considered.is_empty() {
            return;
        }
        let mut by = Vec::new();
        for path in considered {
            let rule = matching.iter().find(|r| {
                r.attribute
                    .as_ref()
                    .is_some_and(|g| ancestors(path).any(|p| g.is_match(p)))
            });
            match rule {
                Some(rule) => {
                    if !by.contains(&rule.source) {
                        by.push(rule.source.clone());
                    }
                }
                None => return,
            }
        }
        resource.ignored = true;
        resource.ignored_by = by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, AttributeChange, Origin, Risk, UNKNOWN};
    use serde_json::json;

    fn today() -> Date {
        jiff::civil::date(2026, 11, 21)
    }

    fn rules(text: &str) -> Parsed {
        parse(text, Path::new(".driftignore"), today()).unwrap()
    }

    fn resource(address: &str, attrs: &[&str]) -> ResourceReport {
        ResourceReport {
            address: address.to_owned(),
            resource_type: "proxmox_virtual_environment_vm".to_owned(),
            action: Action::Update,
            action_reason: None,
            origin: Origin::Drift,
            risk: Risk::Safe,
            risk_reason: None,
            changed_attributes: attrs
                .iter()
                .map(|p| AttributeChange {
                    path: (*p).to_owned(),
                    before: json!(1),
                    after: json!(2),
                    forces_replacement: false,
                })
                .collect(),
            drifted_attributes: Vec::new(),
            ignored: false,
            ignored_by: Vec::new(),
        }
    }

    #[test]
    fn every_changed_attribute_must_be_covered() {
        let p = rules(
            "# comment\n\n\
             proxmox_virtual_environment_vm.* initialization.user_account.keys  # keys rotate\n\
             proxmox_virtual_environment_vm.web tags\n",
        );
        assert!(p.warnings.is_empty());
        assert_eq!(p.rules.len(), 2);
        let mut r = resource(
            "proxmox_virtual_environment_vm.web",
            &["initialization.user_account.keys", "tags"],
        );
        p.rules.apply(&mut r);
        assert!(r.ignored);
        assert_eq!(r.ignored_by, [".driftignore:3", ".driftignore:4"]);
        let mut r = resource(
            "proxmox_virtual_environment_vm.db",
            &["initialization.user_account.keys", "tags"],
        );
        p.rules.apply(&mut r);
        assert!(!r.ignored, "tags of db are not ignored");
    }

    #[test]
    fn attribute_glob_covers_descendants_and_address_only_covers_all() {
        let p = rules("*.web clone\nmodule.lab.proxmox_virtual_environment_vm.x[\"a\"]\n");
        let mut r = resource(
            "proxmox_virtual_environment_vm.web",
            &["clone.vm_id", "clone.datastore_id"],
        );
        p.rules.apply(&mut r);
        assert!(r.ignored);
        let mut r = resource("module.lab.proxmox_virtual_environment_vm.x[\"a\"]", &[]);
        r.action = Action::Delete;
        p.rules.apply(&mut r);
        assert!(r.ignored, "brackets are literal");
        let mut r = resource("module.lab.proxmox_virtual_environment_vm.xa", &[]);
        p.rules.apply(&mut r);
        assert!(!r.ignored);
    }

    /// Regression: the shipped default rules once named `proxmox_virtual_environment_vm.*`, which must
    /// match the whole address and so never matched VMs inside modules, where homelabs keep them.
    #[test]
    fn shipped_default_rules_match_resources_inside_modules() {
        let p = rules(include_str!("../../../packaging/driftignore.default"));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        for address in [
            "module.jellyfin.proxmox_virtual_environment_vm.vm",
            "proxmox_virtual_environment_vm.web",
        ] {
            let mut r = resource(address, &["initialization.user_account.keys"]);
            p.rules.apply(&mut r);
            assert!(r.ignored, "{address}");
            let mut r = resource(address, &["clone.vm_id"]);
            p.rules.apply(&mut r);
            assert!(r.ignored, "{address}");
            let mut r = resource(address, &["memory.dedicated"]);
            p.rules.apply(&mut r);
            assert!(
                !r.ignored,
                "real drift is never ignored by default: {address}"
            );
        }
    }

    #[test]
    fn values_known_after_apply_do_not_block_ignoring() {
        let p = rules("terraform_data.vm input.memory.*\n");
        let mut r = resource("terraform_data.vm", &["input.memory.dedicated", "output"]);
        r.changed_attributes[1].after = json!(UNKNOWN);
        p.rules.apply(&mut r);
        assert!(r.ignored);
    }

    #[test]
    fn create_needs_an_address_rule() {
        let p = rules("*.web tags\n");
        let mut r = resource("proxmox_virtual_environment_vm.web", &[]);
        r.action = Action::Create;
        p.rules.apply(&mut r);
        assert!(!r.ignored);
    }

    #[test]
    fn expired_rules_are_dropped_and_warned() {
        let p = rules(
            "*.web tags expires=2026-11-20 # until the migration\n*.db tags expires=2026-11-21\n",
        );
        assert_eq!(p.rules.len(), 1, "valid through its date");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].contains(".driftignore:1"), "{:?}", p.warnings);
        assert!(p.warnings[0].contains("until the migration"));
    }

    #[test]
    fn invalid_lines_name_file_and_line() {
        for (text, needle) in [
            ("ok\na b c\n", ":2:"),
            ("x expires=2026-13-01\n", ":1: invalid date"),
            ("expires=2026-01-01\n", ":1:"),
        ] {
            let err = parse(text, Path::new("/etc/.driftignore"), today())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("/etc/.driftignore:"), "{err}");
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn shipped_default_file_parses() {
        let text = include_str!("../../../packaging/driftignore.default");
        let p = parse(text, Path::new("driftignore.default"), today()).unwrap();
        assert!(!p.rules.is_empty());
    }
}
