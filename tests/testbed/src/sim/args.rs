//! Proxmox CLI argument conventions: positionals, `--key value`, `-key value`, `--key=value`, and
//! boolean options whose value may be left out (`--force` means `--force 1`).

/// Parsed command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// Positional arguments in order.
    pub pos: Vec<String>,
    /// Options in order (key without dashes, value).
    pub opts: Vec<(String, String)>,
}

/// Options that may be given without a value.
pub const BOOL_OPTS: [&str; 16] = [
    "noborder",
    "noheader",
    "quiet",
    "verbose",
    "force",
    "unique",
    "start",
    "purge",
    "protected",
    "skiplock",
    "live-restore",
    "ignore-unpack-errors",
    "unprivileged",
    "current",
    "full",
    "destroy-unreferenced-disks",
];

fn is_bool_literal(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "0" | "1" | "true" | "false" | "yes" | "no" | "on" | "off"
    )
}

/// Parses `args` (without the command and subcommand).
pub fn parse(args: &[String]) -> Args {
    let mut out = Args::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let key = a.strip_prefix("--").or_else(|| {
            a.strip_prefix('-')
                .filter(|k| !k.is_empty() && !k.starts_with(|c: char| c.is_ascii_digit()))
        });
        match key {
            Some(k) if !k.is_empty() => {
                if let Some((k, v)) = k.split_once('=') {
                    out.opts.push((k.to_string(), v.to_string()));
                } else if BOOL_OPTS.contains(&k) {
                    match args.get(i + 1) {
                        Some(v) if is_bool_literal(v) => {
                            out.opts.push((k.to_string(), v.clone()));
                            i += 1;
                        }
                        _ => out.opts.push((k.to_string(), "1".into())),
                    }
                } else if let Some(v) = args.get(i + 1).filter(|v| !v.starts_with("--")) {
                    out.opts.push((k.to_string(), v.clone()));
                    i += 1;
                } else if args.get(i + 1).is_some() {
                    // Followed by another option: a flag given without its value.
                    out.opts.push((k.to_string(), "1".into()));
                } else {
                    out.opts.push((k.to_string(), String::new()));
                }
            }
            _ => out.pos.push(a.clone()),
        }
        i += 1;
    }
    out
}

impl Args {
    /// Last value of option `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Boolean option (absent = false).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn forms() {
        let a = parse(&s(&[
            "arch.vma.zst",
            "100",
            "--force",
            "--storage",
            "local-lvm",
            "-unique",
            "0",
            "--start=1",
        ]));
        assert_eq!(a.pos, s(&["arch.vma.zst", "100"]));
        assert!(a.flag("force"));
        assert!(!a.flag("unique"));
        assert!(a.flag("start"));
        assert_eq!(a.get("storage"), Some("local-lvm"));
        let b = parse(&s(&["100", "--force", "local:backup/x"]));
        assert_eq!(b.pos, s(&["100", "local:backup/x"]));
        let c = parse(&s(&[
            "/nodes",
            "--noborder",
            "--output-format",
            "json",
            "--human-readable",
            "--content=backup",
        ]));
        assert_eq!(c.get("output-format"), Some("json"));
        assert!(c.flag("noborder"));
        assert!(c.flag("human-readable"));
        assert_eq!(c.get("content"), Some("backup"));
    }
}
