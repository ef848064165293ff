//! Commits: every agent transaction ends here, with the bookkeeping
//! that rides along (sequence counter, held bytes, counters, per-peer
//! totals and estimates; spec/store.md). Peer estimates alone are written
//! at most every [`PEER_FLUSH_MS`] (on ticks), not with every bundle.

use super::{Agent, AgentError, PEER_FLUSH_MS, PROPHET_META_KEY};
use crate::bundle::{DtnTime, Eid};
use std::collections::BTreeMap;

impl Agent {
    /// Commits `txn` durably with the agent's pending bookkeeping: sequence
    /// counter, held bytes, counters and per-peer totals.
    pub(super) fn commit(&mut self, txn: crate::store::Txn) -> Result<(), AgentError> {
        self.commit_peers(txn, false)
    }

    /// [`Agent::commit`], writing the records of new peers and of peers
    /// whose totals or address changed and, if `all`, also of those whose estimate alone
    /// changed (left otherwise to [`Agent::flush_peers`]: a contact with
    /// nothing to exchange changes two estimates, and rewriting them with
    /// every bundle commit cost more than the bundle itself).
    pub(super) fn commit_peers(
        &mut self,
        mut txn: crate::store::Txn,
        all: bool,
    ) -> Result<(), AgentError> {
        let meta = (self.next_seq, self.held_bytes);
        if meta != self.meta_committed {
            txn.set_meta_u64("next_seq", meta.0)?;
            txn.set_meta_u64("held_bytes", meta.1)?;
        }
        if let Some(table) = self.router.take_prophet_table() {
            txn.set_meta_bytes(PROPHET_META_KEY, &table)?;
        }
        for (name, n) in std::mem::take(&mut self.tally) {
            txn.bump(&name, n)?;
        }
        let written = self.write_peers(&mut txn, all)?;
        txn.commit()?;
        self.meta_committed = meta;
        self.peer_records.extend(written);
        Ok(())
    }

    /// Writes the records of new peers and of peers whose address or totals
    /// changed since the last commit, and if `all` those whose estimate changed; returns
    /// them for the cache.
    fn write_peers(
        &mut self,
        txn: &mut crate::store::Txn,
        all: bool,
    ) -> Result<Vec<(Eid, crate::store::records::PeerRecord)>, AgentError> {
        let tally = std::mem::take(&mut self.peer_tally);
        // Written in node ID order (the store's key order).
        let mut touched: BTreeMap<Eid, Option<String>> = BTreeMap::new();
        let known = &self.peer_records;
        self.dirty_peers.retain(|peer, addr| {
            // A peer met for the first time gets its record (and a line in
            // `spore peers`) with the next commit.
            let now =
                all || addr.is_some() || tally.contains_key(peer) || !known.contains_key(peer);
            if now {
                touched.insert(peer.clone(), addr.take());
            }
            !now
        });
        for peer in tally.keys() {
            touched.entry(peer.clone()).or_default();
        }
        let mut written = Vec::with_capacity(touched.len());
        for (peer, addr) in touched {
            let mut p = match self.peer_records.get(&peer) {
                Some(p) => p.clone(),
                None => crate::store::records::PeerRecord {
                    node_id: peer.to_string(),
                    ..Default::default()
                },
            };
            let (sent, received) = tally.get(&peer).copied().unwrap_or_default();
            p.bundles_sent += sent;
            p.bundles_received += received;
            if addr.is_some() {
                p.addr = addr;
            }
            if let Some(est) = self.router.estimate(&peer) {
                p.srtt_us = Some(est.rtt.srtt_us).filter(|_| est.rtt.samples > 0);
                p.contacts = est.contacts;
                p.last_contact_ms = est.last_start_ms;
                p.last_seen_ms = est.last_end_ms;
                p.estimate = Some(est.clone());
            }
            txn.put_peer(&p)?;
            written.push((peer, p));
        }
        Ok(written)
    }

    /// Writes changed peer estimates if any are pending and the last
    /// write is [`PEER_FLUSH_MS`] old (called on ticks so estimates reach
    /// the disk; a bundle commit writes only the peers whose totals or
    /// address changed).
    pub(super) fn flush_peers(&mut self, now: DtnTime) -> Result<(), AgentError> {
        if self.dirty_peers.is_empty() && self.peer_tally.is_empty() {
            return Ok(());
        }
        if now.0 < self.peers_flushed_ms.saturating_add(PEER_FLUSH_MS) {
            return Ok(());
        }
        self.peers_flushed_ms = now.0;
        let txn = self.store.write()?;
        self.commit_peers(txn, true)
    }
}

/// An estimate for a peer recorded before estimates were persisted.
pub(super) fn legacy_estimate(
    p: &crate::store::records::PeerRecord,
) -> crate::routing::PeerEstimate {
    let mut est = crate::routing::PeerEstimate {
        contacts: p.contacts,
        last_start_ms: p.last_contact_ms,
        last_end_ms: p.last_seen_ms,
        ..Default::default()
    };
    if let Some(srtt) = p.srtt_us {
        est.rtt.sample(srtt);
    }
    est
}
