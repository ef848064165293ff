//! Progressive reassembly of incoming files (spec/manifest.md
//! §Progressive reassembly): the files whose manifest is here and whose
//! chunks are still arriving, each a [`PartialFile`] (in the inbox, or in
//! the accept root for a folder file) that takes every verified chunk at
//! its offset as the receiving task sees it.
//!
//! The agent says when to start ([`Action::ExpectFile`]) and when the file
//! is complete ([`Action::AssembleFile`]); the assembly then only writes
//! the chunks that did not come this way, from the store. Everything here
//! is an optimisation: a partial that is missing, evicted, or whose writes
//! failed leaves the work to that final step, which is the same code path
//! as before (`actions::assemble`).
//!
//! [`Action::ExpectFile`]: crate::agent::Action::ExpectFile
//! [`Action::AssembleFile`]: crate::agent::Action::AssembleFile

use crate::content::{Manifest, PartialFile};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use tracing::{debug, warn};

/// At most this many files are assembled progressively at once; the oldest
/// is dropped (its temporary file deleted) for a new one.
pub(crate) const MAX_EARLY_FILES: usize = 64;

/// At most this many chunks are tracked over all files written early
/// (≈ 100 bytes of index each, so ≈ 13 MiB; 32 GiB of 256 KiB chunks). A
/// file with more is left to the final assembly; older files are dropped
/// to make room for a new one.
pub(crate) const MAX_EARLY_CHUNKS: usize = 131_072;

/// Chunk writes queued for the writer thread at most; an offer beyond
/// that is skipped (the final assembly writes the chunk). Bounds the
/// memory held by queued payloads to this many chunks: 16 MiB at the
/// default 256 KiB chunk size, 256 MiB at the 4 MiB maximum.
pub(crate) const MAX_QUEUED_WRITES: usize = 64;

/// One chunk for the writer thread: the file, the chunk's index, its bytes.
type Write = (Arc<PartialFile>, u64, Bytes);

/// The partial files being written, by manifest CID (bytes), and the
/// thread that writes their chunks (so that the receiving tasks never
/// wait for the disk).
#[derive(Default)]
pub(crate) struct EarlyFiles {
    inner: Mutex<Inner>,
    /// The writer thread's queue, started with the first partial file.
    writer: OnceLock<Option<SyncSender<Write>>>,
    counters: Arc<Counters>,
}

/// What `spore status` reports of early writing (in memory; reset when
/// the node restarts).
#[derive(Default)]
struct Counters {
    /// Partial files started.
    files: AtomicU64,
    /// Chunks written into place as they arrived.
    chunks_written: AtomicU64,
    /// Chunks not queued (queue full); written at the end instead.
    chunks_skipped: AtomicU64,
}

#[derive(Default)]
struct Inner {
    files: HashMap<Vec<u8>, Arc<PartialFile>>,
    /// Chunk CID bytes → (manifest CID, chunk index) of the files expecting it.
    by_chunk: HashMap<Vec<u8>, Vec<(Vec<u8>, u64)>>,
    /// Manifest CIDs, oldest first.
    order: VecDeque<Vec<u8>>,
    /// Chunks listed by the files in `files` (manifest entries).
    chunks: usize,
}

impl Inner {
    fn remove(&mut self, manifest_cid: &[u8]) -> Option<Arc<PartialFile>> {
        let p = self.files.remove(manifest_cid)?;
        self.order.retain(|m| m.as_slice() != manifest_cid);
        self.chunks -= p.manifest().chunks.len();
        // Each distinct CID once: a manifest may list one chunk many times.
        let distinct: HashSet<&crate::content::Cid> = p.manifest().chunks.iter().collect();
        for cid in distinct {
            let key = cid.to_bytes();
            if let Some(list) = self.by_chunk.get_mut(&key) {
                list.retain(|(m, _)| m.as_slice() != manifest_cid);
                if list.is_empty() {
                    self.by_chunk.remove(&key);
                }
            }
        }
        Some(p)
    }
}

impl EarlyFiles {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the partial file of `manifest` in `dir` unless one exists.
    /// A file that cannot be created is logged and left to the final
    /// assembly. Blocking (creates a file).
    pub(crate) fn expect(&self, dir: &Path, manifest_cid: Vec<u8>, manifest: Manifest) {
        if manifest.chunks.len() > MAX_EARLY_CHUNKS {
            debug!(file = %manifest.name, chunks = manifest.chunks.len(), "too many chunks to write early; written when complete");
            return;
        }
        if self.lock().files.contains_key(&manifest_cid) {
            return;
        }
        self.start_writer();
        let name = manifest.name.clone();
        let p = match PartialFile::create(dir, manifest) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                warn!(file = %name, error = %e, "cannot start writing an incoming file early; written when complete");
                return;
            }
        };
        let mut g = self.lock();
        if g.files.contains_key(&manifest_cid) {
            return;
        }
        let n = p.manifest().chunks.len();
        while g.order.len() >= MAX_EARLY_FILES || g.chunks + n > MAX_EARLY_CHUNKS {
            let Some(old) = g.order.front().cloned() else {
                break;
            };
            g.remove(&old);
        }
        for (index, cid) in (0u64..).zip(&p.manifest().chunks) {
            let at = (manifest_cid.clone(), index);
            g.by_chunk.entry(cid.to_bytes()).or_default().push(at);
        }
        g.order.push_back(manifest_cid.clone());
        g.files.insert(manifest_cid, p);
        g.chunks += n;
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        debug!(file = %name, "writing an incoming file as its chunks arrive");
    }

    /// Queues `data`, the verified payload of chunk `cid` (bytes), for
    /// every partial file that lists it; the writer thread writes it. Does
    /// not block: with [`MAX_QUEUED_WRITES`] queued, or no writer thread,
    /// the chunk is left to the final assembly (from the store).
    pub(crate) fn offer(&self, cid: &[u8], data: &Bytes) {
        let targets: Vec<(Arc<PartialFile>, u64)> = {
            let g = self.lock();
            let Some(list) = g.by_chunk.get(cid) else {
                return;
            };
            list.iter()
                .filter_map(|(m, i)| Some((g.files.get(m)?.clone(), *i)))
                .collect()
        };
        let Some(Some(tx)) = self.writer.get() else {
            return;
        };
        for (p, index) in targets {
            match tx.try_send((p, index, data.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.counters.chunks_skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Starts the writer thread once; `None` (logged) if it cannot start.
    fn start_writer(&self) {
        self.writer.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Write>(MAX_QUEUED_WRITES);
            let counters = self.counters.clone();
            let spawned = std::thread::Builder::new()
                .name("spore-early".into())
                .spawn(move || {
                    for (p, index, data) in rx {
                        match p.write_chunk(index, &data) {
                            Ok(true) => {
                                counters.chunks_written.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(false) => {}
                            Err(e) => {
                                debug!(file = %p.manifest().name, chunk = index, error = %e, "early chunk write failed; written when complete");
                            }
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    warn!(error = %e, "cannot start the early file writer; files are written when complete");
                    None
                }
            }
        });
    }

    /// Takes the partial file of `manifest_cid` out (for its final
    /// assembly, or to drop it).
    pub(crate) fn take(&self, manifest_cid: &[u8]) -> Option<Arc<PartialFile>> {
        self.lock().remove(manifest_cid)
    }

    /// Counters for `spore status`: `early_files`, `early_chunks_written`,
    /// `early_chunks_skipped` (since the node started).
    pub(crate) fn counters(&self) -> BTreeMap<String, u64> {
        let c = &self.counters;
        [
            ("early_files", &c.files),
            ("early_chunks_written", &c.chunks_written),
            ("early_chunks_skipped", &c.chunks_skipped),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.load(Ordering::Relaxed)))
        .collect()
    }

    /// How many files are being written early.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{ChunkCheck, Chunker, Cid, ManifestBuilder};
    use bytes::Bytes;

    fn file(name: &str, len: usize) -> (Vec<u8>, Manifest, Vec<Bytes>) {
        let data: Vec<u8> = (0..len)
            .map(|i| (i % 253) as u8 ^ name.len() as u8)
            .collect();
        let mut b = ManifestBuilder::new(name.to_owned(), 4096);
        let mut chunks = Vec::new();
        for c in Chunker::new(std::io::Cursor::new(data), 4096).unwrap() {
            let c = c.unwrap();
            b.push(&c);
            chunks.push(c.data);
        }
        let m = b.finish();
        (m.cid().to_bytes(), m, chunks)
    }

    #[test]
    fn offered_chunks_reach_every_file_that_lists_them_and_take_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let early = EarlyFiles::default();
        let (ma, a, ca) = file("a.bin", 3 * 4096);
        // b.bin holds the same bytes as a.bin, then one more chunk.
        let (mb, b, _) = {
            let mut b = ManifestBuilder::new("b.bin".to_owned(), 4096);
            let data: Vec<u8> = ca.concat().into_iter().chain([9u8; 100]).collect();
            for c in Chunker::new(std::io::Cursor::new(data), 4096).unwrap() {
                b.push(&c.unwrap());
            }
            let m = b.finish();
            (m.cid().to_bytes(), m, ())
        };
        early.expect(dir.path(), ma.clone(), a.clone());
        early.expect(dir.path(), ma.clone(), a.clone()); // idempotent
        early.expect(dir.path(), mb.clone(), b.clone());
        assert_eq!(early.len(), 2);
        for (cid, data) in a.chunks.iter().zip(&ca) {
            early.offer(&cid.to_bytes(), data);
        }
        // The writer thread works through the queue (bounded wait).
        let pa = early.take(&ma).unwrap();
        let pb = early.take(&mb).unwrap();
        for _ in 0..500 {
            if early.counters()["early_chunks_written"] >= 6 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!((pa.written_chunks(), pb.written_chunks()), (3, 3));
        let c = early.counters();
        assert_eq!((c["early_files"], c["early_chunks_written"]), (2, 6));
        assert!(early.take(&ma).is_none());
        assert!(early.lock().by_chunk.is_empty());
        let path = pa
            .finish(ChunkCheck::Hash, |_: &Cid| Err::<Bytes, _>("not asked"))
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), ca.concat());
    }

    #[test]
    fn the_oldest_partial_is_dropped_beyond_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let early = EarlyFiles::default();
        let mut first = None;
        for i in 0..=MAX_EARLY_FILES {
            let (m, man, _) = file(&format!("f{i}.bin"), 4096 + i);
            first.get_or_insert(m.clone());
            early.expect(dir.path(), m, man);
        }
        assert_eq!(early.len(), MAX_EARLY_FILES);
        assert!(early.take(&first.unwrap()).is_none());
        // The dropped one's temporary file is gone too.
        let temps = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(temps, MAX_EARLY_FILES);
    }

    #[test]
    fn the_chunk_bound_drops_old_files_and_refuses_a_huge_one() {
        let dir = tempfile::tempdir().unwrap();
        let early = EarlyFiles::default();
        // Manifests of `n` copies of one 4096-byte chunk (cheap to build).
        let (_, base, _) = file("one.bin", 4096);
        let many = |name: &str, n: usize| {
            let mut m = base.clone();
            m.name = name.to_owned();
            m.chunks = vec![base.chunks[0]; n];
            m.size = 4096 * n as u64;
            (m.cid().to_bytes(), m)
        };
        let (huge, m) = many("huge.bin", MAX_EARLY_CHUNKS + 1);
        early.expect(dir.path(), huge.clone(), m);
        assert!(early.take(&huge).is_none(), "too many chunks: not started");
        let (a, ma) = many("a.bin", MAX_EARLY_CHUNKS / 2);
        let (b, mb) = many("b.bin", MAX_EARLY_CHUNKS / 2);
        let (c, mc) = many("c.bin", 10);
        early.expect(dir.path(), a.clone(), ma);
        early.expect(dir.path(), b.clone(), mb);
        early.expect(dir.path(), c.clone(), mc);
        // c did not fit beside a and b: the oldest (a) made room.
        assert!(early.take(&a).is_none());
        assert!(early.take(&b).is_some() && early.take(&c).is_some());
        assert_eq!(early.lock().chunks, 0);
    }
}
