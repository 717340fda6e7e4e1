//! Reading a saved plan (`terraform show -json PLAN`) to decide whether a targeted apply stays within its
//! target: `-target` also plans the target's dependencies, so a replaced network or a destroyed VM outside
//! the MinIO module can slip into the plan. Such a plan is refused.

use anyhow::{Context, Result};
use serde::Deserialize;

/// One entry of the plan's `resource_changes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Resource instance address.
    pub address: String,
    /// Terraform's actions: `["no-op"]`, `["create"]`, `["update"]`, `["delete"]`, `["delete","create"]`,
    /// `["create","delete"]`, `["read"]`, `["forget"]`.
    pub actions: Vec<String>,
}

impl Change {
    /// Nothing happens to the resource.
    pub fn is_noop(&self) -> bool {
        self.actions.iter().all(|a| a == "no-op" || a == "read")
    }

    /// The resource is destroyed, replaced or forgotten.
    pub fn is_destructive(&self) -> bool {
        self.actions.iter().any(|a| a == "delete" || a == "forget")
    }
}

#[derive(Deserialize)]
struct PlanDoc {
    #[serde(default)]
    resource_changes: Vec<RawChange>,
}

#[derive(Deserialize)]
struct RawChange {
    address: String,
    change: RawActions,
}

#[derive(Deserialize)]
struct RawActions {
    actions: Vec<String>,
}

/// Parses `terraform show -json` of a saved plan.
pub fn parse(json: &[u8]) -> Result<Vec<Change>> {
    let doc: PlanDoc = serde_json::from_slice(json)
        .context("terraform show -json did not return a plan document")?;
    Ok(doc
        .resource_changes
        .into_iter()
        .map(|c| Change {
            address: c.address,
            actions: c.change.actions,
        })
        .collect())
}

/// Whether `address` is `target` or inside it (`module.minio`, `module.minio.x.y`, `module.minio["a"].x`).
pub fn within(address: &str, target: &str) -> bool {
    address == target
        || address
            .strip_prefix(target)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The destructive changes outside `target`.
pub fn destructive_outside<'a>(changes: &'a [Change], target: &str) -> Vec<&'a Change> {
    changes
        .iter()
        .filter(|c| c.is_destructive() && !within(&c.address, target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_is_by_address_segment() {
        assert!(within("module.minio", "module.minio"));
        assert!(within("module.minio.terraform_data.server", "module.minio"));
        assert!(within(
            "module.minio[\"a\"].terraform_data.x",
            "module.minio"
        ));
        assert!(!within("module.minio2.terraform_data.x", "module.minio"));
        assert!(!within("terraform_data.network", "module.minio"));
    }

    #[test]
    fn finds_destroy_and_replace_outside_the_target() {
        let json = br#"{"format_version":"1.2","resource_changes":[
          {"address":"module.minio.terraform_data.server","change":{"actions":["create"]}},
          {"address":"terraform_data.network","change":{"actions":["delete","create"]}},
          {"address":"terraform_data.dns","change":{"actions":["update"]}},
          {"address":"module.minio.terraform_data.old","change":{"actions":["delete"]}},
          {"address":"data.terraform_remote_state.x","change":{"actions":["read"]}}]}"#;
        let changes = parse(json).unwrap();
        let out = destructive_outside(&changes, "module.minio");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].address, "terraform_data.network");
        assert!(changes[4].is_noop());
        assert!(parse(b"{}").unwrap().is_empty());
        assert!(parse(b"not json").is_err());
    }
}
