//! The sans-IO core: `handle(now, Event) -> Vec<Action>`.
//!
//! The agent decides everything about bundles (validation, custody,
//! lifetime, delivery, what to send to whom) and does nothing by itself: it
//! never opens a socket, spawns a task or reads a clock. Its inputs are
//! [`Event`]s stamped with the current DTN time by the driver (`node` in
//! production, `sim` in simulation); its outputs are [`Action`]s for the
//! driver to carry out. It writes to the [`Store`] synchronously; every
//! acknowledgement it emits (a custody signal, a submission result) follows
//! a durable commit.
//!
//! Custody and lifetime follow spec/custody.md; forwarding follows
//! [`crate::routing`].

mod commit;
mod custody;
mod forward;
mod inflight;
mod ingest;
mod jobs;
mod known;
mod quota;
mod raw;
mod status;
mod submit;

pub use status::{BundleView, FileView, PeerView, RouteDecisionView, RouteView, StatusView};

use crate::bundle::admin::CustodySignal;
use crate::bundle::codec::DecodeLimits;
use crate::bundle::{BundleId, DtnTime, Eid};
use crate::content::Manifest;
use crate::routing::plan::ContactPlan;
use crate::routing::{Advert, Policy, Router};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use inflight::InFlightSet;
pub use ingest::Prechecked;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Agent settings; every limit has a default (see [`AgentConfig::new`]).
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// This node's ID, e.g. `dtn://a/`.
    pub node_id: Eid,
    /// Lifetime given to locally created bundles when none is asked for (7 days).
    pub default_lifetime_ms: u64,
    /// How long a transmitted bundle waits for a custody signal before it is
    /// offered again (30 s).
    pub custody_timeout_ms: u64,
    /// Most bundles in flight (sent, no custody signal yet) per contact
    /// (128).
    pub window_per_contact: usize,
    /// Most encoded bytes in flight per contact (16 MiB); one bundle may
    /// always go on an empty window.
    pub window_bytes_per_contact: u64,
    /// Most bundle IDs sent in a contact summary (10 000).
    pub summary_limit: usize,
    /// Decoder limits for bundles from peers and clients.
    pub decode_limits: DecodeLimits,
    /// Most chunks a manifest may list (1 048 576).
    pub max_manifest_entries: usize,
    /// The demux of the file service (`files`): chunk and manifest bundles
    /// for it are reassembled into the inbox.
    pub files_service: String,
    /// Lifetime of status reports this node creates (1 day).
    pub status_report_lifetime_ms: u64,
    /// Most expired bundles processed per tick (1 024); also the most
    /// delivered-bundle IDs forgotten per tick.
    pub expiry_batch: usize,
    /// How long after its expiry a delivered bundle's ID is still
    /// remembered, in ms (1 h): covers clock differences between nodes, so
    /// that a late copy is refused as expired rather than delivered again.
    pub delivered_grace_ms: u64,
    /// How long after its bundle's expiry a finished record (custody
    /// transferred, delivered, expired, deleted) stays in the store for
    /// `spore status`, in ms (7 days; 0 keeps records for ever). Never less
    /// than `delivered_grace_ms`, so a late copy is still recognised.
    pub record_retention_ms: u64,
    /// Most payload bytes held for forwarding (10 GiB); beyond it new
    /// bundles are refused with reason "depleted storage".
    pub quota_bytes: u64,
    /// Routing policy (spec/routing.md); default [`Policy::Spore`] with 8 copies.
    pub policy: Policy,
    /// Contact plan for [`Policy::Cgr`] (ignored by other policies).
    pub contact_plan: Option<Arc<ContactPlan>>,
    /// Bundle-count quota, per-peer share and local reserve
    /// (crate::limits::quota; defaults 1 000 000 bundles, 50 %, 10 %).
    pub quota_shares: crate::limits::QuotaShares,
    /// On a metered link ([`Event::Metered`]), bundles larger than this
    /// many encoded bytes wait (bulk: file chunks); smaller ones (small
    /// files, manifests, status reports, jobs) still flow (64 KiB).
    pub metered_bulk_bytes: u64,
}

/// Default of [`AgentConfig::metered_bulk_bytes`], bytes.
pub const DEFAULT_METERED_BULK_BYTES: u64 = 64 << 10;

impl AgentConfig {
    /// Defaults for node `node_id`.
    pub fn new(node_id: Eid) -> AgentConfig {
        AgentConfig {
            node_id,
            default_lifetime_ms: 7 * 24 * 3600 * 1000,
            custody_timeout_ms: 30_000,
            window_per_contact: 128,
            window_bytes_per_contact: 16 << 20,
            summary_limit: 10_000,
            decode_limits: DecodeLimits::default(),
            max_manifest_entries: 1 << 20,
            files_service: "files".to_owned(),
            status_report_lifetime_ms: 24 * 3600 * 1000,
            expiry_batch: 1024,
            delivered_grace_ms: 3_600_000,
            record_retention_ms: 7 * 24 * 3_600_000,
            quota_bytes: 10 << 30,
            policy: Policy::default(),
            contact_plan: None,
            quota_shares: crate::limits::QuotaShares::default(),
            metered_bulk_bytes: DEFAULT_METERED_BULK_BYTES,
        }
    }
}

/// A bundle that arrived from a peer over a convergence layer.
#[derive(Clone, Debug)]
pub struct Received {
    /// The peer's node ID (authenticated by the CLA).
    pub from: Eid,
    /// The encoded bundle, untrusted.
    pub bytes: Bytes,
    /// The decode and content check of `bytes`, when the caller did them
    /// already ([`Received::prechecked`], e.g. on the CL's receiving task so
    /// that hashing runs beside the agent thread); `None`: the agent does them.
    pub pre: Option<Box<ingest::Prechecked>>,
}

impl Received {
    /// A bundle from `from`, decoded and checked by the agent when handled.
    pub fn new(from: Eid, bytes: Bytes) -> Received {
        Received {
            from,
            bytes,
            pre: None,
        }
    }

    /// A bundle from `from`, decoded (RFC 9171 §4, CRCs included) and its
    /// content CID checked against its payload now, by the caller's thread.
    /// Pure: no store, clock or I/O. The agent uses the result as if it had
    /// computed it itself; `limits` should be the agent's
    /// [`AgentConfig::decode_limits`].
    ///
    /// `digest`, if the CL hashed the payload while it arrived
    /// ([`crate::content::PayloadHasher`]), replaces hashing it again when
    /// it covers exactly the decoded payload of `bytes`; otherwise it is
    /// ignored.
    pub fn prechecked(
        from: Eid,
        bytes: Bytes,
        digest: Option<&crate::content::PayloadDigest>,
        limits: &DecodeLimits,
    ) -> Received {
        let pre = ingest::Prechecked::check(&bytes, digest, limits);
        Received {
            from,
            bytes,
            pre: Some(Box::new(pre)),
        }
    }

    /// For a [`Received::prechecked`] chunk bundle whose payload matched
    /// its content CID (spec/manifest.md §Chunks): the CID bytes and the
    /// payload. `None` otherwise (not prechecked, not a chunk, bad CID).
    /// The agent may still refuse the bundle (expired, quota); the bytes
    /// are right for that CID either way.
    pub fn verified_chunk(&self) -> Option<(&[u8], &Bytes)> {
        self.pre.as_deref()?.verified_chunk()
    }
}

/// A bundle in a contact summary's `from_you` list: the summary's sender
/// holds or delivered it, received from the summary's recipient
/// (spec/custody.md, "Lost custody signals").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromYou {
    /// The bundle.
    pub id: BundleId,
    /// The recipient's number for the transmission the copy came by (from
    /// its custody block); `None` for a delivered bundle, or one that came
    /// without a number. With a number, the recipient releases its copy
    /// only if that transmission is still unconfirmed.
    pub transmission: Option<u64>,
}

/// What a local client asks to send.
#[derive(Clone, Debug)]
pub enum Submission {
    /// A complete encoded bundle (e.g. made by `spore bundle create`).
    Encoded(Bytes),
    /// Data to wrap in a new bundle sourced at this node.
    Data {
        /// Destination EID.
        destination: Eid,
        /// Payload bytes.
        payload: Bytes,
        /// Lifetime; `None` uses [`AgentConfig::default_lifetime_ms`].
        lifetime_ms: Option<u64>,
        /// Extra RFC 9171 bundle processing flags (report requests).
        flags: u64,
        /// CID bytes of the payload for the content block (chunks, manifests):
        /// the caller computed it over `payload` (the node's chunkers do), so
        /// the agent does not hash the payload again. A wrong CID is not
        /// caught here; the next hop refuses the bundle (`cid_mismatch`).
        content_cid: Option<Vec<u8>>,
        /// Latest expiry, DTN ms: the lifetime is cut so that creation
        /// time + lifetime is no later (a submission already past it is
        /// refused). A manifest uses it to expire, and so to be sent,
        /// before its file's chunks (spec/manifest.md §Sending). `None`:
        /// no bound.
        expires_by_ms: Option<u64>,
    },
    /// The encoded result bundle of pending job `job` (spec/jobs.md §3):
    /// stored like [`Submission::Encoded`], and the job leaves the pending
    /// jobs in the same transaction.
    JobResult {
        /// The job bundle's ID.
        job: BundleId,
        /// The encoded result bundle.
        bundle: Bytes,
    },
}

/// Inputs of the agent. Every event is handled at a time `now` given by the driver.
#[derive(Clone, Debug)]
pub enum Event {
    /// A contact with `peer` started (QUIC connection up and authenticated).
    ContactUp {
        /// Peer node ID.
        peer: Eid,
        /// Peer address, for the peer table.
        addr: Option<String>,
        /// RTT measured by the CLA, µs.
        rtt_us: u64,
    },
    /// The contact with `peer` ended.
    ContactDown {
        /// Peer node ID.
        peer: Eid,
    },
    /// A new RTT sample for a peer in contact, µs.
    RttSample {
        /// Peer node ID.
        peer: Eid,
        /// Round-trip time, µs.
        rtt_us: u64,
    },
    /// The peer's list of bundles it already holds or delivered.
    PeerSummary {
        /// Peer node ID.
        peer: Eid,
        /// Bundle IDs it holds or delivered (do not send these to it).
        held: Vec<BundleId>,
        /// Those of `held` that it received from us: it has taken custody of
        /// them (our custody signal may have been lost).
        from_you: Vec<FromYou>,
        /// Its routing advertisement.
        advert: Advert,
    },
    /// A peer in contact sent a fresh routing advertisement.
    PeerAdvert {
        /// Peer node ID.
        peer: Eid,
        /// Its advertisement.
        advert: Advert,
    },
    /// Bundles that arrived together (they are committed together).
    Received(Vec<Received>),
    /// A local client's submission; answered by [`Action::Submitted`].
    Submit {
        /// Correlates the answer.
        ticket: u64,
        /// Bundles to create or accept, stored in one transaction.
        items: Vec<Submission>,
    },
    /// A transmission to `peer` failed before custody was signalled.
    TransmitFailed {
        /// Peer node ID.
        peer: Eid,
        /// Bundle.
        id: BundleId,
        /// Why, for the log.
        reason: String,
    },
    /// A custody signal arrived from a peer.
    CustodySignal {
        /// Peer node ID.
        from: Eid,
        /// The signal.
        signal: CustodySignal,
    },
    /// The driver wrote a reassembled file for manifest `manifest_cid`.
    FileWritten {
        /// Manifest CID bytes.
        manifest_cid: Vec<u8>,
        /// Final path.
        path: String,
    },
    /// The driver could not write the file of `manifest_cid` (an I/O or
    /// state error; refused content is reported as [`Event::FileWritten`]
    /// with a `(refused: …)` path). The agent asks again, with
    /// [`Action::AssembleFile`], [`ASSEMBLY_RETRY_MS`] later.
    AssemblyFailed {
        /// Manifest CID bytes.
        manifest_cid: Vec<u8>,
    },
    /// Periodic timer: expiry and custody timeouts.
    Tick,
    /// The link to `peer` is metered (or no longer is): bulk bundles
    /// (larger than [`AgentConfig::metered_bulk_bytes`]) wait for another
    /// link or for the flag to clear (spec/routing.md §7).
    Metered {
        /// Peer node ID.
        peer: Eid,
        /// Metered from now on.
        metered: bool,
    },
}

/// Outputs of the agent, for the driver to carry out.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send this encoded bundle to `peer` (one CL stream).
    Transmit {
        /// Peer node ID.
        peer: Eid,
        /// Bundle ID.
        id: BundleId,
        /// Encoded bundle, in pieces that share the payload.
        bytes: crate::bundle::codec::EncodedBundle,
    },
    /// Send our contact summary to `peer`.
    SendSummary {
        /// Peer node ID.
        peer: Eid,
        /// Bundles we hold or delivered.
        held: Vec<BundleId>,
        /// Those of `held` that we received from `peer`.
        from_you: Vec<FromYou>,
        /// Our routing advertisement.
        advert: Advert,
    },
    /// Send a fresh routing advertisement to `peer` (our contacts changed).
    SendAdvert {
        /// Peer node ID.
        peer: Eid,
        /// Our advertisement.
        advert: Advert,
    },
    /// Send a custody signal to `peer` (after the bundles are durable here).
    SendCustodySignal {
        /// Peer node ID.
        peer: Eid,
        /// Signal.
        signal: CustodySignal,
    },
    /// Answer to [`Event::Submit`]: durable IDs, or why nothing was stored.
    Submitted {
        /// Ticket of the submission.
        ticket: u64,
        /// The bundle IDs stored, in order, or the error.
        result: Result<Vec<BundleId>, String>,
    },
    /// All chunks of a file addressed to us are here: write it out, then
    /// report [`Event::FileWritten`].
    AssembleFile {
        /// Manifest CID bytes.
        manifest_cid: Vec<u8>,
        /// The manifest.
        manifest: Manifest,
    },
    /// A file addressed to us (plain or folder file, not a pack) has its
    /// manifest here and chunks still missing: the driver may start
    /// writing it as chunks arrive
    /// (spec/manifest.md §Progressive reassembly). Optional: the file is
    /// complete only at the [`Action::AssembleFile`] that follows when the
    /// last chunk is stored.
    ExpectFile {
        /// Manifest CID bytes.
        manifest_cid: Vec<u8>,
        /// The manifest.
        manifest: Manifest,
    },
    /// A (non-file) bundle was delivered to local service `service`.
    Deliver {
        /// Bundle ID.
        id: BundleId,
        /// Service (demux) it is for.
        service: String,
        /// Payload.
        payload: Bytes,
    },
}

/// Delay before a file whose write failed is written again, DTN ms.
pub const ASSEMBLY_RETRY_MS: u64 = 30_000;

/// Least time between two writes of peer estimates on ticks, DTN ms.
pub const PEER_FLUSH_MS: u64 = 10_000;

/// Meta key of the persisted PRoPHET table (CBOR, written with the peer
/// estimates).
pub const PROPHET_META_KEY: &str = "prophet-0";

/// Errors that stop the agent from handling an event. Bad input from peers
/// or clients is never an `AgentError`: it is refused, counted and logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The store failed; nothing of the event was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// State of one contact, in memory only.
#[derive(Debug, Default)]
struct ContactState {
    /// The peer's summary arrived; sending may start.
    summary_received: bool,
    /// Keys the peer says it holds.
    peer_holds: foldhash::HashSet<Vec<u8>>,
    /// Keys the peer refused during this contact (not offered again until
    /// the next contact).
    refused: foldhash::HashSet<Vec<u8>>,
    /// Keys the peer refused for lack of storage ("depleted storage"):
    /// offered again one custody timeout after the latest such refusal
    /// (DTN ms in `depleted_at_ms`), when the peer may have room again.
    depleted: foldhash::HashSet<Vec<u8>>,
    depleted_at_ms: u64,
    /// Keys whose custody (every copy) the peer took during this contact.
    /// Should such a bundle come back to us while the contact lasts (a
    /// routing loop through other nodes), it is not offered to the peer
    /// again before the next contact (spec/routing.md §1, rule 3).
    handed_over: foldhash::HashSet<Vec<u8>>,
}

/// The agent. One per node; owns the node's store.
pub struct Agent {
    store: Arc<Store>,
    cfg: AgentConfig,
    contacts: BTreeMap<Eid, ContactState>,
    in_flight: InFlightSet,
    router: Router,
    /// Peers whose estimate (and address, if `Some`) changed since their
    /// record was last written. Hashed: between commits it may name every peer met, and a
    /// look-up must not compare node IDs one by one.
    dirty_peers: foldhash::HashMap<Eid, Option<String>>,
    /// When peer estimates were last written by a tick, DTN ms.
    peers_flushed_ms: u64,
    next_seq: u64,
    /// Chunk CID → manifests (CIDs) addressed here still waiting for it.
    waiting: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    /// Manifest CID → how many of its distinct chunks are still missing
    /// (so each arrival costs O(1), not a check of the whole file).
    missing: BTreeMap<Vec<u8>, usize>,
    /// Payload bytes held for forwarding (persisted as meta `held_bytes`).
    held_bytes: u64,
    /// Something changed that may let more bundles go out.
    fill_needed: bool,
    /// Actions found at start-up (complete files to write), emitted at the first tick.
    startup: Vec<Action>,
    /// Manifests handed to the driver for writing, not yet reported back.
    assembling: HashSet<Vec<u8>>,
    /// Manifests whose write failed → when to ask again (DTN ms).
    assembly_retry: BTreeMap<Vec<u8>, u64>,
    /// Counter increments waiting for the next commit (one write per name
    /// per transaction, not per bundle).
    tally: BTreeMap<String, u64>,
    /// Per-peer (bundles sent, bundles received) waiting for the next commit.
    peer_tally: BTreeMap<Eid, (u64, u64)>,
    /// What held bundles use, by previous-hop peer (for the quota).
    usage: crate::limits::StoreUsage,
    /// Events that failed on a store error since start (in memory).
    store_errors: u64,
    /// Peers (node IDs) whose link is metered: bulk bundles wait.
    metered: std::collections::BTreeSet<Eid>,
    /// The peer table as last committed (only the agent writes it), so a
    /// commit updates a record without reading and decoding it first.
    peer_records: BTreeMap<Eid, crate::store::records::PeerRecord>,
    /// `next_seq` and `held_bytes` as last committed: a commit that did
    /// not change them does not write them again.
    meta_committed: (u64, u64),
    /// The number of our latest transmission (custody block; see
    /// [`Agent::next_transmission`]).
    last_transmission: u64,
    /// Bundles released here that reached their destination; listed in
    /// our summaries ([`known::KnownDelivered`]).
    known_delivered: known::KnownDelivered,
}

impl Agent {
    /// Creates the agent over an opened store. Reads only the small file
    /// table (pending reassemblies); bundles are found through indexes.
    ///
    /// # Errors
    /// [`AgentError::Store`] if the store cannot be read.
    pub fn new(store: Store, cfg: AgentConfig) -> Result<Agent, AgentError> {
        store.set_record_retention_ms(match cfg.record_retention_ms {
            0 => 0,
            ms => ms.max(cfg.delivered_grace_ms),
        });
        let next_seq = store.meta_u64("next_seq")?.unwrap_or(0);
        let held_bytes = store.meta_u64("held_bytes")?.unwrap_or(0);
        let mut router = Router::new(cfg.node_id.clone(), cfg.policy);
        if let Some(plan) = &cfg.contact_plan {
            router = router.with_plan(plan.clone());
        }
        if let Some(bytes) = store.meta_bytes(PROPHET_META_KEY)? {
            if let Err(e) = router.restore_prophet_table(&bytes) {
                tracing::warn!("{e}; starting with an empty PRoPHET table");
            }
        }
        let mut peer_records = BTreeMap::new();
        for p in store.peers()? {
            let Ok(eid) = p.node_id.parse::<Eid>() else {
                continue;
            };
            let est = p
                .estimate
                .clone()
                .unwrap_or_else(|| commit::legacy_estimate(&p));
            router.seed_peer(&eid, est);
            peer_records.insert(eid, p);
        }
        let mut agent = Agent {
            usage: quota::load_usage(&store)?,
            store: Arc::new(store),
            cfg,
            contacts: BTreeMap::new(),
            in_flight: InFlightSet::default(),
            last_transmission: 0,
            known_delivered: known::KnownDelivered::default(),
            router,
            dirty_peers: Default::default(),
            peers_flushed_ms: 0,
            next_seq,
            waiting: BTreeMap::new(),
            missing: BTreeMap::new(),
            held_bytes,
            fill_needed: false,
            startup: Vec::new(),
            assembling: HashSet::new(),
            assembly_retry: BTreeMap::new(),
            tally: BTreeMap::new(),
            peer_tally: BTreeMap::new(),
            store_errors: 0,
            metered: Default::default(),
            peer_records,
            meta_committed: (next_seq, held_bytes),
        };
        agent.load_waiting()?;
        agent.load_pending_jobs()?;
        Ok(agent)
    }

    /// This node's ID.
    pub fn node_id(&self) -> &Eid {
        &self.cfg.node_id
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// The store (read access for status views).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A shared handle on the store for readers on other threads (the
    /// driver reads chunk bytes to write files). Only the agent writes.
    pub fn store_handle(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Handles one event at time `now` and returns what to do.
    ///
    /// # Errors
    /// [`AgentError::Store`] if the store fails; in that case nothing
    /// of this event was acknowledged and the driver may retry or stop.
    pub fn handle(&mut self, now: DtnTime, ev: Event) -> Result<Vec<Action>, AgentError> {
        let mut out = Vec::new();
        match ev {
            Event::ContactUp { peer, addr, rtt_us } => {
                self.contact_up(now, peer, addr, rtt_us, &mut out)?
            }
            Event::ContactDown { peer } => self.contact_down(now, &peer, &mut out)?,
            Event::RttSample { peer, rtt_us } => self.router.rtt_sample(&peer, rtt_us),
            Event::PeerSummary {
                peer,
                held,
                from_you,
                advert,
            } => self.peer_summary(now, &peer, held, from_you, &advert, &mut out)?,
            Event::PeerAdvert { peer, advert } => self.peer_advert(now, &peer, &advert),
            Event::Received(items) => self.receive(now, items, &mut out)?,
            Event::Submit { ticket, items } => self.submit(now, ticket, items, &mut out)?,
            Event::TransmitFailed { peer, id, reason } => self.transmit_failed(&peer, &id, &reason),
            Event::CustodySignal { from, signal } => {
                self.custody_signal(now, &from, signal, &mut out)?
            }
            Event::FileWritten { manifest_cid, path } => {
                self.file_written(now, &manifest_cid, path)?
            }
            Event::AssemblyFailed { manifest_cid } => {
                self.assembling.remove(&manifest_cid);
                let due = now.0.saturating_add(ASSEMBLY_RETRY_MS);
                self.assembly_retry.insert(manifest_cid, due);
            }
            Event::Tick => self.tick(now, &mut out)?,
            Event::Metered { peer, metered } => {
                let peer = peer.node_id();
                if metered {
                    self.metered.insert(peer);
                } else if self.metered.remove(&peer) {
                    self.fill_needed = true;
                }
            }
        }
        self.fill_windows(now, &mut out)?;
        Ok(out)
    }

    /// The earliest time at which [`Event::Tick`] has work to do that
    /// changes what is held or sent (next expiry, custody timeout, file
    /// assembly retry, or a peer's refusals for lack of room forgotten
    /// after the custody timeout), if any.
    ///
    /// # Errors
    /// [`AgentError::Store`] if the expiry index cannot be read.
    pub fn next_wakeup(&self) -> Result<Option<DtnTime>, AgentError> {
        let timeout = self.cfg.custody_timeout_ms;
        let exp = self.store.next_expiry_ms()?;
        let custody = self.in_flight.oldest_ms().map(|t| t + timeout);
        let retry = self.assembly_retry.values().min().copied();
        let depleted = self
            .contacts
            .values()
            .filter(|c| !c.depleted.is_empty())
            .map(|c| c.depleted_at_ms.saturating_add(timeout))
            .min();
        Ok([exp, custody, retry, depleted]
            .into_iter()
            .flatten()
            .min()
            .map(DtnTime))
    }

    /// When the node should next send [`Event::Tick`] (DTN time, ms):
    /// [`Agent::next_wakeup`] and the housekeeping a tick also does
    /// (start-up actions, peer estimates written every [`PEER_FLUSH_MS`],
    /// delivered IDs and finished records forgotten, blob compaction).
    /// `None`: nothing is pending, and a node need not wake until the next
    /// event. The simulator schedules ticks from `next_wakeup` only.
    ///
    /// # Errors
    /// [`AgentError::Store`] if the expiry index cannot be read.
    pub fn next_tick(&self) -> Result<Option<DtnTime>, AgentError> {
        let peers_dirty = !self.dirty_peers.is_empty() || !self.peer_tally.is_empty();
        let due = [
            self.next_wakeup()?.map(|t| t.0),
            (!self.startup.is_empty()).then_some(0),
            peers_dirty.then(|| self.peers_flushed_ms.saturating_add(PEER_FLUSH_MS)),
            self.store.next_forget_ms(),
            self.store.next_compaction_ms(),
        ];
        Ok(due.into_iter().flatten().min().map(DtnTime))
    }

    /// The router: policy, per-peer estimates, advertisements.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Peers currently in contact.
    pub fn contacts(&self) -> impl Iterator<Item = &Eid> {
        self.contacts.keys()
    }

    /// Adds one to counter `name` at the next commit.
    fn count(&mut self, name: impl Into<String>) {
        *self.tally.entry(name.into()).or_default() += 1;
    }

    fn next_timestamp(&mut self, now: DtnTime) -> crate::bundle::CreationTimestamp {
        let seq = self.next_seq;
        self.next_seq += 1;
        crate::bundle::CreationTimestamp {
            time: now,
            sequence: seq,
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_assembly;
#[cfg(test)]
mod tests_commit;
#[cfg(test)]
mod tests_content;
#[cfg(test)]
mod tests_loops;
#[cfg(test)]
mod tests_policies;
#[cfg(test)]
mod tests_retention;
