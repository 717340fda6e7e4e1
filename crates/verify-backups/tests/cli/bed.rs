//! The test bed of these tests: a simulated Proxmox node behind a real sshd (testbed), fixture archives,
//! and helpers to run the binary and decode its JSON.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use testbed::sim::{self, Guest, GuestType};
use testbed::sshd::{Sshd, SshdOptions};
use testbed::tool::entry;
use verify_backups::report::{BackupCheck, BackupResult, Component, GuestResult, Report, Status};

pub const HOUR: i64 = 3600;

pub fn now() -> i64 {
    sim::state::now_epoch()
}

/// A node with its sshd.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub state: sim::State,
    pub sshd: Sshd,
}

impl Node {
    /// An empty standard node (storages `local`, `local-lvm`), served over ssh.
    pub fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let state = sim::State::create_standard(&state_dir, "pve").unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let pve_sim = testbed::bed::sibling_binary("pve-sim")
            .expect("pve-sim is built (cargo build -p testbed)");
        for name in sim::COMMANDS {
            std::os::unix::fs::symlink(&pve_sim, bin.join(name)).unwrap();
        }
        let sshd = Sshd::start_with(
            SshdOptions::new()
                .path_prefix(&bin)
                .env("PVE_SIM_STATE", state_dir.display().to_string()),
        )
        .unwrap();
        Node { dir, state, sshd }
    }

    /// The dump folder of storage `local`.
    pub fn dump(&self) -> PathBuf {
        let def = self.state.storage("local").unwrap().unwrap();
        self.state.dump_dir(&def)
    }

    /// A VM with a small disk.
    pub fn vm(&self, vmid: u32, name: &str) -> Guest {
        let g = Guest::new(
            vmid,
            GuestType::Qemu,
            "pve",
            &[
                ("name", name),
                ("memory", "1024"),
                ("scsi0", &format!("local-lvm:vm-{vmid}-disk-0,size=64M")),
            ],
        );
        self.state.add_guest(&g).unwrap();
        g
    }

    /// A container.
    pub fn ct(&self, vmid: u32, name: &str) -> Guest {
        let g = Guest::new(
            vmid,
            GuestType::Lxc,
            "pve",
            &[
                ("hostname", name),
                ("memory", "512"),
                ("rootfs", &format!("local-lvm:subvol-{vmid}-disk-0,size=1G")),
            ],
        );
        self.state.add_guest(&g).unwrap();
        g
    }

    /// A real backup `age_hours` old on `local`; returns its path.
    pub fn backup(&self, g: &Guest, age_hours: i64, seed: u64) -> PathBuf {
        let e = self
            .state
            .add_backup(
                "local",
                g,
                &sim::fixtures::ArchiveSpec {
                    size: 96 * 1024,
                    ctime: now() - age_hours * HOUR,
                    seed,
                },
                &sim::fixtures::BackupOptions::default(),
            )
            .unwrap();
        e.path.unwrap()
    }

    /// The ssh flags of the binary.
    pub fn ssh_args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            self.sshd.host().into(),
            "--ssh-port".into(),
            self.sshd.port().to_string(),
            "--ssh-user".into(),
            self.sshd.user().into(),
            "--identity".into(),
            self.sshd.client_key().display().to_string(),
            "--known-hosts".into(),
            self.sshd.known_hosts().display().to_string(),
            "--dump-dir".into(),
            format!("local={}", self.dump().display()),
            "--manifest".into(),
            self.dir.path().join("manifest").display().to_string(),
        ]
    }
}

/// The binary, through the test bed's one command helper, without this tool's own defaults from the
/// environment (bit-rot manifest, textfile directory).
pub fn bin() -> assert_cmd::Command {
    let mut cmd =
        assert_cmd::Command::from_std(testbed::tool::command(env!("CARGO_BIN_EXE_verify-backups")));
    cmd.env_remove("PVE_VERIFY_MANIFEST")
        .env_remove("PVE_BACKUP_TEXTFILE_DIR");
    cmd
}

/// Runs the binary.
pub fn run(args: &[String], envs: &[(String, String)]) -> Output {
    let mut cmd = bin();
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs with `--json`, returns (exit code, the decoded document).
pub fn run_json(args: &[String], envs: &[(String, String)]) -> (i32, Report) {
    let mut a = args.to_vec();
    a.push("--json".into());
    let out = run(&a, envs);
    (out.status.code().unwrap_or(-1), report(&out))
}

/// The `--json` document of a run, decoded; panics with stdout and stderr when it is not one.
pub fn report(out: &Output) -> Report {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); stdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout),
        )
    });
    let doc: Report = testbed::tool::decode(&doc, &stderr);
    assert_eq!(doc.schema, "pve-verify/v1");
    doc
}

/// [`report`], after checking the run exited with `code` (the failure names the document and stderr).
pub fn report_exiting(out: &Output, code: i32) -> Report {
    let doc = report(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{doc:#?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    doc
}

/// The backup result of `vmid`.
pub fn backup_of(doc: &Report, vmid: u32) -> &BackupResult {
    entry(
        &doc.backups,
        |b| b.vmid == vmid,
        format_args!("backup of {vmid}"),
        doc,
    )
}

/// The first failed check of a backup (`None` when none failed).
pub fn first_failure(b: &BackupResult) -> Option<String> {
    b.first_failure().map(|c| c.check.to_string())
}

/// The failed checks of a backup.
pub fn failures(b: &BackupResult) -> Vec<String> {
    b.checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check.to_string())
        .collect()
}

/// The check `check` of a backup; panics naming the backup when it has none.
pub fn backup_check<'a>(b: &'a BackupResult, check: &str) -> &'a BackupCheck {
    entry(
        &b.checks,
        |c| c.check.as_ref() == check,
        format_args!("check {check}"),
        b,
    )
}

/// The component named `name`.
pub fn component<'a>(doc: &'a Report, name: &str) -> &'a Component {
    entry(
        &doc.components,
        |c| c.name.as_ref() == name,
        format_args!("component {name}"),
        doc,
    )
}

/// The guest entry of `vmid`.
pub fn guest(doc: &Report, vmid: u32) -> &GuestResult {
    entry(
        &doc.guests,
        |g| g.vmid == vmid,
        format_args!("guest {vmid}"),
        doc,
    )
}

/// Rewrites a `.zst` file: decompress, let `f` change the plain bytes, compress again (with checksum),
/// so only the inner format is wrong.
pub fn rewrite_inner(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let data = std::fs::read(path).unwrap();
    let mut plain = zstd::stream::decode_all(&data[..]).unwrap();
    f(&mut plain);
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut enc, &plain).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// Compresses `plain` with the real `lzop` binary (`extra` are its flags, e.g. `-9`, `--crc32`).
pub fn lzop(plain: &[u8], extra: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("lzop")
        .args(extra)
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lzop is installed (tests/run-all installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let data = plain.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "lzop failed");
    out.stdout
}

/// Turns a `.zst` backup into the `.lzo` one vzdump would have written with `--compress lzo` (same
/// content, compressed by the real `lzop`); the `.log` stays valid. Returns the new path.
pub fn to_lzo(path: &Path) -> PathBuf {
    let plain = zstd::stream::decode_all(&std::fs::read(path).unwrap()[..]).unwrap();
    let name = path.to_string_lossy();
    let lzo = PathBuf::from(format!("{}.lzo", name.strip_suffix(".zst").unwrap()));
    std::fs::write(&lzo, lzop(&plain, &[])).unwrap();
    std::fs::remove_file(path).unwrap();
    lzo
}

/// `--deep` remote, then the same with `--local-dir` over the same files; both must fail (exit 2: errors).
/// Returns (remote, local) documents.
pub fn deep_both_modes_failing(node: &Node) -> (Report, Report) {
    let mut remote = node.ssh_args();
    remote.push("--deep".into());
    let (code, r) = run_json(&remote, &[]);
    assert_eq!(code, 2, "{r:#?}");
    let mut local = remote.clone();
    local.extend(["--local-dir".into(), node.dump().display().to_string()]);
    let (code, l) = run_json(&local, &[]);
    assert_eq!(code, 2, "{l:#?}");
    (r, l)
}
