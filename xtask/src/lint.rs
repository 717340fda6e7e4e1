//! Source checks that clippy cannot express, run by `cargo xtask check`.
//!
//! An error type whose message interpolates its cause (`#[error("cannot read {path}: {source}")]`) and also
//! exposes that cause through `source()` (`#[source]`, `#[from]`, or a field named `source`) makes every
//! `{:#}` print — which is how every tool prints its errors — say the cause twice: "cannot read x: No such
//! file or directory (os error 2): No such file or directory (os error 2)". The check parses every Rust file
//! of the workspace and refuses such a variant, so the whole class stays closed.
//!
//! Tests and fixtures must never name a private-range address (10/8, 172.16/12, 192.168/16, 100.64/10):
//! a test that read one could send a packet into somebody's LAN. Loopback and TEST-NET-1 (192.0.2.0/24)
//! are what fixtures use; [`private_addresses`] finds any other in the files git tracks.
//!
//! A comment or document that cites a file kept outside the repository (the house style, the scripts'
//! contract, the notes of a working session) sends its reader somewhere they cannot follow: it must say
//! the reason itself. [`outside_citations`] finds such citations in the files git tracks.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use syn::visit::Visit;

/// Folders whose Rust files are checked (relative to the workspace root).
const ROOTS: &[&str] = &["crates", "tests", "bench", "xtask", "fuzz"];

/// One finding: file, enum::variant, the duplicated field.
pub struct Finding {
    pub file: PathBuf,
    pub item: String,
    pub field: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: the message shows `{}`, which is also its source(): the error chain would print it twice \
             (drop #[source]/#[from] and rename the field, or drop it from the message)",
            self.file.display(),
            self.item,
            self.field
        )
    }
}

/// Every finding in the workspace at `root`.
pub fn duplicated_causes(root: &Path) -> Result<Vec<Finding>> {
    let mut files = Vec::new();
    for dir in ROOTS {
        collect_rs(&root.join(dir), &mut files)?;
    }
    let mut findings = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        let Ok(ast) = syn::parse_file(&text) else {
            // rustc reports files that do not parse; this check has nothing to add.
            continue;
        };
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        let mut visitor = ErrorVisitor {
            file: rel,
            findings: &mut findings,
        };
        visitor.visit_file(&ast);
    }
    Ok(findings)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

struct ErrorVisitor<'a> {
    file: PathBuf,
    findings: &'a mut Vec<Finding>,
}

impl<'ast> Visit<'ast> for ErrorVisitor<'_> {
    fn visit_item_enum(&mut self, item: &'ast syn::ItemEnum) {
        for variant in &item.variants {
            self.check(
                &format!("{}::{}", item.ident, variant.ident),
                &variant.attrs,
                &variant.fields,
            );
        }
        syn::visit::visit_item_enum(self, item);
    }

    fn visit_item_struct(&mut self, item: &'ast syn::ItemStruct) {
        self.check(&item.ident.to_string(), &item.attrs, &item.fields);
        syn::visit::visit_item_struct(self, item);
    }
}

impl ErrorVisitor<'_> {
    fn check(&mut self, item: &str, attrs: &[syn::Attribute], fields: &syn::Fields) {
        let Some(format) = error_format(attrs) else {
            return;
        };
        for (index, field) in fields.iter().enumerate() {
            let name = field
                .ident
                .as_ref()
                .map_or_else(|| index.to_string(), ToString::to_string);
            let is_source = name == "source"
                || field
                    .attrs
                    .iter()
                    .any(|a| a.path().is_ident("source") || a.path().is_ident("from"));
            if is_source && interpolates(&format, &name) {
                self.findings.push(Finding {
                    file: self.file.clone(),
                    item: item.to_owned(),
                    field: name,
                });
            }
        }
    }
}

/// The format string of `#[error("...", ...)]`, if any.
fn error_format(attrs: &[syn::Attribute]) -> Option<String> {
    let attr = attrs.iter().find(|a| a.path().is_ident("error"))?;
    let list = attr.meta.require_list().ok()?;
    let mut tokens = list.tokens.clone().into_iter();
    match tokens.next()? {
        proc_macro2::TokenTree::Literal(lit) => {
            match syn::parse_str::<syn::LitStr>(&lit.to_string()) {
                Ok(s) => Some(s.value()),
                Err(_) => None,
            }
        }
        _ => None,
    }
}

/// Whether `format` shows the field `name` (`{name}`, `{name:?}`, `{0}`...), `{{` escapes aside.
fn interpolates(format: &str, name: &str) -> bool {
    let unescaped = format.replace("{{", "");
    unescaped.split('{').skip(1).any(|part| {
        let arg = part
            .split(['}', ':'])
            .next()
            .unwrap_or_default()
            .trim_start_matches('.');
        arg == name
    })
}

/// `file:line: address` for every private-range IPv4 address in the files git tracks under `root`.
pub fn private_addresses(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for rel in tracked_files(root)? {
        let Ok(text) = std::fs::read(root.join(&rel)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        for (n, line) in text.lines().enumerate() {
            for addr in ipv4_literals(line) {
                if is_private(addr) {
                    found.push(format!(
                        "{rel}:{}: {}.{}.{}.{}",
                        n + 1,
                        addr[0],
                        addr[1],
                        addr[2],
                        addr[3]
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// Names of files that live outside the repository; spelled in pieces so this file does not cite them.
const OUTSIDE_FILES: &[[&str; 2]] = &[
    ["STYLE", ".md"],
    ["CONTRACT", ".md"],
    ["DEPENDENCY", "-NOTES"],
    ["HELPERS", ".md"],
    ["/work/", "shared"],
];

/// The tracked files that cite a file outside the repository, as `path:line: name`. The changelog is
/// history and is left as written.
pub fn outside_citations(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for rel in tracked_files(root)? {
        if rel == "CHANGELOG.md" || rel.starts_with("vendor/") {
            continue;
        }
        let Ok(text) = std::fs::read(root.join(&rel)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        for (n, line) in text.lines().enumerate() {
            if let Some(name) = cited_outside_file(line) {
                found.push(format!("{rel}:{}: {name}", n + 1));
            }
        }
    }
    Ok(found)
}

/// The outside file `line` names, if any.
fn cited_outside_file(line: &str) -> Option<String> {
    OUTSIDE_FILES
        .iter()
        .map(|[a, b]| format!("{a}{b}"))
        .find(|name| line.contains(name.as_str()))
}

/// The files git tracks under `root`, relative to it.
// A developer task, not a tool: there is no dry-run to honour, and git is only read.
#[allow(clippy::disallowed_methods)]
fn tracked_files(root: &Path) -> Result<Vec<String>> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .context("git ls-files")?;
    anyhow::ensure!(out.status.success(), "git ls-files failed");
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|rel| String::from_utf8_lossy(rel).into_owned())
        .collect())
}

/// Dotted quads in `line` that stand alone (not part of a longer dotted number such as a version).
fn ipv4_literals(line: &str) -> Vec<[u8; 4]> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit()
            && (i == 0 || !(bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
            end += 1;
        }
        let token = line[i..end].trim_end_matches('.');
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() == 4 {
            let octets: Vec<u8> = parts.iter().filter_map(|p| p.parse().ok()).collect();
            if let [a, b, c, d] = octets[..] {
                out.push([a, b, c, d]);
            }
        }
        i = end.max(i + 1);
    }
    out
}

fn is_private(a: [u8; 4]) -> bool {
    a[0] == 10
        || (a[0] == 172 && (16..32).contains(&a[1]))
        || (a[0] == 192 && a[1] == 168)
        || (a[0] == 100 && (64..128).contains(&a[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(src: &str) -> Vec<String> {
        let ast = syn::parse_file(src).expect("test source parses");
        let mut out = Vec::new();
        ErrorVisitor {
            file: PathBuf::from("x.rs"),
            findings: &mut out,
        }
        .visit_file(&ast);
        out.into_iter()
            .map(|f| format!("{}.{}", f.item, f.field))
            .collect()
    }

    #[test]
    fn citations_of_outside_files_are_found() {
        let style = format!("//! stdout is data ({}{} §6).", "STYLE", ".md");
        assert_eq!(
            cited_outside_file(&style),
            Some(format!("{}{}", "STYLE", ".md"))
        );
        let notes = format!("// ~400 ms each ({}{}).", "DEPENDENCY", "-NOTES");
        assert!(cited_outside_file(&notes).is_some());
        let contract = format!(
            "# the script's contract ({}{}, \"restore-vm.sh\")",
            "CONTRACT", ".md"
        );
        assert!(cited_outside_file(&contract).is_some());
        assert_eq!(
            cited_outside_file("//! stdout is data: a pipe only ever reads results."),
            None
        );
        assert_eq!(
            cited_outside_file("see docs/EXIT-CODES.md and README.md"),
            None
        );
    }

    #[test]
    fn named_source_in_message_is_found() {
        let src = r#"
            enum E {
                #[error("cannot read {}: {source}", path.display())]
                Read { path: PathBuf, #[source] source: io::Error },
                #[error("gave up after {n}: {last}")]
                GaveUp { n: u32, #[source] last: Box<E> },
                #[error("cannot read {}", path.display())]
                Fine { path: PathBuf, source: io::Error },
                #[error("{what}: {cause}")]
                AlsoFine { what: String, cause: io::Error },
            }"#;
        assert_eq!(findings(src), ["E::Read.source", "E::GaveUp.last"]);
    }

    #[test]
    fn tuple_from_in_message_is_found() {
        let src = r#"
            enum E {
                #[error("read error: {0}")]
                Io(#[from] io::Error),
                #[error("read error")]
                Quiet(#[from] fmt::Error),
                #[error("{0}")]
                Plain(String),
            }
            #[error("whole: {0:?}")]
            struct S(#[source] io::Error);"#;
        assert_eq!(findings(src), ["E::Io.0", "S.0"]);
    }

    #[test]
    fn private_addresses_are_told_from_versions_and_test_net() {
        let private = |l: &str| {
            ipv4_literals(l)
                .into_iter()
                .filter(|a| is_private(*a))
                .count()
        };
        // Built at run time so this file itself names no private address.
        let (ten, one72, one92) = (10, 172, 192);
        assert_eq!(private(&format!("ip={ten}.0.0.5/24,gw={ten}.0.0.1")), 2);
        assert_eq!(
            private(&format!("host {one72}.20.1.1 and {one72}.32.0.1")),
            1
        );
        assert_eq!(private(&format!("\"{one92}.168.1.10:8006\"")), 1);
        assert_eq!(private("192.0.2.10 127.0.0.1 v1.10.0.1.2 10.0.0"), 0);
    }

    #[test]
    fn escaped_braces_are_not_fields() {
        assert!(!interpolates("literal {{source}} here", "source"));
        assert!(interpolates("x {source:?}", "source"));
    }
}
