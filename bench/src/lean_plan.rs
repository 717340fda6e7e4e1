//! A prototype of the streaming plan parse proposed in docs/PERFORMANCE.md (plan-scale), measured next
//! to check-drift's parser; check-drift itself is not changed here.
//!
//! check-drift reads the whole `terraform show -json` output into memory and decodes every
//! `resource_changes` entry, no-ops included, into `serde_json::Value` trees. This reads from a stream
//! instead and skips (`IgnoredAny`) the values of entries whose actions are `no-op` or `read`, which
//! Terraform writes before `before`/`after`; only changed entries are built, then classified by
//! check-drift's own [`check_drift::plan::analyze`]. `resource_drift` is filtered the same way.

use std::fmt;
use std::io::Read;

use check_drift::plan::{Change, Plan, ResourceChange};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Parses a plan from `reader`, keeping only entries an apply (or the drift) acts on.
pub fn parse<R: Read>(reader: R) -> serde_json::Result<Plan> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let plan = TopVisitor.deserialize(&mut de)?;
    de.end()?;
    Ok(plan)
}

struct TopVisitor;

impl<'de> DeserializeSeed<'de> for TopVisitor {
    type Value = Plan;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Plan, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Plan;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a terraform plan object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plan, A::Error> {
        let mut plan = Plan::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format_version" => plan.format_version = map.next_value()?,
                "terraform_version" => plan.terraform_version = map.next_value()?,
                "errored" => plan.errored = map.next_value()?,
                "complete" => plan.complete = map.next_value()?,
                "resource_changes" => plan.resource_changes = Some(map.next_value_seed(Changes)?),
                "resource_drift" => plan.resource_drift = Some(map.next_value_seed(Changes)?),
                "output_changes" => plan.output_changes = map.next_value()?,
                "relevant_attributes" => plan.relevant_attributes = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(plan)
    }
}

/// A `resource_changes` list, without the entries that change nothing.
struct Changes;

impl<'de> DeserializeSeed<'de> for Changes {
    type Value = Vec<ResourceChange>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Changes {
    type Value = Vec<ResourceChange>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of resource changes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while let Some(rc) = seq.next_element_seed(Entry)? {
            if let Some(rc) = rc {
                kept.push(rc);
            }
        }
        Ok(kept)
    }
}

/// One entry; `None` when its actions change nothing.
struct Entry;

impl<'de> DeserializeSeed<'de> for Entry {
    type Value = Option<ResourceChange>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Entry {
    type Value = Option<ResourceChange>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a resource change")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rc = ResourceChange::default();
        let mut keep = true;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "address" => rc.address = map.next_value()?,
                "mode" => rc.mode = map.next_value()?,
                "type" => rc.resource_type = map.next_value()?,
                "action_reason" => rc.action_reason = map.next_value()?,
                "change" => match map.next_value_seed(ChangeSeed)? {
                    Some(change) => rc.change = change,
                    None => keep = false,
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(keep.then_some(rc))
    }
}

/// A `change` object; `None` (values skipped) once its actions are known to change nothing.
struct ChangeSeed;

impl<'de> DeserializeSeed<'de> for ChangeSeed {
    type Value = Option<Change>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChangeSeed {
    type Value = Option<Change>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a change object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut change = Change::default();
        let mut idle = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "actions" {
                change.actions = map.next_value()?;
                idle = change.actions.iter().all(|a| a == "no-op" || a == "read");
                continue;
            }
            if idle {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value: Value = map.next_value()?;
            match key.as_str() {
                "before" => change.before = value,
                "after" => change.after = value,
                "after_unknown" => change.after_unknown = value,
                "before_sensitive" => change.before_sensitive = value,
                "after_sensitive" => change.after_sensitive = value,
                "replace_paths" => change.replace_paths = serde_json::from_value(value).ok(),
                _ => {}
            }
        }
        Ok((!idle).then_some(change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_changes_and_classifies_like_the_full_parse() {
        let dir = std::env::temp_dir().join(format!("pve-bench-lean-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plan.json");
        crate::workload::write_plan(&path, 400).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let full = check_drift::plan::parse(&bytes).unwrap();
        let lean = parse(bytes.as_slice()).unwrap();
        assert_eq!(lean.resource_changes.as_ref().unwrap().len(), 4 * 7);
        let a = check_drift::plan::analyze(&full, &Default::default());
        let b = check_drift::plan::analyze(&lean, &Default::default());
        assert_eq!(a.resources, b.resources);
        assert_eq!(a.unplanned_drift, b.unplanned_drift);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
