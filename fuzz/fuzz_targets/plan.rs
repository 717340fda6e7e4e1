//! `terraform show -json` parsing and drift analysis must never panic: the streaming reader check-drift
//! uses, and the tree parse kept for tests and tools. The two must also agree: whatever object the tree
//! accepts, the stream reads to the same classification, whole or in chunks of any size.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let history = Default::default();
    let stream = check_drift::plan::read(data, &history);
    // The first byte picks a chunk size, so chunk boundaries land everywhere in the document.
    let chunk = usize::from(data.first().copied().unwrap_or(1) % 64) + 1;
    let chunked = check_drift::plan::read_chunked(data, &history, chunk);
    assert_eq!(stream.is_ok(), chunked.is_ok(), "chunk {chunk}");
    if let (Ok(a), Ok(b)) = (&stream, &chunked) {
        assert_eq!(a.analysis.resources, b.analysis.resources);
        assert_eq!(a.sensitive, b.sensitive);
    }
    if let Ok(plan) = check_drift::plan::parse(data) {
        let tree = check_drift::plan::analyze(&plan, &history);
        let sensitive = check_drift::plan::sensitive_strings(&plan);
        for rc in plan.resource_changes.iter().flatten() {
            let _ = check_drift::plan::diff(&rc.change);
        }
        // The tree's derived parse also takes a top-level array as a struct in field order; the stream
        // rightly refuses anything but an object.
        if data.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{') {
            let stream = stream.expect("the tree parse accepted what the stream refused");
            assert_eq!(stream.analysis.resources, tree.resources);
            assert_eq!(stream.sensitive, sensitive);
        }
    }
});
