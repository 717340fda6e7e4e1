//! Terraform state documents: validation, summary, difference, serial bump and masking.
//!
//! A state this tool writes must be one Terraform accepts: JSON, `version` 4, a `lineage`, a `serial` and a
//! `resources` array. Anything else is refused with what is wrong, before any write.
//!
//! A state can weigh hundreds of MiB, so it is never turned into a tree: one pass over its bytes (in
//! memory, or straight from a stream) keeps only the fields a check needs ([`StateInfo`]), a restored
//! document is the original bytes with the serial's digits replaced ([`State::with_serial`]), and a masked
//! document is written resource by resource ([`State::masked`]). A state is held in memory at most once.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::ops::{Deref, Range};

use anyhow::{Context, Result, bail};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// What a state says about itself: enough to list, compare and guard it, without its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateInfo {
    /// `serial`.
    pub serial: u64,
    /// `lineage`.
    pub lineage: String,
    /// `terraform_version`.
    pub terraform_version: String,
    addresses: BTreeSet<String>,
}

/// A parsed, valid state and the bytes it was read from (borrowed: never copied).
#[derive(Clone, Debug)]
pub struct State<'a> {
    info: StateInfo,
    doc: &'a [u8],
    serial_at: Range<usize>,
}

impl Deref for State<'_> {
    type Target = StateInfo;

    fn deref(&self) -> &StateInfo {
        &self.info
    }
}

/// A short description of a state, for listings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// `serial`.
    pub serial: u64,
    /// `lineage`.
    pub lineage: String,
    /// `terraform_version`.
    pub terraform_version: String,
    /// Number of resource instances.
    pub resources: usize,
}

/// What changes between two states.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diff {
    /// Instances in the new state only.
    pub added: Vec<String>,
    /// Instances in the old state only.
    pub removed: Vec<String>,
}

impl<'a> State<'a> {
    /// Parses and validates `bytes`, which the state keeps borrowing.
    pub fn parse(bytes: &'a [u8]) -> Result<State<'a>> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            bail!("the state is empty");
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = Top::<&RawValue>::deserialize(&mut de)
            .and_then(|top| de.end().map(|()| top))
            .map_err(|e| explain(&e))?;
        let fields = match parsed {
            Top::Object(fields) => fields,
            Top::NotObject => bail!("the state is not a JSON object"),
        };
        let info = fields.check()?;
        // The serial's text is a slice of `bytes`: where it lies is where the new serial goes.
        let serial_at = fields
            .serial
            .map(|raw| {
                let text = raw.get();
                let start = (text.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
                start..start.saturating_add(text.len())
            })
            .filter(|at| bytes.get(at.clone()) == fields.serial.map(|raw| raw.get().as_bytes()));
        let Some(serial_at) = serial_at else {
            bail!("the state's serial could not be located in the document");
        };
        Ok(State {
            info,
            doc: bytes,
            serial_at,
        })
    }

    /// What the state says about itself, without its content.
    pub fn info(&self) -> &StateInfo {
        &self.info
    }

    /// The state without its document.
    pub fn into_info(self) -> StateInfo {
        self.info
    }

    /// The document with `serial` replaced: the bytes as read (Terraform's formatting kept), only the
    /// serial's digits changed, and a final newline.
    pub fn with_serial(&self, serial: u64) -> Rewritten<'a> {
        let head = self.doc.get(..self.serial_at.start).unwrap_or_default();
        let tail = self.doc.get(self.serial_at.end..).unwrap_or_default();
        Rewritten {
            head,
            serial: serial.to_string(),
            tail,
            newline: if tail.ends_with(b"\n") { "" } else { "\n" },
        }
    }

    /// [`State::with_serial`] in one buffer (for small states and tests; writes use the parts).
    pub fn to_bytes_with_serial(&self, serial: u64) -> Vec<u8> {
        self.with_serial(serial).to_vec()
    }

    /// The document for display, pretty-printed, one resource parsed at a time. Unless `sensitive`,
    /// values are replaced by "(sensitive)": outputs marked `sensitive`, instance attributes named in
    /// `sensitive_attributes`, and attributes whose names look secret.
    pub fn masked(&self, sensitive: bool) -> Masked<'_> {
        Masked {
            doc: self.doc,
            reveal: sensitive,
        }
    }
}

/// A state document with a new serial, in parts that are sent one after the other.
#[derive(Clone, Debug)]
pub struct Rewritten<'a> {
    head: &'a [u8],
    serial: String,
    tail: &'a [u8],
    newline: &'static str,
}

impl Rewritten<'_> {
    /// The parts, in order.
    pub fn parts(&self) -> [&[u8]; 4] {
        [
            self.head,
            self.serial.as_bytes(),
            self.tail,
            self.newline.as_bytes(),
        ]
    }

    /// Its SHA-256, to compare with what is read back.
    pub fn sha256(&self) -> Vec<u8> {
        let mut hash = Sha256::new();
        for part in self.parts() {
            hash.update(part);
        }
        hash.finalize().to_vec()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// Whether it is empty (never, for a valid state).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// SHA-256 of everything `reader` yields (a state read back from S3, streamed).
pub fn sha256_of(reader: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().to_vec());
        }
        hash.update(buf.get(..n).unwrap_or_default());
    }
}

impl StateInfo {
    /// Parses and validates a state read from `reader` as it arrives (an S3 answer, a file): nothing
    /// but the summary fields is kept.
    pub fn read(reader: &mut dyn Read) -> Result<StateInfo> {
        let mut seen = Seen {
            inner: reader,
            content: false,
        };
        let parsed = {
            let buffered = std::io::BufReader::with_capacity(64 * 1024, &mut seen);
            let mut de = serde_json::Deserializer::from_reader(buffered);
            Top::<Box<RawValue>>::deserialize(&mut de).and_then(|top| de.end().map(|()| top))
        };
        let parsed = match parsed {
            Err(e) if e.is_eof() && !seen.content => bail!("the state is empty"),
            Err(e) => return Err(explain(&e)),
            Ok(parsed) => parsed,
        };
        match parsed {
            Top::Object(fields) => fields.check(),
            Top::NotObject => bail!("the state is not a JSON object"),
        }
    }

    /// Parses and validates `bytes`, keeping only the summary fields.
    pub fn parse(bytes: &[u8]) -> Result<StateInfo> {
        State::parse(bytes).map(State::into_info)
    }

    /// The resource instance addresses (`module.jellyfin.terraform_data.vm`, `data.x.y`, `a.b["k"]`).
    pub fn addresses(&self) -> &BTreeSet<String> {
        &self.addresses
    }

    /// Summary for listings.
    pub fn summary(&self) -> Summary {
        Summary {
            serial: self.serial,
            lineage: self.lineage.clone(),
            terraform_version: self.terraform_version.clone(),
            resources: self.addresses.len(),
        }
    }

    /// What `new` adds and removes relative to `self`.
    pub fn diff(&self, new: &StateInfo) -> Diff {
        Diff {
            added: new.addresses.difference(&self.addresses).cloned().collect(),
            removed: self.addresses.difference(&new.addresses).cloned().collect(),
        }
    }
}

/// Notes whether anything but whitespace went through (an empty stream is "empty", not "not JSON").
struct Seen<'r> {
    inner: &'r mut dyn Read,
    content: bool,
}

impl Read for Seen<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.content {
            self.content = buf
                .get(..n)
                .is_some_and(|b| !b.iter().all(u8::is_ascii_whitespace));
        }
        Ok(n)
    }
}

fn explain(e: &serde_json::Error) -> anyhow::Error {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => anyhow::anyhow!("the state is not valid JSON ({e})"),
        Category::Io => anyhow::anyhow!("cannot read the state ({e})"),
        Category::Data => anyhow::anyhow!("the state is not a usable Terraform state ({e})"),
    }
}

/// A raw JSON value, borrowed from the document or owned (read from a stream).
trait RawText {
    fn text(&self) -> &str;
}

impl RawText for &RawValue {
    fn text(&self) -> &str {
        self.get()
    }
}

impl RawText for Box<RawValue> {
    fn text(&self) -> &str {
        self.get()
    }
}

/// The top level of a state: an object (its fields of interest) or anything else.
enum Top<R> {
    Object(Fields<R>),
    NotObject,
}

struct Fields<R> {
    version: Option<R>,
    lineage: Option<R>,
    serial: Option<R>,
    terraform_version: Option<R>,
    resources: Option<Option<BTreeSet<String>>>,
}

impl<R: RawText> Fields<R> {
    fn check(&self) -> Result<StateInfo> {
        let value = |raw: &Option<R>| -> Result<Option<Value>> {
            raw.as_ref()
                .map(|r| serde_json::from_str::<Value>(r.text()).context("a field of the state"))
                .transpose()
        };
        match value(&self.version)?.as_ref().and_then(Value::as_u64) {
            Some(4) => {}
            Some(v) => bail!(
                "the state has format version {v}; only version 4 (Terraform >= 0.12) is supported"
            ),
            None => bail!("the state has no numeric `version` field"),
        }
        let lineage = match value(&self.lineage)?.as_ref().and_then(Value::as_str) {
            Some(l) if !l.is_empty() => l.to_owned(),
            _ => bail!("the state has no `lineage`"),
        };
        let Some(serial) = value(&self.serial)?.as_ref().and_then(Value::as_u64) else {
            bail!("the state has no numeric `serial`")
        };
        let Some(Some(addresses)) = &self.resources else {
            bail!("the state has no `resources` array");
        };
        let terraform_version = value(&self.terraform_version)?
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok(StateInfo {
            serial,
            lineage,
            terraform_version,
            addresses: addresses.clone(),
        })
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Top<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor(std::marker::PhantomData))
    }
}

struct TopVisitor<R>(std::marker::PhantomData<R>);

fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de, R: Deserialize<'de>> Visitor<'de> for TopVisitor<R> {
    type Value = Top<R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Terraform state")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields {
            version: None,
            lineage: None,
            serial: None,
            terraform_version: None,
            resources: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "version" => once(&mut fields.version, &mut map, "version")?,
                "lineage" => once(&mut fields.lineage, &mut map, "lineage")?,
                "serial" => once(&mut fields.serial, &mut map, "serial")?,
                "terraform_version" => {
                    once(&mut fields.terraform_version, &mut map, "terraform_version")?;
                }
                "resources" => {
                    if fields.resources.is_some() {
                        return Err(de::Error::duplicate_field("resources"));
                    }
                    let list: SeqOrNot<AddressSet> = map.next_value()?;
                    fields.resources = Some(list.0.map(|set| set.0));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Top::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Top::NotObject)
    }
}

/// What the elements of an array fold into, one at a time as they are read.
trait Fold<'de>: Default {
    /// One element.
    type Item: Deserialize<'de>;
    /// Folds one element in.
    fn add(&mut self, item: Self::Item);
}

impl<'de, T: Deserialize<'de>> Fold<'de> for Vec<T> {
    type Item = T;
    fn add(&mut self, item: T) {
        self.push(item);
    }
}

/// The addresses of a `resources` array, each resource folded in as it is read (never a list of them).
#[derive(Default)]
struct AddressSet(BTreeSet<String>);

impl<'de> Fold<'de> for AddressSet {
    type Item = Resource;
    fn add(&mut self, resource: Resource) {
        resource.addresses(&mut self.0);
    }
}

/// An array folded into `C`, or `None` for any other value (skipped without being kept).
struct SeqOrNot<C>(Option<C>);

impl<'de, C: Fold<'de>> Deserialize<'de> for SeqOrNot<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<C>(std::marker::PhantomData<C>);
        impl<'de, C: Fold<'de>> Visitor<'de> for V<C> {
            type Value = SeqOrNot<C>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = C::default();
                while let Some(item) = seq.next_element()? {
                    out.add(item);
                }
                Ok(SeqOrNot(Some(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(SeqOrNot(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(SeqOrNot(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(SeqOrNot(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(SeqOrNot(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(SeqOrNot(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(SeqOrNot(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(SeqOrNot(None))
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The fields of a resource that make its instances' addresses; attributes are skipped unread.
#[derive(Deserialize)]
struct Resource {
    module: Option<Value>,
    mode: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    name: Option<Value>,
    instances: Option<SeqOrNot<Vec<Instance>>>,
}

#[derive(Deserialize)]
struct Instance {
    index_key: Option<Value>,
}

impl Resource {
    fn addresses(self, out: &mut BTreeSet<String>) {
        let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).unwrap_or("").to_owned();
        let mut base = String::new();
        let module = text(&self.module);
        if !module.is_empty() {
            base.push_str(&module);
            base.push('.');
        }
        if text(&self.mode) == "data" {
            base.push_str("data.");
        }
        base.push_str(&format!("{}.{}", text(&self.kind), text(&self.name)));
        for inst in self.instances.and_then(|i| i.0).unwrap_or_default() {
            match inst.index_key {
                Some(Value::Number(n)) => out.insert(format!("{base}[{n}]")),
                Some(Value::String(s)) => out.insert(format!("{base}[{s:?}]")),
                _ => out.insert(base.clone()),
            };
        }
    }
}

/// A state document for display (see [`State::masked`]): serialising it parses one top-level field or
/// one resource at a time.
pub struct Masked<'a> {
    doc: &'a [u8],
    reveal: bool,
}

/// The top-level fields of an object, in order, unparsed.
struct Ordered<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Ordered<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl Serialize for Masked<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let top: Ordered<'_> = serde_json::from_slice(self.doc).map_err(S::Error::custom)?;
        let mut map = serializer.serialize_map(Some(top.0.len()))?;
        for (key, raw) in &top.0 {
            if key == "resources" {
                let resources: Vec<&RawValue> =
                    serde_json::from_str(raw.get()).map_err(S::Error::custom)?;
                map.serialize_entry(
                    key,
                    &MaskedResources {
                        resources: &resources,
                        reveal: self.reveal,
                    },
                )?;
                continue;
            }
            let mut value: Value = serde_json::from_str(raw.get()).map_err(S::Error::custom)?;
            if key == "outputs" && !self.reveal {
                mask_outputs(&mut value);
            }
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

struct MaskedResources<'r, 'a> {
    resources: &'r [&'a RawValue],
    reveal: bool,
}

impl Serialize for MaskedResources<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut seq = serializer.serialize_seq(Some(self.resources.len()))?;
        for raw in self.resources {
            let mut resource: Value = serde_json::from_str(raw.get()).map_err(S::Error::custom)?;
            if !self.reveal {
                mask_resource(&mut resource);
            }
            seq.serialize_element(&resource)?;
        }
        seq.end()
    }
}

fn mask_outputs(outputs: &mut Value) {
    if let Some(outputs) = outputs.as_object_mut() {
        for out in outputs.values_mut() {
            if out.get("sensitive").and_then(Value::as_bool) == Some(true) {
                out["value"] = Value::from("(sensitive)");
            }
        }
    }
}

fn mask_resource(resource: &mut Value) {
    for inst in resource
        .get_mut("instances")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let paths = inst
            .get("sensitive_attributes")
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(attrs) = inst.get_mut("attributes") {
            for path in paths.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                mask_path(attrs, path);
            }
            mask_secret_names(attrs);
        }
    }
}

/// Masks one `sensitive_attributes` path (`[{"type":"get_attr","value":"password"}, ...]`).
fn mask_path(attrs: &mut Value, path: &Value) {
    let Some(steps) = path.as_array() else { return };
    let mut node = attrs;
    for step in steps {
        let next = match step.get("value") {
            Some(Value::String(name)) => node.get_mut(name.as_str()),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|i| node.get_mut(usize::try_from(i).ok()?)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    *node = Value::from("(sensitive)");
}

fn mask_secret_names(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if pve_common::secret::is_secret_name(key) && !v.is_null() {
                    *v = Value::from("(sensitive)");
                } else {
                    mask_secret_names(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secret_names),
        _ => {}
    }
}

/// The serial that follows `serial`. A state's serial comes from outside (the bucket, a file); at
/// 2^64-1 there is none, and wrapping to 0 would make Terraform see an older state: an error, never a
/// wrap or a panic. Every serial this crate and rebuild-minio compute goes through here.
pub fn next_serial(serial: u64) -> Result<u64> {
    match serial.checked_add(1) {
        Some(next) => Ok(next),
        None => bail!(
            "the state's serial is {serial}, the largest there is: no later serial can be written \
             (fix the serial by hand, or start a new lineage)"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn serial_overflow_is_an_error() {
        assert_eq!(super::next_serial(41).unwrap(), 42);
        let e = super::next_serial(u64::MAX).unwrap_err().to_string();
        assert!(e.contains("18446744073709551615"), "{e}");
    }

    use super::*;

    const STATE: &str = r#"{
  "version": 4,
  "terraform_version": "1.11.4",
  "serial": 7,
  "lineage": "5b1f0c2e-aaaa-bbbb-cccc-0123456789ab",
  "outputs": {"minio_password": {"value": "hunter2", "type": "string", "sensitive": true},
              "ip": {"value": "192.0.2.20", "type": "string"}},
  "resources": [
    {"module": "module.jellyfin", "mode": "managed", "type": "terraform_data", "name": "vm", "provider": "p",
     "instances": [{"schema_version": 0, "attributes": {"id": "1", "input": {"memory": 8192, "root_password": "pw"}},
                    "sensitive_attributes": [[{"type": "get_attr", "value": "id"}]]}]},
    {"mode": "managed", "type": "terraform_data", "name": "lxc", "provider": "p",
     "instances": [{"index_key": 0, "attributes": {}}, {"index_key": "dns", "attributes": {}}]},
    {"mode": "data", "type": "terraform_remote_state", "name": "net", "provider": "p", "instances": [{"attributes": {}}]}
  ],
  "check_results": null
}"#;

    #[test]
    fn parses_and_summarises() {
        let s = State::parse(STATE.as_bytes()).unwrap();
        assert_eq!(
            (s.serial, s.lineage.as_str()),
            (7, "5b1f0c2e-aaaa-bbbb-cccc-0123456789ab")
        );
        let addrs: Vec<String> = s.addresses().iter().cloned().collect();
        assert_eq!(
            addrs,
            vec![
                "data.terraform_remote_state.net",
                "module.jellyfin.terraform_data.vm",
                "terraform_data.lxc[\"dns\"]",
                "terraform_data.lxc[0]"
            ]
        );
        assert_eq!(s.summary().resources, 4);
    }

    #[test]
    fn invalid_states_name_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("{not json", "not valid JSON"),
            ("[]", "not a JSON object"),
            (
                r#"{"version":3,"lineage":"l","serial":1,"resources":[]}"#,
                "format version 3",
            ),
            (r#"{"version":4,"serial":1,"resources":[]}"#, "no `lineage`"),
            (
                r#"{"version":4,"lineage":"l","resources":[]}"#,
                "no numeric `serial`",
            ),
            (
                r#"{"version":4,"lineage":"l","serial":1}"#,
                "no `resources` array",
            ),
        ];
        for (text, want) in cases {
            let err = State::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn serial_bump_keeps_everything_else_and_key_order() {
        let s = State::parse(STATE.as_bytes()).unwrap();
        let bytes = s.to_bytes_with_serial(8);
        let again = State::parse(&bytes).unwrap();
        assert_eq!(again.serial, 8);
        assert_eq!(again.lineage, s.lineage);
        assert_eq!(again.addresses(), s.addresses());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.find("\"version\"").unwrap() < text.find("\"lineage\"").unwrap(),
            "order kept"
        );
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn diff_and_masking() {
        let old = State::parse(STATE.as_bytes()).unwrap();
        let mut doc: Value = serde_json::from_str(STATE).unwrap();
        doc["resources"].as_array_mut().unwrap().remove(0);
        let new_bytes = serde_json::to_vec(&doc).unwrap();
        let new = State::parse(&new_bytes).unwrap();
        assert_eq!(
            old.diff(&new),
            Diff {
                added: vec![],
                removed: vec!["module.jellyfin.terraform_data.vm".into()]
            }
        );
        let masked = serde_json::to_string_pretty(&old.masked(false)).unwrap();
        assert!(
            !masked.contains("hunter2") && !masked.contains("\"pw\""),
            "{masked}"
        );
        assert!(masked.contains("192.0.2.20"));
        let masked: Value = serde_json::from_str(&masked).unwrap();
        assert_eq!(
            masked["resources"][0]["instances"][0]["attributes"]["id"],
            "(sensitive)"
        );
        // Shown whole, it is the document as a tree would print it, key order kept.
        let shown = serde_json::to_string_pretty(&old.masked(true)).unwrap();
        let tree: Value = serde_json::from_str(STATE).unwrap();
        assert_eq!(shown, serde_json::to_string_pretty(&tree).unwrap());
    }

    #[test]
    fn a_stream_gives_the_same_facts_and_the_same_refusals() {
        let from_slice = State::parse(STATE.as_bytes()).unwrap().into_info();
        let from_stream = StateInfo::read(&mut STATE.as_bytes()).unwrap();
        assert_eq!(from_slice, from_stream);
        for (text, want) in [
            (&b""[..], "empty"),
            (b" \n", "empty"),
            (b"{not json", "not valid JSON"),
            (b"[1,2]", "not a JSON object"),
            (
                br#"{"version":4,"lineage":"l","serial":1,"resources":{}}"#,
                "no `resources` array",
            ),
            (
                br#"{"version":4,"lineage":"l","serial":1,"serial":2,"resources":[]}"#,
                "duplicate",
            ),
        ] {
            let a = StateInfo::read(&mut &text[..]).unwrap_err().to_string();
            let b = State::parse(text).unwrap_err().to_string();
            assert!(a.contains(want) && b.contains(want), "{text:?}: {a} / {b}");
        }
    }

    #[test]
    fn the_serial_is_replaced_in_place() {
        let compact = br#"{"version":4,"serial":7,"lineage":"l","resources":[{"serial":7}]}"#;
        let s = State::parse(compact).unwrap();
        let out = String::from_utf8(s.to_bytes_with_serial(12345)).unwrap();
        assert_eq!(
            out,
            "{\"version\":4,\"serial\":12345,\"lineage\":\"l\",\"resources\":[{\"serial\":7}]}\n"
        );
        let rewritten = s.with_serial(12345);
        assert_eq!(rewritten.len(), out.len());
        assert_eq!(rewritten.sha256(), sha256_of(&mut out.as_bytes()).unwrap());
    }
}
