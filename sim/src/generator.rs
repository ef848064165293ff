//! Trace generators: Poisson pairwise meetings and random waypoint.
//!
//! Both are seeded (ChaCha8) and print ONE `CONN` events sorted by time, so
//! the same arguments always give the same trace.

use crate::trace::ConnEvent;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

/// Parameters of [`poisson`].
#[derive(Clone, Debug)]
pub struct PoissonParams {
    /// Number of nodes (≥ 2).
    pub nodes: u32,
    /// Meeting rate of every pair, per second (> 0).
    pub rate_per_s: f64,
    /// Trace length, seconds.
    pub duration_s: f64,
    /// Contact length, seconds; 0 = instant (up and down at the same time).
    pub contact_s: f64,
    /// RNG seed.
    pub seed: u64,
}

/// Every pair of nodes meets as a Poisson process of rate λ: exponential
/// gaps between the *end* of one contact and the start of the next (with
/// instant contacts, exactly a Poisson process). Events are sorted by time;
/// for equal times a link's `up` comes before its `down`.
pub fn poisson(p: &PoissonParams) -> Vec<ConnEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let dur_us = (p.duration_s * 1e6) as u64;
    let len_us = (p.contact_s.max(0.0) * 1e6) as u64;
    let mut out = Vec::new();
    for a in 0..p.nodes {
        for b in a + 1..p.nodes {
            let mut t = 0.0f64;
            loop {
                // 1 - U is in (0, 1]: the logarithm is finite.
                t += -(1.0 - rng.random::<f64>()).ln() / p.rate_per_s;
                let start = (t * 1e6) as u64;
                if start >= dur_us {
                    break;
                }
                let end = (start + len_us).min(dur_us);
                out.push(ConnEvent {
                    time_us: start,
                    a,
                    b,
                    up: true,
                    params: None,
                });
                out.push(ConnEvent {
                    time_us: end,
                    a,
                    b,
                    up: false,
                    params: None,
                });
                t = end as f64 / 1e6;
            }
        }
    }
    // Up before down at equal times only within one link: sort by time, then
    // keep each link's pair adjacent (pair order, up first).
    out.sort_by_key(|e| (e.time_us, e.a, e.b, !e.up));
    out
}

/// Parameters of [`rwp`].
#[derive(Clone, Debug)]
pub struct RwpParams {
    /// Number of nodes (≥ 2).
    pub nodes: u32,
    /// Side of the square area, meters.
    pub grid_m: f64,
    /// Radio range, meters.
    pub range_m: f64,
    /// Speed range, m/s (min ≤ max, max > 0).
    pub speed: (f64, f64),
    /// Longest pause at a waypoint, seconds.
    pub pause_max_s: f64,
    /// Trace length, seconds.
    pub duration_s: f64,
    /// Sampling step, seconds (> 0).
    pub step_s: f64,
    /// RNG seed.
    pub seed: u64,
}

/// One random-waypoint walker.
struct Walker {
    pos: (f64, f64),
    target: (f64, f64),
    speed: f64,
    pause_left_s: f64,
}

impl Walker {
    fn advance(&mut self, dt: f64, p: &RwpParams, rng: &mut ChaCha8Rng) {
        let mut dt = dt;
        while dt > 0.0 {
            if self.pause_left_s > 0.0 {
                let d = self.pause_left_s.min(dt);
                self.pause_left_s -= d;
                dt -= d;
                continue;
            }
            let (dx, dy) = (self.target.0 - self.pos.0, self.target.1 - self.pos.1);
            let dist = (dx * dx + dy * dy).sqrt();
            let reach_s = dist / self.speed;
            if reach_s > dt {
                let f = dt * self.speed / dist;
                self.pos = (self.pos.0 + dx * f, self.pos.1 + dy * f);
                return;
            }
            dt -= reach_s;
            self.pos = self.target;
            self.target = (
                rng.random_range(0.0..p.grid_m),
                rng.random_range(0.0..p.grid_m),
            );
            self.speed = rng.random_range(p.speed.0..=p.speed.1).max(1e-3);
            self.pause_left_s = rng.random_range(0.0..=p.pause_max_s.max(0.0));
        }
    }
}

/// Random waypoint on a `grid_m` square: each node walks to uniform random
/// waypoints at a uniform random speed, pausing up to `pause_max_s` at each.
/// Positions are sampled every `step_s`; a link is up while the two nodes
/// are within `range_m`. Links still up at the end go down at `duration_s`.
pub fn rwp(p: &RwpParams) -> Vec<ConnEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let n = p.nodes as usize;
    let mut walkers: Vec<Walker> = (0..n)
        .map(|_| {
            let pos = (
                rng.random_range(0.0..p.grid_m),
                rng.random_range(0.0..p.grid_m),
            );
            Walker {
                pos,
                target: pos,
                speed: 1.0,
                pause_left_s: 0.0,
            }
        })
        .collect();
    let mut up = vec![false; n * n];
    let mut out = Vec::new();
    let steps = (p.duration_s / p.step_s).floor() as u64;
    let r2 = p.range_m * p.range_m;
    for k in 0..=steps {
        let time_us = (k as f64 * p.step_s * 1e6) as u64;
        if k > 0 {
            for w in &mut walkers {
                w.advance(p.step_s, p, &mut rng);
            }
        }
        for a in 0..n {
            for b in a + 1..n {
                let (dx, dy) = (
                    walkers[a].pos.0 - walkers[b].pos.0,
                    walkers[a].pos.1 - walkers[b].pos.1,
                );
                let near = dx * dx + dy * dy <= r2;
                if near != up[a * n + b] {
                    up[a * n + b] = near;
                    out.push(ConnEvent {
                        time_us,
                        a: a as u32,
                        b: b as u32,
                        up: near,
                        params: None,
                    });
                }
            }
        }
    }
    let end_us = (p.duration_s * 1e6) as u64;
    for a in 0..n {
        for b in a + 1..n {
            if up[a * n + b] {
                out.push(ConnEvent {
                    time_us: end_us,
                    a: a as u32,
                    b: b as u32,
                    up: false,
                    params: None,
                });
            }
        }
    }
    out
}

/// ONE `CONN` lines for `events`, times in seconds with µs precision.
pub fn format_events(events: &[ConnEvent]) -> String {
    let mut s = String::with_capacity(events.len() * 32);
    for e in events {
        let state = if e.up { "up" } else { "down" };
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "{}.{:06} CONN {} {} {}",
            e.time_us / 1_000_000,
            e.time_us % 1_000_000,
            e.a,
            e.b,
            state
        );
    }
    s
}
