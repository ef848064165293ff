//! Reclaiming dead space in blob segments (spec/store.md §Blob segments):
//! a sealed segment whose released bytes reach [`COMPACT_DEAD_BYTES`] has
//! its live chunks copied to the active segment in one transaction; the
//! old segment is then deleted after the commit like any emptied one.

use super::tables::{BLOB_SEGMENTS, CHUNK_BLOBS};
use super::{Store, StoreError, db};
use redb::ReadableTable;

/// A sealed segment with at least this many dead bytes (its file length
/// minus its live bytes) is compacted.
pub const COMPACT_DEAD_BYTES: u64 = super::blobs::SEGMENT_MAX_BYTES / 2;

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
    /// bytes among those with [`COMPACT_DEAD_BYTES`] or more dead space and
    /// at most `max_live_bytes` live (the copy's size bound). A no-op for
    /// stores without segment files, and cheap when nothing was released
    /// since the last call.
    ///
    /// # Errors
    /// [`StoreError`] if the tables, a segment read or the commit fail;
    /// then nothing moved (the transaction is dropped).
    pub fn compact_blobs(&self, max_live_bytes: u64) -> Result<Compacted, StoreError> {
        let Some(blobs) = self.blobs.clone() else {
            return Ok(Compacted::default());
        };
        if !blobs.take_released() {
            return Ok(Compacted::default());
        }
        let active = blobs.active_id();
        let mut best: Option<(u64, u64)> = None;
        {
            let r = self.read()?;
            let t = r.open_table(BLOB_SEGMENTS).map_err(db)?;
            for row in t.iter().map_err(db)? {
                let (id, live) = row.map_err(db)?;
                let (id, live) = (id.value(), live.value());
                let len = blobs.segment_len(id).unwrap_or(0);
                let dead = len.saturating_sub(live);
                if Some(id) != active
                    && dead >= COMPACT_DEAD_BYTES
                    && live <= max_live_bytes
                    && best.is_none_or(|(_, l)| live < l)
                {
                    best = Some((id, live));
                }
            }
        }
        let Some((segment, _)) = best else {
            return Ok(Compacted::default());
        };
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
