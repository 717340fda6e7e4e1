//! Unattended operation: the textfile metrics, the report history and its retention, `history`, the
//! Alertmanager push and `install-timer`, run through the real binary. `monitoring` runs the whole chain
//! against the test bed's Debian node_exporter, Prometheus and Alertmanager.

mod monitoring;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::support::{Bed, json, plan_fixture, stderr};

/// The outputs of a bed: textfile dir, report dir, state file.
pub fn outputs(bed: &Bed) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let textfile = bed.path("textfile");
    std::fs::create_dir_all(&textfile).unwrap();
    (textfile, bed.path("reports"), bed.path("state/state.json"))
}

/// check-drift with real Terraform writing metrics, reports and state into the bed.
pub fn ops_cmd(bed: &Bed) -> assert_cmd::Command {
    ops_cmd_with(bed, &outputs(bed).0)
}

/// [`ops_cmd`] writing the metrics into `textfile`.
pub fn ops_cmd_with(bed: &Bed, textfile: &Path) -> assert_cmd::Command {
    let (_, reports, state) = outputs(bed);
    let mut cmd = bed.cmd();
    cmd.args(["--terraform-bin", "terraform", "--lock-timeout", "2s"])
        .arg("--textfile-dir")
        .arg(textfile)
        .arg("--report-dir")
        .arg(reports)
        .arg("--state-file")
        .arg(state)
        .env_remove("PVE_DRIFT_ALERTMANAGER_URL");
    cmd
}

pub fn drift_lab(bed: &Bed) {
    bed.edit_attributes("lab", "vm", |a| {
        a["input"]["value"]["memory"]["dedicated"] = json!(4096);
        a["output"]["value"]["memory"]["dedicated"] = json!(4096);
    });
}

/// Sample lines `name{labels} value` of a textfile, checked for shape: a half-written file fails here.
pub fn parse_prom(text: &str) -> Vec<(String, f64)> {
    assert!(text.ends_with('\n'), "no final newline: {text:?}");
    let mut typed = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge", "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "{name} without TYPE");
        assert!(series.ends_with('}'), "{line:?}");
        out.push((
            series.to_owned(),
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line:?}")),
        ));
    }
    out
}

pub fn value(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn promtool_check(path: &Path) {
    #[allow(clippy::disallowed_methods)]
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_reports_and_a_partial_run_keeping_the_other_envs() {
    let bed = Bed::new();
    bed.add_env("prod", "basic");
    bed.add_env("lab", "basic");
    drift_lab(&bed);
    let (textfile, reports, state) = outputs(&bed);
    let out = ops_cmd(&bed).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let prom = textfile.join("pve_drift.prom");
    assert_eq!(mode(&prom), 0o644);
    promtool_check(&prom);
    let text = std::fs::read_to_string(&prom).unwrap();
    let s = parse_prom(&text);
    assert_eq!(value(&s, "pve_drift_status{env=\"lab\"}"), Some(1.0));
    assert_eq!(value(&s, "pve_drift_status{env=\"prod\"}"), Some(0.0));
    assert_eq!(
        value(&s, "pve_drift_resources_changed{env=\"lab\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "pve_drift_resources{env=\"lab\",action=\"update\",origin=\"pending\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "pve_drift_resources_ignored{env=\"lab\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "pve_drift_error{env=\"lab\",kind=\"lock\"}"),
        Some(0.0)
    );
    let now = jiff::Timestamp::now().as_second() as f64;
    let first = value(&s, "pve_drift_first_detected_timestamp{env=\"lab\"}").unwrap();
    assert!((now - first).abs() < 120.0);
    assert!(value(&s, "pve_drift_first_detected_timestamp{env=\"prod\"}").is_none());
    assert!(value(&s, "pve_drift_last_success_timestamp{env=\"prod\"}").is_some());
    assert!(value(&s, "pve_drift_check_duration_seconds{env=\"prod\"}").unwrap() > 0.0);
    assert!(state.is_file());

    // Report files: one .log and one .json per env, 0640, the log holding the plan text.
    let today = jiff::Zoned::now().date();
    for env in ["lab", "prod"] {
        for ext in ["log", "json"] {
            let f = reports.join(format!("drift-{today}-{env}.{ext}"));
            assert_eq!(mode(&f), 0o640, "{}", f.display());
        }
    }
    let log = std::fs::read_to_string(reports.join(format!("drift-{today}-lab.log"))).unwrap();
    assert!(log.contains("== terraform plan =="), "{log}");
    assert!(
        log.contains("terraform_data.vm will be updated in-place"),
        "{log}"
    );
    let doc: check_drift::report::Report = serde_json::from_str(
        &std::fs::read_to_string(reports.join(format!("drift-{today}-lab.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(doc.schema, "pve-drift/v1");
    assert_eq!(doc.environments.len(), 1);

    // A run over prod only keeps lab's series exactly as they were.
    std::thread::sleep(Duration::from_millis(1100));
    let lab_lines: Vec<&str> = text.lines().filter(|l| l.contains("env=\"lab\"")).collect();
    let out = ops_cmd(&bed).args(["--env", "prod"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    promtool_check(&prom);
    let after = std::fs::read_to_string(&prom).unwrap();
    let after_lab: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("env=\"lab\""))
        .collect();
    assert_eq!(
        lab_lines, after_lab,
        "lab's series must survive a prod-only run"
    );
    let s2 = parse_prom(&after);
    assert!(
        value(&s2, "pve_drift_last_check_timestamp{env=\"prod\"}")
            > value(&s, "pve_drift_last_check_timestamp{env=\"prod\"}")
    );

    // Drift age survives a second drifted run; an env folder removed is dropped from the metrics.
    std::fs::remove_dir_all(bed.env_dir("prod")).unwrap();
    let out = ops_cmd(&bed).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s3 = parse_prom(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!(
        value(&s3, "pve_drift_first_detected_timestamp{env=\"lab\"}"),
        Some(first)
    );
    assert!(value(&s3, "pve_drift_status{env=\"prod\"}").is_none());
}

#[test]
fn empty_textfile_setting_disables_metrics_and_a_missing_directory_is_created() {
    let bed = Bed::new();
    bed.add_env("prod", "basic");
    let out = bed
        .cmd()
        .args(["--terraform-bin", "terraform", "--env", "prod"])
        .env("PVE_DRIFT_TEXTFILE_DIR", "")
        .env("PVE_DRIFT_REPORT_DIR", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let out = bed
        .cmd()
        .args([
            "--terraform-bin",
            "terraform",
            "--env",
            "prod",
            "--textfile-dir",
        ])
        .arg(bed.path("nope"))
        .env("PVE_DRIFT_REPORT_DIR", "")
        .output()
        .unwrap();
    // Created, as check-drift.sh did (issue 18); it used to be skipped with a warning.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        bed.path("nope").join("pve_drift.prom").is_file(),
        "{}",
        stderr(&out)
    );
}

#[test]
fn metrics_file_is_never_partial_when_check_drift_is_killed() {
    use std::os::unix::process::CommandExt;
    let bed = Bed::new();
    for env in ["a", "b", "c", "d", "e", "f"] {
        bed.add_env(env, "basic");
    }
    let (textfile, reports, state) = outputs(&bed);
    let prom = textfile.join("pve_drift.prom");
    let spawn = || {
        crate::support::bin_std()
            .arg("--root")
            .arg(bed.root())
            .arg("--terraform-bin")
            .arg(crate::support::fake_terraform())
            .arg("--textfile-dir")
            .arg(&textfile)
            .arg("--report-dir")
            .arg(&reports)
            .arg("--state-file")
            .arg(&state)
            .arg("--json")
            .env("TMPDIR", bed.tmp())
            .env("PVE_DRIFT_LOCK_FILE", bed.lock_file())
            .env("FAKE_TF_SHOW_JSON", plan_fixture("bpg_mixed.json"))
            .env("FAKE_TF_PLANINFO", bed.path("planinfo"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    // One whole run first: how long a run takes on this machine now (a fixed kill window missed every
    // write on a loaded machine, and would on a slower tool too).
    let started = std::time::Instant::now();
    let whole = spawn().wait().unwrap();
    assert!(
        whole.code() == Some(1),
        "a whole run reports the drift: {whole:?}"
    );
    let mut run = started.elapsed();
    std::fs::remove_file(&prom).unwrap();
    let mut complete = 0;
    for i in 0..40u32 {
        let mut child = spawn();
        // Spread the kills from 30% to 120% of a run, most of them near its end where the file is written.
        std::thread::sleep(run * (30 + (i * 37) % 90) / 100);
        // check-drift and its fake terraforms, all at once.
        testbed::process::signal_group(child.id(), testbed::process::Signal::SIGKILL);
        let status = child.wait().unwrap();
        if status.success() || status.code() == Some(1) {
            complete += 1;
        }
        // Runs slow down when parallel tests load the machine (CI once killed all 40 before any write):
        // until one run has written the file, each kill waits a quarter longer, so the window always
        // reaches the write and the checks below always have a file to read.
        if !prom.exists() {
            run = run * 5 / 4;
        }
        if let Ok(text) = std::fs::read_to_string(&prom) {
            let samples = parse_prom(&text);
            for env in ["a", "b", "c", "d", "e", "f"] {
                assert!(
                    value(&samples, &format!("pve_drift_status{{env=\"{env}\"}}")).is_some(),
                    "iteration {i}: {env} missing from\n{text}"
                );
            }
        }
    }
    assert!(
        prom.exists(),
        "no run wrote the file although the kill window grew to {run:?}"
    );
    eprintln!("{complete} of 40 runs finished before the kill");
    promtool_check(&prom);
    let names: Vec<String> = std::fs::read_dir(&textfile)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".prom"))
        .collect();
    assert_eq!(
        names,
        ["pve_drift.prom"],
        "only complete .prom files are visible"
    );
}

#[test]
fn retention_removes_only_old_report_files() {
    let bed = Bed::new();
    bed.add_env("prod", "basic");
    let (_, reports, _) = outputs(&bed);
    std::fs::create_dir_all(reports.join("drift-2020-01-01-sub.json")).unwrap();
    let today = jiff::Zoned::now().date();
    let recent = today.checked_sub(jiff::Span::new().days(3)).unwrap();
    let old = today.checked_sub(jiff::Span::new().days(40)).unwrap();
    let keep = [
        format!("drift-{recent}-prod.json"),
        format!("drift-{recent}-prod.log"),
        format!("drift-{old}-prod.json.bak"),
        format!("drift-{old}-prod.txt"),
        "notes.txt".to_owned(),
        format!("xdrift-{old}-prod.log"),
    ];
    let gone = [
        format!("drift-{old}-prod.json"),
        format!("drift-{old}-prod.log"),
        format!("drift-{old}-retired.log"),
    ];
    for f in keep.iter().chain(&gone) {
        std::fs::write(reports.join(f), "{}").unwrap();
    }
    let out = ops_cmd(&bed).args(["--retention", "30d"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for f in &keep {
        assert!(reports.join(f).exists(), "{f} must stay");
    }
    for f in &gone {
        assert!(!reports.join(f).exists(), "{f} must go");
    }
    assert!(
        reports.join("drift-2020-01-01-sub.json").is_dir(),
        "directories are not ours"
    );
    assert!(reports.join(format!("drift-{today}-prod.json")).exists());
    assert!(
        stderr(&out).contains("removed 3 report file(s)"),
        "{}",
        stderr(&out)
    );

    // Dry-run: says what it would write and removes nothing.
    std::fs::write(reports.join(gone[0].as_str()), "{}").unwrap();
    let out = ops_cmd(&bed).arg("--dry-run").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(reports.join(gone[0].as_str()).exists());
    assert!(
        stderr(&out).contains("pve_drift.prom (mode 0644"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_shows_when_drift_started_and_was_resolved() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    let (_, reports, _) = outputs(&bed);
    let today = jiff::Zoned::now().date();
    let day = |n: i64| today.checked_sub(jiff::Span::new().days(n)).unwrap();
    // Day -3 in sync, day -2 drift (memory), day -1 drift (memory + tags), today in sync again.
    let out = ops_cmd(&bed).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let in_sync = std::fs::read_to_string(reports.join(format!("drift-{today}-lab.json"))).unwrap();
    drift_lab(&bed);
    let out = ops_cmd(&bed).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let drifted = std::fs::read_to_string(reports.join(format!("drift-{today}-lab.json"))).unwrap();
    let mut more: check_drift::report::Report = serde_json::from_str(&drifted).unwrap();
    let mut extra = more.environments[0].resources[0].clone();
    extra.address = "terraform_data.dns".to_owned();
    more.environments[0].resources.push(extra);
    std::fs::write(reports.join(format!("drift-{}-lab.json", day(3))), &in_sync).unwrap();
    std::fs::write(reports.join(format!("drift-{}-lab.json", day(2))), &drifted).unwrap();
    std::fs::write(
        reports.join(format!("drift-{}-lab.json", day(1))),
        serde_json::to_string(&more).unwrap(),
    )
    .unwrap();
    std::fs::write(
        reports.join(format!("drift-{}-lab.json", day(20))),
        &drifted,
    )
    .unwrap();
    std::fs::write(reports.join(format!("drift-{today}-lab.json")), &in_sync).unwrap();

    let out = crate::support::bin()
        .args(["history", "--since", "7d", "--json", "--report-dir"])
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let h: check_drift::history::History =
        testbed::tool::decode(&json(&out.stdout), "check-drift history --json");
    assert_eq!(h.schema, "pve-drift-history/v1");
    let lab = &h.environments[0];
    assert_eq!(lab.env, "lab");
    assert_eq!(lab.current, check_drift::report::Status::InSync);
    let runs = &lab.runs;
    assert_eq!(runs.len(), 4, "the run 20 days ago is outside --since 7d");
    assert_eq!(runs[1].event.as_deref(), Some("drift_started"));
    assert_eq!(runs[1].new, ["terraform_data.vm (update)"]);
    assert_eq!(runs[2].new, ["terraform_data.dns (update)"]);
    assert_eq!(runs[2].still, ["terraform_data.vm (update)"]);
    assert_eq!(runs[3].event.as_deref(), Some("drift_resolved"));
    assert_eq!(runs[3].resolved.len(), 2);

    let out = crate::support::bin()
        .arg("--report-dir")
        .arg(&reports)
        .args(["history", "--env", "lab"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== lab (now in_sync) =="), "{text}");
    assert!(text.contains("<- drift started"), "{text}");
    assert!(text.contains("<- drift resolved"), "{text}");
    assert!(text.contains("    + terraform_data.dns (update)"), "{text}");
}

#[test]
fn unreachable_alertmanager_warns_and_never_fails_the_check() {
    let bed = Bed::new();
    bed.add_env("lab", "basic");
    drift_lab(&bed);
    let refused = testbed::ports::RefusedPort::new().unwrap();
    let port = refused.port();
    let out = ops_cmd(&bed)
        .arg("--alertmanager-url")
        .arg(format!("http://127.0.0.1:{port}"))
        .env("PVE_DRIFT_RETRY_DELAY", "10ms")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "drift stays exit 1: {err}");
    assert!(err.contains("attempt 1/4 failed"), "{err}");
    assert!(
        err.contains("could not push alerts to Alertmanager"),
        "{err}"
    );
    let state: check_drift::state::State =
        serde_json::from_str(&std::fs::read_to_string(bed.path("state/state.json")).unwrap())
            .unwrap();
    assert!(
        state
            .environments
            .get("lab")
            .and_then(|e| e.drift_alert.as_ref())
            .is_none(),
        "not pushed, so the next run tries again"
    );
    let out = ops_cmd(&bed)
        .args(["--alertmanager-url", "localhost:9093"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn install_timer_is_idempotent_and_dry_run_writes_nothing() {
    let bed = Bed::new();
    let args = |cmd: &mut assert_cmd::Command| {
        cmd.args([
            "install-timer",
            "--no-enable",
            "--binary",
            "/opt/bin/check-drift",
            "--unit-dir",
        ])
        .arg(bed.path("units"))
        .arg("--defaults-file")
        .arg(bed.path("default/pve-drift-check"))
        .arg("--tmpfiles-dir")
        .arg(bed.path("tmpfiles.d"));
    };
    let mut dry = crate::support::bin();
    args(&mut dry);
    let out = dry.arg("--dry-run").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("would write:"), "{}", stderr(&out));
    assert!(!bed.path("units").exists());
    let mut dry_enable = crate::support::bin();
    dry_enable.args([
        "install-timer",
        "--dry-run",
        "--binary",
        "/opt/bin/check-drift",
        "--unit-dir",
    ]);
    dry_enable.arg(bed.path("units"));
    let out = dry_enable.output().unwrap();
    assert!(
        stderr(&out).contains("would run: systemctl enable --now pve-drift-check.timer"),
        "{}",
        stderr(&out)
    );
    for _ in 0..2 {
        let mut real = crate::support::bin();
        args(&mut real);
        let out = real.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let mut again = crate::support::bin();
    args(&mut again);
    let out = again.output().unwrap();
    assert!(
        !stderr(&out).contains("installed"),
        "second run rewrote: {}",
        stderr(&out)
    );
    let service = std::fs::read_to_string(bed.path("units/pve-drift-check.service")).unwrap();
    assert!(service.contains("ExecStart=/opt/bin/check-drift --all $CHECK_DRIFT_ARGS"));
}
