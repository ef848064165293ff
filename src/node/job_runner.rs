//! The job executor and the result inbox of a node (spec/jobs.md §3, §4).
//!
//! Job bundles delivered to `dtn://NODE/jobs` arrive here as
//! [`Action::Deliver`](crate::agent::Action::Deliver); the agent has already
//! recorded them as pending in the store, in the transaction that delivered
//! them. Each runs on its service (bounded concurrency and queue), and its
//! result bundle is submitted as [`Submission::JobResult`], which stores it
//! and clears the pending entry in one transaction. Results delivered to
//! `dtn://NODE/job-results` are written to `DATA_DIR/jobs/results/`.

use super::{Command, Shared, dtn_now};
use crate::agent::{Event, Submission};
use crate::bundle::{Bundle, BundleId, Eid, codec};
use crate::jobs::{
    JobErrorKind, JobInput, JobRequest, JobResult, JobStatus, JobsConfig, ServiceKind,
    result_timestamp, results_endpoint,
};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// Largest input assembled from chunks, bytes (64 MiB).
const MAX_CHUNK_INPUT: usize = 64 << 20;

/// Slots and queue of one service.
struct Lane {
    slots: Arc<Semaphore>,
    /// Jobs running or waiting for a slot.
    admitted: AtomicUsize,
    /// Most jobs running or waiting.
    bound: usize,
}

/// The executor's state: configuration, lanes, jobs in progress.
pub(crate) struct JobRunner {
    cfg: JobsConfig,
    lanes: HashMap<String, Lane>,
    running: Mutex<HashSet<BundleId>>,
    /// Our hardware summary (advertised).
    pub hardware: crate::jobs::Hardware,
    /// Capabilities advertised by peers.
    pub peer_caps: super::caps::PeerCaps,
    /// Real-time requests waiting for replies.
    pub realtime: super::realtime::Waiters,
    /// Per-peer rate limit on incoming real-time jobs.
    pub realtime_limit: super::realtime::PeerLimit,
    /// Per-submitter rate limit on incoming batch jobs (`[limits]
    /// jobs_per_s`, `jobs_burst`).
    pub batch_limit: super::realtime::PeerLimit,
}

/// Free slots and queue length of one service, for capability adverts.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct LaneLoad {
    pub free_slots: usize,
    pub queued: usize,
}

impl JobRunner {
    /// A runner for the services of `cfg`; batch jobs from one submitter
    /// are limited to `batch_per_s` per second with bursts of `batch_burst`.
    pub fn new(cfg: JobsConfig, batch_per_s: u32, batch_burst: u32) -> JobRunner {
        let lanes = cfg
            .services
            .iter()
            .map(|s| {
                let lane = Lane {
                    slots: Arc::new(Semaphore::new(s.concurrency)),
                    admitted: AtomicUsize::new(0),
                    bound: s.concurrency.saturating_add(s.queue_bound),
                };
                (s.name.clone(), lane)
            })
            .collect();
        let realtime_limit =
            super::realtime::PeerLimit::new(cfg.realtime_jobs_per_s, cfg.realtime_burst);
        JobRunner {
            cfg,
            lanes,
            running: Mutex::new(HashSet::new()),
            hardware: super::caps::hardware(),
            peer_caps: Default::default(),
            realtime: Default::default(),
            realtime_limit,
            batch_limit: super::realtime::PeerLimit::named("batch", batch_per_s, batch_burst),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &JobsConfig {
        &self.cfg
    }

    /// Load of service `name`, if offered.
    pub fn load(&self, name: &str) -> Option<LaneLoad> {
        self.lanes.get(name).map(|l| {
            let free = l.slots.available_permits();
            let admitted = l.admitted.load(Ordering::Relaxed);
            let conc = self.cfg.service(name).map_or(1, |s| s.concurrency);
            LaneLoad {
                free_slots: free,
                queued: admitted.saturating_sub(conc),
            }
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<BundleId>> {
        // Poisoning only follows a panic elsewhere; the set stays usable.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts job `id` (unless it is already running: a start-up re-delivery).
pub(crate) fn on_job(shared: &Arc<Shared>, id: BundleId, payload: bytes::Bytes) {
    if !shared.jobs.running().insert(id.clone()) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let (dest, result) = match shared.jobs.batch_limit.check(&id.source.node_id()) {
            Ok(()) => execute(&shared, &id, &payload).await,
            Err(why) => refused(&shared, &id, &payload, &why),
        };
        info!(job = %id, status = ?result.status, run_ms = result.run_ms, "job finished");
        if let Err(e) = submit_result(&shared, &id, dest, result).await {
            warn!(job = %id, error = %e, "cannot store the job result; the job stays pending");
        }
        shared.jobs.running().remove(&id);
    });
}

/// A job refused before it ran (`refused_busy`, with `why`): where the
/// error result goes and the result.
fn refused(shared: &Shared, id: &BundleId, payload: &[u8], why: &str) -> (Eid, JobResult) {
    let dest = JobRequest::decode(payload)
        .map(|r| r.result_destination(id))
        .unwrap_or_else(|_| results_endpoint(&id.source));
    let r = JobResult::error(id, &shared.node_id, JobErrorKind::RefusedBusy, why);
    (dest, r)
}

/// Runs the job; returns where its result goes and the result.
pub(crate) async fn execute(
    shared: &Arc<Shared>,
    id: &BundleId,
    payload: &[u8],
) -> (Eid, JobResult) {
    execute_with(shared, id, payload, None).await
}

/// As [`execute`]; with a `sink`, output is passed on as it comes and not
/// kept in the result (real-time parts, spec/jobs.md §7.1).
pub(crate) async fn execute_with(
    shared: &Arc<Shared>,
    id: &BundleId,
    payload: &[u8],
    sink: Option<super::exec::PartSink>,
) -> (Eid, JobResult) {
    let me = &shared.node_id;
    let req = match JobRequest::decode(payload) {
        Ok(r) => r,
        Err(e) => {
            let r = JobResult::error(id, me, JobErrorKind::BadRequest, &e.to_string());
            return (results_endpoint(&id.source), r);
        }
    };
    let dest = req.result_destination(id);
    let err = |kind, detail: &str| (dest.clone(), JobResult::error(id, me, kind, detail));
    if req.deadline_ms.is_some_and(|d| dtn_now().0 > d) {
        return err(JobErrorKind::Timeout, "deadline passed before the job ran");
    }
    let Some(svc) = shared.jobs.cfg.service(&req.service) else {
        let d = format!("{me} does not offer service {:?}", req.service);
        return err(JobErrorKind::UnknownService, &d);
    };
    let Some(lane) = shared.jobs.lanes.get(&svc.name) else {
        return err(JobErrorKind::UnknownService, "no lane");
    };
    if lane.admitted.fetch_add(1, Ordering::AcqRel) >= lane.bound {
        lane.admitted.fetch_sub(1, Ordering::AcqRel);
        return err(JobErrorKind::RefusedBusy, "the service's queue is full");
    }
    super::caps::broadcast(shared);
    let out = async {
        let _permit = lane.slots.acquire().await;
        // Started: one slot fewer, one fewer queued.
        super::caps::broadcast(shared);
        let input = match load_input(shared, &req.input).await {
            Ok(i) => i,
            Err((kind, d)) => return JobResult::error(id, me, kind, &d),
        };
        let o = run_service(&svc.kind, input, sink).await;
        JobResult {
            v: crate::jobs::FORMAT_VERSION,
            job: id.clone(),
            executor: me.to_string(),
            status: o.status,
            output: o.output,
            run_ms: o.run_ms,
        }
    }
    .await;
    lane.admitted.fetch_sub(1, Ordering::AcqRel);
    super::caps::broadcast(shared);
    (dest, out)
}

/// Runs one job's `input` on a service of `kind`.
async fn run_service(
    kind: &ServiceKind,
    input: Vec<u8>,
    sink: Option<super::exec::PartSink>,
) -> super::exec::ExecOutcome {
    match kind {
        ServiceKind::Exec {
            command,
            time_limit_ms,
            max_output_bytes,
        } => {
            let limit = Duration::from_millis(*time_limit_ms);
            super::exec::run(command, input, limit, *max_output_bytes, sink).await
        }
        ServiceKind::Ollama { url, models } => super::ollama::run(url, models, input, sink).await,
    }
}

/// The job's input bytes: inline, or its chunks (spec/jobs.md §2).
async fn load_input(shared: &Shared, input: &JobInput) -> Result<Vec<u8>, (JobErrorKind, String)> {
    let cids = match input {
        JobInput::Inline(b) => return Ok(b.clone()),
        JobInput::Chunks(c) => c.clone(),
    };
    let store = shared.store.clone();
    let r = tokio::task::spawn_blocking(move || {
        super::job_input::load_chunks(&store, &cids, MAX_CHUNK_INPUT)
    })
    .await;
    r.unwrap_or_else(|e| Err((JobErrorKind::InputMissing, e.to_string())))
}

/// Stores the result bundle (deterministic ID) and clears the pending job.
async fn submit_result(
    shared: &Shared,
    id: &BundleId,
    dest: Eid,
    result: JobResult,
) -> Result<(), String> {
    let now = dtn_now().0;
    // Created at the job's creation time: the lifetime counts from there.
    let lifetime = now
        .saturating_sub(id.timestamp.time.0)
        .saturating_add(shared.jobs.cfg.result_lifetime_ms);
    let b = Bundle::new(
        shared.node_id.clone(),
        dest,
        result_timestamp(id),
        lifetime,
        result.encode().into(),
    );
    let item = Submission::JobResult {
        job: id.clone(),
        bundle: codec::encode(&b).into(),
    };
    let (ticket, rx) = shared.submits.open();
    let ev = Event::Submit {
        ticket,
        items: vec![item],
    };
    shared
        .cmd
        .send(Command::Event(ev))
        .await
        .map_err(|_| "node is stopping".to_owned())?;
    rx.await
        .map_err(|_| "node is stopping".to_owned())?
        .map(|_| ())
}

/// Where the result of job `job` is kept on the submitting node.
pub(crate) fn result_path(data_dir: &std::path::Path, job: &BundleId) -> PathBuf {
    data_dir
        .join("jobs")
        .join("results")
        .join(hex::encode(job.to_key()))
}

/// Keeps a result delivered here (by its job's ID).
pub(crate) fn on_result(shared: &Shared, id: &BundleId, payload: &[u8]) {
    let r = match JobResult::decode(payload) {
        Ok(r) => r,
        Err(e) => {
            warn!(bundle = %id, error = %e, "result bundle does not decode; dropped");
            return;
        }
    };
    let path = result_path(&shared.data_dir, &r.job);
    let w = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(anyhow::Error::from)
        .and_then(|_| super::write_atomically(&path, payload));
    match w {
        Ok(()) => {
            let ok = matches!(r.status, JobStatus::Ok);
            info!(job = %r.job, executor = %r.executor, ok, "job result received");
        }
        Err(e) => warn!(job = %r.job, error = %e, "cannot write the job result"),
    }
}

/// The result of job `job`, if it arrived here.
pub(crate) fn read_result(data_dir: &std::path::Path, job: &BundleId) -> Option<JobResult> {
    let b = std::fs::read(result_path(data_dir, job)).ok()?;
    JobResult::decode(&b).ok()
}

/// Takes a delivery for the jobs or job-results service; false for others.
pub(crate) fn take_delivery(
    shared: &Arc<Shared>,
    id: &BundleId,
    service: &str,
    payload: &bytes::Bytes,
) -> bool {
    match service {
        crate::jobs::JOBS_SERVICE => on_job(shared, id.clone(), payload.clone()),
        crate::jobs::RESULTS_SERVICE => on_result(shared, id, payload),
        _ => return false,
    }
    true
}
