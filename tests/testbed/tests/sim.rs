//! Integration tests of the Proxmox simulator: the real `pve-sim` binary, called through symlinks
//! named `pvesh`, `qm`, `pct`, `qmrestore` and `vzdump`, against a fresh state directory per test.
//! Expected messages and JSON shapes are Proxmox's (qemu-server, pve-container, pve-manager).
#![allow(clippy::disallowed_methods)] // tests spawn the binary under test directly
#![allow(clippy::unwrap_used)]
// helpers outside #[test] fns panic on fixture errors, as tests do
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::sim::fixtures::{self, ArchiveSpec, BackupOptions};
use testbed::sim::{
    self, BackupEntry, CutFault, DelayFault, FailFault, Faults, FillFault, Guest, GuestType, State,
    StorageDef, lxc_tar, vma,
};

const GIB: u64 = 1 << 30;
/// 2026-11-20 02:00:01 UTC.
const CTIME: i64 = 1_795_140_001;

struct Bed {
    _tmp: tempfile::TempDir,
    bin: PathBuf,
    state: State,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.stdout))
    }
}

fn vm100() -> Guest {
    let mut g = Guest::new(
        100,
        GuestType::Qemu,
        "pve",
        &[
            ("name", "jellyfin"),
            ("memory", "8192"),
            ("cores", "4"),
            ("sockets", "1"),
            ("onboot", "1"),
            ("tags", "media;prod"),
            ("description", "Managed by Terraform"),
            ("scsihw", "virtio-scsi-single"),
            ("scsi0", "local-lvm:vm-100-disk-0,iothread=1,size=32G"),
            ("net0", "virtio=BC:24:11:2E:C5:01,bridge=vmbr0"),
            ("protection", "0"),
        ],
    );
    g.status = "running".into();
    g
}

fn ct101() -> Guest {
    let mut g = Guest::new(
        101,
        GuestType::Lxc,
        "pve",
        &[
            ("hostname", "pihole"),
            ("memory", "1024"),
            ("swap", "512"),
            ("cores", "2"),
            ("rootfs", "local-lvm:vm-101-disk-0,size=8G"),
            ("ostype", "debian"),
            ("unprivileged", "1"),
            (
                "net0",
                "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:01,ip=dhcp",
            ),
        ],
    );
    g.status = "running".into();
    g
}

impl Bed {
    fn new() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for name in sim::COMMANDS {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pve-sim"), bin.join(name)).unwrap();
        }
        let state = State::create(&tmp.path().join("state"), "pve").unwrap();
        state
            .add_storage(StorageDef::new(
                "local",
                "dir",
                "iso,vztmpl,backup",
                100 * GIB,
            ))
            .unwrap();
        state
            .add_storage(StorageDef::new(
                "local-lvm",
                "lvmthin",
                "images,rootdir",
                500 * GIB,
            ))
            .unwrap();
        state
            .add_storage(StorageDef::new("pbs", "pbs", "backup", 1000 * GIB))
            .unwrap();
        state.add_guest(&vm100()).unwrap();
        state.add_guest(&ct101()).unwrap();
        Bed {
            _tmp: tmp,
            bin,
            state,
        }
    }

    fn cmd(&self, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.args(args).env("PVE_SIM_STATE", self.state.dir());
        c
    }

    fn run(&self, name: &str, args: &[&str]) -> Out {
        let o = self.cmd(name, args).output().unwrap();
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn ok(&self, name: &str, args: &[&str]) -> Out {
        let o = self.run(name, args);
        assert_eq!(
            o.code,
            Some(0),
            "{name} {args:?} failed: {}{}",
            o.stdout,
            o.stderr
        );
        o
    }

    fn fails(&self, name: &str, args: &[&str], message: &str) -> Out {
        let o = self.run(name, args);
        assert_eq!(
            o.code,
            Some(255),
            "{name} {args:?} should fail: {}{}",
            o.stdout,
            o.stderr
        );
        assert!(
            o.stderr.contains(message),
            "stderr of {name} {args:?}: {:?}, wanted {message:?}",
            o.stderr
        );
        o
    }

    fn pvesh(&self, path: &str, extra: &[&str]) -> Value {
        let mut args = vec!["get", path, "--output-format", "json"];
        args.extend_from_slice(extra);
        self.ok("pvesh", &args).json()
    }

    fn guest(&self, vmid: u32) -> Guest {
        self.state.guest(vmid).unwrap().expect("guest exists")
    }

    fn used_extra(&self, storage: &str) -> u64 {
        self.state.storage(storage).unwrap().unwrap().used_extra
    }

    fn backup(&self, g: &Guest, storage: &str) -> BackupEntry {
        let spec = ArchiveSpec {
            size: 200_000,
            ctime: CTIME,
            seed: 1,
        };
        fixtures::add_backup(&self.state, storage, g, &spec, &BackupOptions::default()).unwrap()
    }

    fn journal_argv(&self) -> Vec<String> {
        self.state
            .journal()
            .unwrap()
            .iter()
            .map(|e| e.argv.join(" "))
            .collect()
    }
}

#[test]
fn pvesh_version_nodes_and_errors() {
    let bed = Bed::new();
    let v = bed.pvesh("/version", &[]);
    assert_eq!(v["version"], "8.3.2");
    assert_eq!(v["release"], "8.3");
    assert_eq!(v["repoid"], "3e76eec21c4a14a7");
    let nodes = bed.pvesh("/nodes", &[]);
    assert_eq!(nodes[0]["node"], "pve");
    assert_eq!(nodes[0]["status"], "online");
    assert_eq!(nodes[0]["maxcpu"], 8);
    let pretty = bed.ok(
        "pvesh",
        &["get", "/version", "--output-format", "json-pretty"],
    );
    assert_eq!(
        pretty.stdout,
        "{\n   \"release\" : \"8.3\",\n   \"repoid\" : \"3e76eec21c4a14a7\",\n   \"version\" : \"8.3.2\"\n}\n"
    );
    let text = bed.ok("pvesh", &["get", "/cluster/nextid"]);
    assert_eq!(text.stdout.trim(), "102");

    bed.fails(
        "pvesh",
        &["get", "/nodes/pve/qemu/999/config"],
        "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist",
    );
    bed.fails(
        "pvesh",
        &["get", "/nodes/pve/lxc/100/status/current"],
        "Configuration file 'nodes/pve/lxc/100.conf' does not exist",
    );
    let o = bed.run("pvesh", &["get", "nodes/pve/bogus"]);
    assert_eq!(o.code, Some(1));
    assert_eq!(o.stderr, "No 'get' handler defined for 'nodes/pve/bogus'\n");
    bed.fails(
        "pvesh",
        &["get", "/nodes/pve2/storage"],
        "hostname lookup 'pve2' failed",
    );
    bed.fails(
        "pvesh",
        &["get", "/nodes/pve/storage/nope/status"],
        "storage 'nope' does not exist",
    );
    let o = Command::new(bed.bin.join("qm"))
        .arg("list")
        .env_remove("PVE_SIM_STATE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PVE_SIM_STATE is not set"));
}

#[test]
fn pvesh_storage_list_status_and_filters() {
    let bed = Bed::new();
    let list = bed.pvesh("/nodes/pve/storage", &[]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["storage"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["local", "local-lvm", "pbs"]);
    let backup_only = bed.pvesh(
        "/nodes/pve/storage",
        &["--content", "backup", "--enabled", "1"],
    );
    assert_eq!(backup_only.as_array().unwrap().len(), 2);

    let st = bed.pvesh("/nodes/pve/storage/local-lvm/status", &[]);
    for key in [
        "type", "content", "enabled", "active", "shared", "total", "used", "avail",
    ] {
        assert!(st.get(key).is_some(), "status lacks {key}: {st}");
    }
    assert_eq!(st["type"], "lvmthin");
    assert_eq!(st["total"], 500 * GIB);
    // Disks of 100 (32G) and 101 (8G) live there.
    assert_eq!(st["used"], 40 * GIB);
    assert_eq!(st["avail"], 460 * GIB);
    assert_eq!(st["active"], 1);
    assert_eq!(st["shared"], 0);
}

#[test]
fn pvesh_backup_content_lists_files_and_pbs() {
    let bed = Bed::new();
    let spec = ArchiveSpec {
        size: 100_000,
        ctime: CTIME,
        seed: 3,
    };
    let opts = BackupOptions {
        notes: Some("jellyfin nightly".into()),
        protected: true,
    };
    let vm = fixtures::add_backup(&bed.state, "local", &vm100(), &spec, &opts).unwrap();
    fixtures::add_backup(
        &bed.state,
        "local",
        &ct101(),
        &spec,
        &BackupOptions::default(),
    )
    .unwrap();
    bed.state
        .add_pbs_entry(
            "pbs",
            serde_json::from_value(serde_json::json!({
                "volid": "pbs:backup/vm/100/2026-11-20T02:00:00Z", "vmid": 100, "subtype": "qemu",
                "ctime": 1_795_140_000, "size": 123, "format": "pbs-vm", "protected": false,
                "verification": {"state": "ok", "upid": "UPID:pbs:000:000:000:000:verify:x:root@pam:"}
            }))
            .unwrap(),
        )
        .unwrap();

    let list = bed.pvesh("/nodes/pve/storage/local/content", &["--content", "backup"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let e = &list[0];
    assert_eq!(
        e["volid"],
        "local:backup/vzdump-lxc-101-2026_11_20-02_00_01.tar.zst"
    );
    assert_eq!(e["format"], "tar.zst");
    assert_eq!(e["subtype"], "lxc");
    let e = &list[1];
    assert_eq!(
        e["volid"],
        "local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst"
    );
    assert_eq!(e["content"], "backup");
    assert_eq!(e["format"], "vma.zst");
    assert_eq!(e["subtype"], "qemu");
    assert_eq!(e["vmid"], 100);
    assert_eq!(e["ctime"], CTIME);
    assert_eq!(
        e["size"],
        std::fs::metadata(vm.path.unwrap()).unwrap().len()
    );
    assert_eq!(e["notes"], "jellyfin nightly");
    assert_eq!(e["protected"], 1);

    let only101 = bed.pvesh(
        "/nodes/pve/storage/local/content",
        &["--content", "backup", "--vmid", "101"],
    );
    assert_eq!(only101.as_array().unwrap().len(), 1);

    let pbs = bed.pvesh("/nodes/pve/storage/pbs/content", &["--content", "backup"]);
    assert_eq!(pbs[0]["format"], "pbs-vm");
    assert_eq!(pbs[0]["verification"]["state"], "ok");
    assert!(pbs[0].get("protected").is_none());
}

#[test]
fn pvesh_guests_resources_status_and_config() {
    let bed = Bed::new();
    bed.state.set_guest_lock(101, Some("backup")).unwrap();
    let res = bed.pvesh("/cluster/resources", &["--type", "vm"]);
    let res = res.as_array().unwrap();
    assert_eq!(res.len(), 2);
    let vm = &res[0];
    assert_eq!(vm["id"], "qemu/100");
    assert_eq!(vm["vmid"], 100);
    assert_eq!(vm["node"], "pve");
    assert_eq!(vm["type"], "qemu");
    assert_eq!(vm["status"], "running");
    assert_eq!(vm["name"], "jellyfin");
    assert_eq!(vm["template"], 0);
    assert_eq!(vm["maxmem"], 8192u64 << 20);
    assert_eq!(vm["maxdisk"], 32 * GIB);
    assert_eq!(vm["tags"], "media;prod");
    assert!(vm.get("lock").is_none());
    for key in ["mem", "cpu", "uptime", "maxcpu"] {
        assert!(vm.get(key).is_some(), "resource lacks {key}");
    }
    assert_eq!(res[1]["id"], "lxc/101");
    assert_eq!(res[1]["lock"], "backup");

    let st = bed.pvesh("/nodes/pve/qemu/100/status/current", &[]);
    assert_eq!(st["status"], "running");
    assert_eq!(st["qmpstatus"], "running");
    assert_eq!(st["name"], "jellyfin");
    let st = bed.pvesh("/nodes/pve/lxc/101/status/current", &[]);
    assert_eq!(st["type"], "lxc");
    assert_eq!(st["lock"], "backup");

    let cfg = bed.pvesh("/nodes/pve/qemu/100/config", &[]);
    assert_eq!(cfg["memory"], 8192);
    assert_eq!(cfg["cores"], 4);
    assert_eq!(cfg["onboot"], 1);
    assert_eq!(cfg["scsi0"], "local-lvm:vm-100-disk-0,iothread=1,size=32G");
    assert_eq!(cfg["digest"].as_str().unwrap().len(), 40);
    let cfg = bed.pvesh("/nodes/pve/lxc/101/config", &[]);
    assert_eq!(cfg["hostname"], "pihole");
    assert_eq!(cfg["unprivileged"], 1);
    assert_eq!(cfg["lock"], "backup");
}

#[test]
fn qm_and_pct_commands() {
    let bed = Bed::new();
    assert_eq!(bed.ok("qm", &["status", "100"]).stdout, "status: running\n");
    assert_eq!(
        bed.ok("pct", &["status", "101"]).stdout,
        "status: running\n"
    );
    let cfg = bed.ok("qm", &["config", "100"]).stdout;
    assert!(cfg.contains("\nmemory: 8192\n"), "{cfg}");
    assert!(cfg.contains("description: Managed by Terraform\n"));
    let list = bed.ok("qm", &["list"]).stdout;
    let mut lines = list.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID"]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..5], ["100", "jellyfin", "running", "8192", "32.00"]);
    let plist = bed.ok("pct", &["list"]).stdout;
    assert!(
        plist
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("101        running")
    );

    bed.fails(
        "qm",
        &["status", "999"],
        "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist",
    );
    bed.fails("qm", &["start", "100"], "VM 100 already running");
    bed.fails(
        "qm",
        &["destroy", "100"],
        "VM 100 is running - destroy failed",
    );
    bed.ok("qm", &["shutdown", "100", "--timeout", "60"]);
    assert_eq!(bed.guest(100).status, "stopped");
    bed.ok(
        "qm",
        &["set", "100", "--memory", "4096", "--delete", "tags"],
    );
    let g = bed.guest(100);
    assert_eq!(g.config["memory"], "4096");
    assert!(!g.config.contains_key("tags"));
    bed.ok("qm", &["set", "100", "--protection", "1"]);
    bed.fails(
        "qm",
        &["destroy", "100"],
        "can't remove VM 100 - protection mode enabled",
    );
    bed.ok("qm", &["set", "100", "--protection", "0"]);
    bed.state.set_guest_lock(100, Some("snapshot")).unwrap();
    bed.fails(
        "qm",
        &["set", "100", "--cores", "2"],
        "VM is locked (snapshot)",
    );
    bed.fails("qm", &["start", "100"], "VM is locked (snapshot)");
    bed.ok("qm", &["unlock", "100"]);
    assert!(bed.guest(100).lock.is_none());
    let before = bed.used_extra("local-lvm");
    bed.ok("qm", &["destroy", "100", "--purge"]);
    assert!(bed.state.guest(100).unwrap().is_none());
    assert_eq!(bed.used_extra("local-lvm"), before - 32 * GIB);

    bed.ok(
        "qm",
        &[
            "create",
            "300",
            "--name",
            "new",
            "--memory",
            "2048",
            "--scsi0",
            "local-lvm:16",
            "--net0",
            "virtio,bridge=vmbr0",
        ],
    );
    let g = bed.guest(300);
    assert_eq!(g.config["scsi0"], "local-lvm:vm-300-disk-0,size=16G");
    assert!(g.config["net0"].starts_with("virtio=BC:24:11:"));
    bed.fails(
        "qm",
        &["create", "101"],
        "unable to create VM 101 - CT 101 already exists on node 'pve'",
    );

    bed.fails(
        "pct",
        &["destroy", "101"],
        "unable to destroy CT 101 - container is running",
    );
    bed.ok("pct", &["stop", "101"]);
    bed.ok("pct", &["start", "101"]);
    bed.ok("pct", &["set", "101", "--memory", "2048"]);
    assert_eq!(bed.guest(101).config["memory"], "2048");
}

#[test]
fn backup_jobs_agent_ping_and_pct_exec() {
    let bed = Bed::new();
    assert_eq!(bed.pvesh("/cluster/backup", &[]), serde_json::json!([]));
    let job = serde_json::json!({"id": "backup-1", "type": "vzdump", "schedule": "21:00", "storage": "local",
        "mode": "snapshot", "enabled": 1, "all": 1, "exclude": "101", "next-run": 1_763_672_400});
    bed.state
        .set_backup_jobs(std::slice::from_ref(&job))
        .unwrap();
    assert_eq!(bed.pvesh("/cluster/backup", &[]), serde_json::json!([job]));

    // qemu-server's checks, in its order: agent configured, VM running, agent answering.
    bed.fails(
        "qm",
        &["guest", "cmd", "100", "ping"],
        "No QEMU guest agent configured",
    );
    let mut g = bed.guest(100);
    g.config
        .insert("agent".into(), "enabled=1,fstrim_cloned_disks=1".into());
    bed.state.save_guest(&g).unwrap();
    assert_eq!(bed.ok("qm", &["guest", "cmd", "100", "ping"]).stdout, "");
    assert_eq!(bed.ok("qm", &["agent", "100", "ping"]).stdout, "");
    g.extra.insert("agent_running".into(), Value::Bool(false));
    bed.state.save_guest(&g).unwrap();
    bed.fails(
        "qm",
        &["guest", "cmd", "100", "ping"],
        "QEMU guest agent is not running",
    );
    g.status = "stopped".into();
    bed.state.save_guest(&g).unwrap();
    bed.fails(
        "qm",
        &["guest", "cmd", "100", "ping"],
        "VM 100 is not running",
    );
    bed.fails(
        "qm",
        &["guest", "cmd", "999", "ping"],
        "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist",
    );

    bed.ok("pct", &["exec", "101", "--", "true"]);
    bed.fails(
        "pct",
        &["exec", "101", "--", "rm", "-rf", "/"],
        "not simulated",
    );
    let mut c = bed.guest(101);
    c.status = "stopped".into();
    bed.state.save_guest(&c).unwrap();
    bed.fails(
        "pct",
        &["exec", "101", "--", "true"],
        "container '101' not running!",
    );
    // Read-only: nothing journaled.
    assert!(bed.journal_argv().is_empty(), "{:?}", bed.journal_argv());
}

fn restore_fixture(bed: &Bed) -> BackupEntry {
    // The backup holds scsi0 only; afterwards VM 100 grows a disk and snapshots.
    let b = bed.backup(&vm100(), "local");
    let mut g = bed.guest(100);
    g.config
        .insert("scsi1".into(), "local-lvm:vm-100-disk-1,size=10G".into());
    g.snapshots = vec!["pre-upgrade".into()];
    g.status = "stopped".into();
    bed.state.save_guest(&g).unwrap();
    bed.state
        .adjust_used_extra("local-lvm", 10 * GIB as i128)
        .unwrap();
    b
}

#[test]
fn qmrestore_to_a_free_vmid() {
    let bed = Bed::new();
    let b = restore_fixture(&bed);
    let before = bed.used_extra("local-lvm");
    let o = bed.ok("qmrestore", &[&b.volid, "200", "--storage", "local-lvm"]);
    assert!(
        o.stdout.starts_with("restore vma archive: zstd -q -d -c "),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("CFG: size: "));
    assert!(
        o.stdout
            .contains("DEV: dev_id=1 size: 34359738368 devname: drive-scsi0")
    );
    assert!(o.stdout.contains("CTIME: Fri Nov 20 02:00:01 2026"));
    assert!(
        o.stdout
            .contains("new volume ID is 'local-lvm:vm-200-disk-0'")
    );
    assert!(o.stdout.ends_with("rescan volumes...\n"));
    let g = bed.guest(200);
    assert_eq!(g.kind, GuestType::Qemu);
    assert_eq!(g.status, "stopped");
    assert_eq!(g.config["name"], "jellyfin");
    assert_eq!(
        g.config["scsi0"],
        "local-lvm:vm-200-disk-0,iothread=1,size=32G"
    );
    assert_eq!(g.config["net0"], "virtio=BC:24:11:2E:C5:01,bridge=vmbr0");
    assert_eq!(g.config["description"], "Managed by Terraform");
    assert!(g.lock.is_none());
    assert_eq!(bed.used_extra("local-lvm"), before + 32 * GIB);

    // By path, --unique and --start.
    let path = b.path.unwrap();
    bed.ok(
        "qmrestore",
        &[
            path.to_str().unwrap(),
            "201",
            "--unique",
            "1",
            "--start",
            "1",
        ],
    );
    let g = bed.guest(201);
    assert_eq!(g.status, "running");
    assert!(g.config["net0"].starts_with("virtio=BC:24:11:"));
    assert_ne!(g.config["net0"], "virtio=BC:24:11:2E:C5:01,bridge=vmbr0");
}

#[test]
fn qmrestore_refuses_existing_locked_protected_running() {
    let bed = Bed::new();
    let b = restore_fixture(&bed);
    let before = bed.guest(100);
    bed.fails(
        "qmrestore",
        &[&b.volid, "100"],
        "unable to restore VM 100 - VM 100 already exists on node 'pve'",
    );
    bed.fails(
        "qmrestore",
        &[&b.volid, "101", "--force", "1"],
        "unable to restore VM 101 - CT 101 already exists on node 'pve'",
    );
    bed.state.set_guest_lock(100, Some("backup")).unwrap();
    bed.fails(
        "qmrestore",
        &[&b.volid, "100", "--force", "1"],
        "unable to restore VM 100 - VM is locked (backup)",
    );
    bed.state.set_guest_lock(100, None).unwrap();
    bed.ok("qm", &["set", "100", "--protection", "1"]);
    bed.fails(
        "qmrestore",
        &[&b.volid, "100", "--force", "1"],
        "unable to restore VM 100 - - protection mode enabled",
    );
    bed.ok("qm", &["set", "100", "--protection", "0"]);
    bed.ok("qm", &["start", "100"]);
    bed.fails(
        "qmrestore",
        &[&b.volid, "100", "--force"],
        "unable to restore VM 100 - vm is running",
    );
    let mut after = bed.guest(100);
    after.status = before.status.clone();
    after.config.insert("protection".into(), "0".into());
    assert_eq!(after, before);
    bed.fails(
        "qmrestore",
        &[
            "local:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst",
            "300",
        ],
        "does not exist",
    );
}

#[test]
fn qmrestore_force_replaces_disks_and_snapshots() {
    let bed = Bed::new();
    let b = restore_fixture(&bed);
    let before = bed.used_extra("local-lvm");
    let o = bed.ok("qmrestore", &[&b.volid, "100", "--force", "1"]);
    assert!(
        o.stdout
            .contains("  Logical volume \"vm-100-disk-1\" successfully removed.")
    );
    let g = bed.guest(100);
    assert!(g.snapshots.is_empty());
    assert!(!g.config.contains_key("scsi1"));
    assert_eq!(
        g.config["scsi0"],
        "local-lvm:vm-100-disk-0,iothread=1,size=32G"
    );
    assert_eq!(bed.used_extra("local-lvm"), before - 10 * GIB);
}

#[test]
fn qmrestore_corrupt_archive_fails_without_changes() {
    let bed = Bed::new();
    let b = bed.backup(&vm100(), "local");
    let path = b.path.clone().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let o = bed.fails("qmrestore", &[&b.volid, "200"], "failed: exit code 133");
    assert!(o.stderr.contains("restore failed"));
    assert!(bed.state.guest(200).unwrap().is_none());
}

#[test]
fn pct_restore_semantics() {
    let bed = Bed::new();
    let b = bed.backup(&ct101(), "local");
    // Reversed arguments; the default storage 'local' cannot hold containers here.
    bed.fails(
        "pct",
        &["restore", "202", &b.volid],
        "storage 'local' does not support container directories",
    );
    let o = bed.ok(
        "pct",
        &["restore", "202", &b.volid, "--storage", "local-lvm"],
    );
    assert!(o.stdout.starts_with(&format!(
        "recovering backed-up configuration from '{}'",
        b.volid
    )));
    assert!(
        o.stdout
            .contains("merging backed-up and given configuration..")
    );
    let g = bed.guest(202);
    assert_eq!(g.kind, GuestType::Lxc);
    assert_eq!(g.config["hostname"], "pihole");
    assert_eq!(g.config["rootfs"], "local-lvm:vm-202-disk-0,size=8G");
    assert_eq!(
        g.config["net0"],
        "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:01,ip=dhcp"
    );

    bed.fails(
        "pct",
        &["restore", "101", &b.volid, "--storage", "local-lvm"],
        "CT 101 already exists on node 'pve'",
    );
    bed.fails(
        "pct",
        &[
            "restore",
            "100",
            &b.volid,
            "--storage",
            "local-lvm",
            "--force",
        ],
        "VM 100 already exists on node 'pve'",
    );
    bed.fails(
        "pct",
        &[
            "restore",
            "101",
            &b.volid,
            "--storage",
            "local-lvm",
            "--force",
            "1",
        ],
        "can't overwrite running container",
    );
    bed.ok("pct", &["stop", "101"]);
    bed.ok("pct", &["set", "101", "--protection", "1"]);
    bed.fails(
        "pct",
        &[
            "restore",
            "101",
            &b.volid,
            "--storage",
            "local-lvm",
            "--force",
            "1",
        ],
        "unable to restore CT 101 - protection mode enabled",
    );
    bed.ok("pct", &["set", "101", "--protection", "0"]);
    let mut g = bed.guest(101);
    g.snapshots = vec!["snap1".into()];
    bed.state.save_guest(&g).unwrap();
    let path = b.path.unwrap();
    bed.ok(
        "pct",
        &[
            "restore",
            "101",
            path.to_str().unwrap(),
            "--storage",
            "local-lvm",
            "--force",
            "1",
            "--unique",
            "1",
            "--start",
            "1",
        ],
    );
    let g = bed.guest(101);
    assert!(g.snapshots.is_empty());
    assert_eq!(g.status, "running");
    assert!(!g.config["net0"].contains("BC:24:11:AA:BB:01"));
    // --rootfs overrides size and storage.
    bed.ok(
        "pct",
        &["restore", "203", &b.volid, "--rootfs", "local-lvm:4"],
    );
    assert_eq!(
        bed.guest(203).config["rootfs"],
        "local-lvm:vm-203-disk-0,size=4G"
    );
}

#[test]
fn vzdump_writes_valid_archives_and_logs() {
    let bed = Bed::new();
    let o = bed.ok(
        "vzdump",
        &[
            "100",
            "--storage",
            "local",
            "--mode",
            "snapshot",
            "--compress",
            "zstd",
            "--notes-template",
            "{{guestname}} on {{node}}",
            "--protected",
            "1",
        ],
    );
    assert!(
        o.stdout
            .starts_with("INFO: starting new backup job: vzdump 100 --storage local"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("INFO: Finished Backup of VM 100 (00:00:0")
    );
    assert!(
        o.stdout
            .ends_with("INFO: Backup job finished successfully\n")
    );
    assert!(o.stdout.contains("INFO: archive file size: "));
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    assert!(bed.guest(100).lock.is_none());
    let list = bed.pvesh(
        "/nodes/pve/storage/local/content",
        &["--content", "backup", "--vmid", "100"],
    );
    let e = &list[0];
    assert_eq!(e["notes"], "jellyfin on pve");
    assert_eq!(e["protected"], 1);
    let volid = e["volid"].as_str().unwrap();
    let name = volid.strip_prefix("local:backup/").unwrap();
    assert!(
        name.starts_with("vzdump-qemu-100-") && name.ends_with(".vma.zst"),
        "{name}"
    );
    let dump = bed
        .state
        .dump_dir(&bed.state.storage("local").unwrap().unwrap());
    let path = dump.join(name);
    let info = vma::verify_file(&path).unwrap();
    assert!(
        info.header
            .config("qemu-server.conf")
            .unwrap()
            .contains("name: jellyfin\n")
    );
    assert_eq!(info.header.devices[0].name, "drive-scsi0");
    assert_eq!(info.header.devices[0].size, 32 * GIB);
    assert!(
        Command::new("zstd")
            .arg("-tq")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let log = std::fs::read_to_string(dump.join(name.replace(".vma.zst", ".log"))).unwrap();
    assert!(
        log.trim_end().ends_with(")")
            && log
                .lines()
                .last()
                .unwrap()
                .contains("INFO: Finished Backup of VM 100 ("),
        "{log}"
    );

    let o = bed.ok(
        "vzdump",
        &[
            "101",
            "--storage",
            "local",
            "--mode",
            "stop",
            "--compress",
            "zstd",
        ],
    );
    assert!(o.stdout.contains("INFO: stopping virtual guest\n"));
    assert!(
        o.stdout
            .contains("INFO: including mount point rootfs ('/') in backup\n")
    );
    assert!(o.stdout.contains("INFO: restarting vm\n"));
    let list = bed.pvesh(
        "/nodes/pve/storage/local/content",
        &["--content", "backup", "--vmid", "101"],
    );
    let name = list[0]["volid"]
        .as_str()
        .unwrap()
        .strip_prefix("local:backup/")
        .unwrap()
        .to_string();
    assert!(name.ends_with(".tar.zst"));
    let path = dump.join(&name);
    assert!(
        Command::new("zstd")
            .arg("-tq")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let tar = Command::new("tar")
        .arg("--zstd")
        .arg("-tf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(tar.status.success());
    let members = String::from_utf8_lossy(&tar.stdout);
    // vzdump's order: the config first, then the root file system from "./".
    let first: Vec<&str> = members.lines().take(3).collect();
    assert_eq!(
        first,
        ["./etc/vzdump/pct.conf", "./", "./etc/"],
        "{members}"
    );
    assert!(
        lxc_tar::verify_file(&path)
            .unwrap()
            .pct_conf
            .contains("hostname: pihole\n")
    );
}

#[test]
fn vzdump_refuses_locked_guest_and_full_storage() {
    let bed = Bed::new();
    bed.state.set_guest_lock(100, Some("snapshot")).unwrap();
    let o = bed.fails(
        "vzdump",
        &["100", "--storage", "local", "--compress", "zstd"],
        "job errors",
    );
    assert!(
        o.stdout
            .contains("ERROR: Backup of VM 100 failed - VM is locked (snapshot)\n")
    );
    assert!(
        o.stdout
            .ends_with("INFO: Backup job finished with errors\n")
    );
    assert_eq!(o.stderr, "job errors\n");
    bed.state.set_guest_lock(100, None).unwrap();
    // The failed run leaves its log, ending in the error, and no archive.
    let dump = bed
        .state
        .dump_dir(&bed.state.storage("local").unwrap().unwrap());
    let logs: Vec<String> = std::fs::read_dir(&dump)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].starts_with("vzdump-qemu-100-") && logs[0].ends_with(".log"));
    let text = std::fs::read_to_string(dump.join(&logs[0])).unwrap();
    assert!(
        text.trim_end()
            .ends_with("ERROR: Backup of VM 100 failed - VM is locked (snapshot)"),
        "{text}"
    );

    bed.state.fill_storage("local", Some(1000)).unwrap();
    assert_eq!(
        bed.state.faults().unwrap().fill,
        [FillFault {
            storage: "local".into(),
            avail: 1000
        }]
    );
    let st = bed.pvesh("/nodes/pve/storage/local/status", &[]);
    assert_eq!(st["avail"], 1000);
    let o = bed.fails(
        "vzdump",
        &["100", "--storage", "local", "--compress", "zstd"],
        "job errors",
    );
    assert!(o.stdout.contains("No space left on device"));
    assert!(
        bed.pvesh("/nodes/pve/storage/local/content", &["--content", "backup"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(bed.guest(100).lock.is_none());
    bed.fails(
        "vzdump",
        &["100", "--storage", "nope"],
        "storage 'nope' does not exist",
    );
}

#[test]
fn vzdump_lock_is_visible_during_the_dump() {
    let bed = Bed::new();
    let mut g = bed.guest(100);
    g.backup_size = Some(16 << 20);
    bed.state.save_guest(&g).unwrap();
    let mut child = bed
        .cmd(
            "vzdump",
            &["100", "--storage", "local", "--compress", "zstd"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = false;
    while Instant::now() < deadline {
        if bed
            .state
            .guest(100)
            .ok()
            .flatten()
            .and_then(|g| g.lock)
            .as_deref()
            == Some("backup")
        {
            seen = true;
            let cfg = bed.ok("qm", &["config", "100"]).stdout;
            assert!(cfg.contains("lock: backup\n"));
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.wait().unwrap().success());
    assert!(seen, "lock 'backup' never visible");
    assert!(bed.guest(100).lock.is_none());
}

#[test]
fn journal_records_state_changes_in_order() {
    let bed = Bed::new();
    bed.ok("qm", &["status", "100"]);
    bed.ok("pvesh", &["get", "/cluster/resources", "--type", "vm"]);
    bed.ok("qm", &["shutdown", "100"]);
    bed.ok("pct", &["list"]);
    bed.fails("qm", &["start", "999"], "does not exist");
    bed.ok("qm", &["set", "100", "--cores", "2"]);
    bed.ok("qm", &["config", "100"]);
    let j = bed.state.journal().unwrap();
    let argv: Vec<String> = j.iter().map(|e| e.argv.join(" ")).collect();
    assert_eq!(
        argv,
        ["qm shutdown 100", "qm start 999", "qm set 100 --cores 2"]
    );
    assert_eq!(j.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        j.iter().map(|e| e.exit).collect::<Vec<_>>(),
        [Some(0), Some(255), Some(0)]
    );
    assert!(j.iter().all(|e| e.source == "cli" && e.ts.ends_with('Z')));

    // Concurrent writers serialise on state.lock: unique, gapless sequence numbers.
    let children: Vec<_> = (0..6)
        .map(|i| {
            bed.cmd("qm", &["set", "100", "--description", &format!("d{i}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let seqs: Vec<u64> = bed.state.journal().unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
}

#[test]
fn fault_fail_and_delay() {
    let bed = Bed::new();
    bed.state
        .set_faults(&Faults {
            fail: vec![
                FailFault {
                    command: "qmrestore".into(),
                    message: "storage 'local-lvm' does not exist".into(),
                    exit: 255,
                    times: 2,
                },
                FailFault {
                    command: "pvesh get /nodes/pve/storage".into(),
                    message: "500 Can't connect to pveproxy".into(),
                    exit: 11,
                    times: 1,
                },
            ],
            delay: vec![DelayFault {
                command: "qm status".into(),
                seconds: 0.6,
                times: Some(1),
            }],
            ..Faults::default()
        })
        .unwrap();
    let b = bed.backup(&vm100(), "local");
    for _ in 0..2 {
        bed.fails(
            "qmrestore",
            &[&b.volid, "200"],
            "storage 'local-lvm' does not exist",
        );
    }
    assert!(bed.state.guest(200).unwrap().is_none());
    bed.ok("qmrestore", &[&b.volid, "200"]);
    let o = bed.run(
        "pvesh",
        &[
            "get",
            "/nodes/pve/storage/local/status",
            "--output-format",
            "json",
        ],
    );
    assert_eq!(o.code, Some(11));
    assert_eq!(o.stderr, "500 Can't connect to pveproxy\n");
    bed.ok("pvesh", &["get", "/nodes/pve/storage/local/status"]);
    let j = bed.state.journal().unwrap();
    assert_eq!(
        j.iter().map(|e| e.exit).collect::<Vec<_>>(),
        [Some(255), Some(255), Some(0)]
    );

    let t = Instant::now();
    bed.ok("qm", &["status", "100"]);
    assert!(t.elapsed() >= Duration::from_millis(600));
    let t = Instant::now();
    bed.ok("qm", &["status", "100"]);
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "delay should have been used up"
    );
    assert_eq!(bed.state.faults().unwrap(), Faults::default());
}

#[test]
fn fault_cut_kills_the_session_process_group() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let bed = Bed::new();
    bed.state
        .set_faults(&Faults {
            cut: vec![CutFault {
                command: "qm shutdown".into(),
                after_bytes: 0,
                times: 1,
            }],
            ..Faults::default()
        })
        .unwrap();
    // Stand-in for an sshd session: a shell in its own process group that runs the command and
    // then prints a marker (which the cut must prevent).
    let script = format!("{} shutdown 100; echo after", bed.bin.join("qm").display());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PVE_SIM_STATE", bed.state.dir())
        .process_group(0)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("after"));
    let j = bed.state.journal().unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].argv, ["qm", "shutdown", "100"]);
    assert_eq!(j[0].exit, None);
    // The command itself completed before the cut.
    assert_eq!(bed.guest(100).status, "stopped");
    // One-shot: the next call is not cut.
    bed.ok("qm", &["start", "100"]);
    assert_eq!(bed.journal_argv(), ["qm shutdown 100", "qm start 100"]);
}

#[test]
fn library_fixtures_write_verifiable_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let p: &Path = tmp.path();
    let std_state = State::create_standard(&p.join("std"), "node1").unwrap();
    let ids: Vec<String> = std_state
        .storages()
        .unwrap()
        .into_iter()
        .map(|s| s.storage)
        .collect();
    assert_eq!(ids, ["local", "local-lvm"]);
    assert_eq!(std_state.node().unwrap().node, "node1");
    let e = std_state
        .add_backup(
            "local",
            &ct101(),
            &ArchiveSpec {
                size: 10_000,
                ctime: CTIME,
                seed: 2,
            },
            &BackupOptions::default(),
        )
        .unwrap();
    assert_eq!(
        e.volid,
        "local:backup/vzdump-lxc-101-2026_11_20-02_00_01.tar.zst"
    );
    let g = vm100();
    let spec = ArchiveSpec {
        size: 3 << 20,
        ctime: CTIME,
        seed: 9,
    };
    let total = fixtures::write_archive(&p.join("a.vma.zst"), &g, &spec).unwrap();
    assert_eq!(total, 32 * GIB);
    let info = vma::verify_file(&p.join("a.vma.zst")).unwrap();
    assert_eq!(info.data_blocks, (4u64 << 20).div_ceil(4096));
    let size = std::fs::metadata(p.join("a.vma.zst")).unwrap().len();
    assert!(
        size > (2 << 20) && size < (5 << 20),
        "archive of {size} bytes"
    );
}

#[test]
fn restore_from_pbs_and_template_warnings() {
    let bed = Bed::new();
    let entry: BackupEntry = serde_json::from_value(serde_json::json!({
        "volid": "pbs:backup/vm/100/2026-11-20T02:00:00Z", "vmid": 100, "subtype": "qemu",
        "ctime": 1_795_140_000, "size": 123, "format": "pbs-vm", "protected": false,
        "config": {"name": "from-pbs", "memory": "1024", "scsi0": "local-lvm:vm-100-disk-0,size=4G"}
    }))
    .unwrap();
    bed.state.add_pbs_entry("pbs", entry).unwrap();
    bed.ok(
        "qmrestore",
        &["pbs:backup/vm/100/2026-11-20T02:00:00Z", "210"],
    );
    let g = bed.guest(210);
    assert_eq!(g.config["name"], "from-pbs");
    assert_eq!(g.config["scsi0"], "local-lvm:vm-210-disk-0,size=4G");
    bed.fails(
        "qmrestore",
        &["pbs:backup/vm/100/2020-01-01T00:00:00Z", "211"],
        "unable to find snapshot",
    );

    // A template's backup restores as a template, with Proxmox's warning.
    let mut t = vm100();
    t.vmid = 9000;
    t.template = true;
    t.status = "stopped".into();
    let b = bed.backup(&t, "local");
    let o = bed.ok("qmrestore", &[&b.volid, "9001"]);
    assert!(o.stderr.contains("Convert to template."));
    assert!(o.stdout.ends_with("TASK WARNINGS: 1\n"), "{}", o.stdout);
    assert!(bed.guest(9001).template);
    let res = bed.pvesh("/cluster/resources", &["--type", "vm"]);
    let t = res
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["vmid"] == 9001)
        .unwrap()
        .clone();
    assert_eq!(t["template"], 1);
}

#[test]
fn fault_cut_never_kills_a_shared_process_group() {
    let bed = Bed::new();
    bed.state
        .set_faults(&Faults {
            cut: vec![CutFault {
                command: "qm start".into(),
                after_bytes: 0,
                times: 1,
            }],
            ..Faults::default()
        })
        .unwrap();
    bed.ok("qm", &["stop", "100"]);
    // The wrapper shell stays in the test runner's process group: nothing may be killed.
    let script = format!("{} start 100; echo after $?", bed.bin.join("qm").display());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PVE_SIM_STATE", bed.state.dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after 255\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no session process group to kill safely")
    );
    assert_eq!(bed.state.journal().unwrap().last().unwrap().exit, None);
}

#[test]
fn guest_files_written_by_other_tools_are_read_leniently() {
    let bed = Bed::new();
    let path = bed.state.dir().join("guests/120.json");
    std::fs::write(
        &path,
        r#"{"vmid": 120, "type": "qemu", "node": "pve", "status": "stopped", "lock": null,
            "config": {"name": "tf", "memory": 2048, "onboot": true, "tags": "a;b"},
            "clone_of": 9000, "provider_note": "kept"}"#,
    )
    .unwrap();
    assert_eq!(
        bed.ok("qm", &["config", "120"]).stdout,
        "memory: 2048\nname: tf\nonboot: 1\ntags: a;b\n"
    );
    bed.ok("qm", &["set", "120", "--cores", "2"]);
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(raw["clone_of"], 9000);
    assert_eq!(raw["provider_note"], "kept");
    assert_eq!(raw["config"]["cores"], "2");
}

#[test]
fn snapshots_are_listed_created_and_deleted() {
    let bed = Bed::new();
    let o = bed.ok("qm", &["snapshot", "100", "pre-upgrade"]);
    assert_eq!(
        o.stdout,
        "snapshotting 'drive-scsi0' (local-lvm:vm-100-disk-0)\n"
    );
    bed.fails(
        "qm",
        &["snapshot", "100", "pre-upgrade"],
        "snapshot name 'pre-upgrade' already used",
    );
    assert_eq!(bed.guest(100).snapshots, ["pre-upgrade"]);
    let list = bed.ok("qm", &["listsnapshot", "100"]).stdout;
    assert!(list.starts_with("`-> pre-upgrade "), "{list}");
    assert!(list.contains("You are here!"));
    bed.fails(
        "qm",
        &["delsnapshot", "100", "nope"],
        "snapshot 'nope' does not exist",
    );
    bed.ok("qm", &["delsnapshot", "100", "pre-upgrade"]);
    assert!(bed.guest(100).snapshots.is_empty());
    assert_eq!(
        bed.journal_argv(),
        [
            "qm snapshot 100 pre-upgrade",
            "qm snapshot 100 pre-upgrade",
            "qm delsnapshot 100 nope",
            "qm delsnapshot 100 pre-upgrade"
        ]
    );
}

#[test]
fn vma_tool_lists_configs_and_verifies_streams() {
    let bed = Bed::new();
    let b = bed.backup(&vm100(), "local");
    let zst = b.path.unwrap();
    let raw = bed.state.dir().join("x.vma");
    let st = Command::new("zstd")
        .arg("-dqf")
        .arg(&zst)
        .arg("-o")
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    let raw_s = raw.to_str().unwrap();
    let list = bed.ok("vma", &["list", raw_s]).stdout;
    assert!(list.starts_with("CFG: size: "), "{list}");
    assert!(list.contains("DEV: dev_id=1 size: 34359738368 devname: drive-scsi0\n"));
    assert!(list.ends_with("CTIME: Fri Nov 20 02:00:01 2026\n"));
    let cfg = bed.ok("vma", &["config", raw_s]).stdout;
    assert!(cfg.contains("name: jellyfin\n"));
    assert!(cfg.contains("#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n"));
    // Piped, as on a node: zstd -dc archive | vma verify -v -
    let script = format!(
        "zstd -dc {} | {} verify - -v",
        zst.display(),
        bed.bin.join("vma").display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PVE_SIM_STATE", bed.state.dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("total bytes read 34359738368"));
    // A damaged extent header aborts like vma's g_error.
    let mut bytes = std::fs::read(&raw).unwrap();
    let header = vma::read_header(&mut &bytes[..]).unwrap().header_size as usize;
    bytes[header + 100] ^= 1;
    std::fs::write(&raw, &bytes).unwrap();
    let o = bed.run("vma", &["verify", raw_s]);
    assert_eq!(o.code, Some(133));
    assert!(
        o.stderr
            .contains("ERROR **: verify failed - corrupt extent"),
        "{}",
        o.stderr
    );
    assert!(bed.state.journal().unwrap().is_empty());
}

#[test]
fn restore_holds_lock_create_while_reading_the_archive() {
    let bed = Bed::new();
    let spec = ArchiveSpec {
        size: 16 << 20,
        ctime: CTIME,
        seed: 5,
    };
    let b = fixtures::add_backup(
        &bed.state,
        "local",
        &vm100(),
        &spec,
        &BackupOptions::default(),
    )
    .unwrap();
    let mut child = bed
        .cmd("qmrestore", &[&b.volid, "250"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = false;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if bed
            .state
            .guest(250)
            .ok()
            .flatten()
            .and_then(|g| g.lock)
            .as_deref()
            == Some("create")
        {
            seen = true;
            // Readers are not blocked meanwhile, and a second restore is refused.
            bed.fails(
                "qmrestore",
                &[&b.volid, "250"],
                "unable to restore VM 250 - VM 250 already exists on node 'pve'",
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.wait().unwrap().success());
    assert!(seen, "lock 'create' never visible");
    let g = bed.guest(250);
    assert!(g.lock.is_none());
    assert_eq!(g.config["name"], "jellyfin");
}

#[test]
fn fault_cut_can_target_its_own_group() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let bed = Bed::new();
    bed.state
        .set_faults(&Faults {
            cut: vec![CutFault {
                command: "qm stop".into(),
                after_bytes: 0,
                times: 1,
            }],
            ..Faults::default()
        })
        .unwrap();
    let out = bed
        .cmd("qm", &["stop", "100"])
        .env("PVE_SIM_CUT_PGID", "self")
        .process_group(0)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert_eq!(bed.state.journal().unwrap()[0].exit, None);
}

#[test]
fn vzdump_to_pbs_then_restore_from_it() {
    let bed = Bed::new();
    let o = bed.ok(
        "vzdump",
        &[
            "100",
            "--storage",
            "pbs",
            "--mode",
            "snapshot",
            "--notes-template",
            "{{guestname}}",
        ],
    );
    assert!(
        o.stdout
            .contains("INFO: creating Proxmox Backup Server archive 'vm/100/"),
        "{}",
        o.stdout
    );
    let list = bed.pvesh(
        "/nodes/pve/storage/pbs/content",
        &["--content", "backup", "--vmid", "100"],
    );
    let e = &list[0];
    assert_eq!(e["format"], "pbs-vm");
    assert_eq!(e["subtype"], "qemu");
    assert_eq!(e["notes"], "jellyfin");
    let volid = e["volid"].as_str().unwrap().to_string();
    assert!(
        volid.starts_with("pbs:backup/vm/100/") && volid.ends_with('Z'),
        "{volid}"
    );
    bed.ok("qmrestore", &[&volid, "260", "--storage", "local-lvm"]);
    let g = bed.guest(260);
    assert_eq!(g.config["name"], "jellyfin");
    assert_eq!(
        g.config["scsi0"],
        "local-lvm:vm-260-disk-0,iothread=1,size=32G"
    );
}
