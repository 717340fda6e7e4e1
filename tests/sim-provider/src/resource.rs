//! The resource lifecycle shared by VMs and containers: plan, create, read, update, delete, import.
//!
//! What differs between the two lives behind [`GuestMapping`]: the schema and the translation between
//! Terraform state and Proxmox configuration keys. Every state change happens under the state
//! directory's flock and is journaled with `"source": "provider"`.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::{ValueAny, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::simstate::{Guest, STATE_ENV, StateDir};
use crate::spec::{self, BlockSpec, get_num, get_str, set};

/// Name the journal gives the provider in `argv[0]`.
pub const JOURNAL_ARGV0: &str = "terraform-provider-proxmox";

/// Provider-level settings, filled by `ConfigureProvider`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `state_dir` from the provider block.
    pub state_dir: Option<PathBuf>,
    /// `node_name` from the provider block.
    pub node_name: Option<String>,
}

/// Settings shared between the provider and its resources.
pub type SharedSettings = Arc<Mutex<Settings>>;

impl Settings {
    /// The state directory: the provider block's `state_dir`, else `$PVE_SIM_STATE`.
    pub fn state_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        match std::env::var_os(STATE_ENV) {
            Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
            _ => bail!(
                "no simulator state directory: set state_dir in the provider block or {STATE_ENV}"
            ),
        }
    }
}

/// How one guest type maps between Terraform state and a guest file.
pub trait GuestMapping: Send + Sync + 'static {
    /// Guest type in the guest file: `qemu` or `lxc`.
    const TYPE: &'static str;
    /// Description of the resource.
    const DESCRIPTION: &'static str;
    /// The resource's schema with its SDKv2 facts.
    fn spec() -> BlockSpec;
    /// Write the planned state into the guest's configuration, resolving what apply computes (MAC
    /// addresses). `prior` is the state before an update, `None` on create.
    fn apply(state: &mut ValueAny, prior: Option<&ValueAny>, guest: &mut Guest);
    /// The state as the guest file shows it, shaped like `prior`. `full` (after an import) fills every
    /// block the guest has, not only those already in state.
    fn refresh(prior: &ValueAny, guest: &Guest, full: bool) -> ValueAny;
}

/// A resource type backed by guest files.
pub struct GuestResource<M> {
    settings: SharedSettings,
    _mapping: PhantomData<M>,
}

impl<M> GuestResource<M> {
    /// A resource using the provider's shared settings.
    pub fn new(settings: SharedSettings) -> Self {
        Self {
            settings,
            _mapping: PhantomData,
        }
    }

    fn settings(&self) -> Settings {
        match self.settings.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn open(&self) -> Result<StateDir> {
        StateDir::lock(&self.settings().state_dir()?)
    }
}

/// The guest id a state refers to: `vm_id`, else `id`.
fn state_vmid(state: &ValueAny) -> Option<u32> {
    get_num(state, "vm_id")
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| get_str(state, "id").and_then(|s| s.parse().ok()))
}

/// The configuration a clone of `src` starts with, as `qm clone` makes it: the source's keys without
/// its name, disks renamed to the new id, fresh MAC addresses.
fn cloned_config(src: &Guest, vmid: u32) -> std::collections::BTreeMap<String, serde_json::Value> {
    let from = src.vmid;
    let mut config = std::collections::BTreeMap::new();
    for (key, value) in &src.config {
        if matches!(key.as_str(), "name" | "hostname" | "template") {
            continue;
        }
        let mut text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for prefix in ["base", "vm", "subvol"] {
            let target = if prefix == "subvol" { "subvol" } else { "vm" };
            text = text.replace(
                &format!("{prefix}-{from}-disk"),
                &format!("{target}-{vmid}-disk"),
            );
        }
        if let Some(index) = key
            .strip_prefix("net")
            .and_then(|n| n.parse::<usize>().ok())
        {
            let mac = crate::mapping::mac_for(vmid, index);
            text = crate::simstate::parse_props(&text)
                .into_iter()
                .enumerate()
                .map(|(i, (k, v))| match (i, k.as_str()) {
                    (_, "hwaddr") => format!("hwaddr={mac}"),
                    (0, k) if k != "name" => format!("{k}={mac}"),
                    (_, "") => v,
                    (_, k) => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(",");
        }
        config.insert(key.clone(), serde_json::Value::String(text));
    }
    config
}

/// `key=value` for the journal, with the cloud-init password masked as Proxmox prints it.
fn journal_arg(key: &str, value: &serde_json::Value) -> String {
    if key == "cipassword" {
        return format!("{key}=**********");
    }
    match value {
        serde_json::Value::String(s) => format!("{key}={s}"),
        other => format!("{key}={other}"),
    }
}

/// Proxmox refuses configuration changes to a locked guest (`VM 100 is locked (backup)`).
fn refuse_locked(guest: &Guest) -> Result<()> {
    match &guest.lock {
        Some(lock) => bail!("VM {} is locked ({lock})", guest.vmid),
        None => Ok(()),
    }
}

fn error(diags: &mut Diagnostics, summary: &str, err: &anyhow::Error) {
    diags.root_error(summary.to_owned(), format!("{err:#}"));
}

/// The value, or `None` after reporting the error under `summary`: Terraform then fails the operation.
fn reported<T>(diags: &mut Diagnostics, summary: &str, result: Result<T>) -> Option<T> {
    result.map_err(|e| error(diags, summary, &e)).ok()
}

impl<M: GuestMapping> GuestResource<M> {
    fn do_create(&self, planned: &ValueAny, warnings: &mut Vec<String>) -> Result<ValueAny> {
        let settings = self.settings();
        let dir = StateDir::lock(&settings.state_dir()?)?;
        let vmid = match get_num(planned, "vm_id") {
            Some(n) => u32::try_from(n).map_err(|_| anyhow!("invalid vm_id {n}"))?,
            None => dir.next_id()?,
        };
        if dir.read_guest(vmid)?.is_some() {
            bail!(
                "unable to create {} {vmid}: config file already exists",
                M::TYPE
            );
        }
        let node = get_str(planned, "node_name")
            .map(str::to_owned)
            .or(settings.node_name)
            .or_else(|| dir.node_name())
            .unwrap_or_else(|| "pve".to_owned());
        let mut guest = Guest::new(vmid, M::TYPE, &node);
        if let Some(source) = get_num(planned, "clone.0.vm_id").and_then(|n| u32::try_from(n).ok())
        {
            match dir.read_guest(source)? {
                Some(src) => {
                    guest.config = cloned_config(&src, vmid);
                }
                None => warnings.push(format!(
                    "clone source {source} does not exist on the simulated node; creating {vmid} from scratch"
                )),
            }
            guest.clone_of = Some(source);
        }
        let mut state = planned.clone();
        set(&mut state, "id", spec::s(vmid.to_string()));
        set(&mut state, "vm_id", ValueAny::Number(i64::from(vmid)));
        set(&mut state, "node_name", spec::s(node));
        M::apply(&mut state, None, &mut guest);
        dir.write_guest(&guest)?;
        let mut argv = vec![
            JOURNAL_ARGV0.to_owned(),
            "create".to_owned(),
            format!("{}/{vmid}", M::TYPE),
        ];
        argv.extend(guest.config.iter().map(|(k, v)| journal_arg(k, v)));
        dir.journal(&argv)?;
        Ok(state)
    }

    fn do_update(&self, prior: &ValueAny, planned: &ValueAny) -> Result<ValueAny> {
        let dir = self.open()?;
        let vmid = state_vmid(prior).context("state has no vm_id")?;
        let mut guest = dir
            .read_guest(vmid)?
            .with_context(|| format!("{} {vmid} does not exist", M::TYPE))?;
        refuse_locked(&guest)?;
        let before = guest.config.clone();
        let mut state = planned.clone();
        M::apply(&mut state, Some(prior), &mut guest);
        dir.write_guest(&guest)?;
        let mut argv = vec![
            JOURNAL_ARGV0.to_owned(),
            "update".to_owned(),
            format!("{}/{vmid}", M::TYPE),
        ];
        for (k, v) in &guest.config {
            if before.get(k) != Some(v) {
                argv.push(journal_arg(k, v));
            }
        }
        for k in before.keys().filter(|k| !guest.config.contains_key(*k)) {
            argv.push(format!("delete={k}"));
        }
        dir.journal(&argv)?;
        Ok(state)
    }

    fn do_destroy(&self, prior: &ValueAny) -> Result<()> {
        let dir = self.open()?;
        let vmid = state_vmid(prior).context("state has no vm_id")?;
        if let Some(guest) = dir.read_guest(vmid)? {
            refuse_locked(&guest)?;
            if guest.get("protection").as_deref() == Some("1") {
                bail!("can't remove {} {vmid} - protection mode enabled", M::TYPE);
            }
        }
        if dir.remove_guest(vmid)? {
            dir.journal(&[
                JOURNAL_ARGV0.to_owned(),
                "destroy".to_owned(),
                format!("{}/{vmid}", M::TYPE),
            ])?;
        }
        Ok(())
    }

    fn do_read(&self, prior: &ValueAny, full: bool) -> Result<Option<ValueAny>> {
        let dir = self.open()?;
        let vmid = state_vmid(prior).context("state has no vm_id")?;
        let Some(guest) = dir.read_guest(vmid)? else {
            return Ok(None);
        };
        if guest.kind != M::TYPE {
            bail!("guest {vmid} is a {} guest, not {}", guest.kind, M::TYPE);
        }
        Ok(Some(M::refresh(prior, &guest, full)))
    }

    fn do_import(&self, id: &str) -> Result<ValueAny> {
        let (node, vmid) = match id.split_once('/') {
            Some((node, vmid)) => (Some(node), vmid),
            None => (None, id),
        };
        let vmid: u32 = vmid.parse().with_context(|| {
            format!("invalid import id {id:?}: expected <vmid> or <node>/<vmid>")
        })?;
        let dir = self.open()?;
        let guest = dir
            .read_guest(vmid)?
            .with_context(|| format!("{} {vmid} does not exist on the simulated node", M::TYPE))?;
        if guest.kind != M::TYPE {
            bail!("guest {vmid} is a {} guest, not {}", guest.kind, M::TYPE);
        }
        let mut state = M::spec().skeleton();
        set(&mut state, "id", spec::s(vmid.to_string()));
        set(&mut state, "vm_id", ValueAny::Number(i64::from(vmid)));
        set(
            &mut state,
            "node_name",
            spec::s(node.unwrap_or(guest.node.as_str())),
        );
        Ok(state)
    }

    fn fill_node(&self, planned: &mut ValueAny) {
        if matches!(spec::get(planned, "node_name"), ValueAny::Unknown) {
            let settings = self.settings();
            let node = settings
                .node_name
                .clone()
                .or_else(|| {
                    let dir = settings.state_dir().ok()?;
                    StateDir::lock(&dir).ok()?.node_name()
                })
                .unwrap_or_else(|| "pve".to_owned());
            set(planned, "node_name", spec::s(node));
        }
    }
}

fn imported_marker() -> ValueAny {
    let mut m = std::collections::BTreeMap::new();
    m.insert("imported".to_owned(), ValueAny::Bool(true));
    ValueAny::Map(m)
}

#[async_trait]
impl<M: GuestMapping> Resource for GuestResource<M> {
    type State<'a> = ValueAny;
    type PrivateState<'a> = ValueAny;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(M::spec().to_schema(M::DESCRIPTION))
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let full = spec::get_bool(&private_state, "imported") == Some(true);
        match self.do_read(&state, full) {
            Ok(Some(new_state)) => Some((new_state, ValueAny::Null)),
            Ok(None) => None,
            Err(e) => {
                error(diags, "reading the simulated guest failed", &e);
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        _proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut planned = M::spec().plan(&config_state, None);
        self.fill_node(&mut planned);
        Some((planned, ValueAny::Null))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let spec = M::spec();
        let planned = spec.plan(&config_state, Some(&prior_state));
        let replace = spec.replace_paths(&prior_state, &planned);
        Some((planned, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        _prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(ValueAny::Null)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let mut warnings = Vec::new();
        let result = self.do_create(&planned_state, &mut warnings);
        for w in warnings {
            diags.root_warning_short(w);
        }
        reported(diags, "creating the simulated guest failed", result)
            .map(|state| (state, ValueAny::Null))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let result = self.do_update(&prior_state, &planned_state);
        reported(diags, "updating the simulated guest failed", result)
            .map(|state| (state, ValueAny::Null))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let result = self.do_destroy(&prior_state);
        reported(diags, "destroying the simulated guest failed", result)
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let result = self.do_import(&id);
        reported(diags, "importing the simulated guest failed", result)
            .map(|state| (state, imported_marker()))
    }
}
