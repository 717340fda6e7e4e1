//! Workload generators: a large plan JSON, Terraform environments of `terraform_data` resources, a state
//! object with many S3 versions, and real backup archives from the simulator's writer. Each writes into
//! a work directory and is skipped when a `.done` marker with the same parameters is already there, so
//! a second `bench/run` reuses gigabytes of fixtures instead of writing them again.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// True when `dir/.done` records exactly `stamp` (the generator's parameters).
pub fn is_done(dir: &Path, stamp: &str) -> bool {
    fs::read_to_string(dir.join(".done")).is_ok_and(|s| s == stamp)
}

/// Records that `dir` holds what `stamp` describes.
pub fn mark_done(dir: &Path, stamp: &str) -> Result<()> {
    fs::write(dir.join(".done"), stamp).with_context(|| format!("writing {}/.done", dir.display()))
}

/// What an action mix of the generated plan gives, for checking both sides count the same.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanCounts {
    /// Per action (`create`, `update`, `delete`, `replace`).
    pub by_action: BTreeMap<String, u64>,
}

fn actions_for(i: usize) -> (&'static [&'static str], &'static str) {
    match i % 100 {
        0..=3 => (&["update"], "update"),
        4 => (&["create"], "create"),
        5 => (&["delete"], "delete"),
        6 => (&["delete", "create"], "replace"),
        7 => (&["read"], "read"),
        _ => (&["no-op"], "no-op"),
    }
}

fn vm_value(i: usize, memory: u64) -> Value {
    json!({
        "id": format!("{}", 1000 + i),
        "vm_id": 1000 + i,
        "name": format!("guest-{i:05}"),
        "node_name": "pve",
        "description": format!("Managed by Terraform. Guest {i} of the generated benchmark plan; this text only makes the object as large as a real VM's."),
        "tags": ["bench", "generated", if i.is_multiple_of(2) { "even" } else { "odd" }],
        "started": true,
        "on_boot": true,
        "protection": false,
        "template": false,
        "bios": "seabios",
        "machine": "q35",
        "scsi_hardware": "virtio-scsi-single",
        "keyboard_layout": "en-us",
        "migrate": false,
        "reboot": false,
        "stop_on_destroy": false,
        "timeout_create": 1800,
        "timeout_shutdown_vm": 1800,
        "agent": [{"enabled": true, "timeout": "15m", "trim": false, "type": "virtio"}],
        "cpu": [{"cores": 2, "sockets": 1, "type": "x86-64-v2-AES", "units": 1024, "flags": [], "hotplugged": 0, "numa": false, "limit": 0}],
        "memory": [{"dedicated": memory, "floating": 0, "shared": 0, "hugepages": "", "keep_hugepages": false}],
        "disk": [
            {"datastore_id": "local-lvm", "interface": "scsi0", "size": 32, "file_format": "raw", "iothread": true, "ssd": true, "discard": "on", "cache": "none", "backup": true, "replicate": true, "aio": "io_uring", "path_in_datastore": format!("vm-{}-disk-0", 1000 + i)},
            {"datastore_id": "local-lvm", "interface": "scsi1", "size": 64, "file_format": "raw", "iothread": true, "ssd": true, "discard": "on", "cache": "none", "backup": true, "replicate": true, "aio": "io_uring", "path_in_datastore": format!("vm-{}-disk-1", 1000 + i)}
        ],
        "network_device": [{"bridge": "vmbr0", "enabled": true, "firewall": false, "mac_address": format!("BC:24:11:{:02X}:{:02X}:{:02X}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff), "model": "virtio", "mtu": 0, "queues": 0, "rate_limit": 0, "vlan_id": 0}],
        "initialization": [{"datastore_id": "local-lvm", "ip_config": [{"ipv4": [{"address": format!("192.0.2.{}/24", i % 254 + 1), "gateway": "192.0.2.1"}]}], "user_account": [{"username": "admin", "keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKeyOnlyForSizeXXXXXXXXXXXXXXXXXXX bench@pve"]}]}],
        "operating_system": [{"type": "l26"}],
        "serial_device": [{"device": "socket"}],
        "vga": [{"type": "serial0", "memory": 16}],
        "startup": [{"order": (i % 10) as u64, "up_delay": 0, "down_delay": 0}],
        "ipv4_addresses": [["127.0.0.1"], [format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)]],
        "mac_addresses": ["00:00:00:00:00:00", format!("BC:24:11:{:02X}:{:02X}:{:02X}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)]
    })
}

/// Writes a `terraform show -json`-shaped plan with `n` VM resources to `path`: `resource_changes`
/// (before and after values), `resource_drift` for half of the updates, and `prior_state` (as real
/// plans carry it). The action mix per 100
/// resources: 4 update, 1 create, 1 delete, 1 replace, 1 read, 92 no-op. Returns the expected counts.
pub fn write_plan(path: &Path, n: usize) -> Result<PlanCounts> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut counts = PlanCounts::default();
    let address = |i: usize| format!("proxmox_virtual_environment_vm.vm[\"guest-{i:05}\"]");
    write!(
        w,
        r#"{{"format_version":"1.2","terraform_version":"1.11.4","errored":false,"complete":true,"variables":{{}},"#
    )?;
    // prior_state: what Terraform adds around the changes (real plans also carry planned_values, left
    // out to keep the file, and jq's run time, in bounds); the parser skips it.
    w.write_all(br#""prior_state":{"values":{"root_module":{"resources":["#)?;
    for i in 0..n {
        if i > 0 {
            w.write_all(b",")?;
        }
        serde_json::to_writer(
            &mut w,
            &json!({"address": address(i), "mode": "managed", "type": "proxmox_virtual_environment_vm",
                    "name": "vm", "index": format!("guest-{i:05}"), "provider_name": "registry.terraform.io/bpg/proxmox",
                    "schema_version": 0, "values": vm_value(i, 2048), "sensitive_values": {}}),
        )?;
    }
    w.write_all(b"]}}},")?;
    w.write_all(br#""resource_drift":["#)?;
    let mut first = true;
    for i in (0..n).filter(|i| i % 100 < 2) {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(
            &mut w,
            &json!({"address": address(i), "mode": "managed", "type": "proxmox_virtual_environment_vm", "name": "vm",
                    "provider_name": "registry.terraform.io/bpg/proxmox",
                    "change": {"actions": ["update"], "before": vm_value(i, 2048), "after": vm_value(i, 3072),
                               "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {}}}),
        )?;
    }
    w.write_all(br#"],"resource_changes":["#)?;
    for i in 0..n {
        if i > 0 {
            w.write_all(b",")?;
        }
        let (actions, kind) = actions_for(i);
        if !matches!(kind, "no-op" | "read") {
            *counts.by_action.entry(kind.to_owned()).or_default() += 1;
        }
        let (before, after) = match kind {
            "create" => (Value::Null, vm_value(i, 2048)),
            "delete" => (vm_value(i, 2048), Value::Null),
            "update" => (
                vm_value(i, if i % 100 < 2 { 3072 } else { 2048 }),
                vm_value(i, 4096),
            ),
            _ => (vm_value(i, 2048), vm_value(i, 2048)),
        };
        let mut change = json!({"actions": actions, "before": before, "after": after,
                                "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {}});
        if kind == "replace" {
            change["replace_paths"] = json!([["node_name"]]);
        }
        let mut rc = json!({"address": address(i), "mode": "managed", "type": "proxmox_virtual_environment_vm",
                            "name": "vm", "index": format!("guest-{i:05}"),
                            "provider_name": "registry.terraform.io/bpg/proxmox", "change": change});
        if kind == "replace" {
            rc["action_reason"] = json!("replace_because_cannot_update");
        }
        serde_json::to_writer(&mut w, &rc)?;
    }
    w.write_all(
        br#"],"relevant_attributes":[],"timestamp":"2026-11-21T00:00:00Z","applyable":true}"#,
    )?;
    w.flush()?;
    Ok(counts)
}

/// The `terraform { backend "s3" {...} }` block for `key` in `bucket` at `endpoint` (moto).
pub fn s3_backend(endpoint: &str, bucket: &str, key: &str) -> String {
    format!(
        r#"terraform {{
  backend "s3" {{
    bucket                      = "{bucket}"
    key                         = "{key}"
    region                      = "us-east-1"
    endpoints                   = {{ s3 = "{endpoint}" }}
    use_path_style              = true
    use_lockfile                = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
  }}
}}
"#
    )
}

/// Writes `envs` environments `env1..` under `root`, each with `resources` `terraform_data` resources and
/// an S3 backend; the variable `revision` (default 2) feeds 3 of them, so after an apply with
/// `-var revision=1` each environment plans 3 in-place updates.
pub fn write_envs(
    root: &Path,
    envs: usize,
    resources: usize,
    endpoint: &str,
    bucket: &str,
) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for e in 1..=envs {
        let dir = root.join(format!("env{e}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tf = s3_backend(endpoint, bucket, &format!("bench/env{e}/terraform.tfstate"));
        tf.push_str(&format!(
            r#"
variable "revision" {{
  type    = number
  default = 2
}}

resource "terraform_data" "guest" {{
  count = {resources}
  input = {{
    name     = format("env{e}-guest-%02d", count.index)
    memory   = 2048
    cores    = 2
    tags     = ["bench", "env{e}"]
    revision = count.index < 3 ? var.revision : 1
  }}
}}
"#
        ));
        fs::write(dir.join("main.tf"), tf)?;
        dirs.push(dir);
    }
    Ok(dirs)
}

/// A tfstate (version 4) with `resources` `terraform_data` objects at `serial`.
pub fn state_json(serial: u64, resources: usize) -> Vec<u8> {
    let instances: Vec<Value> = (0..resources)
        .map(|i| {
            json!({"index_key": i, "schema_version": 0,
                   "attributes": {"id": format!("2b6c1f0e-0000-0000-0000-{i:012}"),
                                  "input": {"value": {"name": format!("guest-{i:02}"), "memory": 2048 + serial}, "type": ["object", {"name": "string", "memory": "number"}]},
                                  "output": {"value": {"name": format!("guest-{i:02}"), "memory": 2048 + serial}, "type": ["object", {"name": "string", "memory": "number"}]},
                                  "triggers_replace": null},
                   "sensitive_attributes": [], "identity_schema_version": 0})
        })
        .collect();
    let state = json!({
        "version": 4, "terraform_version": "1.11.4", "serial": serial,
        "lineage": "b3c1d0a2-bench-4e5f-8a9b-000000000200", "outputs": {},
        "resources": [{"mode": "managed", "type": "terraform_data", "name": "guest",
                       "provider": "provider[\"terraform.io/builtin/terraform\"]", "instances": instances}],
        "check_results": null
    });
    serde_json::to_vec_pretty(&state).unwrap_or_default()
}

/// A large tfstate (version 4) of about `bytes` bytes at `serial`: `terraform_data`-like resources of
/// about 20 KiB each (200 small attributes, as a guest with its cloud-init, disks and tags gives), written
/// as Terraform writes (2-space JSON), so that a tree of it costs many times its size.
pub fn big_state_json(serial: u64, bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 64 * 1024);
    let _ = write!(
        out,
        "{{\n  \"version\": 4,\n  \"terraform_version\": \"1.11.4\",\n  \"serial\": {serial},\n  \
         \"lineage\": \"b3c1d0a2-bench-4e5f-8a9b-000000000201\",\n  \"outputs\": {{}},\n  \"resources\": ["
    );
    let mut i = 0usize;
    while out.len() < bytes {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(
            out,
            "\n    {{\n      \"module\": \"module.guest{}\",\n      \"mode\": \"managed\",\n      \
             \"type\": \"terraform_data\",\n      \"name\": \"vm\",\n      \
             \"provider\": \"provider[\\\"terraform.io/builtin/terraform\\\"]\",\n      \"instances\": [\n        {{\n          \
             \"schema_version\": 0,\n          \"attributes\": {{\n",
            i / 10
        );
        for a in 0..200 {
            let _ = writeln!(
                out,
                "            \"attr_{a:03}\": \"guest-{i:06}-value-{a:03}-{serial:04}-abcdefghijklmnopqrstuvwxyz\","
            );
        }
        let _ = write!(
            out,
            "            \"id\": \"{i:08}-0000-4000-8000-{serial:012}\"\n          }},\n          \
             \"sensitive_attributes\": [],\n          \"index_key\": {}\n        }}\n      ]\n    }}",
            i % 10
        );
        i += 1;
    }
    let _ = write!(out, "\n  ],\n  \"check_results\": null\n}}\n");
    out
}

/// Writes `count` backups of about `size` bytes each (VMs as `.vma.zst`, containers as `.tar.zst`,
/// alternating) with the simulator's archive writer onto storage `local` of a simulated node in `dir`;
/// returns the dump directory.
pub fn write_archives(dir: &Path, count: usize, size: u64) -> Result<PathBuf> {
    use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};
    use testbed::sim::{Guest, GuestType, State};
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let state = State::create_standard(dir, "pve")?;
    let mut dump = None;
    for i in 0..count {
        let vmid = 200 + u32::try_from(i)?;
        let guest = if i % 2 == 0 {
            Guest::new(
                vmid,
                GuestType::Qemu,
                "pve",
                &[
                    ("name", &format!("bench-vm-{vmid}")),
                    ("memory", "2048"),
                    ("scsi0", &format!("local-lvm:vm-{vmid}-disk-0,size=1G")),
                ],
            )
        } else {
            Guest::new(
                vmid,
                GuestType::Lxc,
                "pve",
                &[
                    ("hostname", &format!("bench-ct-{vmid}")),
                    ("memory", "512"),
                    ("ostype", "debian"),
                    ("rootfs", &format!("local-lvm:subvol-{vmid}-disk-0,size=1G")),
                ],
            )
        };
        state.add_guest(&guest)?;
        let spec = ArchiveSpec {
            size,
            ctime: 1_763_000_000 + i64::try_from(i)? * 3600,
            seed: i as u64 + 11,
        };
        let entry = state.add_backup("local", &guest, &spec, &BackupOptions::default())?;
        if let Some(path) = entry.path {
            dump = path.parent().map(Path::to_path_buf);
        }
    }
    dump.context("no archive written")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_plan_parses_and_counts_match_the_parser() {
        let dir = tempfile_dir();
        let path = dir.join("plan.json");
        let counts = write_plan(&path, 300).unwrap();
        let bytes = fs::read(&path).unwrap();
        let plan = check_drift::plan::parse(&bytes).unwrap();
        let analysis = check_drift::plan::analyze(&plan, &Default::default());
        let mut got = BTreeMap::new();
        for r in &analysis.resources {
            let key = serde_json::to_value(r.action).unwrap();
            *got.entry(key.as_str().unwrap().to_owned()).or_insert(0u64) += 1;
        }
        assert_eq!(got, counts.by_action);
        assert_eq!(counts.by_action["update"], 12);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn state_is_valid_json_with_serial() {
        let v: Value = serde_json::from_slice(&state_json(7, 3)).unwrap();
        assert_eq!(v["serial"], 7);
        assert_eq!(v["resources"][0]["instances"].as_array().unwrap().len(), 3);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pve-bench-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
