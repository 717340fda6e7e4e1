//! A reader of Proxmox's VMA backup format (`vma_spec.txt` in pve-qemu) that checks everything the
//! format can check: magic, version, header MD5, blob table, config and device tables, every extent header
//! (magic, archive uuid, MD5, block count) and that every 64 KiB cluster of every device is stored exactly
//! once. It reads from any `Read` (a decompressor), in one pass, never seeking, so a caller can decompress,
//! hash and check an archive in the same read.
//!
//! VMA has no checksum over cluster data: a flipped data byte is caught only by the compression layer's
//! checksum (zstd, gzip, lzop), which the caller checks by reading the decompressor to its end.
//!
//! Users: verify-backups (`--deep --local-dir`) and the test bed's simulated `vma` command, which also
//! writes archives with the same constants.

use std::io::{self, Read};

use md5::{Digest, Md5};

/// `"VMA\0"`.
pub const MAGIC: &[u8; 4] = b"VMA\0";
/// `"VMAE"`.
pub const EXTENT_MAGIC: &[u8; 4] = b"VMAE";
/// Size of the fixed part of the header; the blob buffer follows it.
pub const HEADER_FIXED_SIZE: usize = 12288;
/// Size of an extent header.
pub const EXTENT_HEADER_SIZE: usize = 512;
/// Clusters described by one extent header.
pub const BLOCKS_PER_EXTENT: usize = 59;
/// Cluster size (64 KiB).
pub const CLUSTER_SIZE: u64 = 65536;
/// Block size (4 KiB); a cluster holds 16 blocks, each present or zero.
pub const BLOCK_SIZE: usize = 4096;
/// The largest header the reader accepts (the fixed part plus the blob buffer).
pub const MAX_HEADER_SIZE: usize = 16 << 20;

/// What can be wrong with a VMA stream.
#[derive(Debug, thiserror::Error)]
pub enum VmaError {
    /// Reading failed (for a decompressor below: the compressed stream is corrupt).
    #[error("read error: {0}")]
    Io(io::Error),
    /// The stream is empty.
    #[error("empty stream (no VMA header)")]
    Empty,
    /// The stream ends part-way through a structure.
    #[error("stream ends inside {what} at offset {offset}")]
    Truncated {
        /// The structure: `the VMA header`, `an extent header`, `extent data`.
        what: &'static str,
        /// Offset in the uncompressed stream where it ends.
        offset: u64,
    },
    /// The first four bytes are not `VMA\0`.
    #[error("bad VMA magic (not a VMA archive)")]
    BadMagic,
    /// Only version 1 exists.
    #[error("unsupported VMA version {0}")]
    BadVersion(u32),
    /// The header MD5 does not match.
    #[error("wrong VMA header MD5 checksum")]
    HeaderChecksum,
    /// Offsets or sizes in the header are inconsistent.
    #[error("corrupt VMA header: {0}")]
    BadHeader(String),
    /// An extent header is wrong.
    #[error("corrupt extent at offset {offset}: {reason}")]
    BadExtent {
        /// Byte offset of the extent in the uncompressed stream.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The stream ended before every cluster was stored.
    #[error("incomplete archive: device '{device}' is missing {missing} of {total} clusters")]
    Incomplete {
        /// Device name, e.g. `drive-scsi0`.
        device: String,
        /// Clusters never written.
        missing: u64,
        /// Clusters the device has.
        total: u64,
    },
}

// Written by hand rather than `#[from]`: the message already shows the cause, and a `source()` too
// would make the error chain say it twice.
impl From<io::Error> for VmaError {
    fn from(e: io::Error) -> Self {
        VmaError::Io(e)
    }
}

/// A disk image stored in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id (1..=255), the index in the device table.
    pub id: u8,
    /// Name, e.g. `drive-scsi0`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// Parsed header.
#[derive(Debug, Clone)]
pub struct VmaHeader {
    /// Archive uuid.
    pub uuid: [u8; 16],
    /// Backup time, seconds since the epoch.
    pub ctime: i64,
    /// Config files (name, content).
    pub configs: Vec<(String, Vec<u8>)>,
    /// Devices in id order.
    pub devices: Vec<Device>,
    /// Header size in bytes (fixed part plus blob buffer).
    pub header_size: u64,
}

impl VmaHeader {
    /// The content of a config file by name, as text.
    pub fn config(&self, name: &str) -> Option<String> {
        self.configs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
    }
}

/// Result of a full verification.
#[derive(Debug, Clone)]
pub struct VmaInfo {
    /// The header.
    pub header: VmaHeader,
    /// Extents read.
    pub extents: u64,
    /// Non-zero 4 KiB blocks stored.
    pub data_blocks: u64,
    /// Uncompressed stream length in bytes.
    pub stream_bytes: u64,
}

/// A big-endian `u32` at `off`.
pub fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// A big-endian `u64` at `off`.
pub fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// Parses and checks the header at the start of `r` (reads exactly `header_size` bytes).
pub fn read_header<R: Read>(r: &mut R) -> Result<VmaHeader, VmaError> {
    let mut h = vec![0u8; HEADER_FIXED_SIZE];
    if !fill(r, &mut h, "the VMA header", 0)? {
        return Err(VmaError::Empty);
    }
    if &h[0..4] != MAGIC {
        return Err(VmaError::BadMagic);
    }
    let version = be32(&h, 4);
    if version != 1 {
        return Err(VmaError::BadVersion(version));
    }
    let blob_off = be32(&h, 48) as usize;
    let blob_size = be32(&h, 52) as usize;
    let header_size = be32(&h, 56) as usize;
    if !(HEADER_FIXED_SIZE..=MAX_HEADER_SIZE).contains(&header_size)
        || blob_off < HEADER_FIXED_SIZE
        || blob_off + blob_size > header_size
    {
        return Err(VmaError::BadHeader(format!(
            "blob buffer {blob_off}+{blob_size} outside header of {header_size} bytes"
        )));
    }
    h.resize(header_size, 0);
    if !fill(
        r,
        &mut h[HEADER_FIXED_SIZE..],
        "the VMA header",
        HEADER_FIXED_SIZE as u64,
    )? && header_size > HEADER_FIXED_SIZE
    {
        return Err(VmaError::Truncated {
            what: "the VMA header",
            offset: HEADER_FIXED_SIZE as u64,
        });
    }
    let mut stored = [0u8; 16];
    stored.copy_from_slice(&h[32..48]);
    h[32..48].fill(0);
    if Md5::digest(&h).as_slice() != stored {
        return Err(VmaError::HeaderChecksum);
    }
    h[32..48].copy_from_slice(&stored);
    let blob = &h[blob_off..blob_off + blob_size];
    let configs = read_configs(&h, blob)?;
    let devices = read_devices(&h, blob)?;
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&h[8..24]);
    Ok(VmaHeader {
        uuid,
        ctime: be64(&h, 24) as i64,
        configs,
        devices,
        header_size: header_size as u64,
    })
}

/// The bytes at `pos` of the header's blob buffer (a little-endian `u16` length, then the bytes).
fn blob_at(blob: &[u8], pos: u32) -> Result<&[u8], VmaError> {
    let p = pos as usize;
    if p + 2 > blob.len() {
        return Err(VmaError::BadHeader(format!("blob offset {p} out of range")));
    }
    let len = usize::from(blob[p]) | (usize::from(blob[p + 1]) << 8);
    blob.get(p + 2..p + 2 + len)
        .ok_or_else(|| VmaError::BadHeader(format!("blob at {p} of {len} bytes out of range")))
}

/// A NUL-terminated string of the blob buffer.
fn cstr(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or_default()).into_owned()
}

/// The configuration files of header `h`: name and content.
fn read_configs(h: &[u8], blob: &[u8]) -> Result<Vec<(String, Vec<u8>)>, VmaError> {
    let mut configs = Vec::new();
    for i in 0..256 {
        let np = be32(h, 2044 + 4 * i);
        let dp = be32(h, 3068 + 4 * i);
        if np == 0 && dp == 0 {
            continue;
        }
        if np == 0 || dp == 0 {
            return Err(VmaError::BadHeader(format!(
                "config {i} has a name or data but not both"
            )));
        }
        configs.push((cstr(blob_at(blob, np)?), blob_at(blob, dp)?.to_vec()));
    }
    Ok(configs)
}

/// The devices of header `h`.
fn read_devices(h: &[u8], blob: &[u8]) -> Result<Vec<Device>, VmaError> {
    let mut devices = Vec::new();
    for id in 1..256usize {
        let off = 4096 + 32 * id;
        let np = be32(h, off);
        if np == 0 {
            continue;
        }
        let size = be64(h, off + 8);
        // The cluster bitmap is sized from this: a corrupt size must not allocate gigabytes.
        if size.div_ceil(CLUSTER_SIZE) > u64::from(u32::MAX) {
            return Err(VmaError::BadHeader(format!(
                "device {id} of {size} bytes is too large"
            )));
        }
        devices.push(Device {
            id: id as u8,
            name: cstr(blob_at(blob, np)?),
            size,
        });
    }
    Ok(devices)
}

/// Fills `buf`; `Ok(false)` on a clean end of stream before the first byte, [`VmaError::Truncated`] when
/// it ends part-way (`what` names the structure, `offset` is where `buf` starts in the stream).
fn fill<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
    offset: u64,
) -> Result<bool, VmaError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(VmaError::Truncated {
                    what,
                    offset: offset + got as u64,
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(VmaError::Io(e)),
        }
    }
    Ok(true)
}

/// Marks the clusters an extent header's block infos name as seen (each device's bitmap and cluster
/// count), and counts the blocks they announce; `Err` says what is wrong with them.
fn mark_clusters(
    eh: &[u8; EXTENT_HEADER_SIZE],
    seen: &mut [Option<(Vec<u64>, u64)>],
) -> Result<u32, String> {
    let mut counted = 0u32;
    for i in 0..BLOCKS_PER_EXTENT {
        let info = be64(eh, 40 + 8 * i);
        let mask = (info >> 48) as u16;
        let dev = ((info >> 32) & 0xff) as usize;
        // Device 0 marks an unused slot (vma-reader.c skips it).
        if dev == 0 {
            continue;
        }
        let cluster = info & 0xffff_ffff;
        let Some((bits, total)) = seen[dev].as_mut() else {
            return Err(format!("block info {i} names unknown device {dev}"));
        };
        if cluster >= *total {
            return Err(format!("cluster {cluster} beyond end of device {dev}"));
        }
        let (word, bit) = ((cluster / 64) as usize, cluster % 64);
        if bits[word] & (1 << bit) != 0 {
            return Err(format!("cluster {cluster} of device {dev} stored twice"));
        }
        bits[word] |= 1 << bit;
        counted += mask.count_ones();
    }
    Ok(counted)
}

/// Reads and checks a whole uncompressed VMA stream.
pub fn verify<R: Read>(mut r: R) -> Result<VmaInfo, VmaError> {
    let header = read_header(&mut r)?;
    let mut offset = header.header_size;
    let mut seen: Vec<Option<(Vec<u64>, u64)>> = vec![None; 256];
    for d in &header.devices {
        let clusters = d.size.div_ceil(CLUSTER_SIZE);
        seen[d.id as usize] = Some((vec![0u64; clusters.div_ceil(64) as usize], clusters));
    }
    let mut extents = 0;
    let mut data_blocks = 0;
    let mut eh = [0u8; EXTENT_HEADER_SIZE];
    let mut sink = vec![0u8; BLOCK_SIZE * 16];
    loop {
        if !fill(&mut r, &mut eh, "an extent header", offset)? {
            break;
        }
        let bad = |reason: String| VmaError::BadExtent { offset, reason };
        if &eh[0..4] != EXTENT_MAGIC {
            return Err(bad("bad extent magic".into()));
        }
        if eh[8..24] != header.uuid {
            return Err(bad("uuid differs from the archive header".into()));
        }
        let mut stored = [0u8; 16];
        stored.copy_from_slice(&eh[24..40]);
        eh[24..40].fill(0);
        if Md5::digest(eh).as_slice() != stored {
            return Err(bad("wrong extent header MD5 checksum".into()));
        }
        let block_count = u16::from_be_bytes([eh[6], eh[7]]);
        let counted = mark_clusters(&eh, &mut seen).map_err(bad)?;
        if counted != u32::from(block_count) {
            return Err(bad(format!(
                "block_count {block_count} but block infos announce {counted}"
            )));
        }
        let data_len = usize::from(block_count) * BLOCK_SIZE;
        let mut left = data_len;
        while left > 0 {
            let n = left.min(sink.len());
            let at = offset + (EXTENT_HEADER_SIZE + data_len - left) as u64;
            if !fill(&mut r, &mut sink[..n], "extent data", at)? {
                return Err(VmaError::Truncated {
                    what: "extent data",
                    offset: at,
                });
            }
            left -= n;
        }
        offset += (EXTENT_HEADER_SIZE + data_len) as u64;
        extents += 1;
        data_blocks += u64::from(block_count);
    }
    for d in &header.devices {
        if let Some((bits, total)) = &seen[d.id as usize] {
            let present: u64 = bits.iter().map(|w| u64::from(w.count_ones())).sum();
            if present != *total {
                return Err(VmaError::Incomplete {
                    device: d.name.clone(),
                    missing: total - present,
                    total: *total,
                });
            }
        }
    }
    Ok(VmaInfo {
        header,
        extents,
        data_blocks,
        stream_bytes: offset,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use testbed::sim::vma as fixture;

    fn stream() -> Vec<u8> {
        let spec = fixture::small_spec(7);
        let mut v = Vec::new();
        fixture::write(&mut v, &spec).unwrap();
        v
    }

    #[test]
    fn vma_parser_accepts_sound_streams_and_names_each_fault() {
        let v = stream();
        let s = verify(&v[..]).unwrap();
        assert_eq!(s.header.devices.len(), 2);
        assert_eq!(s.stream_bytes, v.len() as u64);
        let header = u32::from_be_bytes(v[56..60].try_into().unwrap()) as usize;
        type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Corrupt, &str)> = vec![
            (Box::new(|v| v[0] = b'X'), "magic"),
            (Box::new(|v| v[7] = 2), "version"),
            (Box::new(|v| v[30] ^= 1), "header MD5"),
            (Box::new(move |v| v[header + 45] ^= 0x10), "extent"),
            (Box::new(move |v| v[header + 1] ^= 0x01), "extent magic"),
            (Box::new(move |v| v[header + 9] ^= 0x01), "uuid"),
            (Box::new(|v| v.truncate(v.len() - 100)), "stream ends"),
            (Box::new(move |v| v.truncate(header)), "missing"),
        ];
        for (corrupt, needle) in cases {
            let mut bad = v.clone();
            corrupt(&mut bad);
            let err = verify(&bad[..]).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn a_huge_device_is_refused_before_allocating() {
        let mut v = stream();
        // Device 1's size (offset 4096 + 32 + 8) set to 2^60 bytes; the header MD5 recomputed.
        v[4136..4144].copy_from_slice(&(1u64 << 60).to_be_bytes());
        v[32..48].fill(0);
        let header = be32(&v, 56) as usize;
        let digest = Md5::digest(&v[..header]);
        v[32..48].copy_from_slice(&digest);
        let err = verify(&v[..]).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }
}
