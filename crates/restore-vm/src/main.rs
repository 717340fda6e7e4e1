//! Entry point of `restore-vm`; the library's [`restore_vm::RestoreVm`] says how it runs.

fn main() -> std::process::ExitCode {
    pve_common::run::<restore_vm::RestoreVm>()
}
