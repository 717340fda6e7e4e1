//! The hostile suite (issue 12): bad input, injected faults and attacks against every pve-tools binary
//! and pve-common, plus seeded mutation tests of every parser
//! (the libFuzzer targets in `fuzz/` run by `fuzz/run`, also in CI). One module per tool, as in each
//! tool's `tests/cli/`; `libraries` for the shared crates on their own, `every_tool` for cases run against
//! several tools at once; the beds and helpers in `support`, `s3bed` and `pvenode`.
//!
//! Results, rerun commands and measured numbers: docs/RELIABILITY.md. Root is needed for tmpfs mounts and
//! network namespaces; those cases say so and pass vacuously when not root.

// Test helpers are plain functions; a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::print_stderr)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

mod check_drift;
mod every_tool;
mod libraries;
mod pvenode;
mod rebuild_minio;
mod rebuild_monitoring;
mod restore_tfstate;
mod restore_vm;
mod s3bed;
mod support;
mod verify_backups;
