//! Transmissions awaiting their custody signal, by (bundle, peer).
//!
//! A bundle with unlimited copies may be in flight to several peers at
//! once; one with a finite copy count to one peer at a time (so the copies
//! handed over never exceed the copies held).
//!
//! Transmissions whose signal never came (their contact ended or was
//! replaced, the send failed, the custody timeout passed) are kept as
//! *unconfirmed* until the bundle is released: the peer may hold the
//! bundle from us, and only such a transmission lets the peer's summary
//! release our copy (spec/custody.md, "Lost custody signals").

use crate::bundle::Eid;
use std::collections::{BTreeMap, HashMap};

/// Unconfirmed transmissions kept at most (bundle, peer pairs); beyond
/// that none is added, and a lost signal is recovered by a resend instead
/// (the peer answers `Duplicate`).
pub(super) const MAX_UNCONFIRMED: usize = 65_536;

/// One transmission.
#[derive(Copy, Clone, Debug)]
pub(super) struct InFlight {
    /// When it was sent, DTN ms.
    pub sent_at_ms: u64,
    /// Copies handed over with it.
    pub give: u32,
    /// Encoded size, bytes (the window's byte bound).
    pub bytes: u64,
    /// Our number for this transmission (in its custody block).
    pub transmission: u64,
}

/// The set of transmissions in flight.
///
/// Keyed by bundle key, each with its peers in node ID order, so that the
/// questions asked for every held bundle at every window fill ("in flight
/// at all?", "in flight to this peer?") look a borrowed key up without
/// building an owned one; iteration is in (key, peer) order.
#[derive(Debug, Default)]
pub(super) struct InFlightSet {
    map: BTreeMap<Vec<u8>, Vec<(Eid, InFlight)>>,
    /// Transmissions in `map`.
    len: usize,
    /// Per peer: transmissions and their bytes.
    per_peer: BTreeMap<Eid, (usize, u64)>,
    /// Bundle key → peers sent it whose signal never came, since the
    /// bundle was last received here, each with the number of the latest
    /// such transmission.
    unconfirmed: HashMap<Vec<u8>, Vec<(Eid, u64)>>,
    /// Pairs in `unconfirmed`.
    unconfirmed_len: usize,
}

impl InFlightSet {
    pub fn insert(&mut self, key: Vec<u8>, peer: Eid, f: InFlight) {
        let bytes = f.bytes;
        let peers = self.map.entry(key).or_default();
        match peers.binary_search_by(|(p, _)| p.cmp(&peer)) {
            Ok(i) => {
                // A resend replaces the earlier transmission's bytes.
                let old = std::mem::replace(&mut peers[i].1, f);
                if let Some(e) = self.per_peer.get_mut(&peer) {
                    e.1 = e.1.saturating_sub(old.bytes).saturating_add(bytes);
                }
            }
            Err(i) => {
                peers.insert(i, (peer.clone(), f));
                self.len += 1;
                let e = self.per_peer.entry(peer).or_default();
                e.0 += 1;
                e.1 = e.1.saturating_add(bytes);
            }
        }
    }

    pub fn remove(&mut self, key: &[u8], peer: &Eid) -> Option<InFlight> {
        let peers = self.map.get_mut(key)?;
        let i = peers.binary_search_by(|(p, _)| p.cmp(peer)).ok()?;
        let (_, f) = peers.remove(i);
        if peers.is_empty() {
            self.map.remove(key);
        }
        self.len -= 1;
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

    /// Forgets every transmission of bundle `key`, unconfirmed ones too
    /// (it was released, or it is received anew).
    pub fn remove_all(&mut self, key: &[u8]) {
        for (p, f) in self.map.remove(key).unwrap_or_default() {
            self.len -= 1;
            self.uncount(&p, f.bytes);
        }
        if let Some(ps) = self.unconfirmed.remove(key) {
            self.unconfirmed_len -= ps.len();
        }
    }

    /// The transmission of `key` to `peer` failed (the peer may have it
    /// all the same): forgotten as in flight, kept as unconfirmed.
    pub fn fail(&mut self, key: &[u8], peer: &Eid) -> Option<InFlight> {
        let f = self.remove(key, peer)?;
        self.note_unconfirmed(key.to_vec(), peer.clone(), f.transmission);
        Some(f)
    }

    /// Keeps `transmission` of `key` to `peer` as unconfirmed (replacing an
    /// earlier one to that peer: a later resend supersedes it).
    fn note_unconfirmed(&mut self, key: Vec<u8>, peer: Eid, transmission: u64) {
        if let Some(ps) = self.unconfirmed.get_mut(&key)
            && let Some(e) = ps.iter_mut().find(|(p, _)| *p == peer)
        {
            e.1 = transmission;
            return;
        }
        if self.unconfirmed_len >= MAX_UNCONFIRMED {
            return;
        }
        self.unconfirmed
            .entry(key)
            .or_default()
            .push((peer, transmission));
        self.unconfirmed_len += 1;
    }

    /// True if `key` was sent to `peer` since it was last received here
    /// and no custody signal for that transmission came; with
    /// `Some(transmission)`, only if that is the latest such transmission
    /// (the one the peer says its copy came by).
    pub fn unconfirmed(&self, key: &[u8], peer: &Eid, transmission: Option<u64>) -> bool {
        self.unconfirmed.get(key).is_some_and(|ps| {
            ps.iter()
                .any(|(p, n)| p == peer && transmission.is_none_or(|t| t == *n))
        })
    }

    /// The most copies of bundle `key` handed over by one transmission in
    /// flight; 0 if none is.
    pub fn max_give(&self, key: &[u8]) -> u32 {
        self.map
            .get(key)
            .and_then(|ps| ps.iter().map(|(_, f)| f.give).max())
            .unwrap_or(0)
    }

    /// True if bundle `key` is in flight to any peer.
    pub fn any(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    pub fn contains(&self, key: &[u8], peer: &Eid) -> bool {
        self.map
            .get(key)
            .is_some_and(|ps| ps.iter().any(|(p, _)| p == peer))
    }

    /// Transmissions in flight to `peer`.
    pub fn count_for(&self, peer: &Eid) -> usize {
        self.per_peer.get(peer).map_or(0, |e| e.0)
    }

    /// Bytes in flight to `peer`.
    pub fn bytes_for(&self, peer: &Eid) -> u64 {
        self.per_peer.get(peer).map_or(0, |e| e.1)
    }

    /// Forgets every transmission to `peer` (kept as unconfirmed);
    /// returns how many.
    pub fn drop_peer(&mut self, peer: &Eid) -> usize {
        if self.per_peer.remove(peer).is_none() {
            return 0;
        }
        let mut dropped = Vec::new();
        self.map.retain(|k, ps| {
            if let Some((_, f)) = ps.iter().find(|(p, _)| p == peer) {
                dropped.push((k.clone(), f.transmission));
                ps.retain(|(p, _)| p != peer);
            }
            !ps.is_empty()
        });
        self.len -= dropped.len();
        let n = dropped.len();
        for (k, t) in dropped {
            self.note_unconfirmed(k, peer.clone(), t);
        }
        n
    }

    /// Removes and returns transmissions sent at or before `cutoff_ms`,
    /// in (key, peer) order (kept as unconfirmed).
    pub fn take_older(&mut self, cutoff_ms: u64) -> Vec<(Vec<u8>, Eid)> {
        let late: Vec<(Vec<u8>, Eid)> = self
            .map
            .iter()
            .flat_map(|(k, ps)| ps.iter().map(move |(p, f)| (k, p, f)))
            .filter(|(_, _, f)| f.sent_at_ms <= cutoff_ms)
            .map(|(k, p, _)| (k.clone(), p.clone()))
            .collect();
        for (k, p) in &late {
            self.fail(k, p);
        }
        late
    }

    /// The oldest send time, DTN ms.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.map
            .values()
            .flat_map(|ps| ps.iter().map(|(_, f)| f.sent_at_ms))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious model: one map keyed by (bundle key, peer).
    type Model = BTreeMap<(Vec<u8>, Eid), InFlight>;

    #[derive(Clone, Debug)]
    enum Op {
        /// Bundle, peer, send time, copies; the transmission number is the
        /// op's position.
        Insert(u8, u8, u64, u32),
        Remove(u8, u8),
        RemoveAll(u8),
        DropPeer(u8),
        TakeOlder(u64),
    }

    fn key(k: u8) -> Vec<u8> {
        vec![b'k', k]
    }

    fn peer(p: u8) -> Eid {
        format!("dtn://p{p}/").parse().unwrap()
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..6u8, 0..4u8, 0..100u64, 1..5u32).prop_map(|(k, p, t, g)| Op::Insert(k, p, t, g)),
            2 => (0..6u8, 0..4u8).prop_map(|(k, p)| Op::Remove(k, p)),
            1 => (0..6u8).prop_map(Op::RemoveAll),
            1 => (0..4u8).prop_map(Op::DropPeer),
            1 => (0..100u64).prop_map(Op::TakeOlder),
        ]
    }

    /// Every answer the agent asks for, from the set and from the model.
    fn check(s: &InFlightSet, m: &Model) -> Result<(), TestCaseError> {
        for k in 0..6u8 {
            let k = key(k);
            let mine: Vec<_> = m.iter().filter(|((mk, _), _)| *mk == k).collect();
            prop_assert_eq!(s.any(&k), !mine.is_empty());
            let give = mine.iter().map(|(_, f)| f.give).max().unwrap_or(0);
            prop_assert_eq!(s.max_give(&k), give);
            for p in 0..4u8 {
                prop_assert_eq!(
                    s.contains(&k, &peer(p)),
                    m.contains_key(&(k.clone(), peer(p)))
                );
            }
        }
        for p in 0..4u8 {
            let to: Vec<_> = m.iter().filter(|((_, mp), _)| *mp == peer(p)).collect();
            prop_assert_eq!(s.count_for(&peer(p)), to.len());
            prop_assert_eq!(
                s.bytes_for(&peer(p)),
                to.iter().map(|(_, f)| f.bytes).sum::<u64>()
            );
        }
        prop_assert_eq!(s.oldest_ms(), m.values().map(|f| f.sent_at_ms).min());
        Ok(())
    }

    proptest! {
        #[test]
        fn in_flight_set_answers_as_a_map_of_pairs_would(ops in proptest::collection::vec(op(), 1..60)) {
            let (mut s, mut m) = (InFlightSet::default(), Model::new());
            // Pairs sent with no signal back, since their last RemoveAll,
            // with the latest such transmission.
            let mut unconf: BTreeMap<(Vec<u8>, Eid), u64> = BTreeMap::new();
            for (n, op) in (0u64..).zip(ops) {
                match op {
                    Op::Insert(k, p, t, g) => {
                        let f = InFlight { sent_at_ms: t, give: g, bytes: u64::from(g) * 10, transmission: n };
                        s.insert(key(k), peer(p), f);
                        m.insert((key(k), peer(p)), f);
                    }
                    Op::Remove(k, p) => {
                        let got = s.remove(&key(k), &peer(p)).map(|f| f.sent_at_ms);
                        prop_assert_eq!(got, m.remove(&(key(k), peer(p))).map(|f| f.sent_at_ms));
                    }
                    Op::RemoveAll(k) => {
                        s.remove_all(&key(k));
                        m.retain(|(mk, _), _| *mk != key(k));
                        unconf.retain(|(uk, _), _| *uk != key(k));
                    }
                    Op::DropPeer(p) => {
                        let n = s.drop_peer(&peer(p));
                        let before = m.len();
                        m.retain(|(mk, mp), f| {
                            let keep = *mp != peer(p);
                            if !keep {
                                unconf.insert((mk.clone(), mp.clone()), f.transmission);
                            }
                            keep
                        });
                        prop_assert_eq!(n, before - m.len());
                    }
                    Op::TakeOlder(t) => {
                        let got = s.take_older(t);
                        let want: Vec<_> = m.iter().filter(|(_, f)| f.sent_at_ms <= t).map(|(k, _)| k.clone()).collect();
                        unconf.extend(m.iter().filter(|(_, f)| f.sent_at_ms <= t).map(|(k, f)| (k.clone(), f.transmission)));
                        m.retain(|_, f| f.sent_at_ms > t);
                        prop_assert_eq!(got, want);
                    }
                }
                check(&s, &m)?;
                for k in 0..6u8 {
                    for p in 0..4u8 {
                        let pair = (key(k), peer(p));
                        let latest = unconf.get(&pair).copied();
                        prop_assert_eq!(s.unconfirmed(&pair.0, &pair.1, None), latest.is_some());
                        if let Some(t) = latest {
                            prop_assert!(s.unconfirmed(&pair.0, &pair.1, Some(t)));
                            prop_assert!(!s.unconfirmed(&pair.0, &pair.1, Some(t + 1000)));
                        }
                    }
                }
            }
        }
    }
}
