//! `terraform show -json` parsing and drift analysis must never panic: the streaming reader check-drift
//! uses, and the tree parse kept for tests and tools.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check_drift::plan::read(data, &Default::default());
    if let Ok(plan) = check_drift::plan::parse(data) {
        let _ = check_drift::plan::analyze(&plan, &Default::default());
        let _ = check_drift::plan::sensitive_strings(&plan);
        for rc in plan.resource_changes.iter().flatten() {
            let _ = check_drift::plan::diff(&rc.change);
        }
    }
});
