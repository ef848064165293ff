//! Transmissions awaiting their custody signal, by (bundle, peer).
//!
//! A bundle with unlimited copies may be in flight to several peers at
//! once; one with a finite copy count to one peer at a time (so the copies
//! handed over never exceed the copies held).

use crate::bundle::Eid;
use std::collections::BTreeMap;

/// One transmission.
#[derive(Copy, Clone, Debug)]
pub(super) struct InFlight {
    /// When it was sent, DTN ms.
    pub sent_at_ms: u64,
    /// Copies handed over with it.
    pub give: u32,
    /// Encoded size, bytes (the window's byte bound).
    pub bytes: u64,
}

/// The set of transmissions in flight.
#[derive(Debug, Default)]
pub(super) struct InFlightSet {
    map: BTreeMap<(Vec<u8>, Eid), InFlight>,
    /// Per peer: transmissions and their bytes.
    per_peer: BTreeMap<Eid, (usize, u64)>,
}

impl InFlightSet {
    pub fn insert(&mut self, key: Vec<u8>, peer: Eid, f: InFlight) {
        let bytes = f.bytes;
        if self.map.insert((key, peer.clone()), f).is_none() {
            let e = self.per_peer.entry(peer).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(bytes);
        }
    }

    pub fn remove(&mut self, key: &[u8], peer: &Eid) -> Option<InFlight> {
        let f = self.map.remove(&(key.to_vec(), peer.clone()))?;
        self.uncount(peer, f.bytes);
        Some(f)
    }

    fn uncount(&mut self, peer: &Eid, bytes: u64) {
        if let Some(e) = self.per_peer.get_mut(peer) {
            e.0 -= 1;
            e.1 = e.1.saturating_sub(bytes);
            if e.0 == 0 {
                self.per_peer.remove(peer);
            }
        }
    }

    fn peers_of(&self, key: &[u8]) -> Vec<Eid> {
        self.map
            .range((key.to_vec(), Eid::DtnNone)..)
            .take_while(|((k, _), _)| k.as_slice() == key)
            .map(|((_, p), _)| p.clone())
            .collect()
    }

    /// Forgets every transmission of bundle `key` (it was released).
    pub fn remove_all(&mut self, key: &[u8]) {
        for p in self.peers_of(key) {
            self.remove(key, &p);
        }
    }

    /// The most copies of bundle `key` handed over by one transmission in
    /// flight; 0 if none is.
    pub fn max_give(&self, key: &[u8]) -> u32 {
        self.map
            .range((key.to_vec(), Eid::DtnNone)..)
            .take_while(|((k, _), _)| k.as_slice() == key)
            .map(|(_, f)| f.give)
            .max()
            .unwrap_or(0)
    }

    /// True if bundle `key` is in flight to any peer.
    pub fn any(&self, key: &[u8]) -> bool {
        self.map
            .range((key.to_vec(), Eid::DtnNone)..)
            .next()
            .is_some_and(|((k, _), _)| k.as_slice() == key)
    }

    pub fn contains(&self, key: &[u8], peer: &Eid) -> bool {
        self.map.contains_key(&(key.to_vec(), peer.clone()))
    }

    /// Transmissions in flight to `peer`.
    pub fn count_for(&self, peer: &Eid) -> usize {
        self.per_peer.get(peer).map_or(0, |e| e.0)
    }

    /// Bytes in flight to `peer`.
    pub fn bytes_for(&self, peer: &Eid) -> u64 {
        self.per_peer.get(peer).map_or(0, |e| e.1)
    }

    /// Forgets every transmission to `peer`; returns how many.
    pub fn drop_peer(&mut self, peer: &Eid) -> usize {
        let before = self.map.len();
        self.map.retain(|(_, p), _| p != peer);
        self.per_peer.remove(peer);
        before - self.map.len()
    }

    /// Removes and returns transmissions sent at or before `cutoff_ms`.
    pub fn take_older(&mut self, cutoff_ms: u64) -> Vec<(Vec<u8>, Eid)> {
        let late: Vec<(Vec<u8>, Eid)> = self
            .map
            .iter()
            .filter(|(_, f)| f.sent_at_ms <= cutoff_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for (k, p) in &late {
            self.remove(k, p);
        }
        late
    }

    /// The oldest send time, DTN ms.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.map.values().map(|f| f.sent_at_ms).min()
    }
}
