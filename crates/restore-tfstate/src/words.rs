//! The messages callers of the replaced script match, from the shared catalog (`restore_tfstate.*`
//! keys).

use pve_common::tr;

/// The command line is empty.
pub fn no_argument() -> String {
    tr!("restore_tfstate.no_argument")
}

/// `--env` is missing.
pub fn env_required() -> String {
    tr!("restore_tfstate.env_required")
}

/// No action flag.
pub fn action_required() -> String {
    tr!("restore_tfstate.action_required")
}

/// `--restore` without a value.
pub fn version_id_required() -> String {
    tr!("restore_tfstate.version_id_required")
}

/// The heading of `--list`.
pub fn versions_heading() -> String {
    tr!("restore_tfstate.versions_heading")
}

/// The last line of a successful run.
pub fn success() -> String {
    tr!("restore_tfstate.success")
}

/// The last line of a successful dry-run.
pub fn success_dry_run() -> String {
    tr!("restore_tfstate.success_dry_run")
}

/// The operator declined, or could not be asked.
pub fn declined(why: &str) -> String {
    tr!("restore_tfstate.declined", why = why)
}

/// MinIO's health URL did not answer.
pub fn minio_down(url: &str, why: &str) -> String {
    tr!("restore_tfstate.minio_down", url = url, why = why)
}

/// MinIO's health URL answered.
pub fn minio_up(url: &str) -> String {
    tr!("restore_tfstate.minio_up", url = url)
}
