//! The pvesh JSON models (pve_common::pve), the volid and vzdump-name parsers, and the answer readers of
//! restore-vm and verify-backups must never panic on anything a node (or something posing as one) sends.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pve_common::pve;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Vec<pve::BackupContent>>(data).map(|list| {
        for c in &list {
            let _ = (c.guest_type(), c.guest_id());
            let _ =
                verify_backups::pve::Backup::from_content("local", c).map(|b| b.file_name().len());
        }
    });
    let _ = serde_json::from_slice::<Vec<pve::StorageStatus>>(data)
        .map(|list| list.iter().map(|s| s.has_content("backup")).count());
    let _ = serde_json::from_slice::<Vec<pve::ClusterResource>>(data).map(|list| {
        let _ = list.iter().map(pve::ClusterResource::guest_type).count();
        list.iter()
            .filter_map(verify_backups::pve::Guest::from_resource)
            .count()
    });
    let _ = serde_json::from_slice::<pve::GuestStatus>(data).map(|s| s.is_running());
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let config = pve::guest_config(&value);
        let _ = pve::config_protected(&config);
        let _ = pve_restore::node::ip_from_config(&config);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(v) = pve::Volid::parse(text) {
            let _ = v.archive();
            // What the parser accepts is safe to hand to a remote command: no shell metacharacters.
            assert!(
                !v.to_string()
                    .contains([' ', ';', '\'', '"', '$', '`', '\n', '&', '|'])
            );
        }
        let _ = pve::parse_vzdump_name(text);
        let _ = pve::parse_vmid(text);
        let _ = pve::VzdumpFile::parse(text);
        let _ = verify_backups::pve::log_verdict(text, 100);
        let _ = pve_restore::node::parse_offset(text);
        let _ = pve_restore::node::ip_from_agent(text);
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let _ = pve_restore::node::task_warnings(&lines, text);
    }
});
