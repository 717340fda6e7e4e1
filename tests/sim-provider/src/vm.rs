//! `proxmox_virtual_environment_vm`: a faithful subset of bpg/proxmox's VM schema over `qemu` guests.
//!
//! Defaults and `ForceNew` follow bpg's SDKv2 schema (`proxmoxtf/resource/vm`): `on_boot` and `started`
//! default to true, `memory.dedicated` to 512, `cpu.cores`/`sockets` to 1, `disk.datastore_id` to
//! `local-lvm`, `disk.size` to 8, `startup.*` to -1, `bios` to `seabios`, `scsi_hardware` to
//! `virtio-scsi-pci`, `operating_system.type` to `other`; `vm_id`, `node_name`, the `clone` attributes and
//! the `user_account` attributes force a replacement.

use tf_provider::value::ValueAny;

use crate::mapping::{
    bit, common_attributes, decode_keys, encode_keys, ensure_ip_config, ensure_single,
    ip_config_block, mac_for, nonempty, num, read_common, startup_block, str_or_empty, sub,
    volume_on, write_common,
};
use crate::resource::GuestMapping;
use crate::simstate::{Guest, parse_props, prop, size_gb};
use crate::spec::{
    BlockSpec, Kind, block, default_bool, default_num, default_str, get, get_bool, get_num,
    get_str, get_strs, list_len, optional, optional_computed, required, s, set, strs,
};

/// The VM resource's mapping.
pub struct Vm;

/// bpg's name for `onboot` on VMs.
const ON_BOOT: &str = "on_boot";

/// Disk interfaces, in the order a full read lists them.
const DISK_BUSES: [&str; 4] = ["scsi", "virtio", "sata", "ide"];

/// Whether a configuration key names a disk interface (`scsi0`, `virtio1`...).
fn is_disk_key(key: &str) -> bool {
    DISK_BUSES.iter().any(|bus| {
        key.strip_prefix(bus)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A disk, not a CD-ROM or a cloud-init drive.
fn is_data_disk(value: &str) -> bool {
    !value.contains("media=cdrom") && !value.contains("cloudinit")
}

impl GuestMapping for Vm {
    const TYPE: &'static str = "qemu";
    const DESCRIPTION: &'static str =
        "A QEMU virtual machine on the simulated Proxmox node (subset of bpg/proxmox)";

    fn spec() -> BlockSpec {
        block(
            "",
            0,
            common_attributes(
                ON_BOOT,
                vec![
                    default_str("name", ""),
                    default_str("bios", "seabios"),
                    default_str("machine", ""),
                    default_str("scsi_hardware", "virtio-scsi-pci"),
                    default_bool("stop_on_destroy", false),
                ],
            ),
            vec![
                block(
                    "agent",
                    1,
                    vec![
                        default_bool("enabled", false),
                        default_bool("trim", false),
                        default_str("type", "virtio"),
                    ],
                    vec![],
                ),
                block(
                    "operating_system",
                    1,
                    vec![default_str("type", "other")],
                    vec![],
                ),
                block(
                    "clone",
                    1,
                    vec![
                        required("vm_id", Kind::Num).force_new(),
                        default_bool("full", true).force_new(),
                        default_str("datastore_id", "").force_new(),
                    ],
                    vec![],
                )
                .force_new(),
                block(
                    "cpu",
                    1,
                    vec![default_num("cores", 1), default_num("sockets", 1)],
                    vec![],
                ),
                block(
                    "memory",
                    1,
                    vec![
                        default_num("dedicated", 512),
                        default_num("floating", 0),
                        default_num("shared", 0),
                    ],
                    vec![],
                ),
                block(
                    "disk",
                    0,
                    vec![
                        default_str("datastore_id", "local-lvm"),
                        required("interface", Kind::Str),
                        default_num("size", 8),
                        optional_computed("file_format", Kind::Str),
                    ],
                    vec![],
                ),
                block(
                    "network_device",
                    0,
                    vec![
                        default_str("bridge", "vmbr0"),
                        default_str("model", "virtio"),
                        optional_computed("mac_address", Kind::Str),
                        default_num("vlan_id", 0),
                    ],
                    vec![],
                ),
                startup_block(),
                block(
                    "initialization",
                    1,
                    vec![
                        default_str("datastore_id", "local-lvm"),
                        default_str("interface", "ide2"),
                    ],
                    vec![
                        block(
                            "user_account",
                            1,
                            vec![
                                optional("keys", Kind::StrList).force_new(),
                                optional("password", Kind::Str).sensitive().force_new(),
                                optional("username", Kind::Str).force_new(),
                            ],
                            vec![],
                        )
                        .force_new(),
                        ip_config_block(),
                    ],
                ),
            ],
        )
    }

    fn apply(state: &mut ValueAny, prior: Option<&ValueAny>, guest: &mut Guest) {
        let vmid = guest.vmid;
        guest.set_opt("name", nonempty(get_str(state, "name")));
        write_common(guest, state, ON_BOOT);
        if let Some(n) = get_num(state, "memory.0.dedicated") {
            guest.set("memory", n.to_string());
            let floating = get_num(state, "memory.0.floating").unwrap_or(0);
            guest.set_opt("balloon", (floating > 0).then(|| floating.to_string()));
            let shared = get_num(state, "memory.0.shared").unwrap_or(0);
            guest.set_opt("shares", (shared > 0).then(|| shared.to_string()));
        }
        if let Some(n) = get_num(state, "cpu.0.cores") {
            guest.set("cores", n.to_string());
        }
        let bios = get_str(state, "bios").filter(|b| *b != "seabios");
        guest.set_opt("bios", bios.map(str::to_owned));
        guest.set_opt("machine", nonempty(get_str(state, "machine")));
        if let Some(hw) = get_str(state, "scsi_hardware") {
            guest.set("scsihw", hw);
        }
        if list_len(get(state, "agent")) > 0 {
            let enabled = get_bool(state, "agent.0.enabled").unwrap_or(false);
            let trim = get_bool(state, "agent.0.trim").unwrap_or(false);
            let kind = get_str(state, "agent.0.type").unwrap_or("virtio");
            guest.set(
                "agent",
                format!(
                    "enabled={},fstrim_cloned_disks={},type={kind}",
                    bit(enabled),
                    bit(trim)
                ),
            );
        }
        if let Some(os) = get_str(state, "operating_system.0.type") {
            guest.set("ostype", os);
        }
        if let Some(n) = get_num(state, "cpu.0.sockets") {
            guest.set("sockets", n.to_string());
        }

        // Disks: one key per interface; interfaces dropped from the plan are detached.
        let disks = list_len(get(state, "disk"));
        let mut kept = Vec::new();
        for i in 0..disks {
            let Some(iface) = get_str(state, &format!("disk.{i}.interface")).map(str::to_owned)
            else {
                continue;
            };
            let ds = get_str(state, &format!("disk.{i}.datastore_id"))
                .unwrap_or("local-lvm")
                .to_owned();
            let size = get_num(state, &format!("disk.{i}.size")).unwrap_or(8);
            let volume =
                volume_on(guest, &iface, &ds).unwrap_or_else(|| format!("{ds}:vm-{vmid}-disk-{i}"));
            guest.set(&iface, format!("{volume},size={size}G"));
            if matches!(
                get(state, &format!("disk.{i}.file_format")),
                ValueAny::Unknown | ValueAny::Null
            ) {
                set(state, &format!("disk.{i}.file_format"), s("raw"));
            }
            kept.push(iface);
        }
        if let Some(prior) = prior {
            for i in 0..list_len(get(prior, "disk")) {
                if let Some(iface) = get_str(prior, &format!("disk.{i}.interface"))
                    && !kept.iter().any(|k| k == iface)
                {
                    guest.set_opt(iface, None);
                }
            }
        }

        // Network devices: net0..netN, MAC kept from the guest or state, else generated.
        let nics = list_len(get(state, "network_device"));
        for i in 0..nics {
            let model = get_str(state, &format!("network_device.{i}.model"))
                .unwrap_or("virtio")
                .to_owned();
            let bridge = get_str(state, &format!("network_device.{i}.bridge"))
                .unwrap_or("vmbr0")
                .to_owned();
            let key = format!("net{i}");
            let existing_mac = guest.get(&key).and_then(|v| {
                parse_props(&v)
                    .into_iter()
                    .find(|(k, _)| k == &model)
                    .map(|(_, m)| m)
            });
            let mac = get_str(state, &format!("network_device.{i}.mac_address"))
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .or(existing_mac)
                .unwrap_or_else(|| mac_for(vmid, i));
            let mut value = format!("{model}={mac},bridge={bridge}");
            if let Some(tag) = get_num(state, &format!("network_device.{i}.vlan_id"))
                && tag > 0
            {
                value.push_str(&format!(",tag={tag}"));
            }
            guest.set(&key, value);
            set(state, &format!("network_device.{i}.mac_address"), s(mac));
        }
        let prior_nics = prior.map_or(0, |p| list_len(get(p, "network_device")));
        for i in nics..prior_nics {
            guest.set_opt(&format!("net{i}"), None);
        }

        // Cloud-init.
        if list_len(get(state, "initialization")) > 0 {
            let ds = get_str(state, "initialization.0.datastore_id").unwrap_or("local-lvm");
            let iface = get_str(state, "initialization.0.interface").unwrap_or("ide2");
            guest.set(iface, format!("{ds}:vm-{vmid}-cloudinit,media=cdrom"));
            let has_user = list_len(get(state, "initialization.0.user_account")) > 0;
            let keys = get_strs(state, "initialization.0.user_account.0.keys").unwrap_or_default();
            guest.set_opt(
                "sshkeys",
                (has_user && !keys.is_empty()).then(|| encode_keys(&keys)),
            );
            guest.set_opt(
                "ciuser",
                nonempty(get_str(state, "initialization.0.user_account.0.username")),
            );
            guest.set_opt(
                "cipassword",
                nonempty(get_str(state, "initialization.0.user_account.0.password")),
            );
            let addr = get_str(state, "initialization.0.ip_config.0.ipv4.0.address").unwrap_or("");
            let gw = get_str(state, "initialization.0.ip_config.0.ipv4.0.gateway").unwrap_or("");
            let mut ipconfig = Vec::new();
            if !addr.is_empty() {
                ipconfig.push(format!("ip={addr}"));
            }
            if !gw.is_empty() {
                ipconfig.push(format!("gw={gw}"));
            }
            if list_len(get(state, "initialization.0.ip_config")) > 0 {
                guest.set_opt(
                    "ipconfig0",
                    (!ipconfig.is_empty()).then(|| ipconfig.join(",")),
                );
            }
        } else if prior.is_some_and(|p| list_len(get(p, "initialization")) > 0) {
            let iface = prior
                .and_then(|p| get_str(p, "initialization.0.interface"))
                .unwrap_or("ide2")
                .to_owned();
            for key in [
                iface.as_str(),
                "sshkeys",
                "ciuser",
                "cipassword",
                "ipconfig0",
            ] {
                guest.set_opt(key, None);
            }
        }
    }

    fn refresh(prior: &ValueAny, guest: &Guest, full: bool) -> ValueAny {
        let spec = Self::spec();
        let mut st = prior.clone();
        read_common(&mut st, &spec, guest, full, ON_BOOT);
        set(&mut st, "name", str_or_empty(guest, "name"));
        if ensure_single(&mut st, &spec, "memory", full) {
            let dedicated = num(guest, "memory").unwrap_or(512);
            set(&mut st, "memory.0.dedicated", ValueAny::Number(dedicated));
            let floating = num(guest, "balloon").unwrap_or(0);
            set(&mut st, "memory.0.floating", ValueAny::Number(floating));
            let shared = num(guest, "shares").unwrap_or(0);
            set(&mut st, "memory.0.shared", ValueAny::Number(shared));
        }
        set(
            &mut st,
            "bios",
            s(guest.get("bios").unwrap_or_else(|| "seabios".to_owned())),
        );
        set(&mut st, "machine", str_or_empty(guest, "machine"));
        let scsihw = guest
            .get("scsihw")
            .unwrap_or_else(|| "virtio-scsi-pci".to_owned());
        set(&mut st, "scsi_hardware", s(scsihw));
        if matches!(get(&st, "stop_on_destroy"), ValueAny::Null) {
            set(&mut st, "stop_on_destroy", ValueAny::Bool(false));
        }
        let agent = guest.get("agent");
        if ensure_single(&mut st, &spec, "agent", full && agent.is_some()) {
            let props = parse_props(&agent.unwrap_or_default());
            let value = |key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let enabled = value("enabled").or_else(|| value("")).as_deref() == Some("1");
            let trim = value("fstrim_cloned_disks").as_deref() == Some("1");
            let kind = value("type").unwrap_or_else(|| "virtio".to_owned());
            set(&mut st, "agent.0.enabled", ValueAny::Bool(enabled));
            set(&mut st, "agent.0.trim", ValueAny::Bool(trim));
            set(&mut st, "agent.0.type", s(kind));
        }
        let ostype = guest.get("ostype");
        if ensure_single(&mut st, &spec, "operating_system", full && ostype.is_some()) {
            let os = ostype.unwrap_or_else(|| "other".to_owned());
            set(&mut st, "operating_system.0.type", s(os));
        }
        if ensure_single(&mut st, &spec, "cpu", full) {
            let cores = num(guest, "cores").unwrap_or(1);
            set(&mut st, "cpu.0.cores", ValueAny::Number(cores));
            let sockets = num(guest, "sockets").unwrap_or(1);
            set(&mut st, "cpu.0.sockets", ValueAny::Number(sockets));
        }
        refresh_disks(&mut st, &spec, guest, full);
        refresh_nics(&mut st, &spec, guest, full);
        refresh_init(&mut st, &spec, guest, full);
        st
    }
}

/// Disks in state order first (a detached one disappears), then any the guest has beyond them.
fn refresh_disks(st: &mut ValueAny, spec: &BlockSpec, guest: &Guest, full: bool) {
    let disk_spec = sub(spec, "disk");
    let prior = get(st, "disk").clone();
    let mut ifaces: Vec<String> = (0..list_len(&prior))
        .filter_map(|i| get_str(&prior, &format!("{i}.interface")).map(str::to_owned))
        .collect();
    // Disks beyond those in state show up once state manages disks at all (or after an import), so a
    // configuration without `disk` blocks (a plain clone) does not fight the template's disks.
    let manage = full || !ifaces.is_empty();
    let mut extra: Vec<String> = guest
        .config
        .keys()
        .filter(|k| manage && is_disk_key(k) && !ifaces.contains(k))
        .filter(|k| guest.get(k).is_some_and(|v| is_data_disk(&v)))
        .cloned()
        .collect();
    extra.sort_by_key(|k| {
        let bus = DISK_BUSES
            .iter()
            .position(|b| k.starts_with(b))
            .unwrap_or(9);
        let n: u32 = k
            .trim_start_matches(char::is_alphabetic)
            .parse()
            .unwrap_or(0);
        (bus, n)
    });
    ifaces.extend(extra);
    let mut out = Vec::new();
    for iface in ifaces {
        let Some(value) = guest.get(&iface) else {
            continue;
        };
        let mut elem = (0..list_len(&prior))
            .map(|i| get(&prior, &i.to_string()).clone())
            .find(|e| get_str(e, "interface") == Some(iface.as_str()))
            .unwrap_or_else(|| disk_spec.skeleton());
        let volume = parse_props(&value)
            .into_iter()
            .find(|(k, _)| k.is_empty())
            .map(|(_, v)| v)
            .unwrap_or_default();
        let ds = volume.split(':').next().unwrap_or_default().to_owned();
        let size = prop(&value, "size").and_then(|v| size_gb(&v)).unwrap_or(0);
        set(&mut elem, "interface", s(iface));
        set(&mut elem, "datastore_id", s(ds));
        set(&mut elem, "size", ValueAny::Number(size));
        let format = prop(&value, "format").unwrap_or_else(|| "raw".to_owned());
        set(&mut elem, "file_format", s(format));
        out.push(elem);
    }
    set(st, "disk", ValueAny::List(out));
}

/// One element per `netN` key, in index order.
fn refresh_nics(st: &mut ValueAny, spec: &BlockSpec, guest: &Guest, full: bool) {
    let nic_spec = sub(spec, "network_device");
    let prior = get(st, "network_device").clone();
    // As for disks: only once state manages network devices (or after an import).
    if !full && list_len(&prior) == 0 {
        return;
    }
    let mut out = Vec::new();
    for i in 0.. {
        let Some(value) = guest.get(&format!("net{i}")) else {
            break;
        };
        let mut elem = crate::spec::element(&prior, i)
            .cloned()
            .unwrap_or_else(|| nic_spec.skeleton());
        let props = parse_props(&value);
        if let Some((model, mac)) = props.first() {
            set(&mut elem, "model", s(model.clone()));
            set(&mut elem, "mac_address", s(mac.clone()));
        }
        set(
            &mut elem,
            "bridge",
            s(prop(&value, "bridge").unwrap_or_default()),
        );
        let tag = prop(&value, "tag")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        set(&mut elem, "vlan_id", ValueAny::Number(tag));
        out.push(elem);
    }
    set(st, "network_device", ValueAny::List(out));
}

/// Cloud-init: present when state has it or (after an import) the guest has cloud-init keys.
fn refresh_init(st: &mut ValueAny, spec: &BlockSpec, guest: &Guest, full: bool) {
    let has_ci = ["sshkeys", "ciuser", "ipconfig0"]
        .iter()
        .any(|k| guest.config.contains_key(*k));
    if !ensure_single(st, spec, "initialization", full && has_ci) {
        return;
    }
    let iface = get_str(st, "initialization.0.interface")
        .unwrap_or("ide2")
        .to_owned();
    if let Some(value) = guest.get(&iface) {
        let ds = value.split(':').next().unwrap_or_default().to_owned();
        set(st, "initialization.0.datastore_id", s(ds));
    } else if matches!(get(st, "initialization.0.datastore_id"), ValueAny::Null) {
        set(st, "initialization.0.datastore_id", s("local-lvm"));
    }
    set(st, "initialization.0.interface", s(iface));
    let has_user = guest.config.contains_key("sshkeys") || guest.config.contains_key("ciuser");
    if ensure_single(st, spec, "initialization.0.user_account", full && has_user) {
        let keys = guest.get("sshkeys").map(|k| decode_keys(&k));
        let value = match keys {
            Some(k) => strs(k),
            None if matches!(
                get(st, "initialization.0.user_account.0.keys"),
                ValueAny::Null
            ) =>
            {
                ValueAny::Null
            }
            None => strs(Vec::<String>::new()),
        };
        set(st, "initialization.0.user_account.0.keys", value);
        let user = guest.get("ciuser").map_or(ValueAny::Null, s);
        set(st, "initialization.0.user_account.0.username", user);
    }
    let ipconfig = guest.get("ipconfig0");
    ensure_ip_config(st, spec, full && ipconfig.is_some());
    if list_len(get(st, "initialization.0.ip_config.0.ipv4")) > 0 {
        let text = ipconfig.unwrap_or_default();
        let addr = prop(&text, "ip").unwrap_or_default();
        let gw = prop(&text, "gw").unwrap_or_default();
        set(st, "initialization.0.ip_config.0.ipv4.0.address", s(addr));
        set(st, "initialization.0.ip_config.0.ipv4.0.gateway", s(gw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_keys() {
        assert!(is_disk_key("scsi0"));
        assert!(is_disk_key("virtio12"));
        assert!(!is_disk_key("scsihw"));
        assert!(!is_disk_key("net0"));
    }
}
