//! The words of the report and of the messages callers match, in French (the replaced script's, kept
//! unaccented as it writes them) and English. One table per language, so both always have the same entries.

/// Every user-facing word of the contract report.
#[derive(Debug)]
pub struct Words {
    /// Report heading.
    pub report_title: &'static str,
    /// Table columns.
    pub columns: [&'static str; 5],
    /// Summary heading.
    pub summary: &'static str,
    /// `Total verifie`.
    pub total: &'static str,
    /// `Erreurs`.
    pub errors: &'static str,
    /// A guest without any backup.
    pub no_backup: &'static str,
    /// The newest backup's file is not on the storage.
    pub file_missing: &'static str,
    /// The newest backup is older than the limit (followed by its age).
    pub too_old: &'static str,
    /// The newest backup is suspiciously small.
    pub too_small: &'static str,
    /// `versions` (after a count).
    pub versions: &'static str,
    /// The --full section heading.
    pub connectivity: &'static str,
    /// The --full backup jobs heading.
    pub backup_jobs: &'static str,
    /// A node named by the tfvars without an address (followed by the node, then the environment).
    pub node_without_host: &'static str,
    /// No node anywhere.
    pub no_node: &'static str,
    /// Nothing could be checked at all.
    pub nothing_checked: &'static str,
    /// The dry-run sample report heading.
    pub sample: &'static str,
    /// A --vmid that is not a number.
    pub vmid_invalid: &'static str,
    /// The node could not be reached.
    pub unreachable: &'static str,
    /// A bucket that does not exist.
    pub no_bucket: &'static str,
    /// A state that is not valid JSON.
    pub invalid_json: &'static str,
    /// "skipped" in connectivity lines.
    pub checked_on: &'static str,
}

/// The French words.
pub const FR: Words = Words {
    report_title: "RAPPORT DE VERIFICATION DES SAUVEGARDES",
    columns: ["Type", "Composant", "Statut", "Dernier backup", "Details"],
    summary: "RESUME",
    total: "Total verifie",
    errors: "Erreurs",
    no_backup: "Aucune sauvegarde",
    file_missing: "Aucune sauvegarde: fichier manquant",
    too_old: "Sauvegarde trop ancienne",
    too_small: "Taille suspecte",
    versions: "versions",
    connectivity: "Verification de la connectivite",
    backup_jobs: "Taches de sauvegarde",
    node_without_host: "pas d'adresse pour le noeud",
    no_node: "Aucun noeud trouve (--node, ou default_node et proxmox_endpoint dans les terraform.tfvars des environnements): verification vzdump ignoree",
    nothing_checked: "Rien n'a pu etre verifie: aucun noeud ni aucun etat Terraform trouve (--node, --homelab)",
    sample: "Rapport d'exemple (valeurs fictives, rien n'a ete contacte)",
    vmid_invalid: "VMID invalide: doit etre un nombre",
    unreachable: "Noeud injoignable",
    no_bucket: "Bucket absent",
    invalid_json: "JSON invalide",
    checked_on: "verification vzdump ignoree",
};

/// The English words.
pub const EN: Words = Words {
    report_title: "BACKUP VERIFICATION REPORT",
    columns: ["Type", "Component", "Status", "Last backup", "Details"],
    summary: "SUMMARY",
    total: "Total checked",
    errors: "Errors",
    no_backup: "No backup",
    file_missing: "No backup: file missing",
    too_old: "Backup too old",
    too_small: "Suspiciously small",
    versions: "versions",
    connectivity: "Connectivity check",
    backup_jobs: "Backup jobs",
    node_without_host: "no address for node",
    no_node: "No node found (--node, or default_node and proxmox_endpoint in the environments' terraform.tfvars): vzdump check skipped",
    nothing_checked: "Nothing could be checked: no node and no Terraform state found (--node, --homelab)",
    sample: "Sample report (placeholder values, nothing was contacted)",
    vmid_invalid: "invalid VMID: must be a number",
    unreachable: "Node unreachable",
    no_bucket: "Bucket missing",
    invalid_json: "Invalid JSON",
    checked_on: "vzdump check skipped",
};

/// The words of a language.
pub fn words(french: bool) -> &'static Words {
    if french { &FR } else { &EN }
}
