//! Cases run against several tools at once: the same bad input, fault or attack, each tool expected to
//! behave alike.

pub mod bad_input;
pub mod faults;
pub mod security;
