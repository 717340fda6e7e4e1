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

fn pick(en: &str, fr: &str) -> String {
    if french() { fr } else { en }.to_owned()
}

/// The command line is empty.
pub fn no_argument() -> String {
    pick(
        "no argument given: restore-tfstate --env ENV --list|--restore VERSION_ID|--fallback|--return",
        "Aucun argument fourni: restore-tfstate --env ENV --list|--restore VERSION_ID|--fallback|--return",
    )
}

/// `--env` is missing.
pub fn env_required() -> String {
    pick("option --env is required", "Option --env est requise")
}

/// No action flag.
pub fn action_required() -> String {
    pick(
        "please specify an action: --list, --restore, --fallback, or --return",
        "Veuillez specifier une action: --list, --restore, --fallback, ou --return",
    )
}

/// `--restore` without a value.
pub fn version_id_required() -> String {
    pick(
        "--restore: version-id required",
        "--restore: version-id requis",
    )
}

/// The heading of `--list`.
pub fn versions_heading() -> String {
    pick("Available versions:", "Versions disponibles:")
}

/// The last line of a successful run.
pub fn success() -> String {
    pick(
        "Operation completed successfully",
        "Operation terminee avec succes",
    )
}

/// The last line of a successful dry-run.
pub fn success_dry_run() -> String {
    pick(
        "Operation completed successfully (dry-run: nothing was contacted or changed)",
        "Operation terminee avec succes (dry-run: rien n'a ete contacte ni modifie)",
    )
}

/// The operator declined, or could not be asked.
pub fn declined(why: &str) -> String {
    pick(
        &format!("Operation cancelled, nothing was changed ({why})"),
        &format!("Operation annulee, rien n'a ete modifie ({why})"),
    )
}

/// MinIO's health URL did not answer.
pub fn minio_down(url: &str, why: &str) -> String {
    pick(
        &format!("MinIO does not answer at {url} ({why}): staying on the local backend"),
        &format!("MinIO ne repond pas sur {url} ({why}): l'environnement reste en backend local"),
    )
}
