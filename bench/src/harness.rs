//! Running a command line many times and keeping what matters: wall time per run and the peak RSS of the
//! process tree, both from the same `wait4` (the rusage of a waited-for child covers the descendants it
//! waited for, as `/usr/bin/time -v` reports it). No shell, no `time` process in between: a 2 ms
//! `--version` is measured as 2 ms.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// A command to measure.
#[derive(Clone, Debug)]
pub struct Cmd {
    /// Short name in the table (`check-drift --jobs 1`).
    pub label: String,
    /// Program and arguments.
    pub argv: Vec<OsString>,
    /// Extra environment.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub dir: Option<PathBuf>,
    /// Exit codes that count as success (check-drift exits 2 on drift).
    pub ok_codes: Vec<i32>,
}

impl Cmd {
    /// `label` running `argv`, success = exit 0.
    pub fn new<I, S>(label: &str, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd {
            label: label.to_owned(),
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            dir: None,
            ok_codes: vec![0],
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Accepts these exit codes as success.
    pub fn ok_codes(mut self, codes: &[i32]) -> Self {
        self.ok_codes = codes.to_vec();
        self
    }

    /// The command line as text, for the report.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One finished run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Wall time from spawn to reap.
    pub wall: Duration,
    /// Peak resident set size of the process tree, KiB.
    pub max_rss_kib: u64,
    /// User + system CPU time of the process tree.
    pub cpu: Duration,
}

/// Several runs of one command.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    /// Table label.
    pub label: String,
    /// The command line.
    pub command: String,
    /// Measured runs (warm-up excluded).
    pub runs: usize,
    /// Median wall time, seconds.
    pub median_s: f64,
    /// Fastest run, seconds.
    pub min_s: f64,
    /// Slowest run, seconds.
    pub max_s: f64,
    /// Median CPU time (user + system, whole process tree), seconds.
    pub cpu_s: f64,
    /// Peak RSS of the process tree's largest process, KiB.
    pub max_rss_kib: u64,
    /// Where the peak RSS comes from: `/usr/bin/time` (first warm-up) or `wait4` (highest of the runs,
    /// never below the harness's own RSS).
    pub rss_source: String,
    /// Stdout of the first warm-up run (for checking what was measured).
    #[serde(skip)]
    pub first_stdout: Vec<u8>,
}

/// GNU time (Debian package `time`).
const TIME: &str = "/usr/bin/time";

/// Runs `cmd` once under `/usr/bin/time -f %M` and returns the peak RSS it reports (KiB).
fn rss_under_time(cmd: &Cmd) -> Result<(u64, Vec<u8>)> {
    run_under_time(cmd, true).map(|(_, rss, out)| (rss, out))
}

/// [`rss_under_time`] with the run's wall and CPU time (the `time` process's are negligible).
pub fn run_under_time(cmd: &Cmd, capture: bool) -> Result<(Sample, u64, Vec<u8>)> {
    let out = std::env::temp_dir().join(format!("pve-bench-rss-{}", std::process::id()));
    let mut wrapped = cmd.clone();
    let mut argv: Vec<OsString> = vec![
        TIME.into(),
        "-f".into(),
        "%M".into(),
        "-o".into(),
        out.clone().into(),
    ];
    argv.extend(cmd.argv.iter().cloned());
    wrapped.argv = argv;
    let (sample, stdout) = run_once(&wrapped, capture)?;
    let text = std::fs::read_to_string(&out).context("reading /usr/bin/time's output")?;
    let _ = std::fs::remove_file(&out);
    let rss = text
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .with_context(|| format!("/usr/bin/time printed {text:?}"))?;
    Ok((sample, rss, stdout))
}

/// Runs `cmd` once with output discarded (stdout kept when `capture`), checks its exit code.
pub fn run_once(cmd: &Cmd, capture: bool) -> Result<(Sample, Vec<u8>)> {
    let (program, args) = cmd.argv.split_first().context("empty command")?;
    #[allow(clippy::disallowed_methods)]
    // the harness measures processes; nothing here is a side effect
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command.stdout(if capture {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    for (k, v) in &cmd.env {
        command.env(k, v);
    }
    if let Some(dir) = &cmd.dir {
        command.current_dir(dir);
    }
    let start = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", cmd.display()))?;
    // Drain the pipes on threads so a chatty child never blocks; reap with wait4 for the rusage.
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut buf);
            buf
        })
    });
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut buf);
            buf
        })
    });
    let (status, rss, cpu) = wait4(child.id())?;
    let wall = start.elapsed();
    let out = stdout
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let err = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let code = status.code().unwrap_or(128 + status.signal().unwrap_or(0));
    if !cmd.ok_codes.contains(&code) {
        let text = String::from_utf8_lossy(&err);
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        bail!(
            "{} exited {code}:\n{}",
            cmd.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok((
        Sample {
            wall,
            max_rss_kib: rss,
            cpu,
        },
        out,
    ))
}

/// Waits for `pid` and returns its status, peak RSS (KiB, Linux's unit for `ru_maxrss`) and CPU time.
#[allow(unsafe_code)]
fn wait4(pid: u32) -> Result<(ExitStatus, u64, Duration)> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data that wait4 fills in; zeroed is a valid initial value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet reaped (std's Child is never waited on); the
        // pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok((
        ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
        tv(usage.ru_utime) + tv(usage.ru_stime),
    ))
}

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Measures several commands side by side: `warmup` unmeasured rounds, then `runs` rounds, each round
/// running every command once in turn (interleaved, so a burst of load on the shared machine hits all
/// of them alike).
pub fn compare(cmds: &[Cmd], warmup: usize, runs: usize) -> Result<Vec<Stats>> {
    // Peak RSS comes from the first warm-up, run under /usr/bin/time: a child of this harness starts as
    // a vfork of it, and Linux counts the harness's own RSS in the child's maxrss, so wait4 alone
    // reports at least the harness's size. /usr/bin/time is small; what it reports is the command's.
    let mut rss_by_time: Vec<Option<u64>> = vec![None; cmds.len()];
    let mut first: Vec<Vec<u8>> = vec![Vec::new(); cmds.len()];
    for round in 0..warmup {
        for (i, cmd) in cmds.iter().enumerate() {
            eprintln!("bench:   warm-up {}/{warmup}: {}", round + 1, cmd.label);
            if round == 0 && Path::new(TIME).is_file() {
                let (rss, out) = rss_under_time(cmd)?;
                rss_by_time[i] = Some(rss);
                first[i] = out;
            } else if round == 0 {
                first[i] = run_once(cmd, true)?.1;
            } else {
                run_once(cmd, false)?;
            }
        }
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cmds.len()];
    for round in 0..runs {
        for (i, cmd) in cmds.iter().enumerate() {
            let (s, _) = run_once(cmd, false)?;
            eprintln!(
                "bench:   run {}/{runs}: {:<40} {:>9.3} s (cpu {:>8.3} s) {:>8} KiB",
                round + 1,
                cmd.label,
                s.wall.as_secs_f64(),
                s.cpu.as_secs_f64(),
                s.max_rss_kib
            );
            samples[i].push(s);
        }
    }
    Ok(cmds
        .iter()
        .zip(samples)
        .zip(rss_by_time)
        .zip(first)
        .map(|(((cmd, s), rss), first_stdout)| {
            let walls: Vec<f64> = s.iter().map(|x| x.wall.as_secs_f64()).collect();
            Stats {
                label: cmd.label.clone(),
                command: cmd.display(),
                runs: s.len(),
                median_s: median(&walls),
                min_s: walls.iter().copied().fold(f64::INFINITY, f64::min),
                max_s: walls.iter().copied().fold(0.0, f64::max),
                cpu_s: median(&s.iter().map(|x| x.cpu.as_secs_f64()).collect::<Vec<_>>()),
                max_rss_kib: rss
                    .unwrap_or_else(|| s.iter().map(|x| x.max_rss_kib).max().unwrap_or(0)),
                rss_source: if rss.is_some() { TIME } else { "wait4" }.to_owned(),
                first_stdout,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn measures_a_process_and_its_exit_code() {
        let (s, out) = run_once(&Cmd::new("echo", ["echo", "hi"]), true).unwrap();
        assert_eq!(out, b"hi\n");
        assert!(s.max_rss_kib > 0);
        let err = run_once(&Cmd::new("false", ["false"]), false).unwrap_err();
        assert!(format!("{err:#}").contains("exited 1"));
        run_once(&Cmd::new("false", ["false"]).ok_codes(&[1]), false).unwrap();
    }
}
