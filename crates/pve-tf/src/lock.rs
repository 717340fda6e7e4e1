//! Terraform's S3 state lock (`use_lockfile = true`): a `<key>.tflock` object created with
//! `If-None-Match: *`, holding Terraform's lock-info JSON. Taking it the same way means a `terraform apply`
//! started meanwhile fails to lock and waits or stops, and a held lock shows its owner to us.

use std::io::Read;

use pve_common::output::escape;
use pve_common::runner::Runner;
use pve_common::s3::{S3Client, S3Error};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Terraform's lock info, field for field (`statemgr.LockInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LockInfo {
    /// Unique id of this lock.
    #[serde(rename = "ID")]
    pub id: String,
    /// What the holder is doing.
    pub operation: String,
    /// Free text.
    pub info: String,
    /// `user@host`.
    pub who: String,
    /// The holder's version.
    pub version: String,
    /// RFC 3339 time it was taken.
    pub created: String,
    /// `bucket/key` of the state.
    pub path: String,
}

/// Why the lock could not be taken.
#[derive(Debug, Error)]
pub enum LockError {
    /// Somebody holds it.
    #[error("the state lock s3://{} is held by {} (operation {}, since {}{}, lock ID {}); wait for it to finish, or if it is stale, run `terraform force-unlock {}` in the environment", escape(path), escape(&.info.who), escape(&.info.operation), escape(&.info.created), age(&.info.created).map_or_else(String::new, |a| format!(", {a} ago")), escape(&.info.id), escape(&.info.id))]
    Held {
        /// Lock object path.
        path: String,
        /// Its content.
        info: Box<LockInfo>,
    },
    /// The lock this run took is no longer its own (force-unlocked, perhaps taken by another holder):
    /// nothing more is written and the lock object is left as it is.
    #[error("the state lock s3://{path} (lock ID {ours}) is no longer held by this run: {}; nothing more was written and the lock was left alone", describe_holder(.holder.as_deref()))]
    Lost {
        /// Lock object path.
        path: String,
        /// The ID this run took.
        ours: String,
        /// Who holds it now, if anybody.
        holder: Option<Box<LockInfo>>,
    },
    /// S3 failed.
    #[error(transparent)]
    S3(#[from] S3Error),
}

impl LockError {
    /// This error for a tool's result: a lock held by somebody else is [`Busy`](pve_common::exit::Busy)
    /// (exit 75), anything else a failure.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            held @ LockError::Held { .. } => pve_common::exit::Busy::new(held).into(),
            other => other.into(),
        }
    }
}

fn describe_holder(holder: Option<&LockInfo>) -> String {
    match holder {
        None => "it was removed (terraform force-unlock?)".to_owned(),
        Some(info) => format!(
            "it is now held by {} (operation {}, since {}{}, lock ID {})",
            info.who,
            info.operation,
            info.created,
            age(&info.created).map_or_else(String::new, |a| format!(", {a} ago")),
            info.id
        ),
    }
}

/// Who holds a lock, for a message: `locked by ops@desk (operation OperationTypeApply, since <time>, 3m
/// ago, lock ID <id>)`, every field escaped (they come from the lock object).
pub fn describe(info: &LockInfo) -> String {
    format!(
        "locked by {} (operation {}, since {}{}, lock ID {})",
        escape(&info.who),
        escape(&info.operation),
        escape(&info.created),
        age(&info.created).map_or_else(String::new, |a| format!(", {a} ago")),
        escape(&info.id)
    )
}

/// Removes the lock of `state_key` if it holds `id`, as `terraform force-unlock` does: read again right
/// before the delete, so a lock another run took meanwhile is left ([`LockError::Held`] with it); no lock
/// at all is [`LockError::Lost`] with no holder.
pub fn force_unlock(
    s3: &S3Client,
    runner: &Runner,
    state_key: &str,
    id: &str,
) -> Result<(), LockError> {
    let key = lock_key(state_key);
    let path = format!("{}/{key}", s3.location().bucket);
    match current(s3, state_key)? {
        Some(info) if info.id == id => {
            s3.delete(runner, &key)?;
            Ok(())
        }
        Some(info) => Err(LockError::Held {
            path,
            info: Box::new(info),
        }),
        None => Err(LockError::Lost {
            path,
            ours: id.to_owned(),
            holder: None,
        }),
    }
}

/// How long ago an RFC 3339 `created` was, rounded to the second (`None` when it does not parse or lies
/// in the future): a lock left by a killed run shows its age.
pub fn age(created: &str) -> Option<String> {
    let then: jiff::Timestamp = created.parse().ok()?;
    let secs = jiff::Timestamp::now().duration_since(then).as_secs();
    let secs = u64::try_from(secs).ok()?;
    Some(humantime::format_duration(std::time::Duration::from_secs(secs)).to_string())
}

/// The lock object of `state_key` as it is now: `None` when there is none; unparsable content is shown as
/// an unknown holder.
pub fn current(s3: &S3Client, state_key: &str) -> Result<Option<LockInfo>, S3Error> {
    match s3.get(&lock_key(state_key), None) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice::<LockInfo>(&bytes).unwrap_or_else(|_| LockInfo {
                who: "unknown".into(),
                operation: "unknown".into(),
                ..LockInfo::default()
            }),
        )),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A held lock; released on [`HeldLock::release`] or, as a last resort, on drop. Every write under it is
/// preceded by [`HeldLock::verify`], and a release deletes the object only while it still holds this ID,
/// as `terraform force-unlock` and Terraform's own unlock compare it.
pub struct HeldLock<'a> {
    s3: &'a S3Client,
    runner: &'a Runner,
    state_key: String,
    key: String,
    id: String,
    released: bool,
    /// Releases the lock if SIGINT/SIGTERM ends the run while it is held (no destructor runs then).
    on_interrupt: Option<pve_common::interrupt::Cleanup>,
}

/// The lock object's key for a state key.
pub fn lock_key(state_key: &str) -> String {
    format!("{state_key}.tflock")
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!("{user}@{host}")
}

/// Takes the lock of `state_key`, or reports who holds it. In dry-run nothing is written and the returned
/// guard releases nothing.
pub fn acquire<'a>(
    s3: &'a S3Client,
    runner: &'a Runner,
    state_key: &str,
    operation: &str,
) -> Result<HeldLock<'a>, LockError> {
    let key = lock_key(state_key);
    let info = LockInfo {
        id: random_id(),
        operation: operation.to_owned(),
        info: "restore-tfstate".to_owned(),
        who: who(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        created: jiff::Timestamp::now().to_string(),
        path: format!("{}/{}", s3.location().bucket, state_key),
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    // An interrupt while the PUT is in flight waits for its answer: a lock S3 created must be known, so
    // the clean-up registered below can release it.
    let _taking = pve_common::interrupt::critical();
    match s3.put(runner, &key, &body, true) {
        Ok(written) => {
            let on_interrupt = written
                .is_some()
                .then(|| release_on_interrupt(s3, &key, &info.id));
            Ok(HeldLock {
                s3,
                runner,
                state_key: state_key.to_owned(),
                key,
                id: info.id,
                released: written.is_none(),
                on_interrupt,
            })
        }
        Err(e) if e.is_precondition_failed() => {
            let info = s3
                .get(&key, None)
                .ok()
                .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok())
                .unwrap_or_else(|| LockInfo {
                    who: "unknown".into(),
                    operation: "unknown".into(),
                    ..LockInfo::default()
                });
            Err(LockError::Held {
                path: format!("{}/{key}", s3.location().bucket),
                info: Box::new(info),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Registers the release of the lock `key` (if it is still ours, `id`) for an interrupted run.
fn release_on_interrupt(s3: &S3Client, key: &str, id: &str) -> pve_common::interrupt::Cleanup {
    let (s3, key, id) = (s3.clone(), key.to_owned(), id.to_owned());
    pve_common::interrupt::on_interrupt(format!("release the state lock {key}"), move || {
        let ours = s3
            .get(&key, None)
            .ok()
            .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok())
            .is_some_and(|held| held.id == id);
        if !ours {
            return;
        }
        match s3.delete(&Runner::new(false), &key) {
            Ok(()) => pve_common::info!("released the state lock {key} (lock ID {id})"),
            Err(e) => pve_common::error!(
                "could not release the state lock {key}: {e}; once S3 is reachable, run `terraform force-unlock {id}` in the environment"
            ),
        }
    })
}

impl HeldLock<'_> {
    /// The lock ID, as `terraform force-unlock <ID>` needs it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Checks that the lock object still holds this run's ID; [`LockError::Lost`] when it does not. Call
    /// it right before every write made under the lock. In dry-run (no lock was written) it checks nothing.
    pub fn verify(&self) -> Result<(), LockError> {
        if self.released {
            return Ok(());
        }
        match current(self.s3, &self.state_key)? {
            Some(info) if info.id == self.id => Ok(()),
            holder => Err(LockError::Lost {
                path: format!("{}/{}", self.s3.location().bucket, self.key),
                ours: self.id.clone(),
                holder: holder.map(Box::new),
            }),
        }
    }

    /// Releases the lock (a delete marker on the lock object; no version is removed), after checking that
    /// it is still this run's: another holder's lock is never deleted.
    pub fn release(mut self) -> Result<(), LockError> {
        let result = self.verify();
        self.released = true;
        self.on_interrupt = None;
        result?;
        self.s3.delete(self.runner, &self.key)?;
        Ok(())
    }
}

impl Drop for HeldLock<'_> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let result = match self.verify() {
            Err(e @ LockError::Lost { .. }) => {
                pve_common::warn!("not releasing the state lock: {e}");
                return;
            }
            Err(e) => Err(e),
            Ok(()) => self
                .s3
                .delete(self.runner, &self.key)
                .map_err(LockError::from),
        };
        if let Err(e) = result {
            pve_common::error!(
                "could not release the state lock {}: {e}; once S3 is reachable, run `terraform force-unlock {}` in the environment",
                self.key,
                self.id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_info_serialises_as_terraform_does() {
        let info = LockInfo {
            id: "x".into(),
            operation: "OperationTypeApply".into(),
            ..LockInfo::default()
        };
        let text = serde_json::to_string(&info).unwrap();
        assert!(
            text.starts_with("{\"ID\":\"x\",\"Operation\":\"OperationTypeApply\",\"Info\":"),
            "{text}"
        );
        let parsed: LockInfo = serde_json::from_str(
            r#"{"ID":"a1","Operation":"OperationTypeApply","Info":"","Who":"ops@desk","Version":"1.11.4","Created":"2026-11-21T06:00:00Z","Path":"tfstate/prod/terraform.tfstate"}"#,
        )
        .unwrap();
        assert_eq!(parsed.who, "ops@desk");
    }

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, b);
    }
}
