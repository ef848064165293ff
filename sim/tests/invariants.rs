//! Randomized runs (a bounded campaign): every policy on small random
//! Poisson and random-waypoint traces, with random bandwidth, buffers,
//! delay, copy budgets, message sizes and lifetimes. Each run must
//!
//! - finish (a livelock ends it with `SimError::NoProgress`, a failure here);
//! - lose nothing: no undelivered, unexpired message held by no node
//!   (`vanished`), the invariant "no acknowledged bundle is dropped
//!   silently" (DESIGN.md) seen from outside the agents;
//! - deliver at most what the oracle can (unlimited bandwidth and buffers,
//!   earliest arrival), and never more than was created;
//! - keep every buffer within its quota;
//! - with epidemic and unlimited resources and no delay, deliver exactly
//!   what the oracle delivers (flooding is the earliest-arrival path);
//! - with direct delivery, deliver in one hop;
//! - give the same report when run again (one case in four).
//!
//! `SPORE_SIM_CASES` (default 12) and `SPORE_SIM_SEED` (default 1) set the
//! campaign; `scripts/sim-chaos.sh` runs a long one in release. A failure
//! prints the case's parameters, enough to run it again alone.

mod common;

use common::deterministic;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spore::routing::Policy;
use spore_sim::generator::{PoissonParams, RwpParams, format_events, poisson, rwp};
use spore_sim::run::{RunParams, run};
use spore_sim::trace::{Trace, parse_trace};

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: not a number")),
        Err(_) => default,
    }
}

/// A random trace and a description of it.
fn random_trace(rng: &mut ChaCha8Rng) -> (Trace, String) {
    let nodes = rng.random_range(3..=30);
    let seed = rng.random::<u32>() as u64;
    let (events, what) = if rng.random_bool(0.6) {
        let p = PoissonParams {
            nodes,
            rate_per_s: rng.random_range(0.002..0.05),
            duration_s: rng.random_range(300.0..3000.0),
            contact_s: if rng.random_bool(0.3) {
                0.0
            } else {
                rng.random_range(0.5..60.0)
            },
            seed,
        };
        (poisson(&p), format!("{p:?}"))
    } else {
        let p = RwpParams {
            nodes,
            grid_m: rng.random_range(100.0..600.0),
            range_m: rng.random_range(20.0..80.0),
            speed: (0.5, rng.random_range(1.0..5.0)),
            pause_max_s: rng.random_range(0.0..120.0),
            duration_s: rng.random_range(300.0..2000.0),
            step_s: 1.0,
            seed,
        };
        (rwp(&p), format!("{p:?}"))
    };
    (parse_trace(&format_events(&events)).unwrap(), what)
}

fn random_policy(rng: &mut ChaCha8Rng) -> Policy {
    let copies = rng.random_range(1..=8);
    match rng.random_range(0..6) {
        0 => Policy::Direct,
        1 => Policy::Epidemic,
        2 => Policy::SprayAndWait { copies },
        3 => Policy::Prophet,
        4 => Policy::Spore { copies },
        _ => Policy::Cgr,
    }
}

fn random_params(rng: &mut ChaCha8Rng, trace: &Trace) -> RunParams {
    let mut p = RunParams::new(random_policy(rng));
    p.messages = rng.random_range(1..=200);
    let small = rng.random_range(50..2000);
    p.msg_size = (small, small + rng.random_range(0..4000));
    p.bandwidth = rng.random_bool(0.5).then(|| rng.random_range(500..200_000));
    p.buffer = rng
        .random_bool(0.4)
        .then(|| rng.random_range(2_000..100_000));
    p.delay_ms = if rng.random_bool(0.5) {
        0
    } else {
        rng.random_range(1..2000)
    };
    let span_s = trace.end_us as f64 / 1e6;
    p.lifetime_s = rng
        .random_bool(0.5)
        .then(|| rng.random_range(10.0..span_s.max(11.0)));
    p.tail_s = if rng.random_bool(0.5) {
        span_s / 4.0
    } else {
        0.0
    };
    p.seed = rng.random::<u32>() as u64;
    p
}

fn check(case: u64, trace: &Trace, p: &RunParams, again: bool) -> Result<(), String> {
    let r = run(trace, p)
        .map_err(|e| format!("run failed: {e}"))?
        .report;
    let fail = |what: &str| Err(format!("{what}\nreport: {r:?}"));
    if let Some(n) = r.drops.get("vanished") {
        return fail(&format!(
            "{n} messages vanished (held by no node, undelivered, unexpired)"
        ));
    }
    if r.delivered > r.created {
        return fail("delivered more than created");
    }
    if r.delivered > r.oracle_delivered {
        return fail("delivered more than the oracle (unlimited resources) could");
    }
    if let Some(quota) = p.buffer
        && r.buffer_occupancy.max > quota
    {
        return fail("a buffer went over its quota");
    }
    let unlimited = p.bandwidth.is_none() && p.buffer.is_none() && p.delay_ms == 0;
    if unlimited && p.policy == Policy::Epidemic && r.delivered != r.oracle_delivered {
        return fail("epidemic with unlimited resources is not the oracle");
    }
    if p.policy == Policy::Direct && r.delivered > 0 && r.hop_count_mean != Some(1.0) {
        return fail("direct delivery took more than one hop");
    }
    if again {
        let b = run(trace, p).map_err(|e| format!("second run failed: {e}"))?;
        if deterministic(b.report) != deterministic(r.clone()) {
            return fail(&format!("case {case}: a second run gave another report"));
        }
    }
    Ok(())
}

#[test]
fn random_runs_lose_nothing_and_stay_within_the_oracle() {
    let cases = env_u64("SPORE_SIM_CASES", 12);
    let first = env_u64("SPORE_SIM_SEED", 1);
    let mut failures = Vec::new();
    for case in first..first + cases {
        let mut rng = ChaCha8Rng::seed_from_u64(case);
        let (mut trace, mut what) = random_trace(&mut rng);
        while trace.nodes < 2 {
            // No two nodes ever met: no message has a destination.
            (trace, what) = random_trace(&mut rng);
        }
        let p = random_params(&mut rng, &trace);
        if let Err(e) = check(case, &trace, &p, case % 4 == 0) {
            failures.push(format!(
                "case {case} (SPORE_SIM_SEED={case} SPORE_SIM_CASES=1)\ntrace: {what}\nparams: {p:?}\n{e}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
