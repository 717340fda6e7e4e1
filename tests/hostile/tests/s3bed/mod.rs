//! A restore-tfstate environment on a real S3 server (moto, `testbed::s3`): an `s3` backend block with
//! `use_lockfile`, and state versions written directly (no Terraform run needed to have history).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use pve_common::runner::Runner;
use pve_common::s3::S3Client;
use serde_json::{Value, json};
use testbed::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

use crate::support::{self, output_within};

pub const KEY: &str = "prod/terraform.tfstate";

pub struct S3Bed {
    pub server: S3Server,
    pub dir: tempfile::TempDir,
}

pub fn state(serial: u64, memory: u64) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": serial,
        "lineage": "7b0c2c8e-hostile-lineage",
        "outputs": {},
        "resources": [{
            "mode": "managed", "type": "terraform_data", "name": "vm",
            "provider": "provider[\"terraform.io/builtin/terraform\"]",
            "instances": [{"schema_version": 0, "attributes": {"id": "x", "input": {"memory": memory}}}]
        }],
        "check_results": null
    }))
    .unwrap()
}

impl S3Bed {
    /// moto with a versioned bucket `tfstate` and three versions of the state (serials 1..3).
    pub fn new() -> S3Bed {
        let server = S3Server::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("environments/prod");
        std::fs::create_dir_all(&env).unwrap();
        std::fs::write(
            env.join("main.tf"),
            testbed::terraform::S3Backend::for_env(&server, "prod").backend_block(),
        )
        .unwrap();
        let bed = S3Bed { server, dir };
        let s3 = bed.s3_at(&bed.server.endpoint());
        let runner = Runner::new(false);
        s3.create_bucket(&runner).unwrap();
        s3.set_versioning(&runner, true).unwrap();
        for serial in 1..=3 {
            s3.put(&runner, KEY, &state(serial, 1024 * serial), false)
                .unwrap();
        }
        bed
    }

    pub fn s3(&self) -> S3Client {
        self.s3_at(&self.server.endpoint())
    }

    pub fn s3_at(&self, endpoint: &str) -> S3Client {
        testbed::s3::S3Client::at(endpoint)
            .and_then(|c| c.bucket(testbed::terraform::STATE_BUCKET))
            .unwrap()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("environments")
    }

    pub fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    /// restore-tfstate on env `prod` through `endpoint` (the server, or a fault proxy in front of it).
    pub fn cmd_at(&self, endpoint: &str) -> Command {
        let mut cmd = support::tool("restore-tfstate");
        cmd.arg("--root")
            .arg(self.root())
            .args(["--env", "prod", "--endpoint", endpoint, "--backup-dir"])
            .arg(self.backups())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("PVE_RETRY_DELAY", "10ms");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        output_within(
            self.cmd_at(&self.server.endpoint()).args(args),
            Duration::from_secs(60),
        )
    }

    /// Version ids of the state object, newest first.
    pub fn versions(&self) -> Vec<String> {
        self.s3()
            .list_versions(KEY)
            .unwrap()
            .into_iter()
            .filter(|v| v.key == KEY && !v.delete_marker)
            .map(|v| v.version_id)
            .collect()
    }

    pub fn latest(&self) -> Value {
        serde_json::from_slice(&self.s3().get(KEY, None).unwrap()).unwrap()
    }

    /// Whether a live (not deleted) lock object exists.
    pub fn lock_held(&self) -> bool {
        self.s3()
            .list_versions(&format!("{KEY}.tflock"))
            .unwrap()
            .iter()
            .any(|v| v.is_latest && !v.delete_marker)
    }
}
