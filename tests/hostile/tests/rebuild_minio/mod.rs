//! rebuild-minio with S3 going away in the middle of the rebuild: the bed is rebuild-minio's own
//! (`crates/rebuild-minio/tests/cli/bed.rs`: real Terraform, moto started by the MinIO module), the tool
//! talks to S3 through a [`FaultProxy`] that cuts every connection from the first upload of a state on.

#[path = "../../../../crates/rebuild-minio/tests/cli/bed.rs"]
#[allow(dead_code)]
pub mod bed;

use std::time::Duration;

use pve_common::output::Document;
use rebuild_minio::Outcome;

use crate::support::{self, Action, FaultProxy, fault, output_within, text, tool};

#[test]
fn s3_stopped_during_rebuild_minio_keeps_the_save_points_and_reports_it() {
    // S3 goes away at the lock of the first state upload, then (second bed) at the state write itself,
    // while the lock is held.
    for trigger in [
        "PUT /tfstate-prod/prod/terraform.tfstate.tflock",
        "PUT /tfstate-prod/prod/terraform.tfstate?",
    ] {
        s3_stopped_at(trigger);
    }
}

fn s3_stopped_at(trigger: &str) {
    let bed = bed::Bed::up();
    bed.lose_minio();
    let save_points_before: Vec<_> = bed
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with(bed.save_points()))
        .collect();
    let proxy = FaultProxy::start(bed.port, trigger, Action::Cut(Box::new(|| {})));
    let out = output_within(
        tool("rebuild-minio")
            .envs(bed::aws_env())
            .env("PVE_RETRY_ATTEMPTS", "2")
            .env("PVE_RETRY_DELAY", "100ms")
            .arg("--root")
            .arg(bed.root())
            .arg("--state-from")
            .arg(bed.save_points())
            .args(["--endpoint", &proxy.endpoint()])
            .args(["--health-timeout", "90s", "--json", "--yes"]),
        Duration::from_secs(400),
    );
    fault();
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    eprintln!("rebuild-minio with S3 gone at the first state upload:\n{e}");
    assert_eq!(
        proxy.fired.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the cut happened: {e}"
    );
    assert_eq!(out.status.code(), Some(1), "{e}\n{o}");
    let doc: Document<rebuild_minio::Report> = support::decoded(&o, &e);
    assert_eq!(doc.body.outcome, Outcome::Failed, "{doc:#?}");
    // The save points the states come from are untouched.
    let after: Vec<_> = bed
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with(bed.save_points()))
        .collect();
    assert_eq!(after, save_points_before, "save points unchanged");
    // No half-written state in S3 (moto itself is up: the proxy was cut) and no lock left behind.
    if let Some(state) = bed.s3_state("prod") {
        assert!(
            state["lineage"] == bed.save_point("prod")["lineage"],
            "a whole state or none"
        );
    }
    for env in ["prod", "monitoring"] {
        let lock = bed
            .client()
            .get_object(
                &format!("tfstate-{env}"),
                &format!("{env}/terraform.tfstate.tflock"),
            )
            .ok()
            .flatten();
        if let Some(lock) = lock {
            // S3 went away while the lock was held: it cannot be released, so it must be reported
            // with the ID `terraform force-unlock` needs.
            let lock: pve_tf::lock::LockInfo = serde_json::from_slice(&lock).unwrap();
            let id = &lock.id;
            assert!(
                e.contains("force-unlock") && e.contains(id),
                "{env}: lock {id} reported: {e}"
            );
        }
    }
    // The MinIO environment is still on its local state (it never moved back): a whole, valid file.
    let local = bed.env_dir("monitoring").join("terraform.tfstate");
    if local.exists() {
        let bytes = std::fs::read(&local).unwrap();
        pve_tf::state::State::parse(&bytes).expect("the local state is whole");
    }
    assert!(crate::pvenode::temp_files(&bed.root()).is_empty());
}
