//! The libraries (pve-common, pve-ssh, pve-tf, pve-restore), seeded mutation tests of their parsers
//! (helpers in `crate::support::mutation`): each input is a valid seed mutated by `Rng::mutate`; a
//! parser may refuse it, and must never panic, hang or accept what its own later steps cannot
//! handle.

use std::path::Path;

use crate::support::drift_fixtures;
use crate::support::mutation::run;
use crate::support::mutation::tar_seed;
use crate::support::mutation::vma_seed;

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
pub fn pvesh_seeds() -> Vec<Vec<u8>> {
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

pub fn pvesh_check(input: &[u8]) -> bool {
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
