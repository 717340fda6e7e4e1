//! The tfvars and backend error path: whatever surrounds a secret's line, an error about the file names
//! file and line but never quotes the secret.
#![no_main]
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "Zq9-fuzz-SECRET-zq9";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The fuzzer's bytes around the secret's line; `|` splits them into before and after.
    let (before, after) = text.split_once('|').unwrap_or((&text, ""));
    let file = format!("{before}\nproxmox_password = \"{SECRET}\"{after}");
    let path = std::path::Path::new("terraform.tfvars");
    if let Err(e) = pve_common::tfvars::parse_tfvars_str(&file, path) {
        let shown = e.to_string();
        assert!(!shown.contains(SECRET), "the error quotes the secret: {shown}");
    }
    if let Err(e) = pve_common::tfvars::parse_hcl(&file, path) {
        assert!(!e.to_string().contains(SECRET), "{e}");
    }
});
