//! The S3 ListObjectVersions reader must never panic, and what it reads must print as one line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(page) = pve_common::s3::parse_list_versions(&text) {
        for v in &page.versions {
            for field in [&v.key, &v.version_id, &v.last_modified] {
                let shown = pve_common::output::escape(field);
                assert!(
                    !shown.chars().any(char::is_control),
                    "escaped field still holds a control character: {shown:?}"
                );
            }
        }
        let _ = page.next_key_marker.as_deref().map(pve_common::output::escape);
    }
});
