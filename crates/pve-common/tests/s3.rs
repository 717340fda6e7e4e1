//! pve_common::s3 against a real S3 server with versioning (moto_server on loopback).

#![allow(clippy::unwrap_used)]

use pve_common::runner::Runner;
use pve_common::s3::{S3Client, Versioning};

fn start_moto() -> (testbed::s3::S3Server, String) {
    let server = testbed::s3::S3Server::start().unwrap();
    let endpoint = server.endpoint();
    (server, endpoint)
}

fn client(endpoint: &str, bucket: &str) -> S3Client {
    testbed::s3::S3Client::at(endpoint)
        .and_then(|c| c.bucket(bucket))
        .unwrap()
}

#[test]
fn list_buckets_names_every_bucket_whatever_the_client_is_bound_to() {
    let (_moto, endpoint) = start_moto();
    let runner = Runner::new(false);
    let none = client(&endpoint, "tfstate-prod");
    assert_eq!(none.list_buckets().unwrap(), Vec::<String>::new());
    for bucket in ["tfstate-prod", "tfstate-lab"] {
        client(&endpoint, bucket).create_bucket(&runner).unwrap();
    }
    let mut names = client(&endpoint, "other").list_buckets().unwrap();
    names.sort();
    assert_eq!(names, ["tfstate-lab", "tfstate-prod"]);
    // Nothing listens: an unreachable error, not an empty list.
    let dead = client("http://127.0.0.1:9", "tfstate-prod");
    let err = dead.list_buckets().unwrap_err();
    assert!(err.to_string().contains("list buckets at"), "{err}");
    assert!(err.status().is_none(), "{err}");
}

#[test]
fn versioned_bucket_round_trip() {
    let (_moto, endpoint) = start_moto();
    let s3 = client(&endpoint, "tfstate-prod");
    let runner = Runner::new(false);
    assert!(!s3.bucket_exists().unwrap());
    s3.create_bucket(&runner).unwrap();
    assert!(s3.bucket_exists().unwrap());
    assert_eq!(s3.versioning().unwrap(), Versioning::Off);
    s3.set_versioning(&runner, true).unwrap();
    assert_eq!(s3.versioning().unwrap(), Versioning::Enabled);

    let key = "prod/terraform.tfstate";
    let mut ids = Vec::new();
    for serial in 1..=3 {
        let put = s3
            .put(
                &runner,
                key,
                format!("{{\"serial\":{serial}}}").as_bytes(),
                false,
            )
            .unwrap()
            .unwrap();
        ids.push(
            put.version_id
                .expect("versioned bucket returns a version id"),
        );
    }
    let versions = s3.list_versions(key).unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0].version_id, ids[2], "newest first");
    assert!(versions[0].is_latest && !versions[1].is_latest);
    assert_eq!(s3.get(key, Some(&ids[0])).unwrap(), b"{\"serial\":1}");
    assert_eq!(s3.get(key, None).unwrap(), b"{\"serial\":3}");

    // Terraform's lock: a conditional create. The second one must fail with 412.
    let lock = "prod/terraform.tfstate.tflock";
    s3.put(&runner, lock, b"{\"ID\":\"a\"}", true).unwrap();
    let held = s3.put(&runner, lock, b"{\"ID\":\"b\"}", true).unwrap_err();
    assert!(held.is_precondition_failed(), "{held}");
    s3.delete(&runner, lock).unwrap();
    let after = s3.list_versions(lock).unwrap();
    assert!(
        after[0].delete_marker && after[0].is_latest,
        "delete leaves a marker, keeps the version"
    );
    assert_eq!(after.len(), 2);

    let missing = s3.get(key, Some("no-such-version")).unwrap_err();
    assert!(
        !pve_common::retry::Transient::is_transient(&missing),
        "{missing}"
    );
}

#[test]
fn paging_follows_markers() {
    let (_moto, endpoint) = start_moto();
    let mut s3 = client(&endpoint, "paging");
    s3.set_list_page_size(2);
    let runner = Runner::new(false);
    s3.create_bucket(&runner).unwrap();
    s3.set_versioning(&runner, true).unwrap();
    for i in 0..7 {
        s3.put(
            &runner,
            "env/terraform.tfstate",
            format!("{i}").as_bytes(),
            false,
        )
        .unwrap();
    }
    s3.put(&runner, "env/other.tfstate", b"x", false).unwrap();
    let versions = s3.list_versions("env/").unwrap();
    assert_eq!(versions.len(), 8, "four pages of two");
    assert_eq!(
        versions
            .iter()
            .filter(|v| v.key == "env/terraform.tfstate")
            .count(),
        7
    );
    assert_eq!(versions.iter().filter(|v| v.is_latest).count(), 2);
}
