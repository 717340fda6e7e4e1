//! Daemons of a test process that dies without unwinding are killed by the watchdog.

/// Run by `daemons_die_with_an_aborted_test_process` in a child test process: starts a daemon,
/// records its pid, and aborts (no destructors run).
#[test]
#[ignore = "helper, run by daemons_die_with_an_aborted_test_process"]
fn helper_spawn_daemon_then_abort() {
    let Ok(pidfile) = std::env::var("TESTBED_HELPER_PIDFILE") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = testbed::process::command("sleep");
    cmd.arg("300");
    let daemon = testbed::process::Daemon::spawn("sleep", cmd, &dir.path().join("log")).unwrap();
    std::fs::write(&pidfile, daemon.pid().to_string()).unwrap();
    std::process::abort();
}

#[test]
fn daemons_die_with_an_aborted_test_process() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let status = testbed::process::command(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "orphans::helper_spawn_daemon_then_abort",
            "--ignored",
            "--nocapture",
        ])
        .env("TESTBED_HELPER_PIDFILE", &pidfile)
        .output()
        .unwrap()
        .status;
    assert!(!status.success());
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    testbed::process::wait_until(
        "the orphaned daemon to die",
        Duration::from_secs(10),
        || Ok(!testbed::process::pid_alive(pid)),
    )
    .unwrap();
}
