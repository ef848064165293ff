//! Where the wall-clock time of a run goes: count and total time of
//! `Agent::handle` per event kind, and of `next_wakeup`.

use serde::Serialize;
use spore::agent::Event;
use std::collections::BTreeMap;
use std::time::Duration;

/// Calls and time per agent call kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Profile {
    /// Kind → (calls, total µs).
    pub calls: BTreeMap<&'static str, (u64, f64)>,
}

impl Profile {
    /// Adds one call of `kind` that took `d`.
    pub fn add(&mut self, kind: &'static str, d: Duration) {
        let e = self.calls.entry(kind).or_default();
        e.0 += 1;
        e.1 += d.as_secs_f64() * 1e6;
    }

    /// A table: kind, calls, total ms, µs per call, share of the total.
    pub fn table(&self) -> String {
        let total: f64 = self.calls.values().map(|v| v.1).sum();
        let mut rows: Vec<_> = self.calls.iter().collect();
        rows.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
        let mut s = format!(
            "{:<16} {:>10} {:>10} {:>9} {:>6}\n",
            "call", "calls", "total_ms", "us/call", "share"
        );
        for (k, (n, us)) in rows {
            s += &format!(
                "{:<16} {:>10} {:>10.1} {:>9.2} {:>5.1}%\n",
                k,
                n,
                us / 1e3,
                us / (*n).max(1) as f64,
                100.0 * us / total.max(1e-9)
            );
        }
        s
    }
}

/// A short name of the event's kind.
pub fn kind(ev: &Event) -> &'static str {
    match ev {
        Event::ContactUp { .. } => "ContactUp",
        Event::ContactDown { .. } => "ContactDown",
        Event::RttSample { .. } => "RttSample",
        Event::PeerSummary { .. } => "PeerSummary",
        Event::PeerAdvert { .. } => "PeerAdvert",
        Event::Received(_) => "Received",
        Event::Submit { .. } => "Submit",
        Event::TransmitFailed { .. } => "TransmitFailed",
        Event::CustodySignal { .. } => "CustodySignal",
        Event::FileWritten { .. } => "FileWritten",
        Event::AssemblyFailed { .. } => "AssemblyFailed",
        Event::Tick => "Tick",
        Event::Metered { .. } => "Metered",
    }
}
