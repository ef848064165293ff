//! In-memory index of the store's routing-relevant tables.
//!
//! Contacts, summaries, window fills and wake-up times read the same few
//! tables again and again: which bundles are held (`held-0` with the head of
//! each record in `bundles-0`), which were delivered (`delivered-0`), which
//! were given to which peer (`forwarded-0`) and when held bundles expire
//! (`expiry-0`). Opening a redb read transaction and decoding CBOR records
//! for every such question costs tens of µs per event; this index answers
//! them from memory.
//!
//! The tables stay the source of truth: the index is built from them when
//! the store is opened (and re-opened), and every [`super::Txn`] method that
//! writes one of them records an [`Op`]; the ops are applied, in order, only
//! after the transaction commits, so the index always shows committed state.
//! A transaction that writes those tables directly (store repair) asks for a
//! rebuild instead.
//!
//! Memory: two entries per held bundle (its key and record head; its
//! expiry and key, for nearest-deadline-first scans), one per
//! delivered bundle (key and previous hop), per (bundle, peer) forwarding and
//! per expiry entry, i.e. about 100–200 bytes per bundle in those tables.
//! Peers in `forwarded-0` are interned: a bundle's forwarding list holds
//! small numbers, so asking "was this bundle given to peer P?" for every
//! held bundle at every contact costs one hash look-up and a scan of a few
//! integers, not a string comparison per peer it was given to (an epidemic
//! relay gives each bundle to nearly every node it meets).

use super::records::RecordHead;
use super::tables::{BUNDLES, DELIVERED, EXPIRY, FORWARDED, HELD};
use super::{StoreError, db, uncbor};
use crate::bundle::Eid;
use redb::{ReadTransaction, ReadableTable};
use std::collections::{BTreeMap, BTreeSet};

/// One change of an indexed table, recorded by a write transaction.
#[derive(Debug)]
pub(super) enum Op {
    /// A bundle record was written (`bundles-0`, and `held-0` by its state).
    Record(Vec<u8>, RecordHead),
    /// `(peer, key)` was added to `forwarded-0`.
    Forwarded(Box<str>, Vec<u8>),
    /// Key was added to `delivered-0`; the record's previous hop.
    Delivered(Vec<u8>, Option<Eid>),
    /// Every `forwarded-0` row of this key was removed (no longer held).
    ForwardedRemove(Vec<u8>),
    /// Key was removed from `delivered-0` (forgotten after its expiry).
    Undelivered(Vec<u8>),
    /// `(expiry ms, key)` was added to `expiry-0`.
    ExpiryAdd(u64, Vec<u8>),
    /// `(expiry ms, key)` was removed from `expiry-0`.
    ExpiryRemove(u64, Vec<u8>),
    /// The transaction wrote indexed tables directly: rebuild from the tables.
    Rebuild,
}

/// The index (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Index {
    /// `held-0` keys, with the head of their record (`None`: no record, a
    /// dangling entry that [`super::check`] reports).
    pub held: BTreeMap<Vec<u8>, Option<RecordHead>>,
    /// `delivered-0` keys with the previous hop of their record.
    pub delivered: BTreeMap<Vec<u8>, Option<Eid>>,
    /// `forwarded-0` as bundle key → interned peer node IDs (see
    /// [`Index::peer_id`]).
    pub forwarded: foldhash::HashMap<Vec<u8>, Vec<u32>>,
    /// Interned peer node IDs: `peer_names[n]` is peer `n`.
    peer_names: Vec<Box<str>>,
    /// Node ID → its number in `peer_names`.
    peer_ids: foldhash::HashMap<Box<str>, u32>,
    /// `expiry-0`.
    pub expiry: BTreeSet<(u64, Vec<u8>)>,
    /// The keys of `held` that have a record, by (expiry ms, key): the
    /// transmission order of spec/routing.md §7 (nearest deadline first).
    pub held_by_expiry: BTreeSet<(u64, Vec<u8>)>,
}

/// The fields of a record the delivered index keeps.
#[derive(serde::Deserialize)]
struct From {
    received_from: Option<Eid>,
}

impl Index {
    /// Builds the index from the committed tables.
    ///
    /// # Errors
    /// [`StoreError`] on engine failure or a corrupt record.
    pub fn build(r: &ReadTransaction) -> Result<Index, StoreError> {
        let recs = r.open_table(BUNDLES).map_err(db)?;
        let mut ix = Index::default();
        for row in r.open_table(HELD).map_err(db)?.iter().map_err(db)? {
            let key = row.map_err(db)?.0.value().to_vec();
            let head = match recs.get(key.as_slice()).map_err(db)? {
                Some(v) => Some(uncbor::<RecordHead>("bundles-0", v.value())?),
                None => None,
            };
            ix.hold(key, head);
        }
        for row in r.open_table(DELIVERED).map_err(db)?.iter().map_err(db)? {
            let key = row.map_err(db)?.0.value().to_vec();
            let from = match recs.get(key.as_slice()).map_err(db)? {
                Some(v) => uncbor::<From>("bundles-0", v.value())?.received_from,
                None => None,
            };
            ix.delivered.insert(key, from);
        }
        for row in r.open_table(FORWARDED).map_err(db)?.iter().map_err(db)? {
            let k = row.map_err(db)?.0;
            let (peer, key) = k.value();
            ix.add_forwarded(peer.into(), key.to_vec());
        }
        for row in r.open_table(EXPIRY).map_err(db)?.iter().map_err(db)? {
            let k = row.map_err(db)?.0;
            let (ms, key) = k.value();
            ix.expiry.insert((ms, key.to_vec()));
        }
        Ok(ix)
    }

    /// Records `key` as held with `head`, in `held` and `held_by_expiry`.
    fn hold(&mut self, key: Vec<u8>, head: Option<RecordHead>) {
        let old_ms = self
            .held
            .get(&key)
            .and_then(Option::as_ref)
            .map(|h| h.expiry_ms);
        let new_ms = head.as_ref().map(|h| h.expiry_ms);
        if old_ms != new_ms {
            if let Some(ms) = old_ms {
                self.held_by_expiry.remove(&(ms, key.clone()));
            }
            if let Some(ms) = new_ms {
                self.held_by_expiry.insert((ms, key.clone()));
            }
        }
        self.held.insert(key, head);
    }

    /// Forgets `key` as held.
    fn unhold(&mut self, key: &[u8]) {
        if let Some(Some(old)) = self.held.remove(key) {
            self.held_by_expiry.remove(&(old.expiry_ms, key.to_vec()));
        }
    }

    /// Held bundles with a record, nearest expiry first (ties by key).
    pub fn held_nearest_expiry(&self) -> impl Iterator<Item = (&[u8], &RecordHead)> {
        self.held_by_expiry.iter().filter_map(|(_, key)| {
            let head = self.held.get(key)?.as_ref()?;
            Some((key.as_slice(), head))
        })
    }

    fn add_forwarded(&mut self, peer: Box<str>, key: Vec<u8>) {
        let id = match self.peer_ids.get(&peer) {
            Some(&id) => id,
            None => {
                // One number per distinct peer ever given a bundle here
                // (until the next rebuild): bounded by the peers met.
                let id = self.peer_names.len() as u32;
                self.peer_names.push(peer.clone());
                self.peer_ids.insert(peer, id);
                id
            }
        };
        let peers = self.forwarded.entry(key).or_default();
        if !peers.contains(&id) {
            peers.push(id);
        }
    }

    /// The number `peer` is interned as, or `None` if no bundle was ever
    /// recorded as given to it (so none was).
    pub fn peer_id(&self, peer: &str) -> Option<u32> {
        self.peer_ids.get(peer).copied()
    }

    /// True if `(peer, key)` is in `forwarded-0`, `peer` as from
    /// [`Index::peer_id`].
    pub fn was_forwarded_to(&self, peer: u32, key: &[u8]) -> bool {
        self.forwarded.get(key).is_some_and(|ps| ps.contains(&peer))
    }

    /// The node IDs bundle `key` was given to (`forwarded-0`).
    pub fn forwarded_names(&self, key: &[u8]) -> impl Iterator<Item = &str> {
        let ids = self.forwarded.get(key).map_or(&[][..], |v| v.as_slice());
        ids.iter().map(|&n| &*self.peer_names[n as usize])
    }

    /// Applies the ops of one committed transaction, in order. Returns
    /// false if the index must be rebuilt from the tables instead.
    pub fn apply(&mut self, ops: Vec<Op>) -> bool {
        for op in ops {
            match op {
                Op::Record(key, head) => {
                    if let Some(from) = self.delivered.get_mut(&key) {
                        from.clone_from(&head.received_from);
                    }
                    if head.state.is_held() {
                        self.hold(key, Some(head));
                    } else {
                        self.unhold(&key);
                    }
                }
                Op::Forwarded(peer, key) => self.add_forwarded(peer, key),
                Op::Delivered(key, from) => {
                    self.delivered.insert(key, from);
                }
                Op::ForwardedRemove(key) => {
                    self.forwarded.remove(&key);
                }
                Op::Undelivered(key) => {
                    self.delivered.remove(&key);
                }
                Op::ExpiryAdd(ms, key) => {
                    self.expiry.insert((ms, key));
                }
                Op::ExpiryRemove(ms, key) => {
                    self.expiry.remove(&(ms, key));
                }
                Op::Rebuild => return false,
            }
        }
        true
    }
}

/// The index behind a lock, shared by the store and its transactions.
#[derive(Debug, Default)]
pub(super) struct IndexCell {
    ix: std::sync::RwLock<Index>,
    /// The index may not match the tables (a failed commit, a re-open, a
    /// repair): rebuild before the next read.
    stale: std::sync::atomic::AtomicBool,
}

impl IndexCell {
    /// A fresh cell that is rebuilt at its first read.
    pub fn new_stale() -> IndexCell {
        let c = IndexCell::default();
        c.invalidate();
        c
    }

    /// Applies a committed transaction's ops (or marks the index stale).
    pub fn apply(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let mut g = self.ix.write().unwrap_or_else(|e| e.into_inner());
        if !g.apply(ops) {
            self.invalidate();
        }
    }

    /// Marks the index stale.
    pub fn invalidate(&self) {
        self.stale.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Read access, rebuilding from `read()`'s snapshot first if stale.
    ///
    /// # Errors
    /// [`StoreError`] if a needed rebuild fails (the index stays stale).
    pub fn get(
        &self,
        read: impl FnOnce() -> Result<ReadTransaction, StoreError>,
    ) -> Result<std::sync::RwLockReadGuard<'_, Index>, StoreError> {
        use std::sync::atomic::Ordering;
        if self.stale.load(Ordering::Acquire) {
            let mut g = self.ix.write().unwrap_or_else(|e| e.into_inner());
            if self.stale.swap(false, Ordering::AcqRel) {
                match read().and_then(|r| Index::build(&r)) {
                    Ok(ix) => *g = ix,
                    Err(e) => {
                        self.invalidate();
                        return Err(e);
                    }
                }
            }
        }
        Ok(self.ix.read().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::records::{BundleRecord, BundleState, PayloadKind};
    use super::*;
    use crate::bundle::{BundleId, CreationTimestamp, DtnTime};

    fn record(seq: u64, from: &str, state: BundleState) -> BundleRecord {
        BundleRecord {
            id: BundleId {
                source: "dtn://src/".parse().unwrap(),
                timestamp: CreationTimestamp {
                    time: DtnTime(1_000),
                    sequence: seq,
                },
                fragment_offset: None,
            },
            destination: "dtn://dst/x".parse().unwrap(),
            report_to: Eid::DtnNone,
            state,
            custodian: None,
            received_from: Some(from.parse().unwrap()),
            received_at_ms: 1_000,
            expiry_ms: 10_000 + seq,
            size_bytes: 100 + seq,
            kind: PayloadKind::Plain,
            cid: None,
            flags: 0,
            history: Vec::new(),
            copies: 4,
            received_transmission: None,
        }
    }

    /// The live index, with forwarding lists sorted, next to one rebuilt
    /// from the committed tables.
    fn live_and_rebuilt(s: &Store) -> (String, String) {
        let show = |ix: &Index| {
            let mut fwd: Vec<(Vec<u8>, Vec<&str>)> = ix
                .forwarded
                .keys()
                .map(|k| {
                    let mut ps: Vec<&str> = ix.forwarded_names(k).collect();
                    ps.sort();
                    (k.clone(), ps)
                })
                .collect();
            fwd.sort();
            format!(
                "{:?} {:?} {:?} {:?} {:?}",
                ix.held, ix.held_by_expiry, ix.delivered, fwd, ix.expiry
            )
        };
        let live = show(&s.index().unwrap());
        let rebuilt = show(&Index::build(&s.read().unwrap()).unwrap());
        (live, rebuilt)
    }

    #[test]
    fn index_follows_commits_and_ignores_aborted_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let s = Store::open(&path).unwrap();
        let (a, b) = (
            record(1, "dtn://a/", BundleState::Stored),
            record(2, "dtn://b/", BundleState::Stored),
        );
        let mut t = s.write().unwrap();
        for r in [&a, &b] {
            t.put_record(r).unwrap();
            t.expiry_add(r.expiry_ms, &r.id.to_key()).unwrap();
        }
        t.mark_forwarded("dtn://c/", &a.id.to_key(), 5).unwrap();
        t.commit().unwrap();
        assert_eq!(s.next_expiry_ms().unwrap(), Some(a.expiry_ms));
        let mut owed = Vec::new();
        s.scan_owed::<StoreError>("dtn://c/", 10, |k, h| {
            owed.push((k.to_vec(), h.copies));
            Ok(true)
        })
        .unwrap();
        assert_eq!(owed, vec![(b.id.to_key(), 4)]);

        // Aborted: nothing of it shows.
        let before = live_and_rebuilt(&s);
        let mut t = s.write().unwrap();
        t.put_record(&record(1, "dtn://a/", BundleState::Expired))
            .unwrap();
        drop(t);
        assert_eq!(live_and_rebuilt(&s), before);

        // a delivered (not held), b given away; then a's record rewritten.
        let mut t = s.write().unwrap();
        let mut a2 = a.clone();
        a2.state = BundleState::Delivered;
        t.mark_delivered(&a.id.to_key(), 7, None).unwrap();
        t.put_record(&a2).unwrap();
        t.expiry_remove(a.expiry_ms, &a.id.to_key()).unwrap();
        let mut b2 = b.clone();
        b2.state = BundleState::CustodyTransferred;
        t.put_record(&b2).unwrap();
        t.mark_forwarded("dtn://c/", &b.id.to_key(), 8).unwrap();
        t.mark_forwarded("dtn://d/", &b.id.to_key(), 8).unwrap();
        t.commit().unwrap();
        let (live, rebuilt) = live_and_rebuilt(&s);
        assert_eq!(live, rebuilt);
        let (keys, from_a) = s.summary(&"dtn://a/".parse().unwrap(), 10).unwrap();
        assert_eq!(
            (keys, from_a),
            (vec![a.id.to_key()], vec![(a.id.to_key(), None)])
        );
        assert_eq!(
            s.expired(u64::MAX, 10).unwrap(),
            vec![(b.expiry_ms, b.id.to_key())]
        );

        // A restart rebuilds the same index from the file.
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(live_and_rebuilt(&s).0, live);
    }

    #[test]
    fn owed_scan_goes_nearest_expiry_first_and_follows_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("store.redb")).unwrap();
        // Key order is 1, 2, 3; expiry order 3, 1, 2.
        let mut rs: Vec<BundleRecord> = (1..=3)
            .map(|i| record(i, "dtn://a/", BundleState::Stored))
            .collect();
        rs[0].expiry_ms = 500;
        rs[1].expiry_ms = 900;
        rs[2].expiry_ms = 100;
        let mut t = s.write().unwrap();
        for r in &rs {
            t.put_record(r).unwrap();
        }
        t.commit().unwrap();
        let order = |s: &Store, max: usize| {
            let mut seen = Vec::new();
            s.scan_owed::<StoreError>("dtn://c/", max, |k, h| {
                seen.push((k.to_vec(), h.expiry_ms));
                Ok(true)
            })
            .unwrap();
            seen
        };
        let key = |i: usize| rs[i].id.to_key();
        assert_eq!(
            order(&s, 10),
            vec![(key(2), 100), (key(0), 500), (key(1), 900)]
        );
        // The scan bound applies in that order.
        assert_eq!(order(&s, 1), vec![(key(2), 100)]);

        // Bundle 2 gets a nearer deadline; bundle 3 leaves the held set.
        let mut t = s.write().unwrap();
        let mut r2 = rs[1].clone();
        r2.expiry_ms = 50;
        t.put_record(&r2).unwrap();
        let mut r3 = rs[2].clone();
        r3.state = BundleState::Delivered;
        t.put_record(&r3).unwrap();
        t.commit().unwrap();
        assert_eq!(order(&s, 10), vec![(key(1), 50), (key(0), 500)]);
        let (live, rebuilt) = live_and_rebuilt(&s);
        assert_eq!(live, rebuilt);
    }
}
