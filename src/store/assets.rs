//! Which other nodes hold which files, learned from asset adverts
//! (spec/assets.md). Table [`ASSETS`]: one row per (manifest CID, holder).
//!
//! Rows are merged newest-wins: a row is replaced only by one seen later
//! (or seen at the same time over fewer hops). The table is bounded by the
//! caller's row limit; [`Txn::asset_evict`] removes the oldest rows.

use super::tables::ASSETS;
use super::{Store, StoreError, Txn, cbor, db, uncbor};
use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

/// Table name, for errors.
const TABLE: &str = "assets-0";

/// Most holders returned for one CID by [`Store::asset_holders`].
pub const MAX_HOLDERS_PER_CID: usize = 256;

/// What is known about one holder of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRecord {
    /// The peer whose advert told us (node ID); equals the holder when the
    /// holder advertised its own file to us.
    pub via: String,
    /// When the holder was last known to hold the file, DTN ms (the
    /// holder's own advert time, carried unchanged across hops).
    pub seen_ms: u64,
    /// Advert hops from the holder to this node (1: the holder told us).
    pub hops: u8,
    /// Number of chunks of the file (0 if unknown).
    pub chunks: u32,
}

/// One row of [`ASSETS`]: (manifest CID bytes, holder node ID, record).
pub type AssetRow = (Vec<u8>, String, AssetRecord);

impl AssetRecord {
    /// Whether `self` should replace `old`: seen later, or seen at the
    /// same time over fewer hops.
    pub fn newer_than(&self, old: &AssetRecord) -> bool {
        (self.seen_ms, std::cmp::Reverse(self.hops)) > (old.seen_ms, std::cmp::Reverse(old.hops))
    }
}

impl Store {
    /// The holders recorded for manifest `cid` (at most
    /// [`MAX_HOLDERS_PER_CID`]), by holder node ID.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt row.
    pub fn asset_holders(&self, cid: &[u8]) -> Result<Vec<(String, AssetRecord)>, StoreError> {
        let t = self.read()?.open_table(ASSETS).map_err(db)?;
        let mut out = Vec::new();
        for row in t.range((cid, "")..).map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (c, holder) = k.value();
            if c != cid || out.len() >= MAX_HOLDERS_PER_CID {
                break;
            }
            out.push((holder.to_owned(), uncbor(TABLE, v.value())?));
        }
        Ok(out)
    }

    /// Every row, in key order (the table is bounded by its row limit).
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt row.
    pub fn asset_rows(&self) -> Result<Vec<AssetRow>, StoreError> {
        let t = self.read()?.open_table(ASSETS).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (c, holder) = k.value();
            out.push((c.to_vec(), holder.to_owned(), uncbor(TABLE, v.value())?));
        }
        Ok(out)
    }

    /// Number of rows.
    ///
    /// # Errors
    /// [`StoreError::Db`] on engine failure.
    pub fn asset_count(&self) -> Result<u64, StoreError> {
        let t = self.read()?.open_table(ASSETS).map_err(db)?;
        t.len().map_err(db)
    }
}

impl Txn {
    /// The row of (`cid`, `holder`), if any.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt row.
    pub fn asset_get(&self, cid: &[u8], holder: &str) -> Result<Option<AssetRecord>, StoreError> {
        let t = self.w.open_table(ASSETS).map_err(db)?;
        match t.get((cid, holder)).map_err(db)? {
            Some(v) => Ok(Some(uncbor(TABLE, v.value())?)),
            None => Ok(None),
        }
    }

    /// Stores `rec` for (`cid`, `holder`) unless the row there is newer
    /// ([`AssetRecord::newer_than`]). Returns whether it was written.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt row.
    pub fn asset_merge(
        &mut self,
        cid: &[u8],
        holder: &str,
        rec: &AssetRecord,
    ) -> Result<bool, StoreError> {
        let mut t = self.w.open_table(ASSETS).map_err(db)?;
        let old = match t.get((cid, holder)).map_err(db)? {
            Some(v) => Some(uncbor::<AssetRecord>(TABLE, v.value())?),
            None => None,
        };
        if old.is_some_and(|o| !rec.newer_than(&o)) {
            return Ok(false);
        }
        t.insert((cid, holder), cbor(rec).as_slice()).map_err(db)?;
        Ok(true)
    }

    /// Keeps the table within `max_rows`: when it holds more, removes the
    /// oldest rows (smallest `seen_ms`) and every row seen before
    /// `min_seen_ms`, down to 7/8 of `max_rows` so that the scan this takes
    /// happens once per `max_rows / 8` inserts at most. Returns the number
    /// of rows removed.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt row.
    pub fn asset_evict(&mut self, max_rows: u64, min_seen_ms: u64) -> Result<u64, StoreError> {
        let mut t = self.w.open_table(ASSETS).map_err(db)?;
        let len = t.len().map_err(db)?;
        if len <= max_rows {
            return Ok(0);
        }
        let mut by_age: Vec<(u64, Vec<u8>, String)> = Vec::with_capacity(len as usize);
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (c, holder) = k.value();
            let rec: AssetRecord = uncbor(TABLE, v.value())?;
            by_age.push((rec.seen_ms, c.to_vec(), holder.to_owned()));
        }
        by_age.sort_unstable();
        let keep = max_rows - max_rows / 8;
        let surplus = len.saturating_sub(keep);
        let mut removed = 0;
        for (seen, c, holder) in by_age {
            if removed >= surplus && seen >= min_seen_ms {
                break;
            }
            t.remove((c.as_slice(), holder.as_str())).map_err(db)?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(via: &str, seen_ms: u64, hops: u8) -> AssetRecord {
        AssetRecord {
            via: via.into(),
            seen_ms,
            hops,
            chunks: 3,
        }
    }

    #[test]
    fn newer_rows_win_and_older_ones_are_ignored() {
        let s = Store::open_in_memory().unwrap();
        let mut t = s.write().unwrap();
        assert!(
            t.asset_merge(b"m1", "dtn://c/", &rec("dtn://b/", 100, 2))
                .unwrap()
        );
        assert!(
            !t.asset_merge(b"m1", "dtn://c/", &rec("dtn://x/", 50, 1))
                .unwrap()
        );
        assert!(
            !t.asset_merge(b"m1", "dtn://c/", &rec("dtn://x/", 100, 3))
                .unwrap()
        );
        assert!(
            t.asset_merge(b"m1", "dtn://c/", &rec("dtn://c/", 100, 1))
                .unwrap()
        );
        t.asset_merge(b"m2", "dtn://d/", &rec("dtn://d/", 7, 1))
            .unwrap();
        t.asset_merge(b"m0", "dtn://e/", &rec("dtn://e/", 7, 1))
            .unwrap();
        t.commit().unwrap();
        let h = s.asset_holders(b"m1").unwrap();
        assert_eq!(h, vec![("dtn://c/".to_string(), rec("dtn://c/", 100, 1))]);
        assert_eq!(s.asset_count().unwrap(), 3);
        assert!(s.asset_holders(b"m").unwrap().is_empty());
    }

    #[test]
    fn eviction_removes_the_oldest_and_the_expired() {
        let s = Store::open_in_memory().unwrap();
        let mut t = s.write().unwrap();
        for i in 0..20u64 {
            let holder = format!("dtn://n{i}/");
            t.asset_merge(b"m", &holder, &rec(&holder, 1000 + i, 1))
                .unwrap();
        }
        assert_eq!(t.asset_evict(20, 0).unwrap(), 0);
        assert_eq!(t.asset_evict(16, 0).unwrap(), 6);
        t.commit().unwrap();
        let left = s.asset_rows().unwrap();
        assert_eq!(left.len(), 14);
        assert!(left.iter().all(|(_, _, r)| r.seen_ms >= 1006));
        let mut t = s.write().unwrap();
        assert_eq!(t.asset_evict(8, 1010).unwrap(), 7);
        t.commit().unwrap();
        assert!(
            s.asset_rows()
                .unwrap()
                .iter()
                .all(|(_, _, r)| r.seen_ms >= 1013)
        );
    }
}
