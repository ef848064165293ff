//! Write transactions: every state change of the store goes through [`Txn`].

use super::blobs::{BLOB_MIN_BYTES, Blobs};
use super::index::{IndexCell, Op};
use super::records::{BundleRecord, FileRecord, PeerRecord, RecordHead};
use super::tables::*;
use super::{StoreError, be_u64, cbor, db, get_cbor, uncbor};
use redb::{ReadableMultimapTable, ReadableTable, WriteTransaction};
use std::sync::Arc;

fn io(e: std::io::Error) -> StoreError {
    StoreError::Db(redb::Error::Io(e))
}

/// One durable write transaction. Nothing is visible to readers, and nothing
/// survives a crash, until [`Txn::commit`] returns `Ok`. Dropping a `Txn`
/// without committing aborts it.
pub struct Txn {
    pub(super) w: WriteTransaction,
    /// The store's in-memory index, updated with `ops` after the commit.
    pub(super) index: std::sync::Arc<IndexCell>,
    /// Changes of indexed tables made by this transaction, in order.
    pub(super) ops: Vec<Op>,
    /// Segment files of a store opened from a file (`None`: every chunk
    /// stays inline in `chunks-0`).
    pub(super) blobs: Option<Arc<Blobs>>,
    /// Segments left without live chunks: removed after the commit.
    pub(super) dead_segments: Vec<u64>,
    /// Started by [`super::Store::write_lazy`] and not made durable: the
    /// commit may be lost in a crash.
    pub(super) lazy: bool,
    /// Segments this transaction released bytes of (compaction may have
    /// work once they are quiet).
    pub(super) released_segments: Vec<u64>,
    /// How long after its expiry a finished record is kept, ms (0: for ever).
    pub(super) record_retention_ms: u64,
    /// The store's forget-time hints, lowered by every insert.
    pub(super) hints: Arc<super::ForgetHints>,
}

impl Txn {
    /// Commits durably (fsync before return), unless the transaction came
    /// from [`super::Store::write_lazy`] (then it becomes durable with the
    /// next durable commit).
    ///
    /// # Errors
    /// [`StoreError::Db`] if the commit fails; then nothing of this
    /// transaction is stored and nothing may be acknowledged.
    pub fn commit(self) -> Result<(), StoreError> {
        let Txn {
            w,
            index,
            ops,
            blobs,
            dead_segments,
            released_segments,
            lazy,
            ..
        } = self;
        // Bytes first: the commit may reference them.
        if let Some(b) = &blobs {
            b.sync().map_err(io)?;
        }
        match w.commit() {
            Ok(()) => {
                index.apply(ops);
                if let Some(b) = &blobs {
                    if lazy {
                        b.delete_after_durable(dead_segments);
                    } else {
                        b.delete_now_durable(dead_segments);
                    }
                    if !released_segments.is_empty() {
                        b.mark_released(&released_segments);
                    }
                }
                Ok(())
            }
            Err(e) => {
                // The commit may or may not have reached the tables.
                index.invalidate();
                Err(db(e))
            }
        }
    }

    /// The index must be rebuilt after this transaction (it writes indexed
    /// tables directly, as store repair does).
    pub(super) fn rebuild_index(&mut self) {
        self.ops.push(Op::Rebuild);
    }

    pub(super) fn touch_all(&mut self) -> Result<(), StoreError> {
        self.w.open_table(BUNDLES).map_err(db)?;
        self.w.open_table(BUNDLE_BYTES).map_err(db)?;
        self.w.open_table(CHUNKS).map_err(db)?;
        self.w.open_table(CHUNK_BLOBS).map_err(db)?;
        self.w.open_table(BLOB_SEGMENTS).map_err(db)?;
        self.w.open_table(CID_BUNDLES).map_err(db)?;
        self.w.open_table(EXPIRY).map_err(db)?;
        self.w.open_table(HELD).map_err(db)?;
        self.w.open_table(FORWARDED).map_err(db)?;
        self.w.open_table(DELIVERED).map_err(db)?;
        self.w.open_table(DELIVERED_FORGET).map_err(db)?;
        self.w.open_table(RECORD_FORGET).map_err(db)?;
        self.w.open_multimap_table(INBOX_CHUNKS).map_err(db)?;
        self.w.open_table(PEERS).map_err(db)?;
        self.w.open_table(FILES).map_err(db)?;
        self.w.open_table(COUNTERS).map_err(db)?;
        self.w.open_table(META).map_err(db)?;
        self.w.open_table(JOBS_PENDING).map_err(db)?;
        self.w.open_table(ASSETS).map_err(db)?;
        Ok(())
    }

    /// Reads a bundle record inside this transaction.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn record(&self, key: &[u8]) -> Result<Option<BundleRecord>, StoreError> {
        let t = self.w.open_table(BUNDLES).map_err(db)?;
        get_cbor(&t, "bundles-0", key)
    }

    /// Writes a bundle record; keeps the held and expiry indexes in step with
    /// the record's state: a held state (`stored`/`in_flight`) is in `held-0`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn put_record(&mut self, rec: &BundleRecord) -> Result<(), StoreError> {
        let key = rec.id.to_key();
        self.w
            .open_table(BUNDLES)
            .map_err(db)?
            .insert(key.as_slice(), cbor(rec).as_slice())
            .map_err(db)?;
        let mut held = self.w.open_table(HELD).map_err(db)?;
        if rec.state.is_held() {
            held.insert(key.as_slice(), ()).map_err(db)?;
        } else {
            held.remove(key.as_slice()).map_err(db)?;
            drop(held);
            if self.record_retention_ms > 0 && rec.id.timestamp.time.0 != 0 {
                let at = rec.expiry_ms.saturating_add(self.record_retention_ms);
                let mut f = self.w.open_table(RECORD_FORGET).map_err(db)?;
                f.insert((at, key.as_slice()), ()).map_err(db)?;
                self.hints
                    .records
                    .fetch_min(at, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.ops.push(Op::Record(key, RecordHead::from(rec)));
        Ok(())
    }

    /// Stores the bundle's encoding (payload emptied for a chunk bundle).
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn put_bytes(&mut self, key: &[u8], bytes: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(BUNDLE_BYTES).map_err(db)?;
        t.insert(key, bytes).map_err(db)?;
        Ok(())
    }

    /// Drops the bundle's encoding.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn remove_bytes(&mut self, key: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(BUNDLE_BYTES).map_err(db)?;
        t.remove(key).map_err(db)?;
        Ok(())
    }

    /// Adds one reference to chunk `cid`, storing `data` if it is new.
    /// `data` must be the chunk's bytes (the caller verified them against
    /// the CID), so an existing row is simply rewritten with them.
    /// Returns the new reference count.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    /// A new chunk of [`BLOB_MIN_BYTES`] or more goes to a segment file
    /// (spec/store.md §Blob segments), made durable by [`Txn::commit`].
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure or a segment write error.
    pub fn chunk_ref(&mut self, cid: &[u8], data: &[u8]) -> Result<u64, StoreError> {
        let refs = self.chunk_refs(cid)?;
        if refs > 0 {
            self.chunk_set_refs(cid, refs + 1)?;
            return Ok(refs + 1);
        }
        match self.blobs.clone() {
            Some(b) if data.len() >= BLOB_MIN_BYTES => {
                let placed = b.append(data).map_err(io)?;
                let len = data.len() as u64;
                let mut t = self.w.open_table(CHUNK_BLOBS).map_err(db)?;
                t.insert(cid, (1, placed.segment, placed.offset, len))
                    .map_err(db)?;
                drop(t);
                self.segment_add(placed.segment, len as i64)?;
                if let Some(old) = placed.sealed {
                    self.segment_add(old, 0)?;
                }
            }
            _ => {
                let mut t = self.w.open_table(CHUNKS).map_err(db)?;
                t.insert(cid, (1, data)).map_err(db)?;
            }
        }
        Ok(1)
    }

    /// Adds `delta` live bytes to segment `id`; a segment left with none
    /// (and not being appended to) is removed after the commit.
    fn segment_add(&mut self, id: u64, delta: i64) -> Result<(), StoreError> {
        let mut t = self.w.open_table(BLOB_SEGMENTS).map_err(db)?;
        let cur = t.get(id).map_err(db)?.map_or(0, |g| g.value());
        let live = cur.saturating_add_signed(delta);
        let active = self.blobs.as_ref().and_then(|b| b.active_id());
        if delta < 0 && !self.released_segments.contains(&id) {
            self.released_segments.push(id);
        }
        if live == 0 && active != Some(id) {
            t.remove(id).map_err(db)?;
            if !self.dead_segments.contains(&id) {
                self.dead_segments.push(id);
            }
        } else {
            t.insert(id, live).map_err(db)?;
        }
        Ok(())
    }

    /// Copies blob chunk `cid` out of segment `from` into the active
    /// segment (compaction); returns the bytes moved (0 if the chunk is not
    /// in `from`).
    pub(super) fn chunk_move(&mut self, cid: &[u8], from: u64) -> Result<u64, StoreError> {
        let Some(b) = self.blobs.clone() else {
            return Ok(0);
        };
        let t = self.w.open_table(CHUNK_BLOBS).map_err(db)?;
        let row = t.get(cid).map_err(db)?.map(|g| g.value());
        drop(t);
        let Some((refs, seg, off, len)) = row.filter(|r| r.1 == from) else {
            return Ok(0);
        };
        let data = b.read(seg, off, len).map_err(io)?;
        let placed = b.append(&data).map_err(io)?;
        let mut t = self.w.open_table(CHUNK_BLOBS).map_err(db)?;
        t.insert(cid, (refs, placed.segment, placed.offset, len))
            .map_err(db)?;
        drop(t);
        self.segment_add(placed.segment, len as i64)?;
        if let Some(old) = placed.sealed {
            self.segment_add(old, 0)?;
        }
        self.segment_add(from, -(len as i64))?;
        Ok(len)
    }

    /// Rewrites `blob-segments-0` from the `chunk-blobs-0` rows (repair);
    /// a segment left without live bytes loses its row, and its file is
    /// removed at the next start.
    pub(super) fn recount_segments(&mut self) -> Result<(), StoreError> {
        let mut live = std::collections::BTreeMap::<u64, u64>::new();
        let t = self.w.open_table(CHUNK_BLOBS).map_err(db)?;
        for row in t.iter().map_err(db)? {
            let (_, v) = row.map_err(db)?;
            let (_, seg, _, len) = v.value();
            *live.entry(seg).or_default() += len;
        }
        drop(t);
        let mut s = self.w.open_table(BLOB_SEGMENTS).map_err(db)?;
        s.retain(|_, _| false).map_err(db)?;
        for (seg, n) in live {
            s.insert(seg, n).map_err(db)?;
        }
        Ok(())
    }

    /// Removes segment `id` after the commit if it has no live bytes.
    pub(super) fn segment_release_if_empty(&mut self, id: u64) -> Result<(), StoreError> {
        self.segment_add(id, 0)
    }

    /// The reference count of chunk `cid` (0 if absent).
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn chunk_refs(&self, cid: &[u8]) -> Result<u64, StoreError> {
        let t = self.w.open_table(CHUNKS).map_err(db)?;
        if let Some(g) = t.get(cid).map_err(db)? {
            return Ok(g.value().0);
        }
        let t = self.w.open_table(CHUNK_BLOBS).map_err(db)?;
        Ok(t.get(cid).map_err(db)?.map_or(0, |g| g.value().0))
    }

    /// Sets the reference count of stored chunk `cid` to `n` (at 0 the
    /// chunk is removed). No-op if `cid` is not stored.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn chunk_set_refs(&mut self, cid: &[u8], n: u64) -> Result<(), StoreError> {
        let mut t = self.w.open_table(CHUNKS).map_err(db)?;
        let inline = t.get(cid).map_err(db)?.map(|g| g.value().1.to_vec());
        if let Some(data) = inline {
            if n == 0 {
                t.remove(cid).map_err(db)?;
            } else {
                t.insert(cid, (n, data.as_slice())).map_err(db)?;
            }
            return Ok(());
        }
        drop(t);
        let mut t = self.w.open_table(CHUNK_BLOBS).map_err(db)?;
        let Some((_, seg, off, len)) = t.get(cid).map_err(db)?.map(|g| g.value()) else {
            return Ok(());
        };
        if n > 0 {
            t.insert(cid, (n, seg, off, len)).map_err(db)?;
            return Ok(());
        }
        t.remove(cid).map_err(db)?;
        drop(t);
        self.segment_add(seg, -(len as i64))
    }

    /// Removes one reference to chunk `cid`, deleting the bytes at zero.
    /// Returns the remaining count (0 if it was absent).
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn chunk_unref(&mut self, cid: &[u8]) -> Result<u64, StoreError> {
        let n = self.chunk_refs(cid)?.saturating_sub(1);
        self.chunk_set_refs(cid, n)?;
        Ok(n)
    }

    /// True if chunk `cid` is stored.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn has_chunk(&self, cid: &[u8]) -> Result<bool, StoreError> {
        Ok(self.chunk_refs(cid)? > 0)
    }

    /// Records the latest chunk bundle for `cid`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn set_chunk_bundle(&mut self, cid: &[u8], key: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(CID_BUNDLES).map_err(db)?;
        t.insert(cid, key).map_err(db)?;
        Ok(())
    }

    /// Adds `key` to the expiry index at `expiry_ms`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn expiry_add(&mut self, expiry_ms: u64, key: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(EXPIRY).map_err(db)?;
        t.insert((expiry_ms, key), ()).map_err(db)?;
        self.ops.push(Op::ExpiryAdd(expiry_ms, key.to_vec()));
        Ok(())
    }

    /// Removes `key` from the expiry index.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn expiry_remove(&mut self, expiry_ms: u64, key: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(EXPIRY).map_err(db)?;
        t.remove((expiry_ms, key)).map_err(db)?;
        self.ops.push(Op::ExpiryRemove(expiry_ms, key.to_vec()));
        Ok(())
    }

    /// Notes that bundle `key` was given to `peer` at `now_ms`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn mark_forwarded(
        &mut self,
        peer: &str,
        key: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut t = self.w.open_table(FORWARDED).map_err(db)?;
        t.insert((peer, key), now_ms).map_err(db)?;
        self.ops.push(Op::Forwarded(peer.into(), key.to_vec()));
        Ok(())
    }

    /// Drops the per-peer forwarding state of bundle `key` (a bundle no
    /// longer held has nothing left to offer): the rows for `peers` (see
    /// [`super::Store::forwarded_peers`]) and those this transaction added.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn forwarded_remove(&mut self, key: &[u8], peers: &[String]) -> Result<(), StoreError> {
        let added: Vec<Box<str>> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Forwarded(p, k) if k.as_slice() == key => Some(p.clone()),
                _ => None,
            })
            .collect();
        if peers.is_empty() && added.is_empty() {
            return Ok(());
        }
        let mut t = self.w.open_table(FORWARDED).map_err(db)?;
        for p in peers
            .iter()
            .map(String::as_str)
            .chain(added.iter().map(|p| &**p))
        {
            t.remove((p, key)).map_err(db)?;
        }
        self.ops.push(Op::ForwardedRemove(key.to_vec()));
        Ok(())
    }

    /// Marks bundle `key` delivered at `now_ms`. Returns false if it already was.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn mark_delivered(
        &mut self,
        key: &[u8],
        now_ms: u64,
        forget_at_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut t = self.w.open_table(DELIVERED).map_err(db)?;
        if t.get(key).map_err(db)?.is_some() {
            return Ok(false);
        }
        t.insert(key, now_ms).map_err(db)?;
        drop(t);
        if let Some(at) = forget_at_ms {
            let mut f = self.w.open_table(DELIVERED_FORGET).map_err(db)?;
            f.insert((at, key), ()).map_err(db)?;
            self.hints
                .delivered
                .fetch_min(at, std::sync::atomic::Ordering::Relaxed);
        }
        let from = self.record(key)?.and_then(|r| r.received_from);
        self.ops.push(Op::Delivered(key.to_vec(), from));
        Ok(true)
    }

    /// Drops up to `limit` delivered-bundle entries whose forget time
    /// ([`DELIVERED_FORGET`]) is at or before `now_ms`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn forget_delivered(&mut self, now_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let due = self.take_due(DELIVERED_FORGET, now_ms, limit)?;
        let mut d = self.w.open_table(DELIVERED).map_err(db)?;
        for key in &due {
            d.remove(key.as_slice()).map_err(db)?;
            self.ops.push(Op::Undelivered(key.clone()));
        }
        Ok(due.len())
    }

    /// Removes and returns (keys of) up to `limit` rows of a forget-time
    /// table whose time is at or before `now_ms`, earliest first.
    fn take_due(
        &mut self,
        table: redb::TableDefinition<(u64, &[u8]), ()>,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut f = self.w.open_table(table).map_err(db)?;
        let end = (now_ms.saturating_add(1), &[][..]);
        let mut due = Vec::new();
        for row in f.range(..end).map_err(db)?.take(limit) {
            let (k, _) = row.map_err(db)?;
            let (ms, key) = k.value();
            due.push((ms, key.to_vec()));
        }
        for (ms, key) in &due {
            f.remove((*ms, key.as_slice())).map_err(db)?;
        }
        Ok(due.into_iter().map(|(_, k)| k).collect())
    }

    /// Drops up to `limit` finished bundle records whose forget time
    /// ([`RECORD_FORGET`]) is at or before `now_ms` (a record held again is
    /// kept); returns how many records were dropped.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn forget_records(&mut self, now_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let due = self.take_due(RECORD_FORGET, now_ms, limit)?;
        let mut n = 0;
        for key in &due {
            if self.record(key)?.is_some_and(|r| !r.state.is_held()) {
                let mut t = self.w.open_table(BUNDLES).map_err(db)?;
                t.remove(key.as_slice()).map_err(db)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// True if bundle `key` was delivered here.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn is_delivered(&self, key: &[u8]) -> Result<bool, StoreError> {
        let t = self.w.open_table(DELIVERED).map_err(db)?;
        Ok(t.get(key).map_err(db)?.is_some())
    }

    /// Keeps delivered chunk bundle `key` (and one chunk reference) until
    /// its file is reassembled.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn inbox_add(&mut self, cid: &[u8], key: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_multimap_table(INBOX_CHUNKS).map_err(db)?;
        t.insert(cid, key).map_err(db)?;
        Ok(())
    }

    /// Removes one inbox entry (`cid`, `key`). Returns true if it was there.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn inbox_remove(&mut self, cid: &[u8], key: &[u8]) -> Result<bool, StoreError> {
        let mut t = self.w.open_multimap_table(INBOX_CHUNKS).map_err(db)?;
        t.remove(cid, key).map_err(db)
    }

    /// Keys of delivered chunk bundles waiting in the inbox for `cid`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn inbox_keys(&self, cid: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let t = self.w.open_multimap_table(INBOX_CHUNKS).map_err(db)?;
        let mut out = Vec::new();
        for v in t.get(cid).map_err(db)? {
            out.push(v.map_err(db)?.value().to_vec());
        }
        Ok(out)
    }

    /// Reads a peer record inside this transaction.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn peer(&self, node_id: &str) -> Result<Option<PeerRecord>, StoreError> {
        let t = self.w.open_table(PEERS).map_err(db)?;
        match t.get(node_id).map_err(db)? {
            Some(v) => Ok(Some(uncbor("peers-0", v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes a peer record.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn put_peer(&mut self, p: &PeerRecord) -> Result<(), StoreError> {
        let mut t = self.w.open_table(PEERS).map_err(db)?;
        t.insert(p.node_id.as_str(), cbor(p).as_slice())
            .map_err(db)?;
        Ok(())
    }

    /// Removes a peer record.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn remove_peer(&mut self, node_id: &str) -> Result<(), StoreError> {
        let mut t = self.w.open_table(PEERS).map_err(db)?;
        t.remove(node_id).map_err(db)?;
        Ok(())
    }

    /// Reads a file record inside this transaction.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn file(&self, cid: &[u8]) -> Result<Option<FileRecord>, StoreError> {
        let t = self.w.open_table(FILES).map_err(db)?;
        get_cbor(&t, "files-0", cid)
    }

    /// Writes a file record.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn put_file(&mut self, f: &FileRecord) -> Result<(), StoreError> {
        let mut t = self.w.open_table(FILES).map_err(db)?;
        t.insert(f.manifest_cid.as_slice(), cbor(f).as_slice())
            .map_err(db)?;
        Ok(())
    }

    /// Adds `n` to counter `name`.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn bump(&mut self, name: &str, n: u64) -> Result<(), StoreError> {
        let mut t = self.w.open_table(COUNTERS).map_err(db)?;
        let cur = t.get(name).map_err(db)?.map_or(0, |g| g.value());
        t.insert(name, cur.saturating_add(n)).map_err(db)?;
        Ok(())
    }

    /// A meta value as u64.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn meta_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let t = self.w.open_table(META).map_err(db)?;
        Ok(t.get(key).map_err(db)?.and_then(|g| be_u64(g.value())))
    }

    /// Sets a meta value to raw bytes.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn set_meta_bytes(&mut self, key: &str, v: &[u8]) -> Result<(), StoreError> {
        let mut t = self.w.open_table(META).map_err(db)?;
        t.insert(key, v).map_err(db)?;
        Ok(())
    }

    /// Sets a meta value.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn set_meta_u64(&mut self, key: &str, v: u64) -> Result<(), StoreError> {
        let mut t = self.w.open_table(META).map_err(db)?;
        t.insert(key, v.to_be_bytes().as_slice()).map_err(db)?;
        Ok(())
    }
}
