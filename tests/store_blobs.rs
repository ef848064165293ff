//! Large chunks in blob segment files beside a real redb file
//! (spec/store.md §Blob segments): read back, shared by reference count,
//! the last release removes a sealed segment, bytes of an aborted
//! transaction are never referenced, a restart removes segments without
//! live chunks, `store check` counts blob chunks like inline ones, a
//! missing segment is a clear read error, not a panic, and compaction
//! copies only quiet segments (none still draining), and a segment emptied
//! by a lazy commit is deleted only after a durable one.

use spore::store::blobs::{BLOB_MIN_BYTES, SEGMENT_MAX_BYTES};
use spore::store::compact::COMPACT_QUIET_MS;
use spore::store::{Store, blobs_dir, check};
use std::path::Path;

fn segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn chunk(seed: u8, len: usize) -> (Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
    let cid = format!("cid-{seed}-{len}").into_bytes();
    (cid, data)
}

/// Chunks 1..=`n` of `per` bytes each, stored in one transaction.
fn store_chunks(store: &Store, n: u8, per: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let chunks: Vec<_> = (1..=n).map(|s| chunk(s, per)).collect();
    let mut txn = store.write().unwrap();
    for (cid, data) in &chunks {
        txn.chunk_ref(cid, data).unwrap();
    }
    txn.commit().unwrap();
    chunks
}

#[test]
fn large_chunks_live_in_segments_and_leave_with_their_last_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    let dir = blobs_dir(&path);
    let store = Store::open(&path).unwrap();
    let (small_cid, small) = chunk(3, BLOB_MIN_BYTES - 1);
    let (big_cid, big) = chunk(5, 256 * 1024);
    let mut txn = store.write().unwrap();
    assert_eq!(txn.chunk_ref(&small_cid, &small).unwrap(), 1);
    assert_eq!(txn.chunk_ref(&big_cid, &big).unwrap(), 1);
    assert_eq!(txn.chunk_ref(&big_cid, &big).unwrap(), 2, "shared");
    txn.commit().unwrap();
    assert_eq!(store.chunk(&big_cid).unwrap().unwrap(), big);
    assert_eq!(store.chunk(&small_cid).unwrap().unwrap(), small);
    assert_eq!(store.chunk_refs(&big_cid).unwrap(), 2);
    assert_eq!(store.stats().unwrap().chunks, 2);
    assert_eq!(segments(&dir).len(), 1, "one segment: {:?}", segments(&dir));
    assert_eq!(store.blob_disk_bytes(), big.len() as u64, "stored once");

    // Bytes appended by a transaction that aborts are never referenced.
    let (lost_cid, lost) = chunk(7, 100 * 1024);
    let mut txn = store.write().unwrap();
    txn.chunk_ref(&lost_cid, &lost).unwrap();
    drop(txn);
    assert!(store.chunk(&lost_cid).unwrap().is_none());

    let report = check::check(&store).unwrap();
    let kinds: Vec<&str> = report.problems.iter().map(|p| p.kind()).collect();
    assert_eq!(kinds, ["orphan_chunk", "orphan_chunk"], "no owners here");

    // Releasing both references frees the chunk; the active segment stays
    // until the restart, which removes it (no live bytes).
    let mut txn = store.write().unwrap();
    assert_eq!(txn.chunk_unref(&big_cid).unwrap(), 1);
    assert_eq!(txn.chunk_unref(&big_cid).unwrap(), 0);
    txn.commit().unwrap();
    assert!(store.chunk(&big_cid).unwrap().is_none());
    drop(store);
    let store = Store::open(&path).unwrap();
    assert!(segments(&dir).is_empty(), "{:?}", segments(&dir));
    assert_eq!(store.chunk(&small_cid).unwrap().unwrap(), small, "inline");
}

#[test]
fn a_sealed_segment_goes_after_the_commit_that_frees_its_last_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    let dir = blobs_dir(&path);
    let store = Store::open(&path).unwrap();
    // Fill segment 0 past its limit with 4 chunks, then one more starts
    // segment 1.
    let per = (SEGMENT_MAX_BYTES / 4) as usize;
    let chunks: Vec<_> = (1..=5).map(|s| chunk(s, per)).collect();
    for (cid, data) in &chunks {
        let mut txn = store.write().unwrap();
        txn.chunk_ref(cid, data).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(segments(&dir).len(), 2, "{:?}", segments(&dir));
    let mut txn = store.write().unwrap();
    for (cid, _) in &chunks[..3] {
        txn.chunk_unref(cid).unwrap();
    }
    txn.commit().unwrap();
    assert_eq!(segments(&dir).len(), 2, "chunk 4 still lives in segment 0");
    let mut txn = store.write().unwrap();
    txn.chunk_unref(&chunks[3].0).unwrap();
    drop(txn);
    assert_eq!(
        segments(&dir).len(),
        2,
        "an aborted release removes nothing"
    );
    assert_eq!(store.chunk(&chunks[3].0).unwrap().unwrap(), chunks[3].1);
    let mut txn = store.write().unwrap();
    txn.chunk_unref(&chunks[3].0).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        segments(&dir).len(),
        1,
        "segment 0 removed after the commit"
    );
    assert_eq!(store.chunk(&chunks[4].0).unwrap().unwrap(), chunks[4].1);

    // A segment lost behind the store's back: a clear error on read.
    drop(store);
    std::fs::remove_file(dir.join(&segments(&dir)[0])).unwrap();
    let store = Store::open(&path).unwrap();
    let e = store.chunk(&chunks[4].0).unwrap_err().to_string();
    assert!(e.contains("blob segment"), "{e}");
    let report = check::check(&store).unwrap();
    let kinds: Vec<&str> = report.problems.iter().map(|p| p.kind()).collect();
    assert!(kinds.contains(&"chunk_missing"), "{kinds:?}");
}

#[test]
fn a_mostly_dead_segment_is_compacted_into_the_active_one() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    let dir = blobs_dir(&path);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.compact_blobs(u64::MAX, 0).unwrap().segment, None);
    let per = (SEGMENT_MAX_BYTES / 4) as usize;
    let chunks = store_chunks(&store, 5, per);
    let before = segments(&dir);
    assert_eq!(before.len(), 2, "{before:?}");
    // Segment 0 keeps chunk 2 only: 3/4 of it is dead.
    let mut txn = store.write().unwrap();
    for i in [0, 2, 3] {
        txn.chunk_unref(&chunks[i].0).unwrap();
    }
    txn.commit().unwrap();
    assert_eq!(segments(&dir), before, "segment 0 still holds chunk 2");
    let t = 1_000_000;
    let none = store.compact_blobs(u64::MAX, t).unwrap();
    assert_eq!(none.segment, None, "released just now");
    let none = store
        .compact_blobs(u64::MAX, t + COMPACT_QUIET_MS - 1)
        .unwrap();
    assert_eq!(none.segment, None, "not quiet yet");
    let mut txn = store.write().unwrap();
    txn.chunk_ref(&chunks[1].0, &chunks[1].1).unwrap(); // a second reference
    txn.chunk_unref(&chunks[1].0).unwrap();
    txn.chunk_ref(&chunks[0].0, &chunks[0].1).unwrap(); // re-added: new bytes
    txn.chunk_unref(&chunks[0].0).unwrap();
    txn.commit().unwrap();
    let done = store.compact_blobs(u64::MAX, t + COMPACT_QUIET_MS).unwrap();
    assert_eq!(done.segment, Some(0), "{done:?}");
    assert_eq!((done.chunks, done.bytes), (1, per as u64));
    let after = segments(&dir);
    assert!(!after.contains(&before[0]), "segment 0 removed: {after:?}");
    assert_eq!(store.chunk(&chunks[1].0).unwrap().unwrap(), chunks[1].1);
    assert_eq!(store.chunk_refs(&chunks[1].0).unwrap(), 1);
    assert_eq!(store.chunk(&chunks[4].0).unwrap().unwrap(), chunks[4].1);
    assert!(
        check::check(&store)
            .unwrap()
            .problems
            .iter()
            .all(|p| p.kind() == "orphan_chunk")
    );
    // Nothing released since: the next call does no work.
    let none = store.compact_blobs(u64::MAX, t + 10 * COMPACT_QUIET_MS);
    assert_eq!(none.unwrap().segment, None);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.chunk(&chunks[1].0).unwrap().unwrap(),
        chunks[1].1,
        "after a restart"
    );
}

#[test]
fn a_segment_still_draining_is_not_compacted() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    let dir = blobs_dir(&path);
    let store = Store::open(&path).unwrap();
    // Segment 0 holds chunks 0..8 (8 MiB each); chunk 8 starts segment 1.
    let per = (SEGMENT_MAX_BYTES / 8) as usize;
    let chunks = store_chunks(&store, 9, per);
    let release = |i: usize| {
        let mut txn = store.write().unwrap();
        txn.chunk_unref(&chunks[i].0).unwrap();
        txn.commit().unwrap();
    };
    // Sent in the order written: five of eight gone, 5/8 dead.
    (0..5).for_each(release);
    let t = 1_000_000;
    let half = COMPACT_QUIET_MS / 2;
    assert_eq!(store.compact_blobs(u64::MAX, t).unwrap().segment, None);
    release(5);
    assert_eq!(
        store.compact_blobs(u64::MAX, t + half).unwrap().segment,
        None
    );
    let none = store.compact_blobs(u64::MAX, t + COMPACT_QUIET_MS).unwrap();
    assert_eq!(none.segment, None, "last release only {half} ms ago");
    // Quiet now, but two live chunks are more than the copy allows.
    let none = store.compact_blobs(2 * per as u64 - 1, t + half + COMPACT_QUIET_MS);
    assert_eq!(none.unwrap().segment, None);
    let none = store.compact_blobs(u64::MAX, t + half + COMPACT_QUIET_MS + 1);
    assert_eq!(none.unwrap().segment, None, "looked at; no release since");
    // The drain ends: the segment goes whole, nothing copied.
    release(6);
    release(7);
    assert_eq!(segments(&dir).len(), 1, "segment 0 deleted");
    assert_eq!(
        store
            .compact_blobs(u64::MAX, t + 10 * half)
            .unwrap()
            .segment,
        None
    );

    // A segment left from an earlier run is looked at at the first call.
    let mut txn = store.write().unwrap();
    for (cid, data) in &chunks[..8] {
        txn.chunk_ref(cid, data).unwrap(); // segments 1 and 2
    }
    txn.commit().unwrap();
    // Segment 1 now holds chunks 8 and 0..7; 6 of its 8 go.
    (0..6).for_each(release);
    drop(store);
    let store = Store::open(&path).unwrap();
    let done = store.compact_blobs(u64::MAX, 0).unwrap();
    assert_eq!(done.segment, Some(1), "{done:?}");
    assert_eq!((done.chunks, done.bytes), (2, 2 * per as u64));
    for (cid, data) in chunks.iter().skip(6) {
        assert_eq!(store.chunk(cid).unwrap().as_ref(), Some(data));
    }
}

#[test]
fn a_segment_emptied_by_a_lazy_commit_goes_after_a_durable_one() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    let dir = blobs_dir(&path);
    let store = Store::open(&path).unwrap();
    // Chunks 0 and 1 fill segment 0; chunk 2 starts segment 1.
    let per = (SEGMENT_MAX_BYTES / 2) as usize;
    let chunks = store_chunks(&store, 3, per);
    let mut txn = store.write_lazy().unwrap();
    txn.chunk_unref(&chunks[0].0).unwrap();
    txn.chunk_unref(&chunks[1].0).unwrap();
    txn.commit().unwrap();
    assert_eq!(store.chunk(&chunks[0].0).unwrap(), None, "released");
    assert_eq!(
        segments(&dir).len(),
        2,
        "a crash may undo the release: segment 0 stays"
    );
    store.write().unwrap().commit().unwrap();
    assert_eq!(segments(&dir).len(), 1, "deleted after the durable commit");
    assert_eq!(store.chunk(&chunks[2].0).unwrap().unwrap(), chunks[2].1);
}

#[test]
fn doctor_finds_and_repairs_a_wrong_segment_live_count() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.redb");
    let store = Store::open(&path).unwrap();
    let (cid, data) = chunk(9, 64 * 1024);
    let mut txn = store.write().unwrap();
    txn.chunk_ref(&cid, &data).unwrap();
    txn.commit().unwrap();
    let kinds = |s: &Store| -> Vec<&'static str> {
        let r = check::check(s).unwrap();
        r.problems.iter().map(|p| p.kind()).collect()
    };
    assert_eq!(kinds(&store), ["orphan_chunk"], "consistent counts");
    drop(store);
    // Corrupt the live count behind the store's back.
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(spore::store::tables::BLOB_SEGMENTS)
            .unwrap()
            .insert(0, 1)
            .unwrap();
        w.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(kinds(&store), ["orphan_chunk", "segment_live"]);
    let fixed = check::repair(&store).unwrap();
    let repaired: Vec<&str> = fixed.repaired.iter().map(|p| p.kind()).collect();
    assert!(repaired.contains(&"segment_live"), "{repaired:?}");
    assert!(fixed.problems.is_empty(), "{:?}", fixed.problems);
}
