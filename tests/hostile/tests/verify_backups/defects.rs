//! verify-backups, issue 23's defects it showed, each test naming its defect; each was seen failing
//! on the code before its fix.

use verify_backups::report::{Report, Status};

use crate::pvenode::{Node, run};
use crate::support;
use crate::support::scripted::assert_no_spoof;

pub fn entry(volid: &str, vmid: &str, ctime: &str, notes: &str) -> String {
    format!(
        r#"{{"volid":"{volid}","content":"backup","format":"vma.zst","subtype":"qemu","vmid":{vmid},"ctime":{ctime},"size":65536,"notes":{}}}"#,
        serde_json::to_string(notes).unwrap()
    )
}

pub const V100: &str = "local:backup/vzdump-qemu-100-2026_11_20-02_00_01.vma.zst";

pub const V101: &str = "local:backup/vzdump-lxc-101-2026_11_20-02_00_01.tar.zst";

/// Defect 4: an environment whose backend block has a syntax error on the secret's line: the report
/// (stdout) names file and line, never the line.
#[test]
fn backend_syntax_error_stays_out_of_the_report() {
    let node = Node::start();
    let env = node.dir.path().join("envs/prod");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(
        env.join("main.tf"),
        "terraform {\n  backend \"s3\" {\n    bucket = \"tfstate\"\n    secret_key = \"hunter2-verify-SECRET\"x\n  }\n}\n",
    )
    .unwrap();
    let (code, out, err) = run(node
        .verify_backups()
        .arg("--root")
        .arg(node.dir.path().join("envs")));
    assert!(
        !format!("{out}{err}").contains("hunter2"),
        "the secret was printed:\n{out}\n{err}"
    );
    assert!(out.contains("main.tf") && out.contains("line 4"), "{out}");
    assert_ne!(code, Some(0), "{out}");
}

/// Defect 9: a backup "from year 9999" is not "newest, 0 s old"; i64::MIN neither panics nor passes.
#[test]
fn backup_times_from_the_future_are_errors() {
    let node = Node::start();
    for ctime in ["253402300799", "-9223372036854775808"] {
        let listing = format!("[{}]", entry(V100, "100", ctime, ""));
        node.fake_pvesh("/storage/local/content", listing.as_bytes());
        let (code, out, err) = run(node.verify_backups().args(["--vmid", "100", "--json"]));
        assert!(!err.contains("panicked"), "{err}");
        assert_ne!(code, Some(0), "ctime {ctime} passed: {out}\n{err}");
        let doc: Report = support::decoded(&out, &err);
        assert!(
            out.contains("in the future") || out.contains("before 1970"),
            "ctime {ctime} not reported: {doc:#?}"
        );
        assert_eq!(doc.status, Status::Fail, "{doc:#?}");
    }
}

/// Defect 17: an entry that cannot be decoded is reported, not dropped; an entry whose vmid and
/// volume name disagree is reported, not trusted.
#[test]
fn listing_entries_are_reported_not_dropped_or_trusted() {
    let node = Node::start();
    let cases = [
        (
            "undecodable",
            format!(
                r#"[{{"volid":{{"x":1}},"vmid":100}}, {}]"#,
                entry(V101, "101", "1795140000", "")
            ),
        ),
        (
            "vmid disagrees",
            format!("[{}]", entry(V101, "100", "1795140000", "")),
        ),
    ];
    for (what, listing) in cases {
        node.fake_pvesh("/storage/local/content", listing.as_bytes());
        let (code, out, err) = run(node.verify_backups().arg("--json"));
        assert_ne!(code, Some(0), "{what}: {out}\n{err}");
        let doc: Report = support::decoded(&out, &err);
        match what {
            "undecodable" => assert!(out.contains("cannot be read"), "{what}: {doc:#?}"),
            _ => {
                assert!(
                    out.contains("vmid 100 but the volume name says 101"),
                    "{what}: {doc:#?}"
                );
                // Not counted as guest 100's backup.
                let g100 = doc.guests.iter().find(|g| g.vmid == 100).unwrap();
                assert_eq!(g100.backups, 0, "{what}: {g100:#?}");
            }
        }
    }
}

/// Defect 16: guest names from the node reach the text report escaped: no row of their own, no
/// terminal control.
#[test]
fn node_strings_are_escaped_in_the_report() {
    let node = Node::start();
    let name = "jelly\x1b]0;owned\x07\x1b[2J\u{202e}\u{9b}31m\nvzdump | VM 100 (jellyfin) | OK | 2026-12-06 02:00 | -";
    let resources = serde_json::json!([
        {"type": "qemu", "vmid": 100, "name": name, "node": "pve", "status": "running"},
        {"type": "lxc", "vmid": 101, "name": "pihole", "node": "pve", "status": "stopped"}
    ]);
    node.fake_pvesh("/cluster/resources", resources.to_string().as_bytes());
    let (_, out, err) = run(&mut node.verify_backups());
    assert!(
        out.contains("jelly\\e]0;owned"),
        "the name is not in the report: {out}"
    );
    assert!(!out.contains("\nvzdump | VM 100 (jellyfin) | OK"), "{out}");
    assert_no_spoof("verify-backups", &out);
    assert_no_spoof("verify-backups", &err);
}
