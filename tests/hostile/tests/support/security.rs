//! Helpers of the attack cases that more than one tool's module uses.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

pub fn payloads(canary: &Path) -> Vec<String> {
    let c = canary.display();
    vec![
        format!("$(touch {c})"),
        format!("`touch {c}`"),
        format!(";touch {c}"),
        format!("100;touch {c}"),
        format!("100 && touch {c}"),
        format!("100 | touch {c}"),
        format!("'; touch {c}; '"),
        format!("\"; touch {c}; \""),
        format!("100\ntouch {c}"),
        format!("$({c})"),
        "$(id)".into(),
        ";reboot".into(),
        "-rf".into(),
        "--help".into(),
        "*".into(),
        "~root".into(),
        "a\\".into(),
        String::new(),
        "\u{202e}evil".into(),
    ]
}
