//! The VMA reader (`pve_common::vma`, used by verify-backups and the test bed) must never panic or loop on
//! a corrupt archive.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pve_common::vma::verify(data);
});
