//! The summary of a run (`--json` keys are a contract: scripts read them)
//! and the series for plots.

use crate::workload::Message;
use crate::world::Outcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Buffer occupancy over nodes, sampled periodically.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Occupancy {
    /// Mean held payload bytes per node.
    pub mean: f64,
    /// Largest held payload bytes of one node at one sample.
    pub max: u64,
}

/// The summary of one run. Latencies are in seconds from creation; only
/// counted messages (created at or after the warm-up) are included.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Routing policy, e.g. `spray-and-wait:8`.
    pub router: String,
    /// Seed of the run.
    pub seed: u64,
    /// Counted messages created.
    pub created: u64,
    /// Counted messages delivered.
    pub delivered: u64,
    /// delivered / created.
    pub delivery_ratio: f64,
    /// Mean latency, s (`null` if nothing was delivered).
    pub latency_mean: Option<f64>,
    /// Median latency, s.
    pub latency_median: Option<f64>,
    /// 95th percentile latency, s.
    pub latency_p95: Option<f64>,
    /// Mean hops of delivered messages.
    pub hop_count_mean: Option<f64>,
    /// Transfers accepted by their receiver (all messages).
    pub relayed: u64,
    /// (relayed − delivered) / delivered, as the ONE simulator reports it.
    pub overhead_ratio: Option<f64>,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
    /// Held bytes per node.
    pub buffer_occupancy: Occupancy,
    /// Counted messages the oracle delivers.
    pub oracle_delivered: u64,
    /// Mean oracle latency over those, s.
    pub oracle_latency_mean: Option<f64>,
    /// delivered / oracle_delivered.
    pub oracle_fraction: Option<f64>,
    /// Events popped from the queue.
    pub events: u64,
    /// Events per wall-clock second (not deterministic).
    pub events_per_s: f64,
    /// Wall-clock seconds of the event loop (not deterministic).
    pub wall_s: f64,
}

/// Data for plots: when messages were delivered and how long they took.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Series {
    /// Routing policy.
    pub router: String,
    /// Counted messages created.
    pub created: u64,
    /// Delivery times of counted messages, s, sorted.
    pub delivered_at_s: Vec<f64>,
    /// Latencies of counted delivered messages, s, sorted.
    pub latencies_s: Vec<f64>,
}

/// The value at quantile `q` (0..=1) of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = v.fold((0u64, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

/// Sorted latencies (s) of counted delivered messages.
fn latencies(messages: &[Message], at: &[Option<u64>]) -> Vec<f64> {
    let mut v: Vec<f64> = messages
        .iter()
        .zip(at)
        .filter(|(m, _)| m.counted)
        .filter_map(|(m, d)| d.map(|d| d.saturating_sub(m.time_us) as f64 / 1e6))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Builds the report of a run from its outcome and the oracle's deliveries.
pub fn build(
    router: String,
    seed: u64,
    messages: &[Message],
    out: &Outcome,
    oracle: &[Option<u64>],
) -> Report {
    let created = messages.iter().filter(|m| m.counted).count() as u64;
    let lat = latencies(messages, &out.delivered_at);
    let delivered = lat.len() as u64;
    let hops = messages
        .iter()
        .zip(out.delivered_at.iter().zip(&out.hops))
        .filter(|(m, (d, _))| m.counted && d.is_some())
        .map(|(_, (_, h))| f64::from(*h));
    let olat = latencies(messages, oracle);
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    Report {
        router,
        seed,
        created,
        delivered,
        delivery_ratio: ratio(delivered, created).unwrap_or(0.0),
        latency_mean: mean(lat.iter().copied()),
        latency_median: quantile(&lat, 0.5),
        latency_p95: quantile(&lat, 0.95),
        hop_count_mean: mean(hops),
        relayed: out.relayed,
        overhead_ratio: ratio(out.relayed.saturating_sub(delivered), delivered),
        drops: out.drops.clone(),
        buffer_occupancy: Occupancy {
            mean: out.occupancy_mean,
            max: out.occupancy_max,
        },
        oracle_delivered: olat.len() as u64,
        oracle_latency_mean: mean(olat.iter().copied()),
        oracle_fraction: ratio(delivered, olat.len() as u64),
        events: out.events,
        events_per_s: out.events as f64 / out.wall_s.max(1e-9),
        wall_s: out.wall_s,
    }
}

/// The plot series of a run.
pub fn series(router: String, messages: &[Message], out: &Outcome) -> Series {
    let mut at: Vec<f64> = messages
        .iter()
        .zip(&out.delivered_at)
        .filter(|(m, _)| m.counted)
        .filter_map(|(_, d)| d.map(|d| d as f64 / 1e6))
        .collect();
    at.sort_by(f64::total_cmp);
    Series {
        router,
        created: messages.iter().filter(|m| m.counted).count() as u64,
        delivered_at_s: at,
        latencies_s: latencies(messages, &out.delivered_at),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
}

/// A human-readable table of `r`.
pub fn table(r: &Report) -> String {
    let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let rows = [
        ("router", r.router.clone()),
        ("seed", r.seed.to_string()),
        ("created", r.created.to_string()),
        ("delivered", r.delivered.to_string()),
        ("delivery_ratio", format!("{:.4}", r.delivery_ratio)),
        ("latency_mean (s)", opt(r.latency_mean)),
        ("latency_median (s)", opt(r.latency_median)),
        ("latency_p95 (s)", opt(r.latency_p95)),
        ("hop_count_mean", opt(r.hop_count_mean)),
        ("relayed", r.relayed.to_string()),
        ("overhead_ratio", opt(r.overhead_ratio)),
        ("drops", drops.join(" ")),
        (
            "buffer mean/max (B)",
            format!(
                "{:.0} / {}",
                r.buffer_occupancy.mean, r.buffer_occupancy.max
            ),
        ),
        ("oracle_delivered", r.oracle_delivered.to_string()),
        ("oracle_latency_mean (s)", opt(r.oracle_latency_mean)),
        ("oracle_fraction", opt(r.oracle_fraction)),
        ("events", r.events.to_string()),
        ("events_per_s", format!("{:.0}", r.events_per_s)),
    ];
    rows.iter().map(|(k, v)| format!("{k:<24} {v}\n")).collect()
}
