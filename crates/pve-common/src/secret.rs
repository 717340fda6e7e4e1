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

/// Replaces every registered secret in `text` with [`MASK`], and the credentials of every URL in it
/// ([`redact_urls`]).
pub fn mask(text: &str) -> String {
    let list = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = redact_urls(text).into_owned();
    for secret in list.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

/// Replaces the user and password of every `scheme://user:password@host...` in `text` with [`MASK`]:
/// an endpoint given as `http://admin:secret@minio:9000` is shown as `http://********@minio:9000`. The
/// one place a URL is made fit to display; [`mask`] applies it to every log line.
pub fn redact_urls(text: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let end = text[start..]
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | ')' | ']'
                ) || c.is_whitespace()
            })
            .map_or(text.len(), |i| start + i);
        // `user@` alone (ssh://root@pve) names nobody's secret; `user:password@` does.
        if let Some(at) = text[start..end].rfind('@')
            && text[start..start + at].contains(':')
        {
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = start + at;
        }
        search = end.max(start);
    }
    if done == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    std::borrow::Cow::Owned(out)
}

/// Registers the password of `url`, if it has any, and returns the URL without user and password, fit
/// to display and to send (S3 signs its own requests; a password in the URL is never needed).
pub fn strip_url_credentials(url: &str) -> String {
    if let Ok(parsed) = url::Url::parse(url)
        && let Some(password) = parsed.password()
    {
        register(password);
        if let Ok(decoded) = percent_decode(password) {
            register(&decoded);
        }
    }
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
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
    #[test]
    fn url_credentials_are_redacted() {
        use super::{redact_urls, strip_url_credentials};
        assert_eq!(
            redact_urls("put s3://b/k: cannot reach http://admin:s3cr%2Ft@127.0.0.1:9/x: refused"),
            "put s3://b/k: cannot reach http://********@127.0.0.1:9/x: refused"
        );
        assert_eq!(
            redact_urls("ssh://root@pve and s3://bucket/key"),
            "ssh://root@pve and s3://bucket/key"
        );
        assert_eq!(redact_urls("`https://u:p@h`"), "`https://********@h`");
        assert_eq!(
            strip_url_credentials("http://admin:pa55word@h:9000/p"),
            "http://h:9000/p"
        );
        assert_eq!(strip_url_credentials("http://h:9000"), "http://h:9000");
        assert!(super::mask("pa55word and pa5").contains("********"));
    }

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
