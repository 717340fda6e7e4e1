//! Reading a tool's run in its integration tests (`tests/cli.rs` of each tool): the exit code, the one
//! JSON document on stdout (checked to carry the tool's schema) and stderr; an entry of a named list in
//! that document; the `--help`/`--version` contract. Failures panic with the whole output, as test
//! assertions do.

use std::process::Output;

use serde_json::Value;

/// A run of a tool with `--json`: (exit code, the document, stderr). Panics when stdout is not one JSON
/// document or its `schema` is not `schema`.
pub fn json_run(out: &Output, schema: &str) -> (i32, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(doc["schema"], schema, "{doc:#}\nstderr: {stderr}");
    (out.status.code().unwrap_or(-1), doc, stderr)
}

/// The entry of the array `doc[list]` whose `name` is `name`; panics naming the document when there is none.
pub fn named<'a>(doc: &'a Value, list: &str, name: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("no array {list} in {doc:#}"))
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("no {list} entry named {name} in {doc:#}"))
}

/// `--help` succeeded with `Usage: <tool>` and `--version` succeeded with `version`.
pub fn assert_help_and_version(help: &Output, version_run: &Output, tool: &str, version: &str) {
    for (what, out, wanted) in [
        ("--help", help, format!("Usage: {tool}")),
        ("--version", version_run, version.to_owned()),
    ] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&wanted),
            "{tool} {what}: {:?}, stdout without {wanted:?}:\n{stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
