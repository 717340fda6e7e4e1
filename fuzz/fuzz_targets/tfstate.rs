//! tfstate validation must never panic, and what restore-tfstate writes must parse again.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = pve_tf::state::State::parse(data) {
        let _ = state.summary();
        let _ = serde_json::to_vec(&state.masked(false));
        let streamed = pve_tf::state::StateInfo::read(&mut &data[..]);
        assert_eq!(streamed.ok().as_ref(), Some(state.info()));
        let bytes = state.to_bytes_with_serial(state.serial.saturating_add(1));
        assert!(pve_tf::state::State::parse(&bytes).is_ok());
    }
});
