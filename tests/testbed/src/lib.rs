//! The test bed (being written: see issue 3).

pub mod sshd;
pub mod sim;
