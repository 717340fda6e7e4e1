//! The `testbed` command: up, status, down; loopback only; timing.

use testbed::s3::Versioning;

#[test]
fn cli_up_status_down_on_loopback_only() {
    use std::time::{Duration, Instant};
    use testbed::bed;
    use testbed::ports::listening_sockets;
    use testbed::process::{command, pid_alive};

    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_testbed");
    let started = Instant::now();
    let up = command(exe)
        .args(["up", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let up_time = started.elapsed();
    let stdout = String::from_utf8(up.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&up.stderr);
    // Whatever happens below, stop the daemons.
    struct Down<'a>(&'a std::path::Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = bed::down(self.0);
        }
    }
    let guard = Down(dir.path());
    assert!(up.status.success(), "{stderr}");
    for var in [
        "AWS_ENDPOINT_URL_S3",
        "TESTBED_S3_BUCKET",
        "PROMETHEUS_URL",
        "TESTBED_TF_ROOT",
    ] {
        assert!(
            stdout.contains(&format!("export {var}='")),
            "{var} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.lines().all(|l| l.starts_with("export ")),
        "stdout is data only:\n{stdout}"
    );

    let state = bed::read_state(dir.path()).unwrap().unwrap();
    assert_eq!(
        state.services.len(),
        6,
        "moto, 3 monitoring daemons, the simulated node, the monitoring VM"
    );
    for service in &state.services {
        let sockets = listening_sockets(service.pid).unwrap();
        assert!(!sockets.is_empty(), "{} listens nowhere", service.name);
        for socket in sockets {
            assert!(
                socket.ip().is_loopback(),
                "{} listens on {socket}",
                service.name
            );
        }
    }
    let endpoint = state
        .exports
        .iter()
        .find(|(k, _)| k == "TESTBED_S3_ENDPOINT")
        .unwrap()
        .1
        .clone();
    let s3 = testbed::s3::S3Client::new(
        &endpoint,
        testbed::s3::ACCESS_KEY,
        testbed::s3::SECRET_KEY,
        "us-east-1",
    )
    .unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Enabled);

    // The simulated node answers over real ssh with the exported config, the simulator first in PATH.
    let export = |key: &str| {
        state
            .exports
            .iter()
            .find(|(k, _)| k == key)
            .unwrap()
            .1
            .clone()
    };
    let pvesh = command("ssh")
        .args([
            "-F",
            &export("TESTBED_SSH_CONFIG"),
            &export("TESTBED_SSH_HOST"),
        ])
        .args([
            "pvesh",
            "get",
            "/cluster/resources",
            "--type",
            "vm",
            "--output-format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        pvesh.status.success(),
        "{}",
        String::from_utf8_lossy(&pvesh.stderr)
    );
    let guests: serde_json::Value = serde_json::from_slice(&pvesh.stdout).unwrap();
    assert_eq!(guests.as_array().unwrap().len(), 3, "{guests}");
    assert!(
        std::path::Path::new(&export("PVE_SIM_STATE"))
            .join("guests/100.json")
            .is_file()
    );

    // The monitoring VM answers `docker ps` over real ssh, in docker's format, and its Grafana is healthy.
    let port = export("TESTBED_VM_SSH_PORT");
    let docker = command("ssh")
        .args(["-p", &port, "-i", &export("TESTBED_VM_SSH_KEY")])
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            export("TESTBED_VM_SSH_KNOWN_HOSTS")
        ))
        .arg("127.0.0.1")
        .arg(r"docker ps --format '{{.Names}}\t{{.Status}}'")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&docker.stdout),
        "alertmanager\tUp 2 hours\ngrafana\tUp 2 hours (healthy)\nprometheus\tUp 2 hours\n",
        "{}",
        String::from_utf8_lossy(&docker.stderr)
    );
    let (status, health) =
        testbed::http::get(&format!("{}/api/health", export("GRAFANA_URL"))).unwrap();
    assert_eq!(status, 200, "{health}");

    // A tool runs a plain `terraform init` in a copied environment: the inline backend reaches S3.
    let tf_root = state
        .exports
        .iter()
        .find(|(k, _)| k == "TESTBED_TF_ROOT")
        .unwrap()
        .1
        .clone();
    let plain = |args: &[&str]| {
        command("terraform")
            .args(args)
            .current_dir(std::path::Path::new(&tf_root).join("lab"))
            .envs(state.exports.iter().map(|(k, v)| (k, v)))
            .env("TF_DATA_DIR", dir.path().join("plain-tf-data"))
            .output()
            .unwrap()
    };
    let init = plain(&["init", "-input=false", "-no-color"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let plan = plain(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "nothing applied yet: {}",
        String::from_utf8_lossy(&plan.stderr)
    );

    let env = command(exe)
        .args(["env", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(env.stdout).unwrap(), stdout);
    for service in &state.services {
        let pidfile = dir.path().join(format!("{}.pid", service.name));
        assert_eq!(
            std::fs::read_to_string(pidfile).unwrap().trim(),
            service.pid.to_string()
        );
    }

    let status = command(exe)
        .args(["status", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&status.stdout).lines().count(), 6);

    let started = Instant::now();
    let down = command(exe)
        .args(["down", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let down_time = started.elapsed();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(state.services.iter().all(|s| !pid_alive(s.pid)));
    assert!(!dir.path().join("moto_server.pid").exists());
    drop(guard);
    let status = command(exe)
        .args(["status", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    eprintln!("testbed up {up_time:?}, down {down_time:?}");
    assert!(
        up_time + down_time < Duration::from_secs(10),
        "up {up_time:?} + down {down_time:?}"
    );
}

/// `testbed up --nodes 3 --cluster 2 --down pve-prod`: one node per environment on its own loopback port,
/// reachable through the fleet's ssh_config by node name (pve-prod down: its port refuses); the two cluster members list each other's guests with their node and
/// share the storage `nas` (`shared: 1`), whose backups both see.
#[test]
fn cli_up_fleet_of_three_with_a_cluster_of_two() {
    use testbed::bed;
    use testbed::process::command;

    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_testbed");
    let up = command(exe)
        .args([
            "up",
            "--no-monitoring",
            "--nodes",
            "3",
            "--cluster",
            "2",
            "--down",
            "pve-prod",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    struct Down<'a>(&'a std::path::Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = bed::down(self.0);
        }
    }
    let _guard = Down(dir.path());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let stdout = String::from_utf8(up.stdout).unwrap();
    let export = |name: &str| {
        let prefix = format!("export {name}='");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"))
            .to_owned()
    };
    let ssh_config = export("TESTBED_FLEET_SSH_CONFIG");
    let known_hosts = export("TESTBED_FLEET_KNOWN_HOSTS");
    for env in ["PROD", "LAB", "MONITORING"] {
        assert!(std::path::Path::new(&export(&format!("TESTBED_FLEET_STATE_{env}"))).is_dir());
    }
    let pvesh = |node: &str, path: &str, extra: &[&str]| -> serde_json::Value {
        let out = command("ssh")
            .args(["-F", &ssh_config, "-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={known_hosts}"))
            .args([node, "pvesh", "get", path])
            .args(extra)
            .args(["--output-format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{node} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The node started down refuses connections.
    let refused = command("ssh")
        .args(["-F", &ssh_config, "-o", "BatchMode=yes", "pve-prod", "true"])
        .output()
        .unwrap();
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("refused"),
        "{why}"
    );
    // The members: both nodes, every guest of both with its node.
    let resources = pvesh("pve-lab", "/cluster/resources", &["--type", "vm"]);
    let mut on: Vec<(u64, String)> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["vmid"].as_u64().unwrap(),
                r["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    on.sort();
    assert_eq!(
        on,
        [
            (200, "pve-lab".to_owned()),
            (201, "pve-lab".to_owned()),
            (300, "pve-mon".to_owned())
        ]
    );
    for node in ["pve-lab", "pve-mon"] {
        let storages = pvesh(
            node,
            &format!("/nodes/{node}/storage"),
            &["--content", "backup"],
        );
        let nas = storages
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["storage"] == "nas")
            .unwrap_or_else(|| panic!("{node}: no nas in {storages}"));
        assert_eq!(nas["shared"], 1);
        // The shared storage's backups, seen from either member, through the other member's node path too.
        for of in ["pve-lab", "pve-mon"] {
            let content = pvesh(
                node,
                &format!("/nodes/{of}/storage/nas/content"),
                &["--content", "backup"],
            );
            let mut vmids: Vec<u64> = content
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["vmid"].as_u64().unwrap())
                .collect();
            vmids.sort_unstable();
            assert_eq!(vmids, [200, 201, 300], "{node} asking for {of}");
        }
    }
}
