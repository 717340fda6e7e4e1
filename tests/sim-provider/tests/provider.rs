//! Real Terraform, offline, against the provider and a temporary simulator state directory.
//!
//! Each test gets its own state directory, mirror and working directory, runs `terraform init` from the
//! filesystem mirror, and checks what lands in the guest files and what `terraform show -json` reports
//! for drift made outside Terraform.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns fail loudly by design"
)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use serde::Deserialize;
use serde_json::Value;
use sim_provider::harness::{self, Terraform};
use sim_provider::simstate::Guest;
use tempfile::TempDir;

struct Bed {
    _tmp: TempDir,
    state: PathBuf,
    work: PathBuf,
    tf: Terraform,
}

fn bed() -> Bed {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    harness::init_state_dir(&state).unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-proxmox"));
    let cli_config = harness::install_mirror_from(&binary, tmp.path()).unwrap();
    let tf = Terraform::new(&work, &cli_config, &state);
    Bed {
        _tmp: tmp,
        state,
        work,
        tf,
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Bed {
    fn config(&self, resources: &str) {
        let hcl = format!("{}\n{resources}", harness::provider_hcl(None));
        fs::write(self.work.join("main.tf"), hcl).unwrap();
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.tf.run(args).unwrap();
        assert!(
            out.status.success(),
            "terraform {args:?} failed: {}",
            text(&out)
        );
        out
    }

    fn init(&self) {
        self.ok(&["init", "-input=false", "-no-color"]);
    }

    fn apply(&self) {
        self.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    }

    /// `plan -detailed-exitcode -out`, then `show -json` of that plan.
    fn plan(&self) -> (i32, Plan, String) {
        let out = self
            .tf
            .run(&[
                "plan",
                "-detailed-exitcode",
                "-input=false",
                "-no-color",
                "-out=tfplan",
            ])
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert!(code == 0 || code == 2, "plan failed: {}", text(&out));
        let shown = self.ok(&["show", "-json", "tfplan"]);
        let plan: Plan = serde_json::from_slice(&shown.stdout).unwrap();
        (code, plan, text(&out))
    }

    fn guest(&self, vmid: u32) -> Option<Guest> {
        harness::read_guest(&self.state, vmid).unwrap()
    }

    fn journal(&self) -> Vec<Value> {
        fs::read_to_string(self.state.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct Plan {
    #[serde(default)]
    resource_drift: Vec<ResourceChange>,
    #[serde(default)]
    resource_changes: Vec<ResourceChange>,
}

#[derive(Debug, Deserialize)]
struct ResourceChange {
    address: String,
    change: Change,
}

#[derive(Debug, Deserialize)]
struct Change {
    actions: Vec<String>,
    before: Value,
    after: Value,
    #[serde(default)]
    replace_paths: Vec<Vec<Value>>,
}

impl Plan {
    fn drift(&self, address: &str) -> Option<&Change> {
        self.resource_drift
            .iter()
            .find(|r| r.address == address)
            .map(|r| &r.change)
    }

    fn change(&self, address: &str) -> &Change {
        &self
            .resource_changes
            .iter()
            .find(|r| r.address == address)
            .unwrap_or_else(|| panic!("no change for {address} in {self:?}"))
            .change
    }
}

const VM: &str = "proxmox_virtual_environment_vm.jellyfin";

fn vm_hcl(memory: u32, clone_id: u32, tags: &str, order: u32, keys: &str) -> String {
    format!(
        r#"
resource "proxmox_virtual_environment_vm" "jellyfin" {{
  node_name   = "pve"
  vm_id       = 100
  name        = "jellyfin"
  description = "Managed by Terraform"
  tags        = [{tags}]
  on_boot     = true
  started     = true

  agent {{
    enabled = true
  }}

  operating_system {{
    type = "l26"
  }}

  clone {{
    vm_id = {clone_id}
  }}

  cpu {{
    cores   = 4
    sockets = 1
  }}

  memory {{
    dedicated = {memory}
  }}

  disk {{
    datastore_id = "local-lvm"
    interface    = "scsi0"
    size         = 32
  }}

  network_device {{
    bridge = "vmbr0"
    model  = "virtio"
  }}

  startup {{
    order = {order}
  }}

  initialization {{
    user_account {{
      keys     = [{keys}]
      username = "ops"
    }}
  }}
}}
"#
    )
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0b/+Zx ops@homelab";

fn standard_vm(memory: u32, clone_id: u32) -> String {
    vm_hcl(
        memory,
        clone_id,
        r#""media", "prod""#,
        2,
        &format!("{KEY:?}"),
    )
}

/// A template to clone from, as the homelab has.
fn add_template(bed: &Bed, vmid: u32) {
    let mut template = Guest::new(vmid, "qemu", "pve");
    template.template = true;
    template.set("name", "debian-12-template");
    template.set("memory", "2048");
    template.set("scsihw", "virtio-scsi-single");
    template.set("vga", "serial0");
    template.set("scsi0", format!("local-lvm:base-{vmid}-disk-0,size=2G"));
    template.set("net0", "virtio=BC:24:11:99:99:99,bridge=vmbr0");
    harness::write_guest(&bed.state, &template).unwrap();
}

fn applied_vm() -> Bed {
    let bed = bed();
    add_template(&bed, 9000);
    bed.config(&standard_vm(8192, 9000));
    bed.init();
    bed.apply();
    bed
}

#[test]
fn apply_writes_proxmox_config_keys_and_plans_nothing_after() {
    let bed = applied_vm();
    let guest = bed.guest(100).expect("guest 100 created");
    let c = |k: &str| {
        guest
            .get(k)
            .unwrap_or_else(|| panic!("no key {k} in {guest:?}"))
    };
    assert_eq!(guest.kind, "qemu");
    assert_eq!(guest.status, "running");
    assert_eq!(guest.clone_of, Some(9000));
    assert_eq!(c("name"), "jellyfin");
    assert_eq!(c("memory"), "8192");
    assert_eq!(c("cores"), "4");
    assert_eq!(c("sockets"), "1");
    assert_eq!(c("tags"), "media;prod");
    assert_eq!(c("onboot"), "1");
    assert_eq!(c("startup"), "order=2");
    assert_eq!(c("description"), "Managed by Terraform");
    assert_eq!(c("scsi0"), "local-lvm:vm-100-disk-0,size=32G");
    assert_eq!(c("net0"), "virtio=BC:24:11:00:64:00,bridge=vmbr0");
    assert_eq!(c("ciuser"), "ops");
    assert_eq!(
        c("sshkeys"),
        "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIE0b%2F%2BZx%20ops%40homelab%0A"
    );
    assert_eq!(c("agent"), "enabled=1,fstrim_cloned_disks=0,type=virtio");
    assert_eq!(c("ostype"), "l26");
    // bpg's default scsi_hardware overrides the template's; other template keys are kept.
    assert_eq!(c("scsihw"), "virtio-scsi-pci");
    assert_eq!(c("vga"), "serial0");

    let journal = bed.journal();
    let entry = journal.last().expect("journal entry");
    assert_eq!(entry["source"], "provider");
    assert_eq!(entry["exit"], 0);
    assert_eq!(entry["argv"][1], "create");
    assert_eq!(entry["argv"][2], "qemu/100");
    let argv = entry["argv"].as_array().unwrap();
    assert!(argv.contains(&Value::from("memory=8192")), "{argv:?}");

    let (code, plan, out) = bed.plan();
    assert_eq!(code, 0, "plan right after apply must be empty: {out}");
    assert!(plan.resource_drift.is_empty(), "{plan:?}");
    assert_eq!(plan.change(VM).actions, ["no-op"]);
}

#[test]
fn memory_raised_in_ui_is_drift_and_planned_back() {
    let bed = applied_vm();
    harness::set_memory(&bed.state, 100, 10240).unwrap();
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    let drift = plan.drift(VM).expect("VM in resource_drift");
    assert_eq!(drift.before["memory"][0]["dedicated"], 8192);
    assert_eq!(drift.after["memory"][0]["dedicated"], 10240);
    let change = plan.change(VM);
    assert_eq!(change.actions, ["update"]);
    assert_eq!(change.before["memory"][0]["dedicated"], 10240);
    assert_eq!(change.after["memory"][0]["dedicated"], 8192);

    // Applying puts it back and the next plan is clean again.
    bed.apply();
    assert_eq!(
        bed.guest(100).unwrap().get("memory").as_deref(),
        Some("8192")
    );
    let last = bed.journal().pop().unwrap();
    assert_eq!(last["argv"][1], "update");
    assert!(
        last["argv"]
            .as_array()
            .unwrap()
            .contains(&Value::from("memory=8192"))
    );
    let (code, _, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn guest_destroyed_outside_terraform_is_planned_for_create() {
    let bed = applied_vm();
    harness::destroy_guest(&bed.state, 100).unwrap();
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert_eq!(plan.change(VM).actions, ["create"]);
    bed.apply();
    assert!(bed.guest(100).is_some());
}

#[test]
fn changing_clone_source_forces_replacement() {
    let bed = applied_vm();
    add_template(&bed, 9001);
    bed.config(&standard_vm(8192, 9001));
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    let change = plan.change(VM);
    assert_eq!(change.actions, ["delete", "create"]);
    // As SDKv2 reports a ForceNew attribute inside a list block.
    let path = vec![Value::from("clone"), Value::from(0), Value::from("vm_id")];
    assert!(change.replace_paths.contains(&path), "{change:?}");
    bed.apply();
    assert_eq!(bed.guest(100).unwrap().clone_of, Some(9001));
}

#[test]
fn tags_and_startup_order_changed_in_ui_are_drift() {
    let bed = applied_vm();
    harness::set_tags(&bed.state, 100, &["prod", "media", "gpu"]).unwrap();
    harness::set_startup_order(&bed.state, 100, 5).unwrap();
    harness::set_status(&bed.state, 100, "stopped").unwrap();
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    let drift = plan.drift(VM).expect("VM in resource_drift");
    assert_eq!(drift.before["started"], true);
    assert_eq!(drift.after["started"], false);
    assert_eq!(drift.before["tags"], serde_json::json!(["media", "prod"]));
    // Read sorts tags, as bpg does.
    assert_eq!(
        drift.after["tags"],
        serde_json::json!(["gpu", "media", "prod"])
    );
    assert_eq!(drift.before["startup"][0]["order"], 2);
    assert_eq!(drift.after["startup"][0]["order"], 5);
    let change = plan.change(VM);
    assert_eq!(change.actions, ["update"]);
    assert_eq!(change.after["tags"], serde_json::json!(["media", "prod"]));
    assert_eq!(change.after["startup"][0]["order"], 2);
}

#[test]
fn tags_in_another_order_are_no_change() {
    let bed = bed();
    add_template(&bed, 9000);
    bed.config(&vm_hcl(
        8192,
        9000,
        r#""prod", "media""#,
        2,
        &format!("{KEY:?}"),
    ));
    bed.init();
    bed.apply();
    // Proxmox keeps them sorted; bpg suppresses order-only differences, on refresh and in plans.
    assert_eq!(
        bed.guest(100).unwrap().get("tags").as_deref(),
        Some("media;prod")
    );
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
    assert!(plan.resource_drift.is_empty(), "{plan:?}");
    harness::set_tags(&bed.state, 100, &["prod", "media"]).unwrap();
    assert_eq!(bed.plan().0, 0);
}

#[test]
fn tags_and_startup_changed_in_config_are_updates() {
    let bed = applied_vm();
    bed.config(&vm_hcl(
        8192,
        9000,
        r#""media", "prod", "test""#,
        3,
        &format!("{KEY:?}"),
    ));
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert!(plan.drift(VM).is_none(), "{plan:?}");
    assert_eq!(plan.change(VM).actions, ["update"]);
    bed.apply();
    let guest = bed.guest(100).unwrap();
    assert_eq!(guest.get("tags").as_deref(), Some("media;prod;test"));
    assert_eq!(guest.get("startup").as_deref(), Some("order=3"));
    assert_eq!(bed.plan().0, 0);
}

#[test]
fn ssh_key_with_trailing_newline_is_a_false_positive_drift() {
    let bed = bed();
    add_template(&bed, 9000);
    // As `file("~/.ssh/id_ed25519.pub")` gives it: with the trailing newline.
    let keys = format!("{:?}", format!("{KEY}\n"));
    bed.config(&vm_hcl(8192, 9000, r#""media", "prod""#, 2, &keys));
    bed.init();
    bed.apply();
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    let drift = plan.drift(VM).expect("VM in resource_drift");
    let path = |v: &Value| v["initialization"][0]["user_account"][0]["keys"].clone();
    assert_eq!(path(&drift.before), serde_json::json!([format!("{KEY}\n")]));
    assert_eq!(path(&drift.after), serde_json::json!([KEY]));
    // Nothing else drifted.
    assert_eq!(drift.before["memory"], drift.after["memory"]);
    // bpg marks user_account.keys ForceNew: the false positive plans a replacement.
    let change = plan.change(VM);
    assert_eq!(change.actions, ["delete", "create"]);
    let keys_path: Vec<Value> = ["initialization", "0", "user_account", "0", "keys"]
        .iter()
        .map(|s| {
            s.parse::<u64>()
                .map_or_else(|_| Value::from(*s), Value::from)
        })
        .collect();
    assert!(change.replace_paths.contains(&keys_path), "{change:?}");
    // And it never converges: apply, plan again, same drift.
    bed.apply();
    assert_eq!(bed.plan().0, 2);
}

#[test]
fn container_lifecycle() {
    let bed = bed();
    let ct = |memory: u32| {
        format!(
            r#"
resource "proxmox_virtual_environment_container" "pihole" {{
  node_name    = "pve"
  vm_id        = 101
  description  = "DNS"
  tags         = ["dns"]
  unprivileged = true

  operating_system {{
    template_file_id = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
    type             = "debian"
  }}

  initialization {{
    hostname = "pihole"
    ip_config {{
      ipv4 {{
        address = "dhcp"
      }}
    }}
  }}

  memory {{
    dedicated = {memory}
    swap      = 512
  }}

  disk {{
    datastore_id = "local-lvm"
    size         = 8
  }}

  network_interface {{
    name   = "eth0"
    bridge = "vmbr0"
  }}
}}
"#
        )
    };
    bed.config(&ct(1024));
    bed.init();
    bed.apply();
    let guest = bed.guest(101).expect("container created");
    let c = |k: &str| {
        guest
            .get(k)
            .unwrap_or_else(|| panic!("no key {k} in {guest:?}"))
    };
    assert_eq!(guest.kind, "lxc");
    assert_eq!(c("hostname"), "pihole");
    assert_eq!(c("memory"), "1024");
    assert_eq!(c("swap"), "512");
    assert_eq!(c("rootfs"), "local-lvm:subvol-101-disk-0,size=8G");
    assert_eq!(c("ostype"), "debian");
    assert_eq!(c("unprivileged"), "1");
    assert_eq!(c("onboot"), "1");
    assert_eq!(c("tags"), "dns");
    assert_eq!(
        c("net0"),
        "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:65:00,ip=dhcp"
    );
    assert_eq!(bed.plan().0, 0);

    let address = "proxmox_virtual_environment_container.pihole";
    harness::set_memory(&bed.state, 101, 2048).unwrap();
    let (code, plan, out) = bed.plan();
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        plan.drift(address).unwrap().after["memory"][0]["dedicated"],
        2048
    );

    bed.config(&ct(4096));
    bed.apply();
    assert_eq!(
        bed.guest(101).unwrap().get("memory").as_deref(),
        Some("4096")
    );
    assert_eq!(bed.plan().0, 0);

    bed.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(bed.guest(101).is_none());
    let last = bed.journal().pop().unwrap();
    assert_eq!(last["argv"][1], "destroy");
    assert_eq!(last["argv"][2], "lxc/101");
    assert_eq!(last["source"], "provider");
}

#[test]
fn import_of_an_existing_guest_then_plan_is_empty() {
    let bed = bed();
    let mut guest = Guest::new(120, "qemu", "pve");
    guest.status = "running".into();
    for (k, v) in [
        ("name", "jellyfin"),
        ("memory", "8192"),
        ("cores", "4"),
        ("sockets", "1"),
        ("onboot", "1"),
        ("startup", "order=2"),
        ("tags", "prod;media"),
        ("description", "Managed by Terraform"),
        ("scsihw", "virtio-scsi-single"),
        ("agent", "1"),
        ("ostype", "l26"),
        ("scsi0", "local-lvm:vm-120-disk-0,size=32G"),
        ("net0", "virtio=BC:24:11:2E:C5:01,bridge=vmbr0"),
        ("ipconfig0", "ip=127.0.0.1/8,gw=127.0.0.1"),
        ("sshkeys", "ssh-ed25519%20AAAA%20ops%40homelab%0A"),
        ("protection", "0"),
    ] {
        guest.set(k, v);
    }
    harness::write_guest(&bed.state, &guest).unwrap();
    bed.config(
        r#"
resource "proxmox_virtual_environment_vm" "imported" {
  node_name   = "pve"
  vm_id       = 120
  name        = "jellyfin"
  description = "Managed by Terraform"
  tags        = ["media", "prod"]

  scsi_hardware = "virtio-scsi-single"

  agent {
    enabled = true
  }

  operating_system {
    type = "l26"
  }

  cpu {
    cores = 4
  }

  memory {
    dedicated = 8192
  }

  disk {
    interface = "scsi0"
    size      = 32
  }

  network_device {}

  startup {
    order = 2
  }

  initialization {
    ip_config {
      ipv4 {
        address = "127.0.0.1/8"
        gateway = "127.0.0.1"
      }
    }
    user_account {
      keys = ["ssh-ed25519 AAAA ops@homelab"]
    }
  }
}
"#,
    );
    bed.init();
    bed.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "proxmox_virtual_environment_vm.imported",
        "pve/120",
    ]);
    let (code, plan, out) = bed.plan();
    assert_eq!(
        code, 0,
        "plan after import should be empty: {out}\n{plan:?}"
    );
    // Import reads, it does not write.
    assert!(bed.journal().is_empty());
    assert_eq!(bed.guest(120).unwrap().config, guest.config);
}

#[test]
fn state_dir_in_provider_block_is_used() {
    let bed = bed();
    let other = bed.work.join("other-state");
    harness::init_state_dir(&other).unwrap();
    // A homelab's provider block (bpg connection settings, accepted and ignored) plus state_dir.
    let hcl = format!(
        r#"{}
provider "proxmox" {{
  endpoint  = "https://pve.example.invalid:8006/"
  api_token = "terraform@pve!tf=00000000-0000-0000-0000-000000000000"
  insecure  = true
  state_dir = "{}"
  ssh {{
    agent    = true
    username = "root"
    node {{
      name    = "pve"
      address = "192.0.2.10"
    }}
  }}
}}

resource "proxmox_virtual_environment_vm" "x" {{
  vm_id = 150
}}
"#,
        harness::provider_hcl(None).replace("provider \"proxmox\" {}\n", ""),
        other.display()
    );
    fs::write(bed.work.join("main.tf"), hcl).unwrap();
    bed.init();
    bed.apply();
    assert!(harness::read_guest(&other, 150).unwrap().is_some());
    assert!(bed.guest(150).is_none());
    assert_eq!(bed.plan().0, 0);
}

#[test]
fn harness_finds_the_provider_binary_from_inside_cargo_test() {
    // Other crates' tests have no CARGO_BIN_EXE for this binary: the harness builds it with cargo,
    // which must not dead-lock on the build directory while `cargo test` runs.
    let built = harness::provider_binary().unwrap();
    assert!(built.is_file(), "{}", built.display());
    assert_eq!(
        built.file_name().unwrap(),
        harness::BINARY_NAME,
        "{}",
        built.display()
    );
}

#[test]
fn locked_or_protected_guest_refuses_changes_as_proxmox_does() {
    let bed = applied_vm();
    harness::edit_guest(&bed.state, 100, |g| g.lock = Some("backup".into())).unwrap();
    bed.config(&standard_vm(4096, 9000));
    let out = bed
        .tf
        .run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("VM 100 is locked (backup)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        bed.guest(100).unwrap().get("memory").as_deref(),
        Some("8192")
    );

    harness::edit_guest(&bed.state, 100, |g| {
        g.lock = None;
        g.set("protection", "1");
    })
    .unwrap();
    let out = bed
        .tf
        .run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("protection mode enabled"),
        "{}",
        text(&out)
    );
    assert!(bed.guest(100).is_some());
}

#[test]
fn vm_without_vm_id_gets_the_next_free_id_and_container_imports() {
    let bed = bed();
    add_template(&bed, 100);
    let mut ct = Guest::new(130, "lxc", "pve");
    ct.status = "running".into();
    for (k, v) in [
        ("hostname", "pihole"),
        ("memory", "1024"),
        ("swap", "512"),
        ("cores", "2"),
        ("rootfs", "local-lvm:subvol-130-disk-0,size=8G"),
        ("ostype", "debian"),
        ("unprivileged", "1"),
        ("onboot", "1"),
        (
            "net0",
            "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=dhcp",
        ),
    ] {
        ct.set(k, v);
    }
    harness::write_guest(&bed.state, &ct).unwrap();
    bed.config(
        r#"
resource "proxmox_virtual_environment_vm" "auto" {
  name = "auto"
}

import {
  to = proxmox_virtual_environment_container.pihole
  id = "130"
}

resource "proxmox_virtual_environment_container" "pihole" {
  node_name    = "pve"
  unprivileged = true

  cpu {
    cores = 2
  }

  memory {
    dedicated = 1024
    swap      = 512
  }

  disk {
    datastore_id = "local-lvm"
    size         = 8
  }

  operating_system {
    template_file_id = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
    type             = "debian"
  }

  initialization {
    hostname = "pihole"
  }

  network_interface {
    name = "eth0"
  }

  # Proxmox does not report the template a container came from, so an imported container has none in
  # state and the ForceNew template_file_id would replace it: the usual bpg workaround.
  lifecycle {
    ignore_changes = [operating_system[0].template_file_id]
  }
}
"#,
    );
    bed.init();
    bed.apply();
    // 100 is taken by the template, 101 is the first free id, as `pvesh get /cluster/nextid` says.
    let auto = bed.guest(101).expect("VM created with the next free id");
    assert_eq!(auto.get("name").as_deref(), Some("auto"));
    // The import did not rewrite the container.
    assert_eq!(bed.guest(130).unwrap().config, ct.config);
    let (code, _, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn plain_clone_gets_renamed_disks_and_fresh_macs_without_a_diff() {
    let bed = bed();
    add_template(&bed, 9000);
    bed.config(
        r#"
resource "proxmox_virtual_environment_vm" "plain" {
  vm_id = 105
  name  = "plain"
  clone {
    vm_id = 9000
  }
}
"#,
    );
    bed.init();
    bed.apply();
    let guest = bed.guest(105).unwrap();
    assert_eq!(
        guest.get("scsi0").as_deref(),
        Some("local-lvm:vm-105-disk-0,size=2G")
    );
    assert_eq!(
        guest.get("net0").as_deref(),
        Some("virtio=BC:24:11:00:69:00,bridge=vmbr0")
    );
    assert!(!guest.template);
    // No disk or network_device blocks in the configuration: the template's devices are no diff.
    let (code, _, out) = bed.plan();
    assert_eq!(code, 0, "{out}");
}
