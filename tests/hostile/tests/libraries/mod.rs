//! The libraries every tool links (pve-common, pve-ssh, pve-tf, pve-restore) under hostile input, faults
//! and attacks, and the seeded mutation tests of their parsers.

pub mod bad_input;
pub mod faults;
pub mod mutation;
pub mod netns;
pub mod security;
