//! restore-vm under hostile conditions, on the node bed (`crate::pvenode`): bad input, faults while it
//! talks to the node, attacks, and issue 23's defects.

pub mod bad_input;
pub mod defects;
pub mod faults;
pub mod security;
