//! Entry point of `verify-backups`; the library's [`verify_backups::VerifyBackups`] says how it runs.

fn main() -> std::process::ExitCode {
    pve_common::run::<verify_backups::VerifyBackups>()
}
