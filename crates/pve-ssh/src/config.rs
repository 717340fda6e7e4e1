//! Resolving a target through `~/.ssh/config` (`Host`, `HostName`, `User`, `Port`, `IdentityFile`) with
//! `ssh2-config`, the way OpenSSH does: the first value found wins, explicit values beat the file, and
//! `IdentityFile` entries replace the default identities. `Match` and `%` tokens are not understood
//! (use the OpenSSH transport for such configs: `ssh` resolves them itself).

use std::io::BufReader;
use std::path::{Path, PathBuf};

use ssh2_config::{ParseRule, SshConfig};

use super::{Endpoint, SshError, SshOptions, SshTarget};

/// The default identities OpenSSH tries, in its order (DSA and security keys left out).
pub(crate) const DEFAULT_IDENTITIES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// A target with everything needed to connect.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Identity files to try after the agent, in order (only existing files).
    pub identities: Vec<PathBuf>,
    /// Identities named explicitly that do not exist (reported if authentication fails).
    pub missing: Vec<PathBuf>,
    /// `UserKnownHostsFile` from ssh_config (the first file), if set.
    pub known_hosts: Option<PathBuf>,
    /// The ssh_config option only the OpenSSH transport can honour (`ProxyJump`, `ProxyCommand`), if any.
    pub needs_openssh: Option<&'static str>,
}

/// The first value of an option ssh2-config keeps unparsed, looked up case-insensitively.
fn raw_option<'a>(params: &'a ssh2_config::HostParams, name: &str) -> Option<&'a str> {
    params
        .unsupported_fields
        .iter()
        .chain(&params.ignored_fields)
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// Expands a leading `~/` against the home directory.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The home directory: `$HOME`, else the one of the user in /etc/passwd.
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The login name of the user running us: `$USER`, `$LOGNAME`, else looked up by uid in /etc/passwd.
pub(crate) fn current_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Some(u) = std::env::var_os(var).filter(|u| !u.is_empty()) {
            return u.to_string_lossy().into_owned();
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_owned))
        });
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    uid.and_then(|uid| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_owned())
        })
    })
    .unwrap_or_else(|| "root".to_owned())
}

/// The ssh_config to read: the configured one (which must exist) or `~/.ssh/config` when present.
pub(crate) fn config_path(options: &SshOptions) -> Option<PathBuf> {
    if let Some(p) = &options.config_file {
        return Some(p.clone());
    }
    home_dir()
        .map(|h| h.join(".ssh/config"))
        .filter(|p| p.is_file())
}

/// Parses the file; also tells whether it has `Match` blocks, which ssh2-config does not understand (their
/// lines would be read as part of the `Host` block before them).
fn parse(path: &Path) -> Result<(SshConfig, bool), SshError> {
    let err = |message: String| SshError::Config {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let has_match = text.lines().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("match"))
    });
    let mut config = SshConfig::default();
    if let Some(home) = home_dir() {
        config = config.home_dir(home);
    }
    let config = config
        .parse(
            &mut BufReader::new(text.as_bytes()),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| err(e.to_string()))?;
    Ok((config, has_match))
}

/// Resolves `target` with `options` and the ssh_config.
pub(crate) fn resolve(target: &SshTarget, options: &SshOptions) -> Result<Resolved, SshError> {
    let (params, has_match) = match config_path(options) {
        Some(path) => {
            let (config, has_match) = parse(&path)?;
            (Some(config.query(&target.host)), has_match)
        }
        None => (None, false),
    };
    let params = params.as_ref();
    let host = params
        .and_then(|p| p.host_name.clone())
        .unwrap_or_else(|| target.host.clone());
    let port = target
        .port
        .or_else(|| params.and_then(|p| p.port))
        .unwrap_or(22);
    let user = target
        .user
        .clone()
        .or_else(|| params.and_then(|p| p.user.clone()))
        .unwrap_or_else(current_user);
    if host.is_empty() || host.contains(['\0', ' ', '\t', '\n']) {
        return Err(SshError::Config {
            path: config_path(options).unwrap_or_default(),
            message: format!("unusable host name {host:?}"),
        });
    }

    let explicit: Vec<PathBuf> = if !options.identity_files.is_empty() {
        options.identity_files.clone()
    } else {
        params
            .and_then(|p| p.identity_file.clone())
            .unwrap_or_default()
    };
    let (identities, missing) = if !explicit.is_empty() {
        explicit.into_iter().partition(|p| p.is_file())
    } else if options.default_identities {
        let existing = home_dir()
            .map(|h| {
                DEFAULT_IDENTITIES
                    .iter()
                    .map(|n| h.join(".ssh").join(n))
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        (existing, Vec::new())
    } else {
        (Vec::new(), Vec::new())
    };
    let known_hosts = params
        .and_then(|p| raw_option(p, "UserKnownHostsFile"))
        .filter(|v| !v.eq_ignore_ascii_case("none"))
        .map(expand_home);
    let has_token = host.contains('%')
        || params
            .and_then(|p| p.identity_file.as_ref())
            .is_some_and(|files| files.iter().any(|f| f.to_string_lossy().contains('%')));
    let needs_openssh = params.and_then(|p| {
        if has_match {
            Some("Match")
        } else if has_token {
            Some("% tokens")
        } else if p.proxy_jump.as_ref().is_some_and(|j| !j.is_empty()) {
            Some("ProxyJump")
        } else if raw_option(p, "ProxyCommand").is_some_and(|v| !v.eq_ignore_ascii_case("none")) {
            Some("ProxyCommand")
        } else {
            None
        }
    });
    Ok(Resolved {
        endpoint: Endpoint { host, port, user },
        identities,
        missing,
        known_hosts,
        needs_openssh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_and_explicit_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "x").unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "Host pve\n  HostName 192.0.2.2\n  User admin\n  Port 2222\n  IdentityFile {}\n  \
                 IdentityFile {}/absent\n  ServerAliveCountMax 3\n  UserKnownHostsFile ~/kh\n\n\
                 Host jump\n  ProxyJump bastion\n\nHost *\n  User nobody\n",
                key.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let options = SshOptions {
            config_file: Some(config),
            ..SshOptions::default()
        };
        let r = resolve(&SshTarget::new("pve"), &options).unwrap();
        assert_eq!(
            r.endpoint,
            Endpoint {
                host: "192.0.2.2".into(),
                port: 2222,
                user: "admin".into()
            }
        );
        assert_eq!(r.identities, vec![key]);
        assert_eq!(r.missing, vec![dir.path().join("absent")]);
        assert_eq!(r.known_hosts, home_dir().map(|h| h.join("kh")));
        assert_eq!(r.needs_openssh, None);
        let r = resolve(&SshTarget::new("jump"), &options).unwrap();
        assert_eq!(r.needs_openssh, Some("ProxyJump"));

        let r = resolve(&SshTarget::new("pve").user("root").port(22), &options).unwrap();
        assert_eq!((r.endpoint.port, r.endpoint.user.as_str()), (22, "root"));

        let r = resolve(&SshTarget::new("other"), &options).unwrap();
        assert_eq!(r.endpoint.host, "other");
        assert_eq!(r.endpoint.user, "nobody");
        assert_eq!(r.endpoint.port, 22);
    }

    #[test]
    fn match_blocks_and_tokens_need_openssh() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let options = SshOptions {
            config_file: Some(config.clone()),
            ..SshOptions::default()
        };
        std::fs::write(
            &config,
            "Host pve\n  User root\nMatch host pve\n  User bob\n",
        )
        .unwrap();
        let r = resolve(&SshTarget::new("pve"), &options).unwrap();
        assert_eq!(r.needs_openssh, Some("Match"));
        std::fs::write(&config, "Host pve\n  HostName %h.lan\n").unwrap();
        let r = resolve(&SshTarget::new("pve"), &options).unwrap();
        assert_eq!(r.needs_openssh, Some("% tokens"));
        std::fs::write(&config, "Host pve\n  HostName pve.lan\n").unwrap();
        let r = resolve(&SshTarget::new("pve"), &options).unwrap();
        assert_eq!(r.needs_openssh, None);
    }

    #[test]
    fn missing_explicit_config_is_an_error() {
        let options = SshOptions {
            config_file: Some("/nonexistent/ssh_config".into()),
            ..SshOptions::default()
        };
        let err = resolve(&SshTarget::new("pve"), &options).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ssh_config"), "{err}");
    }
}
