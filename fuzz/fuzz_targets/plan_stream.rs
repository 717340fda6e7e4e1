//! The stream of `terraform plan -json` must never panic, and must read the same whatever pieces it
//! arrives in (check-drift reads it while Terraform writes it). What the reader could not read is never
//! judged in sync.
#![no_main]
use libfuzzer_sys::fuzz_target;

use check_drift::plan::ui;

fuzz_target!(|data: &[u8]| {
    let whole = ui::read(data);
    // The first byte picks a piece size, so the cuts land everywhere in the stream.
    let size = usize::from(data.first().copied().unwrap_or(1) % 32) + 1;
    let mut stream = ui::UiStream::new();
    for piece in data.chunks(size) {
        stream.feed(piece);
        let _ = stream.refreshing();
    }
    let pieces = stream.finish();
    assert_eq!(whole.text, pieces.text, "size {size}");
    assert_eq!(whole.planned, pieces.planned);
    assert_eq!(whole.drift, pieces.drift);
    assert_eq!(whole.summary, pieces.summary);
    assert_eq!(whole.unreadable, pieces.unreadable);
    let _ = whole.diagnostics_text();
    let history = Default::default();
    for code in [0, 2] {
        let verdict = ui::judge(&whole, code, &|a: &str| a.len() % 2 == 0, &history);
        if whole.unreadable > 0 || whole.summary.is_none() {
            assert!(matches!(verdict, ui::Verdict::Show(_)), "{verdict:?}");
        }
    }
});
