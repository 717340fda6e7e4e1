//! Dev-only crate: its integration test (`tests/packaging.rs`) checks the files under `packaging/`.
//! The library is empty on purpose; everything lives in the test binary.
