//! Pending jobs (spec/jobs.md §3): job bundles delivered here whose result
//! bundle is not stored yet. Table [`JOBS_PENDING`].

use super::tables::JOBS_PENDING;
use super::{Store, StoreError, Txn, db};
use redb::ReadableTable;

/// A pending job: (job bundle key, request payload).
pub type PendingJob = (Vec<u8>, Vec<u8>);

impl Store {
    /// Pending jobs (job bundle key, request payload), in key order, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn pending_jobs(&self, limit: usize) -> Result<Vec<PendingJob>, StoreError> {
        let t = self.read()?.open_table(JOBS_PENDING).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)?.take(limit) {
            let (k, v) = row.map_err(db)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// True if job `key` is pending (delivered, no result stored yet).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn is_job_pending(&self, key: &[u8]) -> Result<bool, StoreError> {
        let t = self.read()?.open_table(JOBS_PENDING).map_err(db)?;
        Ok(t.get(key).map_err(db)?.is_some())
    }
}

impl Txn {
    /// Records job `key` (its request payload) as pending.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn job_pending_put(&mut self, key: &[u8], request: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(JOBS_PENDING).map_err(db)?;
        t.insert(key, request).map_err(db)?;
        Ok(())
    }

    /// Removes job `key` from the pending jobs. Returns true if it was there.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn job_pending_remove(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let mut t = self.w.open_table(JOBS_PENDING).map_err(db)?;
        Ok(t.remove(key).map_err(db)?.is_some())
    }
}
