//! A simulated `docker` CLI for the monitoring VM of the bed: `docker ps` (with `-a`, `-q`, `--no-trunc` and
//! `--format`), `docker stop`, `docker start` and `docker restart`, acting on a JSON state file
//! (`$DOCKER_SIM_STATE`). The monitoring VM runs its stack (Prometheus, Grafana, Alertmanager) in containers;
//! rebuild-monitoring asks `docker ps` over SSH which of them are up, so this is what the VM's sshd puts first
//! in `PATH` (the `docker-sim` binary, linked as `docker`).
//!
//! Output follows the Docker CLI (25.x): the default table has the columns `CONTAINER ID`, `IMAGE`,
//! `COMMAND`, `CREATED`, `STATUS`, `PORTS`, `NAMES` separated by at least three spaces; ids are cut to 12
//! characters and commands to 20 (with `…`) unless `--no-trunc`; statuses read `Up 2 hours`,
//! `Up 5 minutes (healthy)`, `Up 3 days (Paused)`, `Restarting (1) 4 seconds ago`, `Exited (137) 2 minutes ago`
//! or `Created`; durations are Docker's `HumanDuration`; the newest container comes first. A `--format`
//! template takes `{{.ID}}`, `{{.Image}}`, `{{.Command}}`, `{{.RunningFor}}`, `{{.Status}}`, `{{.Ports}}`,
//! `{{.Names}}`, `{{.State}}`, with `\t` and `\n` written as two characters (the CLI turns them into a tab
//! and a newline) and an optional `table ` prefix that adds the header line. Without a daemon
//! (`"daemon": false`), every command fails as the CLI does when the socket is missing.
//!
//! ```text
//! DOCKER_SIM_STATE=/tmp/vm/docker.json docker ps --format '{{.Names}}: {{.Status}}'
//! alertmanager: Up 2 hours
//! grafana: Up 2 hours (healthy)
//! ```

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The variable naming the state file.
pub const STATE_ENV: &str = "DOCKER_SIM_STATE";

/// What the CLI prints when the daemon does not answer.
pub const NO_DAEMON: &str = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

/// A container's state, as `docker inspect` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Running, frozen.
    Paused,
    /// Between two runs of a restart policy.
    Restarting,
    /// Stopped.
    Exited,
}

/// One container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Its name (without the leading `/`).
    pub name: String,
    /// `prom/prometheus:v2.53.0`.
    pub image: String,
    /// Entry point and arguments, as one line.
    pub command: String,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Its state.
    pub state: ContainerState,
    /// When it was last started.
    pub started_at: i64,
    /// When it last stopped.
    pub finished_at: i64,
    /// The last exit code.
    pub exit_code: i32,
    /// `healthy`, `unhealthy` or `starting`, for images with a health check.
    #[serde(default)]
    pub health: Option<String>,
    /// The published ports, as `docker ps` prints them.
    #[serde(default)]
    pub ports: String,
}

/// The whole state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerState {
    /// Whether the daemon answers.
    pub daemon: bool,
    /// The containers, in creation order.
    pub containers: Vec<Container>,
}

impl DockerState {
    /// The monitoring VM's stack, started `age` seconds before `now`: prometheus, grafana (with a health
    /// check) and alertmanager, all running.
    pub fn monitoring_stack(now: i64, age: i64) -> DockerState {
        let c = |n: u8, name: &str, image: &str, command: &str, port: u16, health: Option<&str>| {
            Container {
                id: format!("{:02x}", n).repeat(32),
                name: name.to_owned(),
                image: image.to_owned(),
                command: command.to_owned(),
                created: now - age - 60 + i64::from(n),
                state: ContainerState::Running,
                started_at: now - age,
                finished_at: 0,
                exit_code: 0,
                health: health.map(str::to_owned),
                ports: format!("0.0.0.0:{port}->{port}/tcp, :::{port}->{port}/tcp"),
            }
        };
        DockerState {
            daemon: true,
            containers: vec![
                c(
                    0x3a,
                    "prometheus",
                    "prom/prometheus:v2.53.0",
                    "/bin/prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus",
                    9090,
                    None,
                ),
                c(
                    0x4b,
                    "grafana",
                    "grafana/grafana:10.4.2",
                    "/run.sh",
                    3000,
                    Some("healthy"),
                ),
                c(
                    0x5c,
                    "alertmanager",
                    "prom/alertmanager:v0.27.0",
                    "/bin/alertmanager --config.file=/etc/alertmanager/alertmanager.yml",
                    9093,
                    None,
                ),
            ],
        }
    }

    /// Reads the state file.
    pub fn load(path: &Path) -> Result<DockerState> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the state file (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Stops `name` as `docker stop` does (SIGTERM honoured: exit code 0) at `now`.
    pub fn stop(&mut self, name: &str, now: i64) -> bool {
        match self.containers.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                if matches!(c.state, ContainerState::Running | ContainerState::Paused) {
                    c.state = ContainerState::Exited;
                    c.finished_at = now;
                    c.exit_code = 0;
                }
                true
            }
            None => false,
        }
    }

    /// Starts `name` at `now`.
    pub fn start(&mut self, name: &str, now: i64) -> bool {
        match self.containers.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                if c.state != ContainerState::Running {
                    c.state = ContainerState::Running;
                    c.started_at = now;
                }
                true
            }
            None => false,
        }
    }
}

/// Docker's `HumanDuration` (github.com/docker/go-units).
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}s");
    if s < 1 {
        "Less than a second".to_owned()
    } else if s == 1 {
        "1 second".to_owned()
    } else if s < 60 {
        plural(s, "second")
    } else if s / 60 == 1 {
        "About a minute".to_owned()
    } else if s / 60 < 60 {
        plural(s / 60, "minute")
    } else {
        // Rounded to the nearest hour from here on, as go-units does; years are not.
        let hours = (s + 1800) / 3600;
        if hours == 1 {
            "About an hour".to_owned()
        } else if hours < 48 {
            plural(hours, "hour")
        } else if hours < 24 * 7 * 2 {
            plural(hours / 24, "day")
        } else if hours < 24 * 30 * 2 {
            plural(hours / 24 / 7, "week")
        } else if hours < 24 * 365 * 2 {
            plural(hours / 24 / 30, "month")
        } else {
            plural(s / 3600 / 24 / 365, "year")
        }
    }
}

impl Container {
    /// The STATUS column.
    pub fn status(&self, now: i64) -> String {
        match self.state {
            ContainerState::Created => "Created".to_owned(),
            ContainerState::Running | ContainerState::Paused => {
                let mut s = format!("Up {}", human_duration(now - self.started_at));
                if self.state == ContainerState::Paused {
                    s.push_str(" (Paused)");
                } else if let Some(h) = &self.health {
                    if h == "starting" {
                        s.push_str(" (health: starting)");
                    } else {
                        s.push_str(&format!(" ({h})"));
                    }
                }
                s
            }
            ContainerState::Restarting => format!(
                "Restarting ({}) {} ago",
                self.exit_code,
                human_duration(now - self.finished_at)
            ),
            ContainerState::Exited => format!(
                "Exited ({}) {} ago",
                self.exit_code,
                human_duration(now - self.finished_at)
            ),
        }
    }

    fn state_word(&self) -> &'static str {
        match self.state {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Exited => "exited",
        }
    }

    fn field(&self, name: &str, now: i64, trunc: bool) -> Option<String> {
        Some(match name {
            "ID" => {
                if trunc {
                    self.id.chars().take(12).collect()
                } else {
                    self.id.clone()
                }
            }
            "Image" => self.image.clone(),
            "Command" => {
                let chars: Vec<char> = self.command.chars().collect();
                if trunc && chars.len() > 20 {
                    format!("\"{}…\"", chars[..19].iter().collect::<String>())
                } else {
                    format!("\"{}\"", self.command)
                }
            }
            "RunningFor" => format!("{} ago", human_duration(now - self.created)),
            "Status" => self.status(now),
            "Ports" => {
                if self.state == ContainerState::Running {
                    self.ports.clone()
                } else {
                    String::new()
                }
            }
            "Names" => self.name.clone(),
            "State" => self.state_word().to_owned(),
            _ => return None,
        })
    }
}

fn header(name: &str) -> &'static str {
    match name {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "RunningFor" => "CREATED",
        "Status" => "STATUS",
        "Ports" => "PORTS",
        "Names" => "NAMES",
        _ => "STATE",
    }
}

/// One piece of a template.
enum Piece {
    Text(String),
    Field(String),
}

fn parse_template(format: &str) -> Result<Vec<Piece>, String> {
    let format = format.replace("\\t", "\t").replace("\\n", "\n");
    let mut pieces = Vec::new();
    let mut rest = format.as_str();
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "template parsing error: template: :1: unclosed action".to_owned())?;
        let action = after[..close].trim();
        let field = action.strip_prefix('.').ok_or_else(|| {
            format!("template parsing error: template: :1: function \"{action}\" not defined")
        })?;
        pieces.push(Piece::Field(field.to_owned()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// The result of one command: stdout, stderr, exit code.
pub type Output = (String, String, i32);

fn usage_error(message: &str) -> Output {
    (
        String::new(),
        format!("{message}\nSee 'docker --help'.\n"),
        125,
    )
}

/// `docker ps [OPTIONS]` on `state` at `now`.
pub fn ps(state: &DockerState, args: &[String], now: i64) -> Output {
    let mut all = false;
    let mut quiet = false;
    let mut trunc = true;
    let mut format: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-a" | "--all" => all = true,
            "-q" | "--quiet" => quiet = true,
            "--no-trunc" => trunc = false,
            "-aq" | "-qa" => {
                all = true;
                quiet = true;
            }
            "--format" => {
                i += 1;
                match args.get(i) {
                    Some(f) => format = Some(f.clone()),
                    None => return usage_error("flag needs an argument: --format"),
                }
            }
            _ => {
                if let Some(f) = a.strip_prefix("--format=") {
                    format = Some(f.to_owned());
                } else {
                    return usage_error(&format!("unknown flag: {a}"));
                }
            }
        }
        i += 1;
    }
    let mut shown: Vec<&Container> = state
        .containers
        .iter()
        .filter(|c| {
            all || matches!(
                c.state,
                ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
            )
        })
        .collect();
    shown.sort_by_key(|c| std::cmp::Reverse(c.created));
    if quiet {
        let out: String = shown
            .iter()
            .map(|c| format!("{}\n", c.field("ID", now, trunc).unwrap_or_default()))
            .collect();
        return (out, String::new(), 0);
    }
    let (table, template) = match &format {
        None => (
            true,
            "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
                .to_owned(),
        ),
        Some(f) => match f.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start().to_owned()),
            None => (false, f.clone()),
        },
    };
    let pieces = match parse_template(&template) {
        Ok(p) => p,
        Err(e) => return (String::new(), format!("{e}\n"), 1),
    };
    let render = |c: Option<&Container>| -> Result<String, String> {
        let mut line = String::new();
        for p in &pieces {
            match p {
                Piece::Text(t) => line.push_str(t),
                Piece::Field(f) => match c {
                    None => line.push_str(header(f)),
                    Some(c) => line.push_str(&c.field(f, now, trunc).ok_or_else(|| {
                        format!(
                            "template: :1:2: executing \"\" at <.{f}>: can't evaluate field {f} in type *formatter.ContainerContext"
                        )
                    })?),
                },
            }
        }
        Ok(line)
    };
    let mut rows = Vec::new();
    if table {
        match render(None) {
            Ok(h) => rows.push(h),
            Err(e) => return (String::new(), format!("{e}\n"), 1),
        }
    }
    for c in shown {
        match render(Some(c)) {
            Ok(line) => rows.push(line),
            Err(e) => return (String::new(), format!("{e}\n"), 1),
        }
    }
    let out = if table {
        align(&rows)
    } else {
        rows.concat_lines()
    };
    (out, String::new(), 0)
}

trait ConcatLines {
    fn concat_lines(&self) -> String;
}

impl ConcatLines for Vec<String> {
    fn concat_lines(&self) -> String {
        self.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// The CLI's tabwriter: tab-separated cells padded to the widest of their column plus three spaces.
fn align(rows: &[String]) -> String {
    let cells: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Runs `docker ARGS` against the state file at `path` at `now`.
pub fn run(path: &Path, args: &[String], now: i64) -> Result<Output> {
    let mut state = DockerState::load(path)?;
    if !state.daemon {
        return Ok((String::new(), format!("{NO_DAEMON}\n"), 1));
    }
    let Some(command) = args.first() else {
        return Ok(usage_error("docker: 'docker' requires a command"));
    };
    let rest = &args[1..];
    match command.as_str() {
        "ps" => Ok(ps(&state, rest, now)),
        "stop" | "start" | "restart" => {
            if rest.is_empty() {
                return Ok(usage_error(&format!(
                    "\"docker {command}\" requires at least 1 argument."
                )));
            }
            let mut out = String::new();
            let mut err = String::new();
            for name in rest {
                let found = match command.as_str() {
                    "stop" => state.stop(name, now),
                    "start" => state.start(name, now),
                    _ => state.stop(name, now) && state.start(name, now),
                };
                if found {
                    out.push_str(&format!("{name}\n"));
                } else {
                    err.push_str(&format!(
                        "Error response from daemon: No such container: {name}\n"
                    ));
                }
            }
            state.save(path)?;
            Ok((out, err.clone(), if err.is_empty() { 0 } else { 1 }))
        }
        other => Ok(usage_error(&format!(
            "docker: '{other}' is not a docker command."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn human_durations_match_docker() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (45, "45 seconds"),
            (90, "About a minute"),
            (600, "10 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (7200, "2 hours"),
            (3 * 86400, "3 days"),
            (20 * 86400, "2 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn ps_formats_as_the_cli() {
        let mut st = DockerState::monitoring_stack(NOW, 7200);
        let (out, _, code) = ps(&st, &args(&["--format", "{{.Names}}\\t{{.Status}}"]), NOW);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "alertmanager\tUp 2 hours\ngrafana\tUp 2 hours (healthy)\nprometheus\tUp 2 hours\n"
        );
        st.stop("alertmanager", NOW - 120);
        let (out, _, _) = ps(&st, &args(&["--format", "{{.Names}}\\t{{.Status}}"]), NOW);
        assert!(!out.contains("alertmanager"), "{out}");
        let (out, _, _) = ps(
            &st,
            &args(&["-a", "--format", "{{.Names}}\\t{{.Status}}"]),
            NOW,
        );
        assert!(
            out.starts_with("alertmanager\tExited (0) 2 minutes ago\n"),
            "{out}"
        );
        let (out, _, _) = ps(&st, &[], NOW);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("CONTAINER ID   IMAGE  ") && lines[0].ends_with("   NAMES"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("4b4b4b4b4b4b   grafana/grafana:10.4.2    \"/run.sh\"   "),
            "{out}"
        );
        assert!(out.contains("\"/bin/prometheus --c…\""), "{out}");
        let (out, _, _) = ps(
            &st,
            &args(&["--format", "table {{.Names}}\\t{{.State}}"]),
            NOW,
        );
        assert!(
            out.starts_with("NAMES        STATE\ngrafana      running\n"),
            "{out}"
        );
        let (_, err, code) = ps(&st, &args(&["--format", "{{.Nope}}"]), NOW);
        assert_eq!(code, 1);
        assert!(err.contains("can't evaluate field Nope"), "{err}");
        let (_, err, code) = ps(&st, &args(&["--bogus"]), NOW);
        assert_eq!((code, err.contains("unknown flag: --bogus")), (125, true));
    }

    #[test]
    fn stop_start_and_a_dead_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.json");
        DockerState::monitoring_stack(NOW, 60).save(&path).unwrap();
        let (out, _, code) = run(&path, &args(&["stop", "grafana"]), NOW).unwrap();
        assert_eq!((out.as_str(), code), ("grafana\n", 0));
        let (_, err, code) = run(&path, &args(&["stop", "nope"]), NOW).unwrap();
        assert_eq!(code, 1);
        assert!(err.contains("No such container: nope"));
        let (out, _, _) = run(&path, &args(&["ps", "-aq"]), NOW).unwrap();
        assert_eq!(out.lines().count(), 3);
        run(&path, &args(&["start", "grafana"]), NOW + 5).unwrap();
        let (out, _, _) = run(
            &path,
            &args(&["ps", "--format", "{{.Names}} {{.Status}}"]),
            NOW + 10,
        )
        .unwrap();
        assert!(out.contains("grafana Up 5 seconds (healthy)"), "{out}");
        let mut st = DockerState::load(&path).unwrap();
        st.daemon = false;
        st.save(&path).unwrap();
        let (_, err, code) = run(&path, &args(&["ps"]), NOW).unwrap();
        assert_eq!((code, err.trim_end()), (1, NO_DAEMON));
    }
}
