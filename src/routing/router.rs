//! The [`Router`]: per-peer estimates, the peers' advertisements and the
//! policy's decision for one bundle and one peer (spec/routing.md §2–§4).

use super::estimate::PeerEstimate;
use super::{
    COPIES_UNLIMITED, Candidate, Decision, HoldReason, Policy, binary_split, common_rules,
};
use crate::bundle::Eid;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Most destinations sent in one advertisement (the lowest delays first).
pub const MAX_ADVERT_ENTRIES: usize = 1024;
/// Most nodes a router keeps estimates for; beyond it new names in
/// advertisements are ignored (a limit against a flooding peer).
pub const MAX_KNOWN_NODES: usize = 65_536;

/// What a node tells a peer at contact start about its routes (carried in
/// the contact summary, spec/cl-quic.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Advert {
    /// Expected delivery delay from the advertiser to each node it knows, ms
    /// (spore policy, spec/routing.md §4).
    #[serde(default)]
    pub delay_ms: Vec<(Eid, u64)>,
    /// PRoPHET delivery predictabilities P(advertiser, node) (RFC 6693 §2.1).
    #[serde(default)]
    pub predictability: Vec<(Eid, f64)>,
}

/// Interned node IDs: dense indices for the delay tables.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Eid, u32>,
    names: Vec<Eid>,
}

impl Names {
    fn id(&mut self, node: &Eid) -> Option<u32> {
        if let Some(&i) = self.ids.get(node) {
            return Some(i);
        }
        if self.names.len() >= MAX_KNOWN_NODES {
            return None;
        }
        let i = self.names.len() as u32;
        self.ids.insert(node.clone(), i);
        self.names.push(node.clone());
        Some(i)
    }

    fn get(&self, node: &Eid) -> Option<u32> {
        self.ids.get(node).copied()
    }
}

/// Routing state of one node. Pure: every method takes the time.
#[derive(Debug)]
pub struct Router {
    me: Eid,
    policy: Policy,
    names: Names,
    peers: BTreeMap<Eid, PeerEstimate>,
    /// Per peer (interned): its advertised delays, (node, ms), sorted by node.
    delays: HashMap<u32, Vec<(u32, f64)>>,
}

impl Router {
    /// A router for node `me` (a node ID) following `policy`.
    pub fn new(me: Eid, policy: Policy) -> Router {
        Router {
            me: me.node_id(),
            policy,
            names: Names::default(),
            peers: BTreeMap::new(),
            delays: HashMap::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Restores a persisted estimate for `peer` (start-up).
    pub fn seed_peer(&mut self, peer: &Eid, mut est: PeerEstimate) {
        est.in_contact = false; // a contact never survives a restart
        self.peers.insert(peer.node_id(), est);
    }

    /// A contact with `peer` started at `now_ms`; `rtt_us` is the CLA's RTT.
    pub fn contact_up(&mut self, now_ms: u64, peer: &Eid, rtt_us: u64) {
        let peer = peer.node_id();
        self.names.id(&peer);
        self.peers
            .entry(peer)
            .or_default()
            .contact_up(now_ms, rtt_us);
    }

    /// The contact with `peer` ended at `now_ms`.
    pub fn contact_down(&mut self, now_ms: u64, peer: &Eid) {
        if let Some(p) = self.peers.get_mut(&peer.node_id()) {
            p.contact_down(now_ms);
        }
    }

    /// A new RTT sample for `peer`, µs.
    pub fn rtt_sample(&mut self, peer: &Eid, rtt_us: u64) {
        if let Some(p) = self.peers.get_mut(&peer.node_id()) {
            p.rtt.sample(rtt_us);
        }
    }

    /// Adds bundle bytes moved to (`sent`) and from (`received`) `peer`.
    pub fn moved(&mut self, peer: &Eid, sent: u64, received: u64) {
        let p = self.peers.entry(peer.node_id()).or_default();
        p.bytes_sent = p.bytes_sent.saturating_add(sent);
        p.bytes_received = p.bytes_received.saturating_add(received);
    }

    /// The estimate for `peer`, if it was ever met.
    pub fn estimate(&self, peer: &Eid) -> Option<&PeerEstimate> {
        self.peers.get(&peer.node_id())
    }

    /// Every peer's estimate, by node ID.
    pub fn estimates(&self) -> impl Iterator<Item = (&Eid, &PeerEstimate)> {
        self.peers.iter()
    }

    /// Copies a bundle starts with here: 1 for direct and CGR (single
    /// copy), L for spray-and-wait and spore, unlimited for epidemic and
    /// PRoPHET.
    pub fn initial_copies(&self) -> u32 {
        match self.policy {
            Policy::Direct | Policy::Cgr => 1,
            Policy::SprayAndWait { copies } | Policy::Spore { copies } => copies.max(1),
            Policy::Epidemic | Policy::Prophet => COPIES_UNLIMITED,
        }
    }

    /// Copies a bundle received with `advertised` copies (its copy-count
    /// block, 1 when absent) holds here: the policy's own rule for
    /// replicating policies, the block's value capped by L for the
    /// copy-budget ones, and 1 for single-copy ones.
    pub fn received_copies(&self, advertised: u32) -> u32 {
        match self.policy {
            Policy::Direct | Policy::Cgr => 1,
            Policy::SprayAndWait { copies } | Policy::Spore { copies } => {
                advertised.clamp(1, copies.max(1))
            }
            Policy::Epidemic | Policy::Prophet => COPIES_UNLIMITED,
        }
    }

    /// Records `peer`'s advertisement received at `now_ms`. Entries beyond
    /// [`MAX_ADVERT_ENTRIES`] are ignored.
    pub fn peer_advert(&mut self, _now_ms: u64, peer: &Eid, advert: &Advert) {
        let peer = peer.node_id();
        let Some(p) = self.names.id(&peer) else {
            return;
        };
        let mut table = Vec::with_capacity(advert.delay_ms.len().min(MAX_ADVERT_ENTRIES));
        for (node, ms) in advert.delay_ms.iter().take(MAX_ADVERT_ENTRIES) {
            if let Some(n) = self.names.id(&node.node_id()) {
                table.push((n, *ms as f64));
            }
        }
        table.sort_by_key(|e| e.0);
        table.dedup_by_key(|e| e.0);
        self.delays.insert(p, table);
    }

    /// Expected time, ms, for a bundle here to reach node `dest`: 0 for
    /// this node; otherwise the least of the expected wait for `dest`
    /// itself and, over every peer P that advertised `dest`, wait(P) +
    /// P's advertised delay (spec/routing.md §4). `None` if unknown.
    pub fn delay_to(&self, now_ms: u64, dest: &Eid) -> Option<f64> {
        self.delay_excluding(now_ms, dest, None)
    }

    /// [`Router::delay_to`] without the routes through `exclude` (what this
    /// node could do without that peer).
    pub fn delay_excluding(&self, now_ms: u64, dest: &Eid, exclude: Option<&Eid>) -> Option<f64> {
        let dest = dest.node_id();
        if dest == self.me {
            return Some(0.0);
        }
        let mut best = self
            .peers
            .get(&dest)
            .and_then(|p| p.expected_wait_ms(now_ms));
        let Some(d) = self.names.get(&dest) else {
            return best;
        };
        for (peer, est) in &self.peers {
            if Some(peer) == exclude {
                continue;
            }
            let Some(table) = self.names.get(peer).and_then(|p| self.delays.get(&p)) else {
                continue;
            };
            let (Ok(i), Some(w)) = (
                table.binary_search_by_key(&d, |e| e.0),
                est.expected_wait_ms(now_ms),
            ) else {
                continue;
            };
            let via = w + table[i].1;
            best = Some(best.map_or(via, |b: f64| b.min(via)));
        }
        best
    }

    /// What to advertise to peers at `now_ms`: this node's delay estimate
    /// to every node it knows, lowest first, at most [`MAX_ADVERT_ENTRIES`].
    pub fn advert(&self, now_ms: u64) -> Advert {
        let n = self.names.names.len();
        let mut best = vec![f64::INFINITY; n];
        for (peer, est) in &self.peers {
            let Some(w) = est.expected_wait_ms(now_ms) else {
                continue;
            };
            let Some(p) = self.names.get(peer) else {
                continue;
            };
            let slot = &mut best[p as usize];
            *slot = slot.min(w);
            for &(d, ms) in self.delays.get(&p).map_or(&[][..], |t| t.as_slice()) {
                let slot = &mut best[d as usize];
                *slot = slot.min(w + ms);
            }
        }
        let mut delay_ms: Vec<(Eid, u64)> = best
            .iter()
            .enumerate()
            .filter(|(i, d)| d.is_finite() && self.names.names[*i] != self.me)
            .map(|(i, d)| (self.names.names[i].clone(), d.round() as u64))
            .collect();
        delay_ms.push((self.me.clone(), 0));
        delay_ms.sort_by_key(|e| e.1);
        delay_ms.truncate(MAX_ADVERT_ENTRIES);
        Advert {
            delay_ms,
            predictability: Vec::new(),
        }
    }

    /// The policy's decision for one bundle and one peer at `now_ms`.
    pub fn decide(&self, now_ms: u64, c: &Candidate<'_>) -> Decision {
        if let Some(d) = common_rules(c) {
            return d;
        }
        match self.policy {
            Policy::Direct => Decision::Hold(HoldReason::WaitForDestination),
            Policy::Epidemic => Decision::Forward {
                give: COPIES_UNLIMITED,
            },
            Policy::SprayAndWait { .. } if c.copies > 1 => Decision::Forward {
                give: binary_split(c.copies),
            },
            Policy::SprayAndWait { .. } => Decision::Hold(HoldReason::WaitForDestination),
            Policy::Spore { .. } => self.decide_spore(now_ms, c),
            // Filled in by the PRoPHET and CGR modules.
            Policy::Prophet => Decision::Hold(HoldReason::NotBetter),
            Policy::Cgr => Decision::Hold(HoldReason::NotOnRoute),
        }
    }

    /// spore's default (spec/routing.md §4). `theirs` is the peer's
    /// advertised delay to the destination, `ours` our own without the peer.
    /// Neither known: hand every copy over (explore, custody moves on).
    /// Only theirs known: hand every copy over. Only ours known, or theirs
    /// not lower: hold. Both known and theirs lower: give the share
    /// copies·ours/(ours + theirs) (rounded, at least 1): half when equal,
    /// nearly all when the peer is much closer, all of a single copy.
    fn decide_spore(&self, now_ms: u64, c: &Candidate<'_>) -> Decision {
        let dest = c.destination.node_id();
        let theirs = self.advertised_delay(c.peer, &dest);
        let ours = self.delay_excluding(now_ms, &dest, Some(&c.peer.node_id()));
        let give = match (theirs, ours) {
            (None, None) | (Some(_), None) => c.copies,
            (Some(t), Some(o)) if t < o => spore_share(c.copies, o, t),
            _ => return Decision::Hold(HoldReason::NotBetter),
        };
        Decision::Forward { give }
    }

    /// `peer`'s advertised delay to `dest`, ms.
    pub fn advertised_delay(&self, peer: &Eid, dest: &Eid) -> Option<f64> {
        let p = self.names.get(&peer.node_id())?;
        let d = self.names.get(&dest.node_id())?;
        let table = self.delays.get(&p)?;
        table
            .binary_search_by_key(&d, |e| e.0)
            .ok()
            .map(|i| table[i].1)
    }
}

/// Copies handed to a peer with delay `theirs` when ours is `ours` (ms):
/// copies·ours/(ours + theirs), rounded, within 1..=copies.
fn spore_share(copies: u32, ours: f64, theirs: f64) -> u32 {
    if copies == COPIES_UNLIMITED {
        return COPIES_UNLIMITED;
    }
    let total = ours + theirs;
    if total <= 0.0 {
        return copies;
    }
    let share = (f64::from(copies) * ours / total).round();
    (share as u32).clamp(1, copies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(s: &str) -> Eid {
        s.parse().unwrap()
    }

    fn cand<'a>(dest: &'a Eid, peer: &'a Eid, copies: u32) -> Candidate<'a> {
        Candidate {
            destination: dest,
            received_from: None,
            peer,
            peer_has_it: false,
            refused_by_peer: false,
            destination_in_contact: false,
            copies,
            size_bytes: 100,
            expiry_ms: u64::MAX,
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for s in [
            "direct",
            "epidemic",
            "prophet",
            "cgr",
            "spore:8",
            "spray-and-wait:4",
        ] {
            let p: Policy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "spray-and-wait".parse::<Policy>().unwrap(),
            Policy::SprayAndWait { copies: 8 }
        );
        for bad in ["", "flood", "spore:0", "spore:x", "direct:3", "spore:5000"] {
            assert!(bad.parse::<Policy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shared_rules_come_first() {
        let r = Router::new(eid("dtn://a/"), Policy::Epidemic);
        let (dest, b, c) = (eid("dtn://c/files"), eid("dtn://b/"), eid("dtn://c/"));
        assert_eq!(r.decide(0, &cand(&dest, &c, 1)), Decision::Direct);
        let from_b = Candidate {
            received_from: Some(&b),
            ..cand(&dest, &b, 1)
        };
        assert_eq!(
            r.decide(0, &from_b),
            Decision::Hold(HoldReason::CameFromPeer)
        );
        let has = Candidate {
            peer_has_it: true,
            ..cand(&dest, &c, 1)
        };
        assert_eq!(r.decide(0, &has), Decision::Hold(HoldReason::PeerHasIt));
        let elsewhere = Candidate {
            destination_in_contact: true,
            ..cand(&dest, &b, 1)
        };
        assert_eq!(
            r.decide(0, &elsewhere),
            Decision::Hold(HoldReason::DestinationElsewhere)
        );
        assert_eq!(
            r.decide(0, &cand(&dest, &b, 1)),
            Decision::Forward {
                give: COPIES_UNLIMITED
            }
        );
    }

    #[test]
    fn direct_and_spray_and_wait() {
        let (dest, b) = (eid("dtn://c/"), eid("dtn://b/"));
        let direct = Router::new(eid("dtn://a/"), Policy::Direct);
        assert_eq!(direct.initial_copies(), 1);
        assert_eq!(
            direct.decide(0, &cand(&dest, &b, 1)),
            Decision::Hold(HoldReason::WaitForDestination)
        );
        let saw = Router::new(eid("dtn://a/"), Policy::SprayAndWait { copies: 8 });
        assert_eq!(saw.initial_copies(), 8);
        assert_eq!(saw.received_copies(100), 8);
        assert_eq!(saw.received_copies(0), 1);
        assert_eq!(
            saw.decide(0, &cand(&dest, &b, 8)),
            Decision::Forward { give: 4 }
        );
        assert_eq!(
            saw.decide(0, &cand(&dest, &b, 3)),
            Decision::Forward { give: 1 }
        );
        assert_eq!(
            saw.decide(0, &cand(&dest, &b, 1)),
            Decision::Hold(HoldReason::WaitForDestination)
        );
    }

    #[test]
    fn delays_combine_waits_and_adverts() {
        let (a, b, c, d) = (
            eid("dtn://a/"),
            eid("dtn://b/"),
            eid("dtn://c/"),
            eid("dtn://d/"),
        );
        let mut r = Router::new(a.clone(), Policy::Spore { copies: 4 });
        // b is met every ~1000 ms, c every ~10 000 ms.
        for k in 0..20u64 {
            r.contact_up(k * 1000, &b, 2000);
            r.contact_down(k * 1000, &b);
            r.contact_up(k * 10_000, &c, 2000);
            r.contact_down(k * 10_000, &c);
        }
        let now = 200_000;
        let wb = r.estimate(&b).unwrap().expected_wait_ms(now).unwrap();
        assert!((wb - 500.0).abs() < 1.0, "{wb}");
        assert_eq!(r.delay_to(now, &d), None);
        r.peer_advert(
            now,
            &c,
            &Advert {
                delay_ms: vec![(d.clone(), 100)],
                predictability: vec![],
            },
        );
        r.peer_advert(
            now,
            &b,
            &Advert {
                delay_ms: vec![(d.clone(), 50_000)],
                predictability: vec![],
            },
        );
        let via_c = r.estimate(&c).unwrap().expected_wait_ms(now).unwrap() + 100.0;
        assert_eq!(r.delay_to(now, &d), Some(via_c));
        let adv = r.advert(now);
        assert_eq!(adv.delay_ms[0], (a.clone(), 0));
        assert!(
            adv.delay_ms
                .iter()
                .any(|(n, ms)| n == &d && *ms == via_c.round() as u64)
        );
        // c is better than us for d, b is not.
        r.contact_up(now, &c, 2000);
        r.contact_up(now, &b, 2000);
        // c is far closer than our best without it: nearly every copy goes.
        assert_eq!(
            r.decide(now, &cand(&d, &c, 4)),
            Decision::Forward { give: 4 }
        );
        assert_eq!(
            r.decide(now, &cand(&d, &c, 1)),
            Decision::Forward { give: 1 }
        );
        assert_eq!(
            r.decide(now, &cand(&d, &b, 4)),
            Decision::Hold(HoldReason::NotBetter)
        );
    }

    #[test]
    fn spore_shares_copies_by_relative_delay() {
        assert_eq!(spore_share(8, 100.0, 100.0), 4);
        assert_eq!(spore_share(8, 300.0, 100.0), 6);
        assert_eq!(spore_share(8, 1.0, 1000.0), 1);
        assert_eq!(spore_share(1, 5.0, 1.0), 1);
        // Nothing known anywhere: the bundle moves on whole (exploration).
        let r = Router::new(eid("dtn://a/"), Policy::Spore { copies: 8 });
        let (d, p) = (eid("dtn://d/"), eid("dtn://p/"));
        assert_eq!(r.decide(0, &cand(&d, &p, 8)), Decision::Forward { give: 8 });
    }

    #[test]
    fn adverts_are_bounded() {
        let mut r = Router::new(eid("dtn://a/"), Policy::default());
        let huge = Advert {
            delay_ms: (0..5000)
                .map(|i| (eid(&format!("dtn://n{i}/")), i))
                .collect(),
            predictability: vec![],
        };
        r.contact_up(0, &eid("dtn://p/"), 1000);
        r.peer_advert(0, &eid("dtn://p/"), &huge);
        assert_eq!(r.delays.values().next().unwrap().len(), MAX_ADVERT_ENTRIES);
        assert!(r.advert(0).delay_ms.len() <= MAX_ADVERT_ENTRIES);
    }
}
