//! Per-file sync state in `DATA_DIR/sync.redb` (its own database, so the
//! agent's store keeps a single writer).
//!
//! Tables (values are JSON):
//! - `sent-0`: `folder \0 path` → [`SentFile`]: the last version sent;
//! - `received-0`: `source \0 folder \0 path` → [`ReceivedFile`]: the last
//!   version written here and the stat it had then (conflict detection).

use super::SyncError;
use super::scan::FileStat;
use redb::{Database, ReadableDatabase, TableDefinition, TableHandle};
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
    /// CID bytes of the pack that carried this version (spec/sync.md
    /// §Packs); `None` when it travelled as its own manifest and chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_cid: Option<Vec<u8>>,
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
    /// Group commit of concurrent writers (receivers write one record per
    /// file from many threads): one redb commit carries every record
    /// queued while the previous commit ran.
    group: std::sync::Mutex<Group>,
    committed: std::sync::Condvar,
}

/// Records waiting for a commit, and which batches are done.
#[derive(Default)]
struct Group {
    /// (table is `sent-0`, key, value) queued for batch `next`.
    pending: Vec<(bool, String, Vec<u8>)>,
    /// The batch that queued records join.
    next: u64,
    /// Every batch up to this one is committed (or failed).
    done: u64,
    /// A writer is committing a batch.
    busy: bool,
    /// Failed batches and why (pruned as they age).
    failed: std::collections::BTreeMap<u64, String>,
}

/// Failed-batch reasons kept for waiters that have not woken yet.
const MAX_FAILED_BATCHES: usize = 64;

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
        let group = Group {
            next: 1,
            ..Group::default()
        };
        Ok(SyncState {
            db,
            group: std::sync::Mutex::new(group),
            committed: std::sync::Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `items` (table is `sent-0`, key, value) in one transaction.
    fn commit_all(&self, items: &[(bool, String, Vec<u8>)]) -> Result<(), SyncError> {
        if items.is_empty() {
            return Ok(()); // no empty commit (and its fsync) on a scan that found nothing
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut sent = txn.open_table(SENT).map_err(db_err)?;
            let mut received = txn.open_table(RECEIVED).map_err(db_err)?;
            for (is_sent, k, v) in items {
                let t = if *is_sent { &mut sent } else { &mut received };
                t.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)
    }

    /// Queues one record and returns once a commit holding it is durable
    /// (group commit: the first waiting writer commits for all).
    fn put_grouped(&self, item: (bool, String, Vec<u8>)) -> Result<(), SyncError> {
        let mut g = self.lock();
        g.pending.push(item);
        let mine = g.next;
        loop {
            if g.done >= mine {
                return match g.failed.get(&mine) {
                    Some(e) => Err(SyncError::State(e.clone())),
                    None => Ok(()),
                };
            }
            if !g.busy {
                g.busy = true;
                let batch = std::mem::take(&mut g.pending);
                let this = g.next;
                g.next += 1;
                drop(g);
                let r = self.commit_all(&batch);
                g = self.lock();
                g.busy = false;
                g.done = this;
                if let Err(e) = r {
                    g.failed.insert(this, e.to_string());
                    while g.failed.len() > MAX_FAILED_BATCHES {
                        g.failed.pop_first();
                    }
                }
                self.committed.notify_all();
                continue;
            }
            g = self.committed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
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
        let is_sent = t.name() == SENT.name();
        self.put_grouped((is_sent, k.to_owned(), bytes))
    }

    /// Records the versions sent for many paths of `folder` in one commit.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn put_sent_all(
        &self,
        folder: &str,
        files: &[(String, SentFile)],
    ) -> Result<(), SyncError> {
        let mut items = Vec::with_capacity(files.len());
        for (path, f) in files {
            let v = serde_json::to_vec(f).map_err(db_err)?;
            items.push((true, key(&[folder, path]), v));
        }
        self.commit_all(&items)
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

    /// Records many versions written (or deleted) here in one commit
    /// (a pack's files): `(key, row)` pairs.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn put_received_all(&self, rows: &[(String, ReceivedFile)]) -> Result<(), SyncError> {
        let mut items = Vec::with_capacity(rows.len());
        for (k, f) in rows {
            items.push((false, k.clone(), serde_json::to_vec(f).map_err(db_err)?));
        }
        self.commit_all(&items)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: u64) -> ReceivedFile {
        ReceivedFile {
            fversion: v,
            stat: None,
            manifest_cid: vec![v as u8],
        }
    }

    #[test]
    fn concurrent_writers_are_group_committed_and_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let st = SyncState::open(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let st = &st;
                s.spawn(move || {
                    for i in 0..40u64 {
                        st.put_received(&key(&["src", "f", &format!("{t}/{i}")]), &rec(i))
                            .unwrap();
                    }
                });
            }
        });
        let files: Vec<(String, SentFile)> = (0..100u64)
            .map(|i| {
                let f = SentFile {
                    stat: None,
                    fversion: i,
                    manifest_cid: vec![],
                    chunks: vec![],
                    chunks_sent: 0,
                    pack_cid: None,
                };
                (format!("p{i}"), f)
            })
            .collect();
        st.put_sent_all("f", &files).unwrap();
        drop(st);
        let st = SyncState::open(dir.path()).unwrap();
        for t in 0..8u64 {
            for i in 0..40u64 {
                let got = st
                    .received(&key(&["src", "f", &format!("{t}/{i}")]))
                    .unwrap();
                assert_eq!(got, Some(rec(i)), "{t}/{i}");
            }
        }
        assert_eq!(st.sent("f", "p99").unwrap().unwrap().fversion, 99);
    }
}
