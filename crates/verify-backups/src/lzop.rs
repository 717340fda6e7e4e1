//! A streaming reader of the lzop container (what `vzdump --compress lzo` writes through `lzop`): the magic,
//! the header and its checksum, then blocks of LZO1X data, each with the checksums the header's flags
//! declare (Adler-32 and/or CRC-32 of the uncompressed block, optionally of the compressed block too). It
//! checks what `lzop -t` checks, block by block, and hands out the uncompressed bytes, so `--deep
//! --local-dir` tests, parses and hashes a `.lzo` archive in the same single pass as a `.zst` one.
//!
//! LZO1X decompression itself is the `lzokay` crate (MIT, bounds-checked: a corrupt block is an error,
//! never a panic). The container layout follows lzop 1.04's `src/lzop.c` (`p_header`, `x_decompress`).
//! Every integer in the container is big-endian.

use std::io::{self, Read};

/// `\x89LZO\0\r\n\x1a\n`.
const MAGIC: [u8; 9] = [0x89, b'L', b'Z', b'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a];

const F_ADLER32_D: u32 = 0x0000_0001;
const F_ADLER32_C: u32 = 0x0000_0002;
const F_H_EXTRA_FIELD: u32 = 0x0000_0040;
const F_CRC32_D: u32 = 0x0000_0100;
const F_CRC32_C: u32 = 0x0000_0200;
const F_MULTIPART: u32 = 0x0000_0400;
const F_H_FILTER: u32 = 0x0000_0800;
const F_H_CRC32: u32 = 0x0000_1000;
/// Flags lzop knows; any other bit (outside the OS and character-set fields) means a newer or corrupt file.
const F_MASK: u32 = 0x0000_3fff;
const F_OS_MASK: u32 = 0xff00_0000;
const F_CS_MASK: u32 = 0x00f0_0000;
const F_RESERVED: u32 = !(F_MASK | F_OS_MASK | F_CS_MASK);

/// lzop's own limit on the uncompressed size of a block.
const MAX_BLOCK: usize = 64 << 20;
/// The newest format version this reader knows (lzop 1.04 writes 0x1040 and needs 0x0940).
const KNOWN_VERSION: u16 = 0x1040;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The checksum algorithm lzop names by a flag: Adler-32 (initial value 1) or CRC-32 (initial value 0),
/// both the zlib definitions.
#[derive(Clone, Copy)]
enum Sum {
    Adler32,
    Crc32,
}

impl Sum {
    fn of(self, data: &[u8]) -> u32 {
        match self {
            Sum::Adler32 => adler2::adler32_slice(data),
            Sum::Crc32 => crc32fast::hash(data),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sum::Adler32 => "Adler-32",
            Sum::Crc32 => "CRC-32",
        }
    }
}

/// Exact reads from the file, counting the offset for error messages.
struct Counted<'a, R> {
    inner: &'a mut R,
    /// Bytes consumed so far (for error positions).
    offset: &'a mut u64,
}

impl<R: Read> Counted<'_, R> {
    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of input before the first byte.
    fn exact_or_eof(&mut self, buf: &mut [u8], what: &str) -> io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(bad(format!(
                        "lzop: file ends inside {what} at offset {}",
                        *self.offset + got as u64
                    )));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        *self.offset += got as u64;
        Ok(true)
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> io::Result<()> {
        if self.exact_or_eof(buf, what)? || buf.is_empty() {
            Ok(())
        } else {
            Err(bad(format!(
                "lzop: file ends before {what} at offset {}",
                self.offset
            )))
        }
    }

    fn be32(&mut self, what: &str) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_be_bytes(b))
    }
}

/// What the file header declares.
#[derive(Clone, Copy, Debug)]
struct Header {
    flags: u32,
}

impl Header {
    fn has(self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// The "version needed to extract" of a header: one this reader knows.
fn check_needed(needed: u16) -> io::Result<()> {
    if needed > KNOWN_VERSION {
        return Err(bad(format!(
            "lzop: the file needs lzop version {needed:#06x} to extract"
        )));
    }
    if needed < 0x0900 {
        return Err(bad(format!(
            "lzop: corrupt header (version needed {needed:#06x})"
        )));
    }
    Ok(())
}

/// The compression method of a header: one of LZO1X's.
fn check_method(method: u8) -> io::Result<()> {
    if (1..=3).contains(&method) {
        Ok(())
    } else {
        Err(bad(format!(
            "lzop: compression method {method} is not LZO1X (not supported)"
        )))
    }
}

/// Reads the header's extra field, checking its checksum (which covers its length word and its bytes).
fn skip_extra_field<R: Read>(r: &mut Counted<'_, R>, sum: Sum) -> io::Result<()> {
    let len = r.be32("the lzop extra field")?;
    if len as usize > MAX_BLOCK {
        return Err(bad(format!("lzop: corrupt extra field of {len} bytes")));
    }
    let mut extra = len.to_be_bytes().to_vec();
    extra.resize(4 + len as usize, 0);
    r.exact(&mut extra[4..], "the lzop extra field")?;
    let stored = r.be32("the lzop extra field checksum")?;
    if stored != sum.of(&extra) {
        return Err(bad("lzop: extra field checksum mismatch"));
    }
    Ok(())
}

/// Reads and checks the header (the magic included).
fn read_header<R: Read>(r: &mut Counted<'_, R>) -> io::Result<Header> {
    let mut magic = [0u8; 9];
    if !r.exact_or_eof(&mut magic, "the lzop magic")? {
        return Err(bad("lzop: empty file (no lzop header)"));
    }
    if magic != MAGIC {
        return Err(bad("lzop: bad magic (not an lzop file)"));
    }
    // Everything after the magic up to the name is covered by the header checksum.
    let mut h = Vec::with_capacity(64);
    let take = |r: &mut Counted<'_, R>, n: usize, h: &mut Vec<u8>| -> io::Result<()> {
        let start = h.len();
        h.resize(start + n, 0);
        r.exact(&mut h[start..], "the lzop header")
    };
    take(r, 4, &mut h)?;
    let version = u16::from_be_bytes([h[0], h[1]]);
    let lib_version = u16::from_be_bytes([h[2], h[3]]);
    if version < 0x0900 || lib_version < 0x0900 {
        return Err(bad(format!(
            "lzop: header version {version:#06x} (library {lib_version:#06x}) is not an lzop file this reader knows"
        )));
    }
    // Files before 0x0940 have no "version needed to extract" and no level byte.
    if version >= 0x0940 {
        take(r, 2, &mut h)?;
        check_needed(u16::from_be_bytes([h[4], h[5]]))?;
    }
    take(r, 1, &mut h)?;
    check_method(h[h.len() - 1])?;
    if version >= 0x0940 {
        take(r, 1, &mut h)?; // level
    }
    let at = h.len();
    take(r, 4, &mut h)?;
    let flags = u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if flags & F_RESERVED != 0 {
        return Err(bad(format!(
            "lzop: unknown header flags {:#010x} (corrupt header?)",
            flags & F_RESERVED
        )));
    }
    if flags & F_H_FILTER != 0 {
        let at = h.len();
        take(r, 4, &mut h)?;
        let filter = u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        if filter != 0 {
            return Err(bad(format!(
                "lzop: filter {filter} is not supported (files written with lzop --filter)"
            )));
        }
    }
    // mode, mtime low, (mtime high), name length.
    take(r, 8, &mut h)?;
    if version >= 0x0940 {
        take(r, 4, &mut h)?;
    }
    take(r, 1, &mut h)?;
    let name_len = usize::from(h[h.len() - 1]);
    take(r, name_len, &mut h)?;
    let sum = if flags & F_H_CRC32 != 0 {
        Sum::Crc32
    } else {
        Sum::Adler32
    };
    let stored = r.be32("the lzop header checksum")?;
    let computed = sum.of(&h);
    if stored != computed {
        return Err(bad(format!(
            "lzop: header {} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})",
            sum.name()
        )));
    }
    if flags & F_H_EXTRA_FIELD != 0 {
        skip_extra_field(r, sum)?;
    }
    if flags & F_MULTIPART != 0 {
        return Err(bad("lzop: multipart archives are not supported"));
    }
    Ok(Header { flags })
}

/// Compares the block checksums read from the file with those of `data` (`what` names the data).
fn check_sums(sums: &[(Sum, u32)], data: &[u8], what: &str) -> Result<(), String> {
    for (sum, want) in sums {
        let got = sum.of(data);
        if got != *want {
            return Err(format!(
                "{} checksum of the {what} data mismatch (stored {want:#010x}, computed {got:#010x})",
                sum.name()
            ));
        }
    }
    Ok(())
}

/// A `Read` that yields the uncompressed content of an lzop file and fails (with `InvalidData`) at the
/// first thing `lzop -t` would reject: bad magic or header, a header or block checksum mismatch, a
/// corrupt LZO1X block, a file that ends before the end-of-stream marker, or bytes after it.
pub struct LzopReader<R> {
    inner: R,
    header: Option<Header>,
    /// Uncompressed bytes of the current block, and how far they have been handed out.
    out: Vec<u8>,
    pos: usize,
    /// Compressed bytes of the current block.
    packed: Vec<u8>,
    /// Offset in the file (for messages) and block number.
    offset: u64,
    block: u64,
    done: bool,
    /// Set once an error was returned: the stream is not read further.
    failed: bool,
}

impl<R: Read> LzopReader<R> {
    /// A reader over a whole lzop file.
    pub fn new(inner: R) -> LzopReader<R> {
        LzopReader {
            inner,
            header: None,
            out: Vec::new(),
            pos: 0,
            packed: Vec::new(),
            offset: 0,
            block: 0,
            done: false,
            failed: false,
        }
    }

    /// Reads the next block into `out`; `Ok(false)` at the end-of-stream marker.
    fn next_block(&mut self) -> io::Result<bool> {
        let mut r = Counted {
            inner: &mut self.inner,
            offset: &mut self.offset,
        };
        let header = match self.header {
            Some(h) => h,
            None => {
                let h = read_header(&mut r)?;
                self.header = Some(h);
                h
            }
        };
        let at = *r.offset;
        let block = self.block;
        let dst_len = r.be32("a block header (no end-of-stream marker)")? as usize;
        if dst_len == 0 {
            // The end-of-stream marker; lzop -t warns about (and exits non-zero on) anything after it.
            let mut one = [0u8; 1];
            if r.exact_or_eof(&mut one, "trailing data")? {
                return Err(bad(format!(
                    "lzop: data after the end of the lzop stream at offset {at} (trailing garbage or a concatenated archive)"
                )));
            }
            return Ok(false);
        }
        let corrupt = |why: String| bad(format!("lzop: block {block} at offset {at}: {why}"));
        if dst_len > MAX_BLOCK {
            return Err(corrupt(format!(
                "uncompressed size {dst_len} exceeds lzop's limit (corrupt block header)"
            )));
        }
        let src_len = r.be32("a block header")? as usize;
        if src_len == 0 || src_len > dst_len {
            return Err(corrupt(format!(
                "compressed size {src_len} for {dst_len} bytes (corrupt block header)"
            )));
        }
        let stored = src_len == dst_len;
        let mut d_sums: Vec<(Sum, u32)> = Vec::with_capacity(2);
        if header.has(F_ADLER32_D) {
            d_sums.push((Sum::Adler32, r.be32("a block checksum")?));
        }
        if header.has(F_CRC32_D) {
            d_sums.push((Sum::Crc32, r.be32("a block checksum")?));
        }
        // Checksums of the compressed bytes are written only for blocks that are really compressed.
        let mut c_sums: Vec<(Sum, u32)> = Vec::with_capacity(2);
        if !stored {
            if header.has(F_ADLER32_C) {
                c_sums.push((Sum::Adler32, r.be32("a block checksum")?));
            }
            if header.has(F_CRC32_C) {
                c_sums.push((Sum::Crc32, r.be32("a block checksum")?));
            }
        }
        self.block += 1;
        self.out.resize(dst_len, 0);
        if stored {
            r.exact(&mut self.out, "block data")?;
        } else {
            self.packed.resize(src_len, 0);
            r.exact(&mut self.packed, "block data")?;
            check_sums(&c_sums, &self.packed, "compressed").map_err(corrupt)?;
            match lzokay::decompress::decompress(&self.packed, &mut self.out) {
                Ok(n) if n == dst_len => {}
                Ok(n) => {
                    return Err(corrupt(format!(
                        "LZO1X data decompressed to {n} bytes, the header says {dst_len}"
                    )));
                }
                Err(e) => return Err(corrupt(format!("corrupt LZO1X data ({e})"))),
            }
        }
        check_sums(&d_sums, &self.out, "uncompressed").map_err(corrupt)?;
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for LzopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.out.len() {
            if self.done {
                return Ok(0);
            }
            if self.failed {
                return Err(bad("lzop: stream already failed"));
            }
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    self.out.clear();
                    self.pos = 0;
                }
                Err(e) => {
                    self.failed = true;
                    self.out.clear();
                    self.pos = 0;
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A hand-built lzop file of stored blocks (no compression needed to test the container).
    fn stored_file(blocks: &[&[u8]], flags: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(0x1040u16.to_be_bytes());
        h.extend(0x20a0u16.to_be_bytes());
        h.extend(0x0940u16.to_be_bytes());
        h.push(1); // LZO1X-1
        h.push(5);
        h.extend(flags.to_be_bytes());
        h.extend(0o100644u32.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        h.push(1);
        h.push(b'x');
        let sum = if flags & F_H_CRC32 != 0 {
            crc32fast::hash(&h)
        } else {
            adler2::adler32_slice(&h)
        };
        let mut f = MAGIC.to_vec();
        f.extend(&h);
        f.extend(sum.to_be_bytes());
        for b in blocks {
            f.extend((b.len() as u32).to_be_bytes());
            f.extend((b.len() as u32).to_be_bytes());
            if flags & F_ADLER32_D != 0 {
                f.extend(adler2::adler32_slice(b).to_be_bytes());
            }
            if flags & F_CRC32_D != 0 {
                f.extend(crc32fast::hash(b).to_be_bytes());
            }
            f.extend(*b);
        }
        f.extend(0u32.to_be_bytes());
        f
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        LzopReader::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn stored_blocks_with_each_checksum_kind() {
        for flags in [
            F_ADLER32_D,
            F_CRC32_D,
            F_ADLER32_D | F_CRC32_D | F_H_CRC32,
            0x0300_0000,
        ] {
            let f = stored_file(&[b"hello ", b"world"], flags);
            assert_eq!(read_all(&f).unwrap(), b"hello world", "{flags:#x}");
        }
    }

    #[test]
    fn each_fault_is_named() {
        let good = stored_file(&[b"hello ", b"world"], F_ADLER32_D | F_CRC32_D);
        type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Corrupt, &str)> = vec![
            (Box::new(|f| f[1] = b'X'), "magic"),
            (Box::new(|f| f[16] ^= 1), "header Adler-32"),
            (Box::new(|f| f[15] = 9), "method 9"),
            (Box::new(|f| f[19] |= 0x40), "unknown header flags"),
            (Box::new(|f| f.truncate(f.len() - 4)), "no end-of-stream"),
            (Box::new(|f| f.truncate(f.len() - 9)), "block data"),
            (Box::new(|f| f.push(0)), "after the end"),
            (Box::new(|f| f.truncate(20)), "ends inside the lzop header"),
            (Box::new(|f| f.clear()), "empty"),
        ];
        for (corrupt, needle) in cases {
            let mut f = good.clone();
            corrupt(&mut f);
            let err = read_all(&f).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // A flipped data byte: the block checksums catch it.
        let mut f = good.clone();
        let at = f.len() - 5;
        f[at] ^= 1;
        let err = read_all(&f).unwrap_err().to_string();
        assert!(err.contains("block 1") && err.contains("checksum"), "{err}");
    }

    #[test]
    fn a_failed_stream_stays_failed() {
        let mut f = stored_file(&[b"abc"], F_ADLER32_D);
        let at = f.len() - 5;
        f[at] ^= 1;
        let mut r = LzopReader::new(&f[..]);
        let mut buf = [0u8; 8];
        assert!(r.read(&mut buf).is_err());
        assert!(r.read(&mut buf).is_err());
    }
}
