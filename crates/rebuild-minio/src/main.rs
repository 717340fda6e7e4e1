//! Entry point of `rebuild-minio`; the library's [`rebuild_minio::RebuildMinio`] says how it runs.

fn main() -> std::process::ExitCode {
    pve_common::run::<rebuild_minio::RebuildMinio>()
}
