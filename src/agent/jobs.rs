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
