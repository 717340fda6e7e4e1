//! Entry point of `rebuild-monitoring`; the library's [`rebuild_monitoring::RebuildMonitoring`] says how it runs.

fn main() -> std::process::ExitCode {
    pve_common::run::<rebuild_monitoring::RebuildMonitoring>()
}
