//! Reading `terraform show -json` as a stream: what check-drift does with every plan.
//!
//! A plan of many resources is hundreds of MB of JSON, nearly all of it the before/after values of objects
//! an apply leaves alone. [`read`] never holds the document: it reads it in chunks and walks the top-level
//! object itself, hands each `resource_changes` / `resource_drift` entry to serde_json as a slice of the
//! chunk and reduces it at once ([`Classifier`]: address, action, the changed attributes with the values of
//! changed leaves only), then moves on. serde_json validates every byte: the fields it skips
//! (`prior_state`, `planned_values`, `configuration`...) are parsed as `IgnoredAny` piece by piece, a value
//! too large for the chunk being entered one level down. Slices rather than `from_reader` because serde_json
//! reads a `Read` one byte at a time and copies every raw value it captures; on a slice it scans strings in
//! bulk and borrows. The values of an entry stay raw JSON text, because `actions` and the sensitivity masks
//! may come before or after them; they become `Value` trees only for an entry an apply (or the drift) acts
//! on, or for the parts a mask marks sensitive (to collect the strings to mask). So memory is a chunk plus
//! one entry plus the reports. The result is the same as [`super::parse`] + [`super::analyze`] +
//! [`super::sensitive_strings`] (a test compares them).

use std::collections::HashSet;
use std::io::Read;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{
    Analysis, Change, Classifier, RelevantAttribute, ResourceChange, collect_output_sensitive,
    collect_sensitive, contains_true,
};

/// What drift detection keeps from one plan read by [`read`].
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// `format_version` (`1.2` for Terraform 1.11).
    pub format_version: Option<String>,
    /// `terraform_version`: the version that wrote the plan.
    pub terraform_version: Option<String>,
    /// The document has a `resource_changes` list (possibly empty); false when it is missing or null.
    pub has_resource_changes: bool,
    /// The classified changes, as [`super::analyze`] returns them.
    pub analysis: Analysis,
    /// Every string the plan marks sensitive, sorted, as [`super::sensitive_strings`] returns them.
    pub sensitive: Vec<String>,
}

/// Bytes read at a time (more when one value needs it).
const CHUNK: usize = 256 << 10;
/// A skipped value is parsed whole when it ends within this many buffered bytes; a larger object or list
/// is entered instead, so the buffer stays near this size whatever the plan holds.
const WHOLE_BELOW: usize = 1 << 20;
/// Objects and lists this close to the top (`prior_state.values.root_module`) are always entered: they
/// are the size of the plan, and trying them whole first would parse a chunk for nothing.
const ENTER_ABOVE_DEPTH: usize = 3;

/// Reads and classifies the output of `terraform show -json <planfile>` from `reader`, keeping only what
/// the report needs. `history` is [`super::analyze`]'s. A document that is not JSON, is truncated, has
/// trailing data or has fields of the wrong type is an error, as with [`super::parse`]; its position is a
/// byte offset (Terraform writes the plan on one line).
pub fn read<R: Read>(reader: R, history: &HashSet<String>) -> Result<Summary, serde_json::Error> {
    read_with(reader, history, CHUNK, WHOLE_BELOW)
}

/// [`read`] reading `chunk` bytes at a time and entering every object or list larger than that: the same
/// result with every value crossing chunk boundaries (for tests and fuzzing; [`read`] is what to call).
pub fn read_chunked<R: Read>(
    reader: R,
    history: &HashSet<String>,
    chunk: usize,
) -> Result<Summary, serde_json::Error> {
    read_with(reader, history, chunk, chunk)
}

fn read_with<R: Read>(
    reader: R,
    history: &HashSet<String>,
    chunk: usize,
    whole_below: usize,
) -> Result<Summary, serde_json::Error> {
    let mut input = Input {
        reader,
        buf: Vec::new(),
        pos: 0,
        dropped: 0,
        eof: false,
        chunk: chunk.max(1),
        whole_below,
    };
    let summary = top(&mut input, history)?;
    if input.peek()?.is_some() {
        return Err(input.error_here("trailing characters"));
    }
    Ok(summary)
}

/// The plan being read: `buf[pos..]` is read but not yet consumed.
struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes dropped from the front of `buf` so far (for error positions).
    dropped: u64,
    eof: bool,
    chunk: usize,
    whole_below: usize,
}

/// How one attempt to parse the next value went.
enum Attempt<T> {
    Done(T, usize),
    /// The value goes on past the buffered bytes.
    NeedMore,
    Failed(serde_json::Error),
}

/// Parses one `T` at the start of `bytes`. A value that reaches exactly the end of the bytes may be cut
/// (a number `12` of `1234`), so it counts as needing more unless the input has ended.
fn attempt<'a, T: Deserialize<'a>>(bytes: &'a [u8], eof: bool) -> Attempt<T> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    match values.next() {
        Some(Ok(v)) => {
            let end = values.byte_offset();
            if end == bytes.len() && !eof {
                Attempt::NeedMore
            } else {
                Attempt::Done(v, end)
            }
        }
        Some(Err(e)) if e.is_eof() && !eof => Attempt::NeedMore,
        Some(Err(e)) => Attempt::Failed(e),
        None if !eof => Attempt::NeedMore,
        None => Attempt::Failed(serde_json::Error::custom("EOF while parsing a value")),
    }
}

impl<R: Read> Input<R> {
    /// Reads at least one more chunk (as much as is buffered, so a long value needs few retries);
    /// `false` at the end of the input.
    fn fill(&mut self) -> Result<bool, serde_json::Error> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.dropped += self.pos as u64;
            self.pos = 0;
        }
        let want = self.chunk.max(self.buf.len() - self.pos);
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let mut filled = start;
        while filled < self.buf.len() {
            match self.reader.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(serde_json::Error::io(e));
                }
            }
        }
        self.buf.truncate(filled);
        Ok(filled > start)
    }

    /// The next byte that is not JSON whitespace, not consumed; `None` at the end of the input.
    fn peek(&mut self) -> Result<Option<u8>, serde_json::Error> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte` after optional whitespace.
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), serde_json::Error> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error_here(&format!("expected {what}"))),
            None => Err(self.error_here("EOF while parsing a value")),
        }
    }

    /// Consumes `,` (`true`: another member follows) or `close`.
    fn separator(&mut self, close: u8) -> Result<bool, serde_json::Error> {
        match self.peek()? {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            Some(_) => Err(self.error_here(&format!("expected `,` or `{}`", char::from(close)))),
            None => Err(self.error_here("EOF while parsing a value")),
        }
    }

    /// Parses the next value whole. With `limit`, gives up (`None`) once that many bytes are buffered
    /// without its end in sight.
    fn value<T: DeserializeOwned>(
        &mut self,
        limit: Option<usize>,
    ) -> Result<Option<T>, serde_json::Error> {
        self.peek()?;
        loop {
            match attempt::<T>(&self.buf[self.pos..], self.eof) {
                Attempt::Done(v, end) => {
                    self.pos += end;
                    return Ok(Some(v));
                }
                Attempt::Failed(e) if !self.cut_off(&e) => return Err(self.locate(&e)),
                Attempt::Failed(_) | Attempt::NeedMore => {
                    if limit.is_some_and(|l| self.buf.len() - self.pos >= l) {
                        return Ok(None);
                    }
                    self.fill()?;
                }
            }
        }
    }

    /// Checks and passes over the next value, entering objects and lists that are too large to parse whole.
    fn skip(&mut self, depth: usize) -> Result<(), serde_json::Error> {
        let open = self.peek()?;
        let container = matches!(open, Some(b'{' | b'['));
        if !(container && depth < ENTER_ABOVE_DEPTH)
            && self
                .value::<IgnoredAny>(container.then_some(self.whole_below))?
                .is_some()
        {
            return Ok(());
        }
        if open == Some(b'{') {
            self.pos += 1;
            if self.peek()? == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            loop {
                self.key()?;
                self.skip(depth + 1)?;
                if !self.separator(b'}')? {
                    return Ok(());
                }
            }
        }
        self.pos += 1;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip(depth + 1)?;
            if !self.separator(b']')? {
                return Ok(());
            }
        }
    }

    /// An object key and its `:`.
    fn key(&mut self) -> Result<String, serde_json::Error> {
        if self.peek()? != Some(b'"') {
            return Err(self.error_here("key must be a string"));
        }
        let key = self.value::<String>(None)?.unwrap_or_default();
        self.expect(b':', "`:`")?;
        Ok(key)
    }

    /// Reads a `resource_changes` / `resource_drift` list (or null) into `acc`; `true` when it is a list.
    fn entries(&mut self, kind: Kind, acc: &mut Accumulator) -> Result<bool, serde_json::Error> {
        if self.peek()? != Some(b'[') {
            // null is "no list"; anything else is the type error serde gives.
            return self
                .value::<Option<Vec<IgnoredAny>>>(None)
                .map(|v| v.flatten().is_some());
        }
        self.pos += 1;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(true);
        }
        loop {
            loop {
                match attempt::<RawEntry<'_>>(&self.buf[self.pos..], self.eof) {
                    Attempt::Done(entry, end) => {
                        take(kind, entry, acc).map_err(|e| self.error_here(&e.to_string()))?;
                        self.pos += end;
                        break;
                    }
                    Attempt::Failed(e) if !self.cut_off(&e) => return Err(self.locate(&e)),
                    Attempt::Failed(_) | Attempt::NeedMore => {
                        self.fill()?;
                    }
                }
            }
            if !self.separator(b']')? {
                return Ok(true);
            }
        }
    }

    /// `message` at the current position.
    fn error_here(&self, message: &str) -> serde_json::Error {
        serde_json::Error::custom(format!(
            "{message} at byte {}",
            self.dropped + self.pos as u64
        ))
    }

    /// Where in `buf[pos..]` serde_json raised `e` (0 when it gives no position).
    fn offset_in_slice(&self, e: &serde_json::Error) -> usize {
        let line_start: usize = self.buf[self.pos..]
            .split(|&b| b == b'\n')
            .take(e.line().saturating_sub(1))
            .map(|line| line.len() + 1)
            .sum();
        line_start + e.column().saturating_sub(1)
    }

    /// Whether `e` may only mean that the buffered bytes end inside a token (`-` of `-1`, `tr` of
    /// `true`, half a UTF-8 sequence), which serde_json reports as a syntax error rather than EOF.
    fn cut_off(&self, e: &serde_json::Error) -> bool {
        // The longest token a cut can leave unfinished and serde_json still reads past: `\uD83D\uDE0`.
        const TOKEN: usize = 16;
        !self.eof && e.line() > 0 && self.offset_in_slice(e) + TOKEN >= self.buf.len() - self.pos
    }

    /// `e`, raised parsing `buf[pos..]`, with its position as a byte offset in the whole document.
    fn locate(&self, e: &serde_json::Error) -> serde_json::Error {
        if e.is_io() {
            return serde_json::Error::custom(e);
        }
        let text = e.to_string();
        let message = match text.rfind(" at line ") {
            Some(i) if e.line() > 0 => &text[..i],
            _ => &text,
        };
        let offset = self.dropped + (self.pos + self.offset_in_slice(e)) as u64;
        serde_json::Error::custom(format!("{message} at byte {offset}"))
    }
}

/// The top-level fields read; each may appear once.
const FIELDS: &[&str] = &[
    "format_version",
    "terraform_version",
    "errored",
    "complete",
    "resource_changes",
    "resource_drift",
    "output_changes",
    "relevant_attributes",
];

/// Walks the top-level object, reducing the entry lists and skipping what drift detection does not read.
fn top<R: Read>(
    input: &mut Input<R>,
    history: &HashSet<String>,
) -> Result<Summary, serde_json::Error> {
    if input.peek()? != Some(b'{') {
        return Err(input.error_here("expected the JSON object of `terraform show -json`"));
    }
    input.pos += 1;
    let mut summary = Summary::default();
    let mut acc = Accumulator::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut errored: Option<bool> = None;
    let mut complete: Option<bool> = None;
    let mut outputs: Option<serde_json::Map<String, Value>> = None;
    let mut relevant: Option<Vec<RelevantAttribute>> = None;
    let mut more = input.peek()? != Some(b'}');
    if !more {
        input.pos += 1;
    }
    while more {
        let key = input.key()?;
        if let Some(field) = FIELDS.iter().find(|f| **f == key) {
            // A second occurrence is refused, as a derived `Deserialize` (and so `parse`) does.
            if seen.contains(field) {
                return Err(input.error_here(&format!("duplicate field `{field}`")));
            }
            seen.push(field);
        }
        match key.as_str() {
            "format_version" => summary.format_version = input.value(None)?.flatten(),
            "terraform_version" => summary.terraform_version = input.value(None)?.flatten(),
            "errored" => errored = input.value(None)?.flatten(),
            "complete" => complete = input.value(None)?.flatten(),
            "resource_changes" => {
                summary.has_resource_changes = input.entries(Kind::Change, &mut acc)?;
            }
            "resource_drift" => {
                input.entries(Kind::Drift, &mut acc)?;
            }
            "output_changes" => outputs = input.value(None)?.flatten(),
            "relevant_attributes" => relevant = input.value(None)?.flatten(),
            // prior_state, planned_values, configuration...: checked, never built.
            _ => input.skip(1)?,
        }
        more = input.separator(b'}')?;
    }
    collect_output_sensitive(outputs.as_ref(), &mut acc.sensitive);
    acc.sensitive.sort();
    acc.sensitive.dedup();
    summary.sensitive = acc.sensitive;
    summary.analysis = acc.classifier.finish(
        relevant.as_deref().unwrap_or_default(),
        outputs.as_ref(),
        errored.unwrap_or(false),
        complete.unwrap_or(true),
        history,
    );
    Ok(summary)
}

/// What the entries reduce to while the document streams by.
#[derive(Default)]
struct Accumulator {
    classifier: Classifier,
    sensitive: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// `resource_changes`.
    Change,
    /// `resource_drift`.
    Drift,
}

/// One entry with its values still JSON text, borrowed from the buffer.
#[derive(Deserialize)]
struct RawEntry<'a> {
    address: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, rename = "type")]
    resource_type: Option<String>,
    #[serde(default)]
    action_reason: Option<String>,
    #[serde(default, borrow)]
    change: RawChange<'a>,
}

/// A `change` object with its (large) values still JSON text and its (small) masks decoded.
#[derive(Default, Deserialize)]
struct RawChange<'a> {
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default, borrow)]
    before: Option<&'a RawValue>,
    #[serde(default, borrow)]
    after: Option<&'a RawValue>,
    #[serde(default, borrow)]
    after_unknown: Option<&'a RawValue>,
    #[serde(default)]
    before_sensitive: Value,
    #[serde(default)]
    after_sensitive: Value,
    #[serde(default)]
    replace_paths: Option<Vec<Vec<Value>>>,
}

fn decode(raw: Option<&RawValue>) -> Result<Value, serde_json::Error> {
    raw.map_or(Ok(Value::Null), |r| serde_json::from_str(r.get()))
}

/// Reduces one entry: classifies it when it matters, collects its sensitive strings, drops the rest.
fn take(kind: Kind, entry: RawEntry<'_>, acc: &mut Accumulator) -> Result<(), serde_json::Error> {
    let RawEntry {
        address,
        mode,
        resource_type,
        action_reason,
        change: raw,
    } = entry;
    let matters = match kind {
        Kind::Change => Classifier::change_matters(mode.as_deref(), &raw.actions),
        Kind::Drift => Classifier::drift_matters(mode.as_deref(), &raw.actions),
    };
    if !matters {
        // Only the parts a mask marks sensitive are decoded, for their strings.
        let change = Change {
            before: if contains_true(Some(&raw.before_sensitive)) {
                decode(raw.before)?
            } else {
                Value::Null
            },
            after: if contains_true(Some(&raw.after_sensitive)) {
                decode(raw.after)?
            } else {
                Value::Null
            },
            before_sensitive: raw.before_sensitive,
            after_sensitive: raw.after_sensitive,
            ..Change::default()
        };
        collect_sensitive(&change, &mut acc.sensitive);
        return Ok(());
    }
    let rc = ResourceChange {
        address,
        mode,
        resource_type,
        action_reason,
        change: Change {
            before: decode(raw.before)?,
            after: decode(raw.after)?,
            after_unknown: decode(raw.after_unknown)?,
            actions: raw.actions,
            before_sensitive: raw.before_sensitive,
            after_sensitive: raw.after_sensitive,
            replace_paths: raw.replace_paths,
        },
    };
    collect_sensitive(&rc.change, &mut acc.sensitive);
    match kind {
        Kind::Change => acc.classifier.change(&rc),
        Kind::Drift => acc.classifier.drift(&rc),
    }
    Ok(())
}
