//! The bit-rot manifest: one file in `sha256sum` format, a `<sha256>  <volid>` line per archive
//! (default `/var/lib/pve-verify-backups/sha256.manifest`, the unit's StateDirectory; `--manifest`). Keyed by volid, so the
//! same manifest serves remote and local runs. `--record` adds new archives; an archive whose hash changed
//! keeps its recorded hash (the alarm repeats until someone looks) and is reported as corrupt.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use pve_common::runner::Runner;

/// volid → recorded SHA-256 (lower-case hex).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Entries.
    pub entries: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads the manifest; a missing file is an empty manifest.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Manifest::parse(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Parses `sha256sum` lines (`#` comments allowed).
    pub fn parse(text: &str) -> Result<Manifest> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((hash, volid)) = line.split_once("  ").or_else(|| line.split_once(" *"))
            else {
                anyhow::bail!("line {}: not `<sha256>  <volid>`", i + 1);
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!("line {}: `{hash}` is not a SHA-256", i + 1);
            }
            entries.insert(volid.to_owned(), hash.to_ascii_lowercase());
        }
        Ok(Manifest { entries })
    }

    /// The file content.
    pub fn render(&self) -> String {
        let mut out = String::from("# verify-backups SHA-256 manifest: <sha256>  <volid>\n");
        for (volid, hash) in &self.entries {
            out.push_str(&format!("{hash}  {volid}\n"));
        }
        out
    }

    /// Writes it atomically through the runner (skipped in dry-run mode), mode 0640: the list of every
    /// archive is nobody else's business.
    pub fn save(&self, runner: &Runner, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            runner
                .create_dir_all(dir, 0o755)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        runner
            .write_file(path, self.render().as_bytes(), 0o640)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut m = Manifest::default();
        m.entries
            .insert("local:backup/a.vma.zst".into(), "a".repeat(64));
        let back = Manifest::parse(&m.render()).unwrap_or_default();
        assert_eq!(back, m);
        assert!(Manifest::parse("xyz  a\n").is_err());
    }
}
