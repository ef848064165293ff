//! Store verification and safe repair (`spore doctor`).
//!
//! [`check`] reads the whole store in one read transaction and verifies the
//! invariants of spec/store.md ("Invariants"):
//! - `held-0` holds exactly the records in a held state (`stored`/`in_flight`);
//! - every held record has its bytes in `bundle-bytes-0` and its
//!   `(expiry_ms, key)` entry in `expiry-0`;
//! - every `expiry-0` entry points to an existing record;
//! - every `inbox-chunks-0` entry points to a delivered chunk record of that CID;
//! - every `chunks-0` refcount equals its owners (held chunk bundles plus
//!   valid inbox entries), no chunk row is without owners, and no owner's
//!   chunk row is missing;
//! - `meta-0/held_bytes` equals the sum of `size_bytes` of held records.
//!
//! [`repair`] fixes what can be fixed without losing data: it rebuilds
//! indexes, refcounts and `held_bytes` from the records, drops dangling index
//! entries and chunks nobody owns. It never deletes a bundle record, a held
//! bundle's bytes, or a chunk that something owns; those problems (missing
//! bytes, missing chunk, undecodable record) are reported and left as they are.
//!
//! Both are full scans (cost linear in the store size): tools only, never on
//! the node's hot path. Run them while the node is stopped.

use super::records::{BundleRecord, PayloadKind};
use super::tables::*;
use super::{Store, StoreError, Txn, be_u64, db, uncbor};
use crate::bundle::BundleId;
use redb::{ReadTransaction, ReadableMultimapTable, ReadableTable};
use serde::ser::SerializeStruct;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One broken invariant. Keys are bundle keys (`BundleId::to_key`), CIDs
/// binary CIDv1; [`fmt::Display`] renders them as bundle IDs and CID text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A `bundles-0` value does not decode (not repairable).
    UndecodableRecord {
        /// Bundle key.
        key: Vec<u8>,
        /// Decoder message.
        detail: String,
    },
    /// A `held-0` entry whose record is missing or not in a held state.
    HeldDangling {
        /// Bundle key.
        key: Vec<u8>,
    },
    /// A record in a held state that is missing from `held-0`.
    HeldNotIndexed {
        /// Bundle key.
        key: Vec<u8>,
    },
    /// A held record without bytes in `bundle-bytes-0` (not repairable).
    HeldWithoutBytes {
        /// Bundle key.
        key: Vec<u8>,
    },
    /// A held record without its `expiry-0` entry.
    HeldWithoutExpiry {
        /// Bundle key.
        key: Vec<u8>,
        /// The record's expiry, DTN ms.
        expiry_ms: u64,
    },
    /// An `expiry-0` entry whose record does not exist.
    ExpiryDangling {
        /// Expiry, DTN ms.
        expiry_ms: u64,
        /// Bundle key.
        key: Vec<u8>,
    },
    /// An `inbox-chunks-0` entry that is not a delivered chunk record of its CID.
    InboxDangling {
        /// Chunk CID.
        cid: Vec<u8>,
        /// Bundle key.
        key: Vec<u8>,
    },
    /// A `chunks-0` refcount that differs from the number of owners.
    ChunkRefcount {
        /// Chunk CID.
        cid: Vec<u8>,
        /// Count stored.
        stored: u64,
        /// Owners found.
        owners: u64,
    },
    /// A `chunks-0` row that nothing owns.
    OrphanChunk {
        /// Chunk CID.
        cid: Vec<u8>,
        /// Count stored.
        stored: u64,
    },
    /// Owners exist but the chunk's bytes are gone (not repairable).
    ChunkMissing {
        /// Chunk CID.
        cid: Vec<u8>,
        /// Owners found.
        owners: u64,
    },
    /// A `blob-segments-0` live count that differs from the bytes of the
    /// `chunk-blobs-0` rows in that segment.
    SegmentLive {
        /// Segment id.
        segment: u64,
        /// Live bytes stored (0 if no row).
        stored: u64,
        /// Sum of the lengths of its chunks.
        actual: u64,
    },
    /// `meta-0/held_bytes` differs from the sum over held records.
    HeldBytes {
        /// Value stored (None if absent or malformed).
        stored: Option<u64>,
        /// Sum of `size_bytes` of held records.
        actual: u64,
    },
}

impl Problem {
    /// A short stable name, e.g. `chunk_refcount` (JSON `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::UndecodableRecord { .. } => "undecodable_record",
            Problem::HeldDangling { .. } => "held_dangling",
            Problem::HeldNotIndexed { .. } => "held_not_indexed",
            Problem::HeldWithoutBytes { .. } => "held_without_bytes",
            Problem::HeldWithoutExpiry { .. } => "held_without_expiry",
            Problem::ExpiryDangling { .. } => "expiry_dangling",
            Problem::InboxDangling { .. } => "inbox_dangling",
            Problem::ChunkRefcount { .. } => "chunk_refcount",
            Problem::OrphanChunk { .. } => "orphan_chunk",
            Problem::ChunkMissing { .. } => "chunk_missing",
            Problem::SegmentLive { .. } => "segment_live",
            Problem::HeldBytes { .. } => "held_bytes",
        }
    }

    /// True if [`repair`] fixes it.
    pub fn repairable(&self) -> bool {
        !matches!(
            self,
            Problem::UndecodableRecord { .. }
                | Problem::HeldWithoutBytes { .. }
                | Problem::ChunkMissing { .. }
        )
    }
}

/// A bundle key as its bundle ID text, or hex if it does not parse.
fn key_text(k: &[u8]) -> String {
    BundleId::from_key(k).map_or_else(|_| format!("key {}", hex::encode(k)), |id| id.to_string())
}

/// A binary CID as text, or hex if it does not parse.
fn cid_text(c: &[u8]) -> String {
    crate::content::cid_from_bytes(c).map_or_else(|_| hex::encode(c), |c| c.to_string())
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UndecodableRecord { key, detail } => {
                write!(f, "record {} does not decode: {detail}", key_text(key))
            }
            Problem::HeldDangling { key } => write!(
                f,
                "held-0 lists {} but its record is missing or not held",
                key_text(key)
            ),
            Problem::HeldNotIndexed { key } => {
                write!(f, "held bundle {} is missing from held-0", key_text(key))
            }
            Problem::HeldWithoutBytes { key } => {
                write!(f, "held bundle {} has no stored bytes", key_text(key))
            }
            Problem::HeldWithoutExpiry { key, expiry_ms } => write!(
                f,
                "held bundle {} has no expiry-0 entry at {expiry_ms} ms",
                key_text(key)
            ),
            Problem::ExpiryDangling { expiry_ms, key } => write!(
                f,
                "expiry-0 entry ({expiry_ms} ms, {}) has no record",
                key_text(key)
            ),
            Problem::InboxDangling { cid, key } => write!(
                f,
                "inbox entry {} -> {} is not a delivered chunk of that CID",
                cid_text(cid),
                key_text(key)
            ),
            Problem::ChunkRefcount {
                cid,
                stored,
                owners,
            } => write!(
                f,
                "chunk {} has refcount {stored} but {owners} owners",
                cid_text(cid)
            ),
            Problem::OrphanChunk { cid, stored } => write!(
                f,
                "chunk {} (refcount {stored}) has no owner",
                cid_text(cid)
            ),
            Problem::ChunkMissing { cid, owners } => write!(
                f,
                "chunk {} is missing but has {owners} owners",
                cid_text(cid)
            ),
            Problem::SegmentLive {
                segment,
                stored,
                actual,
            } => write!(
                f,
                "blob segment {segment:016x} counts {stored} live bytes but its chunks hold {actual}"
            ),
            Problem::HeldBytes { stored, actual } => match stored {
                Some(s) => write!(f, "meta held_bytes is {s} but held records sum to {actual}"),
                None => write!(
                    f,
                    "meta held_bytes is missing; held records sum to {actual}"
                ),
            },
        }
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Problem", 3)?;
        st.serialize_field("kind", self.kind())?;
        st.serialize_field("repairable", &self.repairable())?;
        st.serialize_field("detail", &self.to_string())?;
        st.end()
    }
}

/// How much was scanned: row counts per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scanned {
    /// `bundles-0` rows.
    pub records: u64,
    /// `held-0` rows.
    pub held: u64,
    /// `expiry-0` rows.
    pub expiry: u64,
    /// `chunks-0` rows.
    pub chunks: u64,
    /// `inbox-chunks-0` (CID, key) pairs.
    pub inbox: u64,
}

/// The outcome of [`check`] or [`repair`].
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Problems present in the store now (after repair, for [`repair`]).
    pub problems: Vec<Problem>,
    /// Problems that [`repair`] fixed (always empty for [`check`]).
    pub repaired: Vec<Problem>,
    /// Row counts of the final scan.
    pub scanned: Scanned,
}

impl Report {
    /// True if no problem is left.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the store's invariants (read-only, one read transaction).
///
/// # Errors
/// [`StoreError::Db`] on engine failure. Undecodable records are reported
/// as [`Problem::UndecodableRecord`], not as errors.
pub fn check(store: &Store) -> Result<Report, StoreError> {
    let r = store.read()?;
    let mut report = scan(&r)?;
    // Blob chunks whose segment file is gone or too short; live counts.
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    for row in r.open_table(CHUNK_BLOBS).map_err(db)?.iter().map_err(db)? {
        let (cid, v) = row.map_err(db)?;
        let (refs, seg, off, len) = v.value();
        *live.entry(seg).or_default() += len;
        if !store.blob_present(seg, off + len) {
            report.problems.push(Problem::ChunkMissing {
                cid: cid.value().to_vec(),
                owners: refs,
            });
        }
    }
    let mut stored: BTreeMap<u64, u64> = BTreeMap::new();
    for row in r
        .open_table(BLOB_SEGMENTS)
        .map_err(db)?
        .iter()
        .map_err(db)?
    {
        let (k, v) = row.map_err(db)?;
        stored.insert(k.value(), v.value());
    }
    let segments: std::collections::BTreeSet<u64> =
        live.keys().chain(stored.keys()).copied().collect();
    for segment in segments {
        let (stored, actual) = (
            stored.get(&segment).copied().unwrap_or(0),
            live.get(&segment).copied().unwrap_or(0),
        );
        // A row at 0 is the active segment's (kept while appended to).
        if stored != actual {
            report.problems.push(Problem::SegmentLive {
                segment,
                stored,
                actual,
            });
        }
    }
    Ok(report)
}

/// Fixes every repairable problem in one write transaction, then checks
/// again. The returned report lists what was fixed (`repaired`) and what is
/// left (`problems`, only non-repairable kinds unless the store changed).
///
/// # Errors
/// [`StoreError::Db`] on engine failure; then nothing was changed.
pub fn repair(store: &Store) -> Result<Report, StoreError> {
    // Holding the write transaction first means the scan below sees exactly
    // the state the fixes apply to (one writer at a time).
    let mut txn = store.write()?;
    let found = check(store)?;
    let mut repaired = Vec::new();
    for p in found.problems {
        if fix(&mut txn, &p)? {
            repaired.push(p);
        }
    }
    if repaired
        .iter()
        .any(|p| matches!(p, Problem::SegmentLive { .. }))
    {
        txn.recount_segments()?;
    }
    txn.commit()?;
    let mut after = check(store)?;
    after.repaired = repaired;
    Ok(after)
}

/// Applies the fix for `p`; false if `p` is not repairable.
fn fix(txn: &mut Txn, p: &Problem) -> Result<bool, StoreError> {
    txn.rebuild_index();
    match p {
        Problem::HeldDangling { key } => {
            txn.w
                .open_table(HELD)
                .map_err(db)?
                .remove(key.as_slice())
                .map_err(db)?;
        }
        Problem::HeldNotIndexed { key } => {
            let mut t = txn.w.open_table(HELD).map_err(db)?;
            t.insert(key.as_slice(), ()).map_err(db)?;
        }
        Problem::HeldWithoutExpiry { key, expiry_ms } => txn.expiry_add(*expiry_ms, key)?,
        Problem::ExpiryDangling { expiry_ms, key } => txn.expiry_remove(*expiry_ms, key)?,
        Problem::InboxDangling { cid, key } => {
            txn.inbox_remove(cid, key)?;
        }
        Problem::ChunkRefcount { cid, owners, .. } => txn.chunk_set_refs(cid, *owners)?,
        Problem::OrphanChunk { cid, .. } => txn.chunk_set_refs(cid, 0)?,
        Problem::HeldBytes { actual, .. } => txn.set_meta_u64("held_bytes", *actual)?,
        // Recounted from the chunk rows after the other fixes (which may
        // release chunks), see `repair`.
        Problem::SegmentLive { .. } => {}
        Problem::UndecodableRecord { .. }
        | Problem::HeldWithoutBytes { .. }
        | Problem::ChunkMissing { .. } => return Ok(false),
    }
    Ok(true)
}

/// Everything the checks need, loaded once.
#[derive(Default)]
struct Loaded {
    records: BTreeMap<Vec<u8>, BundleRecord>,
    undecodable: BTreeSet<Vec<u8>>,
    held: BTreeSet<Vec<u8>>,
    expiry: BTreeSet<(u64, Vec<u8>)>,
    inbox: Vec<(Vec<u8>, Vec<u8>)>,
    chunks: BTreeMap<Vec<u8>, u64>,
}

fn scan(r: &ReadTransaction) -> Result<Report, StoreError> {
    let mut problems = Vec::new();
    let l = load(r, &mut problems)?;
    check_held(r, &l, &mut problems)?;
    check_expiry(&l, &mut problems);
    let owners = check_inbox(&l, &mut problems);
    check_chunks(&l, owners, &mut problems);
    let stored = r
        .open_table(META)
        .map_err(db)?
        .get("held_bytes")
        .map_err(db)?
        .and_then(|g| be_u64(g.value()));
    let actual: u64 = held_records(&l).map(|(_, rec)| rec.size_bytes).sum();
    // With undecodable records the true sum is unknown: do not judge it.
    if l.undecodable.is_empty() && stored.unwrap_or(0) != actual {
        problems.push(Problem::HeldBytes { stored, actual });
    }
    let scanned = Scanned {
        records: (l.records.len() + l.undecodable.len()) as u64,
        held: l.held.len() as u64,
        expiry: l.expiry.len() as u64,
        chunks: l.chunks.len() as u64,
        inbox: l.inbox.len() as u64,
    };
    Ok(Report {
        problems,
        repaired: Vec::new(),
        scanned,
    })
}

fn held_records(l: &Loaded) -> impl Iterator<Item = (&Vec<u8>, &BundleRecord)> {
    l.records.iter().filter(|(_, r)| r.state.is_held())
}

fn load(r: &ReadTransaction, problems: &mut Vec<Problem>) -> Result<Loaded, StoreError> {
    let mut l = Loaded::default();
    for row in r.open_table(BUNDLES).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        let key = k.value().to_vec();
        match uncbor::<BundleRecord>("bundles-0", v.value()) {
            Ok(rec) => {
                l.records.insert(key, rec);
            }
            Err(e) => {
                let detail = e.to_string();
                problems.push(Problem::UndecodableRecord {
                    key: key.clone(),
                    detail,
                });
                l.undecodable.insert(key);
            }
        }
    }
    for row in r.open_table(HELD).map_err(db)?.iter().map_err(db)? {
        l.held.insert(row.map_err(db)?.0.value().to_vec());
    }
    for row in r.open_table(EXPIRY).map_err(db)?.iter().map_err(db)? {
        let (k, _) = row.map_err(db)?;
        let (ms, key) = k.value();
        l.expiry.insert((ms, key.to_vec()));
    }
    let inbox = r.open_multimap_table(INBOX_CHUNKS).map_err(db)?;
    for row in inbox.iter().map_err(db)? {
        let (cid, keys) = row.map_err(db)?;
        for k in keys {
            l.inbox
                .push((cid.value().to_vec(), k.map_err(db)?.value().to_vec()));
        }
    }
    for row in r.open_table(CHUNKS).map_err(db)?.iter().map_err(db)? {
        let (cid, v) = row.map_err(db)?;
        l.chunks.insert(cid.value().to_vec(), v.value().0);
    }
    for row in r.open_table(CHUNK_BLOBS).map_err(db)?.iter().map_err(db)? {
        let (cid, v) = row.map_err(db)?;
        l.chunks.insert(cid.value().to_vec(), v.value().0);
    }
    Ok(l)
}

/// Invariants 1 and 2: held index, bytes and expiry entry of held records.
fn check_held(
    r: &ReadTransaction,
    l: &Loaded,
    problems: &mut Vec<Problem>,
) -> Result<(), StoreError> {
    for key in &l.held {
        let held = l.records.get(key).is_some_and(|rec| rec.state.is_held());
        if !held && !l.undecodable.contains(key) {
            problems.push(Problem::HeldDangling { key: key.clone() });
        }
    }
    let bytes = r.open_table(BUNDLE_BYTES).map_err(db)?;
    for (key, rec) in held_records(l) {
        if !l.held.contains(key) {
            problems.push(Problem::HeldNotIndexed { key: key.clone() });
        }
        if bytes.get(key.as_slice()).map_err(db)?.is_none() {
            problems.push(Problem::HeldWithoutBytes { key: key.clone() });
        }
        if !l.expiry.contains(&(rec.expiry_ms, key.clone())) {
            problems.push(Problem::HeldWithoutExpiry {
                key: key.clone(),
                expiry_ms: rec.expiry_ms,
            });
        }
    }
    Ok(())
}

fn check_expiry(l: &Loaded, problems: &mut Vec<Problem>) {
    for (ms, key) in &l.expiry {
        if !l.records.contains_key(key) && !l.undecodable.contains(key) {
            problems.push(Problem::ExpiryDangling {
                expiry_ms: *ms,
                key: key.clone(),
            });
        }
    }
}

/// Invariant 3: inbox entries are delivered chunk records of their CID.
/// Returns the owners of each chunk (held chunk bundles + valid inbox entries).
fn check_inbox(l: &Loaded, problems: &mut Vec<Problem>) -> BTreeMap<Vec<u8>, u64> {
    let mut owners: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (_, rec) in held_records(l) {
        if let (PayloadKind::Chunk, Some(cid)) = (rec.kind, &rec.cid) {
            *owners.entry(cid.clone()).or_default() += 1;
        }
    }
    for (cid, key) in &l.inbox {
        let valid = l.records.get(key).is_some_and(|rec| {
            rec.state == super::records::BundleState::Delivered
                && rec.kind == PayloadKind::Chunk
                && rec.cid.as_ref() == Some(cid)
        });
        if valid || l.undecodable.contains(key) {
            *owners.entry(cid.clone()).or_default() += 1;
        } else {
            problems.push(Problem::InboxDangling {
                cid: cid.clone(),
                key: key.clone(),
            });
        }
    }
    owners
}

/// Invariant 4: refcount = owners; no row without owners; no owner without a row.
fn check_chunks(l: &Loaded, owners: BTreeMap<Vec<u8>, u64>, problems: &mut Vec<Problem>) {
    for (cid, &stored) in &l.chunks {
        let n = owners.get(cid).copied().unwrap_or(0);
        if n == 0 {
            problems.push(Problem::OrphanChunk {
                cid: cid.clone(),
                stored,
            });
        } else if n != stored {
            problems.push(Problem::ChunkRefcount {
                cid: cid.clone(),
                stored,
                owners: n,
            });
        }
    }
    for (cid, n) in owners {
        if !l.chunks.contains_key(&cid) {
            problems.push(Problem::ChunkMissing { cid, owners: n });
        }
    }
}
