//! Capability advertisements (spec/jobs.md §5): what a node offers, sent to
//! each peer when a contact starts and whenever it changes.

use super::{ServiceConfig, ServiceKind};
use serde::{Deserialize, Serialize};

/// Most services listed in one advertisement (more are cut).
pub const MAX_ADVERTISED_SERVICES: usize = 256;
/// Most models listed per service (more are cut).
pub const MAX_ADVERTISED_MODELS: usize = 256;

/// One offered service and its load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAdvert {
    /// Service name.
    pub name: String,
    /// `exec` or `ollama`.
    pub kind: String,
    /// Models served (ollama services).
    #[serde(default)]
    pub models: Vec<String>,
    /// Slots free now (concurrency minus running jobs).
    pub free_slots: u32,
    /// Jobs waiting for a slot.
    pub queue: u32,
}

/// A coarse hardware summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// Logical CPU cores.
    pub cores: u32,
    /// Physical memory, bytes.
    pub memory_bytes: u64,
    /// A GPU device is present.
    pub gpu: bool,
}

/// What a node offers: its services with their load, and its hardware.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Services offered.
    pub services: Vec<ServiceAdvert>,
    /// Hardware summary.
    pub hardware: Hardware,
}

impl Capabilities {
    /// The advertisement for `services`, with `load(name)` = (free slots,
    /// queue length).
    pub fn of(
        services: &[ServiceConfig],
        hardware: Hardware,
        load: impl Fn(&str) -> (u32, u32),
    ) -> Capabilities {
        let services = services
            .iter()
            .take(MAX_ADVERTISED_SERVICES)
            .map(|s| {
                let (free_slots, queue) = load(&s.name);
                let (kind, models) = match &s.kind {
                    ServiceKind::Exec { .. } => ("exec", Vec::new()),
                    ServiceKind::Ollama { models, .. } => ("ollama", models.clone()),
                };
                ServiceAdvert {
                    name: s.name.clone(),
                    kind: kind.to_owned(),
                    models,
                    free_slots,
                    queue,
                }
            })
            .collect();
        Capabilities { services, hardware }
    }

    /// Cuts lists received from a peer to the advertised limits.
    pub fn bounded(mut self) -> Capabilities {
        self.services.truncate(MAX_ADVERTISED_SERVICES);
        for s in &mut self.services {
            s.models.truncate(MAX_ADVERTISED_MODELS);
        }
        self
    }

    /// The advertised service `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceAdvert> {
        self.services.iter().find(|s| s.name == name)
    }
}
