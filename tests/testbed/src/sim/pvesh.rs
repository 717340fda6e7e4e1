//! `pvesh get <path>` for the API paths the tools read, with Proxmox's JSON shapes and errors.

use serde_json::{Value, json};

use super::args;
use super::guest::{self, config_json, guest_status_json};
use super::state::{GuestType, State, StorageDef};
use super::{CmdResult, Ctx, Fail};

pub(crate) fn main(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    let Some(verb) = argv.first() else {
        return Err(Fail::new("ERROR: no command specified"));
    };
    if verb != "get" && verb != "ls" {
        return Err(Fail::new(format!(
            "pve-sim: 'pvesh {verb}' is not simulated (only 'get')"
        )));
    }
    let a = args::parse(&argv[1..]);
    let Some(path) = a.pos.first() else {
        return Err(Fail::new(
            "400 not enough arguments\npvesh get <api_path> [OPTIONS] [FORMAT_OPTIONS]",
        ));
    };
    let value = canonical(get(ctx, path, &a)?);
    let format = a.get("output-format").unwrap_or("text");
    let text = match format {
        "json" => serde_json::to_string(&value).unwrap_or_default(),
        // Perl's JSON (canonical, pretty) indents by three spaces; keys are sorted either way.
        "json-pretty" => perl_pretty(&value),
        // The real default is a table; the simulator keeps it simple and readable.
        _ => match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        },
    };
    ctx.say(text);
    Ok(0)
}

/// pvesh.pm's `extract_path_info`: the path as given, on stderr, and `exit(1)`.
/// Sorts object keys, as Perl's `canonical` JSON does (explicitly, so the output stays sorted even
/// if serde_json's `preserve_order` feature gets enabled somewhere in the workspace).
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Perl's `JSON->new->canonical->pretty`: three-space indent and `"key" : value`.
struct PerlPretty(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for PerlPretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn perl_pretty(value: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = PerlPretty(serde_json::ser::PrettyFormatter::with_indent(b"   "));
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

fn no_handler(path: &str) -> Fail {
    Fail {
        message: format!("No 'get' handler defined for '{path}'"),
        exit: 1,
    }
}

fn check_node(ctx: &Ctx, node: &str) -> Result<(), Fail> {
    if node == ctx.node.node || node == "localhost" {
        Ok(())
    } else {
        Err(Fail::new(format!(
            "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
        )))
    }
}

fn storage_or_fail(ctx: &Ctx, id: &str) -> Result<StorageDef, Fail> {
    ctx.state
        .storage(id)?
        .ok_or_else(|| Fail::new(format!("storage '{id}' does not exist")))
}

/// Resolves one API path.
fn get(ctx: &mut Ctx, raw_path: &str, a: &args::Args) -> Result<Value, Fail> {
    let path = format!("/{}", raw_path.trim_matches('/'));
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Ok(json!({
            "version": ctx.node.version,
            "release": ctx.node.release,
            "repoid": ctx.node.repoid,
        })),
        ["nodes"] => {
            let disk_total: u64 = 100 << 30;
            let mut names = vec![ctx.node.node.clone()];
            names.extend(ctx.state.cluster_members()?.into_iter().map(|m| m.node));
            Ok(Value::Array(names.iter().map(|name| json!({
                "node": name,
                "id": format!("node/{name}"),
                "type": "node",
                "status": "online",
                "level": "",
                "cpu": 0.02,
                "maxcpu": ctx.node.cpus,
                "mem": ctx.node.maxmem / 4,
                "maxmem": ctx.node.maxmem,
                "disk": disk_total / 5,
                "maxdisk": disk_total,
                "uptime": 864_000,
                "ssl_fingerprint": "5A:1B:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00",
            })).collect()))
        }
        ["cluster", "nextid"] => Ok(json!(ctx.state.next_vmid()?.to_string())),
        ["cluster", "resources"] => cluster_resources(ctx, a.get("type")),
        // The vzdump jobs of `/etc/pve/jobs.cfg`, as the API lists them (`backup-jobs.json`).
        ["cluster", "backup"] => Ok(Value::Array(ctx.state.backup_jobs()?)),
        // The cluster-wide storage configuration, as `/etc/pve/storage.cfg` gives it (`path` for file
        // storages).
        ["storage", id] => {
            let s = storage_or_fail(ctx, id)?;
            let mut v = json!({
                "storage": s.storage,
                "type": s.kind,
                "content": s.content,
                "digest": "0000000000000000000000000000000000000000",
            });
            if s.kind != "pbs"
                && let Some(o) = v.as_object_mut()
            {
                o.insert(
                    "path".to_owned(),
                    json!(ctx.state.storage_dir(&s).display().to_string()),
                );
            }
            Ok(v)
        }
        ["nodes", node, rest @ ..] => {
            // Another member of the cluster answers for its own node, as pmxcfs forwards the call.
            if let Some(member) = ctx
                .state
                .cluster_members()?
                .into_iter()
                .find(|m| m.node == *node)
            {
                let state = State::open(&member.state)?;
                let info = state.node()?;
                let mut other = Ctx {
                    state,
                    node: info,
                    out: Vec::new(),
                    err: Vec::new(),
                    warnings: 0,
                    lock: None,
                };
                return node_path(&mut other, raw_path, rest, a);
            }
            check_node(ctx, node)?;
            node_path(ctx, raw_path, rest, a)
        }
        _ => Err(no_handler(raw_path)),
    }
}

fn storage_json(ctx: &Ctx, s: &StorageDef) -> Result<Value, Fail> {
    let used = ctx.state.storage_used(s)?;
    let avail = ctx.state.storage_avail(s)?;
    let mut v = json!({
        "storage": s.storage,
        "type": s.kind,
        "content": s.content,
        "enabled": s.enabled,
        "active": s.active,
        "shared": s.shared,
        "total": s.total,
        "used": used,
        "avail": avail,
        "used_fraction": if s.total > 0 { used as f64 / s.total as f64 } else { 0.0 },
    });
    if s.active == 0 {
        for k in ["total", "used", "avail", "used_fraction"] {
            if let Some(o) = v.as_object_mut() {
                o.remove(k);
            }
        }
    }
    Ok(v)
}

fn node_path(ctx: &mut Ctx, path: &str, rest: &[&str], a: &args::Args) -> Result<Value, Fail> {
    match rest {
        ["storage"] => {
            let mut out = Vec::new();
            for s in ctx.state.storages()? {
                if let Some(c) = a.get("content")
                    && !c.split(',').all(|c| s.has_content(c))
                {
                    continue;
                }
                if a.get("enabled").is_some() && a.flag("enabled") && s.enabled == 0 {
                    continue;
                }
                if let Some(id) = a.get("storage")
                    && id != s.storage
                {
                    continue;
                }
                out.push(storage_json(ctx, &s)?);
            }
            Ok(Value::Array(out))
        }
        ["storage", id] => {
            storage_or_fail(ctx, id)?;
            Ok(
                json!([{"subdir": "status"}, {"subdir": "content"}, {"subdir": "upload"}, {"subdir": "rrd"}]),
            )
        }
        ["storage", id, "status"] => {
            let s = storage_or_fail(ctx, id)?;
            let mut v = storage_json(ctx, &s)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("storage");
                o.remove("used_fraction");
            }
            Ok(v)
        }
        ["storage", id, "content"] => {
            let s = storage_or_fail(ctx, id)?;
            if let Some(c) = a.get("content")
                && c != "backup"
            {
                // Only backups are simulated: other content types list nothing.
                return Ok(json!([]));
            }
            let vmid: Option<u32> = a.get("vmid").and_then(|v| v.parse().ok());
            let mut out = Vec::new();
            for b in ctx.state.backups(&s)? {
                if vmid.is_some_and(|v| v != b.vmid) {
                    continue;
                }
                let mut v = json!({
                    "volid": b.volid,
                    "content": "backup",
                    "format": b.format,
                    "subtype": b.subtype,
                    "vmid": b.vmid,
                    "ctime": b.ctime,
                    "size": b.size,
                });
                let o = v.as_object_mut().ok_or_else(|| Fail::new("internal"))?;
                if let Some(n) = &b.notes {
                    o.insert("notes".into(), json!(n));
                }
                if b.protected {
                    o.insert("protected".into(), json!(1));
                }
                if let Some(ver) = &b.verification {
                    o.insert("verification".into(), ver.clone());
                }
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        ["qemu"] | ["lxc"] => {
            let kind = if rest[0] == "qemu" {
                GuestType::Qemu
            } else {
                GuestType::Lxc
            };
            let mut out = Vec::new();
            for g in ctx.state.guests()?.iter().filter(|g| g.kind == kind) {
                out.push(guest_status_json(g));
            }
            Ok(Value::Array(out))
        }
        [kind @ ("qemu" | "lxc"), id, tail @ ..] => {
            let kind = if *kind == "qemu" {
                GuestType::Qemu
            } else {
                GuestType::Lxc
            };
            let g = guest::load(ctx, kind, id)?;
            match tail {
                ["status", "current"] => Ok(guest_status_json(&g)),
                ["config"] => Ok(config_json(&g)),
                ["status"] => {
                    Ok(json!([{"subdir": "current"}, {"subdir": "start"}, {"subdir": "stop"}]))
                }
                _ => Err(no_handler(path)),
            }
        }
        [] => {
            Ok(json!([{"name": "qemu"}, {"name": "lxc"}, {"name": "storage"}, {"name": "status"}]))
        }
        _ => Err(no_handler(path)),
    }
}

fn cluster_resources(ctx: &mut Ctx, kind: Option<&str>) -> Result<Value, Fail> {
    let mut out = Vec::new();
    if kind.is_none() || kind == Some("vm") {
        for g in ctx.state.guests()? {
            out.push(guest::resource_json(&g));
        }
        for member in ctx.state.cluster_members()? {
            for g in State::open(&member.state)?.guests()? {
                out.push(guest::resource_json(&g));
            }
        }
    }
    if kind.is_none() || kind == Some("node") {
        out.push(json!({
            "id": format!("node/{}", ctx.node.node),
            "type": "node",
            "node": ctx.node.node,
            "status": "online",
            "maxcpu": ctx.node.cpus,
            "maxmem": ctx.node.maxmem,
            "level": "",
        }));
    }
    if kind.is_none() || kind == Some("storage") {
        for s in ctx.state.storages()? {
            let used = ctx.state.storage_used(&s)?;
            out.push(json!({
                "id": format!("storage/{}/{}", ctx.node.node, s.storage),
                "type": "storage",
                "storage": s.storage,
                "node": ctx.node.node,
                "status": if s.active == 1 { "available" } else { "unknown" },
                "plugintype": s.kind,
                "content": s.content,
                "shared": s.shared,
                "disk": used,
                "maxdisk": s.total,
            }));
        }
    }
    if let Some(k) = kind
        && !["vm", "node", "storage", "sdn", "pool"].contains(&k)
    {
        return Err(Fail::new(format!(
            "400 Parameter verification failed.\ntype: value '{k}' does not have a value in the enumeration 'vm, storage, node, sdn'"
        )));
    }
    Ok(Value::Array(out))
}
