//! verify-backups' VMA reader (`verify_backups::vma::check`) must never panic or loop on a corrupt archive.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = verify_backups::vma::check(data);
});
