//! check-drift under hostile conditions: bad input, injected faults, attacks, a killed run, issue 23's
//! defects, and mutation tests of its parsers.

pub mod bad_input;
pub mod defects;
pub mod faults;
pub mod mutation;
pub mod security;
pub mod survive;
