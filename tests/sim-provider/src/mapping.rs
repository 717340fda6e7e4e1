//! Translations shared by the VM and container mappings: tags, startup order, SSH keys, block shapes.

use tf_provider::value::ValueAny;

use crate::simstate::{Guest, parse_props, url_decode, url_encode};
use crate::spec::{
    self, AttrSpec, BlockSpec, Kind, block, computed, default_bool, default_num, default_str, get,
    get_bool, get_num, get_str, get_strs, list_len, optional, optional_computed, set,
};

/// The attributes [`write_common`] and [`read_common`] handle, with their bpg defaults (`vm_id` and
/// `node_name` force a replacement), then `more`.
pub fn common_attributes(on_boot_attr: &'static str, more: Vec<AttrSpec>) -> Vec<AttrSpec> {
    let mut attributes = vec![
        computed("id", Kind::Str),
        optional_computed("node_name", Kind::Str).force_new(),
        optional_computed("vm_id", Kind::Num).force_new(),
        default_str("description", ""),
        optional("tags", Kind::StrList).unordered(),
        default_bool("started", true),
        default_bool(on_boot_attr, true),
    ];
    attributes.extend(more);
    attributes
}

/// The `startup` block both guest types have (bpg: -1 means unset).
pub fn startup_block() -> BlockSpec {
    block(
        "startup",
        1,
        vec![
            default_num("order", -1),
            default_num("up_delay", -1),
            default_num("down_delay", -1),
        ],
        vec![],
    )
}

/// `initialization.ip_config` of both guest types: a list of one `ipv4` block each.
pub fn ip_config_block() -> BlockSpec {
    block(
        "ip_config",
        0,
        vec![],
        vec![block(
            "ipv4",
            1,
            vec![default_str("address", ""), default_str("gateway", "")],
            vec![],
        )],
    )
}

/// The attributes both guest types have, written into the guest: `description`, `tags`, `startup`,
/// `onboot` from `on_boot_attr` (bpg names it `on_boot` for VMs, `start_on_boot` for containers), the
/// power state from `started`, and the clone source.
pub fn write_common(guest: &mut Guest, state: &ValueAny, on_boot_attr: &str) {
    guest.set_opt("description", nonempty(get_str(state, "description")));
    write_tags(guest, state);
    guest.set("onboot", bit(get_bool(state, on_boot_attr).unwrap_or(true)));
    write_startup(guest, state);
    guest.status = if get_bool(state, "started").unwrap_or(true) {
        "running"
    } else {
        "stopped"
    }
    .to_owned();
    if let Some(source) = get_num(state, "clone.0.vm_id").and_then(|n| u32::try_from(n).ok()) {
        guest.clone_of = Some(source);
    }
}

/// What [`write_common`] writes, read back into `state` (with `id`, `vm_id` and `node_name`).
pub fn read_common(
    state: &mut ValueAny,
    spec: &BlockSpec,
    guest: &Guest,
    full: bool,
    on_boot_attr: &str,
) {
    set(state, "id", spec::s(guest.vmid.to_string()));
    set(state, "vm_id", ValueAny::Number(i64::from(guest.vmid)));
    set(state, "node_name", spec::s(guest.node.clone()));
    set(state, "description", str_or_empty(guest, "description"));
    read_tags(state, guest);
    set(state, "started", ValueAny::Bool(guest.status == "running"));
    let on_boot = flag(guest, "onboot").unwrap_or(false);
    set(state, on_boot_attr, ValueAny::Bool(on_boot));
    read_startup(state, spec, guest, full);
}

/// The volume of the disk `key` (`local-lvm:vm-100-disk-0` of `local-lvm:vm-100-disk-0,size=8G`) if it
/// is on datastore `ds`: a disk that only changes size keeps its volume.
pub fn volume_on(guest: &Guest, key: &str, ds: &str) -> Option<String> {
    guest
        .get(key)
        .and_then(|v| parse_props(&v).into_iter().find(|(k, _)| k.is_empty()))
        .map(|(_, v)| v)
        .filter(|v| v.starts_with(&format!("{ds}:")))
}

/// Gives `initialization.0.ip_config` one element with an `ipv4` block when it has none and `create`
/// is set (an import finding an address on the guest).
pub fn ensure_ip_config(state: &mut ValueAny, spec: &BlockSpec, create: bool) {
    if list_len(get(state, "initialization.0.ip_config")) > 0 || !create {
        return;
    }
    let ip_spec = sub(sub(spec, "initialization"), "ip_config");
    let mut elem = ip_spec.skeleton();
    set(
        &mut elem,
        "ipv4",
        ValueAny::List(vec![sub(ip_spec, "ipv4").skeleton()]),
    );
    set(
        state,
        "initialization.0.ip_config",
        ValueAny::List(vec![elem]),
    );
}

/// The spec of the nested block `name` (panics only on a programming error in the static schema).
pub fn sub<'s>(spec: &'s BlockSpec, name: &str) -> &'s BlockSpec {
    match spec.blocks.iter().find(|b| b.name == name) {
        Some(b) => b,
        None => unreachable!("schema has no block {name}"),
    }
}

/// Make sure the single block `path` (e.g. `memory`, `initialization.0.user_account`) has an element 0
/// when `create` is set; returns whether it has one. New elements are the block's skeleton.
pub fn ensure_single(state: &mut ValueAny, spec: &BlockSpec, path: &str, create: bool) -> bool {
    let has = list_len(get(state, path)) > 0;
    if has || !create {
        return has;
    }
    let mut block_spec = spec;
    for step in path.split('.').filter(|s| s.parse::<usize>().is_err()) {
        block_spec = sub(block_spec, step);
    }
    set(state, path, ValueAny::List(vec![block_spec.skeleton()]));
    true
}

/// Tags as Proxmox keeps them: lower case, `;`-joined, sorted (bpg documents that Proxmox sorts them).
fn write_tags(guest: &mut Guest, state: &ValueAny) {
    let mut tags: Vec<String> = get_strs(state, "tags")
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    guest.set_opt("tags", (!tags.is_empty()).then(|| tags.join(";")));
}

/// Tags read back, sorted as bpg does; the prior order is kept when only the order differs
/// (bpg's `SuppressIfListsAreEqualIgnoringOrder` with `DiffSuppressOnRefresh`); null stays null when the
/// guest has none.
fn read_tags(state: &mut ValueAny, guest: &Guest) {
    let mut tags: Vec<String> = guest
        .get("tags")
        .unwrap_or_default()
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    let read = spec::strs(tags.clone());
    let prior = get(state, "tags");
    let value = if tags.is_empty() && matches!(prior, ValueAny::Null) {
        ValueAny::Null
    } else if spec::same_items(prior, &read) {
        // DiffSuppressOnRefresh: the same tags in another order are no change.
        prior.clone()
    } else {
        read
    };
    set(state, "tags", value);
}

/// `startup` from the `startup` block (`order=2,up=30,down=60`); -1 means unset, as in bpg.
fn write_startup(guest: &mut Guest, state: &ValueAny) {
    if list_len(get(state, "startup")) == 0 {
        guest.set_opt("startup", None);
        return;
    }
    let mut parts = Vec::new();
    for (attr, key) in [
        ("order", "order"),
        ("up_delay", "up"),
        ("down_delay", "down"),
    ] {
        if let Some(n) = get_num(state, &format!("startup.0.{attr}"))
            && n >= 0
        {
            parts.push(format!("{key}={n}"));
        }
    }
    guest.set_opt("startup", (!parts.is_empty()).then(|| parts.join(",")));
}

/// The `startup` block read back; it appears when the guest has a `startup` key or state has the block.
fn read_startup(state: &mut ValueAny, spec: &BlockSpec, guest: &Guest, full: bool) {
    let value = guest.get("startup");
    if !ensure_single(state, spec, "startup", full || value.is_some()) {
        return;
    }
    let props = parse_props(&value.unwrap_or_default());
    for (attr, key) in [
        ("order", "order"),
        ("up_delay", "up"),
        ("down_delay", "down"),
    ] {
        let n = props
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(-1);
        set(state, &format!("startup.0.{attr}"), ValueAny::Number(n));
    }
}

/// `sshkeys` as Proxmox stores it: the keys one per line, URL-encoded, ending in a newline.
pub fn encode_keys(keys: &[String]) -> String {
    let mut text = keys.join("\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    url_encode(&text)
}

/// The keys read back from `sshkeys`, reformatted as bpg's read does: one key per line, surrounding
/// whitespace trimmed, runs of blanks collapsed, empty lines dropped. A configured key that ends in a
/// newline (`file("id.pub")`) or has doubled blanks therefore reads back different: the known false
/// positive on `initialization[0].user_account[0].keys`.
pub fn decode_keys(stored: &str) -> Vec<String> {
    url_decode(stored)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// A MAC address in Proxmox's range, stable for a guest and interface index.
pub fn mac_for(vmid: u32, index: usize) -> String {
    let [_, _, hi, lo] = vmid.to_be_bytes();
    let idx = u8::try_from(index).unwrap_or(u8::MAX);
    format!("BC:24:11:{hi:02X}:{lo:02X}:{idx:02X}")
}

/// Boolean from a Proxmox `0`/`1` value.
pub fn flag(guest: &Guest, key: &str) -> Option<bool> {
    guest.get(key).map(|v| v.trim() == "1")
}

/// Proxmox `0`/`1` for a boolean.
pub fn bit(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

/// A string attribute read back: the value, or `""` when the key is absent (bpg's default).
pub fn str_or_empty(guest: &Guest, key: &str) -> ValueAny {
    spec::s(guest.get(key).unwrap_or_default())
}

/// The value, or `None` for an empty string.
pub fn nonempty(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Number from a configuration key.
pub fn num(guest: &Guest, key: &str) -> Option<i64> {
    guest.get(key).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reformat_on_read() {
        let configured = vec!["ssh-ed25519  AAAA ops@homelab\n".to_owned()];
        let stored = encode_keys(&configured);
        assert_eq!(decode_keys(&stored), vec!["ssh-ed25519 AAAA ops@homelab"]);
        let clean = vec!["ssh-ed25519 AAAA ops@homelab".to_owned()];
        assert_eq!(decode_keys(&encode_keys(&clean)), clean);
    }

    #[test]
    fn mac_is_stable() {
        assert_eq!(mac_for(100, 0), "BC:24:11:00:64:00");
    }
}
