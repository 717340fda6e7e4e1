//! verify-backups' one-pass archive check (`verify_backups::archive::check_file`: zstd/gzip/plain layer,
//! then VMA or tar) must never panic on a corrupt file. The first byte picks container and compression.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use verify_backups::archive::{Job, check_file};
use verify_backups::pve::{Compression, Container};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let container = if pick & 1 == 0 {
        Container::Tar
    } else {
        Container::Vma
    };
    let compression = match (pick >> 1) % 3 {
        0 => Compression::None,
        1 => Compression::Zstd,
        _ => Compression::Gzip,
    };
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(body).is_err() {
        return;
    }
    let job = Job {
        path: file.path().to_owned(),
        container,
        compression,
        hash: true,
    };
    let result = check_file(&job, None);
    // A whole file was read: its hash must be there.
    assert!(result.sha256.is_some() || result.bytes < body.len() as u64);
});
