//! The words callers of the replaced script match, in one place so they move into the shared message
//! catalog as a whole.

fn french() -> bool {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(l) = var("PVE_TOOLS_LANG") {
        return l.starts_with("fr");
    }
    var("LC_ALL")
        .or_else(|| var("LC_MESSAGES"))
        .or_else(|| var("LANG"))
        .is_some_and(|l| l.starts_with("fr"))
}

fn pick(en: String, fr: String) -> String {
    if french() { fr } else { en }
}

/// No VMID given.
pub fn vmid_required() -> String {
    pick("VMID required".into(), "VMID requis".into())
}

/// A VMID that is not digits.
pub fn vmid_not_a_number(v: &str) -> String {
    pick(
        format!("invalid VMID: must be a number ('{v}')"),
        format!("VMID invalide: doit etre un nombre ('{v}')"),
    )
}

/// A malformed `--date`.
pub fn date_invalid(v: &str) -> String {
    pick(
        format!("invalid date format: '{v}' (expected YYYY-MM-DD)"),
        format!("Format de date invalide: '{v}' (attendu AAAA-MM-JJ)"),
    )
}

/// The heading of the summary.
pub fn summary_heading() -> String {
    pick("RESTORE SUMMARY".into(), "RESUME DE RESTAURATION".into())
}
