//! Debian's Prometheus tools on loopback: node_exporter, Alertmanager and Prometheus.
//!
//! Each daemon keeps its configuration, data and log in a directory of its own, listens on
//! 127.0.0.1 only (Alertmanager's gossip port is switched off with an empty
//! `--cluster.listen-address`) and counts as started once it answers its readiness URL. Prometheus
//! scrapes and evaluates every second so a test sees a metric or an alert within a few seconds.
//! [`WebhookSink`] is an in-test HTTP receiver for Alertmanager's webhook notifications.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::http;
use crate::ports;
use crate::process::{self, Daemon};

/// How long a daemon may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn wait_http_ready(daemon: &mut Daemon, url: &str) -> Result<()> {
    let what = format!("{} at {url}", daemon.name());
    process::wait_until(&what, START_TIMEOUT, || {
        daemon.check_alive()?;
        Ok(http::answers_ok(url))
    })
}

/// `prometheus-node-exporter` with only the textfile collector, reading a directory of its own.
#[derive(Debug)]
pub struct NodeExporter {
    daemon: Option<Daemon>,
    port: u16,
    textfile_dir: PathBuf,
}

impl NodeExporter {
    /// Starts node_exporter with state in `dir` (textfile directory `dir/textfile`) and waits until
    /// it serves `/metrics`.
    pub fn start(dir: &Path) -> Result<NodeExporter> {
        let mut exporter = NodeExporter::spawn(dir, ports::free_port()?)?;
        exporter.wait_ready()?;
        Ok(exporter)
    }

    /// Starts node_exporter on `port` without waiting.
    pub fn spawn(dir: &Path, port: u16) -> Result<NodeExporter> {
        crate::require::require("prometheus-node-exporter")?;
        let textfile_dir = dir.join("textfile");
        create_dir(&textfile_dir)?;
        let mut cmd = process::command("prometheus-node-exporter");
        cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile_dir.display()
            ));
        let daemon = Daemon::spawn("node_exporter", cmd, &dir.join("node_exporter.log"))?;
        Ok(NodeExporter {
            daemon: Some(daemon),
            port,
            textfile_dir,
        })
    }

    /// Waits until `/metrics` answers.
    pub fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/metrics", self.url());
        wait_http_ready(self.daemon.as_mut().context("node_exporter stopped")?, &url)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid (0 once stopped or detached).
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    /// The textfile collector's directory (`*.prom` files there are exported).
    pub fn textfile_dir(&self) -> &Path {
        &self.textfile_dir
    }

    /// Writes `<name>.prom` atomically (temporary file, then rename), as the tools must.
    pub fn write_textfile(&self, name: &str, content: &str) -> Result<()> {
        let tmp = self.textfile_dir.join(format!(".{name}.prom.tmp"));
        let path = self.textfile_dir.join(format!("{name}.prom"));
        std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
    }

    /// The current `/metrics` text.
    pub fn metrics(&self) -> Result<String> {
        let (status, body) = http::get(&format!("{}/metrics", self.url()))?;
        if status != 200 {
            bail!("node_exporter /metrics: HTTP {status}");
        }
        Ok(body)
    }

    /// Stops node_exporter.
    pub fn stop(&mut self) -> Result<()> {
        self.daemon.take().map_or(Ok(()), |mut d| d.stop())
    }

    /// Leaves node_exporter running after this value is gone and returns its pid.
    pub fn detach(mut self) -> u32 {
        self.daemon.take().map_or(0, Daemon::detach)
    }
}

/// `prometheus-alertmanager` with a webhook receiver, no clustering.
#[derive(Debug)]
pub struct Alertmanager {
    daemon: Option<Daemon>,
    port: u16,
    config: PathBuf,
}

impl Alertmanager {
    /// Starts Alertmanager with config, data and log in `dir`, sending every alert to `webhook_url`
    /// (if any), and waits until `/-/ready`.
    pub fn start(dir: &Path, webhook_url: Option<&str>) -> Result<Alertmanager> {
        let mut am = Alertmanager::spawn(dir, ports::free_port()?, webhook_url)?;
        am.wait_ready()?;
        Ok(am)
    }

    /// Starts Alertmanager on `port` without waiting.
    pub fn spawn(dir: &Path, port: u16, webhook_url: Option<&str>) -> Result<Alertmanager> {
        crate::require::require("prometheus-alertmanager")?;
        let data = dir.join("data");
        create_dir(&data)?;
        let config = dir.join("alertmanager.yml");
        std::fs::write(&config, alertmanager_config(webhook_url))
            .with_context(|| format!("writing {}", config.display()))?;
        let mut cmd = process::command("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        let daemon = Daemon::spawn("alertmanager", cmd, &dir.join("alertmanager.log"))?;
        Ok(Alertmanager {
            daemon: Some(daemon),
            port,
            config,
        })
    }

    /// Waits until `/-/ready` answers 200.
    pub fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/-/ready", self.url());
        wait_http_ready(self.daemon.as_mut().context("alertmanager stopped")?, &url)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid (0 once stopped or detached).
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    /// The configuration file written at start.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// POSTs `alerts` (API v2 objects: `labels`, `annotations`, `startsAt`...) to `/api/v2/alerts`.
    pub fn post_alerts(&self, alerts: &Value) -> Result<()> {
        let url = format!("{}/api/v2/alerts", self.url());
        let (status, body) = http::post_json(&url, alerts)?;
        if status != 200 {
            bail!("POST {url}: HTTP {status}: {body}");
        }
        Ok(())
    }

    /// GET `/api/v2/alerts`.
    pub fn alerts(&self) -> Result<Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        let (status, body) = http::get(&url)?;
        if status != 200 {
            bail!("GET {url}: HTTP {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("parsing {url}"))
    }

    /// Stops Alertmanager.
    pub fn stop(&mut self) -> Result<()> {
        self.daemon.take().map_or(Ok(()), |mut d| d.stop())
    }

    /// Leaves Alertmanager running after this value is gone and returns its pid.
    pub fn detach(mut self) -> u32 {
        self.daemon.take().map_or(0, Daemon::detach)
    }
}

/// Alertmanager configuration: one route, one receiver, short waits so tests see notifications soon.
fn alertmanager_config(webhook_url: Option<&str>) -> String {
    let receiver = match webhook_url {
        Some(url) => format!(
            "  - name: webhook\n    webhook_configs:\n      - url: {url:?}\n        send_resolved: true\n"
        ),
        None => "  - name: webhook\n".to_owned(),
    };
    format!(
        "route:\n  receiver: webhook\n  group_by: [alertname]\n  group_wait: 1s\n  \
         group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n{receiver}"
    )
}

/// What Prometheus scrapes and evaluates.
#[derive(Debug, Clone, Default)]
pub struct PrometheusConfig {
    /// node_exporter port to scrape as job `node`.
    pub node_exporter: Option<u16>,
    /// Alertmanager port to send alerts to.
    pub alertmanager: Option<u16>,
    /// Rule files to load (absolute paths).
    pub rule_files: Vec<PathBuf>,
}

/// `prometheus` scraping and evaluating every second.
#[derive(Debug)]
pub struct Prometheus {
    daemon: Option<Daemon>,
    port: u16,
    config: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus with config, data and log in `dir`, and waits until `/-/ready`.
    pub fn start(dir: &Path, config: &PrometheusConfig) -> Result<Prometheus> {
        let mut prometheus = Prometheus::spawn(dir, ports::free_port()?, config)?;
        prometheus.wait_ready()?;
        Ok(prometheus)
    }

    /// Starts Prometheus on `port` without waiting.
    pub fn spawn(dir: &Path, port: u16, config: &PrometheusConfig) -> Result<Prometheus> {
        crate::require::require("prometheus")?;
        let data = dir.join("data");
        create_dir(&data)?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, prometheus_config(port, config))
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut cmd = process::command("prometheus");
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            // Re-send active alerts every second (default 1m), so an alert is not held back after a
            // reload or an Alertmanager restart.
            .arg("--rules.alert.resend-delay=1s");
        let daemon = Daemon::spawn("prometheus", cmd, &dir.join("prometheus.log"))?;
        Ok(Prometheus {
            daemon: Some(daemon),
            port,
            config: config_path,
        })
    }

    /// Waits until `/-/ready` answers 200.
    pub fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/-/ready", self.url());
        wait_http_ready(self.daemon.as_mut().context("prometheus stopped")?, &url)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid (0 once stopped or detached).
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    /// The configuration file written at start.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// An instant query: the `data.result` array of `/api/v1/query`.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let mut url = url::Url::parse(&format!("{}/api/v1/query", self.url()))
            .context("building the query URL")?;
        url.query_pairs_mut().append_pair("query", expr);
        let (status, body) = http::get(url.as_str())?;
        if status != 200 {
            bail!("query {expr:?}: HTTP {status}: {body}");
        }
        let doc: Value = serde_json::from_str(&body).context("parsing the query answer")?;
        Ok(doc["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// POST `/-/reload`: re-reads the configuration and rule files (lifecycle API is enabled).
    pub fn reload(&self) -> Result<()> {
        let url = format!("{}/-/reload", self.url());
        let (status, body) = http::post_json(&url, &Value::Null)?;
        if status != 200 {
            bail!("POST {url}: HTTP {status}: {body}");
        }
        Ok(())
    }

    /// GET `/api/v1/rules` (`data.groups`).
    pub fn rules(&self) -> Result<Value> {
        let (status, body) = http::get(&format!("{}/api/v1/rules", self.url()))?;
        if status != 200 {
            bail!("GET /api/v1/rules: HTTP {status}: {body}");
        }
        let doc: Value = serde_json::from_str(&body).context("parsing /api/v1/rules")?;
        Ok(doc["data"]["groups"].clone())
    }

    /// Stops Prometheus.
    pub fn stop(&mut self) -> Result<()> {
        self.daemon.take().map_or(Ok(()), |mut d| d.stop())
    }

    /// Leaves Prometheus running after this value is gone and returns its pid.
    pub fn detach(mut self) -> u32 {
        self.daemon.take().map_or(0, Daemon::detach)
    }
}

fn prometheus_config(port: u16, config: &PrometheusConfig) -> String {
    let mut text = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
    if !config.rule_files.is_empty() {
        text.push_str("rule_files:\n");
        for file in &config.rule_files {
            text.push_str(&format!("  - {:?}\n", file.display().to_string()));
        }
    }
    if let Some(am) = config.alertmanager {
        text.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am}\"]\n"
        ));
    }
    text.push_str(&format!(
        "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    ));
    if let Some(node) = config.node_exporter {
        text.push_str(&format!(
            "  - job_name: node\n    static_configs:\n      - targets: [\"127.0.0.1:{node}\"]\n"
        ));
    }
    text
}

/// node_exporter, Alertmanager and Prometheus wired together, started side by side.
#[derive(Debug)]
pub struct Monitoring {
    /// Scraped by Prometheus as job `node`.
    pub node_exporter: NodeExporter,
    /// Prometheus's Alertmanager.
    pub alertmanager: Alertmanager,
    /// Prometheus.
    pub prometheus: Prometheus,
    _tmp: Option<tempfile::TempDir>,
}

impl Monitoring {
    /// Starts all three in a new temporary directory, Prometheus loading `rule_files`.
    pub fn start(rule_files: &[PathBuf], webhook_url: Option<&str>) -> Result<Monitoring> {
        let tmp = tempfile::Builder::new()
            .prefix("testbed-monitoring-")
            .tempdir()
            .context("creating temporary directory for monitoring")?;
        let mut monitoring = Monitoring::start_in(tmp.path(), rule_files, webhook_url)?;
        monitoring._tmp = Some(tmp);
        Ok(monitoring)
    }

    /// Starts all three under `dir` (`node_exporter/`, `alertmanager/`, `prometheus/`).
    pub fn start_in(
        dir: &Path,
        rule_files: &[PathBuf],
        webhook_url: Option<&str>,
    ) -> Result<Monitoring> {
        let mut monitoring = Monitoring::spawn_in(dir, rule_files, webhook_url)?;
        monitoring.wait_ready()?;
        Ok(monitoring)
    }

    /// Starts all three under `dir` without waiting.
    pub fn spawn_in(
        dir: &Path,
        rule_files: &[PathBuf],
        webhook_url: Option<&str>,
    ) -> Result<Monitoring> {
        crate::require::require_all(&[
            "prometheus-node-exporter",
            "prometheus-alertmanager",
            "prometheus",
        ])?;
        let node_exporter = NodeExporter::spawn(&dir.join("node_exporter"), ports::free_port()?)?;
        let alertmanager =
            Alertmanager::spawn(&dir.join("alertmanager"), ports::free_port()?, webhook_url)?;
        let config = PrometheusConfig {
            node_exporter: Some(node_exporter.port()),
            alertmanager: Some(alertmanager.port()),
            rule_files: rule_files.to_vec(),
        };
        let prometheus = Prometheus::spawn(&dir.join("prometheus"), ports::free_port()?, &config)?;
        Ok(Monitoring {
            node_exporter,
            alertmanager,
            prometheus,
            _tmp: None,
        })
    }

    /// Waits until all three are ready.
    pub fn wait_ready(&mut self) -> Result<()> {
        self.node_exporter.wait_ready()?;
        self.alertmanager.wait_ready()?;
        self.prometheus.wait_ready()
    }
}

/// An HTTP server on loopback that answers 200 to everything and keeps each request body: the
/// receiver of Alertmanager's webhook notifications in tests.
#[derive(Debug)]
pub struct WebhookSink {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl WebhookSink {
    /// Listens on a free loopback port.
    pub fn start() -> Result<WebhookSink> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the webhook sink")?;
        let port = listener
            .local_addr()
            .context("reading the sink's address")?
            .port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let bodies = Arc::clone(&bodies);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve_one(stream, |body| {
                        bodies
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(body);
                    });
                }
            })
        };
        Ok(WebhookSink {
            port,
            bodies,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>/webhook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhook", self.port)
    }

    /// The request bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body, answers 200, returns the body.
/// Reads one request and records its body BEFORE answering, so a client that got its 200 always
/// finds the body in [`WebhookSink::bodies`].
fn serve_one(stream: std::net::TcpStream, record: impl FnOnce(String)) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    record(String::from_utf8_lossy(&body).into_owned());
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_config_lists_targets_and_rules() {
        let text = prometheus_config(
            9090,
            &PrometheusConfig {
                node_exporter: Some(9100),
                alertmanager: Some(9093),
                rule_files: vec![PathBuf::from("/r/a.yml")],
            },
        );
        assert!(text.contains("- \"/r/a.yml\""), "{text}");
        assert!(text.contains("targets: [\"127.0.0.1:9093\"]"), "{text}");
        assert!(text.contains("targets: [\"127.0.0.1:9100\"]"), "{text}");
    }

    #[test]
    fn webhook_sink_keeps_bodies() {
        let sink = WebhookSink::start().unwrap();
        let (status, _) = http::post_json(&sink.url(), &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(status, 200);
        assert_eq!(sink.bodies(), vec!["{\"a\":1}".to_owned()]);
    }
}

/// Answers `GET /api/health` as Grafana does (`{"database":"ok",...}`), 404 for anything else: Grafana is
/// not installable on this machine, and rebuild-monitoring only asks it for its health.
#[derive(Debug)]
pub struct GrafanaStandIn {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl GrafanaStandIn {
    /// Listens on a free loopback port.
    pub fn start() -> Result<GrafanaStandIn> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the Grafana stand-in")?;
        let port = listener
            .local_addr()
            .context("reading the stand-in's address")?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = answer_health(stream);
                }
            })
        };
        Ok(GrafanaStandIn {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn answer_health(stream: std::net::TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
    }
    let (status, body) = if line.starts_with("GET /api/health ") {
        (
            "200 OK",
            r#"{"commit":"stand-in","database":"ok","version":"10.4.0-stand-in"}"#,
        )
    } else {
        ("404 Not Found", r#"{"message":"Not found"}"#)
    };
    let mut s = stream;
    write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Drop for GrafanaStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
