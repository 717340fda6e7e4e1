//! check-drift, a tool killed outright (SIGKILL, as the OOM killer does) must not take its
//! Terraform child down with it nor leave anything readable behind; the next run reports and cleans
//! what the killed run left.

use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::survive::Bed;
use crate::support::survive::fake;
use crate::support::survive::wait_until;
use crate::support::{self, fault, output_within, text, walk};

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

/// check-drift killed with SIGKILL while its Terraform child runs: the child goes on writing its output
/// and finishes (before, its next write to the dead tool's pipe killed it: a killed `apply` left
/// terraform.tfstate at 0 bytes). The next run reports the killed run's folder and removes it.
#[test]
fn a_terraform_child_outlives_its_killed_tool_and_the_next_run_cleans_up() {
    let bed = Bed::new();
    let fake = fake(
        &bed.path("tf"),
        "echo started > $d/started\n\
         [ -f $d/second ] || sleep 2\n\
         i=0; while [ $i -lt 3000 ]; do echo \"creating resource $i\"; echo \"log $i\" >&2; i=$((i+1)); done\n\
         echo finished > $d/finished",
    );
    let child = bed
        .drift(&fake)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "the fake terraform never started",
        Duration::from_secs(60),
        || bed.path("tf/started").exists(),
    );
    support::kill(child.id(), libc::SIGKILL);
    fault();
    let _ = child.wait_with_output();
    wait_until(
        "the Terraform child died with its tool",
        Duration::from_secs(20),
        || bed.path("tf/finished").exists(),
    );
    let left = bed.run_dirs();
    assert_eq!(left.len(), 1, "the killed run left its folder: {left:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&left[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "private");
    let out_files = walk(&left[0]);
    assert!(
        out_files.iter().any(|p| std::fs::read_to_string(p)
            .unwrap()
            .contains("creating resource 2999")),
        "the child's whole output went to its file: {out_files:?}"
    );
    // The next run.
    std::fs::write(bed.path("tf/second"), "").unwrap();
    let out = output_within(&mut bed.drift(&fake), Duration::from_secs(60));
    let err = text(&out.stderr);
    eprintln!("the run after the killed one:\n{err}");
    assert!(
        err.contains("ended without cleaning up") && err.contains(&left[0].display().to_string()),
        "{err}"
    );
    assert!(!left[0].exists(), "removed");
    assert!(bed.run_dirs().is_empty(), "{:?}", bed.run_dirs());
}

/// The tool and then Terraform itself killed with SIGKILL: Terraform's provider (here a `sleep` of its
/// process group) is orphaned. The next run kills it and says so.
#[test]
fn an_orphaned_provider_of_a_killed_run_is_stopped_by_the_next_run() {
    let bed = Bed::new();
    let token = format!("297.{}", std::process::id());
    let fake = fake(
        &bed.path("tf"),
        &format!(
            "[ -f $d/second ] && exit 0\n\
             sleep {token} &\n\
             echo $! > $d/provider.new && mv $d/provider.new $d/provider\n\
             echo $$ > $d/tf.pid.new && mv $d/tf.pid.new $d/tf.pid\n\
             wait"
        ),
    );
    let child = bed
        .drift(&fake)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the fake terraform never started",
        Duration::from_secs(60),
        || bed.path("tf/tf.pid").exists() && bed.path("tf/provider").exists(),
    );
    let read = |n: &str| -> u32 {
        std::fs::read_to_string(bed.path(n))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (tf, provider) = (read("tf/tf.pid"), read("tf/provider"));
    support::kill(child.id(), libc::SIGKILL);
    support::kill(tf, libc::SIGKILL);
    fault();
    let mut child = child;
    let _ = child.wait();
    thread::sleep(Duration::from_millis(200));
    assert!(alive(provider), "the provider is orphaned");
    std::fs::write(bed.path("tf/second"), "").unwrap();
    let out = output_within(&mut bed.drift(&fake), Duration::from_secs(60));
    let err = text(&out.stderr);
    eprintln!("the run after the killed one:\n{err}");
    let stopped = Instant::now() + Duration::from_secs(5);
    while alive(provider) && Instant::now() < stopped {
        thread::sleep(Duration::from_millis(20));
    }
    let orphan_left = alive(provider);
    if orphan_left {
        support::kill(provider, libc::SIGKILL);
    }
    assert!(!orphan_left, "the orphaned provider still runs: {err}");
    assert!(err.contains("orphaned process group"), "{err}");
}
