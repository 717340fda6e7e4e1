//! The JSON of `terraform show -json <planfile>` and what it means for drift. Pure: no I/O.
//!
//! Terraform puts two lists in a plan. `resource_drift` holds objects that changed outside Terraform (the
//! refresh found them different from the state); `resource_changes` holds what an apply would do. A change
//! is only worth reporting when `resource_changes` has an action other than `no-op` (or `read` for data
//! sources): drift that the plan does not act on (an attribute under `ignore_changes`, a computed value) is
//! not drift for us. Its `origin` tells where it comes from: `drift` when every planned attribute change
//! reverts something in `resource_drift`, `pending` when nothing planned is explained by the drift
//! (configuration not applied yet), `both` when part is one and part the other.
//!
//! Attribute paths: object keys joined with `.`; a list of exactly one object on both sides (an SDKv2 nested
//! block such as bpg/proxmox's `memory`) is stepped through without an index, so `memory[0].dedicated` reads
//! `memory.dedicated`; a list of several objects of the same length keeps indices (`disk[1].size`); any
//! other list (`tags`) is compared and reported whole. Sensitive values become `(sensitive)`, values unknown
//! until apply become `(known after apply)`.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Shown instead of a sensitive value.
pub const SENSITIVE: &str = "(sensitive)";
/// Shown for a value Terraform only knows after apply.
pub const UNKNOWN: &str = "(known after apply)";

static TRUE: Value = Value::Bool(true);

/// The parts of `terraform show -json` output that drift detection reads. Unknown fields are ignored and
/// missing ones default, so older and newer Terraform/OpenTofu versions parse alike.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Plan {
    /// `1.2` for Terraform 1.11.
    #[serde(default)]
    pub format_version: Option<String>,
    /// Version that wrote the plan.
    #[serde(default)]
    pub terraform_version: Option<String>,
    /// True when planning failed part way (the plan cannot be applied).
    #[serde(default)]
    pub errored: Option<bool>,
    /// False when a further plan would be needed (deferred changes); missing before Terraform 1.8.
    #[serde(default)]
    pub complete: Option<bool>,
    /// What an apply would do.
    #[serde(default)]
    pub resource_changes: Option<Vec<ResourceChange>>,
    /// What changed outside Terraform since the last apply.
    #[serde(default)]
    pub resource_drift: Option<Vec<ResourceChange>>,
    /// Root module outputs that would change.
    #[serde(default)]
    pub output_changes: Option<serde_json::Map<String, Value>>,
    /// Resource attributes that contributed to the planned changes.
    #[serde(default)]
    pub relevant_attributes: Option<Vec<RelevantAttribute>>,
}

/// One entry of `resource_changes` or `resource_drift`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResourceChange {
    /// `module.x.proxmox_virtual_environment_vm.web["a"]`.
    pub address: String,
    /// `managed` or `data`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Resource type.
    #[serde(default, rename = "type")]
    pub resource_type: Option<String>,
    /// Why Terraform chose the action (`replace_because_cannot_update`, `delete_because_no_resource_config`...).
    #[serde(default)]
    pub action_reason: Option<String>,
    /// The change itself.
    #[serde(default)]
    pub change: Change,
}

/// A change of one object: actions, values before and after, and which parts are unknown or sensitive.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Change {
    /// `["update"]`, `["delete","create"]`...
    #[serde(default)]
    pub actions: Vec<String>,
    /// Value before (null for a create).
    #[serde(default)]
    pub before: Value,
    /// Value after (null for a delete); unknown parts are omitted.
    #[serde(default)]
    pub after: Value,
    /// `true` where the after value is unknown until apply.
    #[serde(default)]
    pub after_unknown: Value,
    /// `true` where the before value is sensitive.
    #[serde(default)]
    pub before_sensitive: Value,
    /// `true` where the after value is sensitive.
    #[serde(default)]
    pub after_sensitive: Value,
    /// Attribute paths that force a replacement.
    #[serde(default)]
    pub replace_paths: Option<Vec<Vec<Value>>>,
}

/// An entry of `relevant_attributes`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RelevantAttribute {
    /// Resource address.
    #[serde(default)]
    pub resource: String,
    /// Attribute path steps.
    #[serde(default)]
    pub attribute: Vec<Value>,
}

/// What an apply would do to a resource.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    /// Create a new object.
    Create,
    /// Change in place.
    Update,
    /// Destroy.
    Delete,
    /// Destroy and create again (either order).
    Replace,
}

impl Action {
    /// `create`, `update`, `delete`, `replace`: the word in the JSON report.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From Terraform's `actions` list; `None` for `no-op`, `read`, `forget` and anything unknown.
    pub fn from_actions(actions: &[String]) -> Option<Action> {
        let list: Vec<&str> = actions.iter().map(String::as_str).collect();
        match list.as_slice() {
            ["create"] => Some(Action::Create),
            ["update"] => Some(Action::Update),
            ["delete"] => Some(Action::Delete),
            ["delete", "create"] | ["create", "delete"] => Some(Action::Replace),
            _ => None,
        }
    }

    /// Symbol used in the text report.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
        }
    }
}

/// Where a planned change comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Changed outside Terraform; the plan reverts it.
    Drift,
    /// Configuration not applied yet.
    Pending,
    /// Some of each.
    Both,
}

/// How harmful applying the change would be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Destroys something, or recreates something that used to exist.
    Dangerous,
    /// In-place update or creation of something new.
    Safe,
}

/// One changed attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// Path in the convention of this module's documentation (`memory.dedicated`).
    pub path: String,
    /// Value before (masked when sensitive).
    pub before: Value,
    /// Value after (masked when sensitive, `(known after apply)` when unknown).
    pub after: Value,
    /// True when changing it forces a replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

impl AttributeChange {
    /// True when the new value is only known after apply (computed values; weak evidence of anything).
    pub fn after_is_unknown(&self) -> bool {
        self.after.as_str() == Some(UNKNOWN)
    }
}

/// A resource an apply would change, classified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceReport {
    /// Resource address.
    pub address: String,
    /// Resource type.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// What an apply would do.
    pub action: Action,
    /// Terraform's reason for the action, when it gives one.
    pub action_reason: Option<String>,
    /// Changed outside Terraform, not applied yet, or both.
    pub origin: Origin,
    /// Safe or dangerous.
    pub risk: Risk,
    /// Why it is dangerous (null when safe).
    pub risk_reason: Option<String>,
    /// What the apply would change (current value -> planned value). Empty for create and delete.
    pub changed_attributes: Vec<AttributeChange>,
    /// What changed outside Terraform (value in state -> value found), from `resource_drift`.
    pub drifted_attributes: Vec<AttributeChange>,
    /// True when ignore rules cover the whole change: reported, but not counted as drift.
    pub ignored: bool,
    /// The ignore rules that matched (`file:line`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_by: Vec<String>,
}

/// An output that would change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputReport {
    /// Output name.
    pub name: String,
    /// What would happen to it.
    pub action: Action,
    /// Value before (masked when sensitive).
    pub before: Value,
    /// Value after (masked when sensitive, `(known after apply)` when unknown).
    pub after: Value,
}

/// An object changed outside Terraform that the plan leaves alone (`ignore_changes`, computed values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnplannedDrift {
    /// Resource address.
    pub address: String,
    /// Attribute paths that changed (value in state -> value found).
    pub attributes: Vec<String>,
    /// True when Terraform lists one of them in `relevant_attributes`: other planned changes use it.
    pub relevant: bool,
}

/// Everything drift detection takes from one plan.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Planning failed part way.
    pub errored: bool,
    /// The plan is complete (no deferred changes).
    pub complete: bool,
    /// Resources an apply would change, sorted by address.
    pub resources: Vec<ResourceReport>,
    /// Outputs an apply would change.
    pub output_changes: Vec<OutputReport>,
    /// Addresses changed outside Terraform that the plan leaves alone (`ignore_changes`, computed values).
    pub unplanned_drift: Vec<UnplannedDrift>,
    /// Whether the JSON shows any change at all (resources or outputs): what `-detailed-exitcode` 2 means.
    pub has_changes: bool,
}

/// Parses the output of `terraform show -json` whole, into [`Plan`]. check-drift itself reads the plan as a
/// stream with [`read`], which never holds the document; this is for tests and tools that want the tree.
pub fn parse(json: &[u8]) -> Result<Plan, serde_json::Error> {
    serde_json::from_slice(json)
}

/// Classifies every change of `plan`. `history` holds addresses found in earlier state versions: a create
/// of one of them means the object was removed from the state or destroyed outside Terraform.
pub fn analyze(plan: &Plan, history: &HashSet<String>) -> Analysis {
    let mut classifier = Classifier::default();
    for rc in plan.resource_drift.iter().flatten() {
        classifier.drift(rc);
    }
    for rc in plan.resource_changes.iter().flatten() {
        classifier.change(rc);
    }
    classifier.finish(
        plan.relevant_attributes.as_deref().unwrap_or_default(),
        plan.output_changes.as_ref(),
        plan.errored.unwrap_or(false),
        plan.complete.unwrap_or(true),
        history,
    )
}

/// A `resource_changes` entry an apply would act on, reduced to what its report needs: the changed
/// attributes (values of changed leaves only), not the whole before/after objects.
#[derive(Debug)]
struct Planned {
    address: String,
    resource_type: String,
    action: Action,
    action_reason: Option<String>,
    changed: Vec<AttributeChange>,
}

/// A `resource_drift` entry that changed something, reduced the same way.
#[derive(Debug)]
struct Drifted {
    /// Destroyed outside Terraform.
    deleted: bool,
    attributes: Vec<AttributeChange>,
}

/// Classification one entry at a time: [`analyze`] feeds it a whole [`Plan`], [`read`] each entry as it
/// comes off the stream. Entries are reduced as they arrive, so it holds reports, never value trees, and
/// the order of `resource_drift` and `resource_changes` in the document does not matter.
#[derive(Debug, Default)]
struct Classifier {
    drift: HashMap<String, Drifted>,
    planned: Vec<Planned>,
}

impl Classifier {
    /// True when a `resource_drift` entry with these `mode` and `actions` is worth keeping.
    fn drift_matters(mode: Option<&str>, actions: &[String]) -> bool {
        is_managed(mode) && actions.iter().any(|a| a != "no-op" && a != "read")
    }

    /// True when a `resource_changes` entry with these `mode` and `actions` is worth keeping.
    fn change_matters(mode: Option<&str>, actions: &[String]) -> bool {
        is_managed(mode) && Action::from_actions(actions).is_some()
    }

    /// Takes one `resource_drift` entry.
    fn drift(&mut self, rc: &ResourceChange) {
        if !Self::drift_matters(rc.mode.as_deref(), &rc.change.actions) {
            return;
        }
        self.drift.insert(
            rc.address.clone(),
            Drifted {
                deleted: Action::from_actions(&rc.change.actions) == Some(Action::Delete),
                attributes: diff(&rc.change),
            },
        );
    }

    /// Takes one `resource_changes` entry.
    fn change(&mut self, rc: &ResourceChange) {
        if !is_managed(rc.mode.as_deref()) {
            return;
        }
        let Some(action) = Action::from_actions(&rc.change.actions) else {
            return;
        };
        let change = &rc.change;
        let mut changed = match action {
            Action::Update | Action::Replace => diff(change),
            Action::Create | Action::Delete => Vec::new(),
        };
        for path in change.replace_paths.iter().flatten() {
            let forced = steps_to_path(path);
            for attr in changed.iter_mut() {
                if covers(&forced, &attr.path) || covers(&attr.path, &forced) {
                    attr.forces_replacement = true;
                }
            }
        }
        self.planned.push(Planned {
            address: rc.address.clone(),
            resource_type: rc.resource_type.clone().unwrap_or_default(),
            action,
            action_reason: rc.action_reason.clone(),
            changed,
        });
    }

    /// Classifies what it took, with the plan's `relevant_attributes`, `output_changes` and flags.
    fn finish(
        self,
        relevant_attributes: &[RelevantAttribute],
        output_changes: Option<&serde_json::Map<String, Value>>,
        errored: bool,
        complete: bool,
        history: &HashSet<String>,
    ) -> Analysis {
        let Classifier { drift, planned } = self;
        let planned_addresses: HashSet<String> =
            planned.iter().map(|p| p.address.clone()).collect();
        let mut resources: Vec<ResourceReport> = planned
            .into_iter()
            .map(|p| {
                let d = drift.get(&p.address);
                classify(p, d, history)
            })
            .collect();
        resources.sort_by(|a, b| a.address.cmp(&b.address));

        let relevant: Vec<(&str, String)> = relevant_attributes
            .iter()
            .map(|r| (r.resource.as_str(), steps_to_path(&r.attribute)))
            .collect();
        let mut unplanned_drift: Vec<UnplannedDrift> = drift
            .into_iter()
            .filter(|(address, _)| !planned_addresses.contains(address))
            .map(|(address, d)| {
                let attributes: Vec<String> = d.attributes.into_iter().map(|a| a.path).collect();
                let relevant = relevant.iter().any(|(resource, path)| {
                    *resource == address
                        && (path.is_empty()
                            || attributes
                                .iter()
                                .any(|a| covers(path, a) || covers(a, path)))
                });
                UnplannedDrift {
                    address,
                    attributes,
                    relevant,
                }
            })
            .collect();
        unplanned_drift.sort_by(|a, b| a.address.cmp(&b.address));

        let output_changes = outputs(output_changes);
        Analysis {
            errored,
            complete,
            has_changes: !resources.is_empty() || !output_changes.is_empty(),
            resources,
            output_changes,
            unplanned_drift,
        }
    }
}

fn is_managed(mode: Option<&str>) -> bool {
    mode.is_none_or(|m| m == "managed")
}

fn classify(p: Planned, drift: Option<&Drifted>, history: &HashSet<String>) -> ResourceReport {
    let Planned {
        address,
        resource_type,
        action,
        action_reason,
        changed,
    } = p;
    let drifted = drift.map(|d| d.attributes.clone()).unwrap_or_default();
    let destroyed_outside = drift.is_some_and(|d| d.deleted);

    let origin = match (drift, action) {
        (None, _) => Origin::Pending,
        (Some(_), Action::Create) if destroyed_outside => Origin::Drift,
        (Some(_), Action::Create | Action::Delete) => Origin::Both,
        (Some(_), Action::Update | Action::Replace) => {
            let known: Vec<&AttributeChange> =
                changed.iter().filter(|a| !a.after_is_unknown()).collect();
            let relevant: Vec<&AttributeChange> = if known.is_empty() {
                changed.iter().collect()
            } else {
                known
            };
            let explained = relevant
                .iter()
                .filter(|a| {
                    drifted
                        .iter()
                        .any(|d| covers(&d.path, &a.path) || covers(&a.path, &d.path))
                })
                .count();
            if explained == relevant.len() {
                Origin::Drift
            } else if explained == 0 {
                Origin::Pending
            } else {
                Origin::Both
            }
        }
    };

    let (risk, risk_reason) = risk(action, destroyed_outside, history.contains(&address));

    ResourceReport {
        address,
        resource_type,
        action,
        action_reason,
        origin,
        risk,
        risk_reason,
        changed_attributes: changed,
        drifted_attributes: drifted,
        ignored: false,
        ignored_by: Vec::new(),
    }
}

/// How harmful `action` is, and why; `destroyed_outside` when the refresh found the object gone, `in_history`
/// when its address is in an earlier state version.
fn risk(action: Action, destroyed_outside: bool, in_history: bool) -> (Risk, Option<String>) {
    match action {
        Action::Update => (Risk::Safe, None),
        Action::Delete => (Risk::Dangerous, Some("the object would be destroyed".to_owned())),
        Action::Replace => (Risk::Dangerous, Some("the object would be destroyed and created again".to_owned())),
        Action::Create if destroyed_outside => (Risk::Dangerous, Some("destroyed outside Terraform".to_owned())),
        Action::Create if in_history => (
            Risk::Dangerous,
            Some("in an earlier state version: removed from the state or destroyed outside Terraform".to_owned()),
        ),
        Action::Create => (Risk::Safe, None),
    }
}

fn outputs(output_changes: Option<&serde_json::Map<String, Value>>) -> Vec<OutputReport> {
    let mut out = Vec::new();
    for (name, value) in output_changes.into_iter().flatten() {
        let Ok(change) = serde_json::from_value::<Change>(value.clone()) else {
            continue;
        };
        let Some(action) = Action::from_actions(&change.actions) else {
            continue;
        };
        let before = display(Some(&change.before), None, Some(&change.before_sensitive));
        let after = display(
            Some(&change.after),
            Some(&change.after_unknown),
            Some(&change.after_sensitive),
        );
        out.push(OutputReport {
            name: name.clone(),
            action,
            before,
            after,
        });
    }
    out
}

/// True when attribute path `outer` is `inner` or one of its ancestors (`memory` covers `memory.dedicated`
/// and `disk[0].size`).
pub fn covers(outer: &str, inner: &str) -> bool {
    inner == outer
        || (inner.starts_with(outer)
            && matches!(inner.as_bytes().get(outer.len()), Some(b'.' | b'[')))
}

/// Turns Terraform's path steps (`["memory", 0, "dedicated"]`) into this module's path convention. The index
/// of a one-element block cannot be told from the steps alone, so index 0 is dropped (`memory.dedicated`).
pub fn steps_to_path(steps: &[Value]) -> String {
    let mut path = String::new();
    for step in steps {
        match step {
            Value::String(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Value::Number(n) if n.as_u64() == Some(0) => {}
            other => path.push_str(&format!("[{other}]")),
        }
    }
    path
}

/// The attributes that differ between `before` and `after` of a change, in path order. Empty unless both
/// are objects: a create or a delete changes the whole object, not attributes.
pub fn diff(change: &Change) -> Vec<AttributeChange> {
    let mut out = Vec::new();
    if !(change.before.is_object() && change.after.is_object()) {
        return out;
    }
    walk(
        "",
        Some(&change.before),
        Some(&change.after),
        Some(&change.after_unknown),
        Some(&change.before_sensitive),
        Some(&change.after_sensitive),
        &mut out,
        0,
    );
    out
}

fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

fn contains_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Array(items)) => items.iter().any(|i| contains_true(Some(i))),
        Some(Value::Object(map)) => map.values().any(|i| contains_true(Some(i))),
        _ => false,
    }
}

fn child_key<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    match v {
        Some(Value::Bool(true)) => Some(&TRUE),
        Some(Value::Object(map)) => map.get(key),
        _ => None,
    }
}

fn child_index(v: Option<&Value>, index: usize) -> Option<&Value> {
    match v {
        Some(Value::Bool(true)) => Some(&TRUE),
        Some(Value::Array(items)) => items.get(index),
        _ => None,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display(value: Option<&Value>, unknown: Option<&Value>, sensitive: Option<&Value>) -> Value {
    if contains_true(unknown) {
        Value::String(UNKNOWN.to_owned())
    } else if contains_true(sensitive) {
        Value::String(SENSITIVE.to_owned())
    } else {
        value.cloned().unwrap_or(Value::Null)
    }
}

/// Nesting deeper than this is reported whole rather than walked (a guard against hostile input).
const MAX_DEPTH: usize = 64;

#[allow(clippy::too_many_arguments)]
fn walk(
    path: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    unknown: Option<&Value>,
    before_sensitive: Option<&Value>,
    after_sensitive: Option<&Value>,
    out: &mut Vec<AttributeChange>,
    depth: usize,
) {
    let null = Value::Null;
    let b = before.unwrap_or(&null);
    let a = after.unwrap_or(&null);
    if is_true(unknown) {
        out.push(AttributeChange {
            path: path.to_owned(),
            before: display(Some(b), None, before_sensitive),
            after: Value::String(UNKNOWN.to_owned()),
            forces_replacement: false,
        });
        return;
    }
    if depth < MAX_DEPTH {
        match (b, a) {
            (Value::Object(bo), Value::Object(ao)) => {
                let mut keys: BTreeSet<&str> =
                    bo.keys().chain(ao.keys()).map(String::as_str).collect();
                if let Some(Value::Object(uo)) = unknown {
                    keys.extend(
                        uo.iter()
                            .filter(|(_, v)| contains_true(Some(v)))
                            .map(|(k, _)| k.as_str()),
                    );
                }
                for key in keys {
                    walk(
                        &join(path, key),
                        bo.get(key),
                        ao.get(key),
                        child_key(unknown, key),
                        child_key(before_sensitive, key),
                        child_key(after_sensitive, key),
                        out,
                        depth + 1,
                    );
                }
                return;
            }
            (Value::Array(ba), Value::Array(aa))
                if !path.is_empty()
                    && ba.len() == aa.len()
                    && !ba.is_empty()
                    && ba.iter().chain(aa.iter()).all(Value::is_object) =>
            {
                for (i, (bi, ai)) in ba.iter().zip(aa.iter()).enumerate() {
                    let sub = if ba.len() == 1 {
                        path.to_owned()
                    } else {
                        format!("{path}[{i}]")
                    };
                    walk(
                        &sub,
                        Some(bi),
                        Some(ai),
                        child_index(unknown, i),
                        child_index(before_sensitive, i),
                        child_index(after_sensitive, i),
                        out,
                        depth + 1,
                    );
                }
                return;
            }
            _ => {}
        }
    }
    if b != a || contains_true(unknown) {
        out.push(AttributeChange {
            path: path.to_owned(),
            before: display(Some(b), None, before_sensitive),
            after: display(Some(a), unknown, after_sensitive),
            forces_replacement: false,
        });
    }
}

/// Every string value the plan marks sensitive (resources and outputs, before and after), so the caller can
/// register them for masking in every log line and stderr excerpt.
pub fn sensitive_strings(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for rc in plan
        .resource_changes
        .iter()
        .chain(plan.resource_drift.iter())
        .flatten()
    {
        collect_sensitive(&rc.change, &mut out);
    }
    collect_output_sensitive(plan.output_changes.as_ref(), &mut out);
    out.sort();
    out.dedup();
    out
}

/// Adds the sensitive strings of every output change to `out`.
fn collect_output_sensitive(
    output_changes: Option<&serde_json::Map<String, Value>>,
    out: &mut Vec<String>,
) {
    for (_, value) in output_changes.into_iter().flatten() {
        if let Ok(change) = serde_json::from_value::<Change>(value.clone()) {
            collect_sensitive(&change, out);
        }
    }
}

/// Adds the string values `change` marks sensitive, before and after, to `out`.
fn collect_sensitive(change: &Change, out: &mut Vec<String>) {
    fn collect(value: &Value, sensitive: Option<&Value>, out: &mut Vec<String>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if is_true(sensitive) {
            match value {
                Value::String(s) => out.push(s.clone()),
                Value::Array(items) => items
                    .iter()
                    .for_each(|v| collect(v, Some(&TRUE), out, depth + 1)),
                Value::Object(map) => map
                    .values()
                    .for_each(|v| collect(v, Some(&TRUE), out, depth + 1)),
                _ => {}
            }
            return;
        }
        match value {
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    collect(v, child_index(sensitive, i), out, depth + 1);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    collect(v, child_key(sensitive, k), out, depth + 1);
                }
            }
            _ => {}
        }
    }
    collect(&change.before, Some(&change.before_sensitive), out, 0);
    collect(&change.after, Some(&change.after_sensitive), out, 0);
}

/// Addresses of every resource instance in a state file (format version 4), for [`analyze`]'s history.
pub fn state_addresses(state: &Value) -> HashSet<String> {
    let mut out = HashSet::new();
    let Some(resources) = state.get("resources").and_then(Value::as_array) else {
        return out;
    };
    for r in resources {
        let (Some(rtype), Some(name)) = (
            r.get("type").and_then(Value::as_str),
            r.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let mut base = String::new();
        if let Some(module) = r.get("module").and_then(Value::as_str) {
            base.push_str(module);
            base.push('.');
        }
        if r.get("mode").and_then(Value::as_str) == Some("data") {
            base.push_str("data.");
        }
        base.push_str(rtype);
        base.push('.');
        base.push_str(name);
        for instance in r
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match instance.get("index_key") {
                Some(Value::Number(n)) => out.insert(format!("{base}[{n}]")),
                Some(Value::String(s)) => {
                    out.insert(format!("{base}[{}]", Value::String(s.clone())))
                }
                _ => out.insert(base.clone()),
            };
        }
    }
    out
}

mod stream;
pub mod ui;
pub use stream::{Summary, read, read_chunked};

#[cfg(test)]
mod tests;
