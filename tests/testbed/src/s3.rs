//! A real S3 server (moto) on loopback and a small synchronous S3 client for tests.
//!
//! MinIO cannot be installed here, so the bed runs `moto_server`. moto keeps its data in memory; to
//! survive a restart ("MinIO down and back") the bed turns on moto's request recorder and, after
//! starting again on the same port, asks moto to replay the recording. The objects, buckets and
//! versioning settings come back; version ids and timestamps are new ones, as moto generates them
//! again. A test that needs real data loss uses [`S3Server::restart_empty`].
//!
//! The port stays ours while moto is down: this process binds it (without `SO_REUSEADDR`) and hands
//! moto the listening socket through Werkzeug's `WERKZEUG_SERVER_FD`. Stopping moto stops the listening
//! (`shutdown`), so clients are refused, but the port stays bound; starting again listens anew.
//! Before, moto bound the port itself, and any other process could take it while moto was down:
//! the readiness probe and the replay then reached that process, and the restored data was missing.
//!
//! The client is the tools' own (`pve_common::s3`), taking a bucket per call. moto accepts any
//! credentials, so the fixed test keys below only have to look like keys.

use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use command_fds::{CommandFdExt, FdMapping};
use pve_common::runner::Runner;
use pve_common::s3 as pve_s3;
use pve_common::secret::Secret;

use crate::http::agent;
use crate::ports;
use crate::process::{self, Daemon};

/// Access key id the bed hands to Terraform and the tools.
pub const ACCESS_KEY: &str = "testbedaccesskey";
/// Secret key matching [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testbed-secret-key-0123456789";
/// Region of every bucket.
pub const REGION: &str = "us-east-1";

/// How long moto may take to start (its Python imports alone take ~4 s on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The descriptor moto finds its listening socket on.
const MOTO_SOCKET_FD: i32 = 3;

/// A `moto_server` on 127.0.0.1, stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    daemon: Option<Daemon>,
    port: u16,
    /// Bound to `port` for this value's whole life, listening only while moto runs.
    socket: socket2::Socket,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl S3Server {
    /// Starts moto on a free port with its log and recording in a new temporary directory.
    pub fn start() -> Result<S3Server> {
        let tmp = tempfile::Builder::new()
            .prefix("testbed-s3-")
            .tempdir()
            .context("creating temporary directory for moto")?;
        let mut server = S3Server::start_in(tmp.path())?;
        server._tmp = Some(tmp);
        Ok(server)
    }

    /// Starts moto on a free port with its log (`moto.log`) and recording in `dir`.
    pub fn start_in(dir: &Path) -> Result<S3Server> {
        let mut server = S3Server::spawn(dir, ports::free_port()?)?;
        server.wait_ready()?;
        Ok(server)
    }

    /// Starts moto in the background without waiting; call [`S3Server::wait_ready`] before use.
    /// Fails if `port` cannot be bound (another process has it).
    pub fn spawn(dir: &Path, port: u16) -> Result<S3Server> {
        crate::require::require("moto_server")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut server = S3Server {
            daemon: None,
            port,
            socket: hold_port(port)?,
            dir: dir.to_owned(),
            _tmp: None,
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<()> {
        // The connections of an earlier moto linger in TIME_WAIT on this port; listening again
        // needs SO_REUSEADDR, on while listening and off while moto is down (see `hold_port`).
        self.socket
            .set_reuse_address(true)
            .context("setting SO_REUSEADDR")?;
        self.socket
            .listen(128)
            .with_context(|| format!("listening on 127.0.0.1:{}", self.port))?;
        let for_moto: OwnedFd = self
            .socket
            .try_clone()
            .context("duplicating moto's socket")?
            .into();
        let mut cmd = process::command("moto_server");
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: for_moto,
            child_fd: MOTO_SOCKET_FD,
        }])
        .context("passing moto its socket")?;
        // Werkzeug's own hand-over between its reloader and server processes: serve on this socket
        // instead of binding one.
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .env("WERKZEUG_RUN_MAIN", "true")
            .env("WERKZEUG_SERVER_FD", MOTO_SOCKET_FD.to_string())
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", self.recording_path())
            .current_dir(&self.dir);
        self.daemon = Some(Daemon::spawn(
            "moto_server",
            cmd,
            &self.dir.join("moto.log"),
        )?);
        Ok(())
    }

    /// Waits until moto answers HTTP. The socket accepts connections into its backlog before moto
    /// serves them, so an open port proves nothing; an HTTP answer (any status) does.
    pub fn wait_ready(&mut self) -> Result<()> {
        let port = self.port;
        let url = format!("{}/moto-api/", self.endpoint());
        let daemon = self.daemon.as_mut().context("moto is not running")?;
        process::wait_until(
            &format!("moto_server on port {port}"),
            START_TIMEOUT,
            || {
                daemon.check_alive()?;
                Ok(crate::http::answers(&url))
            },
        )
    }

    /// moto's request recording, replayed by [`S3Server::start_again`].
    pub fn recording_path(&self) -> PathBuf {
        self.dir.join("moto-recording.jsonl")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port moto listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid of the running moto (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    /// A client with the test credentials.
    pub fn client(&self) -> S3Client {
        S3Client::at(&self.endpoint()).expect("the loopback endpoint is a valid URL")
    }

    /// Stops moto (the "MinIO is down" state). Connections are refused until [`S3Server::start_again`];
    /// the port stays bound by this process, so nothing else can take it meanwhile.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.stop()?;
            // On Linux, shutting down a listening socket stops the listening and keeps the
            // explicitly bound port; `listen` works on it again.
            self.socket
                .shutdown(Shutdown::Read)
                .with_context(|| format!("closing 127.0.0.1:{} to clients", self.port))?;
            self.socket
                .set_reuse_address(false)
                .context("clearing SO_REUSEADDR")?;
        }
        Ok(())
    }

    /// Starts moto again on the same port and replays the recording, so earlier data is back.
    pub fn start_again(&mut self) -> Result<()> {
        if self.daemon.is_some() {
            bail!("moto is already running on port {}", self.port);
        }
        self.launch()?;
        self.wait_ready()?;
        if self.recording_path().exists() {
            self.drop_torn_recording_lines()?;
            let agent = agent();
            let url = format!("{}/moto-api/recorder/replay-recording", self.endpoint());
            let response = agent
                .post(&url)
                .send_empty()
                .with_context(|| format!("POST {url}"))?;
            if !response.status().is_success() {
                bail!("replaying moto's recording: HTTP {}", response.status());
            }
        }
        Ok(())
    }

    /// moto appends one JSON line per request to its recording; stopping it while it writes leaves a torn
    /// last line, on which its replay fails with HTTP 500 (`json.loads`). Keeps only whole lines.
    fn drop_torn_recording_lines(&self) -> Result<()> {
        let path = self.recording_path();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let whole: Vec<&str> = text
            .lines()
            .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
            .collect();
        if whole.len() != text.lines().count() {
            let mut kept = whole.join("\n");
            if !kept.is_empty() {
                kept.push('\n');
            }
            std::fs::write(&path, kept).with_context(|| format!("rewriting {}", path.display()))?;
        }
        Ok(())
    }

    /// Stops and starts again with the data replayed.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Stops, forgets every bucket and object, and starts again on the same port.
    pub fn restart_empty(&mut self) -> Result<()> {
        self.stop()?;
        let recording = self.recording_path();
        if recording.exists() {
            std::fs::remove_file(&recording)
                .with_context(|| format!("removing {}", recording.display()))?;
        }
        self.launch()?;
        self.wait_ready()
    }

    /// Leaves moto running after this value is gone (for `testbed up`) and returns its pid.
    pub fn detach(mut self) -> u32 {
        self.daemon.take().map_or(0, Daemon::detach)
    }
}

/// A TCP socket bound to 127.0.0.1:`port`, not yet listening. While it listens no other socket can
/// bind the port; while it does not, it holds the port by having no `SO_REUSEADDR` (Linux lets two
/// sockets share a port only if both set it and neither listens), even against one that sets it, as
/// Werkzeug does.
fn hold_port(port: u16) -> Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .context("creating a TCP socket")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding {addr} for moto"))?;
    Ok(socket)
}

/// Versioning state of a bucket, as GetBucketVersioning reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled.
    Unversioned,
    /// Enabled: every put keeps the previous version.
    Enabled,
    /// Was enabled, now suspended ("disabled"): new puts get version id `null`.
    Suspended,
}

/// One entry of ListObjectVersions: an object version or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Object key.
    pub key: String,
    /// Version id (`null` for objects written while versioning was off).
    pub version_id: String,
    /// Whether this is the current version of the key.
    pub is_latest: bool,
    /// Whether this entry is a delete marker.
    pub is_delete_marker: bool,
    /// LastModified as S3 prints it (RFC 3339).
    pub last_modified: String,
    /// Size in bytes (0 for delete markers).
    pub size: u64,
}

/// A synchronous S3 client for tests, over any bucket: a thin layer on [`pve_common::s3`], so the bed
/// and the tools sign, send and parse S3 requests with the same code.
#[derive(Debug, Clone)]
pub struct S3Client {
    endpoint: String,
    access_key: String,
    secret_key: String,
    region: String,
}

impl S3Client {
    /// A client for `endpoint` (for instance `http://127.0.0.1:9000`).
    pub fn new(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> Result<S3Client> {
        url::Url::parse(endpoint).with_context(|| format!("parsing S3 endpoint {endpoint}"))?;
        Ok(S3Client {
            endpoint: endpoint.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
        })
    }

    /// A client for `endpoint` with the test credentials ([`ACCESS_KEY`], [`SECRET_KEY`], [`REGION`]):
    /// for a server known only by its endpoint, or an address where nothing listens.
    pub fn at(endpoint: &str) -> Result<S3Client> {
        S3Client::new(endpoint, ACCESS_KEY, SECRET_KEY, REGION)
    }

    /// The tools' client, bound to `bucket`.
    pub fn bucket(&self, bucket: &str) -> Result<pve_s3::S3Client> {
        let location = pve_s3::S3Location {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: bucket.to_owned(),
            path_style: true,
        };
        let creds = pve_s3::S3Credentials {
            access_key: Secret::new(self.access_key.clone()),
            secret_key: Secret::new(self.secret_key.clone()),
            session_token: None,
        };
        Ok(pve_s3::S3Client::new(
            location,
            &creds,
            Duration::from_secs(30),
        )?)
    }

    /// CreateBucket; an existing bucket of ours is fine.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        match self.bucket(bucket)?.create_bucket(&Runner::new(false)) {
            Err(pve_s3::S3Error::Status { code, .. }) if code == "BucketAlreadyOwnedByYou" => {
                Ok(())
            }
            other => Ok(other.with_context(|| format!("creating bucket {bucket}"))?),
        }
    }

    /// PutBucketVersioning: `Enabled`, or `Suspended` when `enabled` is false.
    pub fn set_versioning(&self, bucket: &str, enabled: bool) -> Result<()> {
        self.bucket(bucket)?
            .set_versioning(&Runner::new(false), enabled)
            .with_context(|| format!("setting versioning of {bucket}"))
    }

    /// GetBucketVersioning.
    pub fn versioning(&self, bucket: &str) -> Result<Versioning> {
        let v = self
            .bucket(bucket)?
            .versioning()
            .with_context(|| format!("reading versioning of {bucket}"))?;
        Ok(match v {
            pve_s3::Versioning::Enabled => Versioning::Enabled,
            pve_s3::Versioning::Suspended => Versioning::Suspended,
            pve_s3::Versioning::Off => Versioning::Unversioned,
        })
    }

    /// PutObject; returns the new version id in a versioned bucket.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<Option<String>> {
        let put = self
            .bucket(bucket)?
            .put(&Runner::new(false), key, body, false)
            .with_context(|| format!("putting s3://{bucket}/{key}"))?;
        Ok(put.and_then(|p| p.version_id).filter(|v| v != "null"))
    }

    /// PutObject with `If-None-Match: *` (how Terraform takes its `.tflock`): false when the key exists.
    pub fn put_object_if_absent(&self, bucket: &str, key: &str, body: &[u8]) -> Result<bool> {
        match self
            .bucket(bucket)?
            .put(&Runner::new(false), key, body, true)
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_precondition_failed() => Ok(false),
            Err(e) => Err(e).with_context(|| format!("putting s3://{bucket}/{key} if absent")),
        }
    }

    /// GetObject of the latest version; `None` for a missing key (a missing bucket is an error).
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        match self.bucket(bucket)?.get(key, None) {
            Ok(body) => Ok(Some(body)),
            Err(pve_s3::S3Error::Status {
                status: 404, code, ..
            }) if code != "NoSuchBucket" => Ok(None),
            Err(e) => Err(e).with_context(|| format!("getting s3://{bucket}/{key}")),
        }
    }

    /// GetObject of one version.
    pub fn get_object_version(&self, bucket: &str, key: &str, version_id: &str) -> Result<Vec<u8>> {
        self.bucket(bucket)?
            .get(key, Some(version_id))
            .with_context(|| format!("getting s3://{bucket}/{key}?versionId={version_id}"))
    }

    /// DeleteObject without a version: a delete marker in a versioned bucket.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.bucket(bucket)?
            .delete(&Runner::new(false), key)
            .with_context(|| format!("deleting s3://{bucket}/{key}"))
    }

    /// The keys under `prefix` that currently exist (latest version not a delete marker).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_object_versions(bucket, prefix)?
            .into_iter()
            .filter(|v| v.is_latest && !v.is_delete_marker)
            .map(|v| v.key)
            .collect())
    }

    /// ListObjectVersions, every page; by key, latest first, newest first.
    pub fn list_object_versions(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectVersion>> {
        self.list_object_versions_paged(bucket, prefix, 1000)
    }

    /// [`Self::list_object_versions`] with `page_size` entries per request (to test paging).
    pub fn list_object_versions_paged(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: u32,
    ) -> Result<Vec<ObjectVersion>> {
        let mut client = self.bucket(bucket)?;
        client.set_list_page_size(page_size);
        let versions = client
            .list_versions(prefix)
            .with_context(|| format!("listing versions of s3://{bucket}/{prefix}"))?;
        Ok(versions
            .into_iter()
            .map(|v| ObjectVersion {
                key: v.key,
                version_id: v.version_id,
                is_latest: v.is_latest,
                is_delete_marker: v.delete_marker,
                last_modified: v.last_modified,
                size: v.size,
            })
            .collect())
    }
}
