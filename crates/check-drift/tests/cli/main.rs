//! check-drift's command-line tests: one test binary (one link step, not one per file) running the real
//! binary.
//!
//! `real_terraform` runs Terraform 1.11 on `fixtures/envs/basic` (built-in `terraform_data` resources, local
//! backend, no download), with drift made by editing the state file, adding tfvars or `terraform state rm`.
//! `fake_terraform` uses `fixtures/fake-terraform.sh`, which logs every call: for dry-run, never-apply,
//! timeouts, signals and S3-style lock messages. `usage` covers arguments and exit codes 64 and 75.
//! `operations` covers metrics, reports, history, the Alertmanager push and install-timer, and (module
//! `operations::monitoring`) the whole chain through node_exporter, Prometheus and Alertmanager.
//! `library` drives `check_drift::run_with` with a hand-built `Config`, as the shared test bed will.

// Helpers outside #[test] functions may unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

mod fake_terraform;
mod library;
mod operations;
mod real_drift;
mod real_terraform;
mod support;
mod usage;
