//! The store quota in the agent: usage by previous-hop peer, the admission
//! check (crate::limits::quota), and recovery after a failed store write.

use super::ingest::Refusal;
use super::{Agent, AgentError};
use crate::bundle::Eid;
use crate::bundle::admin::CustodyReason;
use crate::limits::{StoreQuota, StoreUsage};
use crate::store::Store;
use tracing::warn;

/// Usage of the held bundles, from their records: one pass over the held
/// index at start-up (and after a failed store write).
///
/// # Errors
/// [`AgentError::Store`] if the store cannot be read.
pub(super) fn load_usage(store: &Store) -> Result<StoreUsage, AgentError> {
    let mut u = StoreUsage::default();
    for key in store.held_keys(usize::MAX)? {
        if let Some(rec) = store.record(&key)? {
            if rec.state.is_held() {
                u.add(rec.received_from.as_ref(), rec.size_bytes);
            }
        }
    }
    Ok(u)
}

impl Agent {
    /// Whether a bundle of `size` bytes from `from` (`None`: local) fits
    /// the quota; a refusal carries custody reason "depleted storage", so
    /// the sender keeps custody and offers it again later.
    pub(super) fn quota_check(&self, from: Option<&Eid>, size: u64) -> Result<(), Refusal> {
        let quota = StoreQuota {
            bytes: self.cfg.quota_bytes,
            shares: self.cfg.quota_shares,
        };
        quota.admit(&self.usage, from, size).map_err(|e| Refusal {
            label: e.label(),
            detail: e.to_string(),
            custody: CustodyReason::DepletedStorage,
            report: None,
        })
    }

    /// What the held bundles use (bytes, bundles, per peer).
    pub fn store_usage(&self) -> &StoreUsage {
        &self.usage
    }

    /// After an event failed on a store error (disk full, I/O error): the
    /// transaction was dropped, so the in-memory totals are reloaded from
    /// the store, and the failure is counted (`store_errors`, in memory:
    /// the store may not take a write). The peers keep custody of what was
    /// not acknowledged and offer it again.
    pub fn recover_from_store_error(&mut self) {
        self.store_errors += 1;
        self.tally.clear();
        self.peer_tally.clear();
        // redb refuses all writes after an I/O error until re-opened.
        match self.store.reopen() {
            Ok(true) => tracing::info!("store re-opened after a store error"),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "cannot re-open the store; will retry on the next error"),
        }
        match self.reload_totals() {
            Ok(()) => {}
            Err(e) => warn!(error = %e, "cannot reload store totals after a store error"),
        }
    }

    fn reload_totals(&mut self) -> Result<(), AgentError> {
        self.held_bytes = self.store.meta_u64("held_bytes")?.unwrap_or(0);
        let stored_seq = self.store.meta_u64("next_seq")?.unwrap_or(0);
        self.next_seq = self.next_seq.max(stored_seq);
        self.meta_committed = (stored_seq, self.held_bytes);
        self.usage = load_usage(&self.store)?;
        self.peer_records = self
            .store
            .peers()?
            .into_iter()
            .filter_map(|p| Some((p.node_id.parse::<Eid>().ok()?, p)))
            .collect();
        Ok(())
    }
}
