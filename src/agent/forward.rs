//! Contacts and transmission: what goes to whom, and in which order.

use super::inflight::InFlight;
use super::{Action, Agent, AgentError, ContactState, FromYou};
use crate::bundle::admin::{CustodyReason, CustodySignal};
use crate::bundle::blocks::CustodyBlock;
use crate::bundle::{Bundle, BundleId, DtnTime, Eid, codec};
use crate::routing::{Advert, COPIES_UNLIMITED, Candidate, Decision, HoldReason, Policy};
use crate::store::Txn;
use crate::store::records::{BundleRecord, PayloadKind, RecordHead};
use bytes::Bytes;
use tracing::{debug, error, info, warn};

/// Most held bundles examined per contact per window fill.
const MAX_SCAN_PER_FILL: usize = 4096;

impl Agent {
    pub(super) fn contact_up(
        &mut self,
        now: DtnTime,
        peer: Eid,
        addr: Option<String>,
        rtt_us: u64,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let peer = if peer.is_node_id() {
            peer
        } else {
            peer.node_id()
        };
        self.router.contact_up(now.0, &peer, rtt_us);
        // A new connection replaces any earlier one with this peer (it
        // restarted, or the link came back before the old one timed out):
        // what was in flight on the old one is not coming back.
        self.in_flight.drop_peer(&peer);
        self.contacts.insert(peer.clone(), ContactState::default());
        // The peer record is written with the next commit (or tick).
        let slot = self.dirty_peers.entry(peer.clone()).or_default();
        if addr.is_some() {
            *slot = addr;
        }
        info!(peer = %peer, rtt_ms = rtt_us as f64 / 1000.0, "contact up");
        self.advertise_to_others(now, &peer, out);
        self.known_delivered.prune(now.0);
        let (held, from_you) = self.summary_for(&peer)?;
        let advert = self.router.advert_for(now.0, Some(&peer));
        out.push(Action::SendSummary {
            peer,
            held,
            from_you,
            advert,
        });
        Ok(())
    }

    /// Our contacts changed: tell every other peer in contact (that sent
    /// its summary) our new advertisement.
    fn advertise_to_others(&self, now: DtnTime, changed: &Eid, out: &mut Vec<Action>) {
        if !self.router.advertises() {
            return;
        }
        let mut others = self
            .contacts
            .iter()
            .filter(|(p, c)| *p != changed && c.summary_received)
            .map(|(p, _)| p.clone())
            .peekable();
        if others.peek().is_none() {
            return;
        }
        for peer in others {
            let advert = self.router.advert_for(now.0, Some(&peer));
            out.push(Action::SendAdvert { peer, advert });
        }
    }

    /// A fresh advertisement from a peer in contact.
    pub(super) fn peer_advert(&mut self, now: DtnTime, peer: &Eid, advert: &Advert) {
        let peer = peer.node_id();
        if self.contacts.contains_key(&peer) {
            self.router.peer_advert(now.0, &peer, advert);
            self.fill_needed = true;
        }
    }

    /// Our summary for `peer`: up to `summary_limit` bundles we hold or
    /// delivered, then (within the same limit) bundles we released that
    /// reached their destination, newest first; and which of the held or
    /// delivered ones came from `peer`.
    fn summary_for(&self, peer: &Eid) -> Result<(Vec<BundleId>, Vec<FromYou>), AgentError> {
        let limit = self.cfg.summary_limit;
        let (keys, from_peer) = self.store.summary(peer, limit)?;
        let room = limit.saturating_sub(keys.len());
        let held = keys
            .iter()
            .chain(self.known_delivered.newest(room))
            .filter_map(|k| BundleId::from_key(k).ok())
            .collect();
        let from_you = from_peer
            .iter()
            .filter_map(|(k, transmission)| {
                let id = BundleId::from_key(k).ok()?;
                Some(FromYou {
                    id,
                    transmission: *transmission,
                })
            })
            .collect();
        Ok((held, from_you))
    }

    pub(super) fn contact_down(
        &mut self,
        now: DtnTime,
        peer: &Eid,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let peer = peer.node_id();
        if self.contacts.remove(&peer).is_none() {
            return Ok(());
        }
        let dropped = self.in_flight.drop_peer(&peer);
        info!(peer = %peer, in_flight_returned = dropped, "contact down");
        self.router.contact_down(now.0, &peer);
        self.advertise_to_others(now, &peer, out);
        self.dirty_peers.entry(peer).or_default();
        self.fill_needed = true;
        Ok(())
    }

    /// The peer's summary. Bundles we still hold in custody that the peer
    /// says it received *from us* and holds or delivered are durable there,
    /// so they are released as if a `Duplicate` custody signal had arrived:
    /// this recovers a custody signal lost with a broken connection. Only
    /// `from_you` counts: two nodes that both hold a bundle (each from a
    /// third node) keep their copies, so a bundle is never released by both.
    /// And only for a bundle we sent that peer since we last received it,
    /// with no signal back (unconfirmed, `inflight.rs`), and, when the
    /// peer names the transmission its copy came by, only if that is the
    /// one: the summary was made when the contact began, so it may name
    /// the copy we handed the peer *before* the bundle came back to us, a
    /// copy the peer has since passed on; releasing ours on it would leave
    /// no holder (spec/custody.md, "Lost custody signals").
    pub(super) fn peer_summary(
        &mut self,
        now: DtnTime,
        peer: &Eid,
        held: Vec<BundleId>,
        from_you: Vec<FromYou>,
        advert: &Advert,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let peer = peer.node_id();
        let Some(c) = self.contacts.get_mut(&peer) else {
            warn!(peer = %peer, "summary from a peer not in contact; ignored");
            return Ok(());
        };
        self.router.peer_advert(now.0, &peer, advert);
        debug!(peer = %peer, bundles = held.len(), "peer summary");
        c.peer_holds = held.iter().map(BundleId::to_key).collect();
        c.summary_received = true;
        self.fill_needed = true;
        let mut ours = Vec::new();
        for FromYou { id, transmission } in from_you {
            let key = id.to_key();
            if self.in_flight.unconfirmed(&key, &peer, transmission)
                && self
                    .store
                    .held_head(&key)?
                    .is_some_and(|h| h.state.is_held())
            {
                ours.push(id);
            }
        }
        // The destination holds or delivered bundles we still hold copies
        // of (they reached it by another path): those copies are released,
        // and our summaries list them from then on (`known.rs`) so that
        // peers do not hand them back. Those the destination got from us
        // take the custody-signal path below.
        let from_us: foldhash::HashSet<&BundleId> = ours.iter().collect();
        let mut at_destination = Vec::new();
        for id in held.iter().filter(|id| !from_us.contains(id)) {
            let held_for_peer = self
                .store
                .held_head(&id.to_key())?
                .is_some_and(|h| h.state.is_held() && h.destination.is_on_node(&peer));
            if held_for_peer {
                at_destination.push(id.clone());
            }
        }
        if !at_destination.is_empty() {
            self.release_held_at_destination(now, &peer, &at_destination)?;
        }
        if ours.is_empty() {
            return Ok(());
        }
        info!(peer = %peer, bundles = ours.len(), "peer already holds bundles in our custody; releasing them");
        let signal = CustodySignal {
            accepted: false,
            reason: CustodyReason::Duplicate,
            bundles: ours,
        };
        self.custody_signal(now, &peer, signal, out)
    }

    pub(super) fn transmit_failed(&mut self, peer: &Eid, id: &BundleId, reason: &str) {
        let key = id.to_key();
        if self.in_flight.fail(&key, &peer.node_id()).is_some() {
            warn!(peer = %peer, bundle = %id, reason, "transmission failed; bundle stays here");
            self.fill_needed = true;
        }
    }

    /// Offers held bundles to every contact with room in its window:
    /// direct traffic first, then relay traffic, nearest expiry first.
    pub(super) fn fill_windows(
        &mut self,
        now: DtnTime,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        if !self.fill_needed {
            return Ok(());
        }
        self.fill_needed = false;
        if self.store.holds_nothing()? {
            return Ok(());
        }
        let peers: Vec<Eid> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.summary_received)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in peers {
            self.fill_window(now, &peer, out)?;
        }
        Ok(())
    }

    fn fill_window(
        &mut self,
        now: DtnTime,
        peer: &Eid,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let busy = self.in_flight.count_for(peer);
        let room = self.cfg.window_per_contact.saturating_sub(busy);
        let mut bytes_room = self
            .cfg
            .window_bytes_per_contact
            .saturating_sub(self.in_flight.bytes_for(peer));
        if room == 0 || bytes_room == 0 {
            return Ok(());
        }
        let mut direct = Vec::new();
        let mut relay = Vec::new();
        let name = peer.to_string();
        self.store.scan_owed(&name, MAX_SCAN_PER_FILL, |key, rec| {
            if rec.expiry_ms <= now.0 || !rec.state.is_held() || !self.may_send(key, peer, rec) {
                return Ok::<_, AgentError>(true);
            }
            match self.decision(now, peer, key, rec) {
                Decision::Direct => direct.push((key.to_vec(), rec.clone(), u32::MAX)),
                Decision::Forward { give } => relay.push((key.to_vec(), rec.clone(), give)),
                Decision::Hold(_) => {}
            }
            Ok(direct.len() < room)
        })?;
        // Priority (spec/routing.md §7): direct first; then nearest
        // deadline, then fewest copies.
        direct.sort_by_key(|(_, r, _)| r.expiry_ms);
        relay.sort_by_key(|(_, r, _)| (r.expiry_ms, r.copies));
        let cgr = self.router.policy() == Policy::Cgr;
        for (key, head, give) in direct.into_iter().chain(relay).take(room) {
            // Bytes bound: always let one bundle go on an empty window.
            if head.size_bytes > bytes_room && bytes_room < self.cfg.window_bytes_per_contact {
                break;
            }
            // CGR books each bundle sent; a later one may no longer fit.
            if cgr && matches!(self.decision(now, peer, &key, &head), Decision::Hold(_)) {
                continue;
            }
            let give = give.min(head.copies);
            let Some(rec) = self.store.record(&key)? else {
                continue;
            };
            let transmission = self.next_transmission(now);
            if let Some(bytes) = self.build_transmit(now, &key, &rec, give, transmission)? {
                debug!(peer = %peer, bundle = %rec.id, give, "transmit");
                if cgr {
                    self.book_cgr(now, peer, &key, &head);
                }
                bytes_room = bytes_room.saturating_sub(rec.size_bytes);
                let f = InFlight {
                    sent_at_ms: now.0,
                    give,
                    bytes: rec.size_bytes,
                    transmission,
                };
                self.in_flight.insert(key, peer.clone(), f);
                out.push(Action::Transmit {
                    peer: peer.clone(),
                    id: rec.id.clone(),
                    bytes,
                });
            }
        }
        Ok(())
    }

    /// Books a bundle sent to `peer` on its CGR route's first contact
    /// (spec/routing.md §6, capacity).
    fn book_cgr(&mut self, now: DtnTime, peer: &Eid, key: &[u8], head: &RecordHead) {
        let c = self.candidate(peer, key, head);
        self.router.sent(now.0, &c);
    }

    /// A bundle with unlimited copies may be in flight to many peers at
    /// once; one with a finite count to one peer at a time.
    fn may_send(&self, key: &[u8], peer: &Eid, rec: &RecordHead) -> bool {
        if rec.copies == COPIES_UNLIMITED {
            !self.in_flight.contains(key, peer)
        } else {
            !self.in_flight.any(key)
        }
    }

    pub(super) fn decision(
        &self,
        now: DtnTime,
        peer: &Eid,
        key: &[u8],
        rec: &RecordHead,
    ) -> Decision {
        if rec.size_bytes > self.cfg.metered_bulk_bytes
            && !self.metered.is_empty()
            && self.metered.contains(&*peer.as_node_id())
        {
            return Decision::Hold(HoldReason::Metered);
        }
        self.router.decide(now.0, &self.candidate(peer, key, rec))
    }

    /// What the router is asked about bundle `key` for `peer`.
    fn candidate<'a>(&self, peer: &'a Eid, key: &[u8], rec: &'a RecordHead) -> Candidate<'a> {
        let contact = self.contacts.get(peer);
        Candidate {
            destination: &rec.destination,
            received_from: rec.received_from.as_ref(),
            peer,
            peer_has_it: contact.is_some_and(|c| c.peer_holds.contains(key)),
            refused_by_peer: contact
                .is_some_and(|c| c.refused.contains(key) || c.depleted.contains(key)),
            handed_over_in_contact: contact.is_some_and(|c| c.handed_over.contains(key)),
            destination_in_contact: self.contacts.contains_key(&*rec.destination.as_node_id()),
            copies: rec.copies,
            size_bytes: rec.size_bytes,
            expiry_ms: rec.expiry_ms,
        }
    }

    /// A number for a new transmission, unique among this node's: the
    /// clock in ms × 1024, or one more than the last if that is not larger
    /// (so numbers grow across restarts as long as the clock does).
    pub(super) fn next_transmission(&mut self, now: DtnTime) -> u64 {
        self.last_transmission =
            (self.last_transmission.saturating_add(1)).max(now.0.saturating_mul(1024));
        self.last_transmission
    }

    /// Rebuilds the bundle to send: chunk payload restored, previous node =
    /// us, bundle age advanced by our dwell time, hop count + 1, custody
    /// block naming us as custodian and `transmission` as its number,
    /// copy-count block = `give` (omitted for a single copy, whose absence
    /// means 1).
    pub(super) fn build_transmit(
        &mut self,
        now: DtnTime,
        key: &[u8],
        rec: &BundleRecord,
        give: u32,
        transmission: u64,
    ) -> Result<Option<codec::EncodedBundle>, AgentError> {
        let Some(mut b) = self.load_bundle(key, rec)? else {
            return Ok(None);
        };
        if let Ok(Some(age)) = b.bundle_age_ms() {
            b.set_bundle_age_ms(age.saturating_add(now.ms_since(DtnTime(rec.received_at_ms))));
        }
        if let Ok(Some(mut h)) = b.hop_count() {
            h.count = h.count.saturating_add(1);
            b.set_hop_count(h);
        }
        b.set_previous_node(&self.cfg.node_id);
        b.set_custody(&CustodyBlock {
            custodian: self.cfg.node_id.clone(),
            transmission: Some(transmission),
        });
        if give != 1 || b.copy_count().ok().flatten().is_some() {
            b.set_copy_count(give);
        }
        // The payload (the chunk just read from the store) is not copied.
        Ok(Some(codec::encode_parts(&b)))
    }

    /// The stored bundle with its payload, or `None` (logged) if its bytes
    /// are missing or corrupt.
    pub(super) fn load_bundle(
        &self,
        key: &[u8],
        rec: &BundleRecord,
    ) -> Result<Option<Bundle>, AgentError> {
        let Some(bytes) = self.store.bundle_bytes(key)? else {
            return Ok(None);
        };
        let mut b = match codec::decode(&bytes, &self.cfg.decode_limits) {
            Ok(b) => b,
            Err(e) => {
                error!(bundle = %rec.id, error = %e, "stored bundle does not decode");
                return Ok(None);
            }
        };
        if let (PayloadKind::Chunk, Some(cid)) = (rec.kind, &rec.cid) {
            match self.store.chunk(cid)? {
                Some(data) if b.payload().is_some_and(|p| p.is_empty()) => {
                    b.set_payload(Bytes::from(data))
                }
                Some(_) => {}
                None => {
                    error!(bundle = %rec.id, "chunk bytes missing from the store");
                    return Ok(None);
                }
            }
        }
        Ok(Some(b))
    }

    /// Drops a held bundle's bytes and index entries (not its record).
    pub(super) fn release(
        &mut self,
        txn: &mut Txn,
        key: &[u8],
        rec: &BundleRecord,
    ) -> Result<(), AgentError> {
        txn.remove_bytes(key)?;
        if let (PayloadKind::Chunk, Some(cid)) = (rec.kind, &rec.cid) {
            txn.chunk_unref(cid)?;
        }
        txn.expiry_remove(rec.expiry_ms, key)?;
        let peers = self.store.forwarded_peers(key)?;
        txn.forwarded_remove(key, &peers)?;
        self.in_flight.remove_all(key);
        self.add_held_bytes(-(rec.size_bytes as i64));
        self.usage
            .remove(rec.received_from.as_ref(), rec.size_bytes);
        Ok(())
    }

    /// Payload bytes held for forwarding now (what the quota limits).
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Changes the held-bytes total; persisted by the next commit.
    pub(super) fn add_held_bytes(&mut self, delta: i64) {
        self.held_bytes = self.held_bytes.saturating_add_signed(delta);
    }
}
