//! Component 7 (`--full`): the node's backup jobs and connectivity (`full.rs`), then the disaster-recovery
//! final check: `terraform init` works for every environment (in a throw-away data dir, so the
//! environment's `.terraform` is left alone), and MinIO, Prometheus, Grafana and Alertmanager answer their
//! health endpoints (those with a URL; the others are `info`, not checked).

use std::path::Path;
use std::time::Duration;

use pve_common::runner::{Access, LocalCommand, Runner};

use crate::config::Config;
use crate::report::{CheckName, Component, Status};
use crate::tfstate::Env;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url`: the status and (up to 64 KiB of) the body.
fn get(url: &str) -> Result<(u16, String), String> {
    let mut resp = agent().get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok((status, body))
}

fn probe(comp: &mut Component, service: &str, base: Option<&str>, path: &str, flag: &str) {
    // The replaced script's --full checked no service: one nobody pointed us at is not checked (said so),
    // never an error a caller of --full would trip on.
    let Some(base) = base else {
        comp.add(
            service,
            CheckName::Health,
            Status::Info,
            format!("not checked: no URL (give --{flag})"),
        );
        return;
    };
    let url = format!("{base}{path}");
    match get(&url) {
        Ok((200, body)) => {
            // Grafana says {"database": "ok", ...}; a database problem is still a 200 on old versions.
            if service == "grafana"
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
                && let Some(db) = v.get("database").and_then(|d| d.as_str())
                && db != "ok"
            {
                comp.add(
                    service,
                    CheckName::Health,
                    Status::Fail,
                    format!("{url}: database {db}"),
                );
                return;
            }
            comp.add(
                service,
                CheckName::Health,
                Status::Ok,
                format!("{url} answers 200"),
            );
        }
        Ok((code, _)) => comp.add(
            service,
            CheckName::Health,
            Status::Fail,
            format!("{url} answers {code}"),
        ),
        Err(e) => comp.add(
            service,
            CheckName::Health,
            Status::Fail,
            format!("{url}: {e}"),
        ),
    }
}

fn minio(comp: &mut Component, config: &Config, envs: &[Env]) {
    let first_backend = envs.iter().find_map(|e| e.backend.as_ref().ok());
    let base = config
        .services
        .minio
        .clone()
        .or_else(|| first_backend.map(|b| b.endpoint.trim_end_matches('/').to_owned()));
    let Some(base) = base else {
        comp.add(
            "minio",
            CheckName::Health,
            Status::Info,
            "not checked: no URL (give --minio-url, or an environment with an S3 backend)",
        );
        return;
    };
    let url = format!("{base}/minio/health/live");
    match get(&url) {
        Ok((200, _)) => comp.add(
            "minio",
            CheckName::Health,
            Status::Ok,
            format!("{url} answers 200"),
        ),
        Ok((code, _)) => {
            // Not MinIO (another S3 server): ask S3 itself whether the state buckets answer.
            let mut buckets: Vec<_> = envs
                .iter()
                .filter_map(|e| e.backend.as_ref().ok())
                .collect();
            buckets.dedup_by(|a, b| a.bucket == b.bucket && a.endpoint == b.endpoint);
            if buckets.is_empty() {
                comp.add(
                    "minio",
                    CheckName::Health,
                    Status::Fail,
                    format!("{url} answers {code} and no S3 backend is known to ask instead"),
                );
                return;
            }
            for b in buckets {
                let answer = crate::tfstate::client(b, config.tfvars.as_deref())
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|c| c.bucket_exists().map_err(|e| e.to_string()));
                match answer {
                    Ok(true) => comp.add(
                        "minio",
                        CheckName::Health,
                        Status::Ok,
                        format!(
                            "not MinIO ({url} answers {code}); S3 answers: bucket {} exists",
                            b.bucket
                        ),
                    ),
                    Ok(false) => comp.add(
                        "minio",
                        CheckName::Health,
                        Status::Fail,
                        format!("S3 answers but bucket {} does not exist", b.bucket),
                    ),
                    Err(e) => {
                        comp.add("minio", CheckName::Health, Status::Fail, format!("S3: {e}"))
                    }
                }
            }
        }
        Err(e) => comp.add(
            "minio",
            CheckName::Health,
            Status::Fail,
            format!("{url}: {e}"),
        ),
    }
}

fn terraform_init(comp: &mut Component, runner: &Runner, bin: &Path, env: &Env) {
    let data_dir = match tempfile::Builder::new()
        .prefix("verify-backups-tf-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            comp.add(
                &env.name,
                CheckName::TerraformInit,
                Status::Fail,
                format!("temp dir: {e}"),
            );
            return;
        }
    };
    let mut cmd = LocalCommand::new(bin).args(["init", "-input=false", "-no-color"]);
    // The same partial backend configuration the discovery read (the env's backend.hcl).
    if let Ok(b) = &env.backend {
        for f in &b.config_files {
            cmd = cmd.arg(format!("-backend-config={}", f.display()));
        }
    }
    let cmd = cmd
        .dir(&env.dir)
        .env("TF_DATA_DIR", data_dir.path())
        .env("TF_IN_AUTOMATION", "1");
    // A check, not a change: it writes only into the throw-away data dir.
    match runner.run(Access::ReadOnly, &cmd) {
        Ok(Some(out)) if out.status.success() => comp.add(
            &env.name,
            CheckName::TerraformInit,
            Status::Ok,
            "terraform init succeeds (backend reachable, providers available)",
        ),
        Ok(Some(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("Error:"))
                .unwrap_or_else(|| stderr.lines().last().unwrap_or("no output"))
                .to_owned();
            comp.add(
                &env.name,
                CheckName::TerraformInit,
                Status::Fail,
                format!(
                    "terraform init failed ({}): {line}",
                    pve_common::runner::describe_status(&out.status)
                ),
            );
        }
        Ok(None) => comp.add(
            &env.name,
            CheckName::TerraformInit,
            Status::Info,
            "skipped (dry run)",
        ),
        Err(e) => comp.add(
            &env.name,
            CheckName::TerraformInit,
            Status::Fail,
            format!("{e}"),
        ),
    }
}

/// Runs the `--full` checks.
pub fn check(comp: &mut Component, config: &Config, runner: &Runner, envs: &[Env]) {
    match pve_common::terraform::resolve(config.terraform_bin.as_deref().map(Path::as_os_str)) {
        Ok(bin) => {
            for env in envs {
                terraform_init(comp, runner, &bin.path, env);
            }
        }
        Err(e) => comp.add(
            "terraform",
            CheckName::TerraformInit,
            Status::Fail,
            format!("{e}"),
        ),
    }
    minio(comp, config, envs);
    let s = &config.services;
    probe(
        comp,
        "prometheus",
        s.prometheus.as_deref(),
        "/-/ready",
        "prometheus-url",
    );
    probe(
        comp,
        "grafana",
        s.grafana.as_deref(),
        "/api/health",
        "grafana-url",
    );
    probe(
        comp,
        "alertmanager",
        s.alertmanager.as_deref(),
        "/-/ready",
        "alertmanager-url",
    );
}
