//! Per-peer estimates: smoothed RTT (RFC 6298 §2) and contact history
//! (spec/routing.md §3).
//!
//! Contact history is kept as decayed sums so that an estimate follows a
//! peer whose habits change: every new sample first multiplies the sums by
//! [`HISTORY_DECAY`]. The expected wait until the next contact, seen from a
//! random moment, is the MEED estimate (Jones, Li, Ward, "Practical routing
//! in delay-tolerant networks", 2005): Σ gapᵢ² / (2 · (Σ gapᵢ + Σ durᵢ)),
//! where gaps are the disconnected periods and durs the contact durations.
//! For contacts that arrive as a Poisson process of rate λ with short
//! contacts this is 1/λ.

use serde::{Deserialize, Serialize};

/// Weight kept by the old history when a sample is added (≈ the last 32
/// samples dominate).
pub const HISTORY_DECAY: f64 = 31.0 / 32.0;

/// Pseudo-samples of the prior blended into a peer's expected wait.
pub const PRIOR_WEIGHT: f64 = 4.0;

/// Smoothed RTT state of one peer (RFC 6298 §2), µs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RttEstimate {
    /// Smoothed RTT, µs.
    pub srtt_us: u64,
    /// RTT variation, µs.
    pub rttvar_us: u64,
    /// Samples taken.
    pub samples: u64,
}

impl RttEstimate {
    /// Folds in one sample: the first sets SRTT = R, RTTVAR = R/2; later ones
    /// use RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, SRTT = 7/8·SRTT + 1/8·R.
    pub fn sample(&mut self, rtt_us: u64) {
        if self.samples == 0 {
            self.srtt_us = rtt_us;
            self.rttvar_us = rtt_us / 2;
        } else {
            let diff = self.srtt_us.abs_diff(rtt_us);
            self.rttvar_us = (3 * self.rttvar_us + diff) / 4;
            self.srtt_us = (7 * self.srtt_us + rtt_us) / 8;
        }
        self.samples += 1;
    }
}

/// What this node has learnt about one peer; persisted in the peer table
/// and updated on every contact. Times are DTN ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerEstimate {
    /// Smoothed RTT and variation.
    pub rtt: RttEstimate,
    /// Contacts seen.
    pub contacts: u64,
    /// Start of the current or last contact.
    pub last_start_ms: Option<u64>,
    /// End of the last finished contact.
    pub last_end_ms: Option<u64>,
    /// True while a contact is up.
    pub in_contact: bool,
    /// Decayed Σ of inter-contact gaps, ms.
    pub gap_sum_ms: f64,
    /// Decayed Σ of squared inter-contact gaps, ms².
    pub gap_sq_sum_ms2: f64,
    /// Decayed count of inter-contact gaps.
    pub gap_count: f64,
    /// Decayed Σ of contact durations, ms.
    pub dur_sum_ms: f64,
    /// Decayed count of contact durations.
    pub dur_count: f64,
    /// Bundle bytes sent to the peer (accepted).
    pub bytes_sent: u64,
    /// Bundle bytes received from the peer (accepted).
    pub bytes_received: u64,
}

impl PeerEstimate {
    /// A contact started at `now_ms` with a first RTT sample (µs).
    pub fn contact_up(&mut self, now_ms: u64, rtt_us: u64) {
        if self.in_contact {
            // A replacing connection: the contact goes on.
            self.rtt.sample(rtt_us);
            return;
        }
        if let Some(end) = self.last_end_ms {
            let gap = now_ms.saturating_sub(end) as f64;
            self.gap_sum_ms = self.gap_sum_ms * HISTORY_DECAY + gap;
            self.gap_sq_sum_ms2 = self.gap_sq_sum_ms2 * HISTORY_DECAY + gap * gap;
            self.gap_count = self.gap_count * HISTORY_DECAY + 1.0;
        }
        self.rtt.sample(rtt_us);
        self.contacts += 1;
        self.last_start_ms = Some(now_ms);
        self.in_contact = true;
    }

    /// The contact ended at `now_ms`.
    pub fn contact_down(&mut self, now_ms: u64) {
        if !self.in_contact {
            return;
        }
        let dur = now_ms.saturating_sub(self.last_start_ms.unwrap_or(now_ms)) as f64;
        self.dur_sum_ms = self.dur_sum_ms * HISTORY_DECAY + dur;
        self.dur_count = self.dur_count * HISTORY_DECAY + 1.0;
        self.last_end_ms = Some(now_ms);
        self.in_contact = false;
    }

    /// Mean inter-contact time, ms, once a gap was seen.
    pub fn mean_inter_contact_ms(&self) -> Option<f64> {
        (self.gap_count > 0.0).then(|| self.gap_sum_ms / self.gap_count)
    }

    /// Mean contact duration, ms, once a contact ended.
    pub fn mean_contact_ms(&self) -> Option<f64> {
        (self.dur_count > 0.0).then(|| self.dur_sum_ms / self.dur_count)
    }

    /// Expected time, ms, until this peer can take a bundle: half an RTT
    /// while in contact; otherwise the MEED expected wait from the gap
    /// history (module doc); with no gap seen yet, the time since the last
    /// contact ended (a peer unseen for T is guessed back in about T);
    /// `None` for a peer never met.
    pub fn expected_wait_ms(&self, now_ms: u64) -> Option<f64> {
        self.expected_wait_with_prior_ms(now_ms, None)
    }

    /// [`PeerEstimate::expected_wait_ms`], where a peer with no gap seen
    /// yet is expected back in no less than `prior_ms` (e.g. the mean wait
    /// of the other peers): right after a first contact, "time since it
    /// ended" is near 0 and would promise an imminent return.
    pub fn expected_wait_with_prior_ms(&self, now_ms: u64, prior_ms: Option<f64>) -> Option<f64> {
        if self.in_contact {
            return Some(self.rtt.srtt_us as f64 / 2000.0);
        }
        if let Some(w) = self.meed_wait_ms() {
            // Few gaps say little (inter-contact times vary widely): shrink
            // toward the prior by PRIOR_WEIGHT pseudo-samples.
            let n = self.gap_count;
            return Some(prior_ms.map_or(w, |p| (n * w + PRIOR_WEIGHT * p) / (n + PRIOR_WEIGHT)));
        }
        let end = self.last_end_ms?;
        let since = now_ms.saturating_sub(end).max(1) as f64;
        Some(prior_ms.map_or(since, |p| p.max(since)))
    }

    /// The MEED expected wait from the gap history alone, ms.
    pub fn meed_wait_ms(&self) -> Option<f64> {
        (self.gap_sum_ms > 0.0)
            .then(|| self.gap_sq_sum_ms2 / (2.0 * (self.gap_sum_ms + self.dur_sum_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_smoothing_follows_rfc6298() {
        let mut r = RttEstimate::default();
        r.sample(100_000);
        assert_eq!((r.srtt_us, r.rttvar_us), (100_000, 50_000));
        r.sample(200_000);
        // RTTVAR = 3/4*50000 + 1/4*100000 = 62500; SRTT = 7/8*100000 + 1/8*200000 = 112500
        assert_eq!((r.srtt_us, r.rttvar_us), (112_500, 62_500));
    }

    #[test]
    fn contact_history_gives_means_and_meed_wait() {
        let mut p = PeerEstimate::default();
        assert_eq!(p.expected_wait_ms(0), None);
        p.contact_up(0, 10_000);
        assert_eq!(p.expected_wait_ms(0), Some(5.0), "half the RTT in contact");
        p.contact_down(100);
        assert_eq!(
            p.expected_wait_ms(600),
            Some(500.0),
            "time since the last end"
        );
        // Regular gaps of 900 ms and contacts of 100 ms: a random moment
        // waits 900²/(2·1000) = 405 ms on average.
        for k in 1..=50u64 {
            p.contact_up(k * 1000, 10_000);
            p.contact_down(k * 1000 + 100);
        }
        let w = p.expected_wait_ms(60_000).unwrap();
        assert!((w - 405.0).abs() < 1.0, "{w}");
        assert!((p.mean_inter_contact_ms().unwrap() - 900.0).abs() < 1e-6);
        assert!((p.mean_contact_ms().unwrap() - 100.0).abs() < 1e-6);
        assert_eq!(p.contacts, 51);
    }

    #[test]
    fn replacing_connection_is_not_a_new_contact() {
        let mut p = PeerEstimate::default();
        p.contact_up(0, 1000);
        p.contact_up(50, 1000);
        assert_eq!(p.contacts, 1);
        p.contact_down(100);
        p.contact_down(200);
        assert_eq!(p.last_end_ms, Some(100));
        assert_eq!(p.dur_count, 1.0);
    }
}
