//! A `.tflock` object is anybody's JSON: reading it must never panic, and the "held by" message built
//! from it must stay one line without terminal control, whatever its fields hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pve_tf::lock::{LockError, LockInfo};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = serde_json::from_slice::<LockInfo>(data) {
        let message = LockError::Held {
            path: "tfstate/prod/terraform.tfstate.tflock".to_owned(),
            info: Box::new(info),
        }
        .to_string();
        assert!(
            !message.chars().any(char::is_control),
            "the lock message carries a control character: {message:?}"
        );
    }
});
