//! Real-time jobs (spec/jobs.md §7): carried on the live contact's control
//! stream as [`ControlMessage::JobRequest`] / [`ControlMessage::JobReply`]
//! (with [`ControlMessage::JobPart`]s between them when the output streams,
//! §7.1, see `job_parts.rs`), only to peers chosen by
//! [`crate::jobs::select::realtime_order`]; retried once on the next
//! eligible peer if the chosen one fails before any output was passed on.

use super::job_parts::StreamEvent;
use super::proto::{ControlMessage, MAX_JOB_PART_BYTES};
use super::{Command, Shared, dtn_now};
use crate::bundle::{BundleId, CreationTimestamp, Eid};
use crate::cla::quic::Contact;
use crate::jobs::select::{Candidate, NoRealtimePeer, realtime_order};
use crate::jobs::{JobErrorKind, JobRequest, JobResult};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// Longest wait for a real-time part or reply before the peer counts as
/// failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest encoded real-time request or reply (fits a control frame).
pub(crate) const MAX_REALTIME_BYTES: usize = 3 << 20;
/// Peers tried per real-time job (the chosen one and one retry).
const ATTEMPTS: usize = 2;

/// What a contact's control reader hands to a waiting requester.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A `JobPart`: a piece of output (spec/jobs.md §7.1).
    Part { seq: u64, bytes: Vec<u8> },
    /// The `JobReply`: an encoded `JobResult`.
    Reply(Vec<u8>),
}

/// Messages queued per waiting real-time job before the control reader
/// waits for the job's reader (back-pressure).
const WAITER_QUEUE: usize = 8;
/// Longest the control reader waits for a job's reader to take a message;
/// past it the job's output is dropped and the job fails at the requester
/// ("stalled"), so one slow reader cannot hold the control stream.
const READER_STALL: Duration = Duration::from_secs(10);

/// Real-time requests waiting for their parts and reply, by request ID.
#[derive(Default)]
pub(crate) struct Waiters {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::Sender<Incoming>>>,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<Incoming>>> {
        // Poisoning only follows a panic elsewhere; the map stays usable.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh request ID and the channel its parts and reply come on.
    fn register(&self) -> (u64, mpsc::Receiver<Incoming>) {
        let rid = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(WAITER_QUEUE);
        self.lock().insert(rid, tx);
        (rid, rx)
    }

    /// Hands a reply to its waiter (unknown IDs are ignored).
    ///
    /// Cancel safety: the reply is lost if cancelled.
    pub async fn complete(&self, rid: u64, result: Vec<u8>) {
        let tx = self.lock().remove(&rid);
        if let Some(tx) = tx {
            let _ = tx.send_timeout(Incoming::Reply(result), READER_STALL).await;
        }
    }

    /// Hands an output part to its waiter (unknown IDs are ignored), waiting
    /// at most [`READER_STALL`] for room; a waiter that is gone or too slow
    /// is dropped.
    ///
    /// Cancel safety: the part is lost if cancelled.
    pub async fn part(&self, rid: u64, seq: u64, bytes: Vec<u8>) {
        let tx = self.lock().get(&rid).cloned();
        let Some(tx) = tx else { return };
        let part = Incoming::Part { seq, bytes };
        if tx.send_timeout(part, READER_STALL).await.is_err() {
            warn!(
                rid,
                "real-time job reader gone or stalled; its output is dropped"
            );
            self.lock().remove(&rid);
        }
    }
}

/// Peers tracked by a [`PeerLimit`] before idle ones are dropped.
const MAX_LIMITED_PEERS: usize = 4096;

/// Per-peer rate limit on incoming real-time jobs (`governor`, keyed by
/// node ID; one entry per peer that ever sent a request).
pub(crate) struct PeerLimit {
    limiter: governor::DefaultKeyedRateLimiter<String>,
    rate: u32,
    burst: u32,
    /// What is limited, for the refusal reason (`real-time`, `batch`).
    what: &'static str,
}

impl PeerLimit {
    /// `rate` real-time jobs per second with bursts of `burst` per peer
    /// (0 counts as 1).
    pub fn new(rate: u32, burst: u32) -> PeerLimit {
        PeerLimit::named("real-time", rate, burst)
    }

    /// As [`PeerLimit::new`], naming the kind of job in refusals.
    pub fn named(what: &'static str, rate: u32, burst: u32) -> PeerLimit {
        let one = std::num::NonZeroU32::MIN;
        let r = std::num::NonZeroU32::new(rate).unwrap_or(one);
        let b = std::num::NonZeroU32::new(burst).unwrap_or(one);
        let quota = governor::Quota::per_second(r).allow_burst(b);
        PeerLimit {
            limiter: governor::RateLimiter::keyed(quota),
            rate: r.get(),
            burst: b.get(),
            what,
        }
    }

    /// Ok if `peer` may send one more job now, else the reason.
    pub fn check(&self, peer: &Eid) -> Result<(), String> {
        if self.limiter.len() > MAX_LIMITED_PEERS {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&peer.to_string()).map_err(|_| {
            format!(
                "rate limit: more than {} {} jobs/s (burst {}) from {peer}",
                self.rate, self.what, self.burst
            )
        })
    }
}

/// A real-time job's outcome at the requester.
#[derive(Debug)]
pub(crate) struct Done {
    pub result: JobResult,
    pub round_trip_ms: u64,
    /// Peers tried before the one that answered, with why they failed.
    pub failed: Vec<(Eid, String)>,
}

/// Why a real-time job could not be run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RealtimeError {
    /// No eligible peer (each candidate and why).
    #[error(transparent)]
    NoPeer(#[from] NoRealtimePeer),
    /// The eligible peers tried all failed.
    #[error("real-time job failed on every peer tried: {0}")]
    AllFailed(String),
    /// The peer failed after part of its output was passed on; not retried.
    #[error("real-time job failed on {peer} after {passed_bytes} bytes of output: {why}")]
    Broken {
        /// The peer that ran it.
        peer: Eid,
        /// Output bytes passed on before the failure.
        passed_bytes: u64,
        /// Why it failed.
        why: String,
    },
    /// The node is stopping.
    #[error("node is stopping")]
    Stopping,
}

/// The candidates for `service`: every peer that advertised capabilities.
async fn candidates(shared: &Shared, service: &str) -> Result<Vec<Candidate>, RealtimeError> {
    let (tx, rx) = oneshot::channel();
    shared
        .cmd
        .send(Command::Peers { reply: tx })
        .await
        .map_err(|_| RealtimeError::Stopping)?;
    let views = rx
        .await
        .map_err(|_| RealtimeError::Stopping)?
        .unwrap_or_default();
    let caps = shared.jobs.peer_caps.all();
    Ok(caps
        .into_iter()
        .map(|(node, c)| {
            let view = views.iter().find(|v| v.node_id == node.to_string());
            let contact = shared.contacts.get(&node);
            // In contact: the live connection's smoothed RTT (quinn, RFC
            // 9002 §5.3; it also feeds the routing estimate), always fresh.
            let srtt_ms = contact
                .as_ref()
                .map(|c| c.rtt().as_secs_f64() * 1000.0)
                .or_else(|| view.and_then(|v| v.srtt_ms));
            Candidate {
                in_contact: contact.is_some(),
                srtt_ms,
                expected_wait_ms: view.and_then(|v| v.expected_wait_s).map(|s| s * 1000.0),
                advert: c.service(service).cloned(),
                node,
            }
        })
        .collect())
}

/// The candidates for a batch job for `service` (same sources as real time).
pub(crate) async fn batch_candidates(
    shared: &Shared,
    service: &str,
) -> Result<Vec<Candidate>, RealtimeError> {
    candidates(shared, service).await
}

/// The peers eligible to run `req` now, best first (spec/jobs.md §7).
///
/// # Errors
/// [`RealtimeError::NoPeer`] naming each candidate and why it is excluded.
pub(crate) async fn eligible(shared: &Shared, req: &JobRequest) -> Result<Vec<Eid>, RealtimeError> {
    let cands = candidates(shared, &req.service).await?;
    let rtt_ms = shared.jobs.config().realtime_rtt_ms;
    Ok(realtime_order(&req.service, &cands, rtt_ms)?)
}

/// Runs `req` on the best eligible peer, retrying once on the next; the
/// whole output comes in the result.
///
/// # Errors
/// [`RealtimeError`]: no eligible peer (with reasons), all tried failed.
pub(crate) async fn run(shared: &Shared, req: &JobRequest) -> Result<Done, RealtimeError> {
    let order = eligible(shared, req).await?;
    attempts(shared, order, &req.encode(), None).await
}

/// Sends `payload` to the first peers of `order` in turn (at most
/// [`ATTEMPTS`]). With `parts`, output is passed there as it comes (and not
/// kept in the result); a peer that fails after a part was passed on is not
/// retried (its output cannot be taken back).
///
/// # Errors
/// [`RealtimeError::AllFailed`], or [`RealtimeError::Broken`] mid-output.
pub(crate) async fn attempts(
    shared: &Shared,
    order: Vec<Eid>,
    payload: &[u8],
    parts: Option<&mpsc::Sender<StreamEvent>>,
) -> Result<Done, RealtimeError> {
    let mut failed = Vec::new();
    for peer in order.into_iter().take(ATTEMPTS) {
        let start = Instant::now();
        let mut passed_bytes = 0;
        match ask(shared, &peer, payload, parts, &mut passed_bytes).await {
            Ok(result) => {
                let round_trip_ms = start.elapsed().as_millis() as u64;
                info!(peer = %peer, round_trip_ms, passed_bytes, "real-time job answered");
                return Ok(Done {
                    result,
                    round_trip_ms,
                    failed,
                });
            }
            Err(why) => {
                warn!(peer = %peer, error = %why, passed_bytes, "real-time job failed on this peer");
                if parts.is_some_and(|p| p.is_closed()) {
                    // Nobody reads the output any more: no retry.
                    return Err(RealtimeError::AllFailed(format!("{peer}: {why}")));
                }
                if passed_bytes > 0 {
                    return Err(RealtimeError::Broken {
                        peer,
                        passed_bytes,
                        why,
                    });
                }
                failed.push((peer, why));
            }
        }
    }
    let why: Vec<String> = failed.iter().map(|(p, e)| format!("{p}: {e}")).collect();
    Err(RealtimeError::AllFailed(why.join("; ")))
}

/// Sends one request to `peer` and waits for its parts and reply, or the
/// contact's end. Parts go to `parts` (counted in `passed_bytes`), else
/// into the result's output.
async fn ask(
    shared: &Shared,
    peer: &Eid,
    payload: &[u8],
    parts: Option<&mpsc::Sender<StreamEvent>>,
    passed_bytes: &mut u64,
) -> Result<JobResult, String> {
    let c = shared.contacts.get(peer).ok_or("no contact")?;
    let waiters = &shared.jobs.realtime;
    let (rid, mut rx) = waiters.register();
    let msg = ControlMessage::JobRequest {
        rid,
        request: payload.to_vec(),
        parts: parts.is_some(),
    };
    let r = async {
        c.send_control(&msg).await.map_err(|e| e.to_string())?;
        let mut got = PartsIn::default();
        loop {
            // Parts that arrived before the contact ended are taken first.
            let m = tokio::select! {
                biased;
                m = rx.recv() => m.ok_or("output dropped: this node's reader stalled")?,
                e = c.closed() => return Err(format!("contact lost: {e}")),
                _ = tokio::time::sleep(REPLY_TIMEOUT) => return Err("no reply in time".into()),
            };
            match m {
                Incoming::Part { seq, bytes } => {
                    got.take(seq, bytes, parts, passed_bytes).await?;
                }
                Incoming::Reply(b) => {
                    let mut r = JobResult::decode(&b).map_err(|e| e.to_string())?;
                    if !got.kept.is_empty() {
                        got.kept.extend_from_slice(&r.output);
                        r.output = got.kept;
                    }
                    return Ok(r);
                }
            }
        }
    }
    .await;
    waiters.lock().remove(&rid);
    r
}

/// Parts received so far for one request.
#[derive(Default)]
struct PartsIn {
    next_seq: u64,
    total_bytes: usize,
    /// Parts kept when there is nowhere to pass them.
    kept: Vec<u8>,
}

impl PartsIn {
    /// Checks order and the total size, then passes the part on or keeps it.
    async fn take(
        &mut self,
        seq: u64,
        bytes: Vec<u8>,
        parts: Option<&mpsc::Sender<StreamEvent>>,
        passed_bytes: &mut u64,
    ) -> Result<(), String> {
        if seq != self.next_seq {
            return Err(format!(
                "output part {seq} out of order (expected {})",
                self.next_seq
            ));
        }
        self.next_seq += 1;
        self.total_bytes += bytes.len();
        if bytes.len() > MAX_JOB_PART_BYTES || self.total_bytes > MAX_REALTIME_BYTES {
            return Err(format!(
                "output over {MAX_REALTIME_BYTES} bytes for a real-time job"
            ));
        }
        let Some(tx) = parts else {
            self.kept.extend_from_slice(&bytes);
            return Ok(());
        };
        let n = bytes.len() as u64;
        tx.send(StreamEvent::Part(bytes.into()))
            .await
            .map_err(|_| "the output's reader is gone".to_owned())?;
        *passed_bytes += n;
        Ok(())
    }
}

/// Serves a real-time request from `peer` on contact `c`: runs it like a
/// batch job (same services and lanes, no custody) and replies. With
/// `parts`, output is sent as [`ControlMessage::JobPart`]s as it comes and
/// the reply carries no output.
pub(crate) fn serve(
    shared: &std::sync::Arc<Shared>,
    c: &Contact,
    peer: Eid,
    rid: u64,
    request: Vec<u8>,
    parts: bool,
) {
    let (shared, c) = (shared.clone(), c.clone());
    tokio::spawn(async move {
        // Not a bundle: the job's ID is the requester's node ID, now, and
        // the request ID.
        let id = BundleId {
            source: peer,
            timestamp: CreationTimestamp {
                time: dtn_now(),
                sequence: rid,
            },
            fragment_offset: None,
        };
        let err = |kind, why: &str| JobResult::error(&id, &shared.node_id, kind, why);
        let limited = shared.jobs.realtime_limit.check(&id.source);
        let mut result = if let Err(why) = limited {
            err(JobErrorKind::RefusedBusy, &why)
        } else if request.len() > MAX_REALTIME_BYTES {
            err(JobErrorKind::OverLimits, "request too large")
        } else if parts {
            let (sink, sent) = super::job_parts::forward_parts(c.clone(), rid);
            let (_, r) = super::job_runner::execute_with(&shared, &id, &request, Some(sink)).await;
            super::job_parts::after_parts(r, sent.await, |k, d| err(k, d))
        } else {
            super::job_runner::execute(&shared, &id, &request).await.1
        };
        let mut bytes = result.encode();
        if bytes.len() > MAX_REALTIME_BYTES {
            let d = format!("output over {MAX_REALTIME_BYTES} bytes for a real-time reply");
            result = err(JobErrorKind::OverLimits, &d);
            bytes = result.encode();
        }
        let msg = ControlMessage::JobReply { rid, result: bytes };
        if let Err(e) = c.send_control(&msg).await {
            warn!(error = %e, "cannot send a real-time reply");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_its_own_burst_then_a_reason() {
        let l = PeerLimit::new(1, 2);
        let p: Eid = "dtn://p/".parse().expect("EID");
        let q: Eid = "dtn://q/".parse().expect("EID");
        assert!(l.check(&p).is_ok() && l.check(&p).is_ok());
        let why = l.check(&p).expect_err("over the burst");
        assert_eq!(
            why,
            "rate limit: more than 1 real-time jobs/s (burst 2) from dtn://p/"
        );
        assert!(l.check(&q).is_ok(), "another peer is not limited by p");
    }
}
