//! Entry point of `restore-tfstate`; the library's [`restore_tfstate::RestoreTfstate`] says how it runs.

fn main() -> std::process::ExitCode {
    pve_common::run::<restore_tfstate::RestoreTfstate>()
}
