//! Container backups as vzdump writes them: a tar whose first member is `./etc/vzdump/pct.conf`,
//! followed by a small root file system tree, compressed with zstd (content checksum on).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// What a container archive holds, as found by [`verify_file`].
#[derive(Debug, Clone)]
pub struct TarInfo {
    /// Content of `./etc/vzdump/pct.conf`.
    pub pct_conf: String,
    /// Number of members.
    pub entries: u64,
    /// Sum of the member sizes.
    pub bytes: u64,
}

fn header(
    path: &str,
    size: u64,
    mode: u32,
    kind: tar::EntryType,
    mtime: u64,
) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    // Written raw: tar-rs would normalise "./etc" to "etc", and vzdump's members start with "./".
    let name = &mut h.as_old_mut().name;
    if path.len() >= name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path too long: {path}"),
        ));
    }
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    Ok(h)
}

/// A reader yielding `left` bytes of filler data (see `vma::Filler`).
struct DataReader {
    left: u64,
    filler: super::vma::Filler,
    buf: Vec<u8>,
    at: usize,
}

impl Read for DataReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.at == self.buf.len() {
            self.buf.clear();
            for _ in 0..16 {
                self.filler.block(&mut self.buf);
            }
            self.at = 0;
        }
        let n = out
            .len()
            .min(self.buf.len() - self.at)
            .min(self.left as usize);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes a container archive to `w` (uncompressed tar).
pub fn write<W: Write>(
    w: W,
    pct_conf: &str,
    hostname: &str,
    data_bytes: u64,
    seed: u64,
    mtime: u64,
) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Complete);
    // As vzdump's `tar cpf - ... ./etc/vzdump/pct.conf ... --directory=/mnt/vzsnap0 ./`: the config
    // first (no parent directory entries), then the root file system from "./".
    let h = header(
        "./etc/vzdump/pct.conf",
        pct_conf.len() as u64,
        0o644,
        tar::EntryType::Regular,
        mtime,
    )?;
    b.append(&h, pct_conf.as_bytes())?;
    for d in ["./", "./etc/"] {
        b.append(
            &header(d, 0, 0o755, tar::EntryType::Directory, mtime)?,
            io::empty(),
        )?;
    }
    let files: [(&str, String); 2] = [
        ("./etc/hostname", format!("{hostname}\n")),
        (
            "./etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"
                .to_string(),
        ),
    ];
    for (p, c) in &files {
        b.append(
            &header(p, c.len() as u64, 0o644, tar::EntryType::Regular, mtime)?,
            c.as_bytes(),
        )?;
    }
    for d in ["./root/", "./var/", "./var/lib/", "./var/lib/app/"] {
        b.append(
            &header(d, 0, 0o755, tar::EntryType::Directory, mtime)?,
            io::empty(),
        )?;
    }
    let h = header(
        "./var/lib/app/data.bin",
        data_bytes,
        0o644,
        tar::EntryType::Regular,
        mtime,
    )?;
    let data = DataReader {
        left: data_bytes,
        filler: super::vma::Filler::new(seed),
        buf: Vec::new(),
        at: 0,
    };
    b.append(&h, data)?;
    b.into_inner()?.flush()
}

/// Writes a `.tar.zst` container archive at `path` (`vma::ZSTD_LEVEL`, content checksum).
pub fn write_zst(
    path: &Path,
    pct_conf: &str,
    hostname: &str,
    data_bytes: u64,
    seed: u64,
    mtime: u64,
) -> io::Result<()> {
    let file = File::create(path)?;
    let mut enc = zstd::stream::write::Encoder::new(
        BufWriter::with_capacity(1 << 20, file),
        super::vma::ZSTD_LEVEL,
    )?;
    enc.include_checksum(true)?;
    write(&mut enc, pct_conf, hostname, data_bytes, seed, mtime)?;
    enc.finish()?.flush()
}

fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    if path.to_string_lossy().ends_with(".zst") {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(file)?))
    } else {
        Ok(Box::new(file))
    }
}

fn scan(path: &Path, stop_at_conf: bool) -> io::Result<TarInfo> {
    let mut archive = tar::Archive::new(open(path)?);
    let mut info = TarInfo {
        pct_conf: String::new(),
        entries: 0,
        bytes: 0,
    };
    let mut found = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        info.entries += 1;
        let name = entry.path()?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").to_string();
        if name == "etc/vzdump/pct.conf" {
            entry.read_to_string(&mut info.pct_conf)?;
            found = true;
            if stop_at_conf {
                break;
            }
        } else {
            info.bytes += io::copy(&mut entry, &mut io::sink())?;
        }
    }
    if !stop_at_conf {
        // tar stops at its end-of-archive blocks; read the compressed stream to its end so the
        // zstd frame checksum is checked too.
        io::copy(&mut archive.into_inner(), &mut io::sink())?;
    }
    if !found {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "archive contains no configuration file ('./etc/vzdump/pct.conf')",
        ));
    }
    Ok(info)
}

/// Reads the whole archive (so tar structure and the zstd checksum are checked) and returns its config.
pub fn verify_file(path: &Path) -> io::Result<TarInfo> {
    scan(path, false)
}

/// Reads only up to `./etc/vzdump/pct.conf` (fast).
pub fn read_config(path: &Path) -> io::Result<String> {
    Ok(scan(path, true)?.pct_conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir
            .path()
            .join("vzdump-lxc-101-2026_11_20-02_00_01.tar.zst");
        write_zst(
            &p,
            "arch: amd64\nhostname: ct\n",
            "ct",
            200_001,
            3,
            1_763_604_001,
        )
        .unwrap();
        let info = verify_file(&p).unwrap();
        assert_eq!(info.pct_conf, "arch: amd64\nhostname: ct\n");
        assert!(info.bytes >= 200_001);
        assert_eq!(read_config(&p).unwrap(), "arch: amd64\nhostname: ct\n");
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 0x40;
        std::fs::write(&p, &bytes).unwrap();
        assert!(verify_file(&p).is_err());
    }
}
