//! restore-tfstate under hostile conditions, on its S3 bed (`crate::s3bed`): bad input, injected faults,
//! attacks, the state and its lock, and issue 23's defects.

pub mod bad_input;
pub mod defects;
pub mod faults;
pub mod security;
pub mod state;
