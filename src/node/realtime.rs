//! Real-time jobs (spec/jobs.md §7): carried on the live contact's control
//! stream as [`ControlMessage::JobRequest`] / [`ControlMessage::JobReply`],
//! only to peers chosen by [`crate::jobs::select::realtime_order`]; retried
//! once on the next eligible peer if the chosen one fails.

use super::proto::ControlMessage;
use super::{Command, Shared, dtn_now};
use crate::bundle::{BundleId, CreationTimestamp, Eid};
use crate::cla::quic::Contact;
use crate::jobs::select::{Candidate, NoRealtimePeer, realtime_order};
use crate::jobs::{JobErrorKind, JobRequest, JobResult};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// Longest wait for a real-time reply before the peer counts as failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest encoded real-time request or reply (fits a control frame).
pub(crate) const MAX_REALTIME_BYTES: usize = 3 << 20;
/// Peers tried per real-time job (the chosen one and one retry).
const ATTEMPTS: usize = 2;

/// Real-time requests waiting for their reply, by request ID.
#[derive(Default)]
pub(crate) struct Waiters {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Vec<u8>>>> {
        // Poisoning only follows a panic elsewhere; the map stays usable.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a reply to its waiter (unknown IDs are ignored).
    pub fn complete(&self, rid: u64, result: Vec<u8>) {
        if let Some(tx) = self.lock().remove(&rid) {
            let _ = tx.send(result);
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

/// Runs `req` on the best eligible peer, retrying once on the next.
///
/// # Errors
/// [`RealtimeError`]: no eligible peer (with reasons), all tried failed.
pub(crate) async fn run(shared: &Shared, req: &JobRequest) -> Result<Done, RealtimeError> {
    let cands = candidates(shared, &req.service).await?;
    let order = realtime_order(&req.service, &cands, shared.jobs.config().realtime_rtt_ms)?;
    let payload = req.encode();
    let mut failed = Vec::new();
    for peer in order.into_iter().take(ATTEMPTS) {
        let start = Instant::now();
        match ask(shared, &peer, &payload).await {
            Ok(result) => {
                let round_trip_ms = start.elapsed().as_millis() as u64;
                info!(peer = %peer, round_trip_ms, "real-time job answered");
                return Ok(Done {
                    result,
                    round_trip_ms,
                    failed,
                });
            }
            Err(e) => {
                warn!(peer = %peer, error = %e, "real-time job failed on this peer");
                failed.push((peer, e));
            }
        }
    }
    let why: Vec<String> = failed.iter().map(|(p, e)| format!("{p}: {e}")).collect();
    Err(RealtimeError::AllFailed(why.join("; ")))
}

/// Sends one request to `peer` and waits for its reply or the contact's end.
async fn ask(shared: &Shared, peer: &Eid, payload: &[u8]) -> Result<JobResult, String> {
    let c = shared.contacts.get(peer).ok_or("no contact")?;
    let waiters = &shared.jobs.realtime;
    let rid = waiters.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    waiters.lock().insert(rid, tx);
    let msg = ControlMessage::JobRequest {
        rid,
        request: payload.to_vec(),
    };
    let r = async {
        c.send_control(&msg).await.map_err(|e| e.to_string())?;
        tokio::select! {
            r = rx => r.map_err(|_| "request dropped".to_owned()),
            e = c.closed() => Err(format!("contact lost: {e}")),
            _ = tokio::time::sleep(REPLY_TIMEOUT) => Err("no reply in time".to_owned()),
        }
    }
    .await;
    waiters.lock().remove(&rid);
    JobResult::decode(&r?).map_err(|e| e.to_string())
}

/// Serves a real-time request from `peer` on contact `c`: runs it like a
/// batch job (same services and lanes, no custody) and replies.
pub(crate) fn serve(
    shared: &std::sync::Arc<Shared>,
    c: &Contact,
    peer: Eid,
    rid: u64,
    request: Vec<u8>,
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
        let limited = shared.jobs.realtime_limit.check(&id.source);
        let (_, mut result) = if let Err(why) = limited {
            let r = JobResult::error(&id, &shared.node_id, JobErrorKind::RefusedBusy, &why);
            (id.source.clone(), r)
        } else if request.len() > MAX_REALTIME_BYTES {
            let r = JobResult::error(
                &id,
                &shared.node_id,
                JobErrorKind::OverLimits,
                "request too large",
            );
            (id.source.clone(), r)
        } else {
            super::job_runner::execute(&shared, &id, &request).await
        };
        let mut bytes = result.encode();
        if bytes.len() > MAX_REALTIME_BYTES {
            let d = format!("output over {MAX_REALTIME_BYTES} bytes for a real-time reply");
            result = JobResult::error(&id, &shared.node_id, JobErrorKind::OverLimits, &d);
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
