//! rebuild-minio as a drop-in for `rebuild-minio.sh`: `--dry-run` contacts nothing and writes nothing,
//! the endpoint comes from the homelab's `minio = {...}` block when no backend block is active, and the
//! text report ends with the script's summary in French or English. No test bed: a homelab layout in a
//! temporary folder, addresses on loopback only.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use pve_common::output::Document;
use rebuild_minio::{Outcome, Report};

/// The `--json` document, decoded.
type Doc = Document<Report>;

fn report(out: &Output) -> Doc {
    testbed::tool::decode(
        &serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout))),
        &text(&out.stderr),
    )
}

const ENVS: &str = "infrastructure/proxmox/environments";

struct Homelab {
    tmp: tempfile::TempDir,
}

impl Homelab {
    /// prod, lab and monitoring, their backend blocks commented out as the homelab keeps them, and the
    /// `minio` block in monitoring's tfvars pointing at `127.0.0.1:port`.
    fn new(port: u16) -> Homelab {
        let tmp = tempfile::Builder::new()
            .prefix("rebuild-minio-dropin-")
            .tempdir()
            .unwrap();
        let h = Homelab { tmp };
        for env in ["prod", "lab", "monitoring"] {
            let dir = h.env_dir(env);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("backend.tf"),
                testbed::fixture::commented_backend_tf(env),
            )
            .unwrap();
            std::fs::write(
                dir.join("main.tf"),
                "module \"minio\" {\n  source = \"./m\"\n}\n",
            )
            .unwrap();
        }
        std::fs::write(
            h.env_dir("monitoring").join("terraform.tfvars"),
            testbed::fixture::minio_block("127.0.0.1", Some(port), "admin", "pw-123456"),
        )
        .unwrap();
        std::fs::create_dir(h.path().join("save-points")).unwrap();
        std::fs::create_dir(h.path().join("elsewhere")).unwrap();
        // A terraform that leaves a trace when run.
        let tf = h.path().join("terraform");
        std::fs::write(
            &tf,
            format!(
                "#!/bin/sh\necho ran >>'{}'\nexit 1\n",
                h.path().join("terraform-ran").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o755)).unwrap();
        h
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn env_dir(&self, env: &str) -> PathBuf {
        self.path().join(ENVS).join(env)
    }

    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut todo = vec![self.path().to_owned()];
        while let Some(dir) = todo.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    files.insert(p.clone(), Vec::new());
                    todo.push(p);
                } else {
                    files.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        files
    }

    /// The tool, run from a folder outside the homelab, with `--homelab`.
    fn run(&self, args: &[&str]) -> Output {
        super::bin()
            .current_dir(self.path().join("elsewhere"))
            .env("HOME", self.path())
            .env("PVE_RETRY_ATTEMPTS", "1")
            .env("TF_BIN", self.path().join("terraform"))
            .arg("--homelab")
            .arg(self.path())
            .arg("--state-from")
            .arg(self.path().join("save-points"))
            .arg("--terraform-bin")
            .arg(self.path().join("terraform"))
            .args(args)
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A listening loopback socket: any connection the tool makes is queued and seen by [`no_connection`].
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn no_connection(l: &TcpListener) -> bool {
    matches!(l.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn dry_run_contacts_nothing_writes_nothing_and_prints_every_command() {
    let (l, port) = listener();
    let h = Homelab::new(port);
    let before = h.snapshot();
    let out = h.run(&["--dry-run", "--lang", "en"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(no_connection(&l), "something connected to the endpoint");
    assert!(
        !h.path().join("terraform-ran").exists(),
        "terraform was run"
    );
    assert_eq!(h.snapshot(), before, "files changed");
    let endpoint = format!("http://127.0.0.1:{port}");
    let dry: Vec<&str> = stderr.lines().filter(|l| l.contains("[DRY-RUN]")).collect();
    let has = |needle: &str| dry.iter().any(|l| l.contains(needle));
    assert!(
        has(&format!("GET {endpoint}/minio/health/live")),
        "{stderr}"
    );
    let mon = h.env_dir("monitoring");
    assert!(
        has(&format!(
            "terraform -chdir={} apply -target=module.minio -auto-approve",
            mon.display()
        )),
        "{stderr}"
    );
    for env in ["prod", "lab", "monitoring"] {
        assert!(
            has(&format!("PUT {endpoint}/tfstate-{env} (create bucket")),
            "{env}: {stderr}"
        );
    }
    for env in ["prod", "monitoring"] {
        assert!(
            has(&format!(
                "terraform -chdir={} init -input=false -reconfigure",
                h.env_dir(env).display()
            )),
            "{env}: {stderr}"
        );
    }
    // The password of the minio block is never shown.
    assert!(!stderr.contains("pw-123456") && !stdout.contains("pw-123456"));
    // Then the usual summary.
    assert!(stdout.contains("outcome: would_rebuild"), "{stdout}");
    assert!(stdout.contains("REBUILD SUMMARY - Minio"), "{stdout}");
}

#[test]
fn dry_run_json_names_the_minio_block_endpoint_and_keeps_the_schema() {
    let (l, port) = listener();
    let h = Homelab::new(port);
    let out = h.run(&["--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(no_connection(&l));
    let doc: Doc = report(&out);
    assert_eq!(doc.schema, "pve-rebuild-minio/v1");
    assert!(doc.body.dry_run);
    assert_eq!(doc.body.env, "monitoring");
    assert_eq!(doc.body.outcome, Outcome::WouldRebuild);
    assert_eq!(doc.body.endpoint, format!("http://127.0.0.1:{port}"));
    let steps: Vec<&str> = doc.body.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, super::STEPS);
    // --endpoint still wins over the block.
    let out = h.run(&["--dry-run", "--json", "--endpoint", "http://127.0.0.1:9"]);
    assert_eq!(report(&out).body.endpoint, "http://127.0.0.1:9");
    assert!(no_connection(&l));
}

#[test]
fn the_health_check_goes_to_the_minio_block_endpoint() {
    // A closed port: the live check fails there, and says where it looked.
    let port = {
        let (l, port) = listener();
        drop(l);
        port
    };
    let h = Homelab::new(port);
    let out = h.run(&["--preview", "--json"]);
    let doc: Doc = report(&out);
    assert_eq!(doc.body.endpoint, format!("http://127.0.0.1:{port}"));
    assert!(!doc.body.health.live, "{doc:#?}");
    let err = doc.body.health.error.as_deref().unwrap();
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/minio/health/live")),
        "{err}"
    );
}

#[test]
fn the_summary_is_in_french_or_english() {
    let (_l, port) = listener();
    let h = Homelab::new(port);
    let fr = text(&h.run(&["--dry-run", "--lang", "fr"]).stdout);
    assert!(fr.contains("\nRESUME DE RECONSTRUCTION - Minio\n"), "{fr}");
    assert!(fr.contains("Resultat: dry-run"), "{fr}");
    let en = text(&h.run(&["--dry-run", "--lang", "en"]).stdout);
    assert!(en.contains("\nREBUILD SUMMARY - Minio\n"), "{en}");
    assert!(en.contains("Result: dry-run"), "{en}");
    assert!(!en.contains("RESUME DE RECONSTRUCTION"));
}
