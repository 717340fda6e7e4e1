//! The containers of the monitoring VM: after the HTTP checks, `docker ps` over SSH on `root@<vm ip>` (the
//! `monitoring.vm.ip` of the monitoring environment), with the node's SSH settings (ssh_config, identity,
//! `HOMELAB_KNOWN_HOSTS`, `SSH_INIT_MODE`). Prometheus, Grafana and Alertmanager must each have a container
//! that is up; one missing or in another state is named in the report.
//!
//! `docker ps --all --format '{{.Names}}\t{{.Status}}'` is asked rather than the default table: the table's
//! columns are aligned with spaces and its COMMAND and PORTS cells may hold spaces too, while a name never
//! holds a tab. `--all` lists stopped containers as well, so a stopped one is reported with its status
//! (`Exited (137) 2 minutes ago`) instead of as missing.

use pve_common::runner::Runner;
use pve_ssh::node::NodeAccess;
use pve_ssh::{RemoteCommand, SshClient};
use serde::{Deserialize, Serialize};

/// The containers the monitoring VM must run.
pub const EXPECTED: [&str; 3] = ["prometheus", "grafana", "alertmanager"];

/// The `--format` template (`\t` is two characters: docker turns it into a tab).
pub const FORMAT: &str = r"{{.Names}}\t{{.Status}}";

/// The command run on the VM.
pub fn command() -> RemoteCommand {
    RemoteCommand::read_only("docker")
        .args(["ps", "--all", "--format", FORMAT])
        .idempotent()
}

/// One expected container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCheck {
    /// `prometheus`, `grafana`, `alertmanager`.
    pub name: String,
    /// The container's name as docker lists it (null: none found).
    pub container: Option<String>,
    /// Its STATUS (`Up 2 hours`, `Exited (0) 5 minutes ago`; null: none found).
    pub status: Option<String>,
    /// Up (and neither paused nor unhealthy).
    pub ok: bool,
}

/// What `docker ps` showed (the `containers` field of the report).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainersReport {
    /// `user@host` asked.
    pub host: String,
    /// Every expected container is up.
    pub ok: bool,
    /// One entry per expected container, in [`EXPECTED`]'s order; empty when `docker ps` did not answer.
    pub containers: Vec<ContainerCheck>,
    /// Why `docker ps` gave no list (SSH or docker failure).
    pub error: Option<String>,
}

/// Whether a STATUS means running: `Up ...`, but not `(Paused)` nor `(unhealthy)`.
pub fn is_up(status: &str) -> bool {
    (status == "Up" || status.starts_with("Up "))
        && !status.contains("(Paused)")
        && !status.contains("(unhealthy)")
}

/// Whether container `container` is service `name`: the same name, or Compose's `<project>-<name>-<n>`
/// (`<project>_<name>_<n>` for Compose v1).
pub fn is_service(container: &str, name: &str) -> bool {
    if container == name {
        return true;
    }
    ['-', '_'].iter().any(|sep| {
        container
            .rsplit_once(*sep)
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(rest, _)| rest.strip_suffix(name))
            .is_some_and(|project| project.ends_with(*sep))
    })
}

/// `(name, status)` per line of `docker ps --format '{{.Names}}\t{{.Status}}'`.
pub fn parse(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, status) = line.split_once('\t')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_owned(), status.trim().to_owned()))
        })
        .collect()
}

/// Judges the listing: each expected container, the first running one of that service if any.
pub fn judge(listing: &[(String, String)]) -> Vec<ContainerCheck> {
    EXPECTED
        .iter()
        .map(|name| {
            let mine: Vec<&(String, String)> = listing
                .iter()
                .filter(|(c, _)| is_service(c, name))
                .collect();
            let pick = mine
                .iter()
                .find(|(_, s)| is_up(s))
                .or_else(|| mine.first())
                .copied();
            ContainerCheck {
                name: (*name).to_owned(),
                container: pick.map(|(c, _)| c.clone()),
                status: pick.map(|(_, s)| s.clone()),
                ok: pick.is_some_and(|(_, s)| is_up(s)),
            }
        })
        .collect()
}

/// Runs `docker ps` on the VM through `access` and judges it.
pub fn check(access: &NodeAccess, runner: &Runner) -> ContainersReport {
    let target = access.target();
    let host = format!(
        "{}@{}",
        target.user.as_deref().unwrap_or("root"),
        target.host
    );
    let listed = SshClient::new(runner, &target, access.ssh_options())
        .and_then(|mut client| client.ssh_exec_retry(&command()));
    match listed {
        Ok(Some(out)) => {
            let containers = judge(&parse(&out.stdout_text()));
            ContainersReport {
                host,
                ok: containers.iter().all(|c| c.ok),
                containers,
                error: None,
            }
        }
        Ok(None) => ContainersReport {
            host,
            ok: false,
            containers: Vec::new(),
            error: Some("docker ps was not run".to_owned()),
        },
        Err(e) => ContainersReport {
            host,
            ok: false,
            containers: Vec::new(),
            error: Some(format!("{:#}", anyhow::Error::new(e))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for up in [
            "Up 2 hours",
            "Up 5 minutes (healthy)",
            "Up Less than a second",
            "Up 3 seconds (health: starting)",
        ] {
            assert!(is_up(up), "{up}");
        }
        for down in [
            "Exited (0) 2 minutes ago",
            "Restarting (1) 4 seconds ago",
            "Created",
            "Up 3 days (Paused)",
            "Up 2 hours (unhealthy)",
            "Upgrading",
            "",
        ] {
            assert!(!is_up(down), "{down}");
        }
    }

    #[test]
    fn compose_names() {
        assert!(is_service("grafana", "grafana"));
        assert!(is_service("monitoring-grafana-1", "grafana"));
        assert!(is_service("monitoring_grafana_1", "grafana"));
        assert!(!is_service("prometheus-node-exporter", "prometheus"));
        assert!(!is_service("node-prometheus", "prometheus"));
        assert!(!is_service("xgrafana-1", "grafana"));
        assert!(!is_service("grafana-renderer", "grafana"));
    }

    #[test]
    fn a_stopped_and_a_missing_container_are_named() {
        let listing = parse(
            "alertmanager\tExited (137) 2 minutes ago\nprometheus\tUp 2 hours\nnode-exporter\tUp 2 hours\n\n",
        );
        let checks = judge(&listing);
        assert_eq!(
            checks,
            vec![
                ContainerCheck {
                    name: "prometheus".into(),
                    container: Some("prometheus".into()),
                    status: Some("Up 2 hours".into()),
                    ok: true
                },
                ContainerCheck {
                    name: "grafana".into(),
                    container: None,
                    status: None,
                    ok: false
                },
                ContainerCheck {
                    name: "alertmanager".into(),
                    container: Some("alertmanager".into()),
                    status: Some("Exited (137) 2 minutes ago".into()),
                    ok: false
                },
            ]
        );
        // An old stopped copy next to a running one: the running one counts.
        let checks = judge(&parse(
            "mon-grafana-1\tExited (0) 3 days ago\nmon-grafana-2\tUp 1 hour (healthy)\n",
        ));
        assert!(checks[1].ok, "{checks:?}");
    }
}
