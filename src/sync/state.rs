//! Per-file sync state in `DATA_DIR/sync.redb` (its own database, so the
//! agent's store keeps a single writer).
//!
//! Tables (values are JSON):
//! - `sent-0`: `folder \0 path` → [`SentFile`]: the last version sent;
//! - `received-0`: `source \0 folder \0 path` → [`ReceivedFile`]: the last
//!   version written here and the stat it had then (conflict detection).

use super::SyncError;
use super::scan::FileStat;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const SENT: TableDefinition<&str, &[u8]> = TableDefinition::new("sent-0");
const RECEIVED: TableDefinition<&str, &[u8]> = TableDefinition::new("received-0");

/// File name of the state database in the data directory.
pub const STATE_FILE: &str = "sync.redb";

/// The last version of a path sent by an outgoing folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFile {
    /// Stat at send time; `None` for a tombstone.
    pub stat: Option<FileStat>,
    /// Version sent.
    pub fversion: u64,
    /// Manifest CID bytes.
    pub manifest_cid: Vec<u8>,
    /// Chunk CIDs (binary) in file order.
    pub chunks: Vec<Vec<u8>>,
    /// Distinct chunks submitted for this version (the others were at the
    /// destination already).
    #[serde(default)]
    pub chunks_sent: usize,
}

/// The last version of a path written by this receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedFile {
    /// Version written (or deleted, for a tombstone).
    pub fversion: u64,
    /// Stat of the file right after it was written; `None` after a deletion.
    pub stat: Option<FileStat>,
    /// Manifest CID bytes.
    pub manifest_cid: Vec<u8>,
}

/// The state database.
pub struct SyncState {
    db: Database,
}

fn db_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::State(e.to_string())
}

/// `a \0 b`: a key no sanitized name can collide with.
pub fn key(parts: &[&str]) -> String {
    parts.join("\0")
}

impl SyncState {
    /// Opens or creates `dir/sync.redb`.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn open(dir: &Path) -> Result<SyncState, SyncError> {
        let db = Database::create(dir.join(STATE_FILE)).map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(SENT).map_err(db_err)?;
        txn.open_table(RECEIVED).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(SyncState { db })
    }

    fn get<T: for<'de> Deserialize<'de>>(
        &self,
        t: TableDefinition<&str, &[u8]>,
        k: &str,
    ) -> Result<Option<T>, SyncError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(t).map_err(db_err)?;
        match table.get(k).map_err(db_err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(db_err)?)),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(
        &self,
        t: TableDefinition<&str, &[u8]>,
        k: &str,
        v: &T,
    ) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(v).map_err(db_err)?;
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(t)
            .map_err(db_err)?
            .insert(k, bytes.as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// The last sent version of `path` in `folder`.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn sent(&self, folder: &str, path: &str) -> Result<Option<SentFile>, SyncError> {
        self.get(SENT, &key(&[folder, path]))
    }

    /// Records a sent version.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn put_sent(&self, folder: &str, path: &str, f: &SentFile) -> Result<(), SyncError> {
        self.put(SENT, &key(&[folder, path]), f)
    }

    /// Every sent path of `folder`, in path order.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn sent_in(&self, folder: &str) -> Result<Vec<(String, SentFile)>, SyncError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SENT).map_err(db_err)?;
        let lo = format!("{folder}\0");
        let hi = format!("{folder}\u{1}");
        let mut out = Vec::new();
        for row in table.range(lo.as_str()..hi.as_str()).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let path = k.value()[lo.len()..].to_owned();
            out.push((path, serde_json::from_slice(v.value()).map_err(db_err)?));
        }
        Ok(out)
    }

    /// The last version written here for (`source`, `folder`, `path`).
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn received(&self, k: &str) -> Result<Option<ReceivedFile>, SyncError> {
        self.get(RECEIVED, k)
    }

    /// Records a version written (or deleted) here.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn put_received(&self, k: &str, f: &ReceivedFile) -> Result<(), SyncError> {
        self.put(RECEIVED, k, f)
    }
}
