//! The stream reader on real streams of Terraform 1.11.4 (`tests/fixtures/streams/`, written by its
//! `capture.sh` with the test provider on a simulated node).

use std::collections::HashSet;
use std::path::Path;

use super::*;
use crate::terraform::{ErrorKind, Step, classify_error, init_required, parse_lock_info};

fn fixture(name: &str) -> (Vec<u8>, i32) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/streams");
    let bytes = std::fs::read(dir.join(format!("{name}.jsonl"))).unwrap();
    let code = std::fs::read_to_string(dir.join(format!("{name}.exit")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (bytes, code)
}

/// The summary of the fixture stream `name`, after checking Terraform's exit code there was `code`.
fn captured(name: &str, code: i32) -> UiSummary {
    let (bytes, exit) = fixture(name);
    assert_eq!(exit, code, "{name}: Terraform's exit code");
    read(&bytes)
}

fn nothing_ignored(_: &str) -> bool {
    false
}

/// The verdict on a run that exited `code`, nothing ignored and no state history.
fn verdict(ui: &UiSummary, code: i32) -> Verdict {
    judge(ui, code, &nothing_ignored, &HashSet::new())
}

fn addresses(list: &[UiChange]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|c| (c.address.as_str(), c.action.as_str()))
        .collect()
}

const WEB: &str = "proxmox_virtual_environment_vm.web";
const DNS: &str = "proxmox_virtual_environment_vm.dns";
const DB: &str = "proxmox_virtual_environment_vm.db";

#[test]
fn in_sync_needs_nothing_more() {
    let code = 0;
    let ui = captured("in_sync", code);
    assert_eq!(ui.version.as_deref(), Some("1.11.4"));
    assert_eq!(ui.ui_version.as_deref(), Some("1.2"));
    assert_eq!(ui.unreadable, 0);
    assert!(ui.drift.is_empty() && ui.planned.is_empty());
    assert_eq!(ui.summary, Some(ChangeCounts::default()));
    assert!(ui.diagnostics.is_empty());
    assert!(
        ui.text
            .contains("Plan: 0 to add, 0 to change, 0 to destroy.")
    );
    assert!(
        ui.text
            .contains(&format!("{WEB}: Refreshing state... [id=100]"))
    );
    assert_eq!(verdict(&ui, code), Verdict::InSync);
}

#[test]
fn drift_is_described_by_show() {
    let code = 2;
    let ui = captured("drift", code);
    assert_eq!(addresses(&ui.drift), [(WEB, "update")]);
    assert_eq!(addresses(&ui.planned), [(WEB, "update")]);
    assert_eq!(
        ui.planned[0].resource_type,
        "proxmox_virtual_environment_vm"
    );
    assert!(
        ui.text
            .contains(&format!("  # {WEB} has changed outside of Terraform"))
    );
    assert!(
        ui.text
            .contains(&format!("  # {WEB} will be updated in-place"))
    );
    assert!(matches!(verdict(&ui, code), Verdict::Show(_)));
    // Ignored whole, but an update that drifted can be drift or both: only the values tell.
    let web_ignored = |a: &str| a == WEB;
    assert!(matches!(
        judge(&ui, code, &web_ignored, &HashSet::new()),
        Verdict::Show(why) if why.contains("changed outside Terraform and would change")
    ));
}

#[test]
fn pending_change_of_an_ignored_resource_needs_no_show() {
    let code = 2;
    let ui = captured("pending", code);
    assert!(ui.drift.is_empty());
    assert_eq!(addresses(&ui.planned), [(DNS, "update")]);
    assert!(matches!(
        verdict(&ui, code),
        Verdict::Show(why) if why.contains(DNS)
    ));
    let dns_ignored = |a: &str| a == DNS;
    let Verdict::Ignored(reports) = judge(&ui, code, &dns_ignored, &HashSet::new()) else {
        panic!("expected reports from the stream");
    };
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(
        (r.address.as_str(), r.action, r.origin, r.risk),
        (
            DNS,
            Action::Update,
            Origin::Pending,
            super::super::Risk::Safe
        )
    );
    assert_eq!(r.resource_type, "proxmox_virtual_environment_vm");
}

#[test]
fn both_names_the_drift_and_the_change() {
    let code = 2;
    let ui = captured("both", code);
    assert_eq!(addresses(&ui.drift), [(DNS, "update")]);
    assert_eq!(addresses(&ui.planned), [(DNS, "update")]);
    assert_eq!(
        ui.summary,
        Some(ChangeCounts {
            change: 1,
            ..ChangeCounts::default()
        })
    );
    assert!(matches!(verdict(&ui, code), Verdict::Show(_)));
}

/// A change under `ignore_changes`: the plan exits 0, yet the stream names the drift, which is reported
/// (with its attributes, from `show`).
#[test]
fn unplanned_drift_exits_0_and_still_needs_show() {
    let code = 0;
    let ui = captured("unplanned_drift", code);
    assert_eq!(addresses(&ui.drift), [(DB, "update")]);
    assert!(ui.planned.is_empty());
    assert_eq!(ui.summary, Some(ChangeCounts::default()));
    assert!(matches!(
        verdict(&ui, code),
        Verdict::Show(why) if why.contains(DB) && why.contains("unplanned")
    ));
}

#[test]
fn held_lock_diagnostic_keeps_its_holder() {
    let ui = captured("lock", 1);
    assert_eq!(ui.summary, None);
    assert_eq!(ui.diagnostics.len(), 1);
    let text = ui.diagnostics_text();
    assert!(
        text.starts_with("Error: Error acquiring the state lock\n"),
        "{text}"
    );
    assert_eq!(classify_error(Step::Plan, &text), ErrorKind::Lock);
    let info = parse_lock_info(&text).unwrap();
    assert_eq!(info.path.as_deref(), Some("terraform.tfstate"));
    assert_eq!(info.version.as_deref(), Some("1.11.4"));
    assert!(info.id.is_some_and(|id| id.len() == 36));
    assert!(matches!(
        verdict(&ui, 0),
        Verdict::Show(why) if why.contains("no change summary")
    ));
}

#[test]
fn configuration_error_is_a_diagnostic() {
    let ui = captured("error", 1);
    assert_eq!(ui.diagnostics[0].severity, "error");
    assert_eq!(
        ui.diagnostics[0].summary,
        "Reference to undeclared input variable"
    );
    let text = ui.diagnostics_text();
    assert!(
        text.starts_with("Error: Reference to undeclared input variable\n"),
        "{text}"
    );
    assert!(
        !text.contains("Warning:"),
        "warnings hide the cause: {text}"
    );
    assert_eq!(classify_error(Step::Plan, &text), ErrorKind::Unknown);
    assert_eq!(init_required(&text), None);
    assert!(
        ui.text
            .contains("Error: Reference to undeclared input variable")
    );
}

#[test]
fn init_required_is_recognised_in_a_diagnostic() {
    let line = br#"{"@level":"error","@message":"Error: Backend initialization required, please run \"terraform init\"","type":"diagnostic","diagnostic":{"severity":"error","summary":"Backend initialization required, please run \"terraform init\"","detail":"Reason: Initial configuration of the requested backend \"local\""}}"#;
    let ui = read(line);
    assert_eq!(
        init_required(&ui.diagnostics_text()).as_deref(),
        Some("Backend initialization required, please run \"terraform init\"")
    );
}

/// Terraform writes as it goes: whatever the pieces, the result is the same, and the progress line
/// follows the refreshes.
#[test]
fn any_split_reads_the_same() {
    for name in [
        "in_sync",
        "drift",
        "pending",
        "both",
        "unplanned_drift",
        "lock",
        "error",
    ] {
        let (bytes, _) = fixture(name);
        let whole = read(&bytes);
        for size in [1, 7, 64, 1000] {
            let mut stream = UiStream::new();
            for piece in bytes.chunks(size) {
                stream.feed(piece);
            }
            let pieces = stream.finish();
            assert_eq!(pieces.text, whole.text, "{name} by {size}");
            assert_eq!(pieces.planned, whole.planned, "{name} by {size}");
            assert_eq!(pieces.drift, whole.drift, "{name} by {size}");
            assert_eq!(pieces.summary, whole.summary, "{name} by {size}");
            assert_eq!(pieces.unreadable, 0, "{name} by {size}");
        }
    }
    let (bytes, _) = fixture("in_sync");
    let mut stream = UiStream::new();
    let first_refresh = bytes
        .split(|&b| b == b'\n')
        .take(2)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    stream.feed(&bytes[..first_refresh]);
    assert_eq!(stream.refreshing(), Some(DNS));
}

#[test]
fn outputs_that_change_need_show() {
    let mut bytes = fixture("in_sync").0;
    bytes.extend_from_slice(
        br#"{"@level":"info","@message":"Outputs: 1","type":"outputs","outputs":{"vm":{"sensitive":false,"action":"update"}}}"#,
    );
    let ui = read(&bytes);
    assert!(matches!(
        verdict(&ui, 2),
        Verdict::Show(why) if why.contains("output vm")
    ));
    let same = br#"{"type":"outputs","outputs":{"vm":{"sensitive":false,"action":"noop"}}}"#;
    let mut bytes = fixture("in_sync").0;
    bytes.extend_from_slice(same);
    assert_eq!(
        judge(&read(&bytes), 0, &nothing_ignored, &HashSet::new()),
        Verdict::InSync
    );
}

#[test]
fn opentofu_version_and_data_sources() {
    let stream = concat!(
        r#"{"@message":"OpenTofu 1.9.0","type":"version","tofu":"1.9.0","ui":"1.2"}"#,
        "\n",
        r#"{"@message":"data.x.y: Plan to read","type":"planned_change","change":{"resource":{"addr":"module.m.data.x.y","module":"module.m","resource":"data.x.y","resource_type":"x"},"action":"read"}}"#,
        "\n",
        r#"{"type":"change_summary","changes":{"add":0,"change":0,"import":0,"remove":0,"operation":"plan"}}"#,
        "\n"
    );
    let ui = read(stream.as_bytes());
    assert_eq!(ui.version.as_deref(), Some("1.9.0"));
    assert!(ui.planned[0].data);
    assert_eq!(ui.planned[0].action(), None);
    assert_eq!(verdict(&ui, 0), Verdict::InSync);
}

/// What is not a stream of this shape is never taken as "in sync": the saved plan is read instead.
#[test]
fn unreadable_streams_are_not_trusted() {
    let (good, _) = fixture("in_sync");
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"Terraform used the selected providers\n".to_vec(),
        [&good[..], b"not json\n"].concat(),
        [&good[..], br#"{"type":"planned_change","change":5}"#].concat(),
        [&good[..], br#"{"type":"planned_change"}"#].concat(),
        good.to_vec().replace_ui_version(),
        good[..good.len() / 2].to_vec(),
    ];
    for bytes in cases {
        let ui = read(&bytes);
        assert!(
            matches!(verdict(&ui, 0), Verdict::Show(_)),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

trait ReplaceUi {
    fn replace_ui_version(self) -> Vec<u8>;
}

impl ReplaceUi for Vec<u8> {
    fn replace_ui_version(self) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace(r#""ui":"1.2""#, r#""ui":"2.0""#)
            .into_bytes()
    }
}

#[test]
fn destroyed_outside_and_removed_from_state() {
    let stream = concat!(
        r#"{"type":"version","terraform":"1.11.4","ui":"1.2"}"#,
        "\n",
        r#"{"type":"resource_drift","change":{"resource":{"addr":"a.gone","resource":"a.gone","resource_type":"a"},"action":"delete"}}"#,
        "\n",
        r#"{"type":"planned_change","change":{"resource":{"addr":"a.gone","resource":"a.gone","resource_type":"a"},"action":"create"}}"#,
        "\n",
        r#"{"type":"planned_change","change":{"resource":{"addr":"a.rm","resource":"a.rm","resource_type":"a"},"action":"create"}}"#,
        "\n",
        r#"{"type":"planned_change","change":{"resource":{"addr":"a.old","resource":"a.old","resource_type":"a"},"action":"replace","reason":"cannot_update"}}"#,
        "\n",
        r#"{"type":"change_summary","changes":{"add":3,"change":0,"import":0,"remove":1,"operation":"plan"}}"#,
        "\n"
    );
    let ui = read(stream.as_bytes());
    let history: HashSet<String> = ["a.rm".to_owned()].into();
    let Verdict::Ignored(reports) = judge(&ui, 2, &|_| true, &history) else {
        panic!("all ignored whole");
    };
    let by = |a: &str| reports.iter().find(|r| r.address == a).unwrap();
    assert_eq!(by("a.gone").origin, Origin::Drift);
    assert_eq!(
        by("a.gone").risk_reason.as_deref(),
        Some("destroyed outside Terraform")
    );
    assert_eq!(by("a.rm").origin, Origin::Pending);
    assert!(
        by("a.rm")
            .risk_reason
            .as_deref()
            .unwrap()
            .contains("earlier state")
    );
    assert_eq!(by("a.old").action, Action::Replace);
    assert_eq!(
        by("a.old").action_reason.as_deref(),
        Some("replace_because_cannot_update")
    );
}
