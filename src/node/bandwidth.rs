//! Per-peer bandwidth caps (`spore peers limit`): a token bucket per peer
//! node ID, applied by the driver before each bundle transmission, and
//! persisted in `DATA_DIR/bandwidth.json` (`{"dtn://b/": bytes_per_s}`).
//!
//! The cap delays transmissions; it does not drop them. Keep it above
//! (agent window × bundle size) / custody timeout, or bundles waiting for
//! their turn are offered again after the custody timeout (duplicates are
//! answered "duplicate" by the peer, so nothing is lost, but bytes are).

use crate::bundle::Eid;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// File name of the persisted caps in the data directory.
pub const BANDWIDTH_FILE: &str = "bandwidth.json";

/// A token bucket over bytes: `rate` bytes/s, bursts up to `burst` bytes.
/// A reservation larger than the tokens left is granted with a delay (the
/// bucket goes negative), so bundles larger than the burst still pass.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate_bytes_per_s` with a burst of one second.
    pub(crate) fn new(rate_bytes_per_s: u64, now: Instant) -> TokenBucket {
        let rate = rate_bytes_per_s.max(1) as f64;
        TokenBucket {
            rate,
            burst: rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes `n` bytes at `now`; returns how long to wait before sending.
    pub(crate) fn reserve(&mut self, now: Instant, n: u64) -> Duration {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The caps of a running node.
pub(crate) struct Bandwidth {
    file: PathBuf,
    buckets: Mutex<HashMap<String, (u64, TokenBucket)>>,
}

impl Bandwidth {
    /// Loads `dir/bandwidth.json` (missing: no caps; unreadable: logged, no caps).
    pub(crate) fn load(dir: &Path) -> Bandwidth {
        let file = dir.join(BANDWIDTH_FILE);
        let caps: BTreeMap<String, u64> = std::fs::read(&file)
            .ok()
            .and_then(|b| match serde_json::from_slice(&b) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring unreadable caps");
                    None
                }
            })
            .unwrap_or_default();
        let now = Instant::now();
        let buckets = caps
            .into_iter()
            .map(|(k, r)| (k, (r, TokenBucket::new(r, now))))
            .collect();
        Bandwidth {
            file,
            buckets: Mutex::new(buckets),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, TokenBucket)>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long to wait before sending `n` bytes to `peer` (zero if uncapped).
    pub(crate) fn delay(&self, peer: &Eid, n: usize) -> Duration {
        match self.lock().get_mut(&peer.node_id().to_string()) {
            Some((_, b)) => b.reserve(Instant::now(), n as u64),
            None => Duration::ZERO,
        }
    }

    /// Sets (or with 0 removes) the cap of `peer` and saves the file;
    /// returns every cap.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub(crate) fn set(
        &self,
        peer: &Eid,
        bytes_per_s: u64,
    ) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut m = self.lock();
        let key = peer.node_id().to_string();
        if bytes_per_s == 0 {
            m.remove(&key);
        } else {
            m.insert(
                key,
                (bytes_per_s, TokenBucket::new(bytes_per_s, Instant::now())),
            );
        }
        let caps = Self::caps_of(&m);
        super::write_atomically(&self.file, &serde_json::to_vec_pretty(&caps)?)?;
        Ok(caps)
    }

    /// Every cap, bytes/s by peer node ID.
    pub(crate) fn caps(&self) -> BTreeMap<String, u64> {
        Self::caps_of(&self.lock())
    }

    fn caps_of(m: &HashMap<String, (u64, TokenBucket)>) -> BTreeMap<String, u64> {
        m.iter().map(|(k, (r, _))| (k.clone(), *r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spaces_sends_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        assert_eq!(b.reserve(t0, 1000), Duration::ZERO, "one second of burst");
        assert_eq!(b.reserve(t0, 500), Duration::from_millis(500));
        // 2 s later: refilled by 2000, capped at the burst of 1000.
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(b.reserve(t2, 1000), Duration::ZERO);
        assert_eq!(
            b.reserve(t2, 3000),
            Duration::from_secs(3),
            "larger than the burst"
        );
    }
}
