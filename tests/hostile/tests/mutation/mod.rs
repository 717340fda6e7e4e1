//! Seeded mutation tests of every parser, deterministic and quick (the coverage-guided `fuzz/` targets
//! run by `fuzz/run`).
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
        let Ok(state) = pve_tf::state::State::parse(input) else {
            return false;
        };
        let _ = state.summary();
        let _ = state.addresses();
        // Shown whole or refused whole (a lone surrogate escape is JSON, but no string).
        let _ = serde_json::to_vec(&state.masked(false));
        let _ = state.diff(&state);
        let bytes = state.to_bytes_with_serial(state.serial.saturating_add(1));
        let again = pve_tf::state::State::parse(&bytes)
            .expect("a state written by restore-tfstate parses again");
        assert_eq!(again.lineage, state.lineage);
        assert_eq!(again.serial, state.serial.saturating_add(1));
        true
    });
}

/// Seeds for the pvesh models: answers as the simulator and Proxmox give them.
fn pvesh_seeds() -> Vec<Vec<u8>> {
    [
        r#"[{"volid":"local:backup/vzdump-qemu-100-2026_11_20-02_00_00.vma.zst","content":"backup","format":"vma.zst","subtype":"qemu","vmid":100,"ctime":1795140000,"size":65536,"notes":"nightly","protected":1}]"#,
        r#"[{"volid":"pbs:backup/vm/100/2026-11-23T02:00:00Z","format":"pbs-vm","vmid":100,"ctime":1795399200,"size":70000,"verification":{"state":"ok","upid":"UPID:pve:1"}}]"#,
        r#"[{"storage":"local","type":"dir","content":"backup,iso,vztmpl","enabled":1,"active":1,"shared":0,"total":107374182400,"used":1073741824,"avail":106300440576}]"#,
        r#"[{"id":"qemu/100","type":"qemu","vmid":100,"node":"pve","status":"running","name":"jellyfin","template":0},{"id":"lxc/101","type":"lxc","vmid":101,"node":"pve","status":"stopped","lock":"backup"}]"#,
        r#"{"vmid":100,"name":"jellyfin","status":"running","template":false}"#,
        r#"{"name":"jellyfin","memory":2048,"cores":2,"net0":"virtio=BC:24:11:00:01:00,bridge=vmbr0","ipconfig0":"ip=192.0.2.5/24,gw=192.0.2.1","protection":1,"agent":"1"}"#,
        r#"[{"name":"eth0","ip-addresses":[{"ip-address-type":"ipv4","ip-address":"192.0.2.5","prefix":24}]}]"#,
        "local:backup/vzdump-lxc-101-2026_11_20-02_00_00.tar.zst",
        "+0100",
        "INFO: Finished Backup of VM 100 (00:00:12)\nINFO: Backup job finished successfully\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn pvesh_check(input: &[u8]) -> bool {
    use pve_common::pve;
    let mut accepted = false;
    if let Ok(list) = serde_json::from_slice::<Vec<pve::BackupContent>>(input) {
        for c in &list {
            let _ = (c.guest_type(), c.guest_id());
            let _ =
                verify_backups::pve::Backup::from_content("local", c).map(|b| b.file_name().len());
        }
        accepted = true;
    }
    if let Ok(list) = serde_json::from_slice::<Vec<pve::StorageStatus>>(input) {
        accepted |= list.iter().all(|s| !s.has_content("\0"));
    }
    if let Ok(list) = serde_json::from_slice::<Vec<pve::ClusterResource>>(input) {
        let _ = list.iter().map(pve::ClusterResource::guest_type).count();
        let _ = list
            .iter()
            .filter_map(verify_backups::pve::Guest::from_resource)
            .count();
        accepted = true;
    }
    if let Ok(s) = serde_json::from_slice::<pve::GuestStatus>(input) {
        let _ = s.is_running();
        accepted = true;
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) {
        let config = pve::guest_config(&value);
        let _ = pve::config_protected(&config);
        let _ = pve_restore::node::ip_from_config(&config);
        accepted = true;
    }
    if let Ok(text) = std::str::from_utf8(input) {
        if let Ok(v) = pve::Volid::parse(text) {
            let _ = v.archive();
            assert!(
                !v.to_string()
                    .contains([' ', ';', '\'', '"', '$', '`', '\n', '&', '|']),
                "a volid with a shell metacharacter was accepted: {v}"
            );
            accepted = true;
        }
        accepted |= pve::parse_vzdump_name(text).is_some();
        let _ = pve::parse_vmid(text);
        let _ = pve::VzdumpFile::parse(text);
        accepted |= verify_backups::pve::log_verdict(text, 100).is_ok();
        accepted |= pve_restore::node::parse_offset(text.trim()).is_some();
        let _ = pve_restore::node::ip_from_agent(text);
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let _ = pve_restore::node::task_warnings(&lines, text);
    }
    accepted
}

#[test]
fn pvesh_models_and_answer_readers_survive_mutations() {
    let tokens: &[&[u8]] = &[
        b"null",
        b"true",
        b"-1",
        b"1e400",
        b"\"\"",
        b"[]",
        b"{}",
        b"99999999999999999999",
        b";",
        b"$(id)",
        b"\\u0000",
        b"\"volid\":",
        b"\"protected\":\"1\"",
        b"/../",
        b"..",
    ];
    run("pvesh", 0x0_9E5, &pvesh_seeds(), tokens, pvesh_check);
}

fn vma_seed() -> Vec<u8> {
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

fn tar_seed() -> Vec<u8> {
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

/// Writes the seeds of the new cargo-fuzz targets (`fuzz/seeds/{pvesh,vma,archive}`):
/// `cargo test -p hostile write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_fuzz_seeds() {
    let root = crate::support::workspace().join("fuzz/seeds");
    for (i, s) in pvesh_seeds().iter().enumerate() {
        std::fs::write(root.join(format!("pvesh/seed-{i}")), s).unwrap();
    }
    std::fs::write(root.join("vma/vm-100.vma"), vma_seed()).unwrap();
    let tar = tar_seed();
    let vma = vma_seed();
    std::fs::write(root.join("archive/tar"), [&[0u8][..], &tar].concat()).unwrap();
    std::fs::write(
        root.join("archive/tar-zst"),
        [&[2u8][..], &zstd::encode_all(&tar[..], 3).unwrap()].concat(),
    )
    .unwrap();
    std::fs::write(root.join("archive/vma"), [&[1u8][..], &vma].concat()).unwrap();
}
