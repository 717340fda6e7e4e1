//! Seeded mutation tests of every parser, on stable Rust (the `fuzz/` targets need nightly cargo-fuzz).
//! Each input is a valid seed mutated by [`Rng::mutate`] (bit flips, inserted/deleted/duplicated slices,
//! truncation, spliced tokens). A parser may refuse an input; it must never panic, hang or accept something
//! its own later steps cannot handle. A failure prints the seed index and the input in hex so it can become
//! a regression test. `HOSTILE_MUTATIONS=N` raises the iteration count (default 2,000 per parser).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::support::{Rng, drift_fixtures};

fn iterations() -> usize {
    std::env::var("HOSTILE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `check` on `n` mutations of the seeds; returns (inputs tried, accepted).
fn run(
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

#[test]
fn plan_parser_and_analysis_survive_mutations() {
    let mut seeds = Vec::new();
    for f in std::fs::read_dir(drift_fixtures().join("plans")).unwrap() {
        seeds.push(std::fs::read(f.unwrap().path()).unwrap());
    }
    let tokens: &[&[u8]] = &[
        b"null",
        b"[]",
        b"{}",
        b"\"delete\"",
        b"\"create\"",
        b"true",
        b"1e999",
        b"-0",
        b"\"\\u0000\"",
        b"\"after_sensitive\":true",
        b"\"format_version\":\"2.0\"",
        b"[[[[[[",
    ];
    let history: HashSet<String> = ["proxmox_virtual_environment_vm.a".to_owned()].into();
    run("plan", 0x9_1A4, &seeds, tokens, |input| {
        let Ok(plan) = check_drift::plan::parse(input) else {
            return false;
        };
        let analysis = check_drift::plan::analyze(&plan, &history);
        let _ = check_drift::plan::sensitive_strings(&plan);
        for rc in plan.resource_changes.iter().flatten() {
            let _ = check_drift::plan::diff(&rc.change);
        }
        let _ = analysis.resources.len();
        true
    });
}

#[test]
fn tfvars_reader_survives_mutations() {
    let seeds: Vec<Vec<u8>> = vec![
        b"pve_host = \"pve.lan\"\npve_port = 8006\nvms = {\n  jellyfin = { memory = 8192, tags = [\"media\", \"prod\"] }\n}\n".to_vec(),
        b"# comment\n// another\n/* block */\nminio_secret_key = \"s3cr3t\"\nenabled = true\nratio = 1.5\nnothing = null\n".to_vec(),
        b"motd = <<-EOT\n  hello $${x}\n  EOT\nlist = [1, 2, 3,]\nm = { \"quoted key\" = \"v\" }\n".to_vec(),
    ];
    let tokens: &[&[u8]] = &[
        b"${var.x}",
        b"<<EOF\n",
        b"EOF\n",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"=",
        b"\n",
        b"\\u",
        b"%{ if }",
        b"abs(-1)",
        b"a.b.c",
    ];
    run("tfvars", 0x7F_7A25, &seeds, tokens, |input| {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        let Ok(vars) = pve_common::tfvars::parse_tfvars_str(text, Path::new("fuzz.tfvars")) else {
            return false;
        };
        let keys: Vec<String> = vars.keys().map(str::to_owned).collect();
        for k in &keys {
            let _ = vars.get_str(k);
            let _ = vars.get_u64(k);
            let _ = vars.get_bool(k);
            let _ = vars.get_str_list(k);
            let _ = vars.get_secret(k);
        }
        true
    });
}

#[test]
fn ignore_rule_parser_survives_mutations() {
    let seeds: Vec<Vec<u8>> = vec![
        b"# accepted differences\nproxmox_virtual_environment_vm.jellyfin  memory.dedicated  # ballooning\nmodule.*.proxmox_* tags expires=2099-01-01  # reason\n".to_vec(),
        b"terraform_data.dns\n\n   \t\nproxmox_virtual_environment_vm.a[\"x\"] disk.*.size # ok\n".to_vec(),
    ];
    let tokens: &[&[u8]] = &[
        b"[",
        b"]",
        b"{a,b}",
        b"**",
        b"\\",
        b"expires=",
        b"2026-02-30",
        b" # ",
        b"\n",
        b"*",
        b"?",
        b"[!a-",
        b"\xff",
    ];
    let today = jiff::civil::date(2026, 11, 21);
    run("ignore", 0x1_6E0E, &seeds, tokens, |input| {
        let text = String::from_utf8_lossy(input);
        check_drift::ignore::parse(&text, Path::new(".driftignore"), today).is_ok()
    });
}

#[test]
fn tfstate_parser_survives_mutations_and_round_trips() {
    let seeds = vec![
        crate::s3bed::state(3, 2048),
        std::fs::read(drift_fixtures().join("envs/basic/terraform.tfstate")).unwrap(),
    ];
    let tokens: &[&[u8]] = &[
        b"null",
        b"\"version\":3",
        b"\"lineage\":\"\"",
        b"\"serial\":-1",
        b"18446744073709551616",
        b"\"resources\":{}",
        b"\"index_key\":[]",
        b"\"module\":\"\"",
        b"[]",
        b"{}",
    ];
    run("tfstate", 0x57A7E, &seeds, tokens, |input| {
        let Ok(state) = restore_tfstate::state::State::parse(input) else {
            return false;
        };
        let _ = state.summary();
        let _ = state.addresses();
        let _ = state.masked();
        let _ = state.diff(&state);
        let bytes = state.to_bytes_with_serial(state.serial.saturating_add(1));
        let again = restore_tfstate::state::State::parse(&bytes)
            .expect("a state written by restore-tfstate parses again");
        assert_eq!(again.lineage, state.lineage);
        assert_eq!(again.serial, state.serial.saturating_add(1));
        true
    });
}

#[test]
fn vma_reader_of_the_test_bed_survives_mutations() {
    // restore-vm and verify-backups are not built yet; the test bed's VMA reader is the one that exists.
    use testbed::sim::vma;
    let spec = vma::VmaSpec {
        uuid: [7; 16],
        ctime: 1_763_700_000,
        configs: vec![(
            "qemu-server.conf".to_owned(),
            b"name: jellyfin\nmemory: 8192\n".to_vec(),
        )],
        devices: vec![("drive-scsi0".to_owned(), 256 * 1024)],
        data_bytes: 64 * 1024,
        seed: 1,
    };
    let mut archive = Vec::new();
    vma::write(&mut archive, &spec).unwrap();
    let seeds = vec![archive];
    let tokens: &[&[u8]] = &[b"VMA\0", b"VMAE", b"\xff\xff\xff\xff", b"\0\0\0\0\0\0\0\0"];
    let saved = std::env::var("HOSTILE_MUTATIONS").ok();
    let _ = saved;
    run("vma", 0x0_F1A, &seeds, tokens, |input| {
        let _ = vma::read_header(&mut &input[..]);
        vma::verify(input).is_ok()
    });
}
