//! Earliest-arrival routing over a contact plan, as ION's contact graph
//! routing (CGR) computes routes; pure and clock-free.
//!
//! A bundle of `size` bytes that is at node u at time t can use a planned
//! contact c from u to v when `t < c.end`. It leaves at
//! `depart = max(t, c.start)`, needs `tx = ⌈size · 1000 / rate⌉` ms (0 when
//! the rate is unlimited), must finish by the end of the contact
//! (`depart + tx ≤ c.end`) and reaches v at `depart + tx + c.delay_ms`.
//! Because arrival through a contact never decreases when the bundle is
//! ready later (contacts are FIFO), a Dijkstra search over nodes keyed by
//! arrival time finds the earliest arrival exactly (ties: fewer hops
//! preferred where the search meets them).
//!
//! Capacity: bytes booked on a contact ([`CgrIndex::book`], done for the
//! local node's outbound contacts as bundles are sent on them, as ION
//! debits a contact's residual volume) are sent first: a later bundle
//! departs no earlier than `c.start + ⌈booked · 1000 / rate⌉` and must
//! still finish by `c.end`, so a full contact is skipped and the search
//! finds the next one. Bookings live in memory (a restart forgets them).
//!
//! Simplified against ION: one route per query (no route lists or Yen's
//! k-shortest), no priority classes, no confidence, bookings only for the
//! local node's contacts (others' traffic is unknown here).
//!
//! Cost: [`CgrIndex::new`] is O(C + N) for C contacts and N nodes; one
//! query is O((C + N) log C) in the worst case and touches only contacts
//! leaving nodes it reaches before the deadline.

use super::plan::ContactPlan;
use crate::bundle::Eid;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The best route found for one bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// The node the bundle goes to first (receiver of `first_contact`).
    pub first_hop: Eid,
    /// Index of the first contact in `plan.contacts`.
    pub first_contact: usize,
    /// Earliest arrival at the destination, DTN ms.
    pub arrival_ms: u64,
    /// Contacts used (≥ 1).
    pub hops: usize,
}

/// A contact with node indices instead of EIDs.
#[derive(Clone, Debug)]
struct Edge {
    to: u32,
    start_ms: u64,
    end_ms: u64,
    rate_bytes_per_s: Option<u64>,
    delay_ms: u64,
}

/// Per-query search state: labels (one per node) and the queue.
struct Search {
    arrival: Vec<u64>,
    hops: Vec<u32>,
    /// First contact of the best path to the node (`u32::MAX`: none).
    first: Vec<u32>,
    /// Min-queue of (arrival, hops, node).
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

/// What one query asks, besides its end points.
struct Query {
    size_bytes: u64,
    deadline_ms: u64,
    /// Nodes not to pass through, by index.
    blocked: Vec<bool>,
}

const NONE: u32 = u32::MAX;

/// A contact plan indexed for repeated queries: nodes numbered, and each
/// node's outgoing contacts listed in start order. Build once per plan.
#[derive(Clone, Debug, Default)]
pub struct CgrIndex {
    ids: HashMap<Eid, u32>,
    names: Vec<Eid>,
    /// `out[u]`: indices into `edges` (= into `plan.contacts`), by start.
    out: Vec<Vec<u32>>,
    edges: Vec<Edge>,
    /// Bytes booked on each contact (same indices as `edges`).
    booked: Vec<u64>,
}

/// Transmission time of `size_bytes` at `rate` B/s, ms, rounded up;
/// saturates at `u64::MAX`.
fn tx_ms(size_bytes: u64, rate: Option<u64>) -> u64 {
    match rate {
        None => 0,
        Some(0) => u64::MAX,
        Some(r) => {
            let ms = (u128::from(size_bytes) * 1000).div_ceil(u128::from(r));
            u64::try_from(ms).unwrap_or(u64::MAX)
        }
    }
}

impl CgrIndex {
    /// Indexes `plan`. Plans are limited to `u32::MAX - 1` contacts and
    /// nodes (contacts past that are ignored; parsed plans hold at most
    /// [`super::plan::MAX_CONTACTS`]).
    pub fn new(plan: &ContactPlan) -> CgrIndex {
        let mut ix = CgrIndex::default();
        let limit = (u32::MAX - 1) as usize;
        for c in plan.contacts.iter().take(limit) {
            let from = ix.intern(&c.from);
            let to = ix.intern(&c.to);
            let e = ix.edges.len() as u32;
            ix.edges.push(Edge {
                to,
                start_ms: c.start_ms,
                end_ms: c.end_ms,
                rate_bytes_per_s: c.rate_bytes_per_s,
                delay_ms: c.delay_ms,
            });
            ix.out[from as usize].push(e);
            ix.booked.push(0);
        }
        // Plans are sorted by start, but a hand-built one may not be.
        for list in &mut ix.out {
            list.sort_by_key(|&e| ix.edges[e as usize].start_ms);
        }
        ix
    }

    fn intern(&mut self, node: &Eid) -> u32 {
        let key = node.node_id();
        if let Some(&i) = self.ids.get(&key) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(key.clone(), i);
        self.names.push(key);
        self.out.push(Vec::new());
        i
    }

    fn id(&self, node: &Eid) -> Option<u32> {
        if node.is_node_id() {
            self.ids.get(node).copied()
        } else {
            self.ids.get(&node.node_id()).copied()
        }
    }

    /// Books `bytes` on contact `contact` (an index into `plan.contacts`):
    /// later queries see them queued ahead of any new bundle. Unknown
    /// indices are ignored; the total saturates.
    pub fn book(&mut self, contact: usize, bytes: u64) {
        if let Some(b) = self.booked.get_mut(contact) {
            *b = b.saturating_add(bytes);
        }
    }

    /// Bytes booked on contact `contact` (0 for unknown indices).
    pub fn booked(&self, contact: usize) -> u64 {
        self.booked.get(contact).copied().unwrap_or(0)
    }

    /// Number of distinct nodes in the plan.
    pub fn node_count(&self) -> usize {
        self.names.len()
    }

    /// Earliest arrival at `to` of a bundle of `size_bytes` that is at
    /// `from` at `now_ms` and must arrive by `deadline_ms` (inclusive), per
    /// the model of the module docs. `exclude` lists nodes the route must
    /// not pass through (e.g. the previous hop); the destination itself is
    /// never excluded. Nodes are compared by node ID.
    ///
    /// Returns `None` when no route arrives by the deadline, when `from` or
    /// `to` is not in the plan, or when `from` and `to` are the same node
    /// (deliver locally).
    pub fn earliest_arrival(
        &self,
        from: &Eid,
        to: &Eid,
        now_ms: u64,
        size_bytes: u64,
        deadline_ms: u64,
        exclude: &[Eid],
    ) -> Option<Route> {
        let (src, dst) = (self.id(from)?, self.id(to)?);
        if src == dst || now_ms > deadline_ms {
            return None;
        }
        let n = self.names.len();
        let mut q = Query {
            size_bytes,
            deadline_ms,
            blocked: vec![false; n],
        };
        for x in exclude {
            if let Some(i) = self.id(x) {
                q.blocked[i as usize] = true;
            }
        }
        q.blocked[dst as usize] = false;
        let mut l = Search {
            arrival: vec![u64::MAX; n],
            hops: vec![u32::MAX; n],
            first: vec![NONE; n],
            heap: BinaryHeap::new(),
        };
        l.arrival[src as usize] = now_ms;
        l.hops[src as usize] = 0;
        l.heap.push(Reverse((now_ms, 0u32, src)));
        while let Some(Reverse((t, hops, u))) = l.heap.pop() {
            let ui = u as usize;
            if (t, hops) != (l.arrival[ui], l.hops[ui]) {
                continue; // stale entry
            }
            if u == dst {
                break;
            }
            self.relax(&q, &mut l, u, t, hops);
        }
        let d = dst as usize;
        if l.arrival[d] == u64::MAX {
            return None;
        }
        let first = l.first[d] as usize;
        Some(Route {
            first_hop: self.names[self.edges[first].to as usize].clone(),
            first_contact: first,
            arrival_ms: l.arrival[d],
            hops: l.hops[d] as usize,
        })
    }

    /// Tries every contact leaving `u` for a bundle ready there at `t`
    /// after `hops` contacts.
    fn relax(&self, q: &Query, l: &mut Search, u: u32, t: u64, hops: u32) {
        for &ei in &self.out[u as usize] {
            let e = &self.edges[ei as usize];
            if e.start_ms > q.deadline_ms {
                break; // sorted by start: no later contact can help
            }
            if e.end_ms <= t || q.blocked[e.to as usize] {
                continue;
            }
            let backlog_ms = tx_ms(self.booked[ei as usize], e.rate_bytes_per_s);
            let depart = t.max(e.start_ms.saturating_add(backlog_ms));
            let finish = depart.saturating_add(tx_ms(q.size_bytes, e.rate_bytes_per_s));
            if finish > e.end_ms {
                continue;
            }
            let arrive = finish.saturating_add(e.delay_ms);
            let v = e.to as usize;
            let h = hops + 1;
            if arrive > q.deadline_ms || (arrive, h) >= (l.arrival[v], l.hops[v]) {
                continue;
            }
            l.arrival[v] = arrive;
            l.hops[v] = h;
            l.first[v] = if hops == 0 { ei } else { l.first[u as usize] };
            l.heap.push(Reverse((arrive, h, e.to)));
        }
    }
}

/// [`CgrIndex::earliest_arrival`] on a plan indexed for this one query
/// (O(C) extra); index once with [`CgrIndex::new`] for repeated queries.
pub fn earliest_arrival(
    plan: &ContactPlan,
    from: &Eid,
    to: &Eid,
    now_ms: u64,
    size_bytes: u64,
    deadline_ms: u64,
    exclude: &[Eid],
) -> Option<Route> {
    CgrIndex::new(plan).earliest_arrival(from, to, now_ms, size_bytes, deadline_ms, exclude)
}

#[cfg(test)]
#[path = "cgr_tests.rs"]
mod tests;
