//! Contact plans: scheduled contacts (start, end, from, to, rate, one-way
//! delay), as used by contact graph routing (spec/routing.md §6).

use crate::bundle::Eid;

/// One scheduled, one-directional contact.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedContact {
    /// Start, DTN ms.
    pub start_ms: u64,
    /// End, DTN ms (> start).
    pub end_ms: u64,
    /// Sending node ID.
    pub from: Eid,
    /// Receiving node ID.
    pub to: Eid,
    /// Rate in bytes per second; `None` = unlimited.
    pub rate_bytes_per_s: Option<u64>,
    /// One-way light/propagation delay, ms.
    pub delay_ms: u64,
}

/// A contact plan: every planned contact, sorted by start time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactPlan {
    /// Contacts sorted by `start_ms`.
    pub contacts: Vec<PlannedContact>,
}
