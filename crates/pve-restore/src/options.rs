//! What a restore is asked to do: which guest, which backup, where to, and how careful to be. Built by
//! restore-vm from its command line and by rebuild-monitoring for the monitoring VM; nothing here knows
//! about flags or output formats.

use std::time::Duration;

use pve_common::pve::Volid;
use pve_ssh::node::NodeAccess;

/// The default storage for the restored disks.
pub const DEFAULT_STORAGE: &str = "local-lvm";
/// The default backup storage searched, as the replaced script had it.
pub const DEFAULT_BACKUP_STORAGE: &str = "local";
/// The default time to wait for the restored guest to run and answer.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// The default port checked on the restored guest.
pub const DEFAULT_VERIFY_PORT: u16 = 22;
/// The default time a clean shutdown of the guest being overwritten may take.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(180);

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The newest.
    Latest,
    /// This volid (must be in the listing).
    Volid(Volid),
    /// The newest at or before this node-local wall-clock time.
    At(jiff::civil::DateTime),
    /// The newest, if it is younger than this.
    NewestWithin(Duration),
    /// The oldest taken on or after the start of this node-local day.
    OnOrAfter(jiff::civil::Date),
}

/// A listing or a restore, fully decided.
#[derive(Debug, Clone)]
pub struct Options {
    /// The guest whose backups are used.
    pub vmid: u32,
    /// The id restored to (usually `vmid`).
    pub target_id: u32,
    /// Which backup.
    pub selection: Selection,
    /// Storage for the disks.
    pub storage: String,
    /// The backup storage searched; `None`: every backup storage.
    pub backup_storage: Option<String>,
    /// Storage for the save point; `None`: the backup's own storage, else the first active one.
    pub save_storage: Option<String>,
    /// The node and how to reach it.
    pub access: NodeAccess,
    /// Start the restored guest (it is started anyway when the overwritten one was running).
    pub start: bool,
    /// New MAC addresses for the restored guest.
    pub unique: bool,
    /// Wait for the started guest to run and answer on [`Options::verify_port`].
    pub verify: bool,
    /// Overwriting an existing guest is allowed (after the save point and the confirmation).
    pub force: bool,
    /// Every confirmation is answered yes.
    pub yes: bool,
    /// Nothing is changed; read-only queries still run.
    pub dry_run: bool,
    /// Nothing is contacted either: the commands are shown with placeholders.
    pub offline: bool,
    /// How long verification may take.
    pub verify_timeout: Duration,
    /// Port checked on the guest.
    pub verify_port: u16,
    /// How long a clean shutdown may take.
    pub shutdown_timeout: Duration,
}

impl Options {
    /// A restore of the newest backup of `vmid` to itself, with restore-vm's defaults: no force, start,
    /// yes or dry-run; verified. Callers change what they need.
    pub fn new(vmid: u32, access: NodeAccess) -> Options {
        Options {
            vmid,
            target_id: vmid,
            selection: Selection::Latest,
            storage: DEFAULT_STORAGE.to_owned(),
            backup_storage: None,
            save_storage: None,
            access,
            start: false,
            unique: false,
            verify: true,
            force: false,
            yes: false,
            dry_run: false,
            offline: false,
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            verify_port: DEFAULT_VERIFY_PORT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}
