//! stdout is data (STYLE.md §6): the one module allowed to print to stdout.
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
pub fn write_json<T: Serialize>(value: &T) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    write_stdout(&text)
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

    #[test]
    fn broken_pipe_is_not_an_error() {
        assert!(ignore_broken_pipe(write_to(&mut Closed, b"data")).is_ok());
        assert!(ignore_broken_pipe(Err(io::Error::from(io::ErrorKind::PermissionDenied))).is_err());
    }
}
