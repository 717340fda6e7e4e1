//! verify-backups, injected faults (refused or cut connections, a server gone mid-write, children
//! killed or timing out, a full disk, signals at random points, concurrent runs): each case ends
//! with a clear error or a complete result, and leaves nothing half-written behind.

use crate::pvenode::{Node, run, temp_files};
use crate::support::fault;

#[test]
fn disk_full_while_verify_backups_writes_manifest_and_metrics() {
    let Some(fs) = crate::support::Tmpfs::mount("size=64k,mode=0755") else {
        eprintln!("skipped: needs root (tmpfs)");
        return;
    };
    let node = Node::start();
    let prom = fs.path().join("pve_backup.prom");
    let manifest = fs.path().join("sha256.manifest");
    std::fs::write(&prom, b"pve_backup_old 1\n").unwrap();
    std::fs::write(
        &manifest,
        b"# verify-backups SHA-256 manifest: <sha256>  <volid>\n",
    )
    .unwrap();
    // Fill the rest of the file system.
    let filler = fs.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);
    fault();
    let mut c = node.verify_backups();
    c.args(["--record", "--deep", "--json", "--textfile-dir"])
        .arg(fs.path())
        .arg("--manifest")
        .arg(&manifest);
    let (code, out, err) = run(&mut c);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&prom.display().to_string()),
        "names the metrics file: {err}"
    );
    assert!(
        out.contains(&manifest.display().to_string()),
        "the manifest failure is in the report"
    );
    assert_eq!(
        std::fs::read(&prom).unwrap(),
        b"pve_backup_old 1\n",
        "old metrics intact"
    );
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .starts_with("# verify-backups")
    );
    assert!(temp_files(fs.path()).is_empty(), "no temp file left");
}
