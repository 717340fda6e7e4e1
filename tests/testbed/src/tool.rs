//! Reading a tool's run in its integration tests (`tests/cli/main.rs` and its modules, in each tool): the exit code, the one
//! JSON document on stdout (checked to carry the tool's schema) and stderr; an entry of a list of the
//! report; the `--help`/`--version` contract. Failures panic with the whole output, as test
//! assertions do.

use std::ffi::OsStr;
use std::process::{Command, Output};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Variables through which a tool would find a real homelab, host, node, SSH agent, service URL or
/// language on the machine running the tests. [`command`] removes them all; a test that wants one sets it.
/// The default output paths (`PVE_DRIFT_TEXTFILE_DIR`...) are not here: `tests/run-all` points them into a
/// scratch folder for the whole run, and a tool's own helper sets its test's.
pub const HOST_ENV: &[&str] = &[
    "PVE_HOMELAB",
    "PVE_DRIFT_ROOT",
    "PVE_TFVARS",
    "PVE_HOST",
    "PVE_NODE",
    "PVE_SSH_USER",
    "PVE_SSH_CONFIG",
    "PVE_SSH_TRANSPORT",
    "SSH_AUTH_SOCK",
    "HOMELAB_KNOWN_HOSTS",
    "SSH_INIT_MODE",
    "PVE_TOOLS_LANG",
    "MINIO_URL",
    "PROMETHEUS_URL",
    "ALERTMANAGER_URL",
    "GRAFANA_URL",
    "NODE_EXPORTER_URL",
];

/// The tool at `exe` (a test passes `env!("CARGO_BIN_EXE_<tool>")`) without [`HOST_ENV`] and with
/// `NO_COLOR=1`: the one starting point of every tool's command in its integration tests. Wrap it with
/// `assert_cmd::Command::from_std` for assertions.
pub fn command(exe: impl AsRef<OsStr>) -> Command {
    let mut cmd = crate::process::command(exe);
    for var in HOST_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// [`json_run`], with the document decoded into the tool's report type (`Document<Report>`); panics with
/// the document and stderr when it does not decode.
pub fn typed_run<T: DeserializeOwned>(out: &Output, schema: &str) -> (i32, T, String) {
    let (code, value, stderr) = json_run(out, schema);
    (code, decode(&value, &stderr), stderr)
}

/// `value` decoded into `T`; panics naming the document and `context` (stderr, usually) when it does not
/// decode.
pub fn decode<T: DeserializeOwned>(value: &Value, context: &str) -> T {
    T::deserialize(value).unwrap_or_else(|e| {
        panic!(
            "not a {} ({e}): {value:#}\n{context}",
            std::any::type_name::<T>()
        )
    })
}

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

/// The entry of a report's list that `is` picks; panics naming `what` and `context` (the report, or the
/// part of it holding the list) when there is none.
pub fn entry<'a, T>(
    list: &'a [T],
    is: impl Fn(&T) -> bool,
    what: impl std::fmt::Display,
    context: &impl std::fmt::Debug,
) -> &'a T {
    list.iter()
        .find(|e| is(e))
        .unwrap_or_else(|| panic!("no {what} in {context:#?}"))
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
