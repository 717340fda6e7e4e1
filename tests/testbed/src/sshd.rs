//! A real OpenSSH server on loopback for tests, plus an `ssh-agent` and key helpers.
//!
//! [`Sshd::start`] runs `/usr/sbin/sshd -D -e -f <own config>` as a child with everything in a private temp
//! dir: a generated ed25519 host key and client key, `sshd_config`, `authorized_keys`, a `known_hosts` that
//! trusts the host key and an `ssh_config` with a `Host` alias. No system file is touched (as root, only the
//! privilege-separation directory `/run/sshd` is created when missing, as sshd refuses to start without it).
//!
//! Clients do not talk to sshd directly but to a small TCP front proxy on its own port ([`Sshd::port`]). The
//! proxy is what makes the test bed useful for connection tests: it counts accepted TCP connections
//! ([`Sshd::connections`], to assert connection reuse), can close the next N connections at once
//! ([`Sshd::refuse_next`], to test retries) and can cut every live connection ([`Sshd::cut_connections`], a
//! connection lost mid-command). Because the proxy keeps its port, sshd can be stopped and restarted
//! ([`Sshd::stop`], [`Sshd::restart`]) while clients keep their configuration.
//!
//! Remote commands run with a lean environment: sshd's `SetEnv` puts the chosen directories first in `PATH`
//! and adds the chosen variables (such as `PVE_SIM_STATE`). It also sets `SHLVL=1`: bash (the login shell of
//! root here) sources `~/.bashrc` for commands run by sshd only at shell level 1, and this machine's
//! `.bashrc` takes about half a second (pyenv) and rewrites `PATH`. With `SHLVL=1` inherited, the remote
//! bash is at level 2 and starts in milliseconds.
//!
//! Nothing is left running: [`Drop`] kills sshd, every process it forked (per-connection sshd processes,
//! remote commands, found through `/proc` by parentage and by a marker variable `PVE_TESTBED_SSHD` that every
//! remote session inherits, so even a detached `sleep 30` goes) and stops the proxy. Drop also runs when a
//! test panics. When no Drop can run (the test process is SIGKILLed by a timeout, or Ctrl-C), a lifeline
//! takes over: sshd and ssh-agent run in their own process group under a `sh` wrapper that waits for EOF
//! on a pipe only the test process holds, then kills the group (`PR_SET_PDEATHSIG` would need `unsafe`).
//! Only remote commands still running at that moment (sshd detaches sessions with `setsid`) can outlive it.
//!
//! Works as root and as an ordinary user (then only that user can log in, which is what tests use).
//!
//! ```no_run
//! use testbed::sshd::{Sshd, SshdOptions};
//!
//! let sshd = Sshd::start_with(
//!     SshdOptions::new()
//!         .path_prefix("/path/to/sim/bin")
//!         .env("PVE_SIM_STATE", "/tmp/state"),
//! )?;
//! // With the system client: ssh -F <ssh_config> pve-test 'qm list'
//! let argv = sshd.ssh_argv();
//! // With pve_ssh: SshTarget::new(sshd.alias()) and SshOptions { config_file:
//! // Some(sshd.ssh_config()), known_hosts: Some(sshd.known_hosts()), .. }
//! assert_eq!(argv[3], sshd.alias());
//! sshd.refuse_next(1); // the next connection is closed at once
//! assert_eq!(sshd.connections(), 0);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The sshd binary the test bed runs.
pub const SSHD: &str = "/usr/sbin/sshd";

/// The `Host` alias written to [`Sshd::ssh_config`].
pub const HOST_ALIAS: &str = "pve-test";

/// How long to wait for sshd to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What the remote side of an [`Sshd`] should look like.
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    path_prefix: Vec<PathBuf>,
    env: Vec<(String, String)>,
    extra_config: Vec<String>,
}

impl SshdOptions {
    /// Default options: the system `PATH`, no extra variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `dir` in front of the remote `PATH` (the simulator's bin dir, a fake `qm`...). Later calls come
    /// after earlier ones.
    pub fn path_prefix(mut self, dir: impl Into<PathBuf>) -> Self {
        self.path_prefix.push(dir.into());
        self
    }

    /// Sets a variable for every remote command (for example `PVE_SIM_STATE`). Values may contain spaces
    /// but not double quotes or newlines (sshd's `SetEnv` syntax; [`Sshd::start_with`] refuses them).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds a line to the generated `sshd_config` (for example `ClientAliveInterval 1`). These lines come
    /// first, so they override the generated settings (sshd takes the first value of each keyword).
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra_config.push(line.into());
        self
    }
}

/// Shared log of sshd's stderr, with a condition variable so waiters wake on each new line.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Log {
    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
        self.changed.notify_all();
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done(lines)` returns `Some`, or the deadline passes.
    fn wait_for<T>(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&[String]) -> Option<T>,
    ) -> Option<T> {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(v) = done(&lines) {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = self
                .changed
                .wait_timeout(lines, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A running sshd with its front proxy. See the module documentation.
pub struct Sshd {
    dir: tempfile::TempDir,
    user: String,
    marker: String,
    env: Vec<(String, String)>,
    extra_config: Vec<String>,
    sshd_port: u16,
    proxy: Proxy,
    child: Option<Arc<duct::ReaderHandle>>,
    /// Write end of the pipe the wrapper of sshd waits on (see [`with_lifeline`]).
    lifeline: Option<os_pipe::PipeWriter>,
    log: Arc<Log>,
    /// Lines of the log that belonged to earlier sshd runs (so restarts do not confuse readiness checks).
    log_offset: usize,
}

impl std::fmt::Debug for Sshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sshd")
            .field("dir", &self.dir.path())
            .field("user", &self.user)
            .field("port", &self.proxy.port)
            .field("sshd_port", &self.sshd_port)
            .finish()
    }
}

impl Sshd {
    /// Starts sshd with default [`SshdOptions`].
    pub fn start() -> Result<Sshd> {
        Self::start_with(SshdOptions::new())
    }

    /// Starts sshd and its proxy, and waits until sshd listens.
    pub fn start_with(options: SshdOptions) -> Result<Sshd> {
        crate::require::require_all(&[SSHD, "ssh-keygen"])?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-sshd-")
            .tempdir()
            .context("create the sshd temp dir")?;
        let user = current_user()?;
        if is_root() {
            // sshd's privilege-separation directory; a system path, but sshd cannot run without it.
            std::fs::create_dir_all("/run/sshd").context("create /run/sshd")?;
        }
        let host_key = dir.path().join("ssh_host_ed25519_key");
        keygen(&host_key, "testbed-host")?;
        let client_key = dir.path().join("client_key");
        keygen(&client_key, "testbed-client")?;
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .context("write authorized_keys")?;

        let marker = format!(
            "{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let proxy = Proxy::start()?;
        let mut sshd = Sshd {
            dir,
            user,
            marker,
            env: Vec::new(),
            extra_config: options.extra_config.clone(),
            sshd_port: 0,
            proxy,
            child: None,
            lifeline: None,
            log: Arc::new(Log::default()),
            log_offset: 0,
        };
        sshd.env = sshd.remote_env(&options);
        if let Some((k, v)) = sshd
            .env
            .iter()
            .find(|(k, v)| !valid_env_word(k) || v.contains(['"', '\n', '\0']))
        {
            bail!("remote variable {k}={v:?} cannot be passed through sshd's SetEnv");
        }
        sshd.write_client_files()?;
        sshd.spawn_on_free_port()?;
        // Also trust the direct port, for tests that bypass the proxy.
        let direct = sshd.known_hosts_line(sshd.sshd_port)?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(sshd.known_hosts())
            .and_then(|mut f| std::io::Write::write_all(&mut f, direct.as_bytes()))
            .context("write known_hosts")?;
        Ok(sshd)
    }

    fn remote_env(&self, options: &SshdOptions) -> Vec<(String, String)> {
        let mut path: Vec<String> = options
            .path_prefix
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        path.extend(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(str::to_owned),
        );
        let mut env = vec![
            ("PATH".to_owned(), path.join(":")),
            ("SHLVL".to_owned(), "1".to_owned()),
            ("PVE_TESTBED_SSHD".to_owned(), self.marker.clone()),
        ];
        env.extend(options.env.iter().cloned());
        env
    }

    /// The known_hosts line trusting the host key on `port`.
    pub fn known_hosts_line(&self, port: u16) -> Result<String> {
        let host_pub =
            std::fs::read_to_string(self.host_key_pub_path()).context("read host key")?;
        let mut fields = host_pub.split_whitespace();
        let (kind, blob) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        Ok(format!("[127.0.0.1]:{port} {kind} {blob}\n"))
    }

    fn write_client_files(&self) -> Result<()> {
        std::fs::write(self.known_hosts(), self.known_hosts_line(self.port())?)
            .context("write known_hosts")?;
        let config = format!(
            "Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            port = self.port(),
            user = self.user,
            key = self.client_key().display(),
            kh = self.known_hosts().display(),
        );
        std::fs::write(self.ssh_config(), config).context("write ssh_config")?;
        Ok(())
    }

    fn write_sshd_config(&self, port: u16) -> Result<PathBuf> {
        let d = self.dir.path();
        let set_env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("\"{k}={v}\""))
            .collect();
        let config = format!(
            "{extra}Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {hk}\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             AllowUsers {user}\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             UseDNS no\n\
             LogLevel VERBOSE\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             Subsystem sftp internal-sftp\n\
             SetEnv {set_env}\n",
            hk = d.join("ssh_host_ed25519_key").display(),
            d = d.display(),
            user = self.user,
            set_env = set_env.join(" "),
            extra = self
                .extra_config
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
        let path = d.join("sshd_config");
        std::fs::write(&path, config).context("write sshd_config")?;
        Ok(path)
    }

    fn spawn_on_free_port(&mut self) -> Result<()> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            match self.spawn(port)? {
                Ok(()) => return Ok(()),
                Err(why) => last = why,
            }
        }
        bail!("sshd did not start after 5 ports: {last}")
    }

    /// Starts sshd on `port`; the inner error is a port collision or start failure worth another port.
    fn spawn(&mut self, port: u16) -> Result<std::result::Result<(), String>> {
        let config = self.write_sshd_config(port)?;
        let (expression, lifeline) = with_lifeline(&[
            SSHD.into(),
            "-D".into(),
            "-e".into(),
            "-f".into(),
            config.into_os_string(),
        ])?;
        let handle = expression
            .stderr_to_stdout()
            .unchecked()
            .reader()
            .context("start sshd")?;
        self.lifeline = Some(lifeline);
        let handle = Arc::new(handle);
        self.log_offset = self.log.snapshot().len();
        let reader = Arc::clone(&handle);
        let log = Arc::clone(&self.log);
        // The marker names the pid: the reader thread of a stopped sshd may still append its own marker
        // after a restarted one began logging.
        let exited = format!(
            "<sshd {} exited>",
            handle.pids().first().copied().unwrap_or(0)
        );
        let exit_marker = exited.clone();
        thread::spawn(move || {
            let mut lines = BufReader::new(&*reader);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                log.push(String::from_utf8_lossy(&line).trim_end().to_owned());
                line.clear();
            }
            log.push(exit_marker);
        });
        let offset = self.log_offset;
        let outcome = self.log.wait_for(Instant::now() + START_TIMEOUT, |lines| {
            for l in lines.iter().skip(offset) {
                if l.contains("Server listening on") {
                    return Some(Ok(()));
                }
                if *l == exited || l.contains("Bind to port") {
                    return Some(Err(lines[offset..].join("\n")));
                }
            }
            None
        });
        match outcome {
            Some(Ok(())) => {
                self.sshd_port = port;
                self.child = Some(handle);
                self.proxy.set_upstream(port);
                Ok(Ok(()))
            }
            Some(Err(log)) => {
                kill_tree(&handle);
                if log.contains("Address already in use") {
                    Ok(Err(log))
                } else {
                    bail!("sshd failed to start:\n{log}")
                }
            }
            None => {
                kill_tree(&handle);
                bail!(
                    "sshd did not listen within {START_TIMEOUT:?}:\n{}",
                    self.log.snapshot()[offset..].join("\n")
                )
            }
        }
    }

    /// Stops sshd (and every session it runs); the proxy stays, so new connections are closed at once.
    pub fn stop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        let mut pids = descendants(&child.pids());
        pids.extend(marked_processes(&self.marker));
        let _ = child.kill();
        kill_all(&pids);
        self.lifeline = None;
        self.proxy.cut_all();
    }

    /// Starts sshd again on the same port (after [`Sshd::stop`]).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let port = self.sshd_port;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn(port)? {
                Ok(()) => return Ok(()),
                // The old listener may take a moment to release the port.
                Err(why) if Instant::now() > deadline => bail!("sshd did not restart: {why}"),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port clients connect to (the front proxy).
    pub fn port(&self) -> u16 {
        self.proxy.port
    }

    /// The port sshd itself listens on (no counting, no faults).
    pub fn sshd_port(&self) -> u16 {
        self.sshd_port
    }

    /// The login user: the user running the tests.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `Host` alias of [`Sshd::ssh_config`].
    pub fn alias(&self) -> &str {
        HOST_ALIAS
    }

    /// The temp dir holding every file of this sshd.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client's private key (ed25519, no passphrase), authorized for [`Sshd::user`].
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A `known_hosts` trusting this sshd's host key as `[127.0.0.1]:<port>`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// An `ssh_config` with `Host pve-test` (HostName, Port, User, IdentityFile, UserKnownHostsFile).
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// The host's public key file (`ssh-ed25519 AAAA... comment`).
    pub fn host_key_pub_path(&self) -> PathBuf {
        self.dir.path().join("ssh_host_ed25519_key.pub")
    }

    /// Authorizes another public key (a `.pub` file) for [`Sshd::user`].
    pub fn authorize_key(&self, public_key: &Path) -> Result<()> {
        let key = std::fs::read_to_string(public_key)
            .with_context(|| format!("read {}", public_key.display()))?;
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, format!("{}\n", key.trim()).as_bytes())
            })
            .context("append to authorized_keys")
    }

    /// The host key's fingerprint as OpenSSH shows it: `SHA256:...`.
    pub fn host_key_fingerprint(&self) -> Result<String> {
        fingerprint(&self.host_key_pub_path())
    }

    /// The environment every remote command gets (`PATH`, `SHLVL`, the marker, the chosen variables).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// TCP connections accepted by the proxy so far (including refused ones).
    pub fn connections(&self) -> usize {
        self.proxy.state.accepted.load(Ordering::SeqCst)
    }

    /// Successful logins sshd logged so far (`Accepted publickey for ...`).
    pub fn logins(&self) -> usize {
        self.log
            .snapshot()
            .iter()
            .filter(|l| l.contains("Accepted publickey"))
            .count()
    }

    /// Everything sshd wrote to stderr so far (`LogLevel VERBOSE`).
    pub fn log(&self) -> Vec<String> {
        self.log.snapshot()
    }

    /// Makes the proxy close the next `n` connections right after accepting them, before any byte is
    /// exchanged (the client sees the connection closed during the handshake).
    pub fn refuse_next(&self, n: usize) {
        self.proxy.state.refuse.store(n, Ordering::SeqCst);
    }

    /// Cuts every live connection through the proxy (both directions, both ends), as a network failure
    /// would. New connections still work.
    pub fn cut_connections(&self) {
        self.proxy.cut_all();
    }

    /// Freezes (or thaws) every connection through the proxy: bytes are held back in both directions and
    /// nothing is closed, as when the node loses power or a link goes silent. New connections are accepted
    /// but get no answer either.
    pub fn freeze_connections(&self, frozen: bool) {
        self.proxy.state.frozen.store(frozen, Ordering::SeqCst);
    }

    /// `ssh -F <ssh_config> pve-test`: the argv prefix to reach this sshd with the system client.
    pub fn ssh_argv(&self) -> Vec<String> {
        vec![
            "ssh".to_owned(),
            "-F".to_owned(),
            self.ssh_config().display().to_string(),
            HOST_ALIAS.to_owned(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        kill_all(&marked_processes(&self.marker));
        self.proxy.shutdown();
    }
}

/// Shared state of the proxy threads.
#[derive(Default)]
struct ProxyState {
    accepted: AtomicUsize,
    refuse: AtomicUsize,
    upstream: AtomicUsize,
    stopping: AtomicBool,
    frozen: AtomicBool,
    live: Mutex<Vec<TcpStream>>,
}

struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    fn start() -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the ssh proxy")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState::default());
        let st = Arc::clone(&state);
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                let refuse = st
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let upstream = st.upstream.load(Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream as u16)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) {
                    st.live
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend([c3, s3]);
                    let (st1, st2) = (Arc::clone(&st), Arc::clone(&st));
                    thread::spawn(move || pump(client, server, &st1));
                    thread::spawn(move || pump(s2, c2, &st2));
                }
            }
        });
        Ok(Proxy { port, state })
    }

    fn set_upstream(&self, port: u16) {
        self.state.upstream.store(port.into(), Ordering::SeqCst);
    }

    fn cut_all(&self) {
        let mut live = self
            .state
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for s in live.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn shutdown(&self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.cut_all();
    }
}

/// Copies `from` to `to` until either side closes, then closes both directions. While the proxy is
/// frozen, data read is held back (nothing is closed), as on a link that went silent.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &ProxyState) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while state.frozen.load(Ordering::SeqCst) && !state.stopping.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(10));
        }
        if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// A running `ssh-agent -D -a <socket>`, killed on drop.
pub struct SshAgent {
    dir: tempfile::TempDir,
    child: duct::Handle,
    /// Closing it (on drop, or when the test process dies) makes the wrapper kill the agent.
    _lifeline: os_pipe::PipeWriter,
}

impl std::fmt::Debug for SshAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshAgent")
            .field("socket", &self.socket())
            .finish()
    }
}

impl SshAgent {
    /// Starts an agent with an empty key list on a socket in a private temp dir.
    pub fn start() -> Result<SshAgent> {
        crate::require::require("ssh-agent")?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-agent-")
            .tempdir()
            .context("create the agent temp dir")?;
        let socket = dir.path().join("agent.sock");
        let (expression, lifeline) = with_lifeline(&[
            "ssh-agent".into(),
            "-D".into(),
            "-a".into(),
            socket.clone().into_os_string(),
        ])?;
        let child = expression
            .stdout_null()
            .stderr_null()
            .unchecked()
            .start()
            .context("start ssh-agent")?;
        let agent = SshAgent {
            dir,
            child,
            _lifeline: lifeline,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !socket.exists() {
            if Instant::now() > deadline {
                bail!("ssh-agent did not create {}", socket.display());
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(agent)
    }

    /// The agent's socket, for `SSH_AUTH_SOCK`.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// Loads a private key into the agent (`ssh-add`).
    pub fn add(&self, key: &Path) -> Result<()> {
        let out = duct::cmd("ssh-add", [key])
            .env("SSH_AUTH_SOCK", self.socket())
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .context("run ssh-add")?;
        if !out.status.success() {
            bail!(
                "ssh-add {} failed: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        // The child is the lifeline wrapper; the agent is below it.
        let pids = descendants(&self.child.pids());
        let _ = self.child.kill();
        kill_all(&pids);
        let _ = self.child.wait();
    }
}

/// Generates an ed25519 key pair without passphrase at `path` and `path.pub` (`ssh-keygen`).
pub fn keygen(path: &Path, comment: &str) -> Result<()> {
    keygen_with_passphrase(path, comment, "")
}

/// Generates an ed25519 key pair protected by `passphrase` (empty: none).
pub fn keygen_with_passphrase(path: &Path, comment: &str, passphrase: &str) -> Result<()> {
    crate::require::require("ssh-keygen")?;
    let out = duct::cmd!(
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        passphrase,
        "-C",
        comment,
        "-f",
        path
    )
    .stdin_null()
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .context("run ssh-keygen")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The `SHA256:...` fingerprint of a public key file (`ssh-keygen -lf`).
pub fn fingerprint(pub_key: &Path) -> Result<String> {
    let out = duct::cmd!("ssh-keygen", "-l", "-E", "sha256", "-f", pub_key)
        .stdin_null()
        .stderr_capture()
        .read()
        .context("run ssh-keygen -l")?;
    out.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .map(str::to_owned)
        .with_context(|| format!("no fingerprint in `{out}`"))
}

/// The shell wrapper of [`with_lifeline`]: runs the program in the background, waits until its stdin (the
/// lifeline) reaches end of file, then kills its whole process group.
const LIFELINE_WRAPPER: &str = r#""$@" </dev/null &
read -r _ || true
kill -KILL 0"#;

/// An expression running `argv` in a process group of its own, under a `sh` wrapper that kills the group
/// as soon as the returned pipe writer is closed. Drop closes it, and so does the kernel when the test
/// process dies in any way (a panic with `panic = abort`, Ctrl-C, SIGKILL from a test timeout), where no
/// `Drop` runs: the server never outlives the test. (`PR_SET_PDEATHSIG` would need `unsafe`.)
fn with_lifeline(argv: &[std::ffi::OsString]) -> Result<(duct::Expression, os_pipe::PipeWriter)> {
    let (reader, writer) = os_pipe::pipe().context("create the lifeline pipe")?;
    let mut args: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        LIFELINE_WRAPPER.into(),
        "testbed-lifeline".into(),
    ];
    args.extend(argv.iter().cloned());
    let expression = duct::cmd("sh", args)
        .before_spawn(|cmd| {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            Ok(())
        })
        .stdin_file(reader);
    Ok((expression, writer))
}

fn valid_env_word(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn is_root() -> bool {
    proc_status_field("self", "Uid:").is_some_and(|uid| uid.split_whitespace().next() == Some("0"))
}

fn current_user() -> Result<String> {
    let name = duct::cmd!("id", "-un")
        .stdin_null()
        .read()
        .context("run id -un")?;
    Ok(name.trim().to_owned())
}

fn proc_status_field(pid: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
}

/// Every pid under /proc with its parent.
fn process_parents() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(ppid) =
            proc_status_field(&pid.to_string(), "PPid:").and_then(|p| p.parse().ok())
        {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// `roots` and all their descendants.
fn descendants(roots: &[u32]) -> BTreeSet<u32> {
    let parents = process_parents();
    let mut found: BTreeSet<u32> = roots.iter().copied().collect();
    loop {
        let before = found.len();
        for (pid, ppid) in &parents {
            if found.contains(ppid) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// Processes whose environment carries `PVE_TESTBED_SSHD=<marker>` (remote commands of this sshd, even
/// detached ones).
fn marked_processes(marker: &str) -> BTreeSet<u32> {
    let needle = format!("PVE_TESTBED_SSHD={marker}");
    let mut found = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(mut file) = std::fs::File::open(entry.path().join("environ")) else {
            continue;
        };
        let mut env = Vec::new();
        if file.read_to_end(&mut env).is_ok()
            && env.split(|b| *b == 0).any(|var| var == needle.as_bytes())
        {
            found.insert(pid);
        }
    }
    found
}

/// Kills a started wrapper and everything below it.
fn kill_tree(handle: &duct::ReaderHandle) {
    let pids = descendants(&handle.pids());
    let _ = handle.kill();
    kill_all(&pids);
}

fn kill_all(pids: &BTreeSet<u32>) {
    let own = std::process::id();
    let args: Vec<String> = pids
        .iter()
        .filter(|p| **p != own)
        .map(u32::to_string)
        .collect();
    if args.is_empty() {
        return;
    }
    let _ = duct::cmd("kill", std::iter::once("-KILL".to_owned()).chain(args))
        .stdin_null()
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(sshd: &Sshd, command: &str) -> std::process::Output {
        let mut argv = sshd.ssh_argv();
        argv.push(command.to_owned());
        duct::cmd(&argv[0], &argv[1..])
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .unwrap()
    }

    #[test]
    fn system_client_logs_in_with_the_lean_environment() {
        let bin = tempfile::tempdir().unwrap();
        let sshd = Sshd::start_with(
            SshdOptions::new()
                .path_prefix(bin.path())
                .env("PVE_SIM_STATE", "/tmp/sim-state")
                .env("PVE_NOTE", "two words")
                .config_line("ClientAliveInterval 30"),
        )
        .unwrap();
        let started = Instant::now();
        let out = ssh(
            &sshd,
            "echo \"$PATH|$PVE_SIM_STATE\"; id -un; echo \"$PVE_NOTE\"",
        );
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        assert!(
            first.starts_with(&format!("{}:", bin.path().display())),
            "{first}"
        );
        assert!(first.ends_with("|/tmp/sim-state"), "{first}");
        assert_eq!(lines.next(), Some(sshd.user()));
        assert_eq!(lines.next(), Some("two words"));
        assert_eq!(sshd.connections(), 1);
        assert_eq!(sshd.logins(), 1);
        assert!(took < Duration::from_secs(3), "login took {took:?}");
    }

    #[test]
    fn refused_connections_restart_and_no_leftovers() {
        let mut sshd = Sshd::start().unwrap();
        sshd.refuse_next(1);
        assert!(!ssh(&sshd, "true").status.success());
        assert!(ssh(&sshd, "true").status.success());
        assert_eq!(sshd.connections(), 2);
        sshd.stop();
        assert!(!ssh(&sshd, "true").status.success());
        sshd.restart().unwrap();
        assert!(ssh(&sshd, "true").status.success());
        // A detached remote process is found and killed with the sshd.
        let marker = sshd.marker.clone();
        // setsid: detached from the session, so the session's SIGHUP cannot win a race against nohup.
        assert!(
            ssh(&sshd, "setsid sleep 60 </dev/null >/dev/null 2>&1 &")
                .status
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while marked_processes(&marker).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !marked_processes(&marker).is_empty(),
            "the detached process never appeared"
        );
        drop(sshd);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !marked_processes(&marker).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(marked_processes(&marker).is_empty());
    }

    #[test]
    fn agent_holds_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        keygen(&key, "agent-test").unwrap();
        let agent = SshAgent::start().unwrap();
        agent.add(&key).unwrap();
        let listed = duct::cmd!("ssh-add", "-l")
            .env("SSH_AUTH_SOCK", agent.socket())
            .read()
            .unwrap();
        assert!(listed.contains("agent-test"), "{listed}");
        assert!(
            fingerprint(&key.with_extension("pub"))
                .unwrap()
                .starts_with("SHA256:")
        );
    }
}
