//! Issue 23, defects 1 and 5: a tool killed outright (SIGKILL, as the OOM killer does) must not take its
//! Terraform child down with it, and must leave nothing readable behind; the next run reports and cleans
//! what the killed run left (its private folder, an orphaned provider). Temporary files holding secrets
//! (Terraform plans) are 0600 in 0700 folders and gone after every exit path, exit 130 included.
//!
//! Terraform is a fake here (a shell script that writes a lot of output, as `apply` does while it
//! creates resources): what is tested is the tool's handling of its child, not Terraform.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, fault, output_within, text, walk};

fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

/// A fake `terraform` in `dir` (`$d`): `version` and `init` answer at once; `plan` runs `plan_body`
/// with `$out` set to its `-out=` file.
fn fake(dir: &Path, plan_body: &str) -> PathBuf {
    let path = dir.join("terraform");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nd={}\n\
             case \"$1\" in\n\
             version) echo '{{\"terraform_version\":\"1.11.4\"}}'; exit 0;;\n\
             init) mkdir -p .terraform; echo initialised; exit 0;;\n\
             show) echo '{{\"format_version\":\"1.2\",\"resource_changes\":[]}}'; exit 0;;\n\
             plan) out=''; for a in \"$@\"; do case \"$a\" in -out=*) out=\"${{a#-out=}}\";; esac; done\n\
             {plan_body}\n\
             exit 0;;\n\
             esac\nexit 0\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

struct Bed {
    dir: tempfile::TempDir,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        support::add_drift_env(&dir.path().join("envs"), "prod");
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        std::fs::create_dir(dir.path().join("tf")).unwrap();
        Bed { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn drift(&self, fake: &Path) -> Command {
        let mut cmd = support::tool("check-drift");
        cmd.arg("--root")
            .arg(self.path("envs"))
            .arg("--lock-file")
            .arg(self.path("run.lock"))
            .arg("--terraform-bin")
            .arg(fake)
            .arg("--json")
            .env("TMPDIR", self.path("tmp"));
        cmd
    }
    /// Private run folders left under TMPDIR.
    fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path("tmp"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pve-tools-"))
            .flat_map(|base| std::fs::read_dir(base.path()).unwrap().flatten())
            .map(|e| e.path())
            .collect()
    }
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
             echo $! > $d/provider\n\
             echo $$ > $d/tf.pid\n\
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
