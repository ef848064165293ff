//! When finished records and delivered-bundle IDs may be forgotten
//! (spec/store.md, tables `record-forget-0` and `delivered-forget-0`): the
//! tick asks, and in-memory hints spare it a table read when nothing is due.

use super::tables::{DELIVERED_FORGET, RECORD_FORGET};
use super::{Store, StoreError, db};
use redb::ReadableTable;
use std::sync::atomic::{AtomicU64, Ordering};

impl Store {
    /// True if some finished bundle record may be dropped at `now_ms`
    /// (see [`super::Txn::forget_records`]).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn record_forget_due(&self, now_ms: u64) -> Result<bool, StoreError> {
        self.forget_due(RECORD_FORGET, &self.hints.records, now_ms)
    }

    /// A lower bound of the earliest time (DTN ms) at which
    /// [`Store::delivered_forget_due`] or [`Store::record_forget_due`] may
    /// be true: 0 until they have read their tables once, `None` if both
    /// tables were empty at their last read and nothing was added since.
    pub fn next_forget_ms(&self) -> Option<u64> {
        let d = self.hints.delivered.load(Ordering::Relaxed);
        let r = self.hints.records.load(Ordering::Relaxed);
        Some(d.min(r)).filter(|&t| t != u64::MAX)
    }

    /// True if `table`'s earliest forget time is at or before `now_ms`.
    /// `hint` is a lower bound of that time kept in memory (lowered by
    /// every insert), so that a tick with nothing due reads nothing.
    fn forget_due(
        &self,
        table: redb::TableDefinition<(u64, &[u8]), ()>,
        hint: &AtomicU64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let seen = hint.load(Ordering::Relaxed);
        if now_ms < seen {
            return Ok(false);
        }
        let t = self.read()?.open_table(table).map_err(db)?;
        let first = t.first().map_err(db)?.map(|(k, _)| k.value().0);
        // Unless an insert lowered it meanwhile.
        let _ = hint.compare_exchange(
            seen,
            first.unwrap_or(u64::MAX),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        Ok(first.is_some_and(|ms| ms <= now_ms))
    }

    /// Keeps finished bundle records (custody transferred, delivered,
    /// expired, deleted) until `ms` after their bundle's expiry, then lets
    /// [`super::Txn::forget_records`] drop them (0: keep them for ever, the
    /// default). Applies to records finished from now on.
    pub fn set_record_retention_ms(&self, ms: u64) {
        self.record_retention_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// True if a delivered-bundle ID is due to be forgotten at `now_ms`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn delivered_forget_due(&self, now_ms: u64) -> Result<bool, StoreError> {
        self.forget_due(DELIVERED_FORGET, &self.hints.delivered, now_ms)
    }
}
