//! verify-backups under hostile conditions, on the node bed (`crate::pvenode`): bad input, faults, attacks,
//! issue 23's defects, and mutation tests of its archive readers.

pub mod bad_input;
pub mod defects;
pub mod faults;
pub mod mutation;
pub mod security;
