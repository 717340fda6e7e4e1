//! `proxmox_virtual_environment_container`: a subset of bpg/proxmox's container schema over `lxc` guests.
//!
//! Follows bpg's SDKv2 schema (`proxmoxtf/resource/container`): `start_on_boot` and `started` default to
//! true, `unprivileged` to false (ForceNew), `memory.dedicated` to 512 and `swap` to 0, `cpu.cores` to 1,
//! `disk.datastore_id` to `local` (ForceNew) and `size` to 4, `operating_system.type` to `unmanaged`;
//! `operating_system.template_file_id` is required and ForceNew. Proxmox does not report the template a
//! container came from, so Read keeps it from state, as bpg does.

use tf_provider::value::ValueAny;

use crate::mapping::{
    bit, common_attributes, ensure_ip_config, ensure_single, flag, ip_config_block, mac_for, num,
    read_common, startup_block, str_or_empty, sub, volume_on, write_common,
};
use crate::resource::GuestMapping;
use crate::simstate::{Guest, prop, size_gb};
use crate::spec::{
    BlockSpec, Kind, block, default_bool, default_num, default_str, element, get, get_bool,
    get_num, get_str, list_len, optional, optional_computed, required, s, set,
};

/// The container resource's mapping.
pub struct Container;

/// bpg's name for `onboot` on containers.
const ON_BOOT: &str = "start_on_boot";

impl GuestMapping for Container {
    const TYPE: &'static str = "lxc";
    const DESCRIPTION: &'static str =
        "An LXC container on the simulated Proxmox node (subset of bpg/proxmox)";

    fn spec() -> BlockSpec {
        block(
            "",
            0,
            common_attributes(
                ON_BOOT,
                vec![default_bool("unprivileged", false).force_new()],
            ),
            vec![
                block(
                    "clone",
                    1,
                    vec![
                        required("vm_id", Kind::Num),
                        default_str("datastore_id", ""),
                    ],
                    vec![],
                )
                .force_new(),
                block("cpu", 1, vec![default_num("cores", 1)], vec![]),
                block(
                    "memory",
                    1,
                    vec![default_num("dedicated", 512), default_num("swap", 0)],
                    vec![],
                ),
                block(
                    "disk",
                    1,
                    vec![
                        default_str("datastore_id", "local").force_new(),
                        default_num("size", 4),
                    ],
                    vec![],
                ),
                block(
                    "operating_system",
                    1,
                    vec![
                        required("template_file_id", Kind::Str).force_new(),
                        default_str("type", "unmanaged").force_new(),
                    ],
                    vec![],
                ),
                block(
                    "initialization",
                    1,
                    vec![optional_computed("hostname", Kind::Str)],
                    vec![
                        block(
                            "user_account",
                            1,
                            vec![
                                optional("keys", Kind::StrList).force_new(),
                                optional("password", Kind::Str).sensitive().force_new(),
                            ],
                            vec![],
                        )
                        .force_new(),
                        ip_config_block(),
                    ],
                ),
                block(
                    "network_interface",
                    0,
                    vec![
                        required("name", Kind::Str),
                        default_str("bridge", "vmbr0"),
                        optional_computed("mac_address", Kind::Str),
                    ],
                    vec![],
                ),
                startup_block(),
            ],
        )
    }

    fn apply(state: &mut ValueAny, prior: Option<&ValueAny>, guest: &mut Guest) {
        let vmid = guest.vmid;
        write_common(guest, state, ON_BOOT);
        guest.set(
            "unprivileged",
            bit(get_bool(state, "unprivileged").unwrap_or(false)),
        );
        if let Some(n) = get_num(state, "memory.0.dedicated") {
            guest.set("memory", n.to_string());
        }
        if let Some(n) = get_num(state, "memory.0.swap") {
            guest.set("swap", n.to_string());
        }
        if let Some(n) = get_num(state, "cpu.0.cores") {
            guest.set("cores", n.to_string());
        }
        if list_len(get(state, "disk")) > 0 {
            let ds = get_str(state, "disk.0.datastore_id").unwrap_or("local");
            let size = get_num(state, "disk.0.size").unwrap_or(4);
            let volume = volume_on(guest, "rootfs", ds)
                .unwrap_or_else(|| format!("{ds}:subvol-{vmid}-disk-0"));
            guest.set("rootfs", format!("{volume},size={size}G"));
        }
        if let Some(os) = get_str(state, "operating_system.0.type") {
            guest.set("ostype", os);
        }
        if let Some(host) = get_str(state, "initialization.0.hostname")
            && !host.is_empty()
        {
            guest.set("hostname", host);
        } else if list_len(get(state, "initialization")) > 0 {
            let host = guest.get("hostname").unwrap_or_else(|| format!("CT{vmid}"));
            guest.set("hostname", host.clone());
            set(state, "initialization.0.hostname", s(host));
        }

        let nics = list_len(get(state, "network_interface"));
        for i in 0..nics {
            let key = format!("net{i}");
            let name = get_str(state, &format!("network_interface.{i}.name"))
                .unwrap_or("eth0")
                .to_owned();
            let bridge = get_str(state, &format!("network_interface.{i}.bridge"))
                .unwrap_or("vmbr0")
                .to_owned();
            let existing = guest.get(&key);
            let mac = get_str(state, &format!("network_interface.{i}.mac_address"))
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .or_else(|| existing.as_deref().and_then(|v| prop(v, "hwaddr")))
                .unwrap_or_else(|| mac_for(vmid, i));
            let mut value = format!("name={name},bridge={bridge},hwaddr={mac}");
            if i == 0 {
                let addr = get_str(state, "initialization.0.ip_config.0.ipv4.0.address")
                    .filter(|a| !a.is_empty());
                let gw = get_str(state, "initialization.0.ip_config.0.ipv4.0.gateway")
                    .filter(|g| !g.is_empty());
                match addr {
                    Some(a) => value.push_str(&format!(",ip={a}")),
                    None => value.push_str(",ip=dhcp"),
                }
                if let Some(g) = gw {
                    value.push_str(&format!(",gw={g}"));
                }
            }
            guest.set(&key, value);
            set(state, &format!("network_interface.{i}.mac_address"), s(mac));
        }
        let prior_nics = prior.map_or(0, |p| list_len(get(p, "network_interface")));
        for i in nics..prior_nics {
            guest.set_opt(&format!("net{i}"), None);
        }
    }

    fn refresh(prior: &ValueAny, guest: &Guest, full: bool) -> ValueAny {
        let spec = Self::spec();
        let mut st = prior.clone();
        read_common(&mut st, &spec, guest, full, ON_BOOT);
        set(
            &mut st,
            "unprivileged",
            ValueAny::Bool(flag(guest, "unprivileged").unwrap_or(false)),
        );
        if ensure_single(&mut st, &spec, "memory", full) {
            let dedicated = num(guest, "memory").unwrap_or(512);
            set(&mut st, "memory.0.dedicated", ValueAny::Number(dedicated));
            let swap = num(guest, "swap").unwrap_or(512);
            set(&mut st, "memory.0.swap", ValueAny::Number(swap));
        }
        if ensure_single(&mut st, &spec, "cpu", full) {
            let cores = num(guest, "cores").unwrap_or(1);
            set(&mut st, "cpu.0.cores", ValueAny::Number(cores));
        }
        if let Some(rootfs) = guest.get("rootfs")
            && ensure_single(&mut st, &spec, "disk", full)
        {
            let ds = rootfs.split(':').next().unwrap_or_default().to_owned();
            let size = prop(&rootfs, "size").and_then(|v| size_gb(&v)).unwrap_or(0);
            set(&mut st, "disk.0.datastore_id", s(ds));
            set(&mut st, "disk.0.size", ValueAny::Number(size));
        }
        if let Some(os) = guest.get("ostype")
            && ensure_single(&mut st, &spec, "operating_system", full)
        {
            set(&mut st, "operating_system.0.type", s(os));
        }
        if ensure_single(&mut st, &spec, "initialization", full) {
            set(
                &mut st,
                "initialization.0.hostname",
                str_or_empty(guest, "hostname"),
            );
            let net0 = guest.get("net0").unwrap_or_default();
            let static_ip = prop(&net0, "ip").filter(|ip| ip != "dhcp");
            ensure_ip_config(&mut st, &spec, full && static_ip.is_some());
            if list_len(get(&st, "initialization.0.ip_config.0.ipv4")) > 0 {
                let gw = prop(&net0, "gw").unwrap_or_default();
                // `ip=dhcp` is what both `address = "dhcp"` and an unset address write.
                let address = match prop(&net0, "ip") {
                    Some(ip) if ip == "dhcp" => {
                        match get_str(&st, "initialization.0.ip_config.0.ipv4.0.address") {
                            Some("") => String::new(),
                            _ => ip,
                        }
                    }
                    other => other.unwrap_or_default(),
                };
                set(
                    &mut st,
                    "initialization.0.ip_config.0.ipv4.0.address",
                    s(address),
                );
                set(
                    &mut st,
                    "initialization.0.ip_config.0.ipv4.0.gateway",
                    s(gw),
                );
            }
        }
        let nic_spec = sub(&spec, "network_interface");
        let prior_nics = get(&st, "network_interface").clone();
        let mut nics = Vec::new();
        let manage = full || list_len(&prior_nics) > 0;
        for i in 0.. {
            if !manage {
                break;
            }
            let Some(value) = guest.get(&format!("net{i}")) else {
                break;
            };
            let mut elem = element(&prior_nics, i)
                .cloned()
                .unwrap_or_else(|| nic_spec.skeleton());
            set(
                &mut elem,
                "name",
                s(prop(&value, "name").unwrap_or_default()),
            );
            set(
                &mut elem,
                "bridge",
                s(prop(&value, "bridge").unwrap_or_default()),
            );
            set(
                &mut elem,
                "mac_address",
                s(prop(&value, "hwaddr").unwrap_or_default()),
            );
            nics.push(elem);
        }
        set(&mut st, "network_interface", ValueAny::List(nics));
        st
    }
}
