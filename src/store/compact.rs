//! Reclaiming dead space in blob segments (spec/store.md §Blob segments):
//! a sealed segment whose released bytes reach [`COMPACT_DEAD_BYTES`], and
//! none of whose bytes were released in the last [`COMPACT_QUIET_MS`], has
//! its live chunks copied to the active segment in one transaction; the
//! old segment is then deleted after the commit like any emptied one.
//!
//! The quiet rule keeps compaction off segments that are still draining:
//! while a node hands a large file on, its segments empty in the order they
//! were written and are deleted whole, with nothing copied. Compacting them
//! half-way copied their remaining live bytes only for them to be released
//! moments later (≈ 320 MB copied and fsynced at the sender of a 1 GiB
//! folder sync, on the agent's thread).

use super::tables::{BLOB_SEGMENTS, CHUNK_BLOBS};
use super::{Store, StoreError, db};
use redb::ReadableTable;

/// A sealed segment with at least this many dead bytes (its file length
/// minus its live bytes) is compacted.
pub const COMPACT_DEAD_BYTES: u64 = super::blobs::SEGMENT_MAX_BYTES / 2;

/// A segment is compacted only once no byte of it has been released for
/// this long (ms, on the clock passed to [`Store::compact_blobs`]); the
/// custody timeout's default, so a contact that stalls mid-transfer counts
/// as over.
pub const COMPACT_QUIET_MS: u64 = 30_000;

/// What one [`Store::compact_blobs`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    /// The segment emptied, if any.
    pub segment: Option<u64>,
    /// Chunks moved out of it.
    pub chunks: u64,
    /// Live bytes copied.
    pub bytes: u64,
}

impl Store {
    /// Compacts at most one sealed segment: the one with the fewest live
    /// bytes among those with [`COMPACT_DEAD_BYTES`] or more dead space, at
    /// most `max_live_bytes` live (the copy's size bound) and no release in
    /// the [`COMPACT_QUIET_MS`] before `now_ms` (ms on any clock that the
    /// caller keeps using; the agent passes DTN time). A no-op for stores
    /// without segment files, and cheap when no segment has become quiet
    /// since the last call. Segments left from an earlier run count as
    /// quiet at the first call.
    ///
    /// # Errors
    /// [`StoreError`] if the tables, a segment read or the commit fail;
    /// then nothing moved (the transaction is dropped) and the segments
    /// looked at are looked at again at the next call.
    pub fn compact_blobs(&self, max_live_bytes: u64, now_ms: u64) -> Result<Compacted, StoreError> {
        let Some(blobs) = self.blobs.clone() else {
            return Ok(Compacted::default());
        };
        let quiet = blobs.quiet_segments(now_ms, COMPACT_QUIET_MS);
        if quiet.is_empty() {
            return Ok(Compacted::default());
        }
        let (segment, rest) = match self.pick_segment(&blobs, &quiet, max_live_bytes) {
            Ok((Some(segment), rest)) => (segment, rest),
            Ok((None, _)) => return Ok(Compacted::default()),
            Err(e) => {
                blobs.keep_quiet(&quiet);
                return Err(e);
            }
        };
        // Other candidates wait for the next call (one copy per call).
        blobs.keep_quiet(&rest);
        let out = self.move_out(segment);
        if out.is_err() {
            blobs.keep_quiet(&[segment]);
        }
        out
    }

    /// Among the `quiet` segments, the one to compact (fewest live bytes
    /// of those that qualify) and the other qualifying ones (looked at
    /// again next time). The active segment is left out; it is looked at
    /// again once sealed.
    fn pick_segment(
        &self,
        blobs: &super::blobs::Blobs,
        quiet: &[u64],
        max_live_bytes: u64,
    ) -> Result<(Option<u64>, Vec<u64>), StoreError> {
        let active = blobs.active_id();
        let r = self.read()?;
        let t = r.open_table(BLOB_SEGMENTS).map_err(db)?;
        let mut fit = Vec::new();
        let mut again = Vec::new();
        for &id in quiet {
            let Some(live) = t.get(id).map_err(db)?.map(|g| g.value()) else {
                continue; // already deleted
            };
            if Some(id) == active {
                continue;
            }
            let dead = blobs.segment_len(id).unwrap_or(0).saturating_sub(live);
            if dead >= COMPACT_DEAD_BYTES && live <= max_live_bytes {
                fit.push((live, id));
            }
        }
        fit.sort_unstable();
        let mut ids = fit.into_iter().map(|(_, id)| id);
        let first = ids.next();
        again.extend(ids);
        Ok((first, again))
    }

    /// When [`Store::compact_blobs`] may next find a quiet segment (ms on
    /// its clock; 0: at the next call), `None` if no segment waits (then
    /// only a release or a sealed segment brings work).
    pub fn next_compaction_ms(&self) -> Option<u64> {
        self.blobs.as_ref()?.next_quiet_ms(COMPACT_QUIET_MS)
    }

    /// Copies the live chunks of `segment` to the active segment in one
    /// transaction; the emptied segment goes after the commit.
    fn move_out(&self, segment: u64) -> Result<Compacted, StoreError> {
        let mut moved = Vec::new();
        {
            let r = self.read()?;
            let t = r.open_table(CHUNK_BLOBS).map_err(db)?;
            for row in t.iter().map_err(db)? {
                let (cid, v) = row.map_err(db)?;
                if v.value().1 == segment {
                    moved.push(cid.value().to_vec());
                }
            }
        }
        let mut txn = self.write()?;
        let mut out = Compacted {
            segment: Some(segment),
            ..Compacted::default()
        };
        for cid in &moved {
            out.bytes += txn.chunk_move(cid, segment)?;
            out.chunks += 1;
        }
        // Its live count is now 0: removed after the commit.
        txn.segment_release_if_empty(segment)?;
        txn.commit()?;
        tracing::info!(
            segment,
            chunks = out.chunks,
            bytes = out.bytes,
            "blob segment compacted"
        );
        Ok(out)
    }
}
