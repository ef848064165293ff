//! PRoPHET delivery predictabilities (RFC 6693), pure and clock-free.
//!
//! A node keeps, for every other node X it has heard of, its delivery
//! predictability P(me, X) ∈ [0, 1 − δ]. Three rules change it (RFC 6693
//! §2.1.1, the "version 2" equations):
//!
//! * **Encounter** (eq. 1), when a peer B is met:
//!   `P(A,B) = P(A,B)_old + (1 − δ − P(A,B)_old) · P_encounter`, where
//!   `P_encounter = P_encounter_max · min(intvl / I_typ, 1)` and `intvl` is
//!   the time since the previous encounter with B. A node met for the first
//!   time (or whose entry has aged away) starts at `P_encounter_first`.
//! * **Aging** (eq. 2): `P = P_old · γ^K`, K = whole time units elapsed since
//!   the last aging; the remainder carries over, so aging in many small
//!   steps equals aging once.
//! * **Transitivity** (eq. 3, the MAX form):
//!   `P(A,C) = max(P(A,C)_old, P(A,B) · P(B,C) · β)` for every C in B's
//!   advertised table.
//!
//! Entries that fall below `P_first_threshold` are dropped (RFC 6693 §2.1.1,
//! §3.3), and transitive values below it are not stored. Forwarding uses GRTR
//! ([`grtr`], RFC 6693 §3.6): give a bundle for D to peer B only when
//! P(B,D) > P(A,D).
//!
//! All keys are node IDs ([`Eid::node_id`]); time is DTN milliseconds given
//! by the caller. Nothing here does I/O or reads a clock.

use crate::bundle::Eid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most entries a table holds; past it the lowest predictabilities are
/// dropped (a peer's advert cannot grow our table without bound).
pub const MAX_PROPHET_ENTRIES: usize = 100_000;

/// Most entries read from one peer advert in [`ProphetTable::transitive`].
pub const MAX_ADVERT_ENTRIES_IN: usize = 10_000;

/// PRoPHET parameters. Probabilities are in [0, 1]; times are milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProphetParams {
    /// P_encounter_max: the largest increment factor of eq. 1 (RFC 6693
    /// §3.3: 0.7).
    pub p_encounter_max: f64,
    /// P_encounter_first: the predictability of a node met for the first
    /// time (RFC 6693 §3.3: 0.5).
    pub p_encounter_first: f64,
    /// P_first_threshold: entries below it are dropped and not advertised
    /// (RFC 6693 §3.3: 0.1).
    pub p_first_threshold: f64,
    /// δ: keeps every predictability ≤ 1 − δ (RFC 6693 §3.3: 0.01).
    pub delta: f64,
    /// β: transitivity scaling (RFC 6693 §3.3: 0.9).
    pub beta: f64,
    /// γ: aging factor per time unit (RFC 6693 §3.3: 0.999).
    pub gamma: f64,
    /// I_typ: the typical interval between encounters, ms; encounters
    /// closer together count less (eq. 1). A deployment choice; default
    /// 30 minutes.
    pub i_typ_ms: u64,
    /// Length of one aging time unit, ms (K in eq. 2). A deployment choice
    /// (RFC 6693 leaves it open); default 30 s, as the ONE simulator's
    /// `secondsInTimeUnit`. 0 is read as 1.
    pub time_unit_ms: u64,
}

impl Default for ProphetParams {
    /// RFC 6693 §3.3 values; I_typ 30 min and a 30 s time unit.
    fn default() -> ProphetParams {
        ProphetParams {
            p_encounter_max: 0.7,
            p_encounter_first: 0.5,
            p_first_threshold: 0.1,
            delta: 0.01,
            beta: 0.9,
            gamma: 0.999,
            i_typ_ms: 30 * 60 * 1000,
            time_unit_ms: 30 * 1000,
        }
    }
}

/// One destination's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// P(me, X).
    p: f64,
    /// When X was last met directly (DTN ms); `None` if only known
    /// transitively.
    last_encounter_ms: Option<u64>,
}

/// This node's delivery predictabilities P(me, X), keyed by node ID.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProphetTable {
    params: ProphetParams,
    /// This node's own ID, if known: never stored, predictability 1.
    local: Option<Eid>,
    entries: BTreeMap<Eid, Entry>,
    /// Time up to which aging has been applied (a whole number of units
    /// after the first call), DTN ms.
    last_aged_ms: Option<u64>,
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

impl ProphetTable {
    /// This table's entries under `params`, for node `me` (an entry for
    /// `me` itself is dropped; values are clamped to [0, 1]): how a table
    /// restored from the store is adopted.
    pub fn rebased(mut self, params: ProphetParams, me: &Eid) -> Self {
        let me = me.node_id();
        self.entries.remove(&me);
        for e in self.entries.values_mut() {
            e.p = clamp01(e.p);
        }
        self.params = params;
        self.local = Some(me);
        self
    }

    /// An empty table.
    pub fn new(params: ProphetParams) -> Self {
        ProphetTable {
            params,
            ..ProphetTable::default()
        }
    }

    /// Names this node, so that entries for itself (which peers advertise)
    /// are ignored and [`predictability`](Self::predictability) of itself
    /// is 1.
    pub fn with_local(mut self, me: &Eid) -> Self {
        let me = me.node_id();
        self.entries.remove(&me);
        self.local = Some(me);
        self
    }

    /// The parameters in use.
    pub fn params(&self) -> &ProphetParams {
        &self.params
    }

    /// Number of destinations with a stored predictability.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no destination is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn is_local(&self, node: &Eid) -> bool {
        self.local.as_ref() == Some(node)
    }

    /// Applies eq. 2 up to `now_ms`: every P is multiplied by γ^K, K the
    /// number of whole time units since the last aging; the remainder is
    /// kept for the next call. Entries falling below `p_first_threshold`
    /// are dropped. The first call only sets the reference time; a `now_ms`
    /// earlier than the reference changes nothing.
    pub fn age(&mut self, now_ms: u64) {
        let unit = self.params.time_unit_ms.max(1);
        let Some(last) = self.last_aged_ms else {
            self.last_aged_ms = Some(now_ms);
            return;
        };
        let k = now_ms.saturating_sub(last) / unit;
        if k == 0 {
            return;
        }
        self.last_aged_ms = Some(last + k * unit);
        // k can be huge after a long silence; powf handles it (→ 0).
        let factor = clamp01(self.params.gamma.powf(k as f64));
        let threshold = self.params.p_first_threshold;
        self.entries.retain(|_, e| {
            e.p *= factor;
            e.p >= threshold
        });
    }

    /// Records a direct encounter with `peer` at `now_ms` (eq. 1), after
    /// aging to `now_ms`. A peer without an entry starts at
    /// `p_encounter_first`; otherwise `P_encounter = P_encounter_max ·
    /// min(intvl / I_typ, 1)`, intvl = time since the last encounter with
    /// it (I_typ 0 or no earlier encounter: P_encounter_max). Encountering
    /// oneself is ignored.
    pub fn encounter(&mut self, now_ms: u64, peer: &Eid) {
        self.age(now_ms);
        let b = peer.node_id();
        if b.is_none() || self.is_local(&b) {
            return;
        }
        let p = &self.params;
        let ceiling = clamp01(1.0 - p.delta);
        let (first, max, i_typ) = (
            clamp01(p.p_encounter_first),
            clamp01(p.p_encounter_max),
            p.i_typ_ms,
        );
        match self.entries.get_mut(&b) {
            None => {
                let p = first.min(ceiling);
                let last_encounter_ms = Some(now_ms);
                self.entries.insert(
                    b,
                    Entry {
                        p,
                        last_encounter_ms,
                    },
                );
            }
            Some(e) => {
                let p_enc = match e.last_encounter_ms {
                    Some(last) if i_typ > 0 => {
                        let intvl = now_ms.saturating_sub(last);
                        max * (intvl as f64 / i_typ as f64).min(1.0)
                    }
                    _ => max,
                };
                e.p = (e.p + (ceiling - e.p) * p_enc).clamp(0.0, ceiling);
                e.last_encounter_ms = Some(now_ms);
            }
        }
        self.enforce_cap();
    }

    /// Applies eq. 3 (MAX form) with `peer`'s advertised table
    /// `peer_table` = [(C, P(peer, C))], after aging to `now_ms`:
    /// `P(me,C) = max(P(me,C), P(me,peer) · P(peer,C) · β)`. Entries for
    /// `peer` itself and for this node are skipped; non-finite values are
    /// ignored and others clamped to [0, 1]; at most
    /// [`MAX_ADVERT_ENTRIES_IN`] entries are read. Does nothing if `peer`
    /// has no predictability (call [`encounter`](Self::encounter) first).
    pub fn transitive(&mut self, now_ms: u64, peer: &Eid, peer_table: &[(Eid, f64)]) {
        self.age(now_ms);
        let b = peer.node_id();
        let p_ab = self.predictability(&b);
        if p_ab <= 0.0 || self.is_local(&b) {
            return;
        }
        let (beta, threshold) = (clamp01(self.params.beta), self.params.p_first_threshold);
        let ceiling = clamp01(1.0 - self.params.delta);
        for (c, p_bc) in peer_table.iter().take(MAX_ADVERT_ENTRIES_IN) {
            if !p_bc.is_finite() {
                continue;
            }
            let cand = (p_ab * clamp01(*p_bc) * beta).min(ceiling);
            if cand < threshold || cand <= 0.0 {
                continue;
            }
            let c = c.node_id();
            if c == b || c.is_none() || self.is_local(&c) {
                continue;
            }
            let e = self.entries.entry(c).or_insert(Entry {
                p: 0.0,
                last_encounter_ms: None,
            });
            e.p = e.p.max(cand);
        }
        self.enforce_cap();
    }

    /// Drops the lowest entries beyond [`MAX_PROPHET_ENTRIES`].
    fn enforce_cap(&mut self) {
        let excess = self.entries.len().saturating_sub(MAX_PROPHET_ENTRIES);
        if excess == 0 {
            return;
        }
        let mut by_p: Vec<(f64, Eid)> =
            self.entries.iter().map(|(k, e)| (e.p, k.clone())).collect();
        by_p.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        for (_, k) in by_p.into_iter().take(excess) {
            self.entries.remove(&k);
        }
    }

    /// P(me, dest) as of the last aging (0.0 if unknown, 1.0 for this node
    /// when named with [`with_local`](Self::with_local)). `dest` is compared
    /// by its node ID, so any endpoint of the node may be passed.
    pub fn predictability(&self, dest: &Eid) -> f64 {
        let lookup = |k: &Eid| {
            if self.is_local(k) {
                1.0
            } else {
                self.entries.get(k).map_or(0.0, |e| e.p)
            }
        };
        if dest.is_node_id() {
            lookup(dest)
        } else {
            lookup(&dest.node_id())
        }
    }

    /// The table to advertise to a peer: (node ID, P(me, node)), highest
    /// first (ties by node ID), at most `max_entries`, entries below
    /// `p_first_threshold` left out.
    pub fn advert(&self, max_entries: usize) -> Vec<(Eid, f64)> {
        let threshold = self.params.p_first_threshold;
        let mut v: Vec<(Eid, f64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.p >= threshold)
            .map(|(k, e)| (k.clone(), e.p))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(max_entries);
        v
    }
}

/// GRTR (RFC 6693 §3.6 forwarding strategies): forward a bundle to the peer
/// when the peer's predictability for the destination, `peers` = P(B, D),
/// is greater than ours, `mine` = P(A, D). NaN never forwards.
pub fn grtr(mine: f64, peers: f64) -> bool {
    peers > mine
}

#[cfg(test)]
#[path = "prophet_tests.rs"]
mod tests;
