//! The hostile suite (issue 12): bad input, injected faults and attacks against every pve-tools binary
//! and pve-common, plus seeded mutation tests of every parser
//! (the libFuzzer targets in `fuzz/` run by `fuzz/run`, also in CI).
//!
//! Results, rerun commands and measured numbers: docs/RELIABILITY.md. Root is needed for tmpfs mounts and
//! network namespaces; those cases say so and pass vacuously when not root.

// Test helpers are plain functions; a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, clippy::print_stderr)]

mod bad_input;
mod faults;
mod minio;
mod mutation;
mod netns;
mod pvenode;
mod s3bed;
mod security;
mod support;
mod survive;
mod tfstate;
mod tools;
