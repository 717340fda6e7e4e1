//! Shared tools of the hostile suite: where the binaries are, a fault-injecting TCP proxy, a tiny tmpfs, a
//! scanner of every process's command line, and a deterministic random source for mutation tests.

#![allow(dead_code)]

pub mod bad_input;
pub mod faults;
pub mod mutation;
pub mod scripted;
pub mod security;
pub mod survive;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A workspace binary (`check-drift`, `restore-tfstate`, `pve-sim`) next to this test binary's `deps/`.
/// `cargo test --workspace` builds them; alone, run `cargo build -p check-drift -p restore-tfstate -p
/// testbed` first.
///
/// `HOSTILE_BIN_DIR` points the suite at other builds of the six tools, e.g. `target/release` (overflow
/// checks differ between debug and release builds: the suite must hold for both); the test bed's own
/// binaries (`pve-sim`) still come from this build.
pub fn bin(name: &str) -> PathBuf {
    const TOOLS: [&str; 6] = [
        "check-drift",
        "restore-tfstate",
        "restore-vm",
        "verify-backups",
        "rebuild-minio",
        "rebuild-monitoring",
    ];
    if let Some(dir) = std::env::var_os("HOSTILE_BIN_DIR").filter(|d| !d.is_empty())
        && TOOLS.contains(&name)
    {
        let path = PathBuf::from(dir).join(name);
        assert!(path.is_file(), "HOSTILE_BIN_DIR has no {}", path.display());
        return path;
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p check-drift -p restore-tfstate -p testbed` first",
        path.display()
    );
    path
}

/// The checkout's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// check-drift's own test fixtures (read, never written).
pub fn drift_fixtures() -> PathBuf {
    workspace().join("crates/check-drift/tests/fixtures")
}

/// Adds environment `name` under `root`, holding check-drift's basic fixture configuration.
pub fn add_drift_env(root: &Path, name: &str) -> PathBuf {
    let env = root.join(name);
    std::fs::create_dir_all(&env).unwrap();
    std::fs::copy(
        drift_fixtures().join("envs/basic/main.tf"),
        env.join("main.tf"),
    )
    .unwrap();
    env
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tool's `--json` output decoded into its report type `T`; panics naming the output and `context`
/// (stderr, usually) when it is not one.
pub fn decoded<T: serde::de::DeserializeOwned>(stdout: impl AsRef<[u8]>, context: &str) -> T {
    let stdout = stdout.as_ref();
    let value: serde_json::Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{context}", text(stdout)));
    testbed::tool::decode(&value, context)
}

/// A tool command with nothing inherited that could change its behaviour: the test bed's
/// ([`testbed::tool::command`]: no host, homelab, SSH agent or service URL of the machine, `NO_COLOR`),
/// without the tools' other settings either.
pub fn tool(name: &str) -> Command {
    let mut cmd = testbed::tool::command(bin(name));
    for var in [
        "TF_BIN",
        "PVE_DRIFT_LOCK_FILE",
        "PVE_DRIFT_KILL_GRACE",
        "PVE_TFSTATE_BACKUP_DIR",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "XDG_RUNTIME_DIR",
        "TF_WORKSPACE",
    ] {
        cmd.env_remove(var);
    }
    // The tools' default outputs (node_exporter's folder, /var/log/pve-drift, ~/.local/state) go to a
    // folder of this test process: a test that wants them passes the flags, which win.
    let scratch = scratch_dir();
    cmd.env("PVE_DRIFT_TEXTFILE_DIR", scratch.join("textfile"))
        .env("PVE_DRIFT_REPORT_DIR", scratch.join("reports"))
        .env("PVE_DRIFT_STATE_FILE", scratch.join("drift-state.json"))
        .env("XDG_STATE_HOME", scratch.join("state"));
    cmd.stdin(Stdio::null());
    cmd
}

/// A folder under $TMPDIR for this test process's default outputs.
fn scratch_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder under TMPDIR"))
        .path()
        .to_path_buf()
}

/// Runs `cmd`, killing it after `limit` (a hung tool is a failed test, not a hung CI).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_within(child, limit, &format!("{cmd:?}"))
}

/// Waits for `child` (started with piped output) and returns its output, killing it after `limit`.
pub fn wait_within(child: std::process::Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > limit {
                    kill(pid, libc::SIGKILL);
                    return true;
                }
                thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::SeqCst);
    assert!(
        !watchdog.join().unwrap(),
        "command did not end within {limit:?}: {what}\nstderr: {}",
        text(&out.stderr)
    );
    out
}

pub fn kill(pid: u32, signal: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Every file under `dir` (recursively).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// SplitMix64: a fixed seed gives the same inputs on every run and machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }
    /// One mutation of `input`: flip, insert, delete, duplicate a slice, truncate, splice a token.
    pub fn mutate(&mut self, input: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..=self.below(4) {
            let len = v.len();
            match self.below(7) {
                0 if len > 0 => {
                    let i = self.below(len);
                    v[i] ^= 1 << self.below(8);
                }
                1 => {
                    let i = self.below(len + 1);
                    let b = u8::try_from(self.below(256)).unwrap();
                    v.insert(i, b);
                }
                2 if len > 0 => {
                    let i = self.below(len);
                    let n = self.below((len - i).min(16) + 1);
                    v.drain(i..i + n);
                }
                3 if len > 0 => {
                    let i = self.below(len);
                    let n = self.below((len - i).min(64) + 1);
                    let piece = v[i..i + n].to_vec();
                    let at = self.below(v.len() + 1);
                    v.splice(at..at, piece);
                }
                4 => v.truncate(self.below(len + 1)),
                _ if !tokens.is_empty() => {
                    let t = tokens[self.below(tokens.len())];
                    let at = self.below(len + 1);
                    v.splice(at..at, t.iter().copied());
                }
                _ => {}
            }
        }
        v
    }
}

/// What the [`FaultProxy`] does when the client sends bytes matching its trigger.
pub enum Action {
    /// Runs the closure, cuts the connection without forwarding, and refuses every later connection: for
    /// the client the server is gone from that moment.
    Cut(Box<dyn Fn() + Send + Sync>),
    /// Holds the request back this long, then forwards it.
    Delay(Duration),
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that watches the client's bytes for `trigger` (for
/// example `PUT /tfstate/prod/terraform.tfstate?`) and then acts, once.
pub struct FaultProxy {
    pub port: u16,
    pub fired: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: u16, trigger: &str, action: Action) -> FaultProxy {
        FaultProxy::start_at(upstream, trigger, 1, action)
    }

    /// Like [`FaultProxy::start`], acting on the `nth` request that carries `trigger` (1 = the first).
    pub fn start_at(upstream: u16, trigger: &str, nth: usize, action: Action) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let dead = Arc::new(AtomicBool::new(false));
        let action = Arc::new(action);
        let trigger = trigger.as_bytes().to_vec();
        {
            let (fired, seen, stop, dead) =
                (fired.clone(), seen.clone(), stop.clone(), dead.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            client.set_nonblocking(false).unwrap();
                            if dead.load(Ordering::SeqCst) {
                                let _ = client.shutdown(Shutdown::Both);
                                continue;
                            }
                            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                                let _ = client.shutdown(Shutdown::Both);
                                continue;
                            };
                            let (fired, seen, action, trigger, dead) = (
                                fired.clone(),
                                seen.clone(),
                                action.clone(),
                                trigger.clone(),
                                dead.clone(),
                            );
                            thread::spawn(move || {
                                let when = Trigger {
                                    bytes: &trigger,
                                    nth,
                                    seen: &seen,
                                };
                                pump(client, server, &when, &action, &fired, &dead);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        FaultProxy { port, fired, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What a proxy connection watches for: the `nth` occurrence of `bytes` over all connections.
struct Trigger<'a> {
    bytes: &'a [u8],
    nth: usize,
    seen: &'a AtomicUsize,
}

fn pump(
    mut client: TcpStream,
    mut server: TcpStream,
    trigger: &Trigger<'_>,
    action: &Action,
    fired: &AtomicUsize,
    dead: &AtomicBool,
) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(Shutdown::Write);
    });
    let mut window: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        window.extend_from_slice(&buf[..n]);
        let mut hit = false;
        if window
            .windows(trigger.bytes.len())
            .any(|w| w == trigger.bytes)
        {
            // Counted once per occurrence: the window starts afresh after it.
            window.clear();
            hit = fired.load(Ordering::SeqCst) == 0
                && trigger.seen.fetch_add(1, Ordering::SeqCst) + 1 == trigger.nth;
        }
        if window.len() > 4096 {
            window.drain(..window.len() - 1024);
        }
        if hit {
            fired.fetch_add(1, Ordering::SeqCst);
            match action {
                Action::Cut(f) => {
                    dead.store(true, Ordering::SeqCst);
                    f();
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    return;
                }
                Action::Delay(d) => thread::sleep(*d),
            }
        }
        if dead.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            return;
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// A tmpfs mounted on a fresh directory (root only), unmounted on drop.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when mounting is not permitted here (not root, no CAP_SYS_ADMIN).
    pub fn mount(options: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
    }
}

/// Scans `/proc/*/cmdline` of every process, every few milliseconds, for any of `needles`, until dropped.
/// Also counts how many distinct processes it saw (proof that it looked while children ran).
pub struct CmdlineScanner {
    stop: Arc<AtomicBool>,
    found: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<std::collections::HashSet<u32>>>,
    handle: Option<thread::JoinHandle<()>>,
    /// Substring of a command line to count among `matching`.
    pub matching: Arc<Mutex<Vec<String>>>,
}

impl CmdlineScanner {
    pub fn start(needles: Vec<String>, watch: &str) -> CmdlineScanner {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let matching = Arc::new(Mutex::new(Vec::new()));
        let watch = watch.to_owned();
        let handle = {
            let (stop, found, seen, matching) =
                (stop.clone(), found.clone(), seen.clone(), matching.clone());
            thread::spawn(move || {
                let me = std::process::id();
                while !stop.load(Ordering::SeqCst) {
                    for (pid, raw) in cmdlines() {
                        if pid == me {
                            continue;
                        }
                        let line = text(&raw).replace('\0', " ");
                        if seen.lock().unwrap().insert(pid) && line.contains(&watch) {
                            matching.lock().unwrap().push(line.clone());
                        }
                        for n in &needles {
                            if line.contains(n.as_str()) {
                                found.lock().unwrap().push(format!("pid {pid}: {line}"));
                            }
                        }
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        CmdlineScanner {
            stop,
            found,
            seen,
            handle: Some(handle),
            matching,
        }
    }

    /// Stops and returns (command lines holding a needle, command lines matching `watch`).
    pub fn finish(mut self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        (
            self.found.lock().unwrap().clone(),
            self.matching.lock().unwrap().clone(),
        )
    }
}

impl Drop for CmdlineScanner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Counters the suite reports at the end (`cargo test -p hostile -- --nocapture` prints them per test).
pub static FAULTS_INJECTED: AtomicUsize = AtomicUsize::new(0);

pub fn fault() {
    FAULTS_INJECTED.fetch_add(1, Ordering::SeqCst);
}

/// Every process's id and raw `/proc/<pid>/cmdline` (empty for a zombie), read now.
pub fn cmdlines() -> Vec<(u32, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            found.push((pid, raw));
        }
    }
    found
}

/// Live processes (not zombies) with `arg` as one of their arguments.
pub fn processes_with(arg: &str) -> Vec<u32> {
    cmdlines()
        .into_iter()
        .filter(|(_, raw)| raw.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
        .map(|(pid, _)| pid)
        .collect()
}
