//! A streaming checker of Proxmox's VMA format (`vma_spec.txt` in pve-qemu): magic, version, header MD5,
//! blob and device tables, then every extent header (magic, archive uuid, MD5, block count) and that every
//! 64 KiB cluster of every device is stored exactly once. It reads from any `Read` (a decompressor), so
//! the archive is checked in the same pass that decompresses and hashes it.
//!
//! VMA has no checksum over cluster data: a flipped data byte is caught only by the compression layer's
//! checksum, which the caller drains and checks after this parser is done.

use std::io::{self, Read};

use md5::{Digest, Md5};

const MAGIC: &[u8; 4] = b"VMA\0";
const EXTENT_MAGIC: &[u8; 4] = b"VMAE";
const HEADER_FIXED: usize = 12288;
const MAX_HEADER: usize = 16 << 20;
const EXTENT_HEADER: usize = 512;
const BLOCKS_PER_EXTENT: usize = 59;
const CLUSTER: u64 = 65536;
const BLOCK: usize = 4096;

/// Why a stream is not a sound VMA archive.
#[derive(Debug)]
pub enum VmaError {
    /// The underlying reader failed (for a decompressor: the compressed stream is corrupt).
    Io(io::Error),
    /// The format is violated; the text says where and how.
    Format(String),
}

impl std::fmt::Display for VmaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmaError::Io(e) => write!(f, "read error: {e}"),
            VmaError::Format(m) => f.write_str(m),
        }
    }
}

/// What a sound archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmaSummary {
    /// Device names and sizes.
    pub devices: Vec<(String, u64)>,
    /// Config file names (`qemu-server.conf`, ...).
    pub configs: Vec<String>,
    /// Extents read.
    pub extents: u64,
    /// Uncompressed stream bytes.
    pub stream_bytes: u64,
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// Fills `buf`; `Ok(false)` on a clean end of stream before the first byte, a format error when the stream
/// ends part-way (`what` names the structure).
fn fill<R: Read>(r: &mut R, buf: &mut [u8], what: &str, offset: u64) -> Result<bool, VmaError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(VmaError::Format(format!(
                    "stream ends inside {what} at offset {}",
                    offset + got as u64
                )));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(VmaError::Io(e)),
        }
    }
    Ok(true)
}

fn header_bytes<R: Read>(r: &mut R) -> Result<Vec<u8>, VmaError> {
    let mut h = vec![0u8; HEADER_FIXED];
    if !fill(r, &mut h, "the VMA header", 0)? {
        return Err(VmaError::Format("empty stream (no VMA header)".into()));
    }
    if &h[0..4] != MAGIC {
        return Err(VmaError::Format("bad VMA magic (not a VMA archive)".into()));
    }
    let version = be32(&h, 4);
    if version != 1 {
        return Err(VmaError::Format(format!(
            "unsupported VMA version {version}"
        )));
    }
    let blob_off = be32(&h, 48) as usize;
    let blob_size = be32(&h, 52) as usize;
    let header_size = be32(&h, 56) as usize;
    if !(HEADER_FIXED..=MAX_HEADER).contains(&header_size)
        || blob_off < HEADER_FIXED
        || blob_off + blob_size > header_size
    {
        return Err(VmaError::Format(format!(
            "corrupt VMA header: blob buffer {blob_off}+{blob_size} outside a header of {header_size} bytes"
        )));
    }
    h.resize(header_size, 0);
    if !fill(
        r,
        &mut h[HEADER_FIXED..],
        "the VMA header",
        HEADER_FIXED as u64,
    )? {
        return Err(VmaError::Format("stream ends inside the VMA header".into()));
    }
    let mut stored = [0u8; 16];
    stored.copy_from_slice(&h[32..48]);
    h[32..48].fill(0);
    if Md5::digest(&h).as_slice() != stored {
        return Err(VmaError::Format("wrong VMA header MD5 checksum".into()));
    }
    h[32..48].copy_from_slice(&stored);
    Ok(h)
}

/// Reads the whole VMA stream from `r` and checks it. Stops right after the last extent (the caller drains
/// the reader to the end, where a compressor keeps its checksum).
pub fn check<R: Read>(mut r: R) -> Result<VmaSummary, VmaError> {
    let h = header_bytes(&mut r)?;
    let blob_off = be32(&h, 48) as usize;
    let blob_size = be32(&h, 52) as usize;
    let blob = &h[blob_off..blob_off + blob_size];
    let get_blob = |pos: u32| -> Result<&[u8], VmaError> {
        let p = pos as usize;
        if p + 2 > blob.len() {
            return Err(VmaError::Format(format!(
                "corrupt VMA header: blob offset {p} out of range"
            )));
        }
        let len = usize::from(blob[p]) | (usize::from(blob[p + 1]) << 8);
        blob.get(p + 2..p + 2 + len).ok_or_else(|| {
            VmaError::Format(format!(
                "corrupt VMA header: blob at {p} of {len} bytes out of range"
            ))
        })
    };
    let cstr = |b: &[u8]| {
        String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or_default()).into_owned()
    };
    let mut configs = Vec::new();
    for i in 0..256 {
        let np = be32(&h, 2044 + 4 * i);
        let dp = be32(&h, 3068 + 4 * i);
        if np == 0 && dp == 0 {
            continue;
        }
        if np == 0 || dp == 0 {
            return Err(VmaError::Format(format!(
                "corrupt VMA header: config {i} has a name or data but not both"
            )));
        }
        get_blob(dp)?;
        configs.push(cstr(get_blob(np)?));
    }
    // Per device id: a bitmap of stored clusters and the cluster count.
    let mut seen: Vec<Option<(Vec<u64>, u64)>> = vec![None; 256];
    let mut devices = Vec::new();
    for (id, slot) in seen.iter_mut().enumerate().skip(1) {
        let off = 4096 + 32 * id;
        let np = be32(&h, off);
        if np == 0 {
            continue;
        }
        let size = be64(&h, off + 8);
        let clusters = size.div_ceil(CLUSTER);
        if clusters > u64::from(u32::MAX) {
            return Err(VmaError::Format(format!(
                "corrupt VMA header: device {id} of {size} bytes is too large"
            )));
        }
        *slot = Some((vec![0u64; clusters.div_ceil(64) as usize], clusters));
        devices.push((id, cstr(get_blob(np)?), size));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&h[8..24]);
    let mut offset = h.len() as u64;
    drop(h);
    let mut extents = 0u64;
    let mut eh = [0u8; EXTENT_HEADER];
    let mut sink = vec![0u8; BLOCK * 16];
    loop {
        if !fill(&mut r, &mut eh, "an extent header", offset)? {
            break;
        }
        let bad = |reason: String| VmaError::Format(format!("extent at offset {offset}: {reason}"));
        if &eh[0..4] != EXTENT_MAGIC {
            return Err(bad("bad extent magic".into()));
        }
        if eh[8..24] != uuid {
            return Err(bad("uuid differs from the archive header".into()));
        }
        let mut stored = [0u8; 16];
        stored.copy_from_slice(&eh[24..40]);
        eh[24..40].fill(0);
        if Md5::digest(eh).as_slice() != stored {
            return Err(bad("wrong extent header MD5 checksum".into()));
        }
        let block_count = u16::from_be_bytes([eh[6], eh[7]]);
        let mut announced = 0u32;
        for i in 0..BLOCKS_PER_EXTENT {
            let info = be64(&eh, 40 + 8 * i);
            let mask = (info >> 48) as u16;
            let dev = ((info >> 32) & 0xff) as usize;
            if dev == 0 {
                continue; // unused slot
            }
            let cluster = info & 0xffff_ffff;
            let Some((bits, total)) = seen[dev].as_mut() else {
                return Err(bad(format!("block info {i} names unknown device {dev}")));
            };
            if cluster >= *total {
                return Err(bad(format!(
                    "cluster {cluster} beyond the end of device {dev}"
                )));
            }
            let (word, bit) = ((cluster / 64) as usize, cluster % 64);
            if bits[word] & (1 << bit) != 0 {
                return Err(bad(format!(
                    "cluster {cluster} of device {dev} stored twice"
                )));
            }
            bits[word] |= 1 << bit;
            announced += mask.count_ones();
        }
        if announced != u32::from(block_count) {
            return Err(bad(format!(
                "block count {block_count} but the block infos announce {announced}"
            )));
        }
        let data_offset = offset + EXTENT_HEADER as u64;
        let mut left = usize::from(block_count) * BLOCK;
        while left > 0 {
            let n = left.min(sink.len());
            if !fill(&mut r, &mut sink[..n], "extent data", data_offset)? {
                return Err(VmaError::Format(format!(
                    "stream ends inside extent data at offset {data_offset}"
                )));
            }
            left -= n;
        }
        offset = data_offset + (usize::from(block_count) * BLOCK) as u64;
        extents += 1;
    }
    for (id, name, _) in &devices {
        if let Some((bits, total)) = &seen[*id] {
            let present: u64 = bits.iter().map(|w| u64::from(w.count_ones())).sum();
            if present != *total {
                return Err(VmaError::Format(format!(
                    "incomplete archive: device '{name}' is missing {} of {total} clusters",
                    total - present
                )));
            }
        }
    }
    Ok(VmaSummary {
        devices: devices.into_iter().map(|(_, n, s)| (n, s)).collect(),
        configs,
        extents,
        stream_bytes: offset,
    })
}
