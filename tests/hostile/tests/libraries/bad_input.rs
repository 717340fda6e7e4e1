//! The libraries (pve-common, pve-ssh, pve-tf, pve-restore), bad input: each case ends with a clear
//! error naming the input, exit 64 (usage) or 1 (failure) as documented, and changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pve_common::runner::Runner;
use pve_common::tfvars::{TfvarsError, parse_tfvars_file, parse_tfvars_str};

use crate::support::{self, walk};

#[test]
fn tfvars_that_are_not_hcl_truncated_binary_or_huge_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not-hcl", b"<?xml version=\"1.0\"?><vars/>".to_vec()),
        ("truncated", b"password = \"hun".to_vec()),
        ("truncated-map", b"tags = { a = 1,".to_vec()),
        ("binary", (0u8..=255).cycle().take(4096).collect()),
        ("nul", b"a = \"x\0y\"\n\0\0".to_vec()),
        ("json-ish", b"{\"a\": 1}".to_vec()),
        ("block", b"resource \"x\" \"y\" {}".to_vec()),
        ("reference", b"a = var.b".to_vec()),
    ];
    for (name, bytes) in &cases {
        let path = dir.path().join(format!("{name}.tfvars"));
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        match parse_tfvars_file(&path) {
            Err(e) => assert!(
                e.to_string().contains(&path.display().to_string()),
                "{name}: {e}"
            ),
            Ok(v) if *name == "nul" => {
                // NUL inside a quoted string is valid HCL; the trailing NULs are not.
                panic!("{name}: accepted {:?}", v.keys().collect::<Vec<_>>())
            }
            Ok(v) => panic!("{name}: accepted {:?}", v.keys().collect::<Vec<_>>()),
        }
    }
    // 100 MB, sparse: refused by size before it is read.
    let huge = dir.path().join("huge.tfvars");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    match parse_tfvars_file(&huge) {
        Err(TfvarsError::TooLarge { size, .. }) => assert_eq!(size, 100 * 1024 * 1024),
        other => panic!("100 MB: {other:?}"),
    }
    // A missing file and a directory are read errors naming the path.
    for path in [dir.path().join("missing.tfvars"), dir.path().to_owned()] {
        let e = parse_tfvars_file(&path).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}

#[test]
fn duplicate_tfvars_keys_are_refused_as_terraform_does() {
    // Terraform: "Attribute redefined: The argument "a" was already set at ...".
    let e = parse_tfvars_str("a = 1\na = 2\n", Path::new("dup.tfvars"));
    match e {
        Err(e) => assert!(e.to_string().contains("dup.tfvars"), "{e}"),
        Ok(v) => panic!(
            "duplicate key accepted, value {:?}",
            v.get("a").map(|x| format!("{x:?}"))
        ),
    }
}

#[test]
fn tfstate_that_is_not_json_v3_empty_or_without_lineage_is_refused() {
    use pve_tf::state::State;
    let cases: &[(&str, &[u8], &str)] = &[
        ("not-json", b"{not json", "not valid JSON"),
        ("empty", b"", "empty"),
        ("blank", b"  \n\t", "empty"),
        (
            "v3",
            br#"{"version":3,"serial":1,"lineage":"x","modules":[]}"#,
            "format version 3",
        ),
        (
            "no-lineage",
            br#"{"version":4,"serial":1,"resources":[]}"#,
            "lineage",
        ),
        (
            "empty-lineage",
            br#"{"version":4,"serial":1,"lineage":"","resources":[]}"#,
            "lineage",
        ),
        (
            "serial-string",
            br#"{"version":4,"serial":"1","lineage":"x","resources":[]}"#,
            "serial",
        ),
        (
            "version-string",
            br#"{"version":"4","serial":1,"lineage":"x","resources":[]}"#,
            "version",
        ),
        ("array", b"[]", "not a JSON object"),
        (
            "no-resources",
            br#"{"version":4,"serial":1,"lineage":"x"}"#,
            "resources",
        ),
    ];
    for (name, bytes, want) in cases {
        let e = State::parse(bytes).expect_err(name);
        assert!(format!("{e:#}").contains(want), "{name}: {e:#}");
    }
}

#[test]
fn textfile_dir_that_is_missing_or_read_only_is_a_clear_error_and_keeps_the_old_file() {
    // No tool writes Prometheus textfiles yet; every file write goes through Runner::write_file.
    let runner = Runner::new(false);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/pve_drift.prom");
    let e = runner
        .write_file(&missing, b"pve_drift 1\n", 0o644)
        .unwrap_err();
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
    let Some(fs) = support::Tmpfs::mount("size=64k,mode=0755") else {
        return;
    };
    let file = fs.path().join("pve_drift.prom");
    std::fs::write(&file, b"pve_drift 0\n").unwrap();
    fs.remount("ro");
    let e = runner
        .write_file(&file, b"pve_drift 1\n", 0o644)
        .unwrap_err();
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    assert!(format!("{e:?}").contains("ReadOnlyFilesystem"), "{e:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"pve_drift 0\n");
    assert_eq!(walk(fs.path()).len(), 1, "no temp file left");
}
