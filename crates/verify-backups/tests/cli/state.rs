//! Component 6 (Terraform state in S3, moto) and component 7 (`--full`: terraform init, MinIO/S3,
//! Prometheus, Grafana, Alertmanager). Grafana itself is not installable here: a small local HTTP
//! responder stands in for all three monitoring endpoints.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use serde_json::{Value, json};
use testbed::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

use verify_backups::report::{EnvResult, Report, Status};

use crate::bed::{component, run_json};

fn state_doc(resources: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "version": 4, "terraform_version": "1.11.4", "serial": 3, "lineage": "0b8e4c1e-5a5e-4f8e-9c39-6c1f1b5e0d11",
        "outputs": {}, "resources": resources, "check_results": null
    }))
    .unwrap()
}

fn one_resource() -> Value {
    json!([{"mode": "managed", "type": "terraform_data", "name": "jellyfin",
        "provider": "provider[\"terraform.io/builtin/terraform\"]",
        "instances": [{"schema_version": 0, "attributes": {"id": "x", "input": null, "output": null, "triggers_replace": null}}]}])
}

fn write_env(root: &Path, name: &str, bucket: &str, endpoint: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "terraform {{\n  backend \"s3\" {{\n    bucket = \"{bucket}\"\n    key = \"{name}/terraform.tfstate\"\n    region = \"{REGION}\"\n    \
             use_path_style = true\n    use_lockfile = true\n    skip_credentials_validation = true\n    skip_requesting_account_id = true\n    \
             skip_metadata_api_check = true\n    skip_region_validation = true\n    max_retries = 0\n  }}\n}}\n\n\
             resource \"terraform_data\" \"jellyfin\" {{\n  input = \"x\"\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("backend.hcl"),
        format!("endpoints = {{ s3 = \"{endpoint}\" }}\n"),
    )
    .unwrap();
}

fn aws_env() -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ("AWS_REGION".into(), REGION.into()),
    ]
}

fn env_result<'a>(doc: &'a Report, env: &str) -> &'a EnvResult {
    testbed::tool::entry(
        &doc.environments,
        |e| e.env == env,
        format_args!("environment {env}"),
        doc,
    )
}

fn reasons(doc: &Report, env: &str) -> String {
    component(doc, "tfstate")
        .checks
        .iter()
        .filter(|c| c.subject == env && c.status == Status::Fail)
        .map(|c| c.reason.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn state_objects_checked_per_environment() {
    let s3 = S3Server::start().unwrap();
    let c = s3.client();
    c.create_bucket("tfstate").unwrap();
    c.set_versioning("tfstate", true).unwrap();
    c.create_bucket("tfstate-nover").unwrap();
    let root = tempfile::tempdir().unwrap();
    let ep = s3.endpoint();
    for (env, bucket, body) in [
        ("prod", "tfstate", Some(state_doc(one_resource()))),
        ("empty", "tfstate", Some(Vec::new())),
        ("badjson", "tfstate", Some(b"{\"version\": 4, ".to_vec())),
        ("nores", "tfstate", Some(state_doc(json!([])))),
        ("nover", "tfstate-nover", Some(state_doc(one_resource()))),
        ("missing", "tfstate", None),
    ] {
        write_env(root.path(), env, bucket, &ep);
        if let Some(body) = body {
            c.put_object(bucket, &format!("{env}/terraform.tfstate"), &body)
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        root.path().display().to_string(),
        "--state-max-age".into(),
        "1h".into(),
        "--textfile-dir".into(),
        dir.path().display().to_string(),
    ];
    let (code, doc) = run_json(&args, &aws_env());
    assert_eq!(code, 2, "{doc:#?}");
    assert_eq!(
        env_result(&doc, "prod").status,
        Status::Ok,
        "{}",
        reasons(&doc, "prod")
    );
    assert_eq!(env_result(&doc, "prod").resources, Some(1));
    assert_eq!(
        env_result(&doc, "prod").versioning.as_deref(),
        Some("enabled")
    );
    for (env, needle) in [
        ("empty", "empty"),
        ("badjson", "not valid JSON"),
        ("nores", "no resources"),
        ("nover", "versioning off"),
        ("missing", "does not exist"),
    ] {
        assert_eq!(env_result(&doc, env).status, Status::Fail, "{env}");
        assert!(
            reasons(&doc, env).contains(needle),
            "{env}: {}",
            reasons(&doc, env)
        );
    }
    let metrics = std::fs::read_to_string(dir.path().join("pve_backup.prom")).unwrap();
    assert!(
        metrics.contains("pve_backup_state_status{env=\"prod\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pve_backup_state_status{env=\"nores\"} 2"),
        "{metrics}"
    );
}

/// Answers every request with 200 and Grafana's health document.
fn responder() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "{\"commit\":\"x\",\"database\":\"ok\",\"version\":\"11.0.0\"}";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn full_check_with_minio_up_then_down() {
    let mut s3 = S3Server::start().unwrap();
    let c = s3.client();
    c.create_bucket("tfstate").unwrap();
    c.set_versioning("tfstate", true).unwrap();
    c.put_object(
        "tfstate",
        "prod/terraform.tfstate",
        &state_doc(one_resource()),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    write_env(root.path(), "prod", "tfstate", &s3.endpoint());
    let web = responder();
    let args: Vec<String> = vec![
        "--root".into(),
        root.path().display().to_string(),
        "--full".into(),
        "--prometheus-url".into(),
        web.clone(),
        "--grafana-url".into(),
        web.clone(),
        "--alertmanager-url".into(),
        web,
    ];
    let (code, doc) = run_json(&args, &aws_env());
    assert_eq!(code, 0, "{doc:#?}");
    let services = component(&doc, "services");
    assert_eq!(services.status, Status::Ok, "{services:#?}");
    let subjects: Vec<&str> = services.checks.iter().map(|c| c.subject.as_str()).collect();
    for s in ["prod", "minio", "prometheus", "grafana", "alertmanager"] {
        assert!(subjects.contains(&s), "{subjects:?}");
    }
    // The environment's own .terraform is untouched (init ran in a throw-away data dir).
    assert!(!root.path().join("prod/.terraform").exists());

    s3.stop().unwrap();
    let (code, doc) = run_json(&args, &aws_env());
    assert_eq!(code, 2);
    let services = component(&doc, "services");
    let status = |subject: &str| {
        services
            .checks
            .iter()
            .find(|c| c.subject == subject)
            .unwrap()
            .status
    };
    assert_eq!(status("minio"), Status::Fail);
    assert_eq!(status("prod"), Status::Fail);
    assert_eq!(status("grafana"), Status::Ok);
    assert_eq!(component(&doc, "tfstate").status, Status::Fail);
}
