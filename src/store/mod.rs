//! The durable bundle store: one redb database per node.
//!
//! All tables are declared in [`tables`]; the record types in [`records`].
//! Every change of a bundle's state happens inside one [`Txn`] that commits
//! with `Durability::Immediate`: when [`Txn::commit`] returns, the change
//! survives a crash or power loss (redb's commit protocol, see spec/store.md).
//! A bundle is acknowledged to anyone only after the transaction that stored
//! it has committed; several bundles that arrive together share one
//! transaction (group commit).
//!
//! The store takes no clock: every time is passed in as DTN milliseconds.

pub mod assets;
pub mod blobs;
pub mod check;
pub mod compact;
mod forget;
mod index;
pub mod records;
pub mod tables;

use crate::bundle::Eid;
use records::{BundleRecord, FileRecord, PeerRecord, RecordHead};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tables::*;

/// Errors of store operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine failed (I/O error, corruption detected by redb,
    /// database already open by another process, …).
    #[error("store database error: {0}")]
    Db(#[from] redb::Error),
    /// A stored value could not be decoded.
    #[error("store record in table {table} is corrupt: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store was written by a newer spore (schema version too high).
    #[error("store schema version {found} is newer than this spore understands ({SCHEMA_VERSION})")]
    NewerSchema {
        /// Version found.
        found: u64,
    },
}

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain records to a Vec cannot fail.
    serde_cbor::to_vec(v).expect("records serialize to CBOR")
}

fn uncbor<T: serde::de::DeserializeOwned>(table: &'static str, b: &[u8]) -> Result<T, StoreError> {
    serde_cbor::from_slice(b).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// Opens (or creates) a redb file with spore's cache size.
fn open_file(path: &Path) -> Result<Database, StoreError> {
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(db)
}

/// A handle on one node's store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    /// The open database; `None` after a failed [`Store::reopen`].
    db: std::sync::RwLock<Option<Arc<Database>>>,
    /// The file, for [`Store::reopen`] (`None` for other backends).
    path: Option<std::path::PathBuf>,
    /// In-memory store: nothing outlives the process, so most commits skip
    /// redb's durable commit protocol (every [`EPHEMERAL_DURABLE_EVERY`]th
    /// is durable so redb can reuse freed pages).
    ephemeral: bool,
    commits: std::sync::atomic::AtomicU64,
    /// Transactions started by [`Store::write_lazy`].
    lazy_commits: std::sync::atomic::AtomicU64,
    /// In-memory index of held, delivered, forwarded and expiring bundles,
    /// kept in step with every commit (see `index.rs`).
    index: Arc<index::IndexCell>,
    /// Segment files for large chunks (stores opened from a file only).
    blobs: Option<Arc<blobs::Blobs>>,
    /// How long after its expiry a finished bundle record is kept, ms
    /// (0: for ever); see [`Store::set_record_retention_ms`].
    record_retention_ms: std::sync::atomic::AtomicU64,
    /// Lower bounds of the earliest forget times (see `forget_due`).
    hints: Arc<ForgetHints>,
}

/// Lower bounds (DTN ms) of the earliest row of each forget-time table:
/// 0 until first read, `u64::MAX` when the table was empty; every insert
/// lowers them.
#[derive(Debug, Default)]
pub(crate) struct ForgetHints {
    pub(crate) delivered: AtomicU64,
    pub(crate) records: AtomicU64,
}

/// In an in-memory store, one commit in this many is a durable one.
/// Measured on the 100-node 3-day spray-and-wait run of
/// `scripts/sim-bench.sh`: 16 → 39 k events/s, 64 → 45–46 k, 256 → 47–50 k,
/// 1024 → 48–51 k (and 24 MiB less peak RSS than 64), 4096 → 50–52 k.
const EPHEMERAL_DURABLE_EVERY: u64 = 1024;

/// One [`Store::write_lazy`] transaction in this many commits durably
/// anyway, so that lazy commits do not pile up (redb reuses the pages they
/// free only after a durable commit, and emptied blob segments wait for
/// one).
pub const LAZY_DURABLE_EVERY: u64 = 32;

/// Counts shown by `spore status` and used by tests.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StoreStats {
    /// Bundle records (all states).
    pub records: u64,
    /// Bundles held for forwarding.
    pub held: u64,
    /// Distinct chunks stored.
    pub chunks: u64,
    /// Delivered bundle IDs remembered.
    pub delivered: u64,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// [`StoreError::Db`] if the file cannot be opened (I/O, locked by another
    /// process, corrupt), [`StoreError::NewerSchema`] if a newer spore wrote it.
    ///
    /// A file that exists but does not start with redb's magic number can
    /// only be one whose creation was cut short by a crash (redb writes the
    /// header before any commit, so nothing in it was ever acknowledged): it
    /// is renamed to `<path>.unusable[.N]` (kept, never deleted) and
    /// a fresh store is created.
    ///
    /// Large chunks live in segment files in the directory `<path>.blobs`
    /// beside the file (spec/store.md §Blob segments); segments without
    /// live chunks are removed here.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        set_aside_headerless(path)?;
        let mut s = Store::init(open_file(path)?)?;
        s.path = Some(path.to_path_buf());
        let live: std::collections::HashMap<u64, u64> = {
            let t = s.read()?.open_table(BLOB_SEGMENTS).map_err(db)?;
            let rows = t.iter().map_err(db)?;
            rows.map(|r| r.map(|(k, v)| (k.value(), v.value())))
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        let dir = blobs_dir(path);
        let (b, removed) =
            blobs::Blobs::open(&dir, &live).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        if !removed.is_empty() {
            tracing::info!(dir = %dir.display(), segments = removed.len(), "removed blob segments without live chunks");
        }
        if live.values().any(|&n| n == 0) {
            let txn = s.write()?;
            let mut t = txn.w.open_table(BLOB_SEGMENTS).map_err(db)?;
            t.retain(|_, n| n > 0).map_err(db)?;
            drop(t);
            txn.commit()?;
        }
        s.blobs = Some(Arc::new(b));
        Ok(s)
    }

    /// Closes and re-opens the store's file: redb refuses every write after
    /// an I/O error (e.g. ENOSPC) until the database is re-opened, which
    /// also repairs what the failed commit left. Returns `false` (and does
    /// nothing) for stores not opened from a file.
    ///
    /// Callers must hold no transaction. On failure the store stays closed
    /// (every transaction fails) until a later `reopen` succeeds.
    ///
    /// # Errors
    /// [`StoreError::Db`] if the file cannot be opened again.
    pub fn reopen(&self) -> Result<bool, StoreError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let mut g = self.db.write().unwrap_or_else(|e| e.into_inner());
        // Drop the old handle first: redb locks the file while it is open.
        drop(g.take());
        self.index.invalidate();
        *g = Some(Arc::new(open_file(path)?));
        Ok(true)
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        let g = self.db.read().unwrap_or_else(|e| e.into_inner());
        g.clone().ok_or_else(|| {
            StoreError::Db(redb::Error::Io(std::io::Error::other(
                "store closed after a failed re-open",
            )))
        })
    }

    /// Opens an empty store in memory (for the simulator and tests).
    ///
    /// # Errors
    /// [`StoreError::Db`] if redb fails to initialise.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db)?;
        let mut s = Store::init(db)?;
        s.ephemeral = true;
        Ok(s)
    }

    /// Opens (or creates) the store over a caller-supplied redb storage
    /// backend: a file, memory, or a test backend that injects faults
    /// (`tests/store_crash.rs`). Like [`Store::open`] otherwise.
    ///
    /// # Errors
    /// [`StoreError::Db`] if redb cannot open or repair the database on the
    /// backend, [`StoreError::NewerSchema`] if a newer spore wrote it.
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<Store, StoreError> {
        let db = Database::builder()
            .create_with_backend(backend)
            .map_err(db)?;
        Store::init(db)
    }

    fn init(db: Database) -> Result<Store, StoreError> {
        let store = Store {
            db: std::sync::RwLock::new(Some(Arc::new(db))),
            path: None,
            ephemeral: false,
            commits: Default::default(),
            lazy_commits: Default::default(),
            index: Arc::new(index::IndexCell::new_stale()),
            blobs: None,
            record_retention_ms: Default::default(),
            hints: Default::default(),
        };
        let mut txn = store.write()?;
        match txn.meta_u64("schema")? {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema { found: v }),
            Some(_) => {}
            None => txn.set_meta_u64("schema", SCHEMA_VERSION)?,
        }
        // Create every table so that read transactions never miss one.
        txn.touch_all()?;
        txn.commit()?;
        // Build the index now, so a corrupt record shows at open.
        drop(store.index()?);
        Ok(store)
    }

    /// Write transactions started so far on this handle (of any kind,
    /// committed or not): a change counter for those who watch the store,
    /// not a count of changes.
    pub fn write_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Starts a write transaction (one at a time; callers serialize).
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn write(&self) -> Result<Txn, StoreError> {
        let mut w = self.db()?.begin_write().map_err(db)?;
        let n = self
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let durability = if self.ephemeral && n % EPHEMERAL_DURABLE_EVERY != 0 {
            Durability::None
        } else {
            Durability::Immediate
        };
        w.set_durability(durability).map_err(db)?;
        Ok(Txn {
            w,
            index: self.index.clone(),
            ops: Vec::new(),
            blobs: self.blobs.clone(),
            dead_segments: Vec::new(),
            released_segments: Vec::new(),
            lazy: false,
            record_retention_ms: self
                .record_retention_ms
                .load(std::sync::atomic::Ordering::Relaxed),
            hints: self.hints.clone(),
        })
    }

    /// Starts a write transaction whose commit may be lost in a crash:
    /// for changes that are safe to redo, such as releasing a bundle whose
    /// custody another node accepted (after a crash the bundle is offered
    /// again, the peer answers "duplicate" and it is released again). Its
    /// commit skips the fsyncs of a durable one; the next durable commit
    /// of any transaction makes it durable, and every
    /// [`LAZY_DURABLE_EVERY`]th lazy transaction is durable itself. Blob
    /// segments it empties are deleted only after a durable commit, so
    /// the state a crash returns to never references a deleted segment.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn write_lazy(&self) -> Result<Txn, StoreError> {
        let mut t = self.write()?;
        let n = self.lazy_commits.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.ephemeral && n % LAZY_DURABLE_EVERY != 0 {
            t.w.set_durability(Durability::None).map_err(db)?;
            t.lazy = true;
        }
        Ok(t)
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db()?.begin_read().map_err(db)
    }

    /// The in-memory index, rebuilt from the tables first if stale.
    fn index(&self) -> Result<std::sync::RwLockReadGuard<'_, index::Index>, StoreError> {
        self.index.get(|| self.read())
    }

    /// True if no bundle is held here (from memory): nothing to offer to
    /// any peer.
    ///
    /// # Errors
    /// [`StoreError`] if the index must be rebuilt and that fails.
    pub fn holds_nothing(&self) -> Result<bool, StoreError> {
        Ok(self.index()?.held.is_empty())
    }

    /// The head of held bundle `key` (from memory), or `None` if it is not
    /// held here.
    ///
    /// # Errors
    /// [`StoreError`] if the index must be rebuilt and that fails.
    pub fn held_head(&self, key: &[u8]) -> Result<Option<RecordHead>, StoreError> {
        Ok(self.index()?.held.get(key).cloned().flatten())
    }

    /// The record of bundle `key`, if any.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn record(&self, key: &[u8]) -> Result<Option<BundleRecord>, StoreError> {
        let t = self.read()?.open_table(BUNDLES).map_err(db)?;
        get_cbor(&t, "bundles-0", key)
    }

    /// Every bundle record, in bundle-key order (creation time first), at most `limit`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn records(&self, limit: usize) -> Result<Vec<BundleRecord>, StoreError> {
        let t = self.read()?.open_table(BUNDLES).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)?.take(limit) {
            let (_, v) = row.map_err(db)?;
            out.push(uncbor("bundles-0", v.value())?);
        }
        Ok(out)
    }

    /// The stored encoding of bundle `key` (payload empty for a chunk
    /// bundle) and its chunk bytes, if the bundle is still held.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn bundle_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.read()?.open_table(BUNDLE_BYTES).map_err(db)?;
        Ok(t.get(key).map_err(db)?.map(|g| g.value().to_vec()))
    }

    /// The bytes of chunk `cid`, if stored.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure; [`StoreError::Db`] also if the
    /// chunk's segment file cannot be read (missing, shorter than its
    /// reference).
    pub fn chunk(&self, cid: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(CHUNKS).map_err(db)?;
        if let Some(g) = t.get(cid).map_err(db)? {
            return Ok(Some(g.value().1.to_vec()));
        }
        let t = r.open_table(CHUNK_BLOBS).map_err(db)?;
        let Some((_, seg, off, len)) = t.get(cid).map_err(db)?.map(|g| g.value()) else {
            return Ok(None);
        };
        let blobs = self.blobs.as_ref().ok_or_else(|| StoreError::Corrupt {
            table: "chunk-blobs-0",
            detail: "a segment reference in a store without segment files".into(),
        })?;
        let bytes = blobs.read(seg, off, len).map_err(|e| {
            StoreError::Db(redb::Error::Io(std::io::Error::new(
                e.kind(),
                format!("blob segment {seg:016x} at {off}+{len}: {e}"),
            )))
        })?;
        Ok(Some(bytes))
    }

    /// The reference count of chunk `cid` (0 if absent).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn chunk_refs(&self, cid: &[u8]) -> Result<u64, StoreError> {
        let r = self.read()?;
        let t = r.open_table(CHUNKS).map_err(db)?;
        if let Some(g) = t.get(cid).map_err(db)? {
            return Ok(g.value().0);
        }
        let t = r.open_table(CHUNK_BLOBS).map_err(db)?;
        Ok(t.get(cid).map_err(db)?.map_or(0, |g| g.value().0))
    }

    /// True if blob segment `id` exists with at least `end` bytes.
    pub(crate) fn blob_present(&self, id: u64, end: u64) -> bool {
        let len = self.blobs.as_ref().and_then(|b| b.segment_len(id));
        len.is_some_and(|n| n >= end)
    }

    /// Bytes of blob segment files on disk (0 for an in-memory store).
    pub fn blob_disk_bytes(&self) -> u64 {
        self.blobs.as_ref().map_or(0, |b| b.disk_bytes())
    }

    /// True if bundle `key` was delivered here.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn is_delivered(&self, key: &[u8]) -> Result<bool, StoreError> {
        let t = self.read()?.open_table(DELIVERED).map_err(db)?;
        Ok(t.get(key).map_err(db)?.is_some())
    }

    /// Keys of bundles held for forwarding, in key order, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn held_keys(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let t = self.read()?.open_table(HELD).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)?.take(limit) {
            out.push(row.map_err(db)?.0.value().to_vec());
        }
        Ok(out)
    }

    /// Keys of delivered bundles, newest creation time first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn delivered_keys(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let t = self.read()?.open_table(DELIVERED).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)?.rev().take(limit) {
            out.push(row.map_err(db)?.0.value().to_vec());
        }
        Ok(out)
    }

    /// A contact summary for `peer` in one read transaction: up to `limit`
    /// held bundle keys, then delivered ones, `limit` in all (delivered
    /// newest first), and those of them that were received from `peer`
    /// (held or delivered here: the peer's custody signals for them may
    /// have been lost, spec/custody.md), each held one with the peer's
    /// transmission number it came by, if known (delivered ones: `None`).
    /// Read from the in-memory index (no read transaction).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    #[allow(clippy::type_complexity)]
    pub fn summary(
        &self,
        peer: &Eid,
        limit: usize,
    ) -> Result<(Vec<Vec<u8>>, Vec<(Vec<u8>, Option<u64>)>), StoreError> {
        let ix = self.index()?;
        let (mut keys, mut from_peer) = (Vec::new(), Vec::new());
        for (key, head) in ix.held.iter().take(limit) {
            if let Some(h) = head
                && h.received_from.as_ref() == Some(peer)
            {
                from_peer.push((key.clone(), h.received_transmission));
            }
            keys.push(key.clone());
        }
        let room = limit - keys.len();
        for (key, from) in ix.delivered.iter().rev().take(room) {
            if from.as_ref() == Some(peer) {
                from_peer.push((key.clone(), None));
            }
            keys.push(key.clone());
        }
        Ok((keys, from_peer))
    }

    /// Walks held bundles not yet given to `peer`, nearest expiry first
    /// (ties by key; spec/routing.md §7), calling
    /// `visit(key, record)` until it returns `Ok(false)` or `max_scan` held
    /// entries were looked at. Reads the in-memory index (no read
    /// transaction, no decoding); `visit` runs with the index locked for
    /// reading, so it must not use the store.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record, or `visit`'s error.
    pub fn scan_owed<E: From<StoreError>>(
        &self,
        peer: &str,
        max_scan: usize,
        mut visit: impl FnMut(&[u8], &RecordHead) -> Result<bool, E>,
    ) -> Result<(), E> {
        let ix = self.index()?;
        let pid = ix.peer_id(peer);
        for (key, head) in ix.held_nearest_expiry().take(max_scan) {
            if pid.is_some_and(|p| ix.was_forwarded_to(p, key)) {
                continue;
            }
            if !visit(key, head)? {
                break;
            }
        }
        Ok(())
    }

    /// The peers bundle `key` was given to (`forwarded-0`, committed rows).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn forwarded_peers(&self, key: &[u8]) -> Result<Vec<String>, StoreError> {
        let ix = self.index()?;
        Ok(ix.forwarded_names(key).map(str::to_owned).collect())
    }

    /// The earliest expiry among held bundles, DTN ms.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn next_expiry_ms(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.index()?.expiry.first().map(|(ms, _)| *ms))
    }

    /// Up to `limit` (expiry ms, key) pairs with expiry ≤ `now_ms`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn expired(&self, now_ms: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let ix = self.index()?;
        Ok(ix
            .expiry
            .iter()
            .take_while(|(ms, _)| *ms <= now_ms)
            .take(limit)
            .cloned()
            .collect())
    }

    /// The peer record of `node_id`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn peer(&self, node_id: &str) -> Result<Option<PeerRecord>, StoreError> {
        let t = self.read()?.open_table(PEERS).map_err(db)?;
        match t.get(node_id).map_err(db)? {
            Some(v) => Ok(Some(uncbor("peers-0", v.value())?)),
            None => Ok(None),
        }
    }

    /// All peer records, by node ID.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        all_cbor(&self.read()?.open_table(PEERS).map_err(db)?, "peers-0")
    }

    /// All file records.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn files(&self) -> Result<Vec<FileRecord>, StoreError> {
        all_cbor(&self.read()?.open_table(FILES).map_err(db)?, "files-0")
    }

    /// Every file record without its chunk list (see
    /// [`records::FileHead`]), in manifest CID order.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn file_heads(&self) -> Result<Vec<records::FileHead>, StoreError> {
        all_cbor(&self.read()?.open_table(FILES).map_err(db)?, "files-0")
    }

    /// The file record of manifest `cid`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn file(&self, cid: &[u8]) -> Result<Option<FileRecord>, StoreError> {
        let t = self.read()?.open_table(FILES).map_err(db)?;
        get_cbor(&t, "files-0", cid)
    }

    /// The latest chunk bundle carrying `cid`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn chunk_bundle(&self, cid: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.read()?.open_table(CID_BUNDLES).map_err(db)?;
        Ok(t.get(cid).map_err(db)?.map(|g| g.value().to_vec()))
    }

    /// Number of delivered chunk bundles waiting for reassembly that carry `cid`.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn inbox_has(&self, cid: &[u8]) -> Result<bool, StoreError> {
        let t = self.read()?.open_multimap_table(INBOX_CHUNKS).map_err(db)?;
        Ok(!t.get(cid).map_err(db)?.is_empty())
    }

    /// All counters, by name.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let t = self.read()?.open_table(COUNTERS).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            out.push((k.value().to_owned(), v.value()));
        }
        Ok(out)
    }

    /// A meta value as u64.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn meta_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let t = self.read()?.open_table(META).map_err(db)?;
        Ok(t.get(key).map_err(db)?.and_then(|g| be_u64(g.value())))
    }

    /// A meta value as raw bytes (e.g. the PRoPHET table).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn meta_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.read()?.open_table(META).map_err(db)?;
        Ok(t.get(key).map_err(db)?.map(|g| g.value().to_vec()))
    }

    /// Table sizes.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let r = self.read()?;
        Ok(StoreStats {
            records: r.open_table(BUNDLES).map_err(db)?.len().map_err(db)?,
            held: r.open_table(HELD).map_err(db)?.len().map_err(db)?,
            chunks: r.open_table(CHUNKS).map_err(db)?.len().map_err(db)?
                + r.open_table(CHUNK_BLOBS).map_err(db)?.len().map_err(db)?,
            delivered: r.open_table(DELIVERED).map_err(db)?.len().map_err(db)?,
        })
    }
}

/// Page cache of a store opened with [`Store::open`] (16 MiB). redb's own
/// default is 1 GiB, too much for the small machines spore runs on; bundle
/// bytes are written once and read once, and the hot routing questions are
/// answered by the in-memory index, so a large cache buys little: with 8 MiB
/// instead of 64, one-hop and 10 000-small-file sync rates were unchanged,
/// while a node's RSS no longer grew with the store as the cache filled
/// (`scripts/sync-memory.sh`, issue 4).
pub const CACHE_BYTES: usize = 16 << 20;

/// redb's file magic number (the first bytes of every redb database file).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Moves aside a non-empty file at `path` that lacks redb's header.
fn set_aside_headerless(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let io = |e: std::io::Error| StoreError::Db(redb::Error::Io(e));
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    match std::fs::File::open(path) {
        Ok(f) => {
            f.take(REDB_MAGIC.len() as u64)
                .read_to_end(&mut head)
                .map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    }
    if head.is_empty() || head == REDB_MAGIC {
        return Ok(());
    }
    let aside = (0..1000)
        .map(|i| match i {
            0 => path.with_extension("redb.unusable"),
            i => path.with_extension(format!("redb.unusable.{i}")),
        })
        .find(|p| !p.exists())
        .ok_or_else(|| {
            io(std::io::Error::other(
                "too many unusable store files set aside",
            ))
        })?;
    tracing::warn!(
        file = %path.display(),
        moved_to = %aside.display(),
        "store file has no redb header (its creation was interrupted); starting a fresh store"
    );
    std::fs::rename(path, &aside).map_err(io)
}

/// The segment directory of the store file at `path` (`<path>.blobs`).
pub fn blobs_dir(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".blobs");
    s.into()
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Every value of table `t` (named `name` in errors), decoded, in key order.
fn all_cbor<K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
    t: &impl ReadableTable<K, &'static [u8]>,
    name: &'static str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in t.iter().map_err(db)? {
        out.push(uncbor(name, row.map_err(db)?.1.value())?);
    }
    Ok(out)
}

fn get_cbor<T: serde::de::DeserializeOwned>(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match t.get(key).map_err(db)? {
        Some(v) => Ok(Some(uncbor(name, v.value())?)),
        None => Ok(None),
    }
}

mod jobs;
mod txn;
pub use jobs::PendingJob;
pub use txn::Txn;
