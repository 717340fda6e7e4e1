//! What a run leaves behind for unattended operation, once the report is known: the state file, the
//! Prometheus textfile ([`crate::metrics`]), the pushed alerts ([`crate::notify`]) and the report files with
//! their retention ([`crate::history`]). Every write goes through the runner.
//!
//! The textfile and report directories are created when missing, as check-drift.sh did; one that cannot be
//! created or written is an error on stderr and makes the run exit as errored (2), never a silent skip. An
//! empty `--textfile-dir`/`--report-dir` turns that output off. An unreachable Alertmanager only warns.

use std::collections::BTreeSet;
use std::path::Path;

use pve_common::retry::ThreadSleeper;
use pve_common::runner::{Access, Runner};

use crate::config::{Config, OutputDir};
use crate::report::Report;
use crate::state::State;

/// In dry-run: says which files would be written and where alerts would go.
pub fn dry_run(config: &Config, runner: &Runner) {
    let say = |what: String| {
        let _ = runner.effect(Access::Mutating, what, || Ok::<(), std::io::Error>(()));
    };
    if let Some(t) = &config.textfile {
        say(format!(
            "write: {} (mode 0644, atomically)",
            t.dir.join(crate::metrics::FILE_NAME).display()
        ));
    }
    if let Some(r) = &config.reports {
        say(format!(
            "write: {}/drift-{}-<env>.log and .json (mode 0640), remove report files dated before {}",
            r.dir.display(),
            crate::history::today(),
            crate::history::cutoff(crate::history::today(), config.retention)
        ));
    }
    if let Some(url) = &config.alertmanager_url {
        say(format!("push changed alerts to {url}/api/v2/alerts"));
    }
    if let (Some(path), true) = (&config.state_file, needs_state(config)) {
        say(format!("write: {} (state between runs)", path.display()));
    }
}

fn needs_state(config: &Config) -> bool {
    config.textfile.is_some() || config.alertmanager_url.is_some()
}

/// The directory, created when missing (`mode` for what is created); `false` after an error on stderr.
fn usable(out: &OutputDir, what: &str, mode: u32, runner: &Runner) -> bool {
    if out.dir.is_dir() {
        return true;
    }
    match runner.create_dir_all(&out.dir, mode) {
        Ok(()) => true,
        Err(e) => {
            pve_common::error!(
                "no {what}: {e} (set the option to another directory, or an empty value for none)"
            );
            false
        }
    }
}

/// Writes everything; `false` when something that should have been written was not.
pub fn publish(config: &Config, runner: &Runner, report: &Report) -> bool {
    let mut ok = true;
    let now_ts = jiff::Timestamp::now();
    let now = now_ts.as_second();
    // Decided first: a state file is only kept when something uses it (no metrics directory and no
    // Alertmanager, as on a workstation, leaves no state behind).
    // node_exporter runs as another user: the textfile directory must be readable by it.
    let textfile = config
        .textfile
        .as_ref()
        .filter(|out| usable(out, "metrics", 0o755, runner));
    if config.textfile.is_some() && textfile.is_none() {
        ok = false;
    }
    let needs_state = textfile.is_some() || config.alertmanager_url.is_some();
    let mut state = match (&config.state_file, needs_state) {
        (Some(path), true) => State::load(path),
        _ => State::default(),
    };
    let before = state.clone();
    for env in &report.environments {
        state.record(env, now);
    }

    if let Some(out) = textfile {
        ok &= write_metrics(config, runner, report, &state, out, now);
    }
    if let Some(url) = &config.alertmanager_url {
        notify(runner, url, config, report, &before, &mut state, now_ts);
    }

    if let (Some(path), true) = (&config.state_file, needs_state) {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let written = parent
            .map_or(Ok(()), |p| runner.create_dir_all(p, 0o750))
            .and_then(|()| runner.write_file(path, &state.to_bytes(), 0o640));
        if let Err(e) = written {
            pve_common::warn!(
                "could not save the state between runs ({e}); drift age and alert changes restart next run"
            );
        }
    }

    if let Some(out) = &config.reports {
        if usable(out, "report files", 0o750, runner) {
            ok &= write_reports(config, runner, report, &out.dir);
        } else {
            ok = false;
        }
    }
    ok
}

/// The metrics file: this run's environments, and those of the previous file whose folder still exists.
fn write_metrics(
    config: &Config,
    runner: &Runner,
    report: &Report,
    state: &State,
    out: &OutputDir,
    now: i64,
) -> bool {
    let path = out.dir.join(crate::metrics::FILE_NAME);
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    let checked: BTreeSet<&str> = report.environments.iter().map(|e| e.env.as_str()).collect();
    let carried = crate::metrics::carried_over(&previous, |env| {
        if checked.contains(env) {
            return false;
        }
        let exists =
            crate::config::validate_env_name(env).is_ok() && config.root.join(env).is_dir();
        if !exists {
            pve_common::info!(
                "dropping the metrics of environment {env}: its folder is gone from {}",
                config.root.display()
            );
        }
        exists
    });
    let empty = crate::state::EnvState::default();
    let fresh: Vec<_> = report
        .environments
        .iter()
        .map(|e| (e, state.environments.get(&e.env).unwrap_or(&empty)))
        .collect();
    let text = crate::metrics::render(&fresh, now, &carried);
    if let Err(e) = runner.write_file(&path, text.as_bytes(), 0o644) {
        pve_common::error!("writing the metrics: {e}");
        return false;
    }
    true
}

/// Pushes each environment's alerts; once Alertmanager has them, the state remembers what was pushed.
fn notify(
    runner: &Runner,
    url: &str,
    config: &Config,
    report: &Report,
    before: &State,
    state: &mut State,
    now_ts: jiff::Timestamp,
) {
    let empty = crate::state::EnvState::default();
    let plans: Vec<(String, crate::notify::Plan)> = report
        .environments
        .iter()
        .map(|e| {
            let prev = before.environments.get(&e.env).unwrap_or(&empty);
            (e.env.clone(), crate::notify::plan(e, prev, now_ts))
        })
        .collect();
    let alerts: Vec<serde_json::Value> = plans.iter().flat_map(|(_, p)| p.alerts.clone()).collect();
    if crate::notify::push(runner, url, &alerts, &config.retry, &ThreadSleeper) {
        for (env, p) in plans {
            for note in &p.notes {
                pve_common::info!("alertmanager: {note}");
            }
            let e = state.environments.entry(env).or_default();
            e.drift_alert = p.drift_alert;
            e.failed_alert = p.failed_alert;
        }
    }
}

fn write_reports(config: &Config, runner: &Runner, report: &Report, dir: &Path) -> bool {
    let mut ok = true;
    let today = crate::history::today();
    for env in &report.environments {
        if let Err(e) =
            crate::history::write_env(runner, dir, today, report, env, env.plan_text.as_deref())
        {
            pve_common::error!("{e:#}");
            ok = false;
        }
    }
    match crate::history::prune(runner, dir, crate::history::cutoff(today, config.retention)) {
        Ok(0) => {}
        Ok(n) => pve_common::info!(
            "removed {n} report file(s) older than {} from {}",
            humantime::format_duration(config.retention),
            dir.display()
        ),
        Err(e) => {
            pve_common::error!("{e:#}");
            ok = false;
        }
    }
    ok
}
