//! Reading a saved plan (`terraform show -json PLAN`) to decide whether a targeted apply stays within its
//! target: `-target` also plans the target's dependencies, so a replaced network or a destroyed VM outside
//! the module being rebuilt can slip into the plan. Such a plan is refused.

use serde::Deserialize;
use thiserror::Error;

/// `terraform show -json` printed something that is not a plan document.
#[derive(Debug, Error)]
#[error("terraform show -json did not return a plan document")]
pub struct NotAPlan(#[source] serde_json::Error);

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

/// `address (action+action)`, as the tools report a change.
impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.address, self.actions.join("+"))
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
pub fn parse(json: &[u8]) -> Result<Vec<Change>, NotAPlan> {
    let doc: PlanDoc = serde_json::from_slice(json).map_err(NotAPlan)?;
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

/// The changes within `target` that do something.
pub fn effective_within<'a>(changes: &'a [Change], target: &str) -> Vec<&'a Change> {
    changes
        .iter()
        .filter(|c| !c.is_noop() && within(&c.address, target))
        .collect()
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
        let inside: Vec<&str> = effective_within(&changes, "module.minio")
            .iter()
            .map(|c| c.address.as_str())
            .collect();
        assert_eq!(
            inside,
            [
                "module.minio.terraform_data.server",
                "module.minio.terraform_data.old"
            ]
        );
        assert_eq!(out[0].to_string(), "terraform_data.network (delete+create)");
        assert!(parse(b"{}").unwrap().is_empty());
        assert!(parse(b"not json").is_err());
    }
}
