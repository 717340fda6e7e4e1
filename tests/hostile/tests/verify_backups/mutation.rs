//! verify-backups, seeded mutation tests of its parsers (helpers in `crate::support::mutation`):
//! each input is a valid seed mutated by `Rng::mutate`; a parser may refuse it, and must never
//! panic, hang or accept what its own later steps cannot handle.

use crate::support::mutation::run;
use crate::support::mutation::tar_seed;
use crate::support::mutation::vma_seed;

#[test]
fn vma_reader_survives_mutations() {
    // The one VMA reader: verify-backups' `--deep` and the test bed's simulator both use it.
    let tokens: &[&[u8]] = &[b"VMA\0", b"VMAE", b"\xff\xff\xff\xff", b"\0\0\0\0\0\0\0\0"];
    run("pve_common::vma", 0x0_F1B, &[vma_seed()], tokens, |input| {
        pve_common::vma::verify(input).is_ok()
    });
}

#[test]
fn archive_check_of_verify_backups_survives_mutations() {
    // The one-pass check of a file (tar or VMA, plain or zstd): what `--deep --local-dir` runs.
    use verify_backups::archive::{Job, check_file};
    use verify_backups::pve::{Compression, Container};
    let dir = tempfile::tempdir().unwrap();
    let zst = |b: &[u8]| zstd::encode_all(b, 3).unwrap();
    let tar = tar_seed();
    let vma = vma_seed();
    // First byte: bit 0 = VMA, (byte >> 1) % 3 = none/zstd/gzip (as the cargo-fuzz target reads it).
    let seeds = vec![
        [&[0u8][..], &tar].concat(),
        [&[2u8][..], &zst(&tar)].concat(),
        [&[1u8][..], &vma].concat(),
        [&[3u8][..], &zst(&vma)].concat(),
    ];
    let path = dir.path().join("archive");
    let tokens: &[&[u8]] = &[b"ustar\0", b"VMA\0", b"\x28\xb5\x2f\xfd", b"\0\0\0\0"];
    let n = std::cell::Cell::new(0u32);
    run("verify-backups archive", 0x0_A7C, &seeds, tokens, |input| {
        let Some((&pick, body)) = input.split_first() else {
            return false;
        };
        n.set(n.get() + 1);
        std::fs::write(&path, body).unwrap();
        let job = Job {
            path: path.clone(),
            container: if pick & 1 == 0 {
                Container::Tar
            } else {
                Container::Vma
            },
            compression: match (pick >> 1) % 3 {
                0 => Compression::None,
                1 => Compression::Zstd,
                _ => Compression::Gzip,
            },
            hash: true,
        };
        let r = check_file(&job, None);
        assert!(r.sha256.is_some(), "a whole readable file has a hash");
        !r.content.failed() && !r.compression.failed()
    });
}
