//! stdout is data: the one module allowed to print to stdout, so a pipe (`check-drift --json | jq`) only
//! ever reads results, and logs, prompts and warnings (on stderr) can never corrupt it.
//!
//! A closed pipe (`check-drift --json | head -1`) is not an error: the reader has what it wanted, so writing
//! stops quietly and the tool's exit code stays what the run decided.

#![allow(clippy::print_stdout)]

use std::io::{self, Write};

use serde::Serialize;

/// Writes `text` to stdout as is, never cut by an interrupt. A broken pipe counts as success.
pub fn write_stdout(text: &str) -> io::Result<()> {
    // An interrupt waits for the whole document: a reader gets all of it or nothing.
    let _whole = crate::interrupt::critical();
    ignore_broken_pipe(write_to(&mut io::stdout().lock(), text.as_bytes()))
}

/// Writes `value` as one pretty-printed JSON document and a newline to stdout. A broken pipe counts as
/// success.
///
/// The document is written as it is serialised, through a buffer: a large one (a state of hundreds of
/// MiB) is never held as text as well.
pub fn write_json<T: Serialize>(value: &T) -> io::Result<()> {
    let _whole = crate::interrupt::critical();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| write_to(&mut out, b"\n"));
    ignore_broken_pipe(written)
}

fn write_to(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

/// Turns a broken-pipe error into success.
pub fn ignore_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Makes a string from outside (an S3 version id or lock field, a backup note, a guest name, a remote
/// message) safe to print on one line of a terminal, a log or a text report: control characters (newline,
/// escape, carriage return, DEL, the C1 range) and the invisible characters that reorder or hide text
/// (bidirectional overrides, zero-width marks) are written as `\n`, `\e`, `\u{202e}`; a backslash is
/// doubled so the result reads back unambiguously. A newline cannot start a fake `ok:` line, and an escape
/// sequence never reaches the terminal. JSON output needs none of this: serde escapes it.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || needs_escape(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    std::borrow::Cow::Owned(out)
}

/// [`escape`], keeping newlines and tabs: for multi-line messages (a remote command's stderr quoted in an
/// error) where only terminal control must be neutralised. The logger applies it to every line it writes.
pub fn escape_keep_lines(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c != '\n' && c != '\t' && needs_escape(c))
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\n' || c == '\t' || !needs_escape(c) {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x1b' => out.push_str("\\e"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// The envelope of every `--json` document: `schema` (`<name>/v<n>`; fields are only ever added, a breaking
/// change bumps the version) and `tool`, then the tool's own fields, at the same level: the envelope adds no
/// nesting, so the documents read exactly as those in `docs/json/`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Document<T> {
    /// The document's schema name and version (`pve-restore-vm/v1`).
    pub schema: String,
    /// The tool that wrote it.
    pub tool: ToolInfo,
    /// The tool's own fields.
    #[serde(flatten)]
    pub body: T,
}

impl<T> Document<T> {
    /// `body` under `schema`, written by `tool`.
    pub fn new(schema: &str, tool: ToolInfo, body: T) -> Self {
        Document {
            schema: schema.to_owned(),
            tool,
            body,
        }
    }
}

/// Writes a run's result to stdout, the one way every tool does: with `--json` (`json`), `doc` as one JSON
/// document; else the text `render` makes (called only then), as the replaced scripts printed it. A closed
/// pipe counts as success; nothing else is ever written to stdout.
pub fn emit<T: Serialize>(
    json: bool,
    doc: &T,
    render: impl FnOnce(&T) -> String,
) -> io::Result<()> {
    if json {
        write_json(doc)
    } else {
        write_stdout(&render(doc))
    }
}

/// The `tool` object every JSON document carries.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ToolInfo {
    /// Binary name.
    pub name: String,
    /// Its version.
    pub version: String,
}

impl ToolInfo {
    /// Describes the calling tool.
    pub fn new(name: &str, version: &str) -> Self {
        ToolInfo {
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn untrusted_text_is_escaped() {
        use super::{escape, escape_keep_lines};
        assert_eq!(escape("plain name-1.vma.zst"), "plain name-1.vma.zst");
        assert_eq!(
            escape("v1\nrestore-tfstate: ok: done"),
            "v1\\nrestore-tfstate: ok: done"
        );
        assert_eq!(escape("\x1b[2J\x07"), "\\e[2J\\u{7}");
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_eq!(escape("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape_keep_lines("a\n\tb\x1b[0m"), "a\n\tb\\e[0m");
        assert_eq!(escape_keep_lines("C:\\dir"), "C:\\dir");
    }

    use super::*;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A document as the tools wrote it before the envelope: `schema` and `tool` as its first fields.
    #[derive(Serialize)]
    struct Inline {
        schema: &'static str,
        tool: ToolInfo,
        action: &'static str,
        vmid: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        lock: Option<String>,
        backups: Vec<String>,
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Body {
        action: String,
        vmid: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        lock: Option<String>,
        backups: Vec<String>,
    }

    #[test]
    fn document_is_byte_for_byte_the_inline_document_and_decodes() {
        let tool = ToolInfo::new("restore-vm", "0.1.0");
        for lock in [None, Some("held".to_owned())] {
            let inline = Inline {
                schema: "pve-restore-vm/v1",
                tool: tool.clone(),
                action: "list",
                vmid: 100,
                lock: lock.clone(),
                backups: vec!["local:backup/a.vma.zst".into()],
            };
            let doc = Document::new(
                "pve-restore-vm/v1",
                tool.clone(),
                Body {
                    action: "list".into(),
                    vmid: 100,
                    lock,
                    backups: vec!["local:backup/a.vma.zst".into()],
                },
            );
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            assert_eq!(
                text,
                serde_json::to_string_pretty(&inline).unwrap_or_default()
            );
            let back: Document<Body> = serde_json::from_str(&text).expect("decodes");
            assert_eq!(back, doc);
        }
    }

    #[test]
    fn broken_pipe_is_not_an_error() {
        assert!(ignore_broken_pipe(write_to(&mut Closed, b"data")).is_ok());
        assert!(ignore_broken_pipe(Err(io::Error::from(io::ErrorKind::PermissionDenied))).is_err());
    }
}
