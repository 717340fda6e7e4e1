//! Host key verification against an OpenSSH `known_hosts` file.
//!
//! libssh2's `KnownHosts::read_file` stops at the first line it cannot parse (`@cert-authority`,
//! `@revoked`), silently ignoring every later entry. So the file is read line by line: marker lines are
//! handled here (a key listed `@revoked` is refused), every other line is handed to libssh2 alone, which
//! understands plain and hashed (`|1|salt|hash`) host names. A line libssh2 rejects is skipped, not fatal.
//!
//! Names follow OpenSSH: `host` for port 22, `[host]:port` otherwise, and only that form is looked up
//! (libssh2's port-aware lookup would also accept a plain `host` entry for any port).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// The outcome of a host key check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key is recorded for this host.
    Known,
    /// The host has no entry.
    Unknown,
    /// The host has an entry with another key.
    Changed,
    /// The key is marked `@revoked`: refused whatever else the file says, and never to be re-accepted.
    Revoked,
}

/// The name OpenSSH records for `host` and `port`: `host` for 22, `[host]:port` otherwise.
pub fn host_name_for(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The OpenSSH fingerprint of a public key blob: `SHA256:` and unpadded base64 of its SHA-256.
pub fn fingerprint(key_blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(key_blob))
    )
}

/// The key type named inside a public key blob (`ssh-ed25519`...): a length-prefixed string.
pub(crate) fn key_type(key_blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(key_blob.get(..4)?.try_into().ok()?) as usize;
    let name = key_blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// Decodes the key field of a known_hosts or `.pub` line.
pub(crate) fn decode_key(base64_key: &str) -> Option<Vec<u8>> {
    STANDARD.decode(base64_key).ok()
}

/// Checks `key` (a raw public key blob) for `host`:`port` against the file at `path`; a missing file
/// knows no host.
pub(crate) fn check(
    session: &ssh2::Session,
    path: &Path,
    host: &str,
    port: u16,
    key: &[u8],
) -> io::Result<Verdict> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut known = session
        .known_hosts()
        .map_err(|e| io::Error::other(e.message().to_owned()))?;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            // `@revoked <hosts> <type> <key>`: refuse that key whatever host it is presented by.
            let mut fields = rest.split_whitespace();
            if fields.next() == Some("revoked")
                && fields.nth(2).and_then(decode_key).as_deref() == Some(key)
            {
                return Ok(Verdict::Revoked);
            }
            continue;
        }
        if let Err(e) = known.read_str(line, ssh2::KnownHostFileKind::OpenSSH) {
            pve_common::debug!(
                "{}:{}: skipped a line libssh2 cannot read: {}",
                path.display(),
                number + 1,
                e.message()
            );
        }
    }
    // `check` (no port) matches exactly the name given, as OpenSSH does.
    Ok(match known.check(&host_name_for(host, port), key) {
        ssh2::CheckResult::Match => Verdict::Known,
        ssh2::CheckResult::Mismatch => Verdict::Changed,
        ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => Verdict::Unknown,
    })
}

/// Appends a plain entry for `host`:`port` with `key` to the file, creating it (0600, and its directory
/// 0700) when missing. Existing lines are never rewritten.
pub(crate) fn append(path: &Path, host: &str, port: u16, key: &[u8]) -> io::Result<()> {
    let kind = key_type(key).ok_or_else(|| io::Error::other("malformed host key blob"))?;
    let line = format!(
        "{} {kind} {}\n",
        host_name_for(host, port),
        STANDARD.encode(key)
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?
    };
    // Never glue the new entry onto a last line without newline.
    let needs_newline = fs::read(path)
        .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
        .unwrap_or(false);
    if needs_newline {
        file.write_all(b"\n")?;
    }
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 public key (from ssh-keygen) and another one.
    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDQxcY+/ZPW6c/mEOmQ1pWEuu7PweC2469onk8p+H38r";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDbxFnnxFfHMvRtWKFdXHQ61Ku9frkKxuMJU7N67x37t";

    fn session() -> ssh2::Session {
        ssh2::Session::new().unwrap()
    }

    fn verdict(file: &str, host: &str, port: u16, key: &str) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        fs::write(&path, file).unwrap();
        check(&session(), &path, host, port, &decode_key(key).unwrap()).unwrap()
    }

    #[test]
    fn names_follow_openssh() {
        assert_eq!(host_name_for("pve", 22), "pve");
        assert_eq!(host_name_for("192.0.2.2", 2222), "[192.0.2.2]:2222");
    }

    #[test]
    fn blob_type_and_fingerprint() {
        let blob = decode_key(KEY_A).unwrap();
        assert_eq!(key_type(&blob).as_deref(), Some("ssh-ed25519"));
        let fp = fingerprint(&blob);
        assert!(fp.starts_with("SHA256:") && !fp.ends_with('='), "{fp}");
        assert_eq!(fp.len(), "SHA256:".len() + 43);
    }

    #[test]
    fn plain_entries_with_port_form() {
        let file = format!("pve ssh-ed25519 {KEY_A}\n[pve]:2222 ssh-ed25519 {KEY_B}\n");
        assert_eq!(verdict(&file, "pve", 22, KEY_A), Verdict::Known);
        assert_eq!(verdict(&file, "pve", 22, KEY_B), Verdict::Changed);
        assert_eq!(verdict(&file, "pve", 2222, KEY_B), Verdict::Known);
        assert_eq!(verdict(&file, "pve", 2222, KEY_A), Verdict::Changed);
        assert_eq!(verdict(&file, "pve", 2223, KEY_A), Verdict::Unknown);
        assert_eq!(verdict(&file, "other", 22, KEY_A), Verdict::Unknown);
    }

    #[test]
    fn entries_after_marker_lines_and_garbage_are_still_read() {
        let file = format!(
            "# comment\n@cert-authority *.lan ssh-ed25519 {KEY_B}\nthis is not a key line\n\
             pve,192.0.2.2 ssh-ed25519 {KEY_A}\n"
        );
        assert_eq!(verdict(&file, "192.0.2.2", 22, KEY_A), Verdict::Known);
        assert_eq!(verdict(&file, "pve", 22, KEY_A), Verdict::Known);
    }

    #[test]
    fn revoked_key_is_refused() {
        let file = format!("@revoked * ssh-ed25519 {KEY_A}\npve ssh-ed25519 {KEY_A}\n");
        assert_eq!(verdict(&file, "pve", 22, KEY_A), Verdict::Revoked);
    }

    #[test]
    fn hashed_entries_match() {
        // Hash the file with ssh-keygen -H as a user's HashKnownHosts would.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        fs::write(
            &path,
            format!("[pve]:2222 ssh-ed25519 {KEY_A}\npve ssh-ed25519 {KEY_B}\n"),
        )
        .unwrap();
        let out = duct::cmd!("ssh-keygen", "-H", "-f", &path)
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run()
            .unwrap();
        assert!(out.status.success());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("|1|") && !text.contains("pve"), "{text}");
        let s = session();
        let a = decode_key(KEY_A).unwrap();
        let b = decode_key(KEY_B).unwrap();
        assert_eq!(check(&s, &path, "pve", 2222, &a).unwrap(), Verdict::Known);
        assert_eq!(check(&s, &path, "pve", 22, &b).unwrap(), Verdict::Known);
        assert_eq!(check(&s, &path, "pve", 22, &a).unwrap(), Verdict::Changed);
    }

    #[test]
    fn append_creates_and_never_glues_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let a = decode_key(KEY_A).unwrap();
        append(&path, "pve", 2222, &a).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("[pve]:2222 ssh-ed25519 {KEY_A}\n")
        );
        fs::write(&path, "x ssh-ed25519 AAAA").unwrap();
        append(&path, "pve", 22, &a).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("x ssh-ed25519 AAAA\npve ssh-ed25519 {KEY_A}\n")
        );
        assert_eq!(
            check(&session(), &path, "pve", 22, &a).unwrap(),
            Verdict::Known
        );
    }
}
