//! Shared building blocks of the pve-tools binaries.
//!
//! Code lives here once a second tool needs it, so a tool's crate holds only what is its own. Every side effect of every tool passes through
//! [`runner::Runner`], which is the only place that honours `--dry-run`.

// Unit tests read best whole, step after step: the 80-line limit is for the library's code.
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod app;
pub mod cli;
pub mod confirm;
pub mod environments;
pub mod exit;
pub mod fleet;
pub mod homelab;
pub mod i18n;
pub mod interrupt;
pub mod log;
pub mod output;
pub mod prereqs;
pub mod process;
pub mod pve;
pub mod retry;
pub mod rundir;
pub mod runner;
pub mod s3;
pub mod secret;
pub mod terraform;
pub mod tfvars;
pub mod vma;

pub use app::{Tool, run};

// The message catalogs (locales/*.en.yml, locales/*.fr.yml), compiled in; read through [`i18n`].
rust_i18n::i18n!("locales", fallback = "en");
