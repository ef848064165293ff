//! The [`Router`]: per-peer estimates, the peers' advertisements and the
//! policy's decision for one bundle and one peer (spec/routing.md §2–§4).

use super::cgr::{CgrIndex, Route};
use super::estimate::PeerEstimate;
use super::plan::ContactPlan;
use super::prophet::{ProphetParams, ProphetTable, grtr};
use super::{
    COPIES_UNLIMITED, Candidate, Decision, HoldReason, Policy, binary_split, common_rules,
};
use crate::bundle::Eid;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell, RefMut};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    /// The ID of `node`, interning it if there is room (at most
    /// [`MAX_KNOWN_NODES`] names learnt from advertisements).
    fn id(&mut self, node: &Eid) -> Option<u32> {
        if let Some(&i) = self.ids.get(node) {
            return Some(i);
        }
        if self.names.len() >= MAX_KNOWN_NODES {
            return None;
        }
        Some(self.intern(node))
    }

    /// The ID of `node`, interned even past [`MAX_KNOWN_NODES`]: for peers
    /// met in a contact or restored from the store, whose number is bounded
    /// by connections and the peer table, not by what adverts name.
    fn id_always(&mut self, node: &Eid) -> u32 {
        match self.ids.get(node) {
            Some(&i) => i,
            None => self.intern(node),
        }
    }

    fn intern(&mut self, node: &Eid) -> u32 {
        let i = self.names.len() as u32;
        self.ids.insert(node.clone(), i);
        self.names.push(node.clone());
        i
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
    /// Estimates by interned peer ID (integer keys: a look-up compares
    /// no strings).
    peers: BTreeMap<u32, PeerEstimate>,
    /// Mean MEED wait over peers with a gap history, ms: the prior for
    /// peers met only once. `None` inside: to be recomputed (a contact
    /// started or ended since), done at the next use rather than at every
    /// contact change.
    prior_wait_ms: Cell<Option<Option<f64>>>,
    /// Per peer (by interned ID): its advertised delays, (node, ms), sorted
    /// by node; empty for nodes that never advertised.
    delays: Vec<Vec<(u32, f64)>>,
    /// D(X) and "D(X) without peer P" for every node at one instant (§4),
    /// built at the first use at a new time or after estimates or adverts
    /// changed, then read by every decision and advert of that instant.
    routes: RefCell<Option<DelayRoutes>>,
    /// PRoPHET state (policy `prophet` only).
    prophet: Option<Prophet>,
    /// Contact plan and its index (policy `cgr` only).
    cgr: Option<Cgr>,
}

/// PRoPHET: our predictabilities and each peer's last advertised ones.
#[derive(Debug)]
struct Prophet {
    table: ProphetTable,
    peers: HashMap<Eid, HashMap<Eid, f64>>,
    /// The table changed since [`Router::take_prophet_table`] last ran.
    changed: bool,
}

/// Largest encoded PRoPHET table restored from the store, bytes (4 MiB:
/// about 40 000 entries).
pub const MAX_PROPHET_TABLE_BYTES: usize = 4 << 20;

/// Key of a cached CGR route: destination, excluded node, bundle size.
type RouteKey = (Eid, Option<Eid>, u64);

/// CGR: the plan, its index, and routes cached until their departure time
/// (a route found at t stays the earliest until it leaves: a static plan
/// offers no new options as time passes).
#[derive(Debug)]
struct Cgr {
    plan: Arc<ContactPlan>,
    index: CgrIndex,
    cache: RefCell<HashMap<RouteKey, (u64, Route)>>,
}

/// Most CGR routes cached.
const MAX_CACHED_ROUTES: usize = 65_536;

impl Router {
    /// A router for node `me` (a node ID) following `policy`.
    pub fn new(me: Eid, policy: Policy) -> Router {
        let me = me.node_id();
        let prophet = (policy == Policy::Prophet).then(|| Prophet {
            table: ProphetTable::new(ProphetParams::default()).with_local(&me),
            peers: HashMap::new(),
            changed: false,
        });
        Router {
            me,
            policy,
            names: Names::default(),
            peers: BTreeMap::new(),
            delays: Vec::new(),
            routes: RefCell::new(None),
            prior_wait_ms: Cell::new(Some(None)),
            prophet,
            cgr: None,
        }
    }

    /// The PRoPHET table encoded as CBOR if it changed since the last call
    /// (to persist it, spec/routing.md §5); `None` if unchanged or the
    /// policy is not PRoPHET.
    pub fn take_prophet_table(&mut self) -> Option<Vec<u8>> {
        let p = self.prophet.as_mut().filter(|p| p.changed)?;
        p.changed = false;
        serde_cbor::to_vec(&p.table).ok()
    }

    /// Restores a PRoPHET table saved by [`Router::take_prophet_table`]
    /// (its parameters and local node are replaced by this router's).
    ///
    /// # Errors
    /// A message if `bytes` is larger than `MAX_PROPHET_TABLE_BYTES` (4 MiB) or
    /// not a table; the router keeps its current (empty) table then.
    pub fn restore_prophet_table(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(p) = self.prophet.as_mut() else {
            return Ok(());
        };
        if bytes.len() > MAX_PROPHET_TABLE_BYTES {
            return Err(format!(
                "PRoPHET table of {} bytes exceeds {MAX_PROPHET_TABLE_BYTES}",
                bytes.len()
            ));
        }
        let saved: ProphetTable =
            serde_cbor::from_slice(bytes).map_err(|e| format!("bad PRoPHET table: {e}"))?;
        p.table = saved.rebased(p.table.params().clone(), &self.me);
        Ok(())
    }

    /// Gives the router a contact plan (used by [`Policy::Cgr`]).
    pub fn with_plan(mut self, plan: Arc<ContactPlan>) -> Router {
        let index = CgrIndex::new(&plan);
        self.cgr = Some(Cgr {
            plan,
            index,
            cache: RefCell::new(HashMap::new()),
        });
        self
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Restores a persisted estimate for `peer` (start-up).
    pub fn seed_peer(&mut self, peer: &Eid, mut est: PeerEstimate) {
        est.in_contact = false; // a contact never survives a restart
        let id = self.names.id_always(&peer.as_node_id());
        self.peers.insert(id, est);
        self.prior_wait_ms.set(None);
        *self.routes.get_mut() = None;
    }

    /// A contact with `peer` started at `now_ms`; `rtt_us` is the CLA's RTT.
    pub fn contact_up(&mut self, now_ms: u64, peer: &Eid, rtt_us: u64) {
        let peer = peer.as_node_id();
        let id = self.names.id_always(&peer);
        if let Some(p) = &mut self.prophet {
            p.table.encounter(now_ms, &peer);
            p.changed = true;
        }
        self.peers.entry(id).or_default().contact_up(now_ms, rtt_us);
        self.prior_wait_ms.set(None);
        *self.routes.get_mut() = None;
    }

    /// The contact with `peer` ended at `now_ms`.
    pub fn contact_down(&mut self, now_ms: u64, peer: &Eid) {
        if let Some(p) = self.peer_mut(peer) {
            p.contact_down(now_ms);
        }
        self.prior_wait_ms.set(None);
        *self.routes.get_mut() = None;
    }

    /// The prior (spec/routing.md §3): the mean MEED wait over peers with
    /// a gap history, ms, over the current estimates; recomputed at its
    /// first use after a contact started or ended (not at every change:
    /// most are never followed by a decision that needs it before the
    /// next one).
    fn prior_wait_ms(&self) -> Option<f64> {
        if let Some(prior) = self.prior_wait_ms.get() {
            return prior;
        }
        // One pass, no allocation; same order and start as `Iterator::sum`.
        let (n, sum) = self
            .peers
            .values()
            .filter_map(|p| p.meed_wait_ms())
            .fold((0usize, -0.0f64), |(n, sum), w| (n + 1, sum + w));
        let prior = (n > 0).then(|| sum / n as f64);
        self.prior_wait_ms.set(Some(prior));
        prior
    }

    /// A new RTT sample for `peer`, µs.
    pub fn rtt_sample(&mut self, peer: &Eid, rtt_us: u64) {
        if let Some(p) = self.peer_mut(peer) {
            p.rtt.sample(rtt_us);
            *self.routes.get_mut() = None;
        }
    }

    /// Adds bundle bytes moved to (`sent`) and from (`received`) `peer`.
    pub fn moved(&mut self, peer: &Eid, sent: u64, received: u64) {
        let id = self.names.id_always(&peer.as_node_id());
        let p = self.peers.entry(id).or_default();
        p.bytes_sent = p.bytes_sent.saturating_add(sent);
        p.bytes_received = p.bytes_received.saturating_add(received);
    }

    /// Expected wait for a peer (spec/routing.md §3), with the prior.
    fn wait_ms(&self, est: &PeerEstimate, now_ms: u64) -> Option<f64> {
        est.expected_wait_with_prior_ms(now_ms, self.prior_wait_ms())
    }

    /// The estimate for `peer`, if it was ever met.
    pub fn estimate(&self, peer: &Eid) -> Option<&PeerEstimate> {
        let id = self.names.get(&peer.as_node_id())?;
        self.peers.get(&id)
    }

    fn peer_mut(&mut self, peer: &Eid) -> Option<&mut PeerEstimate> {
        let id = self.names.get(&peer.as_node_id())?;
        self.peers.get_mut(&id)
    }

    /// Every peer's estimate, by node ID, in the order the peers were
    /// first met.
    pub fn estimates(&self) -> impl Iterator<Item = (&Eid, &PeerEstimate)> {
        self.peers
            .iter()
            .map(|(&id, est)| (&self.names.names[id as usize], est))
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
    pub fn peer_advert(&mut self, now_ms: u64, peer: &Eid, advert: &Advert) {
        let peer = peer.as_node_id();
        *self.routes.get_mut() = None;
        if let Some(p) = &mut self.prophet {
            let list =
                &advert.predictability[..advert.predictability.len().min(MAX_ADVERT_ENTRIES)];
            p.table.transitive(now_ms, &peer, list);
            p.changed = true;
            let table = list.iter().map(|(n, v)| (n.node_id(), *v)).collect();
            p.peers.insert(peer.clone().into_owned(), table);
        }
        if advert.delay_ms.is_empty() {
            // Nothing advertised (the common case under every policy but
            // spore's): forget what the peer said before, if anything.
            if let Some(t) = self
                .names
                .get(&peer)
                .and_then(|p| self.delays.get_mut(p as usize))
            {
                t.clear();
            }
            return;
        }
        let Some(p) = self.names.id(&peer) else {
            return;
        };
        let mut table = Vec::with_capacity(advert.delay_ms.len().min(MAX_ADVERT_ENTRIES));
        for (node, ms) in advert.delay_ms.iter().take(MAX_ADVERT_ENTRIES) {
            if !node.is_node_id() {
                continue; // adverts name nodes; anything else is ignored
            }
            if let Some(n) = self.names.id(node) {
                table.push((n, *ms as f64));
            }
        }
        table.sort_by_key(|e| e.0);
        table.dedup_by_key(|e| e.0);
        if self.delays.len() <= p as usize {
            self.delays.resize_with(p as usize + 1, Vec::new);
        }
        self.delays[p as usize] = table;
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
        let dest = dest.as_node_id();
        if *dest == self.me {
            return Some(0.0);
        }
        let d = self.names.get(&dest)?;
        let skip = exclude.and_then(|e| self.names.get(e));
        let mut r = self.routes_at(now_ms);
        let b = match r.by_node[d as usize] {
            Some(b) => b,
            None => {
                let b = self.best_two(&r.waits, d);
                r.by_node[d as usize] = Some(b);
                b
            }
        };
        b.without(skip)
    }

    /// The delay routes at `now_ms`: the cached ones if they are of that
    /// instant and cover every known node, else new ones with the waits
    /// computed and no node's routes yet.
    fn routes_at(&self, now_ms: u64) -> RefMut<'_, DelayRoutes> {
        let mut cached = self.routes.borrow_mut();
        let n = self.names.names.len();
        if !cached
            .as_ref()
            .is_some_and(|r| r.at_ms == now_ms && r.by_node.len() == n)
        {
            *cached = None;
        }
        RefMut::map(cached, |c| {
            c.get_or_insert_with(|| DelayRoutes {
                at_ms: now_ms,
                waits: self
                    .peers
                    .iter()
                    .filter_map(|(&p, est)| Some((p, self.wait_ms(est, now_ms)?)))
                    .collect(),
                by_node: vec![None; n],
                complete: false,
            })
        })
    }

    /// Peer `p`'s advertised delays, (node, ms) sorted by node.
    fn table(&self, p: u32) -> &[(u32, f64)] {
        self.delays.get(p as usize).map_or(&[], |t| t.as_slice())
    }

    /// Peer `p`'s advertised delay to node `d`, ms.
    fn table_entry(&self, p: u32, d: u32) -> Option<f64> {
        let table = self.table(p);
        let i = table.binary_search_by_key(&d, |e| e.0).ok()?;
        Some(table[i].1)
    }

    /// The routes to node `d` (§4): the wait for `d` itself if it is a
    /// peer, and wait(P) + A_P(d) for each peer P that advertised `d`; one
    /// binary search per peer (a decision needs few destinations).
    fn best_two(&self, waits: &[(u32, f64)], d: u32) -> BestTwo {
        let mut b = BestTwo::NONE;
        for &(p, w) in waits {
            if p == d {
                b.offer(w, p);
            }
            if let Some(ms) = self.table_entry(p, d) {
                b.offer(w + ms, p);
            }
        }
        b
    }

    /// Fills the routes to every node in one pass over the peers' adverts
    /// (an advert names them all): the same offers, in the same order, as
    /// [`Router::best_two`] node by node.
    fn complete_routes(&self, r: &mut DelayRoutes) {
        if r.complete {
            return;
        }
        let mut all = vec![BestTwo::NONE; r.by_node.len()];
        for &(p, w) in &r.waits {
            all[p as usize].offer(w, p);
            for &(d, ms) in self.table(p) {
                all[d as usize].offer(w + ms, p);
            }
        }
        r.by_node = all.into_iter().map(Some).collect();
        r.complete = true;
    }

    /// What to advertise to peers at `now_ms`: this node's delay estimate
    /// to every node it knows, lowest first, at most [`MAX_ADVERT_ENTRIES`].
    pub fn advert(&self, now_ms: u64) -> Advert {
        self.advert_for(now_ms, None)
    }

    /// The advertisement for peer `to`: with split horizon, the delays
    /// leave out routes through `to` itself (a peer must not learn back a
    /// route that goes through it: that is how forwarding loops start).
    pub fn advert_for(&self, now_ms: u64, to: Option<&Eid>) -> Advert {
        let predictability = self
            .prophet
            .as_ref()
            .map_or_else(Vec::new, |p| p.table.advert(MAX_ADVERT_ENTRIES));
        let delay_ms = if matches!(self.policy, Policy::Spore { .. }) {
            let skip = to.and_then(|t| self.names.get(&t.as_node_id()));
            self.delay_advert(now_ms, skip)
        } else {
            Vec::new()
        };
        Advert {
            delay_ms,
            predictability,
        }
    }

    /// True if this policy sends anything in its advertisements.
    pub fn advertises(&self) -> bool {
        matches!(self.policy, Policy::Spore { .. } | Policy::Prophet)
    }

    /// Our delay estimate to every node we know, lowest first (§4).
    fn delay_advert(&self, now_ms: u64, skip: Option<u32>) -> Vec<(Eid, u64)> {
        let me = self.names.get(&self.me);
        let mut r = self.routes_at(now_ms);
        self.complete_routes(&mut r);
        let mut delay_ms: Vec<(Eid, u64)> = r
            .by_node
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i as u32) != me)
            .filter_map(|(i, b)| {
                let d = b.as_ref()?.without(skip)?;
                Some((self.names.names[i].clone(), d.round() as u64))
            })
            .collect();
        drop(r);
        delay_ms.push((self.me.clone(), 0));
        delay_ms.sort_by_key(|e| e.1);
        delay_ms.truncate(MAX_ADVERT_ENTRIES);
        delay_ms
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
            Policy::Prophet => self.decide_prophet(c),
            Policy::Cgr => self.decide_cgr(now_ms, c),
        }
    }

    /// PRoPHET GRTR (RFC 6693 §3.6): replicate to a peer whose
    /// predictability for the destination is higher than ours.
    fn decide_prophet(&self, c: &Candidate<'_>) -> Decision {
        let Some(p) = &self.prophet else {
            return Decision::Hold(HoldReason::NotBetter);
        };
        let dest = c.destination.as_node_id();
        let mine = p.table.predictability(&dest);
        let theirs = p
            .peers
            .get(&*c.peer.as_node_id())
            .and_then(|t| t.get(&dest))
            .copied()
            .unwrap_or(0.0);
        if grtr(mine, theirs) {
            Decision::Forward { give: c.copies }
        } else {
            Decision::Hold(HoldReason::NotBetter)
        }
    }

    /// CGR: hand the bundle (every copy) to the peer when the earliest-
    /// arrival route over the contact plan leaves through it now.
    fn decide_cgr(&self, now_ms: u64, c: &Candidate<'_>) -> Decision {
        match self.cgr_route(now_ms, c) {
            Some((route, start)) if route.first_hop == c.peer.node_id() && start <= now_ms => {
                Decision::Forward { give: c.copies }
            }
            _ => Decision::Hold(HoldReason::NotOnRoute),
        }
    }

    /// The earliest-arrival route for a candidate and the start of its
    /// first contact, DTN ms (cached until the route departs).
    pub fn cgr_route(&self, now_ms: u64, c: &Candidate<'_>) -> Option<(Route, u64)> {
        let cgr = self.cgr.as_ref()?;
        let excl = c.received_from.map(Eid::node_id);
        let key = (c.destination.node_id(), excl.clone(), c.size_bytes);
        let cached = cgr.cache.borrow().get(&key).cloned();
        let route = match cached {
            Some((valid_until, r)) if now_ms <= valid_until && r.arrival_ms <= c.expiry_ms => r,
            _ => {
                let exclude: Vec<Eid> = excl.into_iter().collect();
                let r = cgr.index.earliest_arrival(
                    &self.me,
                    &key.0,
                    now_ms,
                    c.size_bytes,
                    c.expiry_ms,
                    &exclude,
                )?;
                let start = cgr.plan.contacts.get(r.first_contact)?.start_ms;
                let mut cache = cgr.cache.borrow_mut();
                if cache.len() >= MAX_CACHED_ROUTES {
                    cache.clear();
                }
                cache.insert(key, (start.max(now_ms), r.clone()));
                r
            }
        };
        let start = cgr.plan.contacts.get(route.first_contact)?.start_ms;
        Some((route, start))
    }

    /// Records that a bundle described by `c` was handed to `c.peer` under
    /// [`Policy::Cgr`]: its size is booked on the first contact of its
    /// route when that contact leads to the peer (capacity accounting,
    /// spec/routing.md §6), and cached routes over that contact are
    /// dropped. No effect under other policies.
    pub fn sent(&mut self, now_ms: u64, c: &Candidate<'_>) {
        let Some((route, _)) = self.cgr_route(now_ms, c) else {
            return;
        };
        if route.first_hop != c.peer.node_id() {
            return;
        }
        let Some(cgr) = self.cgr.as_mut() else {
            return;
        };
        cgr.index.book(route.first_contact, c.size_bytes);
        cgr.cache
            .get_mut()
            .retain(|_, (_, r)| r.first_contact != route.first_contact);
    }

    /// spore's default (spec/routing.md §4). `theirs` is the peer's
    /// advertised delay to the destination, `ours` our own without the peer.
    /// Neither known: hand every copy over (explore, custody moves on).
    /// Only theirs known: hand every copy over. Only ours known, or theirs
    /// not lower: hold. Both known and theirs lower: give the share
    /// copies·ours/(ours + theirs) (rounded, at least 1): half when equal,
    /// nearly all when the peer is much closer, all of a single copy.
    fn decide_spore(&self, now_ms: u64, c: &Candidate<'_>) -> Decision {
        let dest = c.destination.as_node_id();
        let theirs = self.advertised_delay(c.peer, &dest);
        let ours = self.delay_excluding(now_ms, &dest, Some(&c.peer.as_node_id()));
        let give = match (theirs, ours) {
            // Nobody knows a way: the source hands its bundle to the first
            // peer it meets (a data mule); relays wait for information.
            (None, None) if c.received_from.is_none() => c.copies,
            (Some(_), None) => c.copies,
            (Some(t), Some(o)) if t < spore_margin(c.copies) * o => spore_share(c.copies, o, t),
            _ => return Decision::Hold(HoldReason::NotBetter),
        };
        Decision::Forward { give }
    }

    /// `peer`'s advertised delay to `dest`, ms.
    pub fn advertised_delay(&self, peer: &Eid, dest: &Eid) -> Option<f64> {
        let p = self.names.get(&peer.as_node_id())?;
        let d = self.names.get(&dest.as_node_id())?;
        self.table_entry(p, d)
    }
}

/// The routes to all known nodes at one instant (spec/routing.md §4).
#[derive(Debug)]
struct DelayRoutes {
    /// The time the waits were computed for, ms.
    at_ms: u64,
    /// (peer ID, expected wait ms) for every peer with a known wait.
    waits: Vec<(u32, f64)>,
    /// By interned node ID; `None` until a decision or advert needs it.
    by_node: Vec<Option<BestTwo>>,
    /// Every node's entry is filled.
    complete: bool,
}

/// The lowest delay to one node, the peer that route goes through, and
/// the lowest through any other peer: D(X), and D(X) without any one peer
/// P (the split-horizon advert to P, and "ours" when deciding for P), in
/// O(1) instead of a pass over every peer.
#[derive(Copy, Clone, Debug)]
struct BestTwo {
    best: f64,
    via: u32,
    second: f64,
}

impl BestTwo {
    const NONE: BestTwo = BestTwo {
        best: f64::INFINITY,
        via: u32::MAX,
        second: f64::INFINITY,
    };

    /// Considers a route of `ms` through peer `via`.
    fn offer(&mut self, ms: f64, via: u32) {
        if ms < self.best {
            if via != self.via {
                self.second = self.best;
            }
            self.best = ms;
            self.via = via;
        } else if via != self.via && ms < self.second {
            self.second = ms;
        }
    }

    /// The lowest delay not through `skip`, ms; `None` if there is none.
    fn without(&self, skip: Option<u32>) -> Option<f64> {
        let d = if skip == Some(self.via) {
            self.second
        } else {
            self.best
        };
        d.is_finite().then_some(d)
    }
}

/// How much better a peer must be, as a fraction of our delay, to get
/// copies: spare copies (spray) go to a peer at most 0.9× our delay; the
/// last copy (focus) only to one at most half of it, so estimate noise does
/// not pass a lone copy back and forth.
fn spore_margin(copies: u32) -> f64 {
    if copies > 1 {
        SPRAY_MARGIN
    } else {
        FOCUS_MARGIN
    }
}

/// See [`spore_margin`].
const SPRAY_MARGIN: f64 = 0.9;
/// See [`spore_margin`].
const FOCUS_MARGIN: f64 = 0.25;

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
#[path = "router_tests.rs"]
mod tests;
