//! Capability adverts on the wire (spec/jobs.md §5): ours, sent at contact
//! start and when our load changes; the peers', kept in memory.

use super::Shared;
use super::proto::ControlMessage;
use crate::bundle::Eid;
use crate::cla::quic::Contact;
use crate::jobs::{Capabilities, Hardware};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::debug;

/// Most peers whose capabilities are remembered.
const MAX_PEERS: usize = 4096;

/// Capabilities last advertised by each peer.
#[derive(Default)]
pub(crate) struct PeerCaps(Mutex<BTreeMap<Eid, Capabilities>>);

impl PeerCaps {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Eid, Capabilities>> {
        // Poisoning only follows a panic elsewhere; the map stays usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `peer`'s advertisement (ignored beyond [`MAX_PEERS`] new peers).
    pub fn set(&self, peer: Eid, caps: Capabilities) {
        let mut m = self.lock();
        if m.len() < MAX_PEERS || m.contains_key(&peer) {
            m.insert(peer, caps.bounded());
        }
    }

    /// A copy of every peer's capabilities.
    pub fn all(&self) -> BTreeMap<Eid, Capabilities> {
        self.lock().clone()
    }
}

/// This machine's coarse hardware: cores, memory (from /proc/meminfo on
/// Linux, else 0), GPU (an NVIDIA or DRI render device node exists).
pub(crate) fn hardware() -> Hardware {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0);
    let gpu = ["/dev/nvidia0", "/dev/dri/renderD128", "/dev/kfd"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    Hardware {
        cores,
        memory_bytes,
        gpu,
    }
}

/// Our capabilities now.
pub(crate) fn ours(shared: &Shared) -> Capabilities {
    let jobs = &shared.jobs;
    Capabilities::of(&jobs.config().services, jobs.hardware.clone(), |name| {
        jobs.load(name)
            .map_or((0, 0), |l| (l.free_slots as u32, l.queued as u32))
    })
}

/// Sends our capabilities on contact `c`; a node without services sends
/// them too (an empty service list and its hardware, spec/jobs.md §5).
/// The load is read when the send starts, not when this is called, so that
/// of adverts raced by quick load changes the last sent is close to now.
pub(crate) fn advertise(shared: &Arc<Shared>, c: &Contact) {
    let (shared, c) = (shared.clone(), c.clone());
    tokio::spawn(async move {
        let msg = ControlMessage::Capabilities {
            caps: ours(&shared),
        };
        if let Err(e) = c.send_control(&msg).await {
            debug!(error = %e, "cannot send capabilities");
        }
    });
}

/// Sends our capabilities to every peer in contact (our load changed).
pub(crate) fn broadcast(shared: &Arc<Shared>) {
    for c in shared.contacts.all() {
        advertise(shared, &c);
    }
}
