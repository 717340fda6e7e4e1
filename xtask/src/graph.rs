//! The crate graph rule: tool crates (workspace members under `crates/` with a binary) depend only on
//! library crates, never on another tool. Read from `cargo metadata`, so a path dependency, a
//! workspace one or a renamed one is seen the same way. Dev-dependencies are not edges: they never
//! reach a tool's binary or its library API, and a test may drive another tool's binary.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_root: String,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: String,
    targets: Vec<Target>,
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Target {
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    /// `None` for a normal dependency, else `dev` or `build`.
    kind: Option<String>,
}

/// `cargo metadata --format-version 1 --no-deps` of the workspace at `root`.
// A developer task, not a tool: there is no dry-run to honour, and cargo only reads the manifests.
#[allow(clippy::disallowed_methods)]
pub fn workspace_metadata(root: &Path) -> Result<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("cargo metadata printed something that is not UTF-8")
}

/// Every normal or build dependency of one tool crate on another, as `from -> to`, sorted.
pub fn tool_edges(metadata: &str) -> Result<Vec<String>> {
    let meta: Metadata =
        serde_json::from_str(metadata).context("cannot read the output of cargo metadata")?;
    let crates_dir = Path::new(&meta.workspace_root).join("crates");
    let tools: Vec<&Package> = meta
        .packages
        .iter()
        .filter(|p| {
            Path::new(&p.manifest_path).starts_with(&crates_dir)
                && p.targets.iter().any(|t| t.kind.iter().any(|k| k == "bin"))
        })
        .collect();
    let mut edges: Vec<String> = tools
        .iter()
        .flat_map(|from| {
            from.dependencies
                .iter()
                .filter(|d| d.kind.as_deref() != Some("dev"))
                .filter(|d| d.name != from.name && tools.iter().any(|t| t.name == d.name))
                .map(move |d| format!("{} -> {}", from.name, d.name))
        })
        .collect();
    edges.sort();
    edges.dedup();
    Ok(edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(
        name: &str,
        dir: &str,
        bin: bool,
        deps: &[(&str, Option<&str>)],
    ) -> serde_json::Value {
        let mut kinds = vec![serde_json::json!({ "kind": ["lib"] })];
        if bin {
            kinds.push(serde_json::json!({ "kind": ["bin"] }));
        }
        let deps: Vec<serde_json::Value> = deps
            .iter()
            .map(|(n, k)| serde_json::json!({ "name": n, "kind": k, "req": "*" }))
            .collect();
        serde_json::json!({
            "name": name,
            "manifest_path": format!("/ws/{dir}/{name}/Cargo.toml"),
            "targets": kinds,
            "dependencies": deps,
        })
    }

    fn metadata(tool_a_deps: &[(&str, Option<&str>)]) -> String {
        serde_json::json!({
            "workspace_root": "/ws",
            "version": 1,
            "packages": [
                package("lib-a", "crates", false, &[("anyhow", None)]),
                package("tool-a", "crates", true, tool_a_deps),
                package("tool-b", "crates", true, &[("lib-a", None)]),
                // A binary outside crates/ (a test bed) is not a tool.
                package("bed", "tests", true, &[("tool-b", None)]),
            ],
        })
        .to_string()
    }

    #[test]
    fn an_edge_from_one_tool_to_another_is_found_naming_both() {
        let meta = metadata(&[("lib-a", None), ("tool-b", None)]);
        assert_eq!(tool_edges(&meta).unwrap(), ["tool-a -> tool-b"]);
        let build = metadata(&[("tool-b", Some("build"))]);
        assert_eq!(tool_edges(&build).unwrap(), ["tool-a -> tool-b"]);
    }

    #[test]
    fn libraries_dev_dependencies_and_non_tools_pass() {
        let meta = metadata(&[("lib-a", None), ("tool-b", Some("dev"))]);
        assert!(tool_edges(&meta).unwrap().is_empty());
    }

    #[test]
    fn unreadable_metadata_is_an_error() {
        assert!(tool_edges("{}").is_err());
    }
}
