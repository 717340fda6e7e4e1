//! Terraform state documents: validation, summary, difference, serial bump and masking.
//!
//! A state this tool writes must be one Terraform accepts: JSON, `version` 4, a `lineage`, a `serial` and a
//! `resources` array. Anything else is refused with what is wrong, before any write.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use serde_json::Value;

/// A parsed, valid state.
#[derive(Clone, Debug)]
pub struct State {
    /// The document (key order kept).
    pub doc: Value,
    /// `serial`.
    pub serial: u64,
    /// `lineage`.
    pub lineage: String,
    /// `terraform_version`.
    pub terraform_version: String,
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

impl State {
    /// Parses and validates `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<State> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            bail!("the state is empty");
        }
        let doc: Value = match serde_json::from_slice(bytes) {
            Ok(doc) => doc,
            Err(e) => bail!("the state is not valid JSON ({e})"),
        };
        let Some(obj) = doc.as_object() else {
            bail!("the state is not a JSON object")
        };
        match obj.get("version").and_then(Value::as_u64) {
            Some(4) => {}
            Some(v) => bail!(
                "the state has format version {v}; only version 4 (Terraform >= 0.12) is supported"
            ),
            None => bail!("the state has no numeric `version` field"),
        }
        let lineage = match obj.get("lineage").and_then(Value::as_str) {
            Some(l) if !l.is_empty() => l.to_owned(),
            _ => bail!("the state has no `lineage`"),
        };
        let Some(serial) = obj.get("serial").and_then(Value::as_u64) else {
            bail!("the state has no numeric `serial`")
        };
        if !obj.get("resources").is_some_and(Value::is_array) {
            bail!("the state has no `resources` array");
        }
        let terraform_version = obj
            .get("terraform_version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok(State {
            doc,
            serial,
            lineage,
            terraform_version,
        })
    }

    /// The resource instance addresses (`module.jellyfin.terraform_data.vm`, `data.x.y`, `a.b["k"]`).
    pub fn addresses(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let resources = self
            .doc
            .get("resources")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for r in resources {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            let mut base = String::new();
            if !text("module").is_empty() {
                base.push_str(text("module"));
                base.push('.');
            }
            if text("mode") == "data" {
                base.push_str("data.");
            }
            base.push_str(&format!("{}.{}", text("type"), text("name")));
            let instances = r
                .get("instances")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for inst in instances {
                match inst.get("index_key") {
                    Some(Value::Number(n)) => out.insert(format!("{base}[{n}]")),
                    Some(Value::String(s)) => out.insert(format!("{base}[{s:?}]")),
                    _ => out.insert(base.clone()),
                };
            }
        }
        out
    }

    /// Summary for listings.
    pub fn summary(&self) -> Summary {
        Summary {
            serial: self.serial,
            lineage: self.lineage.clone(),
            terraform_version: self.terraform_version.clone(),
            resources: self.addresses().len(),
        }
    }

    /// What `new` adds and removes relative to `self`.
    pub fn diff(&self, new: &State) -> Diff {
        let old = self.addresses();
        let new = new.addresses();
        Diff {
            added: new.difference(&old).cloned().collect(),
            removed: old.difference(&new).cloned().collect(),
        }
    }

    /// The document with `serial` replaced, as Terraform writes states (2-space JSON, final newline).
    pub fn to_bytes_with_serial(&self, serial: u64) -> Vec<u8> {
        let mut doc = self.doc.clone();
        doc["serial"] = Value::from(serial);
        let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// The document with sensitive values replaced by "(sensitive)": outputs marked `sensitive`, instance
    /// attributes named in `sensitive_attributes`, and attributes whose names look secret.
    pub fn masked(&self) -> Value {
        let mut doc = self.doc.clone();
        if let Some(outputs) = doc.get_mut("outputs").and_then(Value::as_object_mut) {
            for out in outputs.values_mut() {
                if out.get("sensitive").and_then(Value::as_bool) == Some(true) {
                    out["value"] = Value::from("(sensitive)");
                }
            }
        }
        if let Some(resources) = doc.get_mut("resources").and_then(Value::as_array_mut) {
            for inst in resources
                .iter_mut()
                .filter_map(|r| r.get_mut("instances"))
                .filter_map(Value::as_array_mut)
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
        doc
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
        let addrs: Vec<String> = s.addresses().into_iter().collect();
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
        let mut doc = old.doc.clone();
        doc["resources"].as_array_mut().unwrap().remove(0);
        let new = State::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(
            old.diff(&new),
            Diff {
                added: vec![],
                removed: vec!["module.jellyfin.terraform_data.vm".into()]
            }
        );
        let masked = serde_json::to_string(&old.masked()).unwrap();
        assert!(
            !masked.contains("hunter2") && !masked.contains("\"pw\""),
            "{masked}"
        );
        assert!(masked.contains("192.0.2.20"));
        assert_eq!(
            old.masked()["resources"][0]["instances"][0]["attributes"]["id"],
            "(sensitive)"
        );
    }
}
