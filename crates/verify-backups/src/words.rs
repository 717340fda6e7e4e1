//! The words of the report and of the messages callers match, from pve-common's catalogs
//! (`locales/verify-backups.{en,fr}.yml`): French (the replaced script's, unaccented as it writes them)
//! or English.

use pve_common::i18n::Lang;

/// Every user-facing word of the contract report, in one language.
#[derive(Debug)]
pub struct Words {
    /// Report heading.
    pub report_title: String,
    /// Table columns.
    pub columns: [String; 5],
    /// Summary heading.
    pub summary: String,
    /// `Total verifie`.
    pub total: String,
    /// `Erreurs`.
    pub errors: String,
    /// A guest without any backup.
    pub no_backup: String,
    /// The newest backup's file is not on the storage.
    pub file_missing: String,
    /// The newest backup is older than the limit (followed by its age).
    pub too_old: String,
    /// The newest backup is suspiciously small.
    pub too_small: String,
    /// `versions` (after a count).
    pub versions: String,
    /// A node named by the tfvars without an address (followed by the node).
    pub node_without_host: String,
    /// No node anywhere.
    pub no_node: String,
    /// Nothing could be checked at all.
    pub nothing_checked: String,
    /// The dry-run sample report heading.
    pub sample: String,
    /// A --vmid that is not a number.
    pub vmid_invalid: String,
    /// The node could not be reached.
    pub unreachable: String,
    /// A bucket that does not exist.
    pub no_bucket: String,
    /// A state that is not valid JSON.
    pub invalid_json: String,
    /// The vzdump part is skipped.
    pub checked_on: String,
    /// The connectivity section heading (`--full`).
    pub connectivity: String,
    /// The backup jobs section heading (`--full`).
    pub jobs_title: String,
    /// A job's schedule.
    pub schedule: String,
    /// A job's storage.
    pub storage: String,
    /// A job of every guest.
    pub all_guests: String,
    /// Followed by the excluded guests.
    pub except: String,
    /// Followed by a job's guests.
    pub guests: String,
    /// Followed by a job's pool.
    pub pool: String,
    /// A disabled job.
    pub job_disabled: String,
    /// A node without any backup job.
    pub no_job: String,
    /// The jobs could not be read.
    pub jobs_unreadable: String,
    /// A guest in no enabled job.
    pub not_covered: String,
    /// Pool jobs whose members are not read.
    pub pools_unresolved: String,
    /// A guest that answered.
    pub answers: String,
    /// A VM without a QEMU guest agent.
    pub no_agent: String,
    /// A guest that did not answer.
    pub silent: String,
    /// Which VMs a dry run would ask.
    pub dry_each_vm: String,
    /// Which containers a dry run would ask.
    pub dry_each_ct: String,
}

/// The words of a language.
pub fn words(french: bool) -> Words {
    let lang = if french { Lang::Fr } else { Lang::En };
    let t = |k: &str| pve_common::i18n::text_in(lang, &format!("verify_backups.{k}"));
    Words {
        report_title: t("report_title"),
        columns: [
            t("col_type"),
            t("col_component"),
            t("col_status"),
            t("col_last"),
            t("col_details"),
        ],
        summary: t("summary"),
        total: t("total"),
        errors: t("errors"),
        no_backup: t("no_backup"),
        file_missing: t("file_missing"),
        too_old: t("too_old"),
        too_small: t("too_small"),
        versions: t("versions"),
        node_without_host: t("node_without_host"),
        no_node: t("no_node"),
        nothing_checked: t("nothing_checked"),
        sample: t("sample"),
        vmid_invalid: t("vmid_invalid"),
        unreachable: t("unreachable"),
        no_bucket: t("no_bucket"),
        invalid_json: t("invalid_json"),
        checked_on: t("skipped"),
        connectivity: t("connectivity"),
        jobs_title: t("jobs_title"),
        schedule: t("schedule"),
        storage: t("storage"),
        all_guests: t("all_guests"),
        except: t("except"),
        guests: t("guests"),
        pool: t("pool"),
        job_disabled: t("job_disabled"),
        no_job: t("no_job"),
        jobs_unreadable: t("jobs_unreadable"),
        not_covered: t("not_covered"),
        pools_unresolved: t("pools_unresolved"),
        answers: t("answers"),
        no_agent: t("no_agent"),
        silent: t("silent"),
        dry_each_vm: t("dry_each_vm"),
        dry_each_ct: t("dry_each_ct"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_word_is_in_both_catalogs() {
        for french in [true, false] {
            let w = super::words(french);
            assert!(!w.report_title.starts_with("verify_backups."), "{w:?}");
            assert!(!w.checked_on.starts_with("verify_backups."), "{w:?}");
            assert!(!w.silent.starts_with("verify_backups."), "{w:?}");
        }
        assert_eq!(super::words(true).summary, "RESUME");
        assert_eq!(super::words(false).summary, "SUMMARY");
    }
}
