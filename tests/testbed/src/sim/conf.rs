//! Proxmox config and naming rules the simulator needs: backup file names (`archive_info` of
//! PVE::Storage), disk specs and sizes, config text as in `/etc/pve/qemu-server/<vmid>.conf`,
//! MAC addresses, and UTC time formatting (node time zone is UTC).

use std::collections::BTreeMap;

/// What a backup file name says (PVE::Storage `archive_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// `qemu` or `lxc`.
    pub subtype: String,
    /// Guest id.
    pub vmid: u32,
    /// Seconds since the epoch, from the name's local (UTC) time.
    pub ctime: i64,
    /// `vma.zst`, `tar.zst`, `vma`, `tar.gz`...
    pub format: String,
}

/// Parses `vzdump-{qemu|lxc}-<vmid>-YYYY_MM_DD-HH_MM_SS.<format>`.
pub fn archive_info(name: &str) -> Option<ArchiveInfo> {
    let rest = name.strip_prefix("vzdump-")?;
    let (subtype, rest) = rest.split_once('-')?;
    let subtype = match subtype {
        "qemu" => "qemu",
        "lxc" | "openvz" => "lxc",
        _ => return None,
    };
    let (vmid, rest) = rest.split_once('-')?;
    let vmid: u32 = vmid.parse().ok()?;
    if rest.len() < 20 {
        return None;
    }
    let (stamp, ext) = rest.split_at(19);
    let format = ext.strip_prefix('.')?;
    let ok_format = match subtype {
        "qemu" => ["vma", "vma.zst", "vma.gz", "vma.lzo"].contains(&format),
        _ => ["tar", "tar.zst", "tar.gz", "tar.lzo", "tgz"].contains(&format),
    };
    if !ok_format {
        return None;
    }
    let ctime = parse_stamp(stamp)?;
    Some(ArchiveInfo {
        subtype: subtype.into(),
        vmid,
        ctime,
        format: format.into(),
    })
}

/// `YYYY_MM_DD-HH_MM_SS` (UTC) to epoch seconds.
pub fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'_'
        || b[7] != b'_'
        || b[10] != b'-'
        || b[13] != b'_'
        || b[16] != b'_'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch seconds to (year, month, day, hour, minute, second, weekday 0=Sunday) in UTC.
pub fn civil(t: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wday = (days + 4).rem_euclid(7);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60, wday)
}

/// `YYYY_MM_DD-HH_MM_SS` as in backup names.
pub fn stamp(t: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}_{mo:02}_{d:02}-{h:02}_{mi:02}_{s:02}")
}

/// `YYYY-MM-DD HH:MM:SS` as in vzdump logs.
pub fn datetime(t: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(t: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `Fri Nov 20 02:00:01 2026` (C `ctime` style, as `vma extract` prints CTIME).
pub fn ctime_string(t: i64) -> String {
    let (y, mo, d, h, mi, s, w) = civil(t);
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {d:2} {h:02}:{mi:02}:{s:02} {y}",
        DAYS[w as usize],
        MONTHS[(mo - 1) as usize]
    )
}

/// Parses a Proxmox size (`32G`, `512M`, `8`, `100K`, `1T`; bare numbers are bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        'T' | 't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    if let Ok(n) = num.parse::<u64>() {
        return Some(n * mult);
    }
    num.parse::<f64>().ok().map(|f| (f * mult as f64) as u64)
}

/// Formats bytes as Proxmox prints disk sizes (`32G`, `512M`).
pub fn format_size(bytes: u64) -> String {
    for (unit, m) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if bytes >= m && bytes.is_multiple_of(m) {
            return format!("{}{unit}", bytes / m);
        }
    }
    bytes.to_string()
}

/// True for config keys holding a disk (not a CD-ROM / cloud-init drive).
pub fn is_disk_key(key: &str) -> bool {
    let base = key.trim_end_matches(|c: char| c.is_ascii_digit());
    base != key
        && [
            "scsi", "virtio", "sata", "ide", "efidisk", "tpmstate", "mp", "unused",
        ]
        .contains(&base)
        || key == "rootfs"
}

/// A disk entry parsed from config (`local-lvm:vm-100-disk-0,size=32G`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Config key, e.g. `scsi0`, `rootfs`.
    pub key: String,
    /// Storage id.
    pub storage: String,
    /// Volume name inside the storage.
    pub volume: String,
    /// Size in bytes (0 when unknown).
    pub size: u64,
    /// The options after the volume (`size=32G,ssd=1`).
    pub options: Vec<String>,
}

/// The disks of a config (skips CD-ROMs, `none` and cloud-init volumes).
pub fn disks(config: &BTreeMap<String, String>) -> Vec<DiskSpec> {
    let mut out = Vec::new();
    for (key, value) in config {
        if !is_disk_key(key) {
            continue;
        }
        let mut parts = value.split(',');
        let Some(vol) = parts.next() else { continue };
        let options: Vec<String> = parts.map(str::to_string).collect();
        if options.iter().any(|o| o == "media=cdrom") || vol.contains("cloudinit") || vol == "none"
        {
            continue;
        }
        let Some((storage, volume)) = vol.split_once(':') else {
            continue;
        };
        let size = options
            .iter()
            .find_map(|o| o.strip_prefix("size="))
            .and_then(parse_size)
            .unwrap_or(0);
        out.push(DiskSpec {
            key: key.clone(),
            storage: storage.into(),
            volume: volume.into(),
            size,
            options,
        });
    }
    out
}

/// (storage, bytes) for every disk of a config.
pub fn disk_usage(config: &BTreeMap<String, String>) -> Vec<(String, u64)> {
    disks(config)
        .into_iter()
        .map(|d| (d.storage, d.size))
        .collect()
}

/// Renders a config as the `.conf` file (description as `#` lines first, then sorted keys).
pub fn render(config: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    if let Some(desc) = config.get("description") {
        for line in desc.lines() {
            out.push('#');
            out.push_str(line);
            out.push('\n');
        }
    }
    for (k, v) in config {
        if k != "description" {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}

/// Parses a `.conf` file (main section only; `#` lines form the description).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    let mut desc: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            break;
        }
        if let Some(d) = line.strip_prefix('#') {
            desc.push(d);
        } else if let Some((k, v)) = line.split_once(':') {
            config.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if !desc.is_empty() {
        config.insert("description".into(), desc.join("\n"));
    }
    config
}

/// Keys whose values `pvesh get .../config` returns as JSON numbers.
pub fn is_numeric_key(key: &str) -> bool {
    [
        "memory",
        "cores",
        "sockets",
        "vcpus",
        "onboot",
        "protection",
        "template",
        "balloon",
        "cpuunits",
        "swap",
        "unprivileged",
        "kvm",
        "acpi",
        "agent",
        "numa",
        "tablet",
        "shares",
        "cpulimit",
        "console",
        "tty",
        "migrate_downtime",
    ]
    .contains(&key)
}

/// A pseudo-random MAC with Proxmox's `BC:24:11` prefix.
pub fn random_mac(salt: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id());
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    format!(
        "BC:24:11:{:02X}:{:02X}:{:02X}",
        (x >> 16) & 0xff,
        (x >> 8) & 0xff,
        x & 0xff
    )
}

/// Replaces the MAC in `net<N>` values (`virtio=MAC,...` for VMs, `hwaddr=MAC` for CTs).
pub fn regenerate_macs(config: &mut BTreeMap<String, String>) {
    let mut salt = 0u64;
    for (key, value) in config.iter_mut() {
        if !key.starts_with("net") {
            continue;
        }
        salt += 1;
        let parts: Vec<String> = value
            .split(',')
            .map(|p| match p.split_once('=') {
                Some((k, v))
                    if looks_like_mac(v)
                        && (k == "hwaddr" || k == "macaddr" || !k.contains("addr")) =>
                {
                    format!("{k}={}", random_mac(salt))
                }
                _ => p.to_string(),
            })
            .collect();
        *value = parts.join(",");
    }
}

fn looks_like_mac(v: &str) -> bool {
    v.len() == 17
        && v.split(':').count() == 6
        && v.split(':')
            .all(|h| h.len() == 2 && u8::from_str_radix(h, 16).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        let i = archive_info("vzdump-qemu-100-2026_11_20-02_00_01.vma.zst").unwrap();
        assert_eq!(
            (i.subtype.as_str(), i.vmid, i.format.as_str()),
            ("qemu", 100, "vma.zst")
        );
        assert_eq!(i.ctime, 1_795_140_001);
        assert_eq!(stamp(i.ctime), "2026_11_20-02_00_01");
        assert_eq!(ctime_string(i.ctime), "Fri Nov 20 02:00:01 2026");
        assert!(archive_info("vzdump-qemu-100-2026_11_20-02_00_01.log").is_none());
        assert!(archive_info("vzdump-qemu-100-2026_11_20-02_00_01.vma.zst.notes").is_none());
        let l = archive_info("vzdump-lxc-101-2026_11_20-02_00_01.tar.zst").unwrap();
        assert_eq!(l.subtype, "lxc");
    }

    #[test]
    fn macs_and_sizes() {
        let mut c = BTreeMap::new();
        c.insert(
            "net0".to_string(),
            "virtio=BC:24:11:2E:C5:01,bridge=vmbr0".to_string(),
        );
        regenerate_macs(&mut c);
        assert!(c["net0"].starts_with("virtio=BC:24:11:"));
        assert_ne!(c["net0"], "virtio=BC:24:11:2E:C5:01,bridge=vmbr0");
        assert!(c["net0"].ends_with(",bridge=vmbr0"));
        assert_eq!(parse_size("32G"), Some(32 << 30));
        assert_eq!(format_size(8 << 30), "8G");
    }
}
