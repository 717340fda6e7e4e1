//! The tfvars reader must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(vars) =
            pve_common::tfvars::parse_tfvars_str(text, std::path::Path::new("f.tfvars"))
    {
        let keys: Vec<String> = vars.keys().map(str::to_owned).collect();
        for k in &keys {
            let _ = vars.get_str(k);
            let _ = vars.get_u64(k);
            let _ = vars.get_str_list(k);
        }
    }
});
