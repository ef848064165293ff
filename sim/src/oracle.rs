//! The oracle: the earliest possible delivery of each message over the
//! trace with unlimited bandwidth and buffers.
//!
//! A time-respecting path search (Dijkstra on earliest arrival): a message
//! at node `u` at time `t` can take a contact `u → v` over `[s, e]` if
//! `t ≤ e`, leaving at `max(t, s)` and arriving at `max(t, s) + delay`.
//! A message counts as deliverable if it arrives no later than its expiry
//! (creation + lifetime) and the end of the trace.

use crate::trace::Contact;
use crate::workload::Message;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One contact as seen from its sender: (start µs, end µs, delay µs).
type Span = (u64, u64, u64);

/// The contact graph: for each node, its neighbours with their contacts
/// sorted by start (contacts of one directed pair do not overlap, so they
/// are sorted by end too).
pub struct Oracle {
    adj: Vec<Vec<(u32, Vec<Span>)>>,
    end_us: u64,
}

impl Oracle {
    /// The graph of `contacts` among `nodes` nodes; paths end by `end_us`.
    pub fn new(contacts: &[Contact], nodes: u32, end_us: u64) -> Oracle {
        let mut adj: Vec<Vec<(u32, Vec<Span>)>> = vec![Vec::new(); nodes as usize];
        for c in contacts {
            let Some(list) = adj.get_mut(c.from as usize) else {
                continue;
            };
            let span = (c.start_us, c.end_us, c.delay_us);
            match list.iter_mut().find(|(to, _)| *to == c.to) {
                Some((_, spans)) => spans.push(span),
                None => list.push((c.to, vec![span])),
            }
        }
        for list in &mut adj {
            list.sort_by_key(|(to, _)| *to);
            for (_, spans) in list.iter_mut() {
                spans.sort_unstable();
            }
        }
        Oracle { adj, end_us }
    }

    /// Earliest arrival (µs) at `to` of a message at `from` from `t0`, no
    /// later than `deadline_us`; `None` if there is none. `dist` is scratch
    /// space (reused between calls).
    fn earliest(
        &self,
        from: u32,
        to: u32,
        t0: u64,
        deadline_us: u64,
        dist: &mut Vec<u64>,
    ) -> Option<u64> {
        dist.clear();
        dist.resize(self.adj.len(), u64::MAX);
        let mut heap = BinaryHeap::new();
        *dist.get_mut(from as usize)? = t0;
        heap.push(Reverse((t0, from)));
        while let Some(Reverse((t, u))) = heap.pop() {
            if u == to {
                return Some(t);
            }
            if t > dist[u as usize] {
                continue;
            }
            for (v, spans) in &self.adj[u as usize] {
                let first = spans.partition_point(|s| s.1 < t);
                let mut best = u64::MAX;
                for &(s, _, d) in &spans[first..] {
                    if s >= best {
                        break;
                    }
                    best = best.min(t.max(s).saturating_add(d));
                }
                if best <= deadline_us && best < dist[*v as usize] {
                    dist[*v as usize] = best;
                    heap.push(Reverse((best, *v)));
                }
            }
        }
        None
    }

    /// Earliest delivery time (µs) of every message, `None` where the
    /// oracle cannot deliver it within its lifetime and the trace.
    pub fn deliveries(&self, messages: &[Message]) -> Vec<Option<u64>> {
        let mut dist = Vec::new();
        messages
            .iter()
            .map(|m| {
                let deadline = m.time_us.saturating_add(m.lifetime_us).min(self.end_us);
                if m.time_us > deadline {
                    return None;
                }
                self.earliest(m.from, m.to, m.time_us, deadline, &mut dist)
            })
            .collect()
    }
}
