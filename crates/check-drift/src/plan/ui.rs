//! Reading the machine-readable UI of `terraform plan -json` (and `tofu plan -json`): one JSON message per
//! line, written while the plan runs. check-drift decides from it whether there is anything to describe.
//!
//! The messages read: `version` (the Terraform or OpenTofu version, and the UI format's version, whose
//! major must be 1), `refresh_start` (for the progress line), `resource_drift` (an object changed outside
//! Terraform: address and action, no values), `planned_change` (what an apply would do: address, action,
//! reason), `change_summary` (the counts; Terraform writes it only when planning finished), `outputs` (root
//! outputs and their actions) and `diagnostic` (warnings and errors, with the detail a human reads). Other
//! types are skipped, as are unknown fields. The stream says which resources change but not their
//! attribute values: those come from `show -json` on the saved plan, which [`judge`] asks for only when
//! something is to be described. A line that is not a message of this shape makes the stream unreadable
//! ([`Verdict::Show`]): check-drift then reads the saved plan as it would without the stream.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use super::{Action, Origin, ResourceReport};

/// One resource named by a `resource_drift` or `planned_change` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiChange {
    /// `module.jellyfin.proxmox_virtual_environment_vm.vm`.
    pub address: String,
    /// Resource type.
    pub resource_type: String,
    /// A data source (`data.` in its module).
    pub data: bool,
    /// `update`, `create`, `delete`, `replace`, `read`, `noop`, `move`, `import`, `remove`...
    pub action: String,
    /// Terraform's reason (`cannot_update`, `tainted`, `delete_because_no_resource_config`...).
    pub reason: Option<String>,
}

impl UiChange {
    /// The action an apply would take, as [`Action`]; `None` for data sources and for actions that change
    /// nothing (`noop`, `read`, `move`, `import`, `remove`).
    pub fn action(&self) -> Option<Action> {
        if self.data {
            return None;
        }
        match self.action.as_str() {
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            "replace" => Some(Action::Replace),
            _ => None,
        }
    }

    /// The reason in the words of `show -json`'s `action_reason`.
    fn action_reason(&self) -> Option<String> {
        let reason = self.reason.as_deref()?;
        Some(
            match reason {
                "tainted" => "replace_because_tainted",
                "requested" => "replace_by_request",
                "cannot_update" => "replace_because_cannot_update",
                other => other,
            }
            .to_owned(),
        )
    }
}

/// `change_summary`'s counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ChangeCounts {
    /// To create (replacements count here too).
    #[serde(default)]
    pub add: u64,
    /// To update in place.
    #[serde(default)]
    pub change: u64,
    /// To import.
    #[serde(default)]
    pub import: u64,
    /// To destroy (replacements count here too).
    #[serde(default)]
    pub remove: u64,
}

/// A `diagnostic` message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Diagnostic {
    /// `error` or `warning`.
    #[serde(default)]
    pub severity: String,
    /// One line.
    #[serde(default)]
    pub summary: String,
    /// The explanation (for a held state lock, the `Lock Info:` block).
    #[serde(default)]
    pub detail: String,
}

/// What the stream said, once read whole.
#[derive(Clone, Debug, Default)]
pub struct UiSummary {
    /// `1.11.4`, from the `version` message (`terraform` or `tofu` field).
    pub version: Option<String>,
    /// The UI format's version (`1.2` for Terraform 1.11).
    pub ui_version: Option<String>,
    /// `resource_drift` messages, in stream order.
    pub drift: Vec<UiChange>,
    /// `planned_change` messages, in stream order.
    pub planned: Vec<UiChange>,
    /// `change_summary` of the plan: only written when planning finished.
    pub summary: Option<ChangeCounts>,
    /// Root outputs and their actions (`noop`, `create`, `update`, `delete`).
    pub outputs: BTreeMap<String, String>,
    /// Warnings and errors.
    pub diagnostics: Vec<Diagnostic>,
    /// Lines that were not a message check-drift can read (not JSON, not an object, a field of the wrong
    /// type). Any makes the stream unreadable.
    pub unreadable: usize,
    /// The first unreadable line's error, for the debug log.
    pub first_error: Option<String>,
    /// The plan in words, one line per message, for the report files.
    pub text: String,
}

impl UiSummary {
    /// The diagnostics as Terraform prints them without `-json` (`Error: summary`, a blank line, the
    /// detail): what check-drift classifies errors from and shows of them. When there are errors, only
    /// they are kept: the warnings (every run here has one about a missing CLI configuration file) would
    /// push the cause out of the excerpt.
    pub fn diagnostics_text(&self) -> String {
        let any_error = self.diagnostics.iter().any(|d| d.severity == "error");
        let mut out = String::new();
        for d in self
            .diagnostics
            .iter()
            .filter(|d| !any_error || d.severity == "error")
        {
            let label = if d.severity == "error" {
                "Error"
            } else {
                "Warning"
            };
            out.push_str(&format!("{label}: {}\n", d.summary));
            if !d.detail.is_empty() {
                out.push('\n');
                out.push_str(&d.detail);
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "@message", default)]
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    terraform: Option<String>,
    #[serde(default)]
    tofu: Option<String>,
    #[serde(default)]
    ui: Option<String>,
    #[serde(default)]
    change: Option<ChangeMessage>,
    #[serde(default)]
    hook: Option<Hook>,
    #[serde(default)]
    changes: Option<SummaryMessage>,
    #[serde(default)]
    outputs: Option<BTreeMap<String, OutputMessage>>,
    #[serde(default)]
    diagnostic: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct ResourceMessage {
    #[serde(default)]
    addr: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    resource_type: String,
}

#[derive(Deserialize)]
struct ChangeMessage {
    resource: ResourceMessage,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Hook {
    resource: ResourceMessage,
}

#[derive(Deserialize)]
struct SummaryMessage {
    #[serde(flatten)]
    counts: ChangeCounts,
    #[serde(default)]
    operation: Option<String>,
}

#[derive(Deserialize)]
struct OutputMessage {
    #[serde(default)]
    action: Option<String>,
}

/// Reads the stream piece by piece as Terraform writes it; [`UiStream::finish`] gives the [`UiSummary`].
#[derive(Debug, Default)]
pub struct UiStream {
    partial: Vec<u8>,
    summary: UiSummary,
    refreshing: Option<String>,
}

impl UiStream {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream (any split: a line cut in two is joined).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&rest[..end]);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line);
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// The resource whose refresh started last (for the progress line).
    pub fn refreshing(&self) -> Option<&str> {
        self.refreshing.as_deref()
    }

    /// Ends the stream (a last line without a newline counts) and gives what it said.
    pub fn finish(mut self) -> UiSummary {
        let last = std::mem::take(&mut self.partial);
        self.line(&last);
        self.summary
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let message: Message = match serde_json::from_slice(line) {
            Ok(m) => m,
            Err(e) => {
                let s = &mut self.summary;
                s.unreadable += 1;
                s.first_error.get_or_insert_with(|| e.to_string());
                s.text.push_str(&String::from_utf8_lossy(line));
                s.text.push('\n');
                return;
            }
        };
        self.message(message);
    }

    fn message(&mut self, m: Message) {
        let s = &mut self.summary;
        let mut words = m.message.clone();
        match m.kind.as_deref() {
            Some("version") => {
                s.version = m.terraform.or(m.tofu);
                s.ui_version = m.ui;
            }
            Some("refresh_start") => {
                if let Some(hook) = m.hook {
                    self.refreshing = Some(hook.resource.addr);
                }
            }
            Some(kind @ ("resource_drift" | "planned_change")) => {
                let Some(change) = m.change else {
                    s.unreadable += 1;
                    s.first_error
                        .get_or_insert_with(|| format!("a {kind} message without `change`"));
                    return;
                };
                let c = UiChange {
                    data: change.resource.resource.starts_with("data."),
                    address: change.resource.addr,
                    resource_type: change.resource.resource_type,
                    action: change.action,
                    reason: change.reason,
                };
                words = Some(if kind == "resource_drift" {
                    describe_drift(&c)
                } else {
                    describe_change(&c)
                });
                if kind == "resource_drift" {
                    s.drift.push(c);
                } else {
                    s.planned.push(c);
                }
            }
            Some("change_summary") => {
                if let Some(summary) = m.changes
                    && summary.operation.as_deref().is_none_or(|o| o == "plan")
                {
                    s.summary = Some(summary.counts);
                }
            }
            Some("outputs") => {
                for (name, output) in m.outputs.into_iter().flatten() {
                    s.outputs
                        .insert(name, output.action.unwrap_or_else(|| "noop".to_owned()));
                }
            }
            Some("diagnostic") => {
                if let Some(d) = m.diagnostic {
                    words = Some(format!(
                        "{}: {}{}{}",
                        if d.severity == "error" {
                            "Error"
                        } else {
                            "Warning"
                        },
                        d.summary,
                        if d.detail.is_empty() { "" } else { "\n\n" },
                        d.detail
                    ));
                    s.diagnostics.push(d);
                }
            }
            _ => {}
        }
        if let Some(words) = words {
            s.text.push_str(&words);
            s.text.push('\n');
        }
    }
}

/// Reads a whole stream at once.
pub fn read(bytes: &[u8]) -> UiSummary {
    let mut stream = UiStream::new();
    stream.feed(bytes);
    stream.finish()
}

/// A planned change in the words of Terraform's human-readable plan.
fn describe_change(c: &UiChange) -> String {
    let what = match c.action.as_str() {
        "create" => "will be created",
        "update" => "will be updated in-place",
        "delete" => "will be destroyed",
        "replace" => "must be replaced",
        "read" => "will be read during apply",
        "move" => "has moved",
        "import" => "will be imported",
        "remove" => "will be removed from the state but will not be destroyed",
        _ => "is unchanged",
    };
    let why = c
        .reason
        .as_deref()
        .map(|r| format!(" ({})", r.replace('_', " ")))
        .unwrap_or_default();
    format!("  # {} {what}{why}", c.address)
}

/// A drifted object in the words of Terraform's human-readable plan.
fn describe_drift(c: &UiChange) -> String {
    let what = if c.action == "delete" {
        "has been deleted"
    } else {
        "has changed"
    };
    format!("  # {} {what} outside of Terraform", c.address)
}

/// What the stream allows check-drift to conclude.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Nothing drifted, nothing planned, no output changes: in sync, nothing else to run.
    InSync,
    /// Every planned change is on a resource that ignore rules cover whole, and the stream says enough to
    /// report them: these reports (without attribute values; the caller applies the rules).
    Ignored(Vec<ResourceReport>),
    /// Something is to be described, or the stream cannot be trusted: read the saved plan (`show -json`).
    Show(String),
}

/// Decides from a finished plan's stream and exit code (0 or 2) what remains to do. `ignored_whole` says
/// whether ignore rules cover every change of an address; `history` is [`super::analyze`]'s.
pub fn judge(
    ui: &UiSummary,
    exit_code: i32,
    ignored_whole: &dyn Fn(&str) -> bool,
    history: &HashSet<String>,
) -> Verdict {
    let counts = match trusted_counts(ui) {
        Ok(counts) => counts,
        Err(why) => return Verdict::Show(why),
    };
    let drift: HashMap<&str, &UiChange> = ui
        .drift
        .iter()
        .filter(|d| !d.data && !matches!(d.action.as_str(), "noop" | "read"))
        .map(|d| (d.address.as_str(), d))
        .collect();
    let planned: Vec<(&UiChange, Action)> = ui
        .planned
        .iter()
        .filter_map(|c| c.action().map(|a| (c, a)))
        .collect();
    if planned.is_empty() {
        if let Some(address) = drift.keys().next() {
            return Verdict::Show(format!(
                "{address} changed outside Terraform (unplanned drift to describe)"
            ));
        }
        return if exit_code == 0 && counts == ChangeCounts::default() {
            Verdict::InSync
        } else {
            Verdict::Show(format!(
                "plan exited {exit_code} with counts {counts:?} but its stream names no change"
            ))
        };
    }
    let planned_addresses: HashSet<&str> =
        planned.iter().map(|(c, _)| c.address.as_str()).collect();
    if let Some(address) = drift.keys().find(|a| !planned_addresses.contains(*a)) {
        return Verdict::Show(format!(
            "{address} changed outside Terraform (unplanned drift to describe)"
        ));
    }
    let mut reports = Vec::new();
    for (c, action) in planned {
        if !ignored_whole(&c.address) {
            return Verdict::Show(format!("{} would change", c.address));
        }
        match ignored_report(c, action, drift.get(c.address.as_str()).copied(), history) {
            Ok(report) => reports.push(report),
            Err(why) => return Verdict::Show(why),
        }
    }
    reports.sort_by(|a, b| a.address.cmp(&b.address));
    Verdict::Ignored(reports)
}

/// The stream's change counts, when the stream can be trusted to tell every change; else why not.
fn trusted_counts(ui: &UiSummary) -> Result<ChangeCounts, String> {
    if ui.unreadable > 0 {
        return Err(format!(
            "{} unreadable line(s) in the plan's stream ({})",
            ui.unreadable,
            ui.first_error.as_deref().unwrap_or("?")
        ));
    }
    match ui.ui_version.as_deref() {
        Some(v) if v.split('.').next() == Some("1") => {}
        other => {
            return Err(format!(
                "the plan's stream has UI version {}; this check-drift reads 1.x",
                other.unwrap_or("(none)")
            ));
        }
    }
    let Some(counts) = ui.summary else {
        return Err("the plan's stream has no change summary".to_owned());
    };
    if counts.import > 0 {
        return Err("the plan imports objects".to_owned());
    }
    if let Some((name, action)) = ui.outputs.iter().find(|(_, a)| *a != "noop") {
        return Err(format!("output {name} would change ({action})"));
    }
    Ok(counts)
}

/// The report of a planned change that ignore rules cover whole, from the stream alone; `Err` (why) when
/// only the attribute values can tell its origin.
fn ignored_report(
    c: &UiChange,
    action: Action,
    drift: Option<&UiChange>,
    history: &HashSet<String>,
) -> Result<ResourceReport, String> {
    let destroyed_outside = drift.is_some_and(|d| d.action == "delete");
    let origin = match (drift, action) {
        (None, _) => Origin::Pending,
        (Some(_), Action::Create) if destroyed_outside => Origin::Drift,
        (Some(_), Action::Create | Action::Delete) => Origin::Both,
        // Drift or both: only the attribute values tell.
        (Some(_), Action::Update | Action::Replace) => {
            return Err(format!(
                "{} changed outside Terraform and would change",
                c.address
            ));
        }
    };
    let (risk, risk_reason) = super::risk(action, destroyed_outside, history.contains(&c.address));
    Ok(ResourceReport {
        address: c.address.clone(),
        resource_type: c.resource_type.clone(),
        action,
        action_reason: c.action_reason(),
        origin,
        risk,
        risk_reason,
        changed_attributes: Vec::new(),
        drifted_attributes: Vec::new(),
        ignored: false,
        ignored_by: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
