//! S3 (MinIO) client for versioned Terraform state buckets: synchronous, path-style, signature v4.
//!
//! Built on `rusty-s3` (request signing; its public `signing::sign` covers the calls it has no action for:
//! ListObjectVersions, bucket versioning, ListBuckets) and `ureq` (HTTP). Requests are presigned URLs, so
//! credentials travel only in the signed query string of a request to the configured endpoint: never in a
//! process argument, a log line or an error message (URLs are not included in errors).
//! Writes go through [`Runner::effect`], so `--dry-run` prints `would put s3://bucket/key` and skips them.

use std::io::Read;
use std::time::Duration;

use jiff::Timestamp;
use rusty_s3::{Bucket, Credentials, Method, UrlStyle};
use thiserror::Error;
use ureq::http::Response;

use crate::retry::Transient;
use crate::runner::{Access, Runner};
use crate::secret::Secret;

/// How long a presigned request stays valid. Requests are sent at once; this only bounds clock skew.
const PRESIGN_SECONDS: u64 = 300;
/// Largest body read into memory (a Terraform state of a large homelab is a few MiB).
const MAX_BODY_BYTES: u64 = 512 * 1024 * 1024;
/// Largest listing page or small XML answer (a page of 1000 versions is about 400 KiB).
const MAX_XML_BYTES: u64 = 16 * 1024 * 1024;
/// Largest error answer read (S3's `<Error>` documents are a few hundred bytes).
const MAX_ERROR_BYTES: u64 = 64 * 1024;
/// Most listing pages followed: 10,000 pages of up to 1000 entries. A server that keeps answering
/// "truncated" stops here, with an error, instead of looping forever.
pub const MAX_LIST_PAGES: usize = 10_000;

/// Checks an object key (or a key prefix) before any use: not empty, no leading `/`, and no empty, `.` or
/// `..` segment. An HTTP client normalises `a/../b` to `b`, and `../victim/x` in path style to another
/// bucket, while Terraform uses the key literally: the tool and Terraform would act on different objects.
/// Every object request of [`S3Client`] checks its key here, and the tools check the key they resolve.
pub fn check_key(key: &str) -> Result<(), S3Error> {
    check_segments(key, "S3 key").map_err(S3Error::InvalidKey)
}

/// Checks a Terraform workspace name (`TF_WORKSPACE`), which becomes one segment of the state key: the
/// rules of [`check_key`], and no `/`.
pub fn check_workspace(name: &str) -> Result<(), S3Error> {
    let what = "workspace name";
    if name.contains('/') {
        return Err(S3Error::InvalidKey(format!(
            "{what} {name:?} contains `/`; a workspace is one segment of the state key"
        )));
    }
    check_segments(name, what).map_err(S3Error::InvalidKey)
}

fn check_segments(key: &str, what: &str) -> Result<(), String> {
    let problem = if key.is_empty() {
        Some("is empty")
    } else if key.starts_with('/') {
        Some("starts with `/`")
    } else if key.split('/').any(|s| s == "..") {
        Some("has a `..` segment (it would name an object outside the bucket or another key)")
    } else if key.split('/').any(|s| s == ".") {
        Some("has a `.` segment")
    } else if key.split('/').any(str::is_empty) {
        Some("has an empty segment (`//` or a trailing `/`)")
    } else if key.chars().any(char::is_control) {
        Some("holds a control character")
    } else {
        None
    };
    match problem {
        Some(p) => Err(format!("{what} {key:?} {p}")),
        None => Ok(()),
    }
}

/// Where the bucket is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `http(s)://host:port` of the S3 API (MinIO's port 9000).
    pub endpoint: String,
    /// Region name used in signatures (MinIO accepts any; Terraform's default is `us-east-1`).
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Path-style URLs (`endpoint/bucket/key`), as MinIO needs; virtual-host style otherwise.
    pub path_style: bool,
}

/// Access key and secret.
#[derive(Clone, Debug)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key: Secret,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Secret,
    /// `AWS_SESSION_TOKEN`, if any.
    pub session_token: Option<Secret>,
}

/// An S3 failure, with the operation and object it concerned. Never contains a URL or a credential.
#[derive(Debug, Error)]
pub enum S3Error {
    /// The endpoint or bucket name is unusable.
    #[error("invalid S3 configuration: {0}")]
    Config(String),
    /// The request did not get an answer (refused, reset, timed out, DNS).
    #[error("{op} s3://{bucket}/{key}: cannot reach {endpoint}: {message}")]
    Unreachable {
        /// What was attempted.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key (empty for bucket operations).
        key: String,
        /// The endpoint.
        endpoint: String,
        /// The transport's message.
        message: String,
    },
    /// The server answered with an error status.
    #[error("{op} s3://{bucket}/{key}: HTTP {status} {code}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        /// What was attempted.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// HTTP status.
        status: u16,
        /// S3 error code (`NoSuchKey`, `AccessDenied`, `SignatureDoesNotMatch`...).
        code: String,
        /// S3 error message.
        message: String,
    },
    /// Retried and every attempt failed (see [`crate::retry`]); classified like its last cause.
    #[error("{what} failed after {attempts} attempts: {last}")]
    GaveUp {
        /// What was tried.
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last cause.
        last: Box<S3Error>,
    },
    /// An object key or workspace name that would leave the bucket or name another object than the one
    /// Terraform uses (see [`check_key`]).
    #[error("{0}")]
    InvalidKey(String),
    /// The answer could not be understood.
    #[error("{op} s3://{bucket}: unexpected answer: {message}")]
    Parse {
        /// What was attempted.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// What was wrong.
        message: String,
    },
}

impl S3Error {
    /// HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            S3Error::Status { status, .. } => Some(*status),
            S3Error::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    /// True for "no such key / version / bucket".
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True for a failed conditional write (`If-None-Match: *` on an existing object).
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// True when the credentials were refused.
    pub fn is_access_denied(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// Keeps the attempt count of an exhausted retry in the error, instead of only its last cause.
    pub fn from_retry(error: crate::retry::RetryError<S3Error>) -> S3Error {
        match error {
            crate::retry::RetryError::Exhausted {
                what,
                attempts,
                last,
            } => S3Error::GaveUp {
                what,
                attempts,
                last: Box::new(last),
            },
            crate::retry::RetryError::Permanent(e) => e,
        }
    }
}

impl Transient for S3Error {
    fn is_transient(&self) -> bool {
        match self {
            S3Error::Unreachable { .. } => true,
            S3Error::Status { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            S3Error::GaveUp { last, .. } => last.is_transient(),
            S3Error::Config(_) | S3Error::InvalidKey(_) | S3Error::Parse { .. } => false,
        }
    }
}

/// One version of an object, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectVersion {
    /// Object key.
    pub key: String,
    /// Version id (`null` for objects written before versioning was enabled).
    pub version_id: String,
    /// RFC 3339 time the version was written.
    pub last_modified: String,
    /// Size in bytes (0 for delete markers).
    pub size: u64,
    /// Whether this is the current version.
    pub is_latest: bool,
    /// Whether this is a delete marker rather than content.
    pub delete_marker: bool,
    /// ETag without quotes (absent on delete markers).
    pub etag: Option<String>,
}

/// A bucket's versioning state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// Every write keeps the previous version.
    Enabled,
    /// Was enabled, now suspended: new writes overwrite the `null` version.
    Suspended,
    /// Never enabled: writes overwrite.
    Off,
}

/// What a successful write returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutResult {
    /// The new version's id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// ETag without quotes.
    pub etag: Option<String>,
}

/// A synchronous S3 client bound to one bucket. Clones share the connection pool.
#[derive(Clone)]
pub struct S3Client {
    location: S3Location,
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
    page_size: u32,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// One body sent from several slices in turn (a state whose serial is replaced: head, serial,
    /// tail), so it is never copied into one buffer.
    Parts(&'a [&'a [u8]]),
}

/// Reads several slices one after the other.
struct PartsReader<'a> {
    parts: &'a [&'a [u8]],
    at: usize,
}

impl Read for PartsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some((first, rest)) = self.parts.split_first() {
            let left = first.get(self.at..).unwrap_or_default();
            if left.is_empty() {
                self.parts = rest;
                self.at = 0;
                continue;
            }
            let n = left.len().min(buf.len());
            buf[..n].copy_from_slice(&left[..n]);
            self.at += n;
            return Ok(n);
        }
        Ok(0)
    }
}

/// An answer's body, read at most `limit` bytes; the first I/O failure (or the limit) is kept, so the
/// caller can tell a failed transfer from what its own reading made of the bytes.
struct BoundedBody<R> {
    inner: R,
    left: u64,
    limit: u64,
    failed: Option<String>,
}

impl<R: Read> Read for BoundedBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failed.is_some() {
            return Err(std::io::Error::other("the transfer failed"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(n) if n as u64 > self.left => {
                let message = format!("answer larger than {} bytes", self.limit);
                self.failed = Some(message.clone());
                Err(std::io::Error::other(message))
            }
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl S3Client {
    /// A client for `location`; requests time out after `timeout` (connect: at most 10 s).
    pub fn new(
        mut location: S3Location,
        credentials: &S3Credentials,
        timeout: Duration,
    ) -> Result<Self, S3Error> {
        // `http://user:password@host`: requests are signed, so the password is never needed; it is kept
        // out of every message by dropping it here (and registering it for masking).
        location.endpoint = crate::secret::strip_url_credentials(&location.endpoint);
        let url = location
            .endpoint
            .parse()
            .map_err(|e| S3Error::Config(format!("endpoint `{}`: {e}", location.endpoint)))?;
        let style = if location.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(url, style, location.bucket.clone(), location.region.clone())
            .map_err(|e| {
                S3Error::Config(format!(
                    "bucket `{}` at `{}`: {e}",
                    location.bucket, location.endpoint
                ))
            })?;
        let creds = match &credentials.session_token {
            Some(token) => Credentials::new_with_token(
                credentials.access_key.expose(),
                credentials.secret_key.expose(),
                token.expose(),
            ),
            None => Credentials::new(
                credentials.access_key.expose(),
                credentials.secret_key.expose(),
            ),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(S3Client {
            location,
            bucket,
            credentials: creds,
            agent,
            page_size: 1000,
        })
    }

    /// Sets how many entries one listing request asks for (S3's maximum and default: 1000).
    pub fn set_list_page_size(&mut self, size: u32) {
        self.page_size = size.clamp(1, 1000);
    }

    /// Where this client points.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    fn presign(
        &self,
        method: Method,
        object: Option<&str>,
        query: &[(&str, &str)],
        now: &Timestamp,
    ) -> url::Url {
        // The empty object name gives the bucket's own URL (`endpoint/bucket/` in path style).
        self.sign_url(
            method,
            self.bucket.object_url(object.unwrap_or("")),
            query,
            now,
        )
    }

    fn sign_url(
        &self,
        method: Method,
        url: url::Url,
        query: &[(&str, &str)],
        now: &Timestamp,
    ) -> url::Url {
        let mut sorted: Vec<(&str, &str)> = query.to_vec();
        sorted.sort();
        rusty_s3::signing::sign(
            now,
            method,
            url,
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            PRESIGN_SECONDS,
            sorted.iter().copied(),
            std::iter::empty(),
        )
    }

    fn send(
        &self,
        op: &'static str,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response<ureq::Body>, S3Error> {
        if let Some(key) = key {
            check_key(key)?;
        }
        let url = self.presign(method, key, query, &Timestamp::now());
        self.send_url(op, method, url, key, headers, body)
    }

    fn send_url(
        &self,
        op: &'static str,
        method: Method,
        url: url::Url,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Response<ureq::Body>, S3Error> {
        let url = url.as_str();
        let result = match (method, body) {
            (Method::Get, _) => with_headers(self.agent.get(url), headers).call(),
            (Method::Head, _) => with_headers(self.agent.head(url), headers).call(),
            (Method::Delete, _) => with_headers(self.agent.delete(url), headers).call(),
            (Method::Put, Body::Bytes(b)) => with_headers(self.agent.put(url), headers).send(b),
            (Method::Put, Body::Parts(parts)) => {
                let length: usize = parts.iter().map(|p| p.len()).sum();
                let mut reader = PartsReader { parts, at: 0 };
                // An explicit length: S3 refuses a chunked PutObject.
                with_headers(self.agent.put(url), headers)
                    .header("content-length", length.to_string())
                    .send(ureq::SendBody::from_reader(&mut reader))
            }
            (Method::Post, Body::Parts(_)) => {
                return Err(S3Error::Config("a POST body in parts".to_owned()));
            }
            (Method::Put, Body::Empty) => with_headers(self.agent.put(url), headers).send_empty(),
            (Method::Post, Body::Bytes(b)) => with_headers(self.agent.post(url), headers).send(b),
            (Method::Post, Body::Empty) => with_headers(self.agent.post(url), headers).send_empty(),
        };
        let mut response = result.map_err(|e| S3Error::Unreachable {
            op,
            bucket: self.location.bucket.clone(),
            key: key.unwrap_or_default().to_owned(),
            endpoint: self.location.endpoint.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if status >= 300 {
            let text = if method == Method::Head {
                String::new()
            } else {
                read_limited(&mut response, MAX_ERROR_BYTES)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            let (code, message) = parse_error(&text, status);
            return Err(S3Error::Status {
                op,
                bucket: self.location.bucket.clone(),
                key: key.unwrap_or_default().to_owned(),
                status,
                code,
                message,
            });
        }
        Ok(response)
    }

    fn parse_failed(&self, op: &'static str, message: impl ToString) -> S3Error {
        S3Error::Parse {
            op,
            bucket: self.location.bucket.clone(),
            message: message.to_string(),
        }
    }

    /// Every version and delete marker of the objects under `prefix`, pages followed; sorted by key, then
    /// the latest first, then newest first. (S3 interleaves markers and versions by time; some servers,
    /// moto among them, list all versions before all markers, so the order is made here.)
    pub fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>, S3Error> {
        const OP: &str = "list versions of";
        let mut all = Vec::new();
        let mut key_marker = String::new();
        let mut version_marker = String::new();
        let page_size = self.page_size.to_string();
        let mut seen_markers = std::collections::HashSet::new();
        for page_number in 1.. {
            if page_number > MAX_LIST_PAGES {
                return Err(self.parse_failed(
                    OP,
                    format!("still truncated after {MAX_LIST_PAGES} pages; giving up"),
                ));
            }
            let mut query = vec![
                ("versions", ""),
                ("prefix", prefix),
                ("max-keys", page_size.as_str()),
            ];
            if !key_marker.is_empty() {
                query.push(("key-marker", key_marker.as_str()));
                query.push(("version-id-marker", version_marker.as_str()));
            }
            let mut response = self.send(OP, Method::Get, None, &query, &[], Body::Empty)?;
            let body =
                read_limited(&mut response, MAX_XML_BYTES).map_err(|e| self.parse_failed(OP, e))?;
            let text = String::from_utf8_lossy(&body);
            let page = parse_list_versions(&text).map_err(|e| self.parse_failed(OP, e))?;
            all.extend(page.versions);
            match (page.truncated, page.next_key_marker) {
                (true, Some(next_key)) => {
                    let next_version = page.next_version_marker.unwrap_or_default();
                    // A marker seen before would list the same page again, forever.
                    if !seen_markers.insert((next_key.clone(), next_version.clone())) {
                        return Err(self.parse_failed(
                            OP,
                            format!(
                                "the listing repeats the marker `{}` (page {page_number}); giving up",
                                crate::output::escape(&next_key)
                            ),
                        ));
                    }
                    key_marker = next_key;
                    version_marker = next_version;
                }
                (true, None) => {
                    return Err(self.parse_failed(
                        OP,
                        format!("page {page_number} is truncated but names no next marker"),
                    ));
                }
                (false, _) => break,
            }
        }
        // RFC 3339 UTC times of one format sort as text.
        all.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.is_latest.cmp(&a.is_latest))
                .then(b.last_modified.cmp(&a.last_modified))
        });
        Ok(all)
    }

    /// The content of `key` (its latest version, or `version_id`).
    pub fn get(&self, key: &str, version_id: Option<&str>) -> Result<Vec<u8>, S3Error> {
        let query: Vec<(&str, &str)> = version_id
            .map(|v| vec![("versionId", v)])
            .unwrap_or_default();
        let mut response = self.send("get", Method::Get, Some(key), &query, &[], Body::Empty)?;
        read_body(&mut response).map_err(|e| self.parse_failed("get", e))
    }

    /// Streams the content of `key` (its latest version, or `version_id`) through `read`, which never
    /// sees more than the body limit: a state is parsed, hashed or copied to a file without being held
    /// in memory. A transfer that fails part-way is an error of this call (transient, like a refused
    /// connection), whatever `read` made of it; otherwise `read`'s own result is returned.
    pub fn get_with<T>(
        &self,
        key: &str,
        version_id: Option<&str>,
        read: impl FnOnce(&mut dyn Read) -> T,
    ) -> Result<T, S3Error> {
        let query: Vec<(&str, &str)> = version_id
            .map(|v| vec![("versionId", v)])
            .unwrap_or_default();
        let response = self.send("get", Method::Get, Some(key), &query, &[], Body::Empty)?;
        let mut body = BoundedBody {
            inner: response.into_body().into_reader(),
            left: MAX_BODY_BYTES,
            limit: MAX_BODY_BYTES,
            failed: None,
        };
        let out = read(&mut body);
        match body.failed {
            None => Ok(out),
            Some(message) if message.starts_with("answer larger") => {
                Err(self.parse_failed("get", message))
            }
            Some(message) => Err(S3Error::Unreachable {
                op: "get",
                bucket: self.location.bucket.clone(),
                key: key.to_owned(),
                endpoint: self.location.endpoint.clone(),
                message,
            }),
        }
    }

    /// The names of the buckets these credentials own (ListBuckets: `GET /` of the endpoint, whatever
    /// bucket this client is bound to). The S3 way to see that a server is up and takes the credentials.
    pub fn list_buckets(&self) -> Result<Vec<String>, S3Error> {
        const OP: &str = "list buckets at";
        let mut root: url::Url =
            self.location.endpoint.parse().map_err(|e| {
                S3Error::Config(format!("endpoint `{}`: {e}", self.location.endpoint))
            })?;
        if !root.path().ends_with('/') {
            let path = format!("{}/", root.path());
            root.set_path(&path);
        }
        let url = self.sign_url(Method::Get, root, &[], &Timestamp::now());
        let mut response = self.send_url(OP, Method::Get, url, None, &[], Body::Empty)?;
        let body =
            read_limited(&mut response, MAX_XML_BYTES).map_err(|e| self.parse_failed(OP, e))?;
        let text = String::from_utf8_lossy(&body);
        let doc = roxmltree::Document::parse(&text).map_err(|e| self.parse_failed(OP, e))?;
        if !doc.root_element().has_tag_name("ListAllMyBucketsResult") {
            return Err(self.parse_failed(
                OP,
                format!(
                    "<{}> instead of <ListAllMyBucketsResult>",
                    doc.root_element().tag_name().name()
                ),
            ));
        }
        Ok(doc
            .descendants()
            .filter(|n| n.has_tag_name("Bucket"))
            .filter_map(|b| {
                b.children()
                    .find(|n| n.has_tag_name("Name"))
                    .and_then(|n| n.text())
                    .map(str::to_owned)
            })
            .collect())
    }

    /// Whether the bucket exists and these credentials may use it.
    pub fn bucket_exists(&self) -> Result<bool, S3Error> {
        match self.send("check bucket", Method::Head, None, &[], &[], Body::Empty) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The bucket's versioning state (GetBucketVersioning).
    pub fn versioning(&self) -> Result<Versioning, S3Error> {
        const OP: &str = "get versioning of";
        let mut response = self.send(
            OP,
            Method::Get,
            None,
            &[("versioning", "")],
            &[],
            Body::Empty,
        )?;
        let body =
            read_limited(&mut response, MAX_XML_BYTES).map_err(|e| self.parse_failed(OP, e))?;
        let text = String::from_utf8_lossy(&body);
        let doc = roxmltree::Document::parse(&text).map_err(|e| self.parse_failed(OP, e))?;
        let status = doc
            .descendants()
            .find(|n| n.has_tag_name("Status"))
            .and_then(|n| n.text())
            .unwrap_or("");
        Ok(match status {
            "Enabled" => Versioning::Enabled,
            "Suspended" => Versioning::Suspended,
            _ => Versioning::Off,
        })
    }

    /// Writes `body` as the new latest version of `key`. With `if_none_match`, the write succeeds only if
    /// the key does not exist (`If-None-Match: *`), which is how Terraform's `use_lockfile` takes a lock;
    /// a held lock gives an error for which [`S3Error::is_precondition_failed`] is true.
    pub fn put(
        &self,
        runner: &Runner,
        key: &str,
        body: &[u8],
        if_none_match: bool,
    ) -> Result<Option<PutResult>, S3Error> {
        self.put_parts(runner, key, &[body], if_none_match)
    }

    /// [`S3Client::put`] of the concatenation of `parts`, sent one after the other (never copied into
    /// one buffer).
    pub fn put_parts(
        &self,
        runner: &Runner,
        key: &str,
        parts: &[&[u8]],
        if_none_match: bool,
    ) -> Result<Option<PutResult>, S3Error> {
        let what = format_args!(
            "put s3://{}/{} ({} bytes)",
            self.location.bucket,
            key,
            parts.iter().map(|p| p.len()).sum::<usize>()
        );
        runner.effect(Access::Mutating, what, || {
            let headers: &[(&str, &str)] = if if_none_match {
                &[("If-None-Match", "*")]
            } else {
                &[]
            };
            let response = self.send(
                "put",
                Method::Put,
                Some(key),
                &[],
                headers,
                Body::Parts(parts),
            )?;
            Ok(PutResult {
                version_id: header(&response, "x-amz-version-id"),
                etag: header(&response, "etag").map(|e| e.trim_matches('"').to_owned()),
            })
        })
    }

    /// Deletes `key` without naming a version: in a versioned bucket this only adds a delete marker, so
    /// no content is ever lost (used to release a `.tflock`).
    pub fn delete(&self, runner: &Runner, key: &str) -> Result<(), S3Error> {
        runner.effect(
            Access::Mutating,
            format_args!("delete s3://{}/{}", self.location.bucket, key),
            || {
                self.send("delete", Method::Delete, Some(key), &[], &[], Body::Empty)
                    .map(drop)
            },
        )?;
        Ok(())
    }

    /// Creates the bucket.
    pub fn create_bucket(&self, runner: &Runner) -> Result<(), S3Error> {
        runner.effect(
            Access::Mutating,
            format_args!("create bucket s3://{}", self.location.bucket),
            || {
                self.send("create bucket", Method::Put, None, &[], &[], Body::Empty)
                    .map(drop)
            },
        )?;
        Ok(())
    }

    /// Enables (or suspends) versioning on the bucket.
    pub fn set_versioning(&self, runner: &Runner, enabled: bool) -> Result<(), S3Error> {
        let status = if enabled { "Enabled" } else { "Suspended" };
        let body = format!(
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></VersioningConfiguration>"
        );
        runner.effect(
            Access::Mutating,
            format_args!("set versioning {status} on s3://{}", self.location.bucket),
            || {
                self.send(
                    "set versioning of",
                    Method::Put,
                    None,
                    &[("versioning", "")],
                    &[],
                    Body::Bytes(body.as_bytes()),
                )
                .map(drop)
            },
        )?;
        Ok(())
    }
}

fn with_headers<B>(
    mut request: ureq::RequestBuilder<B>,
    headers: &[(&str, &str)],
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn read_body(response: &mut Response<ureq::Body>) -> std::io::Result<Vec<u8>> {
    read_limited(response, MAX_BODY_BYTES)
}

/// Every answer is read through here, at most `limit` bytes: a server streaming without end gets an
/// error, not all the memory.
fn read_limited(response: &mut Response<ureq::Body>, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "answer larger than {limit} bytes"
        )));
    }
    Ok(out)
}

fn parse_error(text: &str, status: u16) -> (String, String) {
    let doc = roxmltree::Document::parse(text).ok();
    let field = |name: &str| {
        doc.as_ref().and_then(|d| {
            d.descendants()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::to_owned)
        })
    };
    let code = field("Code").unwrap_or_else(|| match status {
        404 => "NotFound".to_owned(),
        412 => "PreconditionFailed".to_owned(),
        403 => "AccessDenied".to_owned(),
        _ => "Error".to_owned(),
    });
    (code, field("Message").unwrap_or_default())
}

/// One page of a ListObjectVersions answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionPage {
    /// Versions and delete markers, in the server's order.
    pub versions: Vec<ObjectVersion>,
    /// `IsTruncated`: more pages follow.
    pub truncated: bool,
    /// `NextKeyMarker`.
    pub next_key_marker: Option<String>,
    /// `NextVersionIdMarker`.
    pub next_version_marker: Option<String>,
}

/// Parses one ListObjectVersions page (the `fuzz/` target `s3_listing` feeds it anything).
pub fn parse_list_versions(text: &str) -> Result<VersionPage, roxmltree::Error> {
    let doc = roxmltree::Document::parse(text)?;
    let root = doc.root_element();
    let child_text = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    let mut versions = Vec::new();
    for node in root
        .children()
        .filter(|n| n.has_tag_name("Version") || n.has_tag_name("DeleteMarker"))
    {
        versions.push(ObjectVersion {
            key: child_text(node, "Key").unwrap_or_default(),
            version_id: child_text(node, "VersionId").unwrap_or_else(|| "null".to_owned()),
            last_modified: child_text(node, "LastModified").unwrap_or_default(),
            size: child_text(node, "Size")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            is_latest: child_text(node, "IsLatest").as_deref() == Some("true"),
            delete_marker: node.has_tag_name("DeleteMarker"),
            etag: child_text(node, "ETag").map(|e| e.trim_matches('"').to_owned()),
        });
    }
    Ok(VersionPage {
        versions,
        truncated: child_text(root, "IsTruncated").as_deref() == Some("true"),
        next_key_marker: child_text(root, "NextKeyMarker"),
        next_version_marker: child_text(root, "NextVersionIdMarker"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, bucket: &str, path_style: bool) -> S3Client {
        let location = S3Location {
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            bucket: bucket.into(),
            path_style,
        };
        let creds = S3Credentials {
            access_key: Secret::new("AKIAIOSFODNN7EXAMPLE"),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        S3Client::new(location, &creds, Duration::from_secs(5)).unwrap()
    }

    /// AWS's documented SigV4 query-string example ("Authenticating Requests: Using Query Parameters"):
    /// GET https://examplebucket.s3.amazonaws.com/test.txt, 2013-05-24T00:00:00Z, expires 86400 gives
    /// signature aeeed9bb...404. moto accepts any signature, so this is what proves the signing path.
    #[test]
    fn signing_matches_the_aws_documented_example() {
        let c = client("https://s3.amazonaws.com", "examplebucket", false);
        let now = Timestamp::from_second(1_369_353_600).unwrap();
        let url = c.bucket.object_url("test.txt");
        let signed = rusty_s3::signing::sign(
            &now,
            Method::Get,
            url,
            c.credentials.key(),
            c.credentials.secret(),
            None,
            c.bucket.region(),
            86400,
            std::iter::empty(),
            std::iter::empty(),
        );
        assert!(
            signed
                .as_str()
                .starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"),
            "{signed}"
        );
        assert!(
            signed.as_str().ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{signed}"
        );
    }

    #[test]
    fn path_style_urls_and_sorted_query() {
        let c = client("http://127.0.0.1:9000", "tfstate-prod", true);
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let url = c.presign(
            Method::Get,
            None,
            &[("versions", ""), ("prefix", "prod/terraform.tfstate")],
            &now,
        );
        let s = url.as_str();
        assert!(s.starts_with("http://127.0.0.1:9000/tfstate-prod/?"), "{s}");
        let prefix_at = s.find("prefix=").unwrap();
        let versions_at = s.find("versions=").unwrap();
        assert!(prefix_at < versions_at, "query sorted by name: {s}");
        assert!(
            s.contains(
                "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20231114%2Fus-east-1%2Fs3%2Faws4_request"
            ),
            "{s}"
        );
    }

    #[test]
    fn errors_never_show_urls_or_secrets() {
        let c = client("http://127.0.0.1:1", "b", true);
        let err = c.get("k", None).unwrap_err();
        let text = err.to_string();
        assert!(err.is_transient(), "{text}");
        assert!(
            text.starts_with("get s3://b/k: cannot reach http://127.0.0.1:1:"),
            "{text}"
        );
        assert!(!text.contains("X-Amz"), "{text}");
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    }

    #[test]
    fn dry_run_writes_nothing_and_says_what() {
        let c = client("http://127.0.0.1:1", "b", true);
        let runner = Runner::new(true);
        let (result, lines) =
            crate::log::capture(|| c.put(&runner, "prod/terraform.tfstate", b"{}", false));
        assert!(
            result.unwrap().is_none(),
            "skipped, so no connection was attempted to the dead endpoint"
        );
        assert_eq!(
            lines,
            vec!["pve-tools: [dry-run] would put s3://b/prod/terraform.tfstate (2 bytes)"]
        );
        c.delete(&runner, "prod/terraform.tfstate.tflock").unwrap();
        c.set_versioning(&runner, true).unwrap();
        c.create_bucket(&runner).unwrap();
        assert_eq!(runner.skipped().len(), 4);
    }

    #[test]
    fn parses_list_object_versions_with_markers_and_paging() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>tfstate</Name><Prefix>prod/</Prefix><IsTruncated>true</IsTruncated>
  <NextKeyMarker>prod/terraform.tfstate</NextKeyMarker><NextVersionIdMarker>v1</NextVersionIdMarker>
  <DeleteMarker><Key>prod/terraform.tfstate.tflock</Key><VersionId>d1</VersionId><IsLatest>true</IsLatest>
    <LastModified>2026-11-20T06:00:02.000Z</LastModified></DeleteMarker>
  <Version><Key>prod/terraform.tfstate</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>
    <LastModified>2026-11-20T06:00:01.000Z</LastModified><ETag>"abc"</ETag><Size>1234</Size></Version>
  <Version><Key>prod/terraform.tfstate</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest>
    <LastModified>2026-11-19T06:00:01.000Z</LastModified><ETag>"def"</ETag><Size>1200</Size></Version>
</ListVersionsResult>"#;
        let page = parse_list_versions(xml).unwrap();
        assert!(page.truncated);
        assert_eq!(
            page.next_key_marker.as_deref(),
            Some("prod/terraform.tfstate")
        );
        assert_eq!(page.next_version_marker.as_deref(), Some("v1"));
        assert_eq!(page.versions.len(), 3);
        assert!(page.versions[0].delete_marker && page.versions[0].etag.is_none());
        assert_eq!(page.versions[1].etag.as_deref(), Some("abc"));
        assert_eq!(
            (page.versions[1].size, page.versions[1].is_latest),
            (1234, true)
        );
    }

    #[test]
    fn error_bodies() {
        let xml = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(
            parse_error(xml, 404),
            (
                "NoSuchKey".into(),
                "The specified key does not exist.".into()
            )
        );
        assert_eq!(parse_error("", 412).0, "PreconditionFailed");
    }

    #[test]
    fn keys_that_leave_the_object_are_refused_before_any_request() {
        for good in [
            "prod/terraform.tfstate",
            "env:/lab/terraform.tfstate",
            "a..b/c.d",
        ] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/prod/terraform.tfstate",
            "../victim/secret/terraform.tfstate",
            "prod/../../victim/x",
            "prod/./x",
            "prod//x",
            "prod/",
            "prod/x\n",
        ] {
            let err = check_key(bad).unwrap_err();
            assert!(matches!(err, S3Error::InvalidKey(_)), "{bad:?}: {err}");
        }
        assert!(check_workspace("lab").is_ok());
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(check_workspace(bad).is_err(), "{bad:?}");
        }
        // The client itself refuses: no request is sent (the endpoint does not exist).
        let location = S3Location {
            endpoint: "http://127.0.0.1:9".into(),
            region: "us-east-1".into(),
            bucket: "tfstate".into(),
            path_style: true,
        };
        let creds = S3Credentials {
            access_key: Secret::new("a"),
            secret_key: Secret::new("b"),
            session_token: None,
        };
        let c = S3Client::new(location, &creds, Duration::from_secs(1)).unwrap();
        let err = c.get("../victim/terraform.tfstate", None).unwrap_err();
        assert!(matches!(err, S3Error::InvalidKey(_)), "{err}");
        let err = c
            .put(&Runner::new(false), "../victim/x", b"{}", false)
            .unwrap_err();
        assert!(matches!(err, S3Error::InvalidKey(_)), "{err}");
    }
}
