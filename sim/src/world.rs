//! The event loop: many agents, one thread, a virtual clock.
//!
//! Every node runs a real [`spore::agent::Agent`] over its own in-memory
//! store. The world keeps one queue of future events ordered by
//! (time µs, class, sequence number): events at the same time run in the
//! order they were scheduled, except that links going down run after
//! everything else at that time, so an instant contact (up and down at the
//! same time) still carries a whole exchange when bandwidth is unlimited
//! and the delay is 0. The clock jumps to the next event; the same inputs
//! give the same run.
//!
//! What the world does with the agents' actions:
//! - `Transmit`: the link model ([`crate::link`]); on arrival (finish +
//!   delay) the peer gets `Event::Received`; an aborted transfer gives the
//!   sender `Event::TransmitFailed` when the link goes down.
//! - `SendSummary`, `SendCustodySignal`: [`control_to_event`], delivered
//!   after the one-way delay if the link is up when sent (not
//!   bandwidth-limited).
//! - `Submitted`, `Deliver`: statistics. `AssembleFile` is ignored (no
//!   files in simulation).
//!
//! After every `handle` the world asks `next_wakeup()` and keeps one pending
//! `Event::Tick` per node at that time. A tick whose work went away before
//! it came (the custody signal it would have timed out arrived) is not
//! handed to the agent: the tick moves to the new wake-up. Such ticks were
//! two thirds of all ticks on `scripts/sim-bench.sh` and cost 80 µs each
//! (the agent's housekeeping writes peer estimates when it ticks).

use crate::link::{Links, Pending, Queued};
use crate::profile::Profile;
use crate::trace::{ConnEvent, node_eid};
use crate::workload::Message;
use bytes::Bytes;
use spore::agent::{Action, Agent, AgentConfig, AgentError, Event, Received, Submission};
use spore::bundle::{BundleId, DtnTime, Eid};
use spore::routing::Policy;
use spore::routing::plan::ContactPlan;
use spore::store::{Store, StoreError};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// DTN time (ms) of virtual time 0.
pub const EPOCH_MS: u64 = 700_000_000_000;

/// Ordering class of events at the same time: everything else first.
const CLASS_NORMAL: u8 = 0;
/// Links going down run last at their time.
///
/// A contact is usable up to and including its end (the oracle's closed
/// intervals): every link that comes up at a time, and everything that
/// follows from it at that time, runs before any link goes down then. So
/// all trace events of one time are queued together ([`World::push_conn_group`]),
/// ups first; a pair's down then up at the same time (a contact that goes
/// on, or restarts) keeps its trace order.
const CLASS_DOWN: u8 = 1;

/// Most bundles handed to an agent in one `Received` event (the agent's
/// default window per contact).
const MAX_ARRIVAL_BATCH: usize = 128;

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Routing policy of every node.
    pub policy: Policy,
    /// Link bandwidth per direction, bytes/s; `None` = unlimited.
    pub bandwidth: Option<u64>,
    /// Per-node quota of held payload bytes; `None` = unlimited.
    pub buffer: Option<u64>,
    /// One-way link delay, µs.
    pub delay_us: u64,
    /// Buffer occupancy sampling period, µs (> 0).
    pub sample_us: u64,
    /// The run stops after this virtual time, µs.
    pub end_us: u64,
    /// Contact plan given to every agent (for `cgr`).
    pub contact_plan: Option<Arc<ContactPlan>>,
    /// Time every agent call into [`Outcome::profile`].
    pub profile: bool,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// An agent failed to handle an event (its store failed).
    #[error("node {node} at t={time_s} s: {source}")]
    Agent {
        /// Node index.
        node: u32,
        /// Virtual time, seconds.
        time_s: f64,
        /// The agent's error.
        source: AgentError,
    },
    /// A store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Virtual time stopped advancing: more events at one instant than the
    /// run's messages and contacts can account for (e.g. a bundle handed
    /// round a ring of nodes forever, spec/routing.md §1 rule 3).
    #[error(
        "no progress at t={time_s} s: {events} events at this one instant \
         (limit {limit}); the nodes keep exchanging without end"
    )]
    NoProgress {
        /// Virtual time, seconds.
        time_s: f64,
        /// Events handled at that instant.
        events: u64,
        /// The limit, [`World::instant_limit`].
        limit: u64,
    },
}

/// What a run measured, before the oracle and the summary.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Delivery time of each message (µs), `None` if not delivered.
    pub delivered_at: Vec<Option<u64>>,
    /// Hops of each delivered message (0 if not delivered).
    pub hops: Vec<u32>,
    /// Transfers accepted by the receiver (custody accepted).
    pub relayed: u64,
    /// Drops by reason: store counters (`expired`, `refused_*`) plus
    /// `transfer_aborted`, `submit_refused` and `vanished` (undelivered,
    /// unexpired, held by no node at the end).
    pub drops: BTreeMap<String, u64>,
    /// Mean held bytes per node over all samples.
    pub occupancy_mean: f64,
    /// Largest held bytes of any node at any sample.
    pub occupancy_max: u64,
    /// Events popped from the queue.
    pub events: u64,
    /// Calls of `Agent::handle`.
    pub agent_calls: u64,
    /// Wall-clock time of the event loop, seconds.
    pub wall_s: f64,
    /// Where the wall-clock time went.
    pub profile: Profile,
}

/// A scheduled event.
enum Ev {
    Conn(usize),
    Create(usize),
    Agent(u32, Event),
    Arrive(u32, u32, Pending),
    TxDone { from: u32, to: u32, generation: u32 },
    Tick(u32),
    Sample,
}

struct Item {
    key: Reverse<(u64, u8, u64)>,
    ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, o: &Item) -> bool {
        self.key == o.key
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Item) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Item) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// Converts a control action of node `from` into the event its peer gets:
/// `SendSummary` → `PeerSummary`, `SendAdvert` → `PeerAdvert`,
/// `SendCustodySignal` → `CustodySignal`. Any other action is given back.
/// The one place to update when the control messages change.
#[allow(clippy::result_large_err)]
pub fn control_to_event(from: &Eid, action: Action) -> Result<(Eid, Event), Action> {
    let from = from.clone();
    match action {
        Action::SendSummary {
            peer,
            held,
            from_you,
            advert,
        } => Ok((
            peer,
            Event::PeerSummary {
                peer: from,
                held,
                from_you,
                advert,
            },
        )),
        Action::SendAdvert { peer, advert } => Ok((peer, Event::PeerAdvert { peer: from, advert })),
        Action::SendCustodySignal { peer, signal } => {
            Ok((peer, Event::CustodySignal { from, signal }))
        }
        other => Err(other),
    }
}

/// The simulation state.
pub struct World<'a> {
    cfg: SimConfig,
    agents: Vec<Agent>,
    eids: Vec<Eid>,
    index: HashMap<Eid, u32>,
    trace: &'a [ConnEvent],
    messages: &'a [Message],
    by_id: HashMap<BundleId, u32>,
    heap: BinaryHeap<Item>,
    seq: u64,
    /// The first trace event not yet queued.
    conn_next: usize,
    /// Trace events queued and not yet run.
    conn_queued: usize,
    now_us: u64,
    links: Links,
    tick_at: Vec<Option<u64>>,
    last_tick_us: Vec<Option<u64>>,
    /// (node, message) → hops made by the copy that node received first.
    hops_at: HashMap<(u32, u32), u32>,
    payload: Bytes,
    out: Outcome,
    samples: u64,
    occupancy_sum: f64,
}

impl<'a> World<'a> {
    /// A world of `nodes` agents over `trace` (sorted) and `messages`
    /// (sorted by creation time).
    ///
    /// # Errors
    /// [`SimError`] if a store or agent cannot be created.
    pub fn new(
        cfg: SimConfig,
        nodes: u32,
        trace: &'a [ConnEvent],
        messages: &'a [Message],
    ) -> Result<World<'a>, SimError> {
        let mut agents = Vec::with_capacity(nodes as usize);
        let eids: Vec<Eid> = (0..nodes).map(node_eid).collect();
        for (i, eid) in eids.iter().enumerate() {
            let mut ac = AgentConfig::new(eid.clone());
            ac.policy = cfg.policy;
            ac.contact_plan = cfg.contact_plan.clone();
            ac.quota_bytes = cfg.buffer.unwrap_or(u64::MAX);
            // A store lives for one run: finished records need no
            // retention schedule (one row less per finished bundle).
            ac.record_retention_ms = 0;
            let agent =
                Agent::new(Store::open_in_memory()?, ac).map_err(|source| SimError::Agent {
                    node: i as u32,
                    time_s: 0.0,
                    source,
                })?;
            agents.push(agent);
        }
        let index = eids.iter().cloned().zip(0..).collect();
        let biggest = messages.iter().map(|m| m.size).max().unwrap_or(0);
        let n = nodes as usize;
        Ok(World {
            cfg,
            agents,
            eids,
            index,
            trace,
            messages,
            by_id: HashMap::with_capacity(messages.len()),
            heap: BinaryHeap::new(),
            seq: 0,
            conn_next: 0,
            conn_queued: 0,
            now_us: 0,
            links: Links::default(),
            tick_at: vec![None; n],
            last_tick_us: vec![None; n],
            hops_at: HashMap::new(),
            payload: Bytes::from(vec![0u8; biggest as usize]),
            out: Outcome {
                delivered_at: vec![None; messages.len()],
                hops: vec![0; messages.len()],
                ..Outcome::default()
            },
            samples: 0,
            occupancy_sum: 0.0,
        })
    }

    fn push(&mut self, time_us: u64, class: u8, ev: Ev) {
        self.seq += 1;
        self.heap.push(Item {
            key: Reverse((time_us, class, self.seq)),
            ev,
        });
    }

    /// Queues every trace event of the next trace time (see [`CLASS_DOWN`]).
    fn push_conn_group(&mut self) {
        let first = self.conn_next;
        let Some(t) = self.trace.get(first).map(|e| e.time_us) else {
            return;
        };
        let trace = self.trace;
        let group = trace[first..].iter().take_while(|e| e.time_us == t);
        // Pairs whose link went down earlier in this group.
        let mut downed = std::collections::HashSet::new();
        for (n, e) in group.enumerate() {
            let pair = (e.a.min(e.b), e.a.max(e.b));
            if !e.up {
                downed.insert(pair);
            }
            let class = if e.up && !downed.contains(&pair) {
                CLASS_NORMAL
            } else {
                CLASS_DOWN
            };
            self.push(t, class, Ev::Conn(first + n));
            self.conn_next += 1;
            self.conn_queued += 1;
        }
    }

    fn push_create(&mut self, i: usize) {
        if let Some(m) = self.messages.get(i) {
            self.push(m.time_us, CLASS_NORMAL, Ev::Create(i));
        }
    }

    /// Most events one virtual instant may hold before the run is declared
    /// stuck: generous (8 per bundle copy a node could hold, per node
    /// pair, and per trace event at the trace's busiest instant), yet
    /// finite, so a livelock ends the run with [`SimError::NoProgress`]
    /// instead of hanging it.
    pub fn instant_limit(&self) -> u64 {
        let nodes = self.agents.len() as u64;
        let msgs = self.messages.len() as u64;
        let busiest = (self.trace)
            .chunk_by(|a, b| a.time_us == b.time_us)
            .map(|same| same.len() as u64)
            .max()
            .unwrap_or(0);
        8 * (msgs.saturating_add(1) * nodes + nodes * nodes + busiest) + 10_000
    }

    /// Runs until the queue is empty or past [`SimConfig::end_us`].
    ///
    /// # Errors
    /// [`SimError`] from the first agent or store failure.
    pub fn run(mut self) -> Result<Outcome, SimError> {
        let started = Instant::now();
        self.push_conn_group();
        self.push_create(0);
        self.push(0, CLASS_NORMAL, Ev::Sample);
        let limit = self.instant_limit();
        let mut at_instant = 0u64;
        while let Some(Item { key, ev }) = self.heap.pop() {
            let time_us = key.0.0;
            if time_us > self.cfg.end_us {
                break;
            }
            at_instant = if time_us == self.now_us {
                at_instant + 1
            } else {
                1
            };
            if at_instant > limit {
                return Err(SimError::NoProgress {
                    time_s: time_us as f64 / 1e6,
                    events: at_instant,
                    limit,
                });
            }
            self.now_us = time_us;
            self.out.events += 1;
            self.step(ev)?;
        }
        self.finish()?;
        self.out.wall_s = started.elapsed().as_secs_f64();
        Ok(self.out)
    }

    fn step(&mut self, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::Conn(i) => {
                self.conn_queued -= 1;
                if self.conn_queued == 0 {
                    self.push_conn_group();
                }
                self.conn(self.trace[i])?;
            }
            Ev::Create(i) => {
                self.push_create(i + 1);
                self.create(i)?;
            }
            Ev::Agent(node, ev) => self.handle(node, ev)?,
            Ev::Arrive(to, from, p) => {
                let batch = self.arrivals_with(to, from, p);
                self.arrive(to, from, batch)?
            }
            Ev::TxDone {
                from,
                to,
                generation,
            } => {
                if let Some(p) = self.links.finish(from, to, generation) {
                    let at = self.now_us + self.links.delay_us(from, to, self.cfg.delay_us);
                    self.push(at, CLASS_NORMAL, Ev::Arrive(to, from, p));
                }
            }
            Ev::Tick(node) => {
                if self.tick_at[node as usize] == Some(self.now_us) {
                    self.tick_at[node as usize] = None;
                    let wake = self.wakeup_us(node)?;
                    if wake.is_none_or(|w| w > self.now_us) {
                        // What the tick was for went away (a custody signal
                        // came back before its timeout): later, or never.
                        self.tick_at_wakeup(node, wake);
                        return Ok(());
                    }
                    self.last_tick_us[node as usize] = Some(self.now_us);
                    self.handle(node, Event::Tick)?;
                }
            }
            Ev::Sample => self.sample(),
        }
        Ok(())
    }

    fn conn(&mut self, e: ConnEvent) -> Result<(), SimError> {
        if e.up {
            if !self.links.up(e.a, e.b, e.params) {
                return Ok(());
            }
            let rtt_us = 2 * self.links.delay_us(e.a, e.b, self.cfg.delay_us);
            for (x, y) in [(e.a, e.b), (e.b, e.a)] {
                let peer = self.eids[y as usize].clone();
                let ev = Event::ContactUp {
                    peer,
                    addr: None,
                    rtt_us,
                };
                self.handle(x, ev)?;
            }
            return Ok(());
        }
        let Some(aborted) = self.links.down(e.a, e.b) else {
            return Ok(());
        };
        for (from, to, id) in aborted {
            *self.out.drops.entry("transfer_aborted".into()).or_default() += 1;
            let peer = self.eids[to as usize].clone();
            let reason = "contact ended".to_owned();
            self.handle(from, Event::TransmitFailed { peer, id, reason })?;
        }
        for (x, y) in [(e.a, e.b), (e.b, e.a)] {
            let peer = self.eids[y as usize].clone();
            self.handle(x, Event::ContactDown { peer })?;
        }
        Ok(())
    }

    fn create(&mut self, i: usize) -> Result<(), SimError> {
        let m = &self.messages[i];
        let destination: Eid = format!("dtn://n{}/sink", m.to)
            .parse()
            .expect("dtn://n<digits>/sink is a valid EID");
        let item = Submission::Data {
            destination,
            payload: self.payload.slice(..m.size as usize),
            lifetime_ms: Some(m.lifetime_us / 1000),
            flags: 0,
            content_cid: None,
            expires_by_ms: None,
        };
        let ev = Event::Submit {
            ticket: i as u64,
            items: vec![item],
        };
        self.handle(m.from, ev)
    }

    /// `first` and the bundles queued right behind it that arrive at `to`
    /// from `from` at the same time: the node's convergence layer hands
    /// bundles that arrive together to the agent as one batch (one commit,
    /// one custody signal), and so does the simulator. Each still counts
    /// as an event.
    fn arrivals_with(&mut self, to: u32, from: u32, first: Pending) -> Vec<Pending> {
        let mut batch = vec![first];
        while batch.len() < MAX_ARRIVAL_BATCH {
            let same = self.heap.peek().is_some_and(|next| {
                next.key.0.0 == self.now_us
                    && matches!(next.ev, Ev::Arrive(t, f, _) if t == to && f == from)
            });
            if !same {
                break;
            }
            if let Some(Item {
                ev: Ev::Arrive(_, _, p),
                ..
            }) = self.heap.pop()
            {
                self.out.events += 1;
                batch.push(p);
            }
        }
        batch
    }

    fn arrive(&mut self, to: u32, from: u32, batch: Vec<Pending>) -> Result<(), SimError> {
        let sender = &self.eids[from as usize];
        let mut items = Vec::with_capacity(batch.len());
        for p in batch {
            if let Some(msg) = p.msg {
                self.hops_at.entry((to, msg)).or_insert(p.hops);
            }
            items.push(Received::new(sender.clone(), p.bytes));
        }
        self.handle(to, Event::Received(items))
    }

    /// Hands `ev` to node `node`'s agent at the current time and carries
    /// out its actions.
    fn handle(&mut self, node: u32, ev: Event) -> Result<(), SimError> {
        let now = DtnTime(EPOCH_MS + self.now_us / 1000);
        let timed = self
            .cfg
            .profile
            .then(|| (crate::profile::kind(&ev), Instant::now()));
        let acts = self.agents[node as usize]
            .handle(now, ev)
            .map_err(|source| self.agent_error(node, source))?;
        if let Some((kind, t0)) = timed {
            self.out.profile.add(kind, t0.elapsed());
        }
        self.out.agent_calls += 1;
        for a in acts {
            self.carry(node, a);
        }
        let t1 = self.cfg.profile.then(Instant::now);
        self.schedule_tick(node)?;
        if let Some(t1) = t1 {
            self.out.profile.add("next_wakeup", t1.elapsed());
        }
        Ok(())
    }

    fn agent_error(&self, node: u32, source: AgentError) -> SimError {
        SimError::Agent {
            node,
            time_s: self.now_us as f64 / 1e6,
            source,
        }
    }

    fn carry(&mut self, node: u32, a: Action) {
        match a {
            Action::Transmit { peer, id, bytes } => self.transmit(node, peer, id, bytes.to_bytes()),
            Action::Submitted { ticket, result } => match result {
                Ok(ids) => {
                    for id in ids {
                        self.by_id.insert(id, ticket as u32);
                    }
                }
                Err(_) => *self.out.drops.entry("submit_refused".into()).or_default() += 1,
            },
            Action::Deliver { id, .. } => self.delivered(node, &id),
            Action::AssembleFile { .. } | Action::ExpectFile { .. } => {}
            control => {
                if let Action::SendCustodySignal { signal, .. } = &control {
                    if signal.accepted {
                        self.out.relayed += signal.bundles.len() as u64;
                    }
                }
                let from = &self.eids[node as usize];
                if let Ok((peer, ev)) = control_to_event(from, control) {
                    let Some(&to) = self.index.get(&peer) else {
                        return;
                    };
                    if self.links.is_up(node, to) {
                        let at = self.now_us + self.links.delay_us(node, to, self.cfg.delay_us);
                        self.push(at, CLASS_NORMAL, Ev::Agent(to, ev));
                    }
                }
            }
        }
    }

    fn transmit(&mut self, node: u32, peer: Eid, id: BundleId, bytes: Bytes) {
        let to = self.index.get(&peer).copied();
        let msg = self.by_id.get(&id).copied();
        let hops = msg.map_or(0, |m| self.hops_at.get(&(node, m)).copied().unwrap_or(0)) + 1;
        let p = Pending {
            id,
            bytes,
            msg,
            hops,
        };
        let queued = match to {
            Some(to) => {
                let rate = self.links.rate(node, to, self.cfg.bandwidth);
                self.links.enqueue(node, to, self.now_us, rate, p)
            }
            None => Queued::Down(p),
        };
        let to = to.unwrap_or_default();
        match queued {
            Queued::Done(p) => {
                let at = self.now_us + self.links.delay_us(node, to, self.cfg.delay_us);
                self.push(at, CLASS_NORMAL, Ev::Arrive(to, node, p));
            }
            Queued::Later {
                finish_us,
                generation,
            } => {
                let ev = Ev::TxDone {
                    from: node,
                    to,
                    generation,
                };
                self.push(finish_us, CLASS_NORMAL, ev);
            }
            Queued::Down(p) => {
                let reason = "no contact".to_owned();
                let ev = Event::TransmitFailed {
                    peer,
                    id: p.id,
                    reason,
                };
                self.push(self.now_us, CLASS_NORMAL, Ev::Agent(node, ev));
            }
        }
    }

    fn delivered(&mut self, node: u32, id: &BundleId) {
        let Some(&msg) = self.by_id.get(id) else {
            return;
        };
        let m = msg as usize;
        if self.messages[m].to == node && self.out.delivered_at[m].is_none() {
            self.out.delivered_at[m] = Some(self.now_us);
            self.out.hops[m] = self.hops_at.get(&(node, msg)).copied().unwrap_or(0);
        }
    }

    /// The node's next wake-up ([`Agent::next_wakeup`]) in virtual µs.
    fn wakeup_us(&self, node: u32) -> Result<Option<u64>, SimError> {
        let wake = self.agents[node as usize]
            .next_wakeup()
            .map_err(|source| self.agent_error(node, source))?;
        Ok(wake.map(|w| w.0.saturating_sub(EPOCH_MS).saturating_mul(1000)))
    }

    /// Keeps one pending tick for `node` at its next wake-up.
    fn schedule_tick(&mut self, node: u32) -> Result<(), SimError> {
        let wake = self.wakeup_us(node)?;
        self.tick_at_wakeup(node, wake);
        Ok(())
    }

    /// Keeps one pending tick for `node` at `wake` ([`World::wakeup_us`];
    /// none if `None`), never twice at the same time: a wake-up not
    /// cleared by a tick moves 1 ms on.
    fn tick_at_wakeup(&mut self, node: u32, wake: Option<u64>) {
        let n = node as usize;
        let Some(w) = wake else {
            return;
        };
        let mut t = w.max(self.now_us);
        if t == self.now_us && self.last_tick_us[n] == Some(self.now_us) {
            t += 1000;
        }
        if self.tick_at[n].is_none_or(|p| t < p || p < self.now_us) {
            self.tick_at[n] = Some(t);
            self.push(t, CLASS_NORMAL, Ev::Tick(node));
        }
    }

    fn sample(&mut self) {
        for a in &self.agents {
            let held = a.held_bytes();
            self.occupancy_sum += held as f64;
            self.out.occupancy_max = self.out.occupancy_max.max(held);
        }
        self.samples += 1;
        let next = self.now_us + self.cfg.sample_us.max(1);
        if next <= self.cfg.end_us {
            self.push(next, CLASS_NORMAL, Ev::Sample);
        }
    }

    /// Undelivered messages that no node holds at the end: lost without a
    /// drop being counted anywhere (e.g. released on a `Duplicate` custody
    /// signal by a node that had already passed the bundle on).
    fn vanished(&self) -> Result<u64, SimError> {
        let mut ids: Vec<(&BundleId, u32)> = self.by_id.iter().map(|(id, m)| (id, *m)).collect();
        ids.sort_unstable_by_key(|(_, m)| *m);
        let mut n = 0;
        for (id, m) in ids {
            let msg = &self.messages[m as usize];
            let expired = msg.time_us.saturating_add(msg.lifetime_us) <= self.now_us;
            if self.out.delivered_at[m as usize].is_some() || expired {
                continue;
            }
            let key = id.to_key();
            let mut held = false;
            for a in &self.agents {
                if a.store().record(&key)?.is_some_and(|r| r.state.is_held()) {
                    held = true;
                    break;
                }
            }
            n += u64::from(!held);
        }
        Ok(n)
    }

    fn finish(&mut self) -> Result<(), SimError> {
        let vanished = self.vanished()?;
        if vanished > 0 {
            self.out.drops.insert("vanished".into(), vanished);
        }
        let cells = self.samples as f64 * self.agents.len() as f64;
        if cells > 0.0 {
            self.out.occupancy_mean = self.occupancy_sum / cells;
        }
        for a in &self.agents {
            for (name, n) in a.store().counters()? {
                if name == "expired" || name.starts_with("refused_") {
                    *self.out.drops.entry(name).or_default() += n;
                }
            }
        }
        Ok(())
    }
}
