//! Terraform environments: the subfolders of a root (`infrastructure/proxmox/environments`) that hold
//! `*.tf` files. Shared by check-drift, restore-tfstate and verify-backups so `--env` means one thing.
//!
//! An environment name is a folder name and nothing else: no `/`, no `..`, no leading `.` or `-`, no
//! control characters, at most 64 bytes. That keeps `--env ../etc` from ever naming a path outside the root.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The longest accepted environment name.
pub const MAX_NAME_LEN: usize = 64;

/// Why an environment could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    /// The name is not a plain folder name.
    #[error("invalid environment name {name:?}: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// No such environment under the root.
    #[error("unknown environment `{name}` under {}; known: {}", root.display(), if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    Unknown {
        /// The name given.
        name: String,
        /// The root searched.
        root: PathBuf,
        /// The environments that exist.
        known: Vec<String>,
    },
    /// The root cannot be read.
    #[error("cannot read the environments root {}: {message}", root.display())]
    Root {
        /// The root.
        root: PathBuf,
        /// Why.
        message: String,
    },
}

/// Checks that `name` is a plain folder name.
pub fn validate_name(name: &str) -> Result<(), EnvError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 64 bytes")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator; give the folder name only")
    } else if name == "." || name == ".." || name.starts_with('.') {
        Some("it starts with '.'")
    } else if name.starts_with('-') {
        Some("it starts with '-'")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("only ASCII letters, digits, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match why {
        Some(why) => Err(EnvError::InvalidName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// The environments under `root`, sorted: every subfolder with at least one `*.tf` file.
pub fn discover(root: &Path) -> Result<Vec<String>, EnvError> {
    let root_err = |e: std::io::Error| EnvError::Root {
        root: root.to_owned(),
        message: e.to_string(),
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).map_err(root_err)? {
        let entry = entry.map_err(root_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if validate_name(&name).is_err() || !entry.path().is_dir() {
            continue;
        }
        if has_tf_files(&entry.path()) {
            found.push(name);
        }
    }
    found.sort();
    Ok(found)
}

fn has_tf_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.file_name().to_str().is_some_and(|n| n.ends_with(".tf")) && e.path().is_file()
            })
        })
        .unwrap_or(false)
}

/// Resolves one `--env` name to its folder, after validating it.
pub fn resolve(root: &Path, name: &str) -> Result<PathBuf, EnvError> {
    validate_name(name)?;
    let known = discover(root)?;
    if known.iter().any(|k| k == name) {
        Ok(root.join(name))
    } else {
        Err(EnvError::Unknown {
            name: name.to_owned(),
            root: root.to_owned(),
            known,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        let long = "a".repeat(300);
        for bad in [
            "",
            "../etc",
            "a/b",
            "..",
            ".hidden",
            "-rf",
            "prod;rm",
            "pröd",
            "a b",
            "$(id)",
            long.as_str(),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["prod", "lab", "monitoring", "home-lab_2", "v1.2"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn discovers_folders_with_tf_files_only() {
        let root = tempfile::tempdir().unwrap();
        for (dir, file) in [
            ("prod", "main.tf"),
            ("lab", "versions.tf"),
            ("docs", "README.md"),
            (".terraform", "x.tf"),
        ] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join(file), "").unwrap();
        }
        assert_eq!(discover(root.path()).unwrap(), vec!["lab", "prod"]);
        assert_eq!(
            resolve(root.path(), "prod").unwrap(),
            root.path().join("prod")
        );
        let err = resolve(root.path(), "staging").unwrap_err().to_string();
        assert!(err.ends_with("known: lab, prod"), "{err}");
        assert!(matches!(
            discover(&root.path().join("nope")),
            Err(EnvError::Root { .. })
        ));
    }
}
