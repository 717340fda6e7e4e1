//! The seeded mutation tests of every parser (in each tool's and the libraries' `mutation` module),
//! deterministic and quick (the coverage-guided `fuzz/` targets run by `fuzz/run`). Each input is a valid
//! seed mutated by [`Rng::mutate`](crate::support::Rng::mutate) (bit flips, inserted/deleted/duplicated
//! slices, truncation, spliced tokens). A parser may refuse an input; it must never panic, hang or accept
//! something its own later steps cannot handle. A failure prints the seed index and the input in hex so it
//! can become a regression test. `HOSTILE_MUTATIONS=N` raises the iteration count (default 2,000 per
//! parser).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::support::Rng;

pub fn iterations() -> usize {
    std::env::var("HOSTILE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `check` on `n` mutations of the seeds; returns (inputs tried, accepted).
pub fn run(
    name: &str,
    seed: u64,
    seeds: &[Vec<u8>],
    tokens: &[&[u8]],
    check: impl Fn(&[u8]) -> bool,
) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let n = iterations();
    let mut accepted = 0;
    for i in 0..n {
        let base = &seeds[rng.below(seeds.len())];
        let input = rng.mutate(base, tokens);
        match catch_unwind(AssertUnwindSafe(|| check(&input))) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(_) => panic!(
                "{name}: panic on mutation {i} (seed {seed:#x}), input hex: {}",
                hex(&input)
            ),
        }
    }
    // Every seed itself must be accepted: the mutation test must start from valid input.
    for s in seeds {
        assert!(
            check(s),
            "{name}: a seed was refused: {}",
            String::from_utf8_lossy(s)
        );
    }
    eprintln!("{name}: {n} mutations, {accepted} accepted, 0 panics");
    (n, accepted)
}

pub fn vma_seed() -> Vec<u8> {
    use testbed::sim::vma;
    let spec = vma::VmaSpec {
        uuid: [9; 16],
        ctime: 1_795_140_000,
        configs: vec![(
            "qemu-server.conf".to_owned(),
            b"name: jellyfin\nmemory: 2048\n".to_vec(),
        )],
        devices: vec![("drive-scsi0".to_owned(), 192 * 1024)],
        data_bytes: 32 * 1024,
        seed: 5,
    };
    let mut archive = Vec::new();
    vma::write(&mut archive, &spec).unwrap();
    archive
}

pub fn tar_seed() -> Vec<u8> {
    let mut tar = Vec::new();
    testbed::sim::lxc_tar::write(
        &mut tar,
        "hostname: pihole\nmemory: 512\n",
        "pihole",
        4096,
        3,
        1_795_140_000,
    )
    .unwrap();
    tar
}
