//! Reading `terraform show -json` as a stream: what check-drift does with every plan.
//!
//! A plan of many resources is hundreds of MB of JSON, nearly all of it the before/after values of objects
//! an apply leaves alone. [`read`] never holds the document: it walks the top-level object with a serde
//! visitor, deserializes each `resource_changes` / `resource_drift` entry on its own and reduces it at
//! once ([`Classifier`]: address, action, the changed attributes with the values of changed leaves only),
//! then drops it. The values of an entry are first captured as raw JSON text, because `actions` and the
//! sensitivity masks may come before or after them; they become `Value` trees only for an entry an apply
//! (or the drift) acts on, or for the parts a mask marks sensitive (to collect the strings to mask). So
//! memory is one entry plus the reports, and the time goes into scanning the text, not into building and
//! freeing trees. The result is the same as [`super::parse`] + [`super::analyze`] +
//! [`super::sensitive_strings`] (a test compares them).

use std::collections::HashSet;
use std::fmt;
use std::io::{BufReader, Read};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// Reads and classifies the output of `terraform show -json <planfile>` from `reader` (buffered here),
/// keeping only what the report needs. `history` is [`super::analyze`]'s. A document that is not JSON, is
/// truncated, has trailing data or has fields of the wrong type is an error, as with [`super::parse`].
pub fn read<R: Read>(reader: R, history: &HashSet<String>) -> Result<Summary, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, reader));
    let summary = Top { history }.deserialize(&mut de)?;
    de.end()?;
    Ok(summary)
}

struct Top<'h> {
    history: &'h HashSet<String>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Summary;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Summary, D::Error> {
        d.deserialize_map(self)
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

/// Refuses a second occurrence of a field, as a derived `Deserialize` (and so [`super::parse`]) does.
fn once<E: de::Error>(seen: &mut Vec<&'static str>, field: &'static str) -> Result<(), E> {
    if seen.contains(&field) {
        return Err(E::duplicate_field(field));
    }
    seen.push(field);
    Ok(())
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Summary;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the JSON object of `terraform show -json`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Summary, A::Error> {
        let mut summary = Summary::default();
        let mut acc = Accumulator::default();
        let mut seen = Vec::new();
        let mut errored: Option<bool> = None;
        let mut complete: Option<bool> = None;
        let mut outputs: Option<serde_json::Map<String, Value>> = None;
        let mut relevant: Option<Vec<RelevantAttribute>> = None;
        while let Some(key) = map.next_key::<String>()? {
            if let Some(field) = FIELDS.iter().find(|f| **f == key) {
                once(&mut seen, field)?;
            }
            match key.as_str() {
                "format_version" => summary.format_version = map.next_value()?,
                "terraform_version" => summary.terraform_version = map.next_value()?,
                "errored" => errored = map.next_value()?,
                "complete" => complete = map.next_value()?,
                "resource_changes" => {
                    summary.has_resource_changes = map.next_value_seed(Entries {
                        kind: Kind::Change,
                        acc: &mut acc,
                    })?;
                }
                "resource_drift" => {
                    map.next_value_seed(Entries {
                        kind: Kind::Drift,
                        acc: &mut acc,
                    })?;
                }
                "output_changes" => outputs = map.next_value()?,
                "relevant_attributes" => relevant = map.next_value()?,
                // prior_state, planned_values, configuration...: scanned, never built.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
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
            self.history,
        );
        Ok(summary)
    }
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

/// A `resource_changes` or `resource_drift` list (or null); `true` when it is a list.
struct Entries<'a> {
    kind: Kind,
    acc: &'a mut Accumulator,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of resource changes")
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(entry) = seq.next_element::<RawEntry>()? {
            take(self.kind, entry, self.acc).map_err(de::Error::custom)?;
        }
        Ok(true)
    }
}

/// One entry with its values still JSON text.
#[derive(Deserialize)]
struct RawEntry {
    address: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, rename = "type")]
    resource_type: Option<String>,
    #[serde(default)]
    action_reason: Option<String>,
    #[serde(default)]
    change: RawChange,
}

/// A `change` object with its (large) values still JSON text and its (small) masks decoded.
#[derive(Default, Deserialize)]
struct RawChange {
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    before: Option<Box<RawValue>>,
    #[serde(default)]
    after: Option<Box<RawValue>>,
    #[serde(default)]
    after_unknown: Option<Box<RawValue>>,
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
fn take(kind: Kind, entry: RawEntry, acc: &mut Accumulator) -> Result<(), serde_json::Error> {
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
                decode(raw.before.as_deref())?
            } else {
                Value::Null
            },
            after: if contains_true(Some(&raw.after_sensitive)) {
                decode(raw.after.as_deref())?
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
            before: decode(raw.before.as_deref())?,
            after: decode(raw.after.as_deref())?,
            after_unknown: decode(raw.after_unknown.as_deref())?,
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
