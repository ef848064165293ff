//! One simulation run from parsed inputs to its report.

use crate::oracle::Oracle;
use crate::profile::Profile;
use crate::report::{self, Report, Series};
use crate::trace::{MessageEvent, Trace, node_eid};
use crate::workload::{self, Message, WorkloadParams};
use crate::world::{EPOCH_MS, SimConfig, SimError, World};
use spore::routing::Policy;
use spore::routing::plan::{ContactPlan, PlannedContact};
use std::sync::Arc;

/// What to run (the `run` subcommand's options).
#[derive(Clone, Debug)]
pub struct RunParams {
    /// Routing policy.
    pub policy: Policy,
    /// Bandwidth per link direction, bytes/s; `None` = unlimited.
    pub bandwidth: Option<u64>,
    /// Per-node buffer quota, bytes; `None` = unlimited.
    pub buffer: Option<u64>,
    /// One-way link delay, ms.
    pub delay_ms: u64,
    /// Generated messages (ignored with a workload).
    pub messages: u64,
    /// Message size range, bytes.
    pub msg_size: (u64, u64),
    /// Warm-up, s: messages created before it are not counted.
    pub warmup_s: f64,
    /// No generated message is created in the last `tail_s` of the trace.
    pub tail_s: f64,
    /// Message lifetime, s; `None` = the whole trace.
    pub lifetime_s: Option<f64>,
    /// Seed of the workload generator.
    pub seed: u64,
    /// Messages of a workload file instead of generated ones.
    pub workload: Option<Vec<MessageEvent>>,
    /// Time every agent call (for [`RunResult::profile`]; costs two clock
    /// reads per call, so off by default).
    pub profile: bool,
}

/// The results of a run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Summary.
    pub report: Report,
    /// Plot data.
    pub series: Series,
    /// Time per agent call kind (empty unless [`RunParams::profile`]).
    pub profile: Profile,
    /// Agent calls made.
    pub agent_calls: u64,
}

impl RunParams {
    /// Defaults: unlimited bandwidth and buffers, no delay, no messages,
    /// 1000-byte messages living the whole trace, no warm-up, seed 1.
    pub fn new(policy: Policy) -> RunParams {
        RunParams {
            policy,
            bandwidth: None,
            buffer: None,
            delay_ms: 0,
            messages: 0,
            msg_size: (1000, 1000),
            warmup_s: 0.0,
            tail_s: 0.0,
            lifetime_s: None,
            seed: 1,
            workload: None,
            profile: false,
        }
    }
}

fn secs_us(s: f64) -> u64 {
    (s.max(0.0) * 1e6) as u64
}

/// The messages of a run: from the workload or generated.
pub fn messages(trace: &Trace, p: &RunParams) -> Vec<Message> {
    let lifetime_us = p.lifetime_s.map_or(trace.end_us.max(1), secs_us);
    let warmup_us = secs_us(p.warmup_s);
    match &p.workload {
        Some(ev) => workload::from_events(ev, lifetime_us, warmup_us),
        None => workload::generate(&WorkloadParams {
            messages: p.messages,
            nodes: trace.nodes,
            size: p.msg_size,
            warmup_us,
            end_us: trace.end_us.saturating_sub(secs_us(p.tail_s)),
            lifetime_us,
            seed: p.seed,
        }),
    }
}

/// A contact plan with every contact of the trace, both directions, at
/// its rate and delay (the trace's, else `bandwidth` and `delay_ms`):
/// perfect knowledge for `cgr`. An instant contact lasts 1 ms in the plan
/// (the plan needs end > start).
pub fn contact_plan(trace: &Trace, bandwidth: Option<u64>, delay_ms: u64) -> ContactPlan {
    let contacts = trace
        .contacts_with(bandwidth, delay_ms * 1000)
        .into_iter()
        .map(|c| {
            let start_ms = EPOCH_MS + c.start_us / 1000;
            PlannedContact {
                start_ms,
                end_ms: (EPOCH_MS + c.end_us / 1000).max(start_ms + 1),
                from: node_eid(c.from),
                to: node_eid(c.to),
                rate_bytes_per_s: c.rate,
                delay_ms: c.delay_us / 1000,
            }
        })
        .collect();
    ContactPlan { contacts }
}

/// Runs `trace` with `p`.
///
/// # Errors
/// [`SimError`] if an agent's store fails.
pub fn run(trace: &Trace, p: &RunParams) -> Result<RunResult, SimError> {
    let msgs = messages(trace, p);
    let nodes = msgs
        .iter()
        .map(|m| m.from.max(m.to) + 1)
        .max()
        .unwrap_or(0)
        .max(trace.nodes);
    let end_us = trace.end_us.max(msgs.last().map_or(0, |m| m.time_us));
    let plan =
        (p.policy == Policy::Cgr).then(|| Arc::new(contact_plan(trace, p.bandwidth, p.delay_ms)));
    let cfg = SimConfig {
        policy: p.policy,
        bandwidth: p.bandwidth,
        buffer: p.buffer,
        delay_us: p.delay_ms * 1000,
        sample_us: (end_us / 100).max(1_000_000),
        end_us,
        contact_plan: plan,
        profile: p.profile,
    };
    let out = World::new(cfg, nodes, &trace.events, &msgs)?.run()?;
    let oracle = Oracle::new(&trace.contacts(p.delay_ms * 1000), nodes, end_us);
    let best = oracle.deliveries(&msgs);
    let router = p.policy.to_string();
    Ok(RunResult {
        report: report::build(router.clone(), p.seed, &msgs, &out, &best),
        series: report::series(router, &msgs, &out),
        profile: out.profile.clone(),
        agent_calls: out.agent_calls,
    })
}
