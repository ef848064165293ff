//! Pending jobs at start-up (spec/jobs.md §3): a job delivered here whose
//! result bundle was not stored before a crash or stop is delivered to the
//! driver again, so it is re-run (at-least-once execution).

use super::{Action, Agent, AgentError};
use crate::bundle::BundleId;
use tracing::{info, warn};

/// Most pending jobs re-delivered at start-up (the rest wait for the next start).
const MAX_PENDING_AT_START: usize = 4096;

impl Agent {
    /// Queues a [`Action::Deliver`] to the jobs service for each pending job
    /// (emitted at the first tick).
    pub(super) fn load_pending_jobs(&mut self) -> Result<(), AgentError> {
        let pending = self.store.pending_jobs(MAX_PENDING_AT_START)?;
        if !pending.is_empty() {
            info!(jobs = pending.len(), "pending jobs found: they run again");
        }
        for (key, payload) in pending {
            match BundleId::from_key(&key) {
                Ok(id) => self.startup.push(Action::Deliver {
                    id,
                    service: crate::jobs::JOBS_SERVICE.to_owned(),
                    payload: payload.into(),
                }),
                Err(e) => warn!(error = %e, "pending job with a bad key; skipped"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{AgentConfig, Event, Received, Submission};
    use crate::bundle::{Bundle, CreationTimestamp, DtnTime, Eid, codec};
    use crate::store::Store;

    const T0: DtnTime = DtnTime(800_000_000_000);

    fn open(path: &std::path::Path) -> Agent {
        let store = Store::open(path).expect("store opens");
        let id: Eid = "dtn://c/".parse().expect("EID");
        Agent::new(store, AgentConfig::new(id)).expect("agent")
    }

    fn job_deliveries(acts: &[Action]) -> Vec<BundleId> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Deliver { id, service, .. } if service == crate::jobs::JOBS_SERVICE => {
                    Some(id.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_job_stays_pending_across_restarts_until_its_result_is_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.redb");
        let mut c = open(&path);
        let ts = CreationTimestamp {
            time: T0,
            sequence: 7,
        };
        let req = crate::jobs::JobRequest::inline("wc", b"abc".to_vec());
        let job = Bundle::new(
            "dtn://a/".parse().expect("EID"),
            "dtn://c/jobs".parse().expect("EID"),
            ts,
            3_600_000,
            req.encode().into(),
        );
        let from: Eid = "dtn://r/".parse().expect("EID");
        let bytes = codec::encode(&job).into();
        let acts = c
            .handle(T0, Event::Received(vec![Received::new(from, bytes)]))
            .expect("handled");
        assert_eq!(job_deliveries(&acts), vec![job.id()]);
        assert_eq!(c.store().pending_jobs(10).expect("read").len(), 1);

        // A restart before the result: the job is delivered again.
        drop(c);
        let mut c = open(&path);
        let acts = c.handle(T0, Event::Tick).expect("tick");
        assert_eq!(job_deliveries(&acts), vec![job.id()]);

        // The result bundle clears it, in the same transaction.
        let res = Bundle::new(
            "dtn://c/".parse().expect("EID"),
            "dtn://a/job-results".parse().expect("EID"),
            crate::jobs::result_timestamp(&job.id()),
            3_600_000,
            bytes::Bytes::from_static(b"result"),
        );
        let item = Submission::JobResult {
            job: job.id(),
            bundle: codec::encode(&res).into(),
        };
        let acts = c
            .handle(
                T0,
                Event::Submit {
                    ticket: 1,
                    items: vec![item],
                },
            )
            .expect("submit");
        assert!(acts.iter().any(
            |a| matches!(a, Action::Submitted { result: Ok(ids), .. } if ids == &vec![res.id()])
        ));
        assert!(c.store().pending_jobs(10).expect("read").is_empty());
        drop(c);
        let mut c = open(&path);
        let acts = c.handle(T0, Event::Tick).expect("tick");
        assert!(
            job_deliveries(&acts).is_empty(),
            "answered jobs do not run again"
        );
    }
}
