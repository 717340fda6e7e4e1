//! `terraform show -json` parsing and drift analysis must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = check_drift::plan::parse(data) {
        let _ = check_drift::plan::analyze(&plan, &Default::default());
        let _ = check_drift::plan::sensitive_strings(&plan);
        for rc in plan.resource_changes.iter().flatten() {
            let _ = check_drift::plan::diff(&rc.change);
        }
    }
});
