//! rebuild-monitoring, a tool killed outright (SIGKILL, as the OOM killer does) must not take its
//! Terraform child down with it nor leave anything readable behind; the next run reports and cleans
//! what the killed run left.

use std::path::PathBuf;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use crate::support::survive::Bed;
use crate::support::survive::fake;
use crate::support::survive::wait_until;
use crate::support::{self, fault, output_within, text, walk};

/// The plan rebuild-monitoring `--from-terraform` writes (sensitive values in clear) is 0600 in a 0700
/// folder, and is gone after exit 130; after SIGKILL it stays private and the next run removes it.
/// Before, it was 0644 in a 0755 folder of /tmp and stayed on both.
#[test]
fn rebuild_monitorings_plan_is_private_and_never_left_behind() {
    let bed = Bed::new();
    let root = bed.path("homelab/environments");
    std::fs::create_dir_all(root.join("monitoring")).unwrap();
    std::fs::write(
        root.join("monitoring/main.tf"),
        "resource \"terraform_data\" \"vm\" {}\n",
    )
    .unwrap();
    let fake = fake(
        &bed.path("tf"),
        "printf 'password = \"hunter2-secret\"' > \"$out\"\n\
         stat -c '%a' \"$out\" > $d/plan-mode\n\
         stat -c '%a' \"$(dirname \"$out\")\" > $d/dir-mode\n\
         echo \"$out\" > $d/plan-path\n\
         [ -f $d/quick ] && exit 0\n\
         echo started > $d/started\n\
         sleep 30",
    );
    let cmd = || {
        let mut cmd = support::tool("rebuild-monitoring");
        cmd.args(["--from-terraform", "--yes", "--root"])
            .arg(&root)
            .arg("--terraform-bin")
            .arg(&fake)
            .args(["--deadline", "1s", "--json"])
            .args(["--prometheus-url", "http://127.0.0.1:9"])
            .args(["--alertmanager-url", "http://127.0.0.1:9"])
            .args(["--grafana-url", "http://127.0.0.1:9"])
            .args(["--node-exporter-url", "http://127.0.0.1:9"])
            .env("TMPDIR", bed.path("tmp"));
        cmd
    };
    let plans = || {
        walk(&bed.path("tmp"))
            .into_iter()
            .filter(|p| std::fs::read(p).is_ok_and(|b| text(&b).contains("hunter2-secret")))
            .collect::<Vec<_>>()
    };
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGKILL, "SIGKILL")] {
        let _ = std::fs::remove_file(bed.path("tf/started"));
        let child = cmd()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(
            "terraform plan never started",
            Duration::from_secs(60),
            || bed.path("tf/started").exists(),
        );
        let plan = PathBuf::from(
            std::fs::read_to_string(bed.path("tf/plan-path"))
                .unwrap()
                .trim(),
        );
        assert!(plan.starts_with(bed.path("tmp")), "{plan:?}");
        assert_eq!(
            std::fs::read_to_string(bed.path("tf/plan-mode"))
                .unwrap()
                .trim(),
            "600",
            "{name}: the plan file"
        );
        assert_eq!(
            std::fs::read_to_string(bed.path("tf/dir-mode"))
                .unwrap()
                .trim(),
            "700",
            "{name}: its folder"
        );
        support::kill(child.id(), sig);
        fault();
        let out = support::wait_within(child, Duration::from_secs(30), "rebuild-monitoring");
        let err = text(&out.stderr);
        eprintln!("rebuild-monitoring {name} during plan:\n{err}");
        if sig == libc::SIGTERM {
            assert_eq!(out.status.code(), Some(130), "{err}");
            assert!(plans().is_empty(), "{name}: plan left: {:?}", plans());
        } else {
            // The fake's sleep outlives the tool; end it, then the next run cleans up.
            for pid in support::processes_with("30") {
                if std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with("sleep"))
                    && std::fs::read_to_string(format!("/proc/{pid}/environ"))
                        .is_ok_and(|e| e.contains(&bed.path("tmp").display().to_string()))
                {
                    support::kill(pid, libc::SIGKILL);
                }
            }
            thread::sleep(Duration::from_millis(300));
            assert!(!plans().is_empty(), "SIGKILL leaves the plan (private)");
            std::fs::write(bed.path("tf/quick"), "").unwrap();
            let out = output_within(&mut cmd(), Duration::from_secs(60));
            let err = text(&out.stderr);
            eprintln!("the run after:\n{err}");
            assert!(err.contains("ended without cleaning up"), "{err}");
            assert!(plans().is_empty(), "the next run removed it: {:?}", plans());
        }
    }
}
