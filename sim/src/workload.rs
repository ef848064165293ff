//! The messages a run submits: generated (seeded) or read from a ONE
//! workload file.

use crate::trace::MessageEvent;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One message to create during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Creation time, µs.
    pub time_us: u64,
    /// Source node.
    pub from: u32,
    /// Destination node (≠ `from`).
    pub to: u32,
    /// Payload size, bytes.
    pub size: u64,
    /// Lifetime, µs.
    pub lifetime_us: u64,
    /// Counted in the statistics (created at or after the warm-up).
    pub counted: bool,
}

/// How [`generate`] makes messages.
#[derive(Clone, Debug)]
pub struct WorkloadParams {
    /// Number of messages.
    pub messages: u64,
    /// Nodes to choose from (≥ 2).
    pub nodes: u32,
    /// Payload size range, bytes (min ≤ max).
    pub size: (u64, u64),
    /// Creation times are drawn from `[warmup_us, end_us)`.
    pub warmup_us: u64,
    /// End of the creation window, µs.
    pub end_us: u64,
    /// Message lifetime, µs.
    pub lifetime_us: u64,
    /// RNG seed.
    pub seed: u64,
}

/// `p.messages` messages with uniform random (source ≠ destination) pairs,
/// uniform creation times over `[warmup_us, end_us)` and uniform sizes,
/// sorted by creation time. Empty if fewer than 2 nodes or an empty window.
pub fn generate(p: &WorkloadParams) -> Vec<Message> {
    if p.nodes < 2 || p.end_us <= p.warmup_us {
        return Vec::new();
    }
    // A stream separate from the trace generators' for the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ 0x5eed_3e55_a9e5);
    let mut out: Vec<Message> = (0..p.messages)
        .map(|_| {
            let from = rng.random_range(0..p.nodes);
            let to = (from + rng.random_range(1..p.nodes)) % p.nodes;
            Message {
                time_us: rng.random_range(p.warmup_us..p.end_us),
                from,
                to,
                size: rng.random_range(p.size.0..=p.size.1.max(p.size.0)),
                lifetime_us: p.lifetime_us,
                counted: true,
            }
        })
        .collect();
    out.sort_by_key(|m| m.time_us);
    out
}

/// Messages from workload `C` events; those created before `warmup_us` are
/// submitted but not counted.
pub fn from_events(events: &[MessageEvent], lifetime_us: u64, warmup_us: u64) -> Vec<Message> {
    events
        .iter()
        .map(|e| Message {
            time_us: e.time_us,
            from: e.from,
            to: e.to,
            size: e.size,
            lifetime_us,
            counted: e.time_us >= warmup_us,
        })
        .collect()
}
