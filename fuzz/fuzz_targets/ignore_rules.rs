//! The `.driftignore` parser must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = check_drift::ignore::parse(
        &text,
        std::path::Path::new(".driftignore"),
        jiff::civil::date(2026, 11, 21),
    );
});
