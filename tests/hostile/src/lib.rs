//! Dev-only crate holding the hostile test suite (`tests/hostile.rs`): bad input, injected faults and attacks
//! against the pve-tools binaries and pve-common. It has no library code; see `docs/RELIABILITY.md`.
