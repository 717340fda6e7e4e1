//! Secrets: a wrapper that never prints its value, and a process-wide list of values to mask.
//!
//! Every line the logger writes, every dry-run echo and every captured remote stderr quoted in an error is
//! passed through [`mask`], so a password read from `terraform.tfvars` or an S3 key cannot reach a
//! terminal, a journal or a report file even when a command echoes it back.

use std::fmt;
use std::sync::{Mutex, PoisonError};

/// What a masked value prints as.
pub const MASK: &str = "********";

static REGISTERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A value that must not be shown: `Debug` and `Display` print [`MASK`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value` and registers it for masking in every log line.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The real value, for the one place that must use it (an HTTP header, an environment variable).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Adds `value` to the values [`mask`] replaces. Values shorter than 4 characters are not registered:
/// masking every `a` or `1` in the output would hide more than it protects.
pub fn register(value: &str) {
    if value.chars().count() < 4 {
        return;
    }
    let mut list = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    if !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
        // Longest first, so a secret that contains another is masked whole.
        list.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// Replaces every registered secret in `text` with [`MASK`].
pub fn mask(text: &str) -> String {
    let list = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = text.to_owned();
    for secret in list.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// True when a variable or attribute name looks like it holds a secret
/// (password, token, secret, key, credential), in any case and with any separator.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    // `key` alone is too broad for names like `ssh_public_keys`; public keys are not secrets.
    if lower.contains("public") {
        return false;
    }
    [
        "password",
        "passwd",
        "token",
        "secret",
        "credential",
        "private_key",
        "api_key",
        "access_key",
    ]
    .iter()
    .any(|word| lower.contains(word))
        || lower == "key"
        || lower.ends_with("_key")
        || lower.ends_with("-key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn registered_values_are_masked_longest_first() {
        register("abcd1234");
        register("abcd1234-extended");
        assert_eq!(
            mask("x=abcd1234-extended y=abcd1234"),
            format!("x={MASK} y={MASK}")
        );
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(mask("ab cab"), "ab cab");
    }

    #[test]
    fn secret_names() {
        for name in [
            "proxmox_password",
            "api_token",
            "minio_secret_key",
            "AWS_SECRET_ACCESS_KEY",
            "key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "node_name",
            "ssh_user",
            "ssh_public_keys",
            "endpoint",
            "keyboard_layout",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
