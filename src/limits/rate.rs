//! Per-peer rate limits (GCRA through `governor`), flood detection and the
//! back-off of flooding peers.
//!
//! The driver asks a peer's [`RateLimiter`] before it accepts each bundle
//! stream and before it passes each bundle's bytes on; when the answer is
//! "wait d", it stops reading that peer for `d` (so QUIC flow control pushes
//! back) and adds `d` to the peer's [`FloodWindow`]. A peer held back for
//! more than `flood_wait` within one `flood_window` is flooding: it is
//! disconnected and its contacts are refused for a [`Backoff`] period
//! (`backoff_min`, doubling per repeat, at most `backoff_max`).

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Per-peer rate and flood settings (from `LimitsConfig::throttle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    /// Sustained bundles per second.
    pub bundles_per_s: u32,
    /// Bundle burst.
    pub bundles_burst: u32,
    /// Sustained bytes per second (at most `u32::MAX`).
    pub bytes_per_s: u64,
    /// Byte burst (at most `u32::MAX`), at least the largest bundle.
    pub bytes_burst: u64,
    /// Hold-back time within one window that marks a peer as flooding.
    pub flood_wait: Duration,
    /// The window over which hold-back time adds up.
    pub flood_window: Duration,
    /// First back-off.
    pub backoff_min: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        super::LimitsConfig::default().throttle()
    }
}

type Limiter<C> = Gcra<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A GCRA quota of `per_s` cells per second with burst `burst` (both at
/// least 1, at most `u32::MAX`).
fn quota(per_s: u64, burst: u64) -> Quota {
    let nz =
        |n: u64| NonZeroU32::new(n.clamp(1, u64::from(u32::MAX)) as u32).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(nz(per_s)).allow_burst(nz(burst))
}

/// One peer's two limiters: bundles/s and bytes/s.
pub struct RateLimiter<C: Clock = DefaultClock> {
    bundles: Limiter<C>,
    bytes: Limiter<C>,
    bytes_burst: u32,
    clock: C,
}

impl RateLimiter<DefaultClock> {
    /// Limiters on the real clock.
    pub fn new(t: &Throttle) -> Self {
        Self::with_clock(t, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// Limiters on `clock` (a fake clock in tests).
    pub fn with_clock(t: &Throttle, clock: C) -> Self {
        RateLimiter {
            bundles: Gcra::direct_with_clock(
                quota(u64::from(t.bundles_per_s), u64::from(t.bundles_burst)),
                clock.clone(),
            ),
            bytes: Gcra::direct_with_clock(quota(t.bytes_per_s, t.bytes_burst), clock.clone()),
            bytes_burst: t.bytes_burst.clamp(1, u64::from(u32::MAX)) as u32,
            clock,
        }
    }

    /// Takes one bundle from the bundle budget: `Duration::ZERO` if it may
    /// pass now, else how long to wait before asking again.
    pub fn bundle(&self) -> Duration {
        match self.bundles.check() {
            Ok(()) => Duration::ZERO,
            Err(not_until) => not_until.wait_time_from(self.clock.now()),
        }
    }

    /// Takes `n` bytes from the byte budget (a bundle larger than the burst
    /// counts as the burst): `Duration::ZERO`, or how long to wait.
    pub fn bytes(&self, n: usize) -> Duration {
        let n = NonZeroU32::new((n as u64).clamp(1, u64::from(self.bytes_burst)) as u32)
            .unwrap_or(NonZeroU32::MIN);
        match self.bytes.check_n(n) {
            Ok(Ok(())) => Duration::ZERO,
            Ok(Err(not_until)) => not_until.wait_time_from(self.clock.now()),
            // Cannot happen: n ≤ burst. Let it pass rather than stall.
            Err(_) => Duration::ZERO,
        }
    }
}

/// A generic per-peer limiter for jobs per second (`jobs_per_s`,
/// `jobs_burst`), for the job service to use.
pub struct JobsLimiter<C: Clock = DefaultClock> {
    jobs: Limiter<C>,
    clock: C,
}

impl JobsLimiter<DefaultClock> {
    /// A limiter of `per_s` jobs per second, burst `burst`, on the real clock.
    pub fn new(per_s: u32, burst: u32) -> Self {
        Self::with_clock(per_s, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> JobsLimiter<C> {
    /// The same on `clock`.
    pub fn with_clock(per_s: u32, burst: u32, clock: C) -> Self {
        JobsLimiter {
            jobs: Gcra::direct_with_clock(quota(u64::from(per_s), u64::from(burst)), clock.clone()),
            clock,
        }
    }

    /// Takes one job: `Ok(())`, or `Err(wait)` until one would be allowed.
    ///
    /// # Errors
    /// The time until the next job would pass.
    pub fn try_job(&self) -> Result<(), Duration> {
        self.jobs
            .check()
            .map_err(|n| n.wait_time_from(self.clock.now()))
    }
}

/// Hold-back time of one peer within the current (tumbling) window.
#[derive(Clone, Copy, Debug, Default)]
pub struct FloodWindow {
    start: Option<Instant>,
    waited: Duration,
}

impl FloodWindow {
    /// Adds a hold-back of `wait` at `now`; true if the peer is now
    /// flooding (more than `t.flood_wait` within `t.flood_window`).
    pub fn add(&mut self, now: Instant, wait: Duration, t: &Throttle) -> bool {
        match self.start {
            Some(s) if now.saturating_duration_since(s) < t.flood_window => {}
            _ => {
                self.start = Some(now);
                self.waited = Duration::ZERO;
            }
        }
        self.waited = self.waited.saturating_add(wait);
        self.waited > t.flood_wait
    }

    /// Hold-back time in the current window.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// Back-off state of one peer that flooded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Backoff {
    strikes: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// Records a flooding disconnect at `now`; returns the back-off length:
    /// `backoff_min · 2^(strikes−1)`, at most `backoff_max`. Strikes are
    /// forgotten after a quiet `backoff_max` past the last back-off.
    pub fn strike(&mut self, now: Instant, t: &Throttle) -> Duration {
        if self
            .until
            .is_some_and(|u| now.saturating_duration_since(u) > t.backoff_max)
        {
            self.strikes = 0;
        }
        self.strikes = self.strikes.saturating_add(1);
        let factor = 1u32 << (self.strikes - 1).min(20);
        let d = t.backoff_min.saturating_mul(factor).min(t.backoff_max);
        self.until = Some(now + d);
        d
    }

    /// How long contacts from this peer stay refused after `now`, if at all.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .map(|u| u.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Flooding disconnects so far.
    pub fn strikes(&self) -> u32 {
        self.strikes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn t() -> Throttle {
        Throttle {
            bundles_per_s: 10,
            bundles_burst: 5,
            bytes_per_s: 1000,
            bytes_burst: 2000,
            flood_wait: Duration::from_secs(5),
            flood_window: Duration::from_secs(10),
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(300),
        }
    }

    #[test]
    fn bundles_pass_up_to_the_burst_then_at_the_rate() {
        let clock = FakeRelativeClock::default();
        let r = RateLimiter::with_clock(&t(), clock.clone());
        for _ in 0..5 {
            assert_eq!(r.bundle(), Duration::ZERO);
        }
        let w = r.bundle();
        assert!(
            w > Duration::ZERO && w <= Duration::from_millis(100),
            "{w:?}"
        );
        clock.advance(Duration::from_millis(100));
        assert_eq!(r.bundle(), Duration::ZERO);
        assert!(r.bundle() > Duration::ZERO);
    }

    #[test]
    fn bytes_are_metered_and_a_huge_bundle_counts_as_the_burst() {
        let clock = FakeRelativeClock::default();
        let r = RateLimiter::with_clock(&t(), clock.clone());
        assert_eq!(r.bytes(1500), Duration::ZERO);
        let w = r.bytes(1000);
        // 500 bytes of budget left: 500 more at 1000 B/s is 0.5 s.
        assert!(
            w >= Duration::from_millis(400) && w <= Duration::from_millis(500),
            "{w:?}"
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(r.bytes(10_000_000), Duration::ZERO);
        assert!(r.bytes(1) > Duration::ZERO);
    }

    #[test]
    fn two_peers_have_independent_limiters() {
        let clock = FakeRelativeClock::default();
        let flooder = RateLimiter::with_clock(&t(), clock.clone());
        let honest = RateLimiter::with_clock(&t(), clock.clone());
        while flooder.bundle().is_zero() {}
        assert_eq!(honest.bundle(), Duration::ZERO);
    }

    #[test]
    fn jobs_limiter_refuses_past_the_burst() {
        let clock = FakeRelativeClock::default();
        let j = JobsLimiter::with_clock(2, 2, clock.clone());
        assert!(j.try_job().is_ok() && j.try_job().is_ok());
        let w = j.try_job().unwrap_err();
        assert!(w > Duration::ZERO);
        clock.advance(w);
        assert!(j.try_job().is_ok());
    }

    #[test]
    fn flooding_is_more_hold_back_than_allowed_within_one_window() {
        let t = t();
        let t0 = Instant::now();
        let mut f = FloodWindow::default();
        // 1 s of hold-back per second: flooding after just over 5 s.
        for s in 0..5 {
            assert!(!f.add(t0 + Duration::from_secs(s), Duration::from_secs(1), &t));
        }
        assert!(f.add(t0 + Duration::from_secs(5), Duration::from_millis(1), &t));
        // A new window starts from zero: short hold-backs spread out never flood.
        let mut g = FloodWindow::default();
        for s in 0..100 {
            assert!(!g.add(t0 + Duration::from_secs(s), Duration::from_millis(400), &t));
        }
        assert!(g.waited() <= Duration::from_secs(4));
    }

    #[test]
    fn backoff_doubles_is_capped_and_is_forgotten_after_a_quiet_period() {
        let t = t();
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.remaining(t0), None);
        assert_eq!(b.strike(t0, &t), Duration::from_secs(30));
        assert_eq!(
            b.remaining(t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(b.remaining(t0 + Duration::from_secs(30)), None);
        let mut now = t0 + Duration::from_secs(31);
        let mut got = Vec::new();
        for _ in 0..5 {
            let d = b.strike(now, &t);
            got.push(d.as_secs());
            now += d + Duration::from_secs(1);
        }
        assert_eq!(got, [60, 120, 240, 300, 300]);
        assert_eq!(b.strikes(), 6);
        // Quiet for longer than backoff_max: back to the first step.
        now += Duration::from_secs(400);
        assert_eq!(b.strike(now, &t), Duration::from_secs(30));
    }
}
