//! Integration tests of the `restore-vm` binary against the test bed: a real sshd on loopback serving the
//! simulated Proxmox node (`pve-sim`), whose journal shows every state-changing command.
//!
//! Needs `pve-sim` built next to the test binary (`cargo build -p testbed`; `tests/run-all` builds it).
#![allow(clippy::unwrap_used)]
// Test scenarios read best whole, step after step: the 80-line limit is for the tools' code.
#![allow(clippy::too_many_lines)]

mod fleet;

use assert_cmd::Command;
use pve_common::output::Document;
use restore_vm::report::{BackupList, Report};
use testbed::sim::fixtures::{ArchiveSpec, BackupOptions};
use testbed::sim::{BackupEntry, CutFault, FailFault, Faults, Guest, GuestType, State, StorageDef};
use testbed::sshd::{Sshd, SshdOptions};

/// The tool, through the test bed's one command helper.
fn bin() -> Command {
    Command::from_std(testbed::tool::command(env!("CARGO_BIN_EXE_restore-vm")))
}

/// 2026-11-20 02:00:00 UTC.
const T0: i64 = 1_795_140_000;
const DAY: i64 = 86_400;

struct Bed {
    dir: tempfile::TempDir,
    state: State,
    sshd: Sshd,
}

fn guest100() -> Guest {
    let mut g = Guest::new(
        100,
        GuestType::Qemu,
        "pve",
        &[
            ("name", "jellyfin"),
            ("memory", "2048"),
            ("cores", "2"),
            ("net0", "virtio=BC:24:11:00:01:00,bridge=vmbr0"),
            ("ipconfig0", "ip=127.0.0.1/8,gw=127.0.0.1"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=4G"),
        ],
    );
    g.status = "running".into();
    g
}

fn guest101() -> Guest {
    Guest::new(
        101,
        GuestType::Lxc,
        "pve",
        &[
            ("hostname", "pihole"),
            ("memory", "512"),
            ("ostype", "debian"),
            ("rootfs", "local-lvm:subvol-101-disk-0,size=2G"),
            (
                "net0",
                "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:01:01,ip=127.0.0.1/8",
            ),
        ],
    )
}

fn spec(ctime: i64, seed: u64) -> ArchiveSpec {
    ArchiveSpec {
        size: 64 * 1024,
        ctime,
        seed,
    }
}

/// A node with storages `local` (dir), `local-lvm`, `backup2` (dir) and `pbs`; guests 100 (VM, running)
/// and 101 (CT, stopped); backups of 100 on local (day 0 and day 2), backup2 (day 1) and pbs (day 3, verified),
/// of 101 on local, and of 105 (a guest that no longer exists) on local.
fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let state = State::create_standard(&dir.path().join("state"), "pve").unwrap();
    state
        .add_storage(StorageDef::new("backup2", "dir", "backup", 50 << 30))
        .unwrap();
    state
        .add_storage(StorageDef::new("pbs", "pbs", "backup", 1 << 40))
        .unwrap();
    let g100 = guest100();
    let g101 = guest101();
    state.add_guest(&g100).unwrap();
    state.add_guest(&g101).unwrap();
    let notes = BackupOptions {
        notes: Some("nightly".into()),
        protected: false,
    };
    state
        .add_backup("local", &g100, &spec(T0, 1), &notes)
        .unwrap();
    state
        .add_backup(
            "backup2",
            &g100,
            &spec(T0 + DAY, 2),
            &BackupOptions::default(),
        )
        .unwrap();
    state
        .add_backup(
            "local",
            &g100,
            &spec(T0 + 2 * DAY, 3),
            &BackupOptions {
                notes: None,
                protected: true,
            },
        )
        .unwrap();
    state
        .add_pbs_entry(
            "pbs",
            BackupEntry {
                volid: "pbs:backup/vm/100/2026-11-23T02:00:00Z".into(),
                vmid: 100,
                subtype: "qemu".into(),
                ctime: T0 + 3 * DAY,
                size: 70_000,
                format: "pbs-vm".into(),
                notes: Some("pbs nightly".into()),
                protected: false,
                verification: Some(serde_json::json!({"state": "ok", "upid": "UPID:pve:1"})),
                path: None,
                config: None,
                extra: Default::default(),
            },
        )
        .unwrap();
    state
        .add_backup("local", &g101, &spec(T0, 4), &BackupOptions::default())
        .unwrap();
    let mut g105 = Guest::new(
        105,
        GuestType::Qemu,
        "pve",
        &[
            ("name", "gone"),
            ("scsi0", "local-lvm:vm-105-disk-0,size=1G"),
        ],
    );
    g105.status = "stopped".into();
    state
        .add_backup("local", &g105, &spec(T0, 5), &BackupOptions::default())
        .unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sim = testbed::bed::sibling_binary("pve-sim")
        .expect("pve-sim must be built: cargo build -p testbed");
    for name in testbed::sim::COMMANDS {
        std::os::unix::fs::symlink(&sim, bin.join(name)).unwrap();
    }
    let sshd = Sshd::start_with(
        SshdOptions::new()
            .path_prefix(&bin)
            .env("PVE_SIM_STATE", state.dir().display().to_string()),
    )
    .unwrap();
    Bed { dir, state, sshd }
}

impl Bed {
    fn cmd(&self) -> Command {
        let mut c = bin();
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        c.env("HOME", &home)
            .env("RESTORE_VM_RETRY_DELAY_MS", "10")
            .current_dir(self.dir.path())
            .args(["--host", self.sshd.alias(), "--node", "pve"])
            .arg("--ssh-config")
            .arg(self.sshd.ssh_config());
        c
    }

    fn journal(&self) -> Vec<Vec<String>> {
        self.state.journal_argv().unwrap()
    }

    fn port(&self) -> String {
        self.sshd.port().to_string()
    }

    /// `restore-vm <args>` against the bed, run to completion.
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().unwrap()
    }

    /// [`Bed::run`], which must succeed.
    fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert!(out.status.success(), "{}", stderr(&out));
        out
    }

    /// [`Bed::run`], which must fail (exit 1) saying each of `needles` on stderr.
    fn fails(&self, args: &[&str], needles: &[&str]) -> std::process::Output {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        for needle in needles {
            assert!(err.contains(needle), "missing {needle:?}: {err}");
        }
        out
    }
}

/// stdout decoded as `T`.
fn typed<T: serde::de::DeserializeOwned>(out: &std::process::Output) -> T {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not the expected document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn first_word(argv: &[String]) -> String {
    match argv.first().map(String::as_str) {
        Some("qm") | Some("pct") => format!("{} {}", argv[0], argv[1]),
        Some(w) => w.to_owned(),
        None => String::new(),
    }
}

#[test]
fn help_and_version_exit_0() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicates::str::contains("Usage: restore-vm"));
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_64_before_connecting() {
    for args in [
        vec!["99"],
        vec!["abc"],
        vec!["1000000000"],
        vec!["100", "--target-id", "99"],
        vec!["100", "--target-id", "1000000000"],
        vec!["100", "--backup", "local:backup/x;rm -rf /"],
        vec!["100", "--at", "yesterday"],
        vec!["100", "--no-such-flag"],
    ] {
        // Port 1 on loopback: a connection attempt would fail with exit 1, not 64.
        bin()
            .args(["--host", "127.0.0.1", "--port", "1"])
            .args(&args)
            .assert()
            .code(64);
    }
    // No host anywhere.
    let dir = tempfile::tempdir().unwrap();
    bin()
        .current_dir(dir.path())
        .arg("100")
        .assert()
        .code(64)
        .stderr(predicates::str::contains("no Proxmox host"));
}

#[test]
fn list_covers_every_storage_newest_first_with_pbs_state() {
    let bed = bed();
    let out = bed.ok(&["100", "--list", "--json", "--all-storages"]);
    let doc: Document<BackupList> = typed(&out);
    assert_eq!(doc.schema, "pve-restore-vm/v2");
    assert_eq!(doc.tool.name, "restore-vm");
    assert_eq!((doc.body.action.as_str(), doc.body.vmid), ("list", 100));
    let list = &doc.body.backups;
    let storages: Vec<&str> = list.iter().map(|b| b.storage.as_str()).collect();
    assert_eq!(storages, ["pbs", "local", "backup2", "local"]);
    assert!(list.windows(2).all(|w| w[0].ctime >= w[1].ctime));
    assert_eq!(list[0].verification.as_deref(), Some("ok"));
    assert_eq!(list[0].format, "pbs-vm");
    assert!(list[1].protected);
    assert_eq!(list[3].notes.as_deref(), Some("nightly"));
    assert_eq!(list[3].date, "2026-11-20 02:00:00");
    assert!(list.iter().all(|b| b.kind == "qemu"));
    // Text table, and an LXC guest.
    let out = bed.ok(&["101", "--list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("DATE"), "{text}");
    assert!(text.contains("lxc") && text.contains("tar.zst"), "{text}");
    assert!(bed.journal().is_empty());
}

#[test]
fn restore_to_a_free_vmid() {
    let bed = bed();
    let out = bed.ok(&["105", "--yes", "--no-verify", "--no-start", "--json"]);
    let report: Report = typed(&out);
    assert_eq!(report.result, "restored");
    assert_eq!(report.save_point, None);
    assert_eq!(report.kind, "qemu");
    let j = bed.journal();
    assert_eq!(j.len(), 1, "{j:?}");
    assert_eq!(j[0][0], "qmrestore");
    assert_eq!(&j[0][2..], ["105", "--storage", "local-lvm"]);
    assert!(bed.state.guest(105).unwrap().is_some());
}

#[test]
fn restore_over_existing_takes_the_save_point_first_and_verifies() {
    let bed = bed();
    let volid = bed
        .state
        .backups(&bed.state.storage("backup2").unwrap().unwrap())
        .unwrap()[0]
        .volid
        .clone();
    let out = bed.ok(&[
        "100",
        "--storage",
        "backup2",
        "--backup",
        &volid,
        "--force",
        "--yes",
        "--json",
        "--verify-timeout",
        "20",
        "--verify-port",
        &bed.port(),
    ]);
    let doc: Report = typed(&out);
    assert_eq!(doc.result, "restored");
    let sp = doc.save_point.clone().unwrap();
    assert!(sp.starts_with("backup2:backup/vzdump-qemu-100-"), "{sp}");
    let verification = doc.verification.as_ref().unwrap();
    assert_eq!(verification.result, pve_restore::VerificationResult::Passed);
    assert_eq!(verification.ip.as_deref(), Some("127.0.0.1"));
    let back = doc.save_point_restore_command.as_deref().unwrap();
    assert!(
        back.contains(&sp) && back.starts_with("qmrestore"),
        "{back}"
    );
    let order: Vec<String> = bed.journal().iter().map(|a| first_word(a)).collect();
    assert_eq!(order, ["vzdump", "qm shutdown", "qmrestore", "qm start"]);
    let j = bed.journal();
    assert!(j[2].contains(&"--force".to_owned()) && j[2].contains(&"local-lvm".to_owned()));
    assert!(stderr(&out).contains(&format!("save point: {sp}")));
    // The save point is a real backup on the storage.
    let listed = bed
        .state
        .backups(&bed.state.storage("backup2").unwrap().unwrap())
        .unwrap();
    assert!(listed.iter().any(|b| b.volid == sp && b.size > 0));
}

/// Overwriting is asked (the script's way) instead of needing a flag: with nobody to say yes, nothing
/// is overwritten.
#[test]
fn asks_before_overwriting_and_without_a_yes_overwrites_nothing() {
    let bed = bed();
    let out = bed.cmd().arg("100").write_stdin("").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("overwrite VM 100"),
        "{}",
        stderr(&out)
    );
    assert!(bed.journal().is_empty());
}

/// `--date` takes the oldest backup on or after that day, on `--storage` (default `local`).
#[test]
fn date_picks_the_oldest_backup_on_or_after_the_day() {
    let bed = bed();
    let doc: Report = typed(&bed.ok(&[
        "100",
        "--date",
        "2026-11-21",
        "--preview",
        "--force",
        "--json",
    ]));
    assert!(doc.source.volid.contains("2026_11_22"), "{doc:#?}");
    let doc: Report = typed(&bed.ok(&[
        "100",
        "--all-storages",
        "--date",
        "2026-11-21",
        "--preview",
        "--force",
        "--json",
    ]));
    assert!(doc.source.volid.starts_with("backup2:"), "{doc:#?}");
    bed.fails(
        &["100", "--date", "2026-11-24", "--preview", "--force"],
        &["2026-11-24"],
    );
    assert!(bed.journal().is_empty());
}

/// `--dry-run` contacts nothing: the node is down (port 1) and it still shows every command.
#[test]
fn dry_run_contacts_nothing() {
    let out = bin()
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--node",
            "pve",
            "100",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    for expect in [
        "[DRY-RUN] ssh root@127.0.0.1 pvesh get /nodes/pve/storage/local/content --content backup --vmid 100",
        "[DRY-RUN] ssh root@127.0.0.1 qmrestore '<volid>' 100 --storage local-lvm --force 1",
        "[DRY-RUN] ssh root@127.0.0.1 pct restore 100 '<volid>' --storage local-lvm --force 1",
    ] {
        assert!(err.contains(expect), "missing {expect}: {err}");
    }
    assert!(!err.contains("attempt"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("RESTORE SUMMARY"), "{text}");
}

#[test]
fn never_overwrites_a_protected_guest() {
    let bed = bed();
    let mut g = bed.state.guest(100).unwrap().unwrap();
    g.config.insert("protection".into(), "1".into());
    bed.state.save_guest(&g).unwrap();
    bed.fails(&["100", "--force", "--yes"], &["protected"]);
    assert!(bed.journal().is_empty());
}

#[test]
fn refuses_a_locked_guest() {
    let bed = bed();
    bed.state.set_guest_lock(100, Some("backup")).unwrap();
    bed.fails(&["100", "--force", "--yes"], &["locked (backup)"]);
    assert!(bed.journal().is_empty());
}

#[test]
fn refuses_when_the_target_storage_is_full() {
    let bed = bed();
    bed.state.fill_storage("local-lvm", Some(1000)).unwrap();
    bed.fails(&["105", "--yes"], &["free"]);
    assert!(bed.journal().is_empty());
    // A storage that does not exist.
    bed.fails(
        &["105", "--yes", "--target-storage", "nope"],
        &["does not exist"],
    );
}

#[test]
fn unknown_volid_is_refused() {
    let bed = bed();
    bed.fails(
        &[
            "100",
            "--backup",
            "local:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst",
            "--force",
            "--yes",
        ],
        &["--list"],
    );
    // A backup of another guest is not a backup of this one.
    let other = bed
        .state
        .backups(&bed.state.storage("local").unwrap().unwrap())
        .unwrap()
        .into_iter()
        .find(|b| b.vmid == 101)
        .unwrap();
    bed.fails(&["100", "--backup", &other.volid, "--force", "--yes"], &[]);
    assert!(bed.journal().is_empty());
}

#[test]
fn target_id_restores_beside_the_original_and_warns_about_duplicates() {
    let bed = bed();
    let out = bed.ok(&[
        "100",
        "--all-storages",
        "--target-id",
        "200",
        "--yes",
        "--json",
        "--start",
        "--verify-timeout",
        "20",
        "--verify-port",
        &bed.port(),
    ]);
    let doc: Report = typed(&out);
    assert_eq!(doc.target_id, 200);
    assert_eq!(doc.source.volid, "pbs:backup/vm/100/2026-11-23T02:00:00Z");
    assert!(stderr(&out).contains("duplicate MAC"), "{}", stderr(&out));
    let j = bed.journal();
    assert_eq!(j[0][0], "qmrestore");
    assert_eq!(j[0][2], "200");
    assert!(!j[0].contains(&"--force".to_owned()));
    assert_eq!(bed.state.guest(100).unwrap().unwrap().status, "running");
    // With --unique: no warning, --unique 1 passed.
    let out = bed.ok(&[
        "101",
        "--target-id",
        "201",
        "--unique",
        "--yes",
        "--no-verify",
        "--no-start",
    ]);
    assert!(!stderr(&out).contains("duplicate MAC"));
    let j = bed.journal();
    let last = j.last().unwrap();
    assert_eq!(&last[..3], ["pct", "restore", "201"]);
    assert!(last.ends_with(&["--unique".to_owned(), "1".to_owned()]));
}

#[test]
fn at_picks_the_newest_backup_at_or_before() {
    let bed = bed();
    let out = bed.ok(&[
        "100",
        "--all-storages",
        "--at",
        "2026-11-21",
        "--preview",
        "--force",
        "--json",
    ]);
    let doc: Report = typed(&out);
    assert!(doc.source.volid.starts_with("backup2:"), "{doc:#?}");
    bed.fails(
        &["100", "--at", "2026-11-20T01:59", "--preview", "--force"],
        &[],
    );
}

#[test]
fn preview_changes_nothing_and_shows_every_command() {
    let bed = bed();
    let before = std::fs::read(bed.state.dir().join("guests/100.json")).unwrap();
    let out = bed.ok(&["100", "--all-storages", "--force", "--preview"]);
    let err = stderr(&out);
    for expect in [
        "[dry-run] would run: vzdump 100 --storage",
        "[dry-run] would run: qm shutdown 100",
        "[dry-run] would run: qmrestore pbs:backup/vm/100/2026-11-23T02:00:00Z 100 --storage local-lvm --force 1",
    ] {
        assert!(err.contains(expect), "missing {expect}: {err}");
    }
    assert!(bed.journal().is_empty());
    assert_eq!(
        std::fs::read(bed.state.dir().join("guests/100.json")).unwrap(),
        before
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dry-run"));
}

#[test]
fn connection_refused_twice_then_success() {
    let bed = bed();
    bed.sshd.refuse_next(2);
    let out = bed.ok(&["100", "--list", "--json", "--all-storages"]);
    assert!(stderr(&out).contains("attempt 1/3"), "{}", stderr(&out));
    let list: Document<BackupList> = typed(&out);
    assert_eq!(list.body.backups.len(), 4);
}

#[test]
fn connection_cut_during_the_save_point_overwrites_nothing() {
    let bed = bed();
    bed.state
        .set_faults(&Faults {
            cut: vec![CutFault {
                command: "vzdump".into(),
                after_bytes: 0,
                times: 1,
            }],
            ..Default::default()
        })
        .unwrap();
    let before = bed.state.guest(100).unwrap().unwrap();
    bed.fails(&["100", "--force", "--yes"], &["nothing was overwritten"]);
    let order: Vec<String> = bed.journal().iter().map(|a| first_word(a)).collect();
    assert_eq!(order, ["vzdump"]);
    let after = bed.state.guest(100).unwrap().unwrap();
    assert_eq!(after.config, before.config);
    assert_eq!(after.status, "running");
}

#[test]
fn verification_failure_names_the_save_point() {
    let bed = bed();
    let refused = testbed::ports::RefusedPort::new().unwrap();
    let port = refused.port().to_string();
    let out = bed.fails(
        &[
            "100",
            "--at",
            "2026-11-22",
            "--force",
            "--yes",
            "--verify-timeout",
            "1",
            "--verify-port",
            &port,
        ],
        &[
            "verification of VM 100 failed",
            "the old guest is saved in local:backup/vzdump-qemu-100-",
            "qmrestore local:backup/vzdump-qemu-100-",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verification-failed"), "{text}");
}

#[test]
fn host_node_and_user_from_tfvars() {
    let bed = bed();
    let tf = bed.dir.path().join("terraform.tfvars");
    std::fs::write(
        &tf,
        format!(
            "proxmox_endpoint = \"https://{}:8006/api2/json\"\nnode_name = \"pve\"\nssh_user = \"{}\"\n",
            bed.sshd.alias(),
            bed.sshd.user()
        ),
    )
    .unwrap();
    let mut c = bin();
    c.env("HOME", bed.dir.path())
        .env("PVE_TFVARS", &tf)
        .arg("--ssh-config")
        .arg(bed.sshd.ssh_config())
        .args(["101", "--list", "--json"]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Document<BackupList> = typed(&out);
    assert_eq!(list.body.node.as_deref(), Some("pve"));
}

#[test]
fn a_failed_restore_is_not_retried_and_names_the_save_point() {
    let bed = bed();
    bed.state
        .set_faults(&Faults {
            fail: vec![FailFault {
                command: "qmrestore".into(),
                message: "command 'zstd -q -d -c' failed: got signal 9".into(),
                exit: 255,
                times: 1,
            }],
            ..Default::default()
        })
        .unwrap();
    bed.fails(
        &[
            "100",
            "--at",
            "2026-11-22",
            "--force",
            "--yes",
            "--no-verify",
        ],
        &[
            "got signal 9",
            "the old guest is saved in local:backup/vzdump-qemu-100-",
        ],
    );
    let order: Vec<String> = bed.journal().iter().map(|a| first_word(a)).collect();
    assert_eq!(order, ["vzdump", "qm shutdown", "qmrestore"]);
}

#[test]
fn task_warnings_are_success_and_reported() {
    let bed = bed();
    let mut g = guest101();
    g.vmid = 106;
    g.config.insert(
        "rootfs".into(),
        "local-lvm:subvol-106-disk-0,size=2G".into(),
    );
    g.config
        .insert("unused0".into(), "local-lvm:subvol-106-disk-1".into());
    bed.state
        .add_backup("local", &g, &spec(T0, 6), &BackupOptions::default())
        .unwrap();
    let out = bed.ok(&["106", "--yes", "--no-verify", "--json"]);
    let doc: Report = typed(&out);
    let warnings: Vec<&str> = doc.warnings.iter().map(String::as_str).collect();
    assert!(warnings.contains(&"TASK WARNINGS: 1"), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("unused0")),
        "{warnings:?}"
    );
    assert!(stderr(&out).contains("warning: restore: TASK WARNINGS: 1"));
    let j = bed.journal();
    assert_eq!(&j[0][..3], ["pct", "restore", "106"]);
}
