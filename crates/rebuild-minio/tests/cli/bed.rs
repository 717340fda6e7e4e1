//! The rebuild-minio test bed: a copy of `tests/fixtures/homelab` whose MinIO module starts the test S3
//! server (moto) from a `local-exec` provisioner, two environments (the MinIO one, `monitoring`, and
//! `prod`) applied against it, and save points of their states in a folder, as restore-tfstate writes
//! them. [`Bed::lose_minio`] is the disaster: the server is stopped (its data is in memory, so it is
//! gone) and, as a refresh by the Proxmox provider would find the VM missing, the MinIO module's
//! resources are dropped from the save point of the MinIO environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testbed::s3::{ACCESS_KEY, REGION, S3Client, SECRET_KEY};

/// Stamp of the save points the bed writes (restore-tfstate's naming: `<env>-<UTC stamp>.tfstate`).
pub const STAMP: &str = "20261121T000000Z";

pub struct Bed {
    tmp: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.kill_s3();
    }
}

/// The fixture, found from this crate's tests and from the hostile suite (`tests/hostile` includes this
/// file), both two folders below the workspace root.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/rebuild-minio/tests/fixtures/homelab")
}

impl Bed {
    /// Copies the fixture, starts S3 as the first install did, creates the versioned buckets, applies both
    /// environments against S3 and writes a save point of each state.
    pub fn up() -> Bed {
        let tmp = tempfile::Builder::new()
            .prefix("rebuild-minio-test-")
            .tempdir()
            .unwrap();
        testbed::terraform::copy_tree(&fixture_dir(), tmp.path()).unwrap();
        let port = testbed::ports::free_port().unwrap();
        let bed = Bed { tmp, port };
        for env in ["monitoring", "prod"] {
            // Each environment's state in its own bucket, the endpoint in backend.hcl.
            let backend = testbed::terraform::S3Backend {
                bucket: format!("tfstate-{env}"),
                ..testbed::terraform::S3Backend::at(&bed.endpoint(), env)
            };
            let dir = bed.env_dir(env);
            std::fs::write(dir.join("backend.tf"), backend.backend_block()).unwrap();
            std::fs::write(dir.join("backend.hcl"), backend.backend_hcl()).unwrap();
        }
        bed.set_network_generation(1);
        bed.start_s3();
        let client = bed.client();
        for bucket in ["tfstate-monitoring", "tfstate-prod"] {
            client.create_bucket(bucket).unwrap();
            client.set_versioning(bucket, true).unwrap();
        }
        std::thread::scope(|s| {
            for env in ["monitoring", "prod"] {
                let bed = &bed;
                s.spawn(move || {
                    bed.terraform(
                        env,
                        &[
                            "init",
                            "-input=false",
                            "-no-color",
                            "-backend-config=backend.hcl",
                        ],
                    );
                    bed.terraform(
                        env,
                        &["apply", "-auto-approve", "-input=false", "-no-color"],
                    );
                });
            }
        });
        std::fs::create_dir_all(bed.save_points()).unwrap();
        for env in ["monitoring", "prod"] {
            let state = bed.s3_state(env).expect("applied state");
            std::fs::write(
                bed.save_points().join(format!("{env}-{STAMP}.tfstate")),
                serde_json::to_vec_pretty(&state).unwrap(),
            )
            .unwrap();
        }
        bed
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("environments")
    }

    pub fn env_dir(&self, env: &str) -> PathBuf {
        self.root().join(env)
    }

    pub fn save_points(&self) -> PathBuf {
        self.tmp.path().join("save-points")
    }

    pub fn s3_dir(&self) -> PathBuf {
        self.tmp.path().join("s3")
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> S3Client {
        S3Client::new(&self.endpoint(), ACCESS_KEY, SECRET_KEY, REGION).unwrap()
    }

    pub fn set_network_generation(&self, generation: u32) {
        std::fs::write(
            self.env_dir("monitoring").join("terraform.tfvars"),
            format!(
                "s3_port = {}\ns3_state_dir = {:?}\nnetwork_generation = {generation}\n",
                self.port,
                self.s3_dir().display().to_string()
            ),
        )
        .unwrap();
    }

    /// The bootstrap start of S3, with the same script the MinIO module's provisioner runs.
    fn start_s3(&self) {
        let out = testbed::process::command(fixture_dir().join("start-s3.sh"))
            .arg(self.port.to_string())
            .arg(self.s3_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "start-s3.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn s3_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.s3_dir().join("moto.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    pub fn s3_up(&self) -> bool {
        testbed::ports::port_open(self.port)
    }

    fn kill_s3(&self) {
        if let Some(pid) = self.s3_pid() {
            testbed::process::stop_group(pid, Duration::from_secs(5));
        }
    }

    pub fn terraform(&self, env: &str, args: &[&str]) {
        let aws = testbed::terraform::S3Backend::at(&self.endpoint(), env).aws_env();
        testbed::terraform::run_in(&self.env_dir(env), args, &aws).unwrap();
    }

    /// The current state of `env` in S3, if any.
    pub fn s3_state(&self, env: &str) -> Option<Value> {
        let bucket = format!("tfstate-{env}");
        let key = format!("{env}/terraform.tfstate");
        self.client()
            .get_object(&bucket, &key)
            .ok()
            .flatten()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    pub fn set_save_point(&self, env: &str, state: &Value) {
        let path = self.save_points().join(format!("{env}-{STAMP}.tfstate"));
        std::fs::write(path, serde_json::to_vec_pretty(state).unwrap()).unwrap();
    }

    pub fn save_point(&self, env: &str) -> Value {
        let bytes =
            std::fs::read(self.save_points().join(format!("{env}-{STAMP}.tfstate"))).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// MinIO is lost: the server stops (its data was in memory), and the MinIO module's resources are
    /// gone from the MinIO environment's save point, as a refresh would find the VM gone.
    pub fn lose_minio(&self) {
        self.kill_s3();
        std::fs::remove_file(self.s3_dir().join("moto.pid")).unwrap();
        testbed::process::wait_until("S3 to stop", Duration::from_secs(20), || Ok(!self.s3_up()))
            .unwrap();
        let mut state = self.save_point("monitoring");
        state["resources"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["module"] != "module.minio");
        std::fs::write(
            self.save_points()
                .join(format!("monitoring-{STAMP}.tfstate")),
            serde_json::to_vec_pretty(&state).unwrap(),
        )
        .unwrap();
    }

    /// MinIO is up again but empty (a reinstalled server without its data disk).
    pub fn empty_s3(&self) {
        self.kill_s3();
        std::fs::remove_file(self.s3_dir().join("moto.pid")).unwrap();
        testbed::process::wait_until("S3 to stop", Duration::from_secs(20), || Ok(!self.s3_up()))
            .unwrap();
        self.start_s3();
    }

    /// Every file under the environments and save points with its content, to prove nothing changed.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for dir in [self.root(), self.save_points()] {
            walk(&dir, &mut out);
        }
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name() == ".terraform" {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

pub fn aws_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", REGION),
    ]
}
