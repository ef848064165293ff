//! Contacts: accepting and dialing QUIC connections, one task set per contact,
//! and redialing static peers with exponential backoff plus jitter.

use super::proto::ControlMessage;
use super::{Command, Shared};
use crate::agent::Event;
use crate::bundle::Eid;
use crate::bundle::admin::AdministrativeRecord;
use crate::cla::quic::Contact;
use crate::limits::check_nesting;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::AbortHandle;
use tracing::{info, warn};

/// First redial delay.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest redial delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Default longest time one incoming bundle stream may take to arrive
/// (`NodeConfig::bundle_read_deadline`).
pub(crate) const BUNDLE_READ_DEADLINE: Duration = Duration::from_secs(120);
/// Most bundle streams of one contact read at once.
const MAX_PARALLEL_READS: usize = 32;
/// Most dial targets.
pub(crate) const MAX_DIAL_TARGETS: usize = 256;

struct Entry {
    contact: Contact,
    serial: u64,
    dialed_by_us: bool,
    /// When the contact was registered.
    since: std::time::Instant,
}

/// Two connections with one peer are "crossed dials" (both nodes dialing at
/// once) only if the older one is younger than this. An older connection
/// that the peer dials around means the peer lost it (it restarted), so
/// the new one wins instead of waiting out the old one's idle timeout.
const CROSSED_DIAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// Live contacts by peer node ID, and dial targets by address.
#[derive(Default)]
pub(crate) struct Contacts {
    live: Mutex<HashMap<Eid, Entry>>,
    dialers: Mutex<HashMap<SocketAddr, AbortHandle>>,
    serial: AtomicU64,
}

impl Contacts {
    /// The contact with `peer`, if up.
    pub fn get(&self, peer: &Eid) -> Option<Contact> {
        self.live().get(&peer.node_id()).map(|e| e.contact.clone())
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<Eid, Entry>> {
        // Poisoning only follows a panic elsewhere; the map stays consistent.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dialers(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, AbortHandle>> {
        self.dialers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every live contact.
    pub fn all(&self) -> Vec<Contact> {
        self.live().values().map(|e| e.contact.clone()).collect()
    }

    /// Peers in contact now and their remote addresses.
    pub fn live_peers(&self) -> Vec<(Eid, SocketAddr)> {
        self.live()
            .iter()
            .map(|(n, e)| (n.clone(), e.contact.remote_addr()))
            .collect()
    }

    /// Addresses being dialed.
    pub fn dial_targets(&self) -> Vec<SocketAddr> {
        self.dialers().keys().copied().collect()
    }

    /// Closes the contact whose remote address is `addr` or whose node ID is `node`.
    pub fn close_matching(&self, addr: Option<SocketAddr>, node: Option<&Eid>) {
        for e in self.live().values() {
            let by_addr = addr.is_some_and(|a| e.contact.remote_addr() == a);
            let by_node = node.is_some_and(|n| e.contact.peer_node_id() == n.node_id().to_string());
            if by_addr || by_node {
                e.contact.close("removed by operator");
            }
        }
    }

    /// Closes the contacts whose peer key is `key` (a key removed from the
    /// trust list).
    pub fn close_by_key(&self, key: &[u8; 32], reason: &str) {
        for e in self.live().values() {
            if e.contact.peer_key() == *key {
                e.contact.close(reason);
            }
        }
    }
}

/// Accepts incoming contacts until the endpoint closes.
pub(crate) async fn listen(shared: Arc<Shared>) {
    while let Some(r) = shared.cla.accept().await {
        match r {
            Ok(c) => {
                let s = shared.clone();
                tokio::spawn(async move { run_contact(s, c, false).await });
            }
            Err(e) => warn!(error = %e, "incoming contact failed"),
        }
    }
}

/// Starts a dialer for each address (and those saved in `dial.json`).
///
/// # Errors
/// If `dial.json` exists but cannot be read or parsed.
pub(crate) async fn start_dialers(
    shared: &Arc<Shared>,
    extra: &[SocketAddr],
) -> anyhow::Result<()> {
    let mut all = load_dial_file(shared)?;
    for a in extra {
        if !all.contains(a) {
            all.push(*a);
        }
    }
    for a in all {
        add_dialer(shared, a)?;
    }
    save_dial_file(shared)
}

/// Adds a dial target (no-op if present).
///
/// # Errors
/// When the dial-target limit is reached.
pub(crate) fn add_dialer(shared: &Arc<Shared>, addr: SocketAddr) -> anyhow::Result<()> {
    let mut d = shared.contacts.dialers();
    if d.contains_key(&addr) {
        return Ok(());
    }
    if d.len() >= MAX_DIAL_TARGETS {
        anyhow::bail!("too many dial targets (limit {MAX_DIAL_TARGETS})");
    }
    shared.discovery.unsuppress(addr);
    let s = shared.clone();
    let h = tokio::spawn(async move { dial_loop(s, addr).await });
    d.insert(addr, h.abort_handle());
    Ok(())
}

/// Removes a dial target and closes its contact; discovery stops dialing
/// the address too. Returns whether it was a dial target.
pub(crate) fn remove_dialer(shared: &Arc<Shared>, addr: SocketAddr) -> bool {
    let h = shared.contacts.dialers().remove(&addr);
    if let Some(h) = &h {
        h.abort();
    }
    shared.discovery.suppress(Some(addr), None);
    shared.contacts.close_matching(Some(addr), None);
    h.is_some()
}

fn dial_file(shared: &Shared) -> std::path::PathBuf {
    shared.data_dir.join("dial.json")
}

fn load_dial_file(shared: &Shared) -> anyhow::Result<Vec<SocketAddr>> {
    match std::fs::read(dial_file(shared)) {
        Ok(b) => Ok(serde_json::from_slice(&b)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Persists the dial targets.
///
/// # Errors
/// If the file cannot be written.
pub(crate) fn save_dial_file(shared: &Shared) -> anyhow::Result<()> {
    let mut v = shared.contacts.dial_targets();
    v.sort();
    super::write_atomically(&dial_file(shared), &serde_json::to_vec(&v)?)
}

async fn dial_loop(shared: Arc<Shared>, addr: SocketAddr) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match shared.cla.connect(addr).await {
            Ok(c) => {
                backoff = BACKOFF_MIN;
                // Its own task: removing the dial target (which aborts this
                // loop) must not cut the contact's bookkeeping short; the
                // contact is closed and ends through `run_contact`.
                let _ = tokio::spawn(run_contact(shared.clone(), c, true)).await;
            }
            Err(e) => {
                tracing::debug!(peer = %addr, error = %e, "dial failed");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        let jitter = rand::rng().random_range(0.8..1.2);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
    }
}

/// Runs one contact to its end: registers it (one contact per peer: when
/// both sides dial at once, the connection dialed by the smaller node ID
/// wins), feeds its bundles and control messages to the agent, and reports
/// contact up/down.
pub(crate) async fn run_contact(shared: Arc<Shared>, c: Contact, dialed_by_us: bool) {
    let Ok(peer) = c.peer_node_id().parse::<Eid>() else {
        c.close("node ID is not an EID");
        return;
    };
    let peer = peer.node_id();
    if let Some(left) = shared.guards.backoff_remaining(&peer) {
        shared.guards.count("refused_flooding_backoff", 1);
        warn!(peer = %peer, ?left, "refusing a contact: the peer is backing off after flooding");
        c.close("backing off after flooding");
        return;
    }
    // Private mode: an invited peer stays on probation until a valid Join.
    if !super::join::admit(&shared, &c).await {
        return;
    }
    let serial = shared.contacts.serial.fetch_add(1, Ordering::Relaxed);
    if !register(&shared, &peer, &c, serial, dialed_by_us) {
        c.close("duplicate contact");
        return;
    }
    let up = Event::ContactUp {
        peer: peer.clone(),
        addr: Some(c.remote_addr().to_string()),
        rtt_us: c.rtt().as_micros() as u64,
    };
    if shared.cmd.send(Command::Event(up)).await.is_err() {
        return;
    }
    super::caps::advertise(&shared, &c);
    super::pex::send_list(&shared, &peer, &c);
    super::asset_advert::send_advert(&shared, &peer, &c);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(bundles_in(shared.clone(), c.clone(), peer.clone()));
    tasks.spawn(control_in(shared.clone(), c.clone(), peer.clone()));
    tasks.spawn(rtt_samples(shared.clone(), c.clone(), peer.clone()));
    let reason = c.closed().await;
    tasks.abort_all();
    info!(peer = %peer, reason = %reason, "contact ended");
    let mine = {
        let mut live = shared.contacts.live();
        let mine = live.get(&peer).is_some_and(|e| e.serial == serial);
        if mine {
            live.remove(&peer);
        }
        mine
    };
    if mine {
        let _ = shared
            .cmd
            .send(Command::Event(Event::ContactDown { peer }))
            .await;
    }
}

fn register(shared: &Shared, peer: &Eid, c: &Contact, serial: u64, dialed_by_us: bool) -> bool {
    if *peer == shared.node_id {
        warn!("refusing a contact with ourselves");
        return false;
    }
    let mut live = shared.contacts.live();
    if let Some(old) = live.get(peer) {
        // Same direction, or an old contact: the newer connection replaces
        // a stale one (the peer restarted). Crossed dials (both young):
        // keep the one dialed by the node with the smaller node ID, so both
        // sides keep the same connection.
        let we_are_smaller = shared.node_id.to_string() < peer.to_string();
        let crossed = old.since.elapsed() < CROSSED_DIAL_WINDOW;
        let new_wins =
            !crossed || old.dialed_by_us == dialed_by_us || dialed_by_us == we_are_smaller;
        if !new_wins {
            return false;
        }
        old.contact.close("replaced by a simultaneous contact");
    }
    live.insert(
        peer.clone(),
        Entry {
            contact: c.clone(),
            serial,
            dialed_by_us,
            since: std::time::Instant::now(),
        },
    );
    true
}

/// Accepts bundle streams and reads them concurrently (at most
/// [`MAX_PARALLEL_READS`] at once), each under the peer's rate limits
/// (`crate::node::limits`): while the peer is over its bundle rate no new
/// stream is accepted, and a read bundle waits for the byte budget before
/// it goes on, so QUIC flow control pushes back on the peer. A flooding
/// peer is disconnected. Each read has a deadline so a peer that trickles a
/// stream cannot hold a slot forever.
async fn bundles_in(shared: Arc<Shared>, c: Contact, peer: Eid) {
    let mut reads = tokio::task::JoinSet::new();
    loop {
        while reads.len() >= MAX_PARALLEL_READS {
            reads.join_next().await;
        }
        if let Err(f) = shared.guards.pace_bundle(&peer).await {
            return flooded(&c, &f);
        }
        let incoming = loop {
            tokio::select! {
                r = c.accept_bundle_stream() => break r,
                Some(_) = reads.join_next(), if !reads.is_empty() => {}
            }
        };
        let stream = match incoming {
            Ok(s) => s,
            // The contact is gone: its end is handled by `run_contact`.
            Err(_) => return,
        };
        let (shared, peer, c) = (shared.clone(), peer.clone(), c.clone());
        reads.spawn(async move {
            let deadline = shared.bundle_read_deadline;
            match tokio::time::timeout(deadline, stream.read_hashed()).await {
                Ok(Ok((bytes, digest))) => {
                    if let Err(e) = check_nesting(&bytes, shared.guards.max_cbor_nesting) {
                        warn!(peer = %peer, error = %e, "refused a bundle stream");
                        count_stream_refusal(&shared, "nesting");
                        return;
                    }
                    if let Err(f) = shared.guards.pace_bytes(&peer, bytes.len()).await {
                        return flooded(&c, &f);
                    }
                    super::actions::received(&shared, peer, bytes, digest).await;
                }
                // One bad stream (over the size limit, reset by the peer):
                // refuse it and keep the contact.
                Ok(Err(e)) => {
                    warn!(peer = %peer, error = %e, "refused a bundle stream");
                    count_stream_refusal(&shared, e.kind());
                }
                Err(_) => {
                    warn!(peer = %peer, ?deadline, "bundle stream too slow; abandoned");
                    count_stream_refusal(&shared, "deadline");
                }
            }
        });
    }
}

/// Closes the contact of a flooding peer (its back-off has started).
fn flooded(c: &Contact, f: &super::limits::Flooding) {
    warn!(error = %f, "disconnecting a flooding peer");
    c.close("flooding");
}

/// Counts a bundle stream refused before decoding as `refused_stream_{kind}`.
fn count_stream_refusal(shared: &Shared, kind: &str) {
    let mut m = shared
        .stream_refusals
        .lock()
        // Poisoning only follows a panic elsewhere; the map stays consistent.
        .unwrap_or_else(|p| p.into_inner());
    *m.entry(format!("refused_stream_{kind}")).or_default() += 1;
}

async fn control_in(shared: Arc<Shared>, c: Contact, peer: Eid) {
    loop {
        let msg = match c.recv_control::<ControlMessage>().await {
            Ok(m) => m,
            Err(e) => {
                warn!(peer = %peer, error = %e, "control stream failed; closing contact");
                c.close("bad control message");
                return;
            }
        };
        match control_message(&shared, &c, &peer, msg).await {
            Next::Agent(ev) => {
                if shared.cmd.send(Command::Event(ev)).await.is_err() {
                    return;
                }
            }
            Next::Handled => {}
            Next::Close => return,
        }
    }
}

/// What [`control_in`] does after one control message.
enum Next {
    /// Hand this event to the agent.
    Agent(Event),
    /// Dealt with here.
    Handled,
    /// Stop reading the control stream.
    Close,
}

/// Turns one control message into an agent event, or handles it here
/// (capabilities, jobs, peer exchange, asset adverts, joins).
async fn control_message(
    shared: &Arc<Shared>,
    c: &Contact,
    peer: &Eid,
    msg: ControlMessage,
) -> Next {
    let ev = match msg {
        ControlMessage::Summary {
            held,
            from_you,
            from_you_transmissions,
            advert,
        } => Event::PeerSummary {
            peer: peer.clone(),
            held,
            from_you: super::proto::join_from_you(from_you, from_you_transmissions),
            advert,
        },
        ControlMessage::Advert { advert } => Event::PeerAdvert {
            peer: peer.clone(),
            advert,
        },
        ControlMessage::Capabilities { caps } => {
            shared.jobs.peer_caps.set(peer.clone(), caps);
            return Next::Handled;
        }
        ControlMessage::JobRequest {
            rid,
            request,
            parts,
        } => {
            super::realtime::serve(shared, c, peer.clone(), rid, request, parts);
            return Next::Handled;
        }
        ControlMessage::JobPart { rid, seq, bytes } => {
            shared.jobs.realtime.part(rid, seq, bytes).await;
            return Next::Handled;
        }
        ControlMessage::JobReply { rid, result } => {
            shared.jobs.realtime.complete(rid, result).await;
            return Next::Handled;
        }
        ControlMessage::Peers { peers } => {
            super::pex::receive(shared, peer, c.remote_addr(), &peers);
            return Next::Handled;
        }
        ControlMessage::Assets { entries } => {
            super::asset_advert::receive(shared, peer, entries).await;
            return Next::Handled;
        }
        ControlMessage::Custody { record } => match AdministrativeRecord::decode(&record) {
            Ok(AdministrativeRecord::CustodySignal(signal)) => Event::CustodySignal {
                from: peer.clone(),
                signal,
            },
            Ok(_) | Err(_) => {
                warn!(peer = %peer, "control message is not a custody signal; ignored");
                return Next::Handled;
            }
        },
        // A Join on an admitted contact (open mode, or already trusted).
        ControlMessage::Join { secret } => {
            return if super::join::join_on_contact(shared, c, &secret).await {
                Next::Handled
            } else {
                Next::Close
            };
        }
        ControlMessage::JoinAccepted => return Next::Handled,
    };
    Next::Agent(ev)
}

async fn rtt_samples(shared: Arc<Shared>, c: Contact, peer: Eid) {
    let mut iv = tokio::time::interval(Duration::from_secs(1));
    iv.tick().await;
    loop {
        iv.tick().await;
        let ev = Event::RttSample {
            peer: peer.clone(),
            rtt_us: c.rtt().as_micros() as u64,
        };
        if shared.cmd.send(Command::Event(ev)).await.is_err() {
            return;
        }
    }
}
