//! Real drift: the test bed's fixture environments on the simulated Proxmox provider
//! (`pve-tools.test/sim/proxmox`), applied with real Terraform; guests are then changed on the simulated
//! node (`qm`/`pct` of the real `pve-sim`, or the bed's drift makers), so Terraform's refresh finds the
//! change and lists it in `resource_drift`, exactly as with bpg/proxmox and a real node. Covers origin
//! `drift`, `pending` and `both`, and the runbook's scenarios: memory changed in the UI, startup order,
//! tags, SSH key reformatting (ignored by the shipped default ignore file), golden image rotation
//! (`clone`), a guest destroyed outside Terraform.

use std::path::{Path, PathBuf};

use check_drift::plan::{Action, Origin, Risk};
use check_drift::report::{Report, Status};
use serde_json::json;
use testbed::terraform::{Backend, BackendKind, Env, Fixtures, Sim};

use crate::support::{attribute, bin, env_in, paths, report, resource_in, stderr};

/// A local-backend copy of the fixtures with `envs` applied on a fresh simulated node.
struct Applied {
    fixtures: Fixtures,
    sim: Sim,
    tmp: tempfile::TempDir,
}

fn apply(envs: &[&str]) -> Applied {
    let fixtures = Fixtures::copy(BackendKind::Local).unwrap();
    let sim = fixtures.sim().unwrap();
    for name in envs {
        let env = fixtures.env(name, Backend::Local).unwrap();
        env.init().unwrap();
        env.apply().unwrap();
    }
    Applied {
        fixtures,
        sim,
        tmp: tempfile::tempdir().unwrap(),
    }
}

impl Applied {
    fn env_dir(&self, name: &str) -> PathBuf {
        self.fixtures.environments_dir().join(name)
    }

    /// check-drift --json on `env` (with `extra` options); exit code, document, stderr.
    fn check(&self, env: &str, extra: &[&str]) -> (i32, Report, String) {
        let out = bin()
            .arg("--root")
            .arg(self.fixtures.environments_dir())
            .args(["--env", env, "--json", "--terraform-bin", "terraform"])
            .args(extra)
            .env("TF_CLI_CONFIG_FILE", self.sim.cli_config())
            .env("PVE_SIM_STATE", self.sim.state_dir())
            .env("TMPDIR", self.tmp.path())
            .env("PVE_DRIFT_LOCK_FILE", self.tmp.path().join("run.lock"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            report(&out.stdout),
            stderr(&out),
        )
    }

    /// Replaces `from` with `to` in `<env>/main.tf` (a configuration change not applied yet).
    fn edit_config(&self, env: &str, from: &str, to: &str) {
        let file = self.env_dir(env).join("main.tf");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "{from:?} not in {}", file.display());
        std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
    }
}

/// The issue's "done when": apply, `qm set 100 --memory 10240` on the node, and check-drift names the
/// resource with origin drift, the attribute path and the values before and after.
#[test]
fn memory_changed_in_the_ui_is_drift() {
    let bed = apply(&["prod"]);
    let (code, doc, err) = bed.check("prod", &[]);
    assert_eq!(code, 0, "freshly applied: {err}");

    bed.sim
        .run("qm", &["set", "100", "--memory", "10240"])
        .unwrap();
    let (code, doc2, err) = bed.check("prod", &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(doc.schema, doc2.schema);
    let prod = env_in(&doc2, "prod");
    assert_eq!(prod.status, Status::Drift);
    assert_eq!(prod.resources.len(), 1, "{prod:#?}");
    let vm = resource_in(prod, "module.jellyfin.proxmox_virtual_environment_vm.vm");
    assert_eq!(vm.resource_type, "proxmox_virtual_environment_vm");
    assert_eq!(vm.action, Action::Update);
    assert_eq!(vm.risk, Risk::Safe);
    assert_eq!(vm.origin, Origin::Drift);
    assert_eq!(paths(&vm.changed_attributes), ["memory.dedicated"]);
    let planned = attribute(&vm.changed_attributes, "memory.dedicated");
    assert_eq!(
        (&planned.before, &planned.after),
        (&json!(10240), &json!(8192))
    );
    let found = attribute(&vm.drifted_attributes, "memory.dedicated");
    assert_eq!((&found.before, &found.after), (&json!(8192), &json!(10240)));
}

/// Startup order changed in the UI, and a guest destroyed outside Terraform (a dangerous create).
#[test]
fn startup_order_and_destroyed_guest() {
    let bed = apply(&["prod"]);
    bed.sim.set_startup_order(102, 9).unwrap();
    bed.sim.destroy_guest(101).unwrap();
    let (code, doc, err) = bed.check("prod", &[]);
    assert_eq!(code, 1, "{err}");
    let prod = env_in(&doc, "prod");

    let ha = resource_in(
        prod,
        "module.home_assistant.proxmox_virtual_environment_vm.vm",
    );
    assert_eq!((ha.action, ha.origin), (Action::Update, Origin::Drift));
    let order = attribute(&ha.changed_attributes, "startup.order");
    assert_eq!((&order.before, &order.after), (&json!(9), &json!(1)));

    let nextcloud = resource_in(prod, "module.nextcloud.proxmox_virtual_environment_vm.vm");
    assert_eq!(nextcloud.action, Action::Create);
    assert_eq!(nextcloud.origin, Origin::Drift);
    assert_eq!(nextcloud.risk, Risk::Dangerous);
    assert_eq!(
        nextcloud.risk_reason.as_deref(),
        Some("destroyed outside Terraform")
    );
}

/// Tags edited in the UI are drift; a configuration change not applied yet is pending; a guest with
/// both is `both`.
#[test]
fn tags_pending_and_both() {
    let bed = apply(&["lab"]);
    bed.sim.set_tags(202, &["lab", "manual"]).unwrap();
    bed.edit_config("lab", "memory   = 512", "memory   = 768");
    bed.sim
        .run("pct", &["set", "200", "--memory", "4096"])
        .unwrap();
    bed.edit_config("lab", "cores       = 2", "cores       = 4");
    let (code, doc, err) = bed.check("lab", &[]);
    assert_eq!(code, 1, "{err}");
    let lab = env_in(&doc, "lab");

    let sandbox = resource_in(
        lab,
        "module.sandbox.proxmox_virtual_environment_container.container",
    );
    assert_eq!(sandbox.origin, Origin::Drift);
    let tags = attribute(&sandbox.changed_attributes, "tags");
    assert_eq!(
        (&tags.before, &tags.after),
        (&json!(["lab", "manual"]), &json!(["lab"]))
    );

    let pihole = resource_in(
        lab,
        "module.pihole.proxmox_virtual_environment_container.container",
    );
    assert_eq!(pihole.origin, Origin::Pending);
    assert!(pihole.drifted_attributes.is_empty(), "{pihole:#?}");
    let memory = attribute(&pihole.changed_attributes, "memory.dedicated");
    assert_eq!((&memory.before, &memory.after), (&json!(512), &json!(768)));

    let runner = resource_in(
        lab,
        "module.ci_runner.proxmox_virtual_environment_container.container",
    );
    assert_eq!(runner.origin, Origin::Both);
    assert_eq!(
        paths(&runner.changed_attributes),
        ["cpu.cores", "memory.dedicated"]
    );
    assert_eq!(paths(&runner.drifted_attributes), ["memory.dedicated"]);
}

/// A configuration of its own beside the fixtures: root-level VMs, as the default ignore file's
/// address globs (`proxmox_virtual_environment_vm.*`) are written.
const GOLDEN_TF: &str = r#"terraform {
  required_providers {
    proxmox = {
      source = "pve-tools.test/sim/proxmox"
    }
  }
}

provider "proxmox" {}

# Cloned from the golden image; rotating the image changes clone.vm_id (ForceNew).
resource "proxmox_virtual_environment_vm" "web" {
  node_name = "pve"
  vm_id     = 300
  name      = "web"

  clone {
    vm_id = 9000
  }

  memory {
    dedicated = 1024
  }
}

# The key comes from file("ops.pub") with its trailing newline, which Proxmox drops on read.
resource "proxmox_virtual_environment_vm" "bastion" {
  node_name = "pve"
  vm_id     = 301
  name      = "bastion"

  initialization {
    user_account {
      keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDr0rQx1n8mP4wFjS9b7vXcT3eKzYh2uLqN6oG5sWdE4 ops@homelab\n"]
    }
  }
}
"#;

fn default_ignore_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/driftignore.default")
}

/// SSH key reformatting (a false positive, ignored by the shipped default ignore file) and golden image
/// rotation (`clone`, a replacement; also in the default ignore file).
#[test]
fn ssh_key_reformatting_and_golden_image_rotation() {
    let bed = apply(&[]);
    let state = bed.sim.state().unwrap();
    for vmid in [9000, 9001] {
        let mut template = testbed::sim::Guest::new(
            vmid,
            testbed::sim::GuestType::Qemu,
            "pve",
            &[("name", "debian-12-golden"), ("memory", "2048")],
        );
        template.template = true;
        state.add_guest(&template).unwrap();
    }
    let dir = bed.env_dir("golden");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.tf"), GOLDEN_TF).unwrap();
    let env = Env::new(&dir, Backend::Local, &bed.tmp.path().join("golden-data"))
        .unwrap()
        .with_sim(bed.sim.clone());
    env.init().unwrap();
    env.apply().unwrap();

    // The key: Proxmox's read drops the trailing newline, and bpg marks keys ForceNew.
    let (code, doc, err) = bed.check("golden", &[]);
    assert_eq!(code, 1, "{err}");
    let golden = env_in(&doc, "golden");
    let bastion = resource_in(golden, "proxmox_virtual_environment_vm.bastion");
    assert_eq!(bastion.action, Action::Replace);
    assert_eq!(bastion.origin, Origin::Drift);
    let keys = attribute(
        &bastion.changed_attributes,
        "initialization.user_account.keys",
    );
    assert!(keys.forces_replacement);
    assert!(!bastion.ignored);

    // Rotate the golden image: 9000 -> 9001 in the configuration.
    let text = std::fs::read_to_string(dir.join("main.tf")).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        text.replace("vm_id = 9000", "vm_id = 9001"),
    )
    .unwrap();
    let (code, doc, err) = bed.check("golden", &[]);
    assert_eq!(code, 1, "{err}");
    let golden = env_in(&doc, "golden");
    let web = resource_in(golden, "proxmox_virtual_environment_vm.web");
    assert_eq!((web.action, web.origin), (Action::Replace, Origin::Pending));
    assert_eq!(web.risk, Risk::Dangerous);
    let clone = attribute(&web.changed_attributes, "clone.vm_id");
    assert_eq!((&clone.before, &clone.after), (&json!(9000), &json!(9001)));
    assert!(clone.forces_replacement);

    // With the shipped default ignore file both are known noise: reported, ignored, exit 0.
    let ignore = default_ignore_file();
    let (code, doc, err) = bed.check("golden", &["--ignore-file", ignore.to_str().unwrap()]);
    let golden = env_in(&doc, "golden");
    for address in [
        "proxmox_virtual_environment_vm.bastion",
        "proxmox_virtual_environment_vm.web",
    ] {
        let r = resource_in(golden, address);
        assert!(r.ignored, "{address}: {r:#?}");
    }
    assert_eq!(code, 0, "{err}");
}
