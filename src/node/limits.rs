//! Applies the per-peer rate limits to incoming bundle streams: waits
//! (stops reading the peer) while it is over its rate, disconnects it when
//! it keeps flooding, and refuses its contacts during the back-off.
//!
//! Counters (in `spore status`, reset when the node restarts):
//! `throttled` (times a peer's reads were held back), `throttled_us` (total
//! hold-back), `disconnected_flooding`, `refused_flooding_backoff`
//! (contacts refused during a back-off), `refused_stream_nesting`.

use crate::bundle::Eid;
use crate::limits::{Backoff, FloodWindow, RateLimiter, Throttle};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most peers whose limiters are kept; beyond it idle ones are dropped.
const MAX_TRACKED_PEERS: usize = 4096;

/// The peer went over its flood threshold.
#[derive(Debug, thiserror::Error)]
#[error(
    "peer {peer} is flooding (held back {waited:?} within the window); backing off {backoff:?}"
)]
pub(crate) struct Flooding {
    pub peer: Eid,
    pub waited: Duration,
    pub backoff: Duration,
}

struct PeerRate {
    limiter: RateLimiter,
    window: Mutex<FloodWindow>,
}

/// Per-peer limiters, flood windows and back-offs, keyed by node ID.
pub(crate) struct PeerGuards {
    throttle: Throttle,
    /// Deepest CBOR nesting of an incoming bundle.
    pub max_cbor_nesting: usize,
    rates: Mutex<HashMap<Eid, Arc<PeerRate>>>,
    backoffs: Mutex<HashMap<Eid, Backoff>>,
    counters: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only follows a panic elsewhere; the maps stay consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PeerGuards {
    pub fn new(limits: &crate::limits::LimitsConfig) -> Self {
        PeerGuards {
            throttle: limits.throttle(),
            max_cbor_nesting: limits.max_cbor_nesting,
            rates: Mutex::default(),
            backoffs: Mutex::default(),
            counters: Mutex::default(),
        }
    }

    /// Adds `n` to counter `name`.
    pub fn count(&self, name: &str, n: u64) {
        *lock(&self.counters).entry(name.to_owned()).or_default() += n;
    }

    /// The counters, for `spore status`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        lock(&self.counters).clone()
    }

    fn rate(&self, peer: &Eid) -> Arc<PeerRate> {
        let mut m = lock(&self.rates);
        if m.len() >= MAX_TRACKED_PEERS && !m.contains_key(peer) {
            m.retain(|_, r| Arc::strong_count(r) > 1);
        }
        m.entry(peer.clone())
            .or_insert_with(|| {
                Arc::new(PeerRate {
                    limiter: RateLimiter::new(&self.throttle),
                    window: Mutex::default(),
                })
            })
            .clone()
    }

    /// How long contacts from `peer` are still refused, if it is backing off.
    pub fn backoff_remaining(&self, peer: &Eid) -> Option<Duration> {
        lock(&self.backoffs)
            .get(peer)
            .and_then(|b| b.remaining(Instant::now()))
    }

    /// Waits until `peer` may send one more bundle.
    ///
    /// # Errors
    /// [`Flooding`] when the peer passed its flood threshold (it is now
    /// backing off; the caller closes the contact). Cancel safe.
    pub async fn pace_bundle(&self, peer: &Eid) -> Result<(), Flooding> {
        let r = self.rate(peer);
        self.pace(peer, &r, true, |l| l.bundle()).await
    }

    /// Waits until `peer` may pass `n` more bytes. Byte pacing only slows
    /// a peer down (a large transfer is not an attack); only bundle-rate
    /// hold-back counts toward flooding.
    ///
    /// # Errors
    /// None in practice; the signature matches [`Self::pace_bundle`].
    pub async fn pace_bytes(&self, peer: &Eid, n: usize) -> Result<(), Flooding> {
        let r = self.rate(peer);
        self.pace(peer, &r, false, |l| l.bytes(n)).await
    }

    async fn pace(
        &self,
        peer: &Eid,
        r: &PeerRate,
        counts_as_flood: bool,
        take: impl Fn(&RateLimiter) -> Duration,
    ) -> Result<(), Flooding> {
        // A refused cell takes nothing from the budget: ask again after the wait.
        let mut first = true;
        loop {
            let wait = take(&r.limiter);
            if wait.is_zero() {
                return Ok(());
            }
            if first {
                self.count("throttled", 1);
                first = false;
            }
            self.count("throttled_us", wait.as_micros() as u64);
            let flooding =
                counts_as_flood && lock(&r.window).add(Instant::now(), wait, &self.throttle);
            if flooding {
                let waited = lock(&r.window).waited();
                *lock(&r.window) = FloodWindow::default();
                return Err(self.flooded(peer, waited));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Starts (or extends) the peer's back-off; counted once per back-off.
    fn flooded(&self, peer: &Eid, waited: Duration) -> Flooding {
        let now = Instant::now();
        let mut b = lock(&self.backoffs);
        if b.len() >= MAX_TRACKED_PEERS && !b.contains_key(peer) {
            b.retain(|_, x| x.remaining(now).is_some());
        }
        let e = b.entry(peer.clone()).or_default();
        let backoff = match e.remaining(now) {
            Some(left) => left,
            None => {
                self.count("disconnected_flooding", 1);
                e.strike(now, &self.throttle)
            }
        };
        Flooding {
            peer: peer.clone(),
            waited,
            backoff,
        }
    }
}
