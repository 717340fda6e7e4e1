//! The VMA archive format of Proxmox (`vma_spec.txt` in pve-qemu): a writer that produces real, valid
//! streams quickly (sparse disks, pseudo-random data), and file helpers around the reader of
//! `pve_common::vma`, which checks everything the format can check: magic, version, header MD5, blob
//! table, device table, every extent header (magic, uuid, MD5, block count) and that every cluster of
//! every device is present exactly once.
//!
//! VMA itself has no checksum over cluster data; a flipped data byte is only detected through the zstd
//! frame checksum of a `.vma.zst` (which [`verify_file`] checks, since the decoder verifies it).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use md5::{Digest, Md5};

// The reader is pve-common's (the one verify-backups uses); re-exported so `sim::vma` stays the one place
// tests and the simulated `vma` command reach the format through.
pub use pve_common::vma::{
    BLOCK_SIZE, BLOCKS_PER_EXTENT, CLUSTER_SIZE, Device, EXTENT_HEADER_SIZE, EXTENT_MAGIC,
    HEADER_FIXED_SIZE, MAGIC, VmaError, VmaHeader, VmaInfo, be32, be64, read_header, verify,
};

/// zstd level of the archives: a fast negative level, since the filler data is mostly
/// incompressible anyway and benchmarks want big archives quickly (the format is the same).
pub const ZSTD_LEVEL: i32 = -5;

/// What to write.
#[derive(Debug, Clone)]
pub struct VmaSpec {
    /// Archive uuid (also stamped on every extent).
    pub uuid: [u8; 16],
    /// Backup time, seconds since the epoch.
    pub ctime: i64,
    /// Config files: name (e.g. `qemu-server.conf`) and content.
    pub configs: Vec<(String, Vec<u8>)>,
    /// Devices: name and size in bytes (ids are assigned 1, 2, ...).
    pub devices: Vec<(String, u64)>,
    /// Bytes of non-zero data to store (rounded up to 4 KiB blocks, capped by the device sizes);
    /// the rest of the disks is sparse.
    pub data_bytes: u64,
    /// Seed of the pseudo-random data.
    pub seed: u64,
}

/// Totals of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteStats {
    /// Uncompressed stream bytes.
    pub stream_bytes: u64,
    /// Non-zero data bytes stored.
    pub data_bytes: u64,
    /// Sum of the device sizes.
    pub total_bytes: u64,
}

/// A small two-device archive (8 MiB and a partial last cluster, one config) for unit tests of VMA
/// readers.
pub fn small_spec(seed: u64) -> VmaSpec {
    VmaSpec {
        uuid: *b"0123456789abcdef",
        ctime: 1_763_604_001,
        configs: vec![("qemu-server.conf".into(), b"cores: 2\n".to_vec())],
        devices: vec![
            ("drive-scsi0".into(), 8 << 20),
            ("drive-scsi1".into(), 100_000),
        ],
        data_bytes: 600_000,
        seed,
    }
}

/// Builds the header bytes (fixed part and blob buffer, MD5 filled in).
pub fn build_header(spec: &VmaSpec) -> io::Result<Vec<u8>> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
    if spec.configs.len() > 256 || spec.devices.len() > 255 {
        return Err(invalid("too many configs or devices"));
    }
    // Blob buffer: entries of a 2-byte little-endian length and the data; offset 0 means "unset",
    // so the table starts at 1 as in vma-writer.c. Names are stored NUL-terminated.
    let mut blob = vec![0u8];
    let mut add_blob = |data: &[u8]| -> io::Result<u32> {
        let len = u16::try_from(data.len()).map_err(|_| invalid("blob larger than 64 KiB"))?;
        let pos = u32::try_from(blob.len()).map_err(|_| invalid("blob table too large"))?;
        blob.extend_from_slice(&len.to_le_bytes());
        blob.extend_from_slice(data);
        Ok(pos)
    };
    let mut h = vec![0u8; HEADER_FIXED_SIZE];
    for (i, (name, data)) in spec.configs.iter().enumerate() {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let np = add_blob(&n)?;
        let dp = add_blob(data)?;
        h[2044 + 4 * i..2048 + 4 * i].copy_from_slice(&np.to_be_bytes());
        h[3068 + 4 * i..3072 + 4 * i].copy_from_slice(&dp.to_be_bytes());
    }
    for (i, (name, size)) in spec.devices.iter().enumerate() {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let np = add_blob(&n)?;
        let off = 4096 + 32 * (i + 1);
        h[off..off + 4].copy_from_slice(&np.to_be_bytes());
        h[off + 8..off + 16].copy_from_slice(&size.to_be_bytes());
    }
    let blob_size = blob.len().div_ceil(512) * 512;
    blob.resize(blob_size, 0);
    h[0..4].copy_from_slice(MAGIC);
    h[4..8].copy_from_slice(&1u32.to_be_bytes());
    h[8..24].copy_from_slice(&spec.uuid);
    h[24..32].copy_from_slice(&spec.ctime.to_be_bytes());
    let header_size = HEADER_FIXED_SIZE + blob_size;
    h[48..52].copy_from_slice(&(HEADER_FIXED_SIZE as u32).to_be_bytes());
    h[52..56].copy_from_slice(&(blob_size as u32).to_be_bytes());
    h[56..60].copy_from_slice(&(header_size as u32).to_be_bytes());
    h.extend_from_slice(&blob);
    let digest = Md5::digest(&h);
    h[32..48].copy_from_slice(&digest);
    Ok(h)
}

/// Fast deterministic filler data: each 4 KiB block is three quarters pseudo-random (incompressible)
/// and one quarter text (compressible). The random part is cut from an 8 MiB pool, far larger than
/// zstd's window at level 1, so it does not compress even though the pool repeats; copying slices
/// keeps generation fast even in debug builds.
pub(crate) struct Filler {
    pool: Vec<u8>,
    pos: usize,
    text: Vec<u8>,
}

impl Filler {
    /// A filler seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Filler {
        const POOL: usize = 8 << 20;
        let mut x = seed | 1;
        let mut pool = Vec::with_capacity(POOL);
        while pool.len() < POOL {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            pool.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let text: Vec<u8> = b"pve-sim filler: compressible text of a simulated disk block. "
            .iter()
            .copied()
            .cycle()
            .take(BLOCK_SIZE / 4)
            .collect();
        Filler { pool, pos: 0, text }
    }

    /// Appends one 4 KiB block.
    pub(crate) fn block(&mut self, out: &mut Vec<u8>) {
        let random = 3 * BLOCK_SIZE / 4;
        if self.pos + random > self.pool.len() {
            self.pos = (self.pos + 8) % 4096;
        }
        out.extend_from_slice(&self.pool[self.pos..self.pos + random]);
        self.pos += random + 8;
        out.extend_from_slice(&self.text);
    }
}

/// Writes a complete VMA stream to `w`.
pub fn write<W: Write>(mut w: W, spec: &VmaSpec) -> io::Result<WriteStats> {
    let header = build_header(spec)?;
    w.write_all(&header)?;
    let mut stats = WriteStats {
        stream_bytes: header.len() as u64,
        ..WriteStats::default()
    };
    let mut filler = Filler::new(spec.seed);
    let mut data_blocks_left = spec.data_bytes.div_ceil(BLOCK_SIZE as u64);
    // Every (device, cluster) pair in order; the first clusters of the first devices carry the data.
    let mut pending: Vec<(u8, u32, u16)> = Vec::with_capacity(BLOCKS_PER_EXTENT);
    let mut buf: Vec<u8> =
        Vec::with_capacity(EXTENT_HEADER_SIZE + BLOCKS_PER_EXTENT * CLUSTER_SIZE as usize);
    let mut flush =
        |pending: &mut Vec<(u8, u32, u16)>, w: &mut W, stats: &mut WriteStats| -> io::Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            buf.clear();
            buf.resize(EXTENT_HEADER_SIZE, 0);
            buf[0..4].copy_from_slice(EXTENT_MAGIC);
            let mut count = 0u32;
            for (i, &(dev, cluster, mask)) in pending.iter().enumerate() {
                let info = (u64::from(mask) << 48) | (u64::from(dev) << 32) | u64::from(cluster);
                buf[40 + 8 * i..48 + 8 * i].copy_from_slice(&info.to_be_bytes());
                count += mask.count_ones();
            }
            buf[6..8].copy_from_slice(&(count as u16).to_be_bytes());
            buf[8..24].copy_from_slice(&spec.uuid);
            let digest = Md5::digest(&buf[..EXTENT_HEADER_SIZE]);
            buf[24..40].copy_from_slice(&digest);
            for &(_, _, mask) in pending.iter() {
                for bit in 0..16 {
                    if mask & (1 << bit) != 0 {
                        filler.block(&mut buf);
                    }
                }
            }
            w.write_all(&buf)?;
            stats.stream_bytes += buf.len() as u64;
            stats.data_bytes += u64::from(count) * BLOCK_SIZE as u64;
            pending.clear();
            Ok(())
        };
    for (i, (_, size)) in spec.devices.iter().enumerate() {
        let dev = (i + 1) as u8;
        stats.total_bytes += size;
        let clusters = size.div_ceil(CLUSTER_SIZE);
        let clusters = u32::try_from(clusters)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "device too large"))?;
        // Blocks past the end of the device never carry data.
        for cluster in 0..clusters {
            let in_dev = ((size - u64::from(cluster) * CLUSTER_SIZE).min(CLUSTER_SIZE))
                .div_ceil(BLOCK_SIZE as u64);
            let n = data_blocks_left.min(in_dev);
            data_blocks_left -= n;
            let mask: u16 = if n >= 16 {
                0xffff
            } else {
                ((1u32 << n) - 1) as u16
            };
            pending.push((dev, cluster, mask));
            if pending.len() == BLOCKS_PER_EXTENT {
                flush(&mut pending, &mut w, &mut stats)?;
            }
        }
    }
    flush(&mut pending, &mut w, &mut stats)?;
    w.flush()?;
    Ok(stats)
}

/// Writes `spec` as a `.vma.zst` ([`ZSTD_LEVEL`], with content checksum) at `path`.
pub fn write_zst(path: &Path, spec: &VmaSpec) -> io::Result<WriteStats> {
    let file = File::create(path)?;
    let mut enc =
        zstd::stream::write::Encoder::new(BufWriter::with_capacity(1 << 20, file), ZSTD_LEVEL)?;
    enc.include_checksum(true)?;
    let stats = write(&mut enc, spec)?;
    enc.finish()?.flush()?;
    Ok(stats)
}

fn open_maybe_zst(path: &Path) -> Result<Box<dyn Read>, VmaError> {
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let name = path.to_string_lossy();
    if name.ends_with(".zst") {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(file)?))
    } else {
        Ok(Box::new(file))
    }
}

/// Verifies a `.vma` or `.vma.zst` file (the zstd frame checksum too).
pub fn verify_file(path: &Path) -> Result<VmaInfo, VmaError> {
    let r = open_maybe_zst(path)?;
    let info = verify(r)?;
    Ok(info)
}

/// Reads only the header of a `.vma` or `.vma.zst` file (fast: config and devices).
pub fn read_header_file(path: &Path) -> Result<VmaHeader, VmaError> {
    let mut r = open_maybe_zst(path)?;
    read_header(&mut r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmaSpec {
        VmaSpec {
            uuid: *b"0123456789abcdef",
            ctime: 1_763_604_001,
            configs: vec![(
                "qemu-server.conf".into(),
                b"cores: 2\nmemory: 2048\n".to_vec(),
            )],
            devices: vec![
                ("drive-scsi0".into(), 8 << 20),
                ("drive-scsi1".into(), 100_000),
            ],
            data_bytes: 300_000,
            seed: 7,
        }
    }

    fn stream() -> Vec<u8> {
        let mut v = Vec::new();
        write(&mut v, &spec()).unwrap();
        v
    }

    #[test]
    fn round_trip() {
        let v = stream();
        let info = verify(&v[..]).unwrap();
        assert_eq!(info.header.ctime, 1_763_604_001);
        assert_eq!(
            info.header.config("qemu-server.conf").unwrap(),
            "cores: 2\nmemory: 2048\n"
        );
        assert_eq!(info.header.devices.len(), 2);
        assert_eq!(info.header.devices[1].name, "drive-scsi1");
        assert_eq!(info.header.devices[1].size, 100_000);
        assert_eq!(info.data_blocks, 300_000u64.div_ceil(4096));
        assert_eq!(info.stream_bytes, v.len() as u64);
        assert_eq!(info.header.header_size % 512, 0);
    }

    #[test]
    fn header_checksum_detected() {
        let mut v = stream();
        v[30] ^= 1; // inside ctime
        assert!(matches!(verify(&v[..]), Err(VmaError::HeaderChecksum)));
        let mut v = stream();
        v[32] ^= 1; // the md5 field itself
        assert!(matches!(verify(&v[..]), Err(VmaError::HeaderChecksum)));
    }

    #[test]
    fn extent_header_flip_detected() {
        let mut v = stream();
        let first_extent = build_header(&spec()).unwrap().len();
        v[first_extent + 45] ^= 0x10; // a block info
        let err = verify(&v[..]).unwrap_err();
        assert!(matches!(err, VmaError::BadExtent { .. }), "{err}");
    }

    #[test]
    fn truncation_and_missing_extents_detected() {
        let v = stream();
        let err = verify(&v[..v.len() - 100]).unwrap_err();
        assert!(matches!(err, VmaError::Truncated { .. }), "{err}");
        let header_len = build_header(&spec()).unwrap().len();
        let err = verify(&v[..header_len]).unwrap_err();
        assert!(matches!(err, VmaError::Incomplete { .. }), "{err}");
    }

    #[test]
    fn zst_data_flip_detected_by_frame_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.vma.zst");
        write_zst(&p, &spec()).unwrap();
        verify_file(&p).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&p, &bytes).unwrap();
        assert!(verify_file(&p).is_err());
    }
}
