//! Entry point of `check-drift`; the library's [`check_drift::CheckDrift`] says how it runs.

fn main() -> std::process::ExitCode {
    pve_common::run::<check_drift::CheckDrift>()
}
