//! The native integrity reader of `--deep --local-dir`: one pass over each archive file that hashes the
//! raw bytes (SHA-256 for the bit-rot manifest), decompresses them (zstd, gzip or lzop, verifying their
//! checksums) and parses what comes out (VMA extents, or the tar members looking for `etc/vzdump/pct.conf`), all in
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

use crate::lzop::LzopReader;
use crate::pve::{Compression, Container};
use pve_common::vma;

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
    /// Also compute the file's SHA-256 (for the bit-rot manifest). Hashing costs about as much CPU as
    /// zstd's own check, so it is asked for only when the hash is recorded or compared.
    pub hash: bool,
}

/// What the pass found.
#[derive(Clone, Debug)]
pub struct Integrity {
    /// The compression layer (stream structure and content checksum).
    pub compression: Outcome,
    /// The VMA or tar inside.
    pub content: Outcome,
    /// SHA-256 of the file as stored (hex), when asked for and the whole file could be read.
    pub sha256: Option<String>,
    /// Bytes of the file read.
    pub bytes: u64,
}

/// Hashes and counts everything read through it.
struct Hashing<R> {
    inner: R,
    hasher: Option<Sha256>,
    bytes: u64,
    on_read: Option<OnRead>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
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
        Container::Vma => vma::verify(r)
            .map(|s| {
                format!(
                    "VMA: {} device(s), {} extent(s), {} config(s), all clusters present",
                    s.header.devices.len(),
                    s.extents,
                    s.header.configs.len()
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
        hasher: job.hash.then(Sha256::new),
        bytes: 0,
        on_read,
    };
    let error = Rc::new(Cell::new(None));
    let buffered = BufReader::with_capacity(BUF, &mut raw);
    let decoder: Box<dyn Read> = match job.compression {
        // vzdump's gzip comes from pigz, which may write several members: read them all, each member's
        // CRC32 and length checked by flate2 at its end.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        // lzop writes a header checksum and per-block Adler-32/CRC-32 sums: checked block by block.
        Compression::Lzo => Box::new(LzopReader::new(buffered)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(buffered) {
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
        },
        Compression::None => Box::new(buffered),
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
        (Compression::Gzip, None) => Outcome::Ok("gzip stream and CRC32 sound".into()),
        (Compression::Gzip, Some(e)) => Outcome::Failed(format!("gzip: {e}")),
        (Compression::Lzo, None) => Outcome::Ok("lzop header and block checksums sound".into()),
        // The reader's messages already start with "lzop:".
        (Compression::Lzo, Some(e)) => Outcome::Failed(e),
        (Compression::Zstd, None) => Outcome::Ok("zstd stream and content checksum sound".into()),
        (Compression::Zstd, Some(e)) => Outcome::Failed(format!("zstd: {e}")),
    };
    drop(reader);
    // Only a file read to its end has a meaningful hash.
    let complete = drain(&mut raw).is_ok();
    let bytes = raw.bytes;
    let sha256 = raw.hasher.filter(|_| complete).map(|h| hex(&h.finalize()));
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
        hasher: Some(Sha256::new()),
        bytes: 0,
        on_read: None,
    };
    drain(&mut raw)?;
    Ok(raw.hasher.map(|h| hex(&h.finalize())).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use testbed::sim::vma as fixture;

    fn stream() -> Vec<u8> {
        let mut v = Vec::new();
        fixture::write(&mut v, &fixture::small_spec(7)).unwrap();
        v
    }

    fn zst(plain: &[u8]) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.include_checksum(true).unwrap();
        std::io::Write::write_all(&mut enc, plain).unwrap();
        enc.finish().unwrap()
    }

    fn job(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Job {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Job {
            path,
            container: if name.contains(".vma") {
                Container::Vma
            } else {
                Container::Tar
            },
            compression: if name.ends_with(".zst") {
                Compression::Zstd
            } else if name.ends_with(".gz") {
                Compression::Gzip
            } else {
                Compression::None
            },
            hash: true,
        }
    }

    #[test]
    fn one_pass_checks_compression_content_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let plain = stream();
        let good = zst(&plain);
        let r = check_file(&job(dir.path(), "a.vma.zst", &good), None);
        assert!(matches!(r.compression, Outcome::Ok(_)), "{r:?}");
        assert!(matches!(r.content, Outcome::Ok(_)), "{r:?}");
        assert_eq!(r.bytes, good.len() as u64);
        assert_eq!(r.sha256.unwrap(), hex(&Sha256::digest(&good)));

        // A data byte flipped inside the compressed stream: only the zstd checksum can see it.
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        let r = check_file(&job(dir.path(), "b.vma.zst", &flipped), None);
        assert!(r.compression.failed(), "{r:?}");
        // The hash is still of the whole file: the manifest comparison works on a corrupt archive.
        assert_eq!(r.sha256.unwrap(), hex(&Sha256::digest(&flipped)));

        // A bad extent inside a sound stream: compression ok, VMA failed.
        let mut inner = plain.clone();
        let header = u32::from_be_bytes(inner[56..60].try_into().unwrap()) as usize;
        inner[header + 45] ^= 0x10;
        let r = check_file(&job(dir.path(), "c.vma.zst", &zst(&inner)), None);
        assert!(matches!(r.compression, Outcome::Ok(_)), "{r:?}");
        assert!(r.content.failed(), "{r:?}");

        // An uncompressed VMA: nothing to check at the compression layer, the content still is.
        let r = check_file(&job(dir.path(), "d.vma", &plain), None);
        assert!(matches!(r.compression, Outcome::Skipped(_)));
        assert!(matches!(r.content, Outcome::Ok(_)));

        // gzip is checked natively: bytes that are not a gzip stream fail, and are still hashed.
        let r = check_file(&job(dir.path(), "e.tar.gz", b"whatever"), None);
        assert!(r.compression.failed(), "{r:?}");
        assert!(r.sha256.is_some());
    }

    #[test]
    fn tar_needs_pct_conf() {
        let dir = tempfile::tempdir().unwrap();
        let tar_with = |name: &str| {
            let mut t = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, name, &b"a: b"[..3]).unwrap();
            t.into_inner().unwrap()
        };
        let ok = check_file(
            &job(
                dir.path(),
                "a.tar.zst",
                &zst(&tar_with("./etc/vzdump/pct.conf")),
            ),
            None,
        );
        assert!(matches!(ok.content, Outcome::Ok(_)), "{ok:?}");
        let bad = check_file(
            &job(dir.path(), "b.tar.zst", &zst(&tar_with("./etc/hostname"))),
            None,
        );
        assert!(bad.content.failed(), "{bad:?}");
        assert!(matches!(bad.compression, Outcome::Ok(_)));
    }

    /// pigz writes several gzip members; each has its own CRC32.
    fn gz_members(plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in plain.chunks(plain.len().div_ceil(3).max(1)) {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, part).unwrap();
            out.extend(enc.finish().unwrap());
        }
        out
    }

    #[test]
    fn gzip_archives_are_checked_natively_across_members() {
        let dir = tempfile::tempdir().unwrap();
        let good = gz_members(&stream());
        let ok = check_file(&job(dir.path(), "a.vma.gz", &good), None);
        assert!(matches!(ok.compression, Outcome::Ok(_)), "{ok:?}");
        assert!(
            matches!(ok.content, Outcome::Ok(_)),
            "every member read: {ok:?}"
        );
        // A flipped byte in the last member's deflate data: the member's CRC32 no longer matches.
        let mut bad = good.clone();
        let at = bad.len() - 20;
        bad[at] ^= 0x01;
        let broken = check_file(&job(dir.path(), "b.vma.gz", &bad), None);
        assert!(
            broken.compression.failed() || broken.content.failed(),
            "{broken:?}"
        );
    }

    #[test]
    fn parallel_results_keep_job_order_and_count_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let mut jobs = Vec::new();
        let mut total = 0;
        for i in 0..6u64 {
            let mut v = Vec::new();
            fixture::write(&mut v, &fixture::small_spec(i)).unwrap();
            if i == 3 {
                v.truncate(v.len() / 2);
            }
            let z = zst(&v);
            total += z.len() as u64;
            jobs.push(job(dir.path(), &format!("{i}.vma.zst"), &z));
        }
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let s2 = seen.clone();
        let results = check_all(
            &jobs,
            3,
            Some(Arc::new(move |n| {
                s2.fetch_add(n, Ordering::Relaxed);
            })),
        );
        assert_eq!(results.len(), 6);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.content.failed(), i == 3, "{i}: {r:?}");
        }
        assert_eq!(seen.load(Ordering::Relaxed), total);
    }
}
