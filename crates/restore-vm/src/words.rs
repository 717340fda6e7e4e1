//! The messages callers of the replaced script match, from the shared catalog (`restore_vm.*` keys).

use pve_common::tr;

/// No VMID given.
pub fn vmid_required() -> String {
    tr!("restore_vm.vmid_required")
}

/// A VMID that is not digits.
pub fn vmid_not_a_number(v: &str) -> String {
    tr!("restore_vm.vmid_not_a_number", value = v)
}

/// A malformed `--date`.
pub fn date_invalid(v: &str) -> String {
    tr!("restore_vm.date_invalid", value = v)
}

/// The heading of the summary.
pub fn summary_heading() -> String {
    tr!("restore_vm.summary_heading")
}

/// VMID found on several nodes with no node given.
pub fn several_nodes(vmid: u32, places: &str) -> String {
    tr!(
        "restore_vm.several_nodes",
        vmid = vmid.to_string(),
        places = places
    )
}
