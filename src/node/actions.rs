//! The agent thread and the carrying-out of the agent's actions.

use super::proto::ControlMessage;
use super::{Command, Shared, dtn_now};
use crate::agent::{Action, Agent, Event, Received};
use crate::bundle::BundleId;
use crate::bundle::admin::AdministrativeRecord;
use crate::content::{self, Manifest};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

/// Most received bundles merged into one group commit.
const MAX_GROUP: usize = 64;
/// Most received bytes merged into one group commit.
const MAX_GROUP_BYTES: usize = 32 << 20;

/// The answer to a submission: stored bundle IDs, or why nothing was stored.
pub(crate) type SubmitResult = Result<Vec<crate::bundle::BundleId>, String>;
type Waiting = HashMap<u64, oneshot::Sender<SubmitResult>>;

/// Submission tickets waiting for [`Action::Submitted`].
#[derive(Default)]
pub(crate) struct Tickets {
    next: AtomicU64,
    waiting: Mutex<Waiting>,
}

impl Tickets {
    /// A new ticket and the receiver of its answer.
    pub fn open(&self) -> (u64, oneshot::Receiver<SubmitResult>) {
        let t = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(t, tx);
        (t, rx)
    }

    fn close(&self, t: u64, r: SubmitResult) {
        if let Some(tx) = self.lock().remove(&t) {
            let _ = tx.send(r);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A poisoned map only means another thread panicked while inserting;
        // the map itself is still usable.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the agent thread tells the node's timers and watchers after each
/// command.
pub(crate) struct AgentSignals {
    /// When the agent next needs a tick.
    pub ticks: Arc<super::ticker::TickSchedule>,
    /// The store's write count, for the loops that watch the store.
    pub changes: Arc<super::changes::StoreChanges>,
}

/// The agent thread: takes commands in order, merges bundles that arrived
/// together into one event (group commit), and passes actions on.
pub(crate) fn agent_loop(
    mut agent: Agent,
    mut rx: mpsc::Receiver<Command>,
    tx: mpsc::UnboundedSender<Action>,
    signals: &AgentSignals,
) {
    let mut pending: Option<Command> = None;
    loop {
        let cmd = match pending.take() {
            Some(c) => c,
            None => match rx.blocking_recv() {
                Some(c) => c,
                None => return,
            },
        };
        let ev = match cmd {
            Command::Event(Event::Received(items)) => {
                Event::Received(group_received(items, &mut rx, &mut pending))
            }
            Command::Event(ev) => ev,
            Command::Status {
                filter,
                limit,
                reply,
            } => {
                let _ = reply.send(
                    agent
                        .status(filter.as_deref(), limit)
                        .map_err(|e| e.to_string()),
                );
                continue;
            }
            Command::Peers { reply } => {
                let _ = reply.send(agent.peer_views(dtn_now()).map_err(|e| e.to_string()));
                continue;
            }
            Command::Routes { limit, reply } => {
                let r = agent.route_views(dtn_now(), limit);
                let _ = reply.send(r.map_err(|e| e.to_string()));
                continue;
            }
            Command::Write(job) => {
                job(agent.store());
                signals.changes.publish(agent.store());
                continue;
            }
            Command::Shutdown => return,
        };
        match agent.handle(dtn_now(), ev) {
            Ok(actions) => {
                for a in actions {
                    if tx.send(a).is_err() {
                        return;
                    }
                }
            }
            // Nothing of the event was acknowledged; peers will resend.
            Err(e) => {
                error!(error = %e, "agent failed to handle an event (store error); refused, keeps running");
                agent.recover_from_store_error();
            }
        }
        signals.changes.publish(agent.store());
        // A store error: tick soon, the tick retries what is due.
        let next = agent.next_tick().unwrap_or(Some(crate::bundle::DtnTime(0)));
        signals.ticks.publish(next);
    }
}

/// `items` plus the received bundles queued behind them, up to
/// [`MAX_GROUP`] bundles or [`MAX_GROUP_BYTES`] (one group commit); the
/// first other command taken from the queue goes to `pending`.
fn group_received(
    mut items: Vec<crate::agent::Received>,
    rx: &mut mpsc::Receiver<Command>,
    pending: &mut Option<Command>,
) -> Vec<crate::agent::Received> {
    let mut bytes: usize = items.iter().map(|r| r.bytes.len()).sum();
    while items.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
        match rx.try_recv() {
            Ok(Command::Event(Event::Received(more))) => {
                bytes += more.iter().map(|r| r.bytes.len()).sum::<usize>();
                items.extend(more);
            }
            Ok(other) => {
                *pending = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    items
}

/// Carries out actions as they come.
pub(crate) async fn dispatch(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Action>) {
    while let Some(a) = rx.recv().await {
        match a {
            Action::Transmit { peer, id, bytes } => transmit(&shared, peer, id, bytes).await,
            Action::SendSummary {
                peer,
                held,
                from_you,
                advert,
            } => {
                let (from_you, from_you_transmissions) = super::proto::split_from_you(from_you);
                let msg = ControlMessage::Summary {
                    held,
                    from_you,
                    from_you_transmissions,
                    advert,
                };
                send_control(&shared, &peer, msg);
            }
            Action::SendAdvert { peer, advert } => {
                send_control(&shared, &peer, ControlMessage::Advert { advert });
            }
            Action::SendCustodySignal { peer, signal } => {
                let record = AdministrativeRecord::CustodySignal(signal).encode();
                send_control(&shared, &peer, ControlMessage::Custody { record });
            }
            Action::Submitted { ticket, result } => shared.submits.close(ticket, result),
            Action::AssembleFile {
                manifest_cid,
                manifest,
            } => {
                let s = shared.clone();
                tokio::task::spawn_blocking(move || assemble(&s, manifest_cid, &manifest));
            }
            Action::ExpectFile {
                manifest_cid,
                manifest,
            } => {
                // Here, not on a blocking task, so that the file is
                // expected before its `AssembleFile` is carried out;
                // `block_in_place` because making room may delete files.
                let start = || {
                    if let Some(dir) = super::sync::early_dir(&shared, &manifest_cid) {
                        shared.early.expect(&dir, manifest_cid, manifest);
                    }
                };
                if multi_thread() {
                    tokio::task::block_in_place(start);
                } else {
                    start();
                }
            }
            Action::Deliver {
                id,
                service,
                payload,
            } => deliver_payload(&shared, &id, &service, &payload),
        }
    }
}

/// Sends one bundle on the peer's contact in a task of its own (after the
/// wait its bandwidth cap asks for); a failure goes back to the agent as
/// `TransmitFailed`, as does a peer no longer in contact.
async fn transmit(
    shared: &Arc<Shared>,
    peer: crate::bundle::Eid,
    id: BundleId,
    bytes: crate::bundle::codec::EncodedBundle,
) {
    let Some(c) = shared.contacts.get(&peer) else {
        let ev = Event::TransmitFailed {
            peer,
            id,
            reason: "no contact".into(),
        };
        let _ = shared.cmd.send(Command::Event(ev)).await;
        return;
    };
    let cmd = shared.cmd.clone();
    let wait = shared.bandwidth.delay(&peer, bytes.len());
    tokio::spawn(async move {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await; // per-peer cap (bandwidth.rs)
        }
        if let Err(e) = c.send_bundle(bytes).await {
            let ev = Event::TransmitFailed {
                peer,
                id,
                reason: e.to_string(),
            };
            let _ = cmd.send(Command::Event(ev)).await;
        }
    });
}

/// A bundle delivered to a local service that is neither a file nor a
/// job: its payload is written to `<data-dir>/delivered/<service>-<id>`.
fn deliver_payload(shared: &Arc<Shared>, id: &BundleId, service: &str, payload: &Bytes) {
    if super::job_runner::take_delivery(shared, id, service, payload) {
        return;
    }
    let dir = shared.data_dir.join("delivered");
    let name = format!("{}-{}", sanitize(service), sanitize(&id.to_string()));
    let r = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|_| super::write_atomically(&dir.join(&name), payload));
    match r {
        Ok(()) => info!(bundle = %id, file = %name, "payload delivered"),
        Err(e) => {
            error!(bundle = %id, error = %e, "cannot write delivered payload (kept in the store until expiry)")
        }
    }
}

fn send_control(shared: &Arc<Shared>, peer: &crate::bundle::Eid, msg: ControlMessage) {
    if let Some(c) = shared.contacts.get(peer) {
        let peer = peer.clone();
        tokio::spawn(async move {
            if let Err(e) = c.send_control(&msg).await {
                warn!(peer = %peer, error = %e, "cannot send control message");
            }
        });
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes a complete file to the inbox (or finds it already written by an
/// earlier run that crashed before recording it) and tells the agent.
fn assemble(shared: &Arc<Shared>, manifest_cid: Vec<u8>, manifest: &Manifest) {
    if super::sync::assemble_folder(shared, &manifest_cid) {
        return;
    }
    // A partial file elsewhere (a folder file's, in its accept root) is
    // not this write's; it is dropped.
    let partial = shared
        .early
        .take(&manifest_cid)
        .filter(|p| p.dir() == shared.inbox);
    let chunk = |cid: &content::Cid| match shared.store.chunk(&cid.to_bytes()) {
        Ok(Some(d)) => Ok(bytes::Bytes::from(d)),
        Ok(None) => Err(format!("chunk {cid} missing from the store")),
        Err(e) => Err(e.to_string()),
    };
    let check = content::ChunkCheck::LengthOnly;
    let result = match (already_written(&shared.inbox, manifest), partial) {
        (Some(p), _) => Ok(p),
        // The partial file follows this very manifest (same CID).
        (None, Some(p)) => {
            let early = p.written_chunks();
            let r = p.finish(check, chunk).map_err(|e| e.to_string());
            if r.is_ok() {
                let chunks = manifest.chunks.len();
                info!(file = %manifest.name, early, chunks, "file written as its chunks arrived");
            }
            r
        }
        (None, None) => content::write_file_atomically(&shared.inbox, manifest, check, chunk)
            .map_err(|e| e.to_string()),
    };
    let ev = match result {
        Ok(path) => Event::FileWritten {
            manifest_cid,
            path: path.display().to_string(),
        },
        Err(e) => {
            error!(file = %manifest.name, error = %e, "cannot write received file; retried in 30 s");
            return assembly_failed(shared, &manifest_cid);
        }
    };
    let _ = shared.cmd.blocking_send(Command::Event(ev));
}

/// Tells the agent a file could not be written (I/O or state error): it
/// asks again [`crate::agent::ASSEMBLY_RETRY_MS`] later (blocking send).
pub(super) fn assembly_failed(shared: &Shared, manifest_cid: &[u8]) {
    let ev = Event::AssemblyFailed {
        manifest_cid: manifest_cid.to_vec(),
    };
    let _ = shared.cmd.blocking_send(Command::Event(ev));
}

/// An inbox file with the manifest's name (or a no-clobber variant) whose
/// content has exactly the manifest's chunks: a write that completed before
/// a crash. Bounded to 100 candidates.
fn already_written(dir: &Path, m: &Manifest) -> Option<PathBuf> {
    let (stem, ext) = match m.name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (m.name.clone(), String::new()),
    };
    let candidates =
        std::iter::once(m.name.clone()).chain((1..100).map(|i| format!("{stem} ({i}){ext}")));
    for name in candidates {
        let p = dir.join(&name);
        let Ok(meta) = std::fs::metadata(&p) else {
            return None;
        };
        if meta.len() == m.size && content::file_matches(&p, m) {
            return Some(p);
        }
    }
    None
}

/// Bundles smaller than this (bytes) are decoded and hashed on the receiving
/// task itself; larger ones with `block_in_place`.
const PRECHECK_INLINE_BYTES: usize = 64 * 1024;

/// Sends the events of received bundles to the agent thread.
pub(crate) async fn received(
    shared: &Shared,
    from: crate::bundle::Eid,
    bytes: bytes::Bytes,
    digest: Option<crate::content::PayloadDigest>,
) -> bool {
    // Decoding and hashing the payload here, beside the agent thread, keeps
    // the agent's single thread for the store. A payload the CL hashed as
    // it arrived (`digest`) is only decoded; any other large payload is
    // hashed with `block_in_place` (multi-threaded runtimes only) so that
    // the worker's other tasks move on meanwhile.
    let limits = &shared.decode_limits;
    let digest = digest.as_ref();
    let item = if digest.is_none() && multi_thread() && bytes.len() >= PRECHECK_INLINE_BYTES {
        tokio::task::block_in_place(|| Received::prechecked(from, bytes, None, limits))
    } else {
        Received::prechecked(from, bytes, digest, limits)
    };
    // A verified chunk of a file being written early goes to its writer
    // (early.rs; never blocks).
    if let Some((cid, data)) = item.verified_chunk() {
        shared.early.offer(cid, data);
    }
    let ev = Event::Received(vec![item]);
    shared.cmd.send(Command::Event(ev)).await.is_ok()
}

/// True on a multi-threaded tokio runtime (where `block_in_place` works).
fn multi_thread() -> bool {
    tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
}
