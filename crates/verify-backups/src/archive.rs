//! The native integrity reader of `--deep --local-dir`: one pass over each archive file that hashes the
//! raw bytes (SHA-256 for the bit-rot manifest), decompresses them (zstd, verifying its content checksum)
//! and parses what comes out (VMA extents, or the tar members looking for `etc/vzdump/pct.conf`), all in
//! the same read, without temp files. Several archives are checked at once, one per worker thread, so
//! both cores stay busy: each worker is itself a pipeline bound by decompression and hashing.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::pve::{Compression, Container};
use crate::vma;

/// Result of one check of the integrity pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed; the text says what was seen.
    Ok(String),
    /// Failed; the text says why.
    Failed(String),
    /// Not checked; the text says why.
    Skipped(String),
}

impl Outcome {
    /// Whether this is a failure.
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// One archive to check.
#[derive(Clone, Debug)]
pub struct Job {
    /// The file.
    pub path: PathBuf,
    /// VMA or tar.
    pub container: Container,
    /// Compression.
    pub compression: Compression,
}

/// What the pass found.
#[derive(Clone, Debug)]
pub struct Integrity {
    /// The compression layer (stream structure and content checksum).
    pub compression: Outcome,
    /// The VMA or tar inside.
    pub content: Outcome,
    /// SHA-256 of the file as stored (hex), when the whole file could be read.
    pub sha256: Option<String>,
    /// Bytes of the file read.
    pub bytes: u64,
}

/// Hashes and counts everything read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    on_read: Option<OnRead>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if let Some(f) = &self.on_read {
            f(n as u64);
        }
        Ok(n)
    }
}

/// Remembers whether the reader below (the decompressor) ever failed, so a parse error caused by a corrupt
/// compressed stream is told apart from a malformed archive inside a sound stream.
struct Flagging<R> {
    inner: R,
    error: Rc<Cell<Option<String>>>,
}

impl<R: Read> Read for Flagging<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let prev = self.error.take();
                self.error.set(Some(prev.unwrap_or_else(|| e.to_string())));
                Err(e)
            }
        }
    }
}

const BUF: usize = 1 << 20;

fn drain<R: Read>(r: &mut R) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn check_tar<R: Read>(r: R) -> Result<String, String> {
    let mut archive = tar::Archive::new(r);
    let entries = archive.entries().map_err(|e| format!("tar: {e}"))?;
    let mut count = 0u64;
    let mut has_conf = false;
    for entry in entries {
        let entry = entry.map_err(|e| format!("tar: {e} (after {count} members)"))?;
        count += 1;
        let path = entry.path().map_err(|e| format!("tar: {e}"))?;
        let p = path.to_string_lossy();
        if p.trim_start_matches("./") == "etc/vzdump/pct.conf" {
            has_conf = true;
        }
        // The entries iterator skips each member's data when it moves on, reading it through.
    }
    if count == 0 {
        return Err("tar: no members".into());
    }
    if !has_conf {
        return Err(format!(
            "tar of {count} members has no etc/vzdump/pct.conf (not a container backup)"
        ));
    }
    Ok(format!("{count} tar members, etc/vzdump/pct.conf present"))
}

fn check_content<R: Read>(container: Container, r: R) -> Result<String, String> {
    match container {
        Container::Vma => vma::check(r)
            .map(|s| {
                format!(
                    "VMA: {} device(s), {} extent(s), {} config(s), all clusters present",
                    s.devices.len(),
                    s.extents,
                    s.configs.len()
                )
            })
            .map_err(|e| format!("VMA: {e}")),
        Container::Tar => check_tar(r),
    }
}

/// Checks one archive in one pass.
pub fn check_file(job: &Job, on_read: Option<OnRead>) -> Integrity {
    let file = match File::open(&job.path) {
        Ok(f) => f,
        Err(e) => {
            let why = format!("cannot open {}: {e}", job.path.display());
            return Integrity {
                compression: Outcome::Failed(why.clone()),
                content: Outcome::Failed(why),
                sha256: None,
                bytes: 0,
            };
        }
    };
    let mut raw = Hashing {
        inner: file,
        hasher: Sha256::new(),
        bytes: 0,
        on_read,
    };
    let (compression, content) = match job.compression {
        Compression::Zstd | Compression::None => {
            let error = Rc::new(Cell::new(None));
            let buffered = BufReader::with_capacity(BUF, &mut raw);
            let decoder: Box<dyn Read> = if job.compression == Compression::Zstd {
                match zstd::stream::read::Decoder::with_buffer(buffered) {
                    Ok(d) => Box::new(d),
                    Err(e) => {
                        let why = format!("zstd: {e}");
                        return Integrity {
                            compression: Outcome::Failed(why.clone()),
                            content: Outcome::Failed(why),
                            sha256: None,
                            bytes: 0,
                        };
                    }
                }
            } else {
                Box::new(buffered)
            };
            let mut reader = Flagging {
                inner: decoder,
                error: error.clone(),
            };
            let content = match check_content(job.container, &mut reader) {
                Ok(detail) => Outcome::Ok(detail),
                Err(why) => Outcome::Failed(why),
            };
            // The frame checksum sits at the end of the stream, after the last extent: read to the end.
            let first = error.take();
            let trailing = if first.is_none() {
                drain(&mut reader).err().map(|e| e.to_string())
            } else {
                None
            };
            let decode_error = first.or(error.take()).or(trailing);
            let compression = match (job.compression, decode_error) {
                (Compression::None, None) => Outcome::Skipped("not compressed".into()),
                (Compression::None, Some(e)) => Outcome::Failed(format!("read error: {e}")),
                (_, None) => Outcome::Ok("zstd stream and content checksum sound".into()),
                (_, Some(e)) => Outcome::Failed(format!("zstd: {e}")),
            };
            drop(reader);
            (compression, content)
        }
        Compression::Gzip | Compression::Lzo => {
            let name = if job.compression == Compression::Gzip {
                "gzip"
            } else {
                "lzo"
            };
            let why = format!(
                "{name} is not checked natively (no {name} decoder in this build); run without --local-dir to check it on the node"
            );
            let read = drain(&mut raw).err();
            if let Some(e) = read {
                let f = format!("read error: {e}");
                (Outcome::Failed(f.clone()), Outcome::Failed(f))
            } else {
                (Outcome::Skipped(why.clone()), Outcome::Skipped(why))
            }
        }
    };
    // Only a file read to its end has a meaningful hash.
    let complete = drain(&mut raw).is_ok();
    let bytes = raw.bytes;
    let sha256 = complete.then(|| hex(&raw.hasher.finalize()));
    Integrity {
        compression,
        content,
        sha256,
        bytes,
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A callback told the byte count of every read (for a progress bar).
pub type OnRead = Arc<dyn Fn(u64) + Send + Sync>;

/// Checks every job on `threads` worker threads; results come back in job order.
pub fn check_all(jobs: &[Job], threads: usize, on_read: Option<OnRead>) -> Vec<Integrity> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Integrity>>> = Mutex::new(vec![None; jobs.len()]);
    let threads = threads.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = check_file(job, on_read.clone());
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            r.unwrap_or(Integrity {
                compression: Outcome::Failed("worker failed".into()),
                content: Outcome::Failed("worker failed".into()),
                sha256: None,
                bytes: 0,
            })
        })
        .collect()
}

/// SHA-256 of a file (hex), for `--record` without `--deep`.
pub fn hash_file(path: &std::path::Path) -> io::Result<String> {
    let mut raw = Hashing {
        inner: File::open(path)?,
        hasher: Sha256::new(),
        bytes: 0,
        on_read: None,
    };
    drain(&mut raw)?;
    Ok(hex(&raw.hasher.finalize()))
}
