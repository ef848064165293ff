//! Progressive reassembly of incoming files (spec/manifest.md
//! §Progressive reassembly): the files whose manifest is here and whose
//! chunks are still arriving, each written chunk by chunk into a
//! [`PartialFile`] (in the inbox, or in the accept root for a folder file)
//! as the receiving task verifies its chunks.
//!
//! The agent says when to expect a file ([`Action::ExpectFile`]) and when
//! the file is complete ([`Action::AssembleFile`]); the assembly then only
//! writes the chunks that did not come this way, from the store. The
//! temporary file is made by the writer thread when the file's first
//! chunk arrives, so a file that gets no chunk costs memory only (a node
//! restarting with many incomplete files creates none); a temporary file
//! that took no chunk for [`EARLY_IDLE`] is deleted, and a later chunk
//! starts a new one. When a file's temporary file starts, the chunks that
//! were stored before the file was expected (they came before its
//! manifest) are copied into place from the store on a thread of their
//! own, while the transfer goes on, instead of at the end. Everything here is an optimisation: a partial that
//! is missing, evicted, idle, or whose writes failed leaves the work to
//! the final step, which is the same code path as before
//! (`actions::assemble`).
//!
//! [`Action::ExpectFile`]: crate::agent::Action::ExpectFile
//! [`Action::AssembleFile`]: crate::agent::Action::AssembleFile

use crate::content::partial::RUN_BYTES;
use crate::content::{Manifest, PartialFile};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// At most this many files are expected at once; the oldest is dropped
/// (its temporary file, if any, deleted) for a new one.
pub(crate) const MAX_EARLY_FILES: usize = 64;

/// At most this many chunks are tracked over all expected files
/// (≈ 100 bytes of index each, so ≈ 13 MiB; 32 GiB of 256 KiB chunks). A
/// file with more is left to the final assembly; older files are dropped
/// to make room for a new one.
pub(crate) const MAX_EARLY_CHUNKS: usize = 131_072;

/// Chunk writes queued for the writer thread at most; an offer beyond
/// that is skipped (the final assembly writes the chunk). Bounds the
/// memory held by queued payloads to this many chunks: 16 MiB at the
/// default 256 KiB chunk size, 256 MiB at the 4 MiB maximum.
pub(crate) const MAX_QUEUED_WRITES: usize = 64;

/// A temporary file that took no chunk for this long is deleted (the
/// file stays expected; its next chunk starts a new temporary file). The
/// gain of early writing is within a contact; across a long gap the disk
/// it holds (a second copy of chunks the store holds) matters more.
pub(crate) const EARLY_IDLE: Duration = Duration::from_secs(600);

/// While temporary files exist the writer thread looks for idle ones this
/// often; with none it sleeps until the next chunk (no wakeups when
/// nothing is pending).
const IDLE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Backfills running at once at most (each reads from the store and
/// writes one file).
const MAX_BACKFILLS: usize = 2;

/// One chunk for the writer thread: the file, the chunk's index, its bytes.
type Write = (Arc<Expected>, u64, Bytes);

/// The stored chunks (the node's store): CID bytes → the chunk's bytes, or
/// `None` when it is not stored (or cannot be read). Its bytes were checked
/// against their CID when they were received.
pub(crate) type ChunkSource = Arc<dyn Fn(&[u8]) -> Option<Bytes> + Send + Sync>;

/// The expected files, by manifest CID (bytes), and the thread that
/// writes their chunks (so that the receiving tasks never wait for the
/// disk).
pub(crate) struct EarlyFiles {
    core: Arc<Core>,
    /// The writer thread's queue, started with the first expected file.
    writer: OnceLock<Option<SyncSender<Write>>>,
}

impl Default for EarlyFiles {
    fn default() -> Self {
        EarlyFiles::new(None)
    }
}

/// What the receiving tasks and the writer thread share.
struct Core {
    inner: Mutex<Inner>,
    counters: Counters,
    /// Temporary files that exist now.
    live: AtomicUsize,
    /// Zero of the `last_write_ms` clock.
    epoch: Instant,
    /// Chunks stored before their file was expected (backfill).
    source: Option<ChunkSource>,
    /// Backfills running now.
    backfills: AtomicUsize,
}

/// What `spore status` reports of early writing (in memory; reset when
/// the node restarts).
#[derive(Default)]
struct Counters {
    /// Temporary files started.
    files: AtomicU64,
    /// Chunks written into place as they arrived.
    chunks_written: AtomicU64,
    /// Chunks not queued (queue full); written at the end instead.
    chunks_skipped: AtomicU64,
    /// Chunks copied into place from the store during the transfer.
    chunks_backfilled: AtomicU64,
}

#[derive(Default)]
struct Inner {
    files: HashMap<Vec<u8>, Arc<Expected>>,
    /// Chunk CID bytes → (manifest CID, chunk index) of the files expecting it.
    by_chunk: HashMap<Vec<u8>, Vec<(Vec<u8>, u64)>>,
    /// Manifest CIDs, oldest first.
    order: VecDeque<Vec<u8>>,
    /// Chunks listed by the files in `files` (manifest entries).
    chunks: usize,
}

/// A file expected here: where it goes, its manifest, and its temporary
/// file once a chunk arrived.
struct Expected {
    dir: PathBuf,
    manifest: Manifest,
    state: Mutex<FileState>,
    /// One bit per manifest entry: queued for the writer by `offer` (the
    /// backfill leaves those to it).
    offered: Vec<AtomicU64>,
}

impl Expected {
    fn mark_offered(&self, index: u64) {
        if let Some(w) = usize::try_from(index / 64)
            .ok()
            .and_then(|i| self.offered.get(i))
        {
            w.fetch_or(1 << (index % 64), Ordering::AcqRel);
        }
    }

    fn was_offered(&self, index: u64) -> bool {
        usize::try_from(index / 64)
            .ok()
            .and_then(|i| self.offered.get(i))
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (index % 64)) != 0)
    }
}

#[derive(Default)]
struct FileState {
    partial: Option<Arc<PartialFile>>,
    /// When a chunk was last written, ms since `Core::epoch`.
    last_write_ms: u64,
    /// Taken for assembly, or dropped: no more writes.
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn remove(&mut self, manifest_cid: &[u8]) -> Option<Arc<Expected>> {
        let e = self.files.remove(manifest_cid)?;
        self.order.retain(|m| m.as_slice() != manifest_cid);
        self.chunks -= e.manifest.chunks.len();
        // Each distinct CID once: a manifest may list one chunk many times.
        let distinct: HashSet<&crate::content::Cid> = e.manifest.chunks.iter().collect();
        for cid in distinct {
            let key = cid.to_bytes();
            if let Some(list) = self.by_chunk.get_mut(&key) {
                list.retain(|(m, _)| m.as_slice() != manifest_cid);
                if list.is_empty() {
                    self.by_chunk.remove(&key);
                }
            }
        }
        Some(e)
    }
}

impl Core {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes the temporary file out of `st` (the caller drops it, outside
    /// every lock: dropping deletes the file).
    fn take_partial(&self, st: &mut FileState) -> Option<Arc<PartialFile>> {
        let p = st.partial.take()?;
        self.live.fetch_sub(1, Ordering::Relaxed);
        Some(p)
    }

    /// Closes `e` and takes its temporary file out.
    fn close(&self, e: &Expected) -> Option<Arc<PartialFile>> {
        let mut st = lock(&e.state);
        st.closed = true;
        self.take_partial(&mut st)
    }

    /// The temporary file of `e` for a write, created on its first chunk;
    /// `None` when `e` is closed or the file cannot be made (logged; the
    /// file is then written at the end only).
    fn partial_for_write(self: &Arc<Self>, e: &Arc<Expected>) -> Option<Arc<PartialFile>> {
        let mut st = lock(&e.state);
        if st.closed {
            return None;
        }
        st.last_write_ms = self.now_ms();
        if let Some(p) = &st.partial {
            return Some(p.clone());
        }
        match PartialFile::create(&e.dir, e.manifest.clone()) {
            Ok(p) => {
                let p = Arc::new(p);
                st.partial = Some(p.clone());
                self.live.fetch_add(1, Ordering::Relaxed);
                self.counters.files.fetch_add(1, Ordering::Relaxed);
                debug!(file = %e.manifest.name, "writing an incoming file as its chunks arrive");
                drop(st);
                self.start_backfill(e);
                Some(p)
            }
            Err(err) => {
                warn!(file = %e.manifest.name, error = %err, "cannot start writing an incoming file early; written when complete");
                st.closed = true;
                None
            }
        }
    }

    /// The temporary file of `e` if it has one and is open.
    fn partial_of(&self, e: &Expected) -> Option<Arc<PartialFile>> {
        let st = lock(&e.state);
        if st.closed { None } else { st.partial.clone() }
    }

    /// Starts copying into `e`'s temporary file the chunks that were
    /// stored before it was expected, on a thread of its own (none with no
    /// source, or with [`MAX_BACKFILLS`] running: those chunks are then
    /// written at the end).
    fn start_backfill(self: &Arc<Self>, e: &Arc<Expected>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        if self.backfills.fetch_add(1, Ordering::AcqRel) >= MAX_BACKFILLS {
            self.backfills.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let (core, e2) = (self.clone(), e.clone());
        let spawned = std::thread::Builder::new()
            .name("spore-backfill".into())
            .spawn(move || {
                core.backfill(&e2, &source);
                core.backfills.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            self.backfills.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// One pass over `e`'s chunks: each one neither written nor offered
    /// that `source` has is written into place, consecutive ones together
    /// (up to [`RUN_BYTES`] per write). Stops when `e` is closed or its
    /// temporary file was dropped. Returns how many were written.
    fn backfill(&self, e: &Expected, source: &ChunkSource) -> u64 {
        let mut n = 0;
        let mut run: Vec<Bytes> = Vec::new();
        let (mut first, mut bytes) = (0, 0);
        for (index, cid) in (0u64..).zip(&e.manifest.chunks) {
            let Some(p) = self.partial_of(e) else {
                run.clear();
                break;
            };
            let data = if p.is_written(index) || e.was_offered(index) {
                None
            } else {
                source(&cid.to_bytes())
            };
            let ends_run = data.as_ref().is_none_or(|d| bytes + d.len() > RUN_BYTES);
            if ends_run && !run.is_empty() {
                n += self.backfill_run(e, &p, first, &run);
                run.clear();
                bytes = 0;
            }
            if let Some(d) = data {
                if run.is_empty() {
                    first = index;
                }
                bytes += d.len();
                run.push(d);
            }
        }
        if let (false, Some(p)) = (run.is_empty(), self.partial_of(e)) {
            n += self.backfill_run(e, &p, first, &run);
        }
        self.counters
            .chunks_backfilled
            .fetch_add(n, Ordering::Relaxed);
        if n > 0 {
            debug!(file = %e.manifest.name, chunks = n, "stored chunks copied into place");
        }
        n
    }

    /// Writes the stored chunks `run` from chunk `first` on; returns how
    /// many were written.
    fn backfill_run(&self, e: &Expected, p: &PartialFile, first: u64, run: &[Bytes]) -> u64 {
        p.write_chunks(first, run).unwrap_or_else(|err| {
            debug!(file = %e.manifest.name, chunk = first, error = %err, "backfill write failed; written when complete");
            0
        })
    }

    /// Writes one queued chunk (writer thread).
    fn write(self: &Arc<Self>, e: &Arc<Expected>, index: u64, data: &[u8]) {
        let Some(p) = self.partial_for_write(e) else {
            return;
        };
        match p.write_chunk(index, data) {
            Ok(true) => {
                self.counters.chunks_written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(err) => {
                debug!(file = %e.manifest.name, chunk = index, error = %err, "early chunk write failed; written when complete");
            }
        }
    }

    /// Deletes the temporary files that took no chunk since
    /// `now_ms - EARLY_IDLE`; their files stay expected. Returns how many.
    fn drop_idle(&self, now_ms: u64) -> usize {
        let idle_ms = u64::try_from(EARLY_IDLE.as_millis()).unwrap_or(u64::MAX);
        let files: Vec<Arc<Expected>> = lock(&self.inner).files.values().cloned().collect();
        let mut dropped = Vec::new();
        for e in &files {
            let mut st = lock(&e.state);
            if st.partial.is_some() && now_ms.saturating_sub(st.last_write_ms) >= idle_ms {
                debug!(file = %e.manifest.name, "incoming file idle; its temporary file is deleted");
                dropped.extend(self.take_partial(&mut st));
            }
        }
        dropped.len()
    }

    /// The writer thread: writes queued chunks; while temporary files
    /// exist, also deletes idle ones every [`IDLE_CHECK_EVERY`].
    fn run_writer(self: &Arc<Self>, rx: Receiver<Write>) {
        let mut checked = Instant::now();
        loop {
            let next = if self.live.load(Ordering::Relaxed) > 0 {
                match rx.recv_timeout(IDLE_CHECK_EVERY) {
                    Ok(w) => Some(w),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(w) => Some(w),
                    Err(_) => return,
                }
            };
            if let Some((e, index, data)) = next {
                self.write(&e, index, &data);
            }
            if checked.elapsed() >= IDLE_CHECK_EVERY {
                self.drop_idle(self.now_ms());
                checked = Instant::now();
            }
        }
    }
}

impl EarlyFiles {
    /// No file expected yet; `source` gives the chunks stored before a
    /// file was expected (`None`: those are written at the end only).
    pub(crate) fn new(source: Option<ChunkSource>) -> Self {
        EarlyFiles {
            core: Arc::new(Core {
                inner: Mutex::default(),
                counters: Counters::default(),
                live: AtomicUsize::new(0),
                epoch: Instant::now(),
                source,
                backfills: AtomicUsize::new(0),
            }),
            writer: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.core.inner)
    }

    /// Expects `manifest` in `dir` (nothing is created until its first
    /// chunk is offered). A file of more than [`MAX_EARLY_CHUNKS`] chunks
    /// or an invalid manifest is left to the final assembly. May block:
    /// making room deletes the temporary files of the oldest files.
    pub(crate) fn expect(&self, dir: &Path, manifest_cid: Vec<u8>, manifest: Manifest) {
        let n = manifest.chunks.len();
        if n > MAX_EARLY_CHUNKS {
            debug!(file = %manifest.name, chunks = n, "too many chunks to write early; written when complete");
            return;
        }
        if let Err(e) = manifest.validate(usize::MAX) {
            debug!(file = %manifest.name, error = %e, "not written early");
            return;
        }
        self.start_writer();
        let mut evicted = Vec::new();
        {
            let mut g = self.lock();
            if g.files.contains_key(&manifest_cid) {
                return;
            }
            while g.order.len() >= MAX_EARLY_FILES || g.chunks + n > MAX_EARLY_CHUNKS {
                let Some(old) = g.order.front().cloned() else {
                    break;
                };
                evicted.extend(g.remove(&old));
            }
            for (index, cid) in (0u64..).zip(&manifest.chunks) {
                let at = (manifest_cid.clone(), index);
                g.by_chunk.entry(cid.to_bytes()).or_default().push(at);
            }
            g.order.push_back(manifest_cid.clone());
            let e = Expected {
                dir: dir.to_path_buf(),
                offered: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
                manifest,
                state: Mutex::default(),
            };
            g.files.insert(manifest_cid, Arc::new(e));
            g.chunks += n;
        }
        // Outside the lock: deleting a large temporary file takes a while.
        let files: Vec<_> = evicted.iter().filter_map(|e| self.core.close(e)).collect();
        drop(files);
    }

    /// Queues `data`, the verified payload of chunk `cid` (bytes), for
    /// every expected file that lists it; the writer thread writes it. Does
    /// not block: with [`MAX_QUEUED_WRITES`] queued, or no writer thread,
    /// the chunk is left to the final assembly (from the store).
    pub(crate) fn offer(&self, cid: &[u8], data: &Bytes) {
        let targets: Vec<(Arc<Expected>, u64)> = {
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
        for (e, index) in targets {
            e.mark_offered(index);
            match tx.try_send((e, index, data.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.core
                        .counters
                        .chunks_skipped
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Starts the writer thread once; `None` (logged) if it cannot start.
    fn start_writer(&self) {
        self.writer.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Write>(MAX_QUEUED_WRITES);
            let core = self.core.clone();
            let spawned = std::thread::Builder::new()
                .name("spore-early".into())
                .spawn(move || core.run_writer(rx));
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    warn!(error = %e, "cannot start the early file writer; files are written when complete");
                    None
                }
            }
        });
    }

    /// Takes the temporary file of `manifest_cid` out (for its final
    /// assembly, or to drop it); no more chunks are written to it. `None`
    /// when the file is not expected or got no chunk (yet, or since it
    /// was idle).
    pub(crate) fn take(&self, manifest_cid: &[u8]) -> Option<Arc<PartialFile>> {
        let e = self.lock().remove(manifest_cid)?;
        self.core.close(&e)
    }

    /// Counters for `spore status`: `early_files` (temporary files
    /// started), `early_chunks_written`, `early_chunks_skipped`,
    /// `early_chunks_backfilled` (since the node started).
    pub(crate) fn counters(&self) -> BTreeMap<String, u64> {
        let c = &self.core.counters;
        [
            ("early_files", &c.files),
            ("early_chunks_written", &c.chunks_written),
            ("early_chunks_skipped", &c.chunks_skipped),
            ("early_chunks_backfilled", &c.chunks_backfilled),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.load(Ordering::Relaxed)))
        .collect()
    }

    /// How many files are expected.
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
        assert_eq!(temp_files(dir.path()), 0, "nothing on disk before a chunk");
        for (cid, data) in a.chunks.iter().zip(&ca) {
            early.offer(&cid.to_bytes(), data);
        }
        wait_written(&early, 6);
        let pa = early.take(&ma).unwrap();
        let pb = early.take(&mb).unwrap();
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

    /// Temporary files in `dir`.
    fn temp_files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    /// Waits (bounded) until the writer thread wrote `n` chunks in all.
    fn wait_written(early: &EarlyFiles, n: u64) {
        wait_counter(early, "early_chunks_written", n);
    }

    /// Waits (bounded, 5 s) until counter `name` reaches `n`.
    fn wait_counter(early: &EarlyFiles, name: &str, n: u64) {
        for _ in 0..500 {
            if early.counters()[name] >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{name} did not reach {n} in 5 s");
    }

    #[test]
    fn the_oldest_file_is_dropped_beyond_the_bound_with_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let early = EarlyFiles::default();
        let (m0, man0, c0) = file("first.bin", 4096);
        early.expect(dir.path(), m0.clone(), man0.clone());
        early.offer(&man0.chunks[0].to_bytes(), &c0[0]);
        wait_written(&early, 1);
        assert_eq!(temp_files(dir.path()), 1);
        for i in 1..=MAX_EARLY_FILES {
            let (m, man, _) = file(&format!("f{i}.bin"), 4096 + i);
            early.expect(dir.path(), m, man);
        }
        assert_eq!(early.len(), MAX_EARLY_FILES);
        assert!(early.take(&m0).is_none());
        // The dropped one's temporary file is gone; the others have none.
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[test]
    fn an_idle_temporary_file_is_deleted_and_a_later_chunk_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let early = EarlyFiles::default();
        let (m, man, chunks) = file("slow.bin", 3 * 4096);
        early.expect(dir.path(), m.clone(), man.clone());
        early.offer(&man.chunks[0].to_bytes(), &chunks[0]);
        wait_written(&early, 1);
        assert_eq!(early.core.live.load(Ordering::Relaxed), 1);
        let core = &early.core;
        let idle = u64::try_from(EARLY_IDLE.as_millis()).unwrap();
        assert_eq!(core.drop_idle(core.now_ms()), 0, "not idle yet");
        assert_eq!(core.drop_idle(core.now_ms() + idle), 1);
        assert_eq!(temp_files(dir.path()), 0);
        assert_eq!(core.live.load(Ordering::Relaxed), 0);
        // Still expected: the next chunk starts a new temporary file.
        early.offer(&man.chunks[1].to_bytes(), &chunks[1]);
        wait_written(&early, 2);
        assert_eq!(temp_files(dir.path()), 1);
        let p = early.take(&m).unwrap();
        assert_eq!(
            p.written_chunks(),
            1,
            "the first chunk went with the idle file"
        );
        let path = p
            .finish(ChunkCheck::Hash, |cid: &Cid| {
                let i = man.chunks.iter().position(|c| c == cid).unwrap();
                Ok::<_, String>(chunks[i].clone())
            })
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), chunks.concat());
        assert_eq!(early.counters()["early_files"], 2);
    }

    #[test]
    fn chunks_stored_before_the_file_was_expected_are_copied_in_when_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let (m, man, chunks) = file("late.bin", 4 * 4096);
        let key = |i: usize| man.chunks[i].to_bytes();
        // Chunks 0 and 1 came before the manifest: they are in the store.
        let stored: HashMap<Vec<u8>, Bytes> = (0..2).map(|i| (key(i), chunks[i].clone())).collect();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let source: ChunkSource = {
            let asked = asked.clone();
            Arc::new(move |cid: &[u8]| {
                lock(&asked).push(cid.to_vec());
                stored.get(cid).cloned()
            })
        };
        let early = EarlyFiles::new(Some(source));
        early.expect(dir.path(), m.clone(), man.clone());
        assert!(
            lock(&asked).is_empty(),
            "nothing is read before a chunk comes"
        );
        early.offer(&key(2), &chunks[2]);
        wait_written(&early, 1);
        wait_counter(&early, "early_chunks_backfilled", 2);
        assert_eq!(early.counters()["early_chunks_backfilled"], 2);
        assert!(
            !lock(&asked).contains(&key(2)),
            "an offered chunk is the writer's"
        );
        let p = early.take(&m).unwrap();
        assert_eq!(p.written_chunks(), 3);
        let path = p
            .finish(ChunkCheck::Hash, |cid: &Cid| {
                let i = man.chunks.iter().position(|c| c == cid).unwrap();
                if i == 3 {
                    Ok(chunks[3].clone())
                } else {
                    Err(format!("chunk {i} asked again"))
                }
            })
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), chunks.concat());
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
        let expected = |m: &[u8]| early.lock().files.contains_key(m);
        assert!(!expected(&huge), "too many chunks: not expected");
        let (a, ma) = many("a.bin", MAX_EARLY_CHUNKS / 2);
        let (b, mb) = many("b.bin", MAX_EARLY_CHUNKS / 2);
        let (c, mc) = many("c.bin", 10);
        early.expect(dir.path(), a.clone(), ma);
        early.expect(dir.path(), b.clone(), mb);
        early.expect(dir.path(), c.clone(), mc);
        // c did not fit beside a and b: the oldest (a) made room.
        assert!(!expected(&a));
        assert!(expected(&b) && expected(&c));
        // Nothing was sent for them: taking gives no temporary file.
        assert!(early.take(&b).is_none() && early.take(&c).is_none());
        assert_eq!(early.lock().chunks, 0);
    }
}
