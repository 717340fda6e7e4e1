//! The provider: its configuration block and the two resource types.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{Diagnostics, DynamicResource, Provider};

use crate::container::Container;
use crate::resource::{GuestResource, Settings, SharedSettings};
use crate::spec::{Kind, block, optional, required};
use crate::vm::Vm;

/// Name the provider is served under: resource types read `proxmox_virtual_environment_*`.
pub const PROVIDER_NAME: &str = "proxmox";

/// The `provider "proxmox" {}` block.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// Simulator state directory (default: `$PVE_SIM_STATE`).
    pub state_dir: Value<String>,
    /// Node name for resources that leave `node_name` unset (default: `node.json`, else `pve`).
    pub node_name: Value<String>,
}

/// The simulated-node provider.
#[derive(Debug, Clone, Default)]
pub struct SimProvider {
    settings: SharedSettings,
}

impl SimProvider {
    /// A provider not yet configured.
    pub fn new() -> Self {
        Self {
            settings: Arc::new(Mutex::new(Settings::default())),
        }
    }
}

#[async_trait]
impl Provider for SimProvider {
    type Config<'a> = ProviderConfig;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        // bpg's connection settings are accepted and ignored, so a homelab's provider block works as is.
        let spec = block(
            "",
            0,
            vec![
                optional("state_dir", Kind::Str),
                optional("node_name", Kind::Str),
                optional("endpoint", Kind::Str),
                optional("api_token", Kind::Str).sensitive(),
                optional("username", Kind::Str),
                optional("password", Kind::Str).sensitive(),
                optional("otp", Kind::Str),
                optional("insecure", Kind::Bool),
                optional("min_tls", Kind::Str),
                optional("tmp_dir", Kind::Str),
                optional("random_vm_ids", Kind::Bool),
            ],
            vec![block(
                "ssh",
                1,
                vec![
                    optional("agent", Kind::Bool),
                    optional("agent_socket", Kind::Str),
                    optional("username", Kind::Str),
                    optional("password", Kind::Str).sensitive(),
                    optional("private_key", Kind::Str).sensitive(),
                ],
                vec![block(
                    "node",
                    0,
                    vec![
                        required("name", Kind::Str),
                        required("address", Kind::Str),
                        optional("port", Kind::Num),
                    ],
                    vec![],
                )],
            )],
        );
        Some(Schema {
            version: 0,
            block: Block {
                description: Description::plain(
                    "Test provider acting on the simulated Proxmox node's state directory",
                ),
                ..spec.to_block("provider")
            },
        })
    }

    async fn configure<'a>(
        &self,
        _diags: &mut Diagnostics,
        _terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        let mut settings = match self.settings.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Value::Value(dir) = config.state_dir {
            settings.state_dir = Some(PathBuf::from(dir));
        }
        if let Value::Value(node) = config.node_name {
            settings.node_name = Some(node);
        }
        Some(())
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        let mut map: HashMap<String, Box<dyn DynamicResource>> = HashMap::new();
        map.insert(
            "virtual_environment_vm".to_owned(),
            Box::new(GuestResource::<Vm>::new(self.settings.clone())),
        );
        map.insert(
            "virtual_environment_container".to_owned(),
            Box::new(GuestResource::<Container>::new(self.settings.clone())),
        );
        Some(map)
    }
}
