//! The S3 server and client: versioning, delete markers, paging, conditional puts, restart.

use testbed::s3::{S3Server, Versioning};

#[test]
fn s3_versions_delete_markers_and_restart() {
    let mut server = S3Server::start().unwrap();
    let s3 = server.client();
    s3.create_bucket("tfstate").unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Unversioned);
    s3.set_versioning("tfstate", true).unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Enabled);

    let mut ids = Vec::new();
    for n in 1..=3 {
        let body = format!("{{\"serial\": {n}}}");
        ids.push(
            s3.put_object("tfstate", "prod/terraform.tfstate", body.as_bytes())
                .unwrap()
                .unwrap(),
        );
    }
    s3.put_object("tfstate", "lab/terraform.tfstate", b"{}")
        .unwrap();
    // Pages of two entries exercise KeyMarker/VersionIdMarker paging.
    let versions = s3
        .list_object_versions_paged("tfstate", "prod/", 2)
        .unwrap();
    let listed: Vec<&str> = versions.iter().map(|v| v.version_id.as_str()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert!(versions[0].is_latest && !versions[1].is_latest);
    assert_eq!(
        s3.get_object_version("tfstate", "prod/terraform.tfstate", &ids[0])
            .unwrap(),
        b"{\"serial\": 1}"
    );
    assert_eq!(s3.list_object_versions("tfstate", "").unwrap().len(), 4);

    s3.delete_object("tfstate", "prod/terraform.tfstate")
        .unwrap();
    assert_eq!(
        s3.get_object("tfstate", "prod/terraform.tfstate").unwrap(),
        None
    );
    let versions = s3.list_object_versions("tfstate", "prod/").unwrap();
    assert_eq!(versions.len(), 4);
    assert!(
        versions[0].is_delete_marker && versions[0].is_latest,
        "{versions:?}"
    );
    assert!(
        versions[1..]
            .iter()
            .all(|v| !v.is_delete_marker && !v.is_latest)
    );

    s3.set_versioning("tfstate", false).unwrap();
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Suspended);
    assert_eq!(
        s3.put_object("tfstate", "lab/terraform.tfstate", b"{\"v\":2}")
            .unwrap(),
        None
    );
    let lab = s3.list_object_versions("tfstate", "lab/").unwrap();
    assert!(
        lab.iter().any(|v| v.version_id == "null" && v.is_latest),
        "{lab:?}"
    );

    // If-None-Match: * is what Terraform's lock file relies on.
    assert!(
        s3.put_object_if_absent("tfstate", "x.tflock", b"1")
            .unwrap()
    );
    assert!(
        !s3.put_object_if_absent("tfstate", "x.tflock", b"2")
            .unwrap()
    );

    // MinIO down: connections refused; back: data replayed.
    let port = server.port();
    server.stop().unwrap();
    assert!(!testbed::ports::port_open(port));
    assert!(s3.get_object("tfstate", "lab/terraform.tfstate").is_err());
    server.start_again().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(
        s3.get_object("tfstate", "lab/terraform.tfstate")
            .unwrap()
            .unwrap(),
        b"{\"v\":2}"
    );
    assert_eq!(
        s3.list_object_versions("tfstate", "prod/").unwrap().len(),
        4
    );
    assert_eq!(s3.versioning("tfstate").unwrap(), Versioning::Suspended);

    server.restart_empty().unwrap();
    assert!(
        s3.list_keys("tfstate", "").is_err(),
        "bucket should be gone"
    );
    assert!(s3.get_object("tfstate", "lab/terraform.tfstate").is_err());
}

/// Stopping moto while it appends to its recording leaves a torn last line; the restart must still bring
/// the data back (moto's replay fails with HTTP 500 on such a line).
#[test]
fn restart_survives_a_torn_recording_line() {
    let mut server = S3Server::start().unwrap();
    let s3 = server.client();
    s3.create_bucket("tfstate").unwrap();
    s3.put_object("tfstate", "prod/terraform.tfstate", b"{\"serial\": 1}")
        .unwrap();
    server.stop().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(server.recording_path())
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"module": "s3", "method": "PUT", "ur"#).unwrap();
    drop(file);
    server.start_again().unwrap();
    assert_eq!(
        server
            .client()
            .get_object("tfstate", "prod/terraform.tfstate")
            .unwrap()
            .as_deref(),
        Some(&b"{\"serial\": 1}"[..])
    );
}

/// Regression (issue 19: `tf::terraform_with_s3_backend_plans_drift_and_locks` failed about 1 run in 12
/// with "no state at s3://tfstate/prod/terraform.tfstate"). While moto was down its port was free:
/// another process (here: another moto, as another test bed on the machine would start) could take
/// it, and the restart then probed and replayed against that process. The port must stay ours.
#[test]
fn stopped_moto_keeps_its_port_from_other_processes() {
    let mut server = S3Server::start().unwrap();
    let s3 = server.client();
    s3.create_bucket("tfstate").unwrap();
    s3.put_object("tfstate", "prod/terraform.tfstate", b"{\"serial\": 1}")
        .unwrap();
    let port = server.port();
    server.stop().unwrap();
    assert!(!testbed::ports::port_open(port), "moto is down");

    // Werkzeug binds with SO_REUSEADDR, as std's listener does.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    let squat_dir = tempfile::tempdir().unwrap();
    let squatter = S3Server::spawn(squat_dir.path(), port).and_then(|mut s| {
        s.wait_ready()?;
        Ok(s)
    });
    server.start_again().unwrap();
    assert_eq!(
        s3.get_object("tfstate", "prod/terraform.tfstate")
            .unwrap()
            .as_deref(),
        Some(&b"{\"serial\": 1}"[..])
    );
    assert!(squatter.is_err(), "another moto got port {port}");
    let ours = testbed::ports::listening_sockets(server.pid()).unwrap();
    assert!(ours.iter().any(|a| a.port() == port), "{ours:?}");
}
