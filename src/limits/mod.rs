//! Limits that hold under abuse: per-peer rates, flood back-off, store
//! quota shares, and the size/shape limits of untrusted input.
//!
//! Everything here is sans-IO (callers pass `now`); the tokio side that
//! applies the rate limits to incoming bundle streams is
//! `crate::node::limits`. The settings are one config section, `[limits]`
//! ([`LimitsConfig`]), applied to the places that enforce them with
//! [`LimitsConfig::apply`].
//!
//! # Where each limit is enforced
//! - rates (bundles/s, bytes/s) and flooding: where a contact's bundle
//!   streams are accepted and read (the node stops reading a peer over its
//!   rate, so QUIC flow control pushes back on it);
//! - store quota (bytes, bundles), per-peer share, local reserve: the
//!   agent, when it accepts a bundle (refusal = custody signal "depleted
//!   storage", RFC 5050 §6.1.4 reason 4; the sender keeps custody);
//! - bundle size, blocks per bundle: the CLA stream reader and the bundle
//!   decoder; CBOR nesting: a scan of each incoming bundle before decoding;
//!   manifest entries: the manifest decoder.

pub mod nesting;
pub mod quota;
pub mod rate;

pub use nesting::{NestingError, check_nesting};
pub use quota::{QuotaRefusal, QuotaShares, StoreQuota, StoreUsage};
pub use rate::{Backoff, FloodWindow, JobsLimiter, RateLimiter, Throttle};

use crate::agent::AgentConfig;
use crate::cla::quic::ClaConfig;

/// Default most bundles per second from one peer.
pub const DEFAULT_BUNDLES_PER_S: u32 = 20_000;
/// Default most bytes per second from one peer (1 GiB/s).
pub const DEFAULT_BYTES_PER_S: u64 = 1 << 30;

/// The `[limits]` config section. Every field has a documented default
/// (`LimitsConfig::default()`); a TOML section may name any subset.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained bundles per second accepted from one peer (default 20 000).
    pub bundles_per_s: u32,
    /// Bundles one peer may send at once above that rate (default 40 000).
    pub bundles_burst: u32,
    /// Sustained bytes per second accepted from one peer (default 1 GiB/s);
    /// byte pacing slows a peer but never counts as flooding.
    pub bytes_per_s: u64,
    /// Bytes one peer may send at once above that rate (default 64 MiB;
    /// raised to `max_bundle_bytes` if smaller, so any bundle can pass).
    pub bytes_burst: u64,
    /// Sustained jobs per second accepted from one peer (default 10); the
    /// type is [`JobsLimiter`].
    pub jobs_per_s: u32,
    /// Jobs one peer may submit at once (default 20).
    pub jobs_burst: u32,
    /// A peer is flooding when its reads were held back longer than this
    /// in total within one `flood_window_ms` (default 5 000 ms).
    pub flood_wait_ms: u64,
    /// Length of the window over which hold-back time adds up (default 10 000 ms).
    pub flood_window_ms: u64,
    /// First back-off after a flooding disconnect: contacts from that peer
    /// are refused this long (default 30 000 ms); it doubles per repeat.
    pub backoff_min_ms: u64,
    /// Longest back-off (default 3 600 000 ms = 1 h).
    pub backoff_max_ms: u64,
    /// Most payload bytes held for forwarding (default 10 GiB).
    pub quota_bytes: u64,
    /// Most bundles held for forwarding (default 1 000 000).
    pub quota_bundles: u64,
    /// Most of the quota (bytes and bundles) that bundles received from one
    /// peer may use, percent (default 50).
    pub peer_share_percent: u8,
    /// Part of the quota kept for locally submitted bundles, percent
    /// (default 10): peers are refused from `quota − reserve` on.
    pub local_reserve_percent: u8,
    /// Largest bundle accepted or sent, bytes (default 8 MiB).
    pub max_bundle_bytes: usize,
    /// Most canonical blocks in one bundle (default 64).
    pub max_blocks: usize,
    /// Deepest CBOR nesting (arrays, maps, tags) in an incoming bundle's
    /// encoding (default 16; a valid bundle needs 4). Block-specific data
    /// inside byte strings is decoded by serde_cbor, which stops at 128.
    pub max_cbor_nesting: usize,
    /// Most chunks one manifest may list (default 1 048 576).
    pub max_manifest_entries: usize,
    /// How long a finished bundle record (custody transferred, delivered,
    /// expired, deleted) is kept after its bundle's expiry, for `spore
    /// status`, ms (default 604 800 000 = 7 days; 0 keeps them for ever).
    pub record_retention_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            bundles_per_s: DEFAULT_BUNDLES_PER_S,
            bundles_burst: 2 * DEFAULT_BUNDLES_PER_S,
            bytes_per_s: DEFAULT_BYTES_PER_S,
            bytes_burst: 64 << 20,
            jobs_per_s: 10,
            jobs_burst: 20,
            flood_wait_ms: 5_000,
            flood_window_ms: 10_000,
            backoff_min_ms: 30_000,
            backoff_max_ms: 3_600_000,
            quota_bytes: 10 << 30,
            quota_bundles: 1_000_000,
            peer_share_percent: 50,
            local_reserve_percent: 10,
            max_bundle_bytes: 8 << 20,
            max_blocks: 64,
            max_cbor_nesting: 16,
            max_manifest_entries: crate::content::DEFAULT_MAX_MANIFEST_ENTRIES,
            record_retention_ms: 7 * 24 * 3_600_000,
        }
    }
}

impl LimitsConfig {
    /// Writes the limits into the configs of the CLA (bundle size) and the
    /// agent (decoder limits, manifest entries, store quota and shares).
    pub fn apply(&self, cla: &mut ClaConfig, agent: &mut AgentConfig) {
        cla.max_bundle_bytes = self.max_bundle_bytes;
        agent.decode_limits.max_bundle_bytes = self.max_bundle_bytes;
        agent.decode_limits.max_blocks = self.max_blocks;
        agent.max_manifest_entries = self.max_manifest_entries;
        agent.quota_bytes = self.quota_bytes;
        agent.quota_shares = self.quota_shares();
        agent.record_retention_ms = self.record_retention_ms;
    }

    /// The quota settings besides the byte quota.
    pub fn quota_shares(&self) -> QuotaShares {
        QuotaShares {
            quota_bundles: self.quota_bundles,
            peer_share_percent: self.peer_share_percent.min(100),
            local_reserve_percent: self.local_reserve_percent.min(100),
        }
    }

    /// The per-peer rate and flood settings.
    pub fn throttle(&self) -> Throttle {
        Throttle {
            bundles_per_s: self.bundles_per_s,
            bundles_burst: self.bundles_burst,
            bytes_per_s: self.bytes_per_s,
            bytes_burst: self.bytes_burst.max(self.max_bundle_bytes as u64),
            flood_wait: std::time::Duration::from_millis(self.flood_wait_ms),
            flood_window: std::time::Duration::from_millis(self.flood_window_ms),
            backoff_min: std::time::Duration::from_millis(self.backoff_min_ms),
            backoff_max: std::time::Duration::from_millis(self.backoff_max_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let c: LimitsConfig =
            serde_json::from_str(r#"{"bundles_per_s": 5, "quota_bundles": 7}"#).unwrap();
        assert_eq!(c.bundles_per_s, 5);
        assert_eq!(c.quota_bundles, 7);
        assert_eq!(c.peer_share_percent, 50);
        assert!(serde_json::from_str::<LimitsConfig>(r#"{"bundles_per_sec": 5}"#).is_err());
    }

    #[test]
    fn apply_reaches_the_cla_and_the_agent() {
        let c = LimitsConfig {
            max_bundle_bytes: 1234,
            max_blocks: 9,
            max_manifest_entries: 77,
            quota_bytes: 5555,
            quota_bundles: 3,
            ..Default::default()
        };
        let mut cla = ClaConfig::default();
        let mut agent = AgentConfig::new("dtn://a/".parse().unwrap());
        c.apply(&mut cla, &mut agent);
        assert_eq!(cla.max_bundle_bytes, 1234);
        assert_eq!(agent.decode_limits.max_bundle_bytes, 1234);
        assert_eq!(agent.decode_limits.max_blocks, 9);
        assert_eq!(agent.max_manifest_entries, 77);
        assert_eq!(agent.quota_bytes, 5555);
        assert_eq!(agent.quota_shares.quota_bundles, 3);
        // The byte burst always lets the largest bundle through.
        assert_eq!(c.throttle().bytes_burst, 64 << 20);
        let big = LimitsConfig {
            bytes_burst: 10,
            ..c
        };
        assert_eq!(big.throttle().bytes_burst, 1234);
    }
}
