//! Store quota arithmetic: total bytes and bundles, the share one peer may
//! use, and the reserve kept for locally submitted bundles.
//!
//! A bundle of `size` bytes is admitted when, after storing it:
//! - local submissions: held bytes ≤ `quota_bytes` and held bundles ≤
//!   `quota_bundles`;
//! - bundles from a peer: held bytes ≤ `quota_bytes − reserve` and held
//!   bundles ≤ `quota_bundles − reserve` (reserve = `local_reserve_percent`
//!   of each), and that peer's held bytes ≤ `peer_share_percent` of
//!   `quota_bytes` and its held bundles ≤ `peer_share_percent` of
//!   `quota_bundles`.
//!
//! Nothing already held is ever deleted to make room: a refused bundle
//! stays with its sender (custody refused, "depleted storage").

use crate::bundle::Eid;
use std::collections::HashMap;

/// Quota settings besides the byte quota (`AgentConfig::quota_bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaShares {
    /// Most bundles held for forwarding.
    pub quota_bundles: u64,
    /// Most of each quota one peer's bundles may use, percent (0..=100).
    pub peer_share_percent: u8,
    /// Part of each quota kept for local submissions, percent (0..=100).
    pub local_reserve_percent: u8,
}

impl Default for QuotaShares {
    fn default() -> Self {
        QuotaShares {
            quota_bundles: 1_000_000,
            peer_share_percent: 50,
            local_reserve_percent: 10,
        }
    }
}

/// The whole quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreQuota {
    /// Most payload bytes held for forwarding.
    pub bytes: u64,
    /// Bundle count and shares.
    pub shares: QuotaShares,
}

/// Why a bundle does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    /// The byte quota (less the local reserve, for peers) is reached.
    #[error("store quota reached: {held} + {size} bytes > {limit}")]
    Bytes {
        /// Bytes held now.
        held: u64,
        /// The bundle's size, bytes.
        size: u64,
        /// The limit that applies to this sender, bytes.
        limit: u64,
    },
    /// The bundle-count quota (less the local reserve, for peers) is reached.
    #[error("store bundle quota reached: {held} bundles held, limit {limit}")]
    Bundles {
        /// Bundles held now.
        held: u64,
        /// The limit that applies to this sender.
        limit: u64,
    },
    /// The sending peer's share of the quota is used up.
    #[error("peer share of the store quota reached: {held} + {size} bytes or bundles > {limit}")]
    PeerShare {
        /// Bytes (or bundles) held from this peer now.
        held: u64,
        /// The bundle's size, bytes (1 for the bundle-count share).
        size: u64,
        /// The peer's share, bytes (or bundles).
        limit: u64,
    },
}

impl QuotaRefusal {
    /// Counter suffix: `quota`, `quota_bundles` or `quota_peer_share`
    /// (counted as `refused_<label>`).
    pub fn label(&self) -> &'static str {
        match self {
            QuotaRefusal::Bytes { .. } => "quota",
            QuotaRefusal::Bundles { .. } => "quota_bundles",
            QuotaRefusal::PeerShare { .. } => "quota_peer_share",
        }
    }
}

fn percent(of: u64, p: u8) -> u64 {
    (u128::from(of) * u128::from(p.min(100)) / 100) as u64
}

impl StoreQuota {
    /// Whether a bundle of `size` bytes fits, given `usage`; `from` is the
    /// peer it came from (`None`: submitted locally or created here).
    ///
    /// # Errors
    /// [`QuotaRefusal`]: which limit it would pass.
    pub fn admit(
        &self,
        usage: &StoreUsage,
        from: Option<&Eid>,
        size: u64,
    ) -> Result<(), QuotaRefusal> {
        let s = &self.shares;
        let (limit_bytes, limit_bundles) = match from {
            None => (self.bytes, s.quota_bundles),
            Some(_) => (
                self.bytes - percent(self.bytes, s.local_reserve_percent),
                s.quota_bundles - percent(s.quota_bundles, s.local_reserve_percent),
            ),
        };
        if usage.bytes.saturating_add(size) > limit_bytes {
            return Err(QuotaRefusal::Bytes {
                held: usage.bytes,
                size,
                limit: limit_bytes,
            });
        }
        if usage.bundles.saturating_add(1) > limit_bundles {
            return Err(QuotaRefusal::Bundles {
                held: usage.bundles,
                limit: limit_bundles,
            });
        }
        let Some(peer) = from else {
            return Ok(());
        };
        let (peer_bytes, peer_bundles) = usage.peer(peer);
        let share_bytes = percent(self.bytes, s.peer_share_percent);
        if peer_bytes.saturating_add(size) > share_bytes {
            return Err(QuotaRefusal::PeerShare {
                held: peer_bytes,
                size,
                limit: share_bytes,
            });
        }
        let share_bundles = percent(s.quota_bundles, s.peer_share_percent);
        if peer_bundles.saturating_add(1) > share_bundles {
            return Err(QuotaRefusal::PeerShare {
                held: peer_bundles,
                size: 1,
                limit: share_bundles,
            });
        }
        Ok(())
    }
}

/// What the held bundles use: totals and, per previous-hop peer, bytes and
/// bundles. In memory; rebuilt from the held records at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Payload bytes held (the same sum as `held_bytes`).
    pub bytes: u64,
    /// Bundles held.
    pub bundles: u64,
    by_peer: HashMap<Eid, (u64, u64)>,
}

impl StoreUsage {
    /// (bytes, bundles) held from `peer` (its node ID).
    pub fn peer(&self, peer: &Eid) -> (u64, u64) {
        self.by_peer
            .get(&peer.node_id())
            .copied()
            .unwrap_or_default()
    }

    /// A bundle of `size` bytes from `from` is now held.
    pub fn add(&mut self, from: Option<&Eid>, size: u64) {
        self.bytes = self.bytes.saturating_add(size);
        self.bundles = self.bundles.saturating_add(1);
        if let Some(p) = from {
            let e = self.by_peer.entry(p.node_id()).or_default();
            e.0 = e.0.saturating_add(size);
            e.1 = e.1.saturating_add(1);
        }
    }

    /// A bundle of `size` bytes from `from` is no longer held.
    pub fn remove(&mut self, from: Option<&Eid>, size: u64) {
        self.bytes = self.bytes.saturating_sub(size);
        self.bundles = self.bundles.saturating_sub(1);
        if let Some(p) = from {
            let key = p.node_id();
            if let Some(e) = self.by_peer.get_mut(&key) {
                e.0 = e.0.saturating_sub(size);
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    self.by_peer.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(bytes: u64, bundles: u64, share: u8, reserve: u8) -> StoreQuota {
        StoreQuota {
            bytes,
            shares: QuotaShares {
                quota_bundles: bundles,
                peer_share_percent: share,
                local_reserve_percent: reserve,
            },
        }
    }

    #[test]
    fn peers_stop_at_quota_minus_reserve_and_local_at_the_quota() {
        let quota = q(1000, 100, 100, 10);
        let a: Eid = "dtn://a/".parse().unwrap();
        let mut u = StoreUsage::default();
        u.add(Some(&a), 850);
        assert_eq!(quota.admit(&u, Some(&a), 50), Ok(()));
        let e = quota.admit(&u, Some(&a), 51).unwrap_err();
        assert_eq!(
            e,
            QuotaRefusal::Bytes {
                held: 850,
                size: 51,
                limit: 900
            }
        );
        assert_eq!(e.label(), "quota");
        // The reserve is for local submissions.
        assert_eq!(quota.admit(&u, None, 150), Ok(()));
        assert!(quota.admit(&u, None, 151).is_err());
    }

    #[test]
    fn one_peer_may_use_only_its_share() {
        let quota = q(1000, 100, 50, 0);
        let (a, b): (Eid, Eid) = ("dtn://a/".parse().unwrap(), "dtn://b/x".parse().unwrap());
        let mut u = StoreUsage::default();
        u.add(Some(&a), 400);
        let e = quota.admit(&u, Some(&a), 101).unwrap_err();
        assert_eq!(e.label(), "quota_peer_share");
        assert_eq!(quota.admit(&u, Some(&a), 100), Ok(()));
        // Another peer (any EID of that node) has its own share.
        assert_eq!(quota.admit(&u, Some(&b), 500), Ok(()));
        u.add(Some(&b), 500);
        assert_eq!(u.peer(&"dtn://b/".parse().unwrap()), (500, 1));
        // Releasing gives the share back.
        u.remove(Some(&a), 400);
        assert_eq!(u.peer(&a), (0, 0));
        assert_eq!(quota.admit(&u, Some(&a), 400), Ok(()));
    }

    #[test]
    fn bundle_counts_have_a_quota_a_reserve_and_shares() {
        let quota = q(u64::MAX, 10, 50, 20);
        let (a, b): (Eid, Eid) = ("dtn://a/".parse().unwrap(), "dtn://b/".parse().unwrap());
        let mut u = StoreUsage::default();
        for _ in 0..5 {
            assert_eq!(quota.admit(&u, Some(&a), 1), Ok(()));
            u.add(Some(&a), 1);
        }
        assert_eq!(
            quota.admit(&u, Some(&a), 1).unwrap_err().label(),
            "quota_peer_share"
        );
        for _ in 0..3 {
            u.add(Some(&b), 1);
        }
        // 8 held = 10 − 20 %: peers are refused, local submits still fit.
        let e = quota.admit(&u, Some(&b), 1).unwrap_err();
        assert_eq!(e, QuotaRefusal::Bundles { held: 8, limit: 8 });
        assert_eq!(quota.admit(&u, None, 1), Ok(()));
        u.add(None, 1);
        u.add(None, 1);
        assert_eq!(
            quota.admit(&u, None, 1).unwrap_err().label(),
            "quota_bundles"
        );
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let quota = q(u64::MAX - 1, u64::MAX, 200, 200);
        let u = StoreUsage {
            bytes: u64::MAX,
            ..Default::default()
        };
        assert!(quota.admit(&u, None, u64::MAX).is_err());
        let a: Eid = "dtn://a/".parse().unwrap();
        assert!(quota.admit(&StoreUsage::default(), Some(&a), 1).is_err());
        let mut u = StoreUsage::default();
        u.remove(Some(&a), 5);
        assert_eq!(u, StoreUsage::default());
    }
}
