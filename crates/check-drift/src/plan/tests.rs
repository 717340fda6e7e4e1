//! Plan classification against JSON shaped like `terraform show -json` of bpg/proxmox plans
//! (`tests/fixtures/plans/`), and a mutation test: no input may make the parser or classifier panic.

use super::*;
use serde_json::json;

const MIXED: &str = include_str!("../../tests/fixtures/plans/bpg_mixed.json");
const IN_SYNC: &str = include_str!("../../tests/fixtures/plans/bpg_in_sync.json");
const OUTPUTS_ONLY: &str = include_str!("../../tests/fixtures/plans/bpg_outputs_only.json");
const ERRORED: &str = include_str!("../../tests/fixtures/plans/bpg_errored.json");

fn mixed() -> Analysis {
    analyze(&parse(MIXED.as_bytes()).unwrap(), &HashSet::new())
}

fn find<'a>(a: &'a Analysis, name: &str) -> &'a ResourceReport {
    let address = format!("proxmox_virtual_environment_vm.{name}");
    a.resources
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("{address} missing"))
}

/// `name`'s resource, after checking how it is classified: `(action, origin, risk)`.
fn classified<'a>(
    a: &'a Analysis,
    name: &str,
    class: (Action, Origin, Risk),
) -> &'a ResourceReport {
    let r = find(a, name);
    assert_eq!((r.action, r.origin, r.risk), class, "{name}");
    r
}

fn paths(attrs: &[AttributeChange]) -> Vec<&str> {
    attrs.iter().map(|a| a.path.as_str()).collect()
}

#[test]
fn no_op_and_data_reads_are_never_drift() {
    let a = mixed();
    assert!(a.resources.iter().all(|r| !r.address.starts_with("data.")));
    assert!(a.resources.iter().all(|r| !r.address.ends_with(".idle")));
    let sync = analyze(&parse(IN_SYNC.as_bytes()).unwrap(), &HashSet::new());
    assert!(sync.resources.is_empty() && sync.output_changes.is_empty() && !sync.has_changes);
}

#[test]
fn memory_changed_outside_terraform_is_origin_drift_safe() {
    let a = mixed();
    let web = find(&a, "web");
    assert_eq!(web.action, Action::Update);
    assert_eq!(web.origin, Origin::Drift);
    assert_eq!(web.risk, Risk::Safe);
    assert_eq!(paths(&web.changed_attributes), ["memory.dedicated", "tags"]);
    let mem = &web.changed_attributes[0];
    assert_eq!(
        (mem.before.clone(), mem.after.clone()),
        (json!(10240), json!(8192))
    );
    let drifted = &web.drifted_attributes[0];
    assert_eq!(drifted.path, "memory.dedicated");
    assert_eq!(
        (drifted.before.clone(), drifted.after.clone()),
        (json!(8192), json!(10240))
    );
    assert_eq!(web.changed_attributes[1].after, json!(["terraform", "web"]));
}

#[test]
fn startup_order_change_in_configuration_is_pending() {
    let a = mixed();
    let db = classified(&a, "db", (Action::Update, Origin::Pending, Risk::Safe));
    assert_eq!(paths(&db.changed_attributes), ["startup.order"]);
    assert!(db.drifted_attributes.is_empty());
}

#[test]
fn clone_vm_id_change_is_a_dangerous_replace() {
    let a = mixed();
    let runner = find(&a, "runner");
    assert_eq!(
        (runner.action, runner.risk),
        (Action::Replace, Risk::Dangerous)
    );
    assert_eq!(
        runner.action_reason.as_deref(),
        Some("replace_because_cannot_update")
    );
    let clone = runner
        .changed_attributes
        .iter()
        .find(|c| c.path == "clone.vm_id")
        .unwrap();
    assert_eq!(
        (clone.before.clone(), clone.after.clone()),
        (json!(9000), json!(9001))
    );
    assert!(clone.forces_replacement);
    let id = runner
        .changed_attributes
        .iter()
        .find(|c| c.path == "id")
        .unwrap();
    assert_eq!(id.after, json!(UNKNOWN));
    assert_eq!(runner.origin, Origin::Pending);
}

#[test]
fn vm_destroyed_outside_terraform_is_a_dangerous_create_from_drift() {
    let a = mixed();
    let mon = classified(
        &a,
        "monitoring",
        (Action::Create, Origin::Drift, Risk::Dangerous),
    );
    assert_eq!(
        mon.risk_reason.as_deref(),
        Some("destroyed outside Terraform")
    );
    assert!(mon.changed_attributes.is_empty());
    assert!(
        mon.drifted_attributes.is_empty(),
        "a deleted object has no attribute changes"
    );
}

#[test]
fn create_of_an_address_in_state_history_is_dangerous() {
    let plan = parse(MIXED.as_bytes()).unwrap();
    let mut history = HashSet::new();
    history.insert("proxmox_virtual_environment_vm.brand_new".to_owned());
    let mut plan2 = plan.clone();
    let mut rc = plan2.resource_changes.as_ref().unwrap()[4].clone();
    rc.address = "proxmox_virtual_environment_vm.brand_new".to_owned();
    plan2.resource_changes = Some(vec![rc.clone()]);
    plan2.resource_drift = None;
    let a = analyze(&plan2, &history);
    assert_eq!(
        (a.resources[0].origin, a.resources[0].risk),
        (Origin::Pending, Risk::Dangerous)
    );
    let a = analyze(&plan2, &HashSet::new());
    assert_eq!(
        a.resources[0].risk,
        Risk::Safe,
        "a create of something new is safe"
    );
}

#[test]
fn drift_plus_configuration_change_is_both() {
    let a = mixed();
    let dns = find(&a, "dns");
    assert_eq!(dns.origin, Origin::Both);
    assert_eq!(paths(&dns.changed_attributes), ["memory.dedicated", "tags"]);
    assert_eq!(paths(&dns.drifted_attributes), ["tags"]);
}

#[test]
fn sensitive_values_are_masked() {
    let a = mixed();
    let vault = find(&a, "vault");
    let pw = &vault.changed_attributes[0];
    assert_eq!(pw.path, "initialization.user_account.password");
    assert_eq!(
        (pw.before.clone(), pw.after.clone()),
        (json!(SENSITIVE), json!(SENSITIVE))
    );
    let text = serde_json::to_string(&a.resources).unwrap()
        + &serde_json::to_string(&a.output_changes).unwrap();
    assert!(!text.contains("Secr3t"), "{text}");
    let out = a
        .output_changes
        .iter()
        .find(|o| o.name == "vault_password")
        .unwrap();
    assert_eq!(out.after, json!(SENSITIVE));
}

#[test]
fn sensitive_strings_are_collected_for_masking() {
    let got = sensitive_strings(&parse(MIXED.as_bytes()).unwrap());
    assert_eq!(got, ["new-Secr3t-pass", "old-Secr3t-pass"]);
}

#[test]
fn removed_configuration_is_a_dangerous_delete_with_reason() {
    let a = mixed();
    let old = classified(
        &a,
        "old",
        (Action::Delete, Origin::Pending, Risk::Dangerous),
    );
    assert_eq!(
        old.action_reason.as_deref(),
        Some("delete_because_no_resource_config")
    );
}

#[test]
fn drift_left_alone_by_the_plan_is_listed_apart() {
    let a = mixed();
    assert_eq!(a.unplanned_drift.len(), 1);
    let idle = &a.unplanned_drift[0];
    assert_eq!(idle.address, "proxmox_virtual_environment_vm.idle");
    assert_eq!(idle.attributes, ["ipv4_addresses"]);
    assert!(!idle.relevant);
    let mut plan = parse(MIXED.as_bytes()).unwrap();
    plan.relevant_attributes = Some(vec![RelevantAttribute {
        resource: idle.address.clone(),
        attribute: vec![json!("ipv4_addresses")],
    }]);
    assert!(analyze(&plan, &HashSet::new()).unplanned_drift[0].relevant);
}

#[test]
fn outputs_alone_are_changes_but_no_resources() {
    let a = analyze(&parse(OUTPUTS_ONLY.as_bytes()).unwrap(), &HashSet::new());
    assert!(a.resources.is_empty());
    assert!(a.has_changes);
    assert_eq!(a.output_changes.len(), 1);
    assert_eq!(a.output_changes[0].after, json!(UNKNOWN));
}

#[test]
fn errored_and_incomplete_flags() {
    let a = analyze(&parse(ERRORED.as_bytes()).unwrap(), &HashSet::new());
    assert!(a.errored);
    let a = analyze(
        &parse(br#"{"complete": false, "resource_changes": null}"#).unwrap(),
        &HashSet::new(),
    );
    assert!(!a.complete && !a.errored);
    let a = analyze(&parse(b"{}").unwrap(), &HashSet::new());
    assert!(
        a.complete,
        "plans from before Terraform 1.8 have no `complete`"
    );
}

#[test]
fn path_convention() {
    assert_eq!(
        steps_to_path(&[json!("memory"), json!(0), json!("dedicated")]),
        "memory.dedicated"
    );
    assert_eq!(
        steps_to_path(&[json!("disk"), json!(1), json!("size")]),
        "disk[1].size"
    );
    assert!(covers("memory", "memory.dedicated"));
    assert!(covers("disk", "disk[1].size"));
    assert!(!covers("memory", "memory_ballon"));
    let change = Change {
        actions: vec!["update".into()],
        before: json!({"disk": [{"size": 8}, {"size": 16}], "tags": ["a"], "id": "1"}),
        after: json!({"disk": [{"size": 8}, {"size": 32}], "tags": ["a", "b"], "id": "1"}),
        ..Change::default()
    };
    assert_eq!(paths(&diff(&change)), ["disk[1].size", "tags"]);
}

#[test]
fn state_history_addresses() {
    let state = json!({"version": 4, "resources": [
        {"mode": "managed", "type": "terraform_data", "name": "a", "instances": [{}]},
        {"module": "module.m", "mode": "managed", "type": "t", "name": "b", "instances": [{"index_key": 0}, {"index_key": "x"}]},
        {"mode": "data", "type": "d", "name": "c", "instances": [{}]},
    ]});
    let got = state_addresses(&state);
    for a in [
        "terraform_data.a",
        "module.m.t.b[0]",
        "module.m.t.b[\"x\"]",
        "data.d.c",
    ] {
        assert!(got.contains(a), "{a} in {got:?}");
    }
    assert!(state_addresses(&json!([1, 2])).is_empty());
}

/// A small deterministic generator (xorshift64*), so a failure is reproducible from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(rng.next() as i64),
        4 => json!("x"),
        5 => json!([]),
        6 => json!([{"a": 1}]),
        _ => json!({"actions": ["update"], "before": {"a": [1]}, "after": true}),
    }
}

/// Replaces, removes or retypes one random node of `v`.
fn mutate(v: &mut Value, rng: &mut Rng, depth: usize) {
    let descend = depth < 12 && rng.below(4) != 0;
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            if rng.below(6) == 0 {
                map.remove(&key);
            } else {
                mutate(map.get_mut(&key).unwrap(), rng, depth + 1);
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            if rng.below(6) == 0 {
                items.remove(i);
            } else {
                mutate(&mut items[i], rng, depth + 1);
            }
        }
        _ => *v = random_value(rng),
    }
}

#[test]
fn mutated_plans_never_panic() {
    let base: Value = serde_json::from_str(MIXED).unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut parsed = 0;
    for _ in 0..500 {
        let mut v = base.clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut v, &mut rng, 0);
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        if let Ok(plan) = parse(&bytes) {
            parsed += 1;
            let a = analyze(&plan, &HashSet::new());
            let _ = serde_json::to_string(&a.resources).unwrap();
        }
        // Byte-level damage too: truncation and flipped bytes.
        let mut raw = MIXED.as_bytes().to_vec();
        let cut = rng.below(raw.len());
        raw[cut] ^= 1 << rng.below(8);
        raw.truncate(raw.len() - rng.below(raw.len() / 8));
        if let Ok(plan) = parse(&raw) {
            let _ = analyze(&plan, &HashSet::new());
        }
    }
    assert!(
        parsed > 50,
        "the mutator should keep many documents parseable ({parsed})"
    );
}

#[test]
fn deeply_nested_values_do_not_overflow() {
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({"a": [deep]});
    }
    let change = Change {
        before: json!({"x": deep.clone()}),
        after: json!({"x": 2}),
        ..Change::default()
    };
    assert_eq!(diff(&change).len(), 1);
}

/// [`read`] (the stream check-drift uses) and [`parse`] + [`analyze`] + [`sensitive_strings`] (the tree)
/// must agree on every object the tree accepts. (The derived tree parse also takes a top-level array as a
/// struct in field order; the stream, rightly, does not.)
fn assert_stream_matches_tree(bytes: &[u8], history: &HashSet<String>) {
    let Ok(plan) = parse(bytes) else {
        return;
    };
    if bytes.first() != Some(&b'{') {
        assert!(read(bytes, history).is_err());
        return;
    }
    let tree = analyze(&plan, history);
    let stream = read(bytes, history).unwrap_or_else(|e| {
        panic!(
            "the tree parse accepted what the stream refused ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    });
    assert_eq!(stream.analysis.resources, tree.resources);
    assert_eq!(stream.analysis.output_changes, tree.output_changes);
    assert_eq!(stream.analysis.unplanned_drift, tree.unplanned_drift);
    assert_eq!(
        (
            stream.analysis.errored,
            stream.analysis.complete,
            stream.analysis.has_changes
        ),
        (tree.errored, tree.complete, tree.has_changes)
    );
    assert_eq!(stream.sensitive, sensitive_strings(&plan));
    assert_eq!(stream.format_version, plan.format_version);
    assert_eq!(stream.terraform_version, plan.terraform_version);
    assert_eq!(stream.has_resource_changes, plan.resource_changes.is_some());
    // The same with every value crossing chunk boundaries and every container entered.
    for chunk in [1, 7, 64] {
        let small = super::read_chunked(bytes, history, chunk)
            .unwrap_or_else(|e| panic!("chunks of {chunk} bytes: {e}"));
        assert_eq!(small.analysis.resources, stream.analysis.resources);
        assert_eq!(small.sensitive, stream.sensitive);
        assert_eq!(small.has_resource_changes, stream.has_resource_changes);
    }
}

#[test]
fn stream_reads_the_fixtures_like_the_tree() {
    let history: HashSet<String> = ["proxmox_virtual_environment_vm.web".to_owned()].into();
    for text in [MIXED, IN_SYNC, OUTPUTS_ONLY, ERRORED] {
        assert_stream_matches_tree(text.as_bytes(), &history);
    }
    let s = read(MIXED.as_bytes(), &HashSet::new()).unwrap();
    assert_eq!(s.sensitive, ["new-Secr3t-pass", "old-Secr3t-pass"]);
    assert!(s.has_resource_changes && s.analysis.has_changes);
    assert_eq!(s.format_version.as_deref(), Some("1.2"));
}

#[test]
fn stream_reads_drift_after_changes_and_nulls_like_the_tree() {
    // Terraform writes resource_drift first; the classification must not depend on it.
    let mut doc: Value = serde_json::from_str(MIXED).unwrap();
    let drift = doc.as_object_mut().unwrap().shift_remove("resource_drift");
    doc["resource_drift"] = drift.unwrap();
    assert_stream_matches_tree(&serde_json::to_vec(&doc).unwrap(), &HashSet::new());
    for text in [
        r#"{}"#,
        r#"{"resource_changes": null, "resource_drift": null, "complete": false}"#,
        r#"{"format_version":"1.2","resource_changes":[]}"#,
        r#"{"resource_changes":[{"address":"a.b","change":{"actions":["update"],"before":{"x":1},"after":{"x":2}}}]}"#,
        r#"{"resource_changes":[{"address":"a.b","mode":"data","change":{"actions":["read"]}}],"x":[1,{"y":null}]}"#,
    ] {
        assert_stream_matches_tree(text.as_bytes(), &HashSet::new());
    }
}

#[test]
fn stream_refuses_what_the_tree_refuses() {
    let truncated = &MIXED.as_bytes()[..MIXED.len() / 2];
    for bad in [
        truncated,
        b"".as_slice(),
        b"[1,2,3]",
        br#"{"resource_changes": 7}"#,
        br#"{"resource_changes":[{"address":5,"change":"x"}]}"#,
        br#"{"resource_changes":[{"change":{}}]}"#,
        br#"{"format_version":"1.2"} trailing"#,
        br#"{"resource_changes":[],"resource_changes":[]}"#,
        // Broken JSON deep inside fields the stream skips.
        br#"{"prior_state":{"values":{"root_module":{"resources":[1,2,tru]}}}}"#,
        br#"{"prior_state":{"values":{"a":1,}}}"#,
        br#"{"planned_values":[1,]}"#,
        br#"{"planned_values":[1 2]}"#,
        br#"{"planned_values":{"a" 1}}"#,
        br#"{"planned_values":{1:2}}"#,
        br#"{"configuration":01}"#,
        br#"{"configuration":"\x"}"#,
        br#"{"configuration":12"#,
        br#"{"configuration":{"a":[{"b":"c"}]}"#,
        br#"{"resource_changes":[{"address":"a.b"},]}"#,
        br#"{"resource_changes":[{"address":"a.b"} {"address":"a.c"}]}"#,
    ] {
        assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        assert!(
            read(bad, &HashSet::new()).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
        for chunk in [1, 7] {
            assert!(
                super::read_chunked(bad, &HashSet::new(), chunk).is_err(),
                "chunks of {chunk}: {}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

#[test]
fn stream_matches_the_tree_on_mutated_plans() {
    let base: Value = serde_json::from_str(MIXED).unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d_0002);
    for _ in 0..300 {
        let mut v = base.clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut v, &mut rng, 0);
        }
        assert_stream_matches_tree(&serde_json::to_vec(&v).unwrap(), &HashSet::new());
    }
}

/// Every token type cut at every place by a chunk boundary (found by the `plan` fuzz target: `-` of `-1`
/// at the end of a chunk read as "invalid number" instead of "need more bytes").
#[test]
fn stream_reads_every_token_across_chunk_boundaries() {
    let doc = r#"{"format_version":"1.2","planned_values":{"a":[-1,-0.5e-3,1E+2,true,false,null,"é\u00e9\uD83D\uDE00\"\\",{"":[]}]},"resource_changes":[{"address":"a.b","change":{"actions":["update"],"before":{"x":-1,"s":"\u00e9"},"after":{"x":-2.5e1,"s":"é"}}}],"complete":true,"errored":false}"#;
    let whole = read(doc.as_bytes(), &HashSet::new()).unwrap();
    assert_eq!(whole.analysis.resources.len(), 1);
    for chunk in 1..=doc.len() {
        let chunked = super::read_chunked(doc.as_bytes(), &HashSet::new(), chunk)
            .unwrap_or_else(|e| panic!("chunks of {chunk}: {e}"));
        assert_eq!(
            chunked.analysis.resources, whole.analysis.resources,
            "chunks of {chunk}"
        );
    }
}
