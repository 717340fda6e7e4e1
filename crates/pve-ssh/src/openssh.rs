//! The OpenSSH transport: the system `ssh` binary, for configs only `ssh` understands (ProxyJump, Match,
//! `%` tokens) and for tests that put a fake `ssh` first in `PATH`.
//!
//! Every command is one `ssh` process; the connection is shared through a ControlMaster socket in a private
//! temp dir (`ControlPersist` keeps it between commands; [`Transport::disconnect`] ends it with
//! `ssh -O exit`). Host keys: `StrictHostKeyChecking=yes`, or `accept-new` when asked; never `no`.
//! `BatchMode=yes` makes ssh fail instead of prompting. ssh's own failures exit 255 and are classified by
//! their message into the same [`SshError`] variants as the libssh2 transport.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::known_hosts;
use super::{Context, Endpoint, Exit, Job, SshError, Transport};
use pve_common::runner::{Access, LocalCommand};

/// How long an idle master connection stays up between commands.
const CONTROL_PERSIST_SECS: u64 = 120;

/// The OpenSSH transport.
pub(crate) struct OpenSsh {
    control_dir: tempfile::TempDir,
    master_started: bool,
    /// Ends the master connection and removes `control_dir` if the run is interrupted (no destructor
    /// runs then); unregistered when this transport is dropped.
    on_interrupt: Option<pve_common::interrupt::Cleanup>,
}

impl OpenSsh {
    pub(crate) fn new() -> Result<Self, SshError> {
        let control_dir = tempfile::Builder::new()
            .prefix("pve-ssh-")
            .tempdir()
            .map_err(|source| SshError::Io {
                what: "create the ssh control directory".to_owned(),
                cause: source,
            })?;
        Ok(OpenSsh {
            control_dir,
            master_started: false,
            on_interrupt: None,
        })
    }

    fn control_path(&self) -> OsString {
        self.control_dir.path().join("cm").into_os_string()
    }

    /// Options shared by every invocation, then `--` and the destination.
    fn args(&self, cx: &Context<'_>) -> Vec<OsString> {
        let options = cx.options;
        let mut args: Vec<OsString> = Vec::new();
        let mut opt = |o: String| {
            args.push("-o".into());
            args.push(o.into());
        };
        opt("BatchMode=yes".into());
        opt(format!(
            "ConnectTimeout={}",
            options.connect_timeout.as_secs().max(1)
        ));
        opt("ControlMaster=auto".into());
        opt(format!(
            "ControlPath={}",
            self.control_path().to_string_lossy()
        ));
        opt(format!("ControlPersist={CONTROL_PERSIST_SECS}"));
        opt(format!(
            "StrictHostKeyChecking={}",
            if options.accept_new_host_key {
                "accept-new"
            } else {
                "yes"
            }
        ));
        if let Some(kh) = &options.known_hosts {
            opt(format!("UserKnownHostsFile={}", kh.display()));
        }
        opt(format!(
            "ServerAliveInterval={}",
            options.keepalive_interval.as_secs().max(1)
        ));
        opt("ServerAliveCountMax=3".into());
        // Keep ssh's informational chatter ("Permanently added ...") out of the remote stderr.
        opt("LogLevel=ERROR".into());
        if !options.use_agent {
            opt("IdentityAgent=none".into());
        } else if let Some(sock) = &options.agent_socket {
            opt(format!("IdentityAgent={}", sock.display()));
        }
        if options.identity_files.is_empty()
            && cx.resolved.identities.is_empty()
            && cx.resolved.missing.is_empty()
            && !options.default_identities
        {
            opt("IdentityFile=none".into());
        }

        if let Some(config) = &options.config_file {
            args.splice(0..0, ["-F".into(), config.clone().into_os_string()]);
        }
        for key in &options.identity_files {
            args.push("-i".into());
            args.push(key.clone().into_os_string());
        }
        if let Some(port) = cx.target.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        if let Some(user) = &cx.target.user {
            args.push("-l".into());
            args.push(user.into());
        }
        args.push("-T".into());
        args.push("--".into());
        args.push(cx.target.host.clone().into());
        args
    }

    /// The fingerprint of the key the server presents, through `ssh-keyscan` (read-only), preferring the
    /// type ssh complained about.
    fn scan_fingerprint(cx: &Context<'_>, stderr: &str) -> (String, String) {
        let endpoint = &cx.resolved.endpoint;
        let wanted = if stderr.contains("No ED25519") {
            "ssh-ed25519"
        } else if stderr.contains("No ECDSA") {
            "ecdsa-sha2-"
        } else if stderr.contains("No RSA") {
            "ssh-rsa"
        } else {
            ""
        };
        let scan = LocalCommand::new("ssh-keyscan")
            .args([
                "-T",
                &cx.options.connect_timeout.as_secs().max(1).to_string(),
            ])
            .args(["-p", &endpoint.port.to_string(), &endpoint.host]);
        let out = cx.runner.run(Access::ReadOnly, &scan).ok().flatten();
        let text = out.map(|o| o.stdout_text()).unwrap_or_default();
        let keys: Vec<(String, Vec<u8>)> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split_whitespace().skip(1);
                let kind = f.next()?.to_owned();
                let key = known_hosts::decode_key(f.next()?)?;
                Some((kind, key))
            })
            .collect();
        keys.iter()
            .find(|(k, _)| !wanted.is_empty() && k.starts_with(wanted))
            .or_else(|| keys.first())
            .map_or_else(
                || {
                    (
                        "unknown".to_owned(),
                        "unknown (ssh-keyscan failed)".to_owned(),
                    )
                },
                |(k, key)| (k.clone(), known_hosts::fingerprint(key)),
            )
    }

    /// The host-key refusal ssh's message names: a revoked, changed or unknown key.
    fn host_key_error(cx: &Context<'_>, stderr: &str) -> SshError {
        let endpoint = Box::new(cx.resolved.endpoint.clone());
        let known_hosts = cx.known_hosts_path();
        let has = |s: &str| stderr.contains(s);
        let fingerprint = || {
            stderr
                .split_whitespace()
                .find(|w| w.starts_with("SHA256:"))
                .map_or_else(
                    || "unknown".to_owned(),
                    |w| w.trim_end_matches('.').to_owned(),
                )
        };
        // ssh: "ssh-ed25519 key SHA256:... is marked as REVOKED" (or "revoked key").
        if has("REVOKED") || has("revoked") {
            SshError::HostKeyRevoked {
                endpoint,
                fingerprint: fingerprint(),
                known_hosts,
            }
        } else if has("HAS CHANGED") || has("has changed") {
            SshError::HostKeyChanged {
                endpoint,
                fingerprint: fingerprint(),
                known_hosts,
            }
        } else {
            let (key_type, fingerprint) = Self::scan_fingerprint(cx, stderr);
            SshError::HostKeyUnknown {
                endpoint,
                key_type,
                fingerprint,
                known_hosts,
            }
        }
    }

    /// Turns an exit status 255 with ssh's message into the matching error; `None` when the message is
    /// not ssh's (the remote command itself exited 255).
    fn classify(cx: &Context<'_>, job: &Job<'_>, stderr: &str) -> Option<SshError> {
        let endpoint: Endpoint = cx.resolved.endpoint.clone();
        let message = pve_common::runner::stderr_excerpt(stderr.as_bytes(), 6);
        let has = |s: &str| stderr.contains(s);
        let connect = |kind: io::ErrorKind| SshError::Connect {
            endpoint: Box::new(endpoint.clone()),
            cause: io::Error::new(kind, message.clone()),
        };
        Some(
            if has("Host key verification failed") || has("HOST IDENTIFICATION HAS CHANGED") {
                Self::host_key_error(cx, stderr)
            } else if has("Permission denied") || has("Too many authentication failures") {
                SshError::Auth {
                    endpoint: Box::new(endpoint.clone()),
                    tried: format!("ssh: {message}"),
                }
            } else if has("Could not resolve hostname") {
                SshError::Resolve {
                    endpoint: Box::new(endpoint.clone()),
                    cause: io::Error::new(io::ErrorKind::NotFound, message),
                }
            } else if has("Connection refused") {
                connect(io::ErrorKind::ConnectionRefused)
            } else if has("timed out") && has("connect to host") {
                connect(io::ErrorKind::TimedOut)
            } else if has("No route to host") || has("Network is unreachable") {
                connect(io::ErrorKind::HostUnreachable)
            } else if has("kex_exchange_identification")
                || has("banner exchange")
                || has("ssh_exchange_identification")
                || has("Unable to negotiate")
            {
                SshError::Handshake {
                    endpoint: Box::new(endpoint.clone()),
                    message,
                }
            } else if has("closed by remote host")
                || has("Broken pipe")
                || has("client_loop")
                || has("mux_client")
                || has("Timeout, server")
                || has("lost connection")
            {
                job.dropped(&endpoint, message)
            } else if has("Connection closed by") || has("Connection reset") {
                SshError::Handshake {
                    endpoint: Box::new(endpoint.clone()),
                    message,
                }
            } else {
                return None;
            },
        )
    }
}

impl Transport for OpenSsh {
    fn connect(&mut self, cx: &Context<'_>) -> Result<(), SshError> {
        if self.master_started && self.master_alive(cx) {
            return Ok(());
        }
        let probe = Job {
            command: "true",
            stdin: &[],
            timeout: Some(cx.options.connect_timeout * 3),
        };
        let exit = self.exec(cx, &probe, &mut io::sink())?;
        if exit.status != 0 {
            return Err(SshError::Protocol {
                endpoint: Box::new(cx.resolved.endpoint.clone()),
                message: format!(
                    "`true` exited with status {}: {}",
                    exit.status,
                    pve_common::runner::stderr_excerpt(&exit.stderr, 6)
                ),
            });
        }
        Ok(())
    }

    fn exec(
        &mut self,
        cx: &Context<'_>,
        job: &Job<'_>,
        stdout: &mut dyn Write,
    ) -> Result<Exit, SshError> {
        let endpoint = &cx.resolved.endpoint;
        let mut args = self.args(cx);
        args.push(job.command.into());
        pve_common::debug!(
            "ssh: {} {}",
            cx.options.ssh_program.display(),
            pve_common::secret::mask(
                &args
                    .iter()
                    .map(|a| shlex::try_quote(&a.to_string_lossy())
                        .map_or_else(|_| a.to_string_lossy().into_owned(), |q| q.into_owned()))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
        self.stop_master_on_interrupt(cx);
        let (reader, child) = spawn(cx, &args, job.stdin)?;
        let reader = Arc::new(reader);
        self.master_started = true;
        // Killing the local `ssh` is not enough: it handed its stdout to the master connection, which
        // keeps writing into our pipe until the remote command ends. So the master is ended too (as the
        // libssh2 transport drops its session after a timeout); the next command reconnects.
        let watchdog = job.timeout.map(|limit| {
            Watchdog::start(Arc::clone(&reader), self.control_command(cx, "exit"), limit)
        });
        let sink_error = copy_output(&reader, stdout);
        let timed_out = watchdog.is_some_and(Watchdog::stop);
        if let Some(source) = sink_error {
            return Err(job.output_error(source));
        }
        if timed_out {
            self.master_started = false;
            return Err(job.timed_out(endpoint));
        }
        let output = match reader.try_wait() {
            Ok(Some(o)) => {
                drop(child);
                o.clone()
            }
            Ok(None) => {
                let _ = reader.kill();
                return Err(SshError::Protocol {
                    endpoint: Box::new(endpoint.clone()),
                    message: "ssh closed its output but did not exit".to_owned(),
                });
            }
            Err(e) => return Err(spawn_error(cx, e)),
        };
        self.exit_of(cx, job, output)
    }

    fn disconnect(&mut self, cx: &Context<'_>) {
        if !self.master_started {
            return;
        }
        self.master_started = false;
        let _ = cx
            .runner
            .run(Access::ReadOnly, &self.control_command(cx, "exit"));
    }
}

impl OpenSsh {
    /// Registers, once, the clean-up that ends the master connection and removes the control directory if
    /// the run is interrupted.
    fn stop_master_on_interrupt(&mut self, cx: &Context<'_>) {
        if self.on_interrupt.is_some() {
            return;
        }
        let stop = self.control_command(cx, "exit");
        let dir = self.control_dir.path().to_owned();
        self.on_interrupt = Some(pve_common::interrupt::on_interrupt(
            format!("end the ssh master connection in {}", dir.display()),
            move || {
                let _ = stop.expression().run();
                let _ = std::fs::remove_dir_all(&dir);
            },
        ));
    }

    /// What the exit of `ssh` means: ssh's own failure (status 255 with its message, or a silent 255 with
    /// the master connection gone), else the remote command's status.
    fn exit_of(
        &mut self,
        cx: &Context<'_>,
        job: &Job<'_>,
        output: std::process::Output,
    ) -> Result<Exit, SshError> {
        let stderr_text = String::from_utf8_lossy(&output.stderr).into_owned();
        let code = output.status.code();
        if code == Some(255)
            && let Some(error) = Self::classify(cx, job, &stderr_text)
        {
            if error.is_transient_connection() {
                self.master_started = false;
            }
            return Err(error);
        }
        // ssh says nothing (at LogLevel=ERROR) when the master connection it used was cut: a silent 255
        // with the master gone is a dropped session, not the remote command's status.
        if code == Some(255) && stderr_text.trim().is_empty() && !self.master_alive(cx) {
            self.master_started = false;
            return Err(job.dropped(
                &cx.resolved.endpoint,
                "ssh exited with status 255 and the master connection is gone",
            ));
        }
        // Kept to the same size as the libssh2 transport keeps.
        let mut stderr = output.stderr;
        stderr.truncate(super::MAX_CAPTURED_STDERR);
        Ok(match code {
            Some(status) => Exit {
                status,
                signal: None,
                stderr,
            },
            None => Exit {
                status: -1,
                signal: Some(pve_common::runner::describe_status(&output.status)),
                stderr,
            },
        })
    }

    /// `ssh -O <operation>` on this client's master connection.
    fn control_command(&self, cx: &Context<'_>, operation: &str) -> LocalCommand {
        let mut command = LocalCommand::new(&cx.options.ssh_program);
        if let Some(config) = &cx.options.config_file {
            command = command.arg("-F").arg(config);
        }
        command
            .arg("-o")
            .arg(format!(
                "ControlPath={}",
                self.control_path().to_string_lossy()
            ))
            .args(["-O", operation, "--", &cx.target.host])
    }

    fn master_alive(&self, cx: &Context<'_>) -> bool {
        matches!(
            cx.runner.run(Access::ReadOnly, &self.control_command(cx, "check")),
            Ok(Some(o)) if o.status.success()
        )
    }
}

fn spawn_error(cx: &Context<'_>, source: io::Error) -> SshError {
    SshError::Io {
        what: format!("run {}", cx.options.ssh_program.display()),
        cause: source,
    }
}

/// Starts `ssh` with `args`, `stdin` on its standard input, in a process group of its own registered with
/// the interrupt handler (see `runner::Runner::run`). The remote command goes on if the local `ssh` dies,
/// so killing it loses nothing.
fn spawn(
    cx: &Context<'_>,
    args: &[OsString],
    stdin: &[u8],
) -> Result<(duct::ReaderHandle, Option<pve_common::interrupt::Child>), SshError> {
    pve_common::interrupt::spawn_child(false, || {
        let reader = duct::cmd(cx.options.ssh_program.as_os_str(), args)
            .stdin_bytes(stdin.to_vec())
            .stderr_capture()
            .unchecked()
            .before_spawn(|cmd| {
                use std::os::unix::process::CommandExt;
                cmd.process_group(0);
                Ok(())
            })
            .reader()?;
        let pid = reader.pids().first().copied();
        Ok((reader, pid))
    })
    .map_err(|e| spawn_error(cx, e))
}

/// Copies ssh's stdout to `stdout` until it ends. A sink that fails kills ssh and is returned.
fn copy_output(reader: &duct::ReaderHandle, stdout: &mut dyn Write) -> Option<io::Error> {
    let mut source = reader;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match source.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                if let Err(e) = stdout.write_all(&buf[..n]) {
                    let _ = reader.kill();
                    return Some(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Kills `ssh`, and ends the master connection, when the command overstays its timeout.
struct Watchdog {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    timed_out: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(reader: Arc<duct::ReaderHandle>, stop_master: LocalCommand, limit: Duration) -> Self {
        let timed_out = Arc::new(AtomicBool::new(false));
        let (done, done_rx) = mpsc::channel::<()>();
        let struck = Arc::clone(&timed_out);
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
                struck.store(true, Ordering::SeqCst);
                let _ = reader.kill();
                let _ = stop_master.expression().run();
            }
        });
        Watchdog {
            done,
            thread,
            timed_out,
        }
    }

    /// Ends the watch once the output ended. Whether the timeout had struck.
    fn stop(self) -> bool {
        let _ = self.done.send(());
        let _ = self.thread.join();
        self.timed_out.load(Ordering::SeqCst)
    }
}

impl SshError {
    /// Errors after which the master connection is gone.
    fn is_transient_connection(&self) -> bool {
        use pve_common::retry::Transient;
        self.is_transient()
    }
}
