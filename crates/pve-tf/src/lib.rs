//! Terraform for the pve-tools: one way to build its command line ([`command`]), to read a saved plan
//! ([`plan`]) and to apply a plan limited to one `-target` ([`targeted`]); and its state: where an
//! environment keeps it and with which credentials ([`backend`]), the state document ([`state`]) and
//! Terraform's S3 state lock ([`lock`]), and the moves of a state between S3 and a local backend with their
//! save points ([`moves`]). Tools drive Terraform through
//! this crate so that two tools never disagree on how a plan is judged or how credentials reach it.

pub mod backend;
pub mod command;
pub mod fleet;
pub mod lock;
pub mod moves;
pub mod plan;
pub mod state;
pub mod targeted;

pub use command::command;
pub use targeted::{TargetedPlan, TfError};
