//! Source checks that clippy cannot express, run by `cargo xtask check`.
//!
//! An error type whose message interpolates its cause (`#[error("cannot read {path}: {source}")]`) and also
//! exposes that cause through `source()` (`#[source]`, `#[from]`, or a field named `source`) makes every
//! `{:#}` print — which is how every tool prints its errors — say the cause twice: "cannot read x: No such
//! file or directory (os error 2): No such file or directory (os error 2)". The check parses every Rust file
//! of the workspace and refuses such a variant, so the whole class stays closed.

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
    fn escaped_braces_are_not_fields() {
        assert!(!interpolates("literal {{source}} here", "source"));
        assert!(interpolates("x {source:?}", "source"));
    }
}
