//! The test bed's own tests: real moto, real Terraform, real Prometheus tools, the `testbed` command.
//!
//! Servers are started per test (never shared through a static, which would outlive the test binary)
//! and stopped on drop; independent Terraform environments run on threads side by side.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

#[path = "bed/cli.rs"]
mod cli;
#[path = "bed/common.rs"]
mod common;
#[path = "bed/example.rs"]
mod example;
#[path = "bed/monitoring.rs"]
mod monitoring;
#[path = "bed/orphans.rs"]
mod orphans;
#[path = "bed/s3.rs"]
mod s3;
#[path = "bed/tf.rs"]
mod tf;
