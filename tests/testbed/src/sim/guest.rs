//! `qm` and `pct`: status, config, list, start, stop, shutdown, destroy, set, create (and `pct restore`,
//! which lives in `restore.rs`), plus the guest JSON shapes `pvesh` returns.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::args::{self, Args};
use super::conf;
use super::state::{Guest, GuestType};
use super::{CmdResult, Ctx, Fail, restore};

/// Loads a guest of `kind` or fails with Proxmox's "Configuration file ... does not exist".
pub(crate) fn load(ctx: &Ctx, kind: GuestType, id: &str) -> Result<Guest, Fail> {
    let missing = || {
        Fail::new(format!(
            "Configuration file 'nodes/{}/{}/{id}.conf' does not exist",
            ctx.node.node,
            conf_dir(kind)
        ))
    };
    let vmid: u32 = id
        .parse()
        .map_err(|_| Fail::new("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID"))?;
    match ctx.state.guest(vmid)? {
        Some(g) if g.kind == kind => Ok(g),
        _ => Err(missing()),
    }
}

/// The directory of a guest's configuration under `/etc/pve/nodes/<node>/`.
fn conf_dir(kind: GuestType) -> &'static str {
    match kind {
        GuestType::Qemu => "qemu-server",
        GuestType::Lxc => "lxc",
    }
}

fn mem_bytes(g: &Guest) -> u64 {
    g.config
        .get("memory")
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(512)
        << 20
}

fn cpus(g: &Guest) -> u64 {
    let cores = g.config.get("cores").and_then(|c| c.parse::<u64>().ok());
    match g.kind {
        GuestType::Qemu => {
            cores.unwrap_or(1)
                * g.config
                    .get("sockets")
                    .and_then(|c| c.parse::<u64>().ok())
                    .unwrap_or(1)
        }
        GuestType::Lxc => cores.unwrap_or(1),
    }
}

/// Size of the boot disk (VM) or rootfs (CT).
fn maxdisk(g: &Guest) -> u64 {
    let disks = conf::disks(&g.config);
    let pick = match g.kind {
        GuestType::Lxc => disks.iter().find(|d| d.key == "rootfs"),
        GuestType::Qemu => {
            let boot = g
                .config
                .get("boot")
                .and_then(|b| b.strip_prefix("order="))
                .and_then(|o| o.split(';').find(|d| disks.iter().any(|x| x.key == *d)))
                .map(str::to_string)
                .or_else(|| g.config.get("bootdisk").cloned());
            boot.and_then(|b| disks.iter().find(|d| d.key == b))
                .or_else(|| {
                    ["scsi0", "virtio0", "sata0", "ide0"]
                        .iter()
                        .find_map(|k| disks.iter().find(|d| d.key == *k))
                })
        }
    };
    pick.map_or(0, |d| d.size)
}

fn running(g: &Guest) -> bool {
    g.status == "running"
}

/// `GET /nodes/{node}/{qemu|lxc}/{vmid}/status/current` (and the per-node lists).
pub(crate) fn guest_status_json(g: &Guest) -> Value {
    let run = running(g);
    let mut v = json!({
        "vmid": g.vmid,
        "name": g.name(),
        "status": g.status,
        "cpus": cpus(g),
        "cpu": if run { 0.0123 } else { 0.0 },
        "maxmem": mem_bytes(g),
        "mem": if run { mem_bytes(g) / 4 } else { 0 },
        "maxdisk": maxdisk(g),
        "disk": 0,
        "uptime": if run { 3600 } else { 0 },
        "netin": 0,
        "netout": 0,
        "diskread": 0,
        "diskwrite": 0,
        "ha": {"managed": 0},
    });
    let Some(o) = v.as_object_mut() else { return v };
    match g.kind {
        GuestType::Qemu => {
            o.insert("qmpstatus".into(), json!(g.status));
            if run {
                o.insert("pid".into(), json!(10_000 + g.vmid));
                o.insert("running-machine".into(), json!("pc-i440fx-9.0+pve0"));
                o.insert("running-qemu".into(), json!("9.0.2"));
            }
        }
        GuestType::Lxc => {
            o.insert("type".into(), json!("lxc"));
            let swap = g
                .config
                .get("swap")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(512)
                << 20;
            o.insert("maxswap".into(), json!(swap));
            o.insert("swap".into(), json!(0));
            if run {
                o.insert("pid".into(), json!(10_000 + g.vmid));
            }
        }
    }
    if let Some(l) = &g.lock {
        o.insert("lock".into(), json!(l));
    }
    if let Some(t) = g.config.get("tags") {
        o.insert("tags".into(), json!(t));
    }
    if g.template {
        o.insert("template".into(), json!(1));
    }
    v
}

/// An entry of `GET /cluster/resources --type vm`.
pub(crate) fn resource_json(g: &Guest) -> Value {
    let run = running(g);
    let mut v = json!({
        "id": format!("{}/{}", g.kind.as_str(), g.vmid),
        "vmid": g.vmid,
        "node": g.node,
        "type": g.kind.as_str(),
        "status": g.status,
        "name": g.name(),
        "template": u8::from(g.template),
        "maxmem": mem_bytes(g),
        "mem": if run { mem_bytes(g) / 4 } else { 0 },
        "maxdisk": maxdisk(g),
        "disk": 0,
        "maxcpu": cpus(g),
        "cpu": if run { 0.0123 } else { 0.0 },
        "uptime": if run { 3600 } else { 0 },
        "netin": 0,
        "netout": 0,
        "diskread": 0,
        "diskwrite": 0,
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = g.config.get("tags") {
            o.insert("tags".into(), json!(t));
        }
        if let Some(l) = &g.lock {
            o.insert("lock".into(), json!(l));
        }
    }
    v
}

/// `GET .../config`: numeric keys as numbers, plus a digest.
pub(crate) fn config_json(g: &Guest) -> Value {
    use sha2::Digest;
    let mut o = Map::new();
    for (k, v) in &g.config {
        let value = if conf::is_numeric_key(k) {
            v.parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(v))
        } else {
            json!(v)
        };
        o.insert(k.clone(), value);
    }
    if let Some(l) = &g.lock {
        o.insert("lock".into(), json!(l));
    }
    if g.template {
        o.insert("template".into(), json!(1));
    }
    let digest = sha2::Sha256::digest(conf::render(&g.config).as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    o.insert("digest".into(), json!(hex));
    Value::Object(o)
}

/// `qm config` / `pct config` text: sorted `key: value` lines (description first, as `#` lines
/// become a `description:` key in the CLI output).
fn config_text(g: &Guest) -> String {
    let mut lines: BTreeMap<String, String> = g.config.clone();
    if let Some(l) = &g.lock {
        lines.insert("lock".into(), l.clone());
    }
    if g.template {
        lines.insert("template".into(), "1".into());
    }
    let mut out = String::new();
    for (k, v) in &lines {
        let v = if k == "description" {
            v.replace('\n', "\\n")
        } else {
            v.clone()
        };
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

fn need_vmid<'a>(a: &'a Args, usage: &str) -> Result<&'a str, Fail> {
    a.pos
        .first()
        .map(String::as_str)
        .ok_or_else(|| Fail::new(format!("400 not enough arguments\n{usage}")))
}

fn check_lock(g: &Guest, a: &Args) -> Result<(), Fail> {
    match &g.lock {
        Some(l) if !a.flag("skiplock") => {
            Err(Fail::new(format!("{} is locked ({l})", g.kind.label())))
        }
        _ => Ok(()),
    }
}

/// Removes a guest's disks (adjusting storage usage) and prints what LVM/ZFS would print.
pub(crate) fn destroy_disks(ctx: &mut Ctx, g: &Guest) -> Result<(), Fail> {
    for d in conf::disks(&g.config) {
        ctx.state
            .adjust_used_extra(&d.storage, -i128::from(d.size))?;
        let kind = ctx
            .state
            .storage(&d.storage)?
            .map(|s| s.kind)
            .unwrap_or_default();
        let vol = d.volume.rsplit('/').next().unwrap_or(&d.volume).to_string();
        if kind == "lvmthin" || kind == "lvm" {
            ctx.say(format!("  Logical volume \"{vol}\" successfully removed."));
        }
    }
    Ok(())
}

/// Allocates a new volume name on `storage` for `vmid` (`vm-<vmid>-disk-<n>`, `subvol-` for CT on zfs).
pub(crate) fn alloc_volume(
    ctx: &mut Ctx,
    storage: &str,
    vmid: u32,
    n: usize,
    size: u64,
    kind: GuestType,
) -> Result<String, Fail> {
    let def = ctx
        .state
        .storage(storage)?
        .ok_or_else(|| Fail::new(format!("storage '{storage}' does not exist")))?;
    let volume = match (def.kind.as_str(), kind) {
        ("zfspool", GuestType::Lxc) => format!("subvol-{vmid}-disk-{n}"),
        ("dir" | "nfs", _) => format!("{vmid}/vm-{vmid}-disk-{n}.raw"),
        _ => format!("vm-{vmid}-disk-{n}"),
    };
    if def.kind == "lvmthin" || def.kind == "lvm" {
        ctx.say(format!("  Logical volume \"vm-{vmid}-disk-{n}\" created."));
    }
    ctx.state.adjust_used_extra(storage, i128::from(size))?;
    Ok(format!("{storage}:{volume}"))
}

fn list(ctx: &mut Ctx, kind: GuestType) -> CmdResult {
    let guests: Vec<Guest> = ctx
        .state
        .guests()?
        .into_iter()
        .filter(|g| g.kind == kind)
        .collect();
    match kind {
        GuestType::Qemu => {
            if guests.is_empty() {
                return Ok(0);
            }
            ctx.say(format!(
                "{:>10} {:<20} {:<10} {:<10} {:>12} {:<10}",
                "VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID"
            ));
            for g in guests {
                let name: String = g.name().chars().take(20).collect();
                let pid = if running(&g) { 10_000 + g.vmid } else { 0 };
                ctx.say(format!(
                    "{:>10} {:<20} {:<10} {:<10} {:>12.2} {:<10}",
                    g.vmid,
                    name,
                    g.status,
                    mem_bytes(&g) >> 20,
                    maxdisk(&g) as f64 / (1u64 << 30) as f64,
                    pid
                ));
            }
        }
        GuestType::Lxc => {
            // pct prints its header even for an empty list (qm prints nothing).
            ctx.say(format!(
                "{:<10} {:<10} {:<12} {:<20}",
                "VMID", "Status", "Lock", "Name"
            ));
            for g in guests {
                let lock = g.lock.clone().unwrap_or_default();
                ctx.say(format!(
                    "{:<10} {:<10} {:<12} {:<20}",
                    g.vmid,
                    g.status,
                    lock,
                    g.name()
                ));
            }
        }
    }
    Ok(0)
}

fn set_status(ctx: &mut Ctx, mut g: Guest, status: &str) -> CmdResult {
    g.status = status.into();
    ctx.state.save_guest(&g)?;
    Ok(0)
}

fn config_updates(a: &Args, skip: &[&str]) -> Vec<(String, String)> {
    a.opts
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .cloned()
        .collect()
}

fn set(ctx: &mut Ctx, mut g: Guest, a: &Args) -> CmdResult {
    check_lock(&g, a)?;
    let updates = config_updates(a, &["skiplock", "delete", "digest", "revert", "force"]);
    let deletes: Vec<String> = a
        .get("delete")
        .map(|d| {
            d.split([',', ';', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if updates.is_empty() && deletes.is_empty() {
        return Err(Fail::new("no options specified"));
    }
    if g.kind == GuestType::Qemu {
        let shown: Vec<String> = a
            .opts
            .iter()
            .flat_map(|(k, v)| [format!("-{k}"), v.clone()])
            .collect();
        ctx.say(format!("update VM {}: {}", g.vmid, shown.join(" ")));
    }
    for (k, v) in updates {
        g.config.insert(k, v);
    }
    for k in deletes {
        g.config.remove(&k);
    }
    ctx.state.save_guest(&g)?;
    Ok(0)
}

fn destroy(ctx: &mut Ctx, g: Guest, a: &Args) -> CmdResult {
    let label = g.kind.label();
    if g.protected() {
        return Err(Fail::new(format!(
            "can't remove {label} {} - protection mode enabled",
            g.vmid
        )));
    }
    if running(&g) {
        return Err(Fail::new(match g.kind {
            GuestType::Qemu => format!("VM {} is running - destroy failed", g.vmid),
            GuestType::Lxc => format!("unable to destroy CT {} - container is running", g.vmid),
        }));
    }
    check_lock(&g, a)?;
    destroy_disks(ctx, &g)?;
    if a.flag("purge") {
        ctx.say(format!(
            "purging {label} {} from related configurations..",
            g.vmid
        ));
    }
    ctx.state.remove_guest(g.vmid)?;
    Ok(0)
}

fn create(ctx: &mut Ctx, kind: GuestType, a: &Args) -> CmdResult {
    let id = need_vmid(a, "create <vmid> [OPTIONS]")?;
    let vmid: u32 = id
        .parse()
        .map_err(|_| Fail::new("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID"))?;
    let emsg = format!("unable to create {} {vmid} -", kind.label());
    if let Some(existing) = ctx.state.guest(vmid)? {
        return Err(Fail::new(format!(
            "{emsg} {} {vmid} already exists on node '{}'",
            existing.kind.label(),
            existing.node
        )));
    }
    let default_storage = a.get("storage").unwrap_or("local").to_string();
    let mut g = Guest::new(vmid, kind, &ctx.node.node, &[]);
    let mut disk_n = 0;
    for (k, v) in config_updates(
        a,
        &[
            "storage",
            "start",
            "unique",
            "pool",
            "password",
            "ssh-public-keys",
        ],
    ) {
        let value = if conf::is_disk_key(&k) {
            // `local-lvm:32` (or `32` on the default storage) allocates a new disk of that many GiB.
            let (storage, spec) = match v.split_once(':') {
                Some((s, rest)) => (s.to_string(), rest.to_string()),
                None => (default_storage.clone(), v.clone()),
            };
            let (size_str, opts) = spec
                .split_once(',')
                .map_or((spec.as_str(), ""), |(s, o)| (s, o));
            match size_str.parse::<f64>() {
                Ok(gib) => {
                    let size = (gib * (1u64 << 30) as f64) as u64;
                    let vol = alloc_volume(ctx, &storage, vmid, disk_n, size, kind)?;
                    disk_n += 1;
                    let mut s = format!("{vol},size={}", conf::format_size(size));
                    if !opts.is_empty() {
                        s = format!("{vol},{opts},size={}", conf::format_size(size));
                    }
                    s
                }
                Err(_) => v.clone(),
            }
        } else if k.starts_with("net") && !v.contains(':') {
            let mac = conf::random_mac(u64::from(vmid));
            match kind {
                GuestType::Qemu => match v.split_once(',') {
                    Some((model, rest)) if !model.contains('=') => format!("{model}={mac},{rest}"),
                    _ => v.clone(),
                },
                GuestType::Lxc => format!("{v},hwaddr={mac}"),
            }
        } else {
            v.clone()
        };
        g.config.insert(k, value);
    }
    if kind == GuestType::Lxc {
        if let Some(t) = a.pos.get(1) {
            g.config.entry("ostype".into()).or_insert_with(|| {
                if t.contains("alpine") {
                    "alpine"
                } else {
                    "debian"
                }
                .to_string()
            });
        }
        g.config
            .entry("hostname".into())
            .or_insert_with(|| format!("CT{vmid}"));
        g.config
            .entry("memory".into())
            .or_insert_with(|| "512".into());
        g.config
            .entry("swap".into())
            .or_insert_with(|| "512".into());
        g.config
            .entry("arch".into())
            .or_insert_with(|| "amd64".into());
    }
    if a.flag("start") {
        g.status = "running".into();
    }
    ctx.state.save_guest(&g)?;
    Ok(0)
}

fn common(ctx: &mut Ctx, kind: GuestType, argv: &[String]) -> CmdResult {
    let cmd = if kind == GuestType::Qemu { "qm" } else { "pct" };
    let Some(sub) = argv.first() else {
        return Err(Fail::new(format!(
            "ERROR: no command specified\nUSAGE: {cmd} <COMMAND> [ARGS] [OPTIONS]"
        )));
    };
    let a = args::parse(&argv[1..]);
    match sub.as_str() {
        "list" => return list(ctx, kind),
        "create" => return create(ctx, kind, &a),
        "restore" if kind == GuestType::Lxc => return restore::pct_restore(ctx, &a),
        // `qm guest cmd <vmid> <command>` and its older spelling `qm agent <vmid> <command>`.
        "guest" if kind == GuestType::Qemu && a.pos.first().is_some_and(|c| c == "cmd") => {
            return agent_command(ctx, &a.pos[1..]);
        }
        "agent" if kind == GuestType::Qemu => return agent_command(ctx, &a.pos),
        "exec" if kind == GuestType::Lxc => return pct_exec(ctx, &argv[1..]),
        _ => {}
    }
    let known = [
        "status",
        "config",
        "start",
        "stop",
        "shutdown",
        "destroy",
        "set",
        "reboot",
        "suspend",
        "resume",
        "unlock",
        "snapshot",
        "delsnapshot",
        "listsnapshot",
        "rollback",
    ];
    if !known.contains(&sub.as_str()) {
        return Err(Fail::new(format!("unknown command '{cmd} {sub}'")));
    }
    let id = need_vmid(&a, &format!("{cmd} {sub} <vmid>"))?;
    let g = load(ctx, kind, id)?;
    let label = kind.label();
    match sub.as_str() {
        "status" => {
            ctx.say(format!("status: {}", g.status));
            Ok(0)
        }
        "config" => {
            let text = config_text(&g);
            ctx.out.extend_from_slice(text.as_bytes());
            Ok(0)
        }
        "start" | "resume" => {
            check_lock(&g, &a)?;
            if running(&g) {
                return Err(Fail::new(format!("{label} {} already running", g.vmid)));
            }
            if g.template {
                return Err(Fail::new(format!(
                    "you can't start a {label} if it's a template"
                )));
            }
            set_status(ctx, g, "running")
        }
        "stop" | "shutdown" | "suspend" => {
            check_lock(&g, &a)?;
            if !running(&g) && sub != "stop" {
                return Err(Fail::new(format!("{label} {} not running", g.vmid)));
            }
            set_status(ctx, g, "stopped")
        }
        "reboot" => {
            check_lock(&g, &a)?;
            Ok(0)
        }
        "destroy" => destroy(ctx, g, &a),
        "snapshot" | "delsnapshot" | "listsnapshot" | "rollback" => snapshots(ctx, g, sub, &a),
        "unlock" => {
            let mut g = g;
            g.lock = None;
            ctx.state.save_guest(&g)?;
            Ok(0)
        }
        _ => set(ctx, g, &a),
    }
}

/// `snapshot|delsnapshot|rollback <vmid> <name>` and `listsnapshot <vmid>` (names only: the
/// simulator keeps no snapshot times or descriptions).
fn snapshots(ctx: &mut Ctx, mut g: Guest, sub: &str, a: &Args) -> CmdResult {
    if sub == "listsnapshot" {
        for s in &g.snapshots {
            ctx.say(format!("`-> {s:<40}no-description"));
        }
        ctx.say(format!(
            "{}`-> current{:<33}You are here!",
            " ".repeat(g.snapshots.len().min(1)),
            ""
        ));
        return Ok(0);
    }
    let Some(name) = a.pos.get(1).cloned() else {
        return Err(Fail::new(format!(
            "400 not enough arguments\n{sub} <vmid> <snapname>"
        )));
    };
    check_lock(&g, a)?;
    let exists = g.snapshots.contains(&name);
    match sub {
        "snapshot" => {
            if exists {
                return Err(Fail::new(format!("snapshot name '{name}' already used")));
            }
            for d in conf::disks(&g.config) {
                if g.kind == GuestType::Qemu {
                    ctx.say(format!(
                        "snapshotting 'drive-{}' ({}:{})",
                        d.key, d.storage, d.volume
                    ));
                }
            }
            g.snapshots.push(name);
        }
        _ if !exists => return Err(Fail::new(format!("snapshot '{name}' does not exist"))),
        "delsnapshot" => g.snapshots.retain(|s| *s != name),
        _ => {
            if g.status == "running" && g.kind == GuestType::Lxc {
                g.status = "stopped".into();
            }
        }
    }
    ctx.state.save_guest(&g)?;
    Ok(0)
}

/// Whether the guest agent is enabled in a VM's `agent` option (`1`, `enabled=1,fstrim_cloned_disks=1`;
/// `0` or `enabled=0` leave it off).
fn agent_enabled(value: &str) -> bool {
    let first = value.split(',').next().unwrap_or("");
    let enabled = first.strip_prefix("enabled=").unwrap_or(first);
    matches!(enabled, "1" | "yes" | "on" | "true")
}

/// `qm guest cmd <vmid> <command>`, with the checks of qemu-server's `assert_agent_available` in its
/// order and words (exit 255 through the CLI handler). Only `ping` is simulated: a running agent answers
/// an empty object, which `qm` prints as nothing. Whether the agent inside the guest runs is the guest
/// file's `agent_running` (a simulator extension, default true).
fn agent_command(ctx: &mut Ctx, pos: &[String]) -> CmdResult {
    let (Some(id), Some(command)) = (pos.first(), pos.get(1)) else {
        return Err(Fail::new(
            "400 not enough arguments\nqm guest cmd <vmid> <command>",
        ));
    };
    let g = load(ctx, GuestType::Qemu, id)?;
    let Some(agent) = g.config.get("agent") else {
        return Err(Fail::new("No QEMU guest agent configured"));
    };
    if !running(&g) {
        return Err(Fail::new(format!("VM {} is not running", g.vmid)));
    }
    let agent_runs = g
        .extra
        .get("agent_running")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !agent_enabled(agent) || !agent_runs {
        return Err(Fail::new("QEMU guest agent is not running"));
    }
    match command.as_str() {
        "ping" => Ok(0),
        other => Err(Fail::new(format!(
            "pve-sim: 'qm guest cmd {other}' is not simulated (only 'ping')"
        ))),
    }
}

/// `pct exec <vmid> [--] <command...>`: pct's checks (the container exists here, it runs); the command
/// itself cannot run in a simulated container, so only `true` is simulated (exit 0).
fn pct_exec(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    let Some(id) = argv.first() else {
        return Err(Fail::new(
            "400 not enough arguments\npct exec <vmid> [<extra-args>]",
        ));
    };
    let g = load(ctx, GuestType::Lxc, id)?;
    if !running(&g) {
        return Err(Fail::new(format!("container '{}' not running!", g.vmid)));
    }
    let command: Vec<&str> = argv[1..]
        .iter()
        .map(String::as_str)
        .skip_while(|a| *a == "--")
        .collect();
    match command.as_slice() {
        [] => Err(Fail::new("missing command")),
        ["true"] => Ok(0),
        other => Err(Fail::new(format!(
            "pve-sim: 'pct exec {} -- {}' is not simulated (only 'true')",
            g.vmid,
            other.join(" ")
        ))),
    }
}

/// `qm ...`.
pub(crate) fn qm(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    common(ctx, GuestType::Qemu, argv)
}

/// `pct ...`.
pub(crate) fn pct(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    common(ctx, GuestType::Lxc, argv)
}
