//! Progressive reassembly: a file written chunk by chunk, in any order, as
//! its chunks arrive, then completed from a chunk source and moved into
//! place (spec/manifest.md §Progressive reassembly).
//!
//! [`write_file_atomically`](super::write_file_atomically) writes a whole
//! file once every chunk is stored, so the receiver's last step is a pass
//! over the whole file after the last chunk arrived (0.16–0.22 s per
//! 256 MiB on the reference machine). A [`PartialFile`] is created as soon
//! as the manifest is known and takes each verified chunk at its offset
//! while the transfer goes on; [`PartialFile::finish`] only writes what did
//! not come that way, fsyncs and renames. The result is the same file:
//! every byte is either a chunk the caller verified against its CID or a
//! chunk from the source, checked as [`ChunkCheck`] says.
//!
//! Writes go past the page cache where they can (`O_DIRECT`, whole 4096-byte
//! blocks from an aligned copy; chunk sizes that are multiples of
//! [`ALIGN`] only), for the reasons given in [`super::direct`].

use super::assemble::{ChunkCheck, check_chunk, io, persist_noclobber, start_temp_file, sync_dir};
use super::direct::{ALIGN, open_direct, write_parts_direct};
use super::{ContentError, Manifest};
use ::cid::Cid;
use bytes::Bytes;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use tempfile::NamedTempFile;

thread_local! {
    /// The aligned copy of a chunk (or of a run of them) for its direct
    /// write, kept per thread (at most [`RUN_BYTES`] or the largest chunk
    /// written, 4 MiB, + 4 KiB) so that writing does not allocate and zero
    /// a fresh buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most bytes of consecutive chunks gathered into one write when chunks
/// are written from a source ([`PartialFile::complete`],
/// [`PartialFile::write_chunks`]): one 4 MiB direct write instead of
/// sixteen of 256 KiB (on the reference machine's disk, 1.7 against
/// 1.1 GB/s with `dd oflag=direct`). A run always takes at least one chunk.
pub const RUN_BYTES: usize = 4 << 20;

/// A file being assembled in `dir` under a temporary name
/// (`.spore-partial-XXXXXX`), its chunks written in any order by any number
/// of threads.
///
/// Dropping it without [`PartialFile::finish`] deletes the temporary file.
pub struct PartialFile {
    manifest: Manifest,
    dir: PathBuf,
    /// The temporary file; taken by `finish`.
    tmp: Mutex<Option<NamedTempFile>>,
    /// Ordinary handle (a clone of `tmp`'s), for positional writes.
    file: File,
    /// `O_DIRECT` handle when the file system allows it and the chunk size
    /// is a multiple of [`ALIGN`].
    direct: Option<File>,
    /// One bit per manifest entry: written and complete.
    written: Vec<AtomicU64>,
    /// `false` once `finish` began; writers hold the read side while they
    /// write, so `finish` waits for writes in flight.
    open: RwLock<bool>,
}

impl PartialFile {
    /// Creates the temporary file for `manifest` in `dir` (created if
    /// missing), sized to the file's length (sparse).
    ///
    /// # Errors
    /// Those of [`Manifest::validate`] (no entry limit), and
    /// [`ContentError::Write`] when the directory or file cannot be made.
    pub fn create(dir: &Path, manifest: Manifest) -> Result<PartialFile, ContentError> {
        let tmp = start_temp_file(dir, &manifest)?;
        tmp.as_file()
            .set_len(manifest.size)
            .map_err(io("set length"))?;
        let file = tmp.as_file().try_clone().map_err(io("clone handle"))?;
        let direct = if manifest.chunk_size as usize % ALIGN == 0 {
            open_direct(&file)
        } else {
            None
        };
        let words = manifest.chunks.len().div_ceil(64);
        Ok(PartialFile {
            written: (0..words).map(|_| AtomicU64::new(0)).collect(),
            manifest,
            dir: dir.to_path_buf(),
            tmp: Mutex::new(Some(tmp)),
            file,
            direct,
            open: RwLock::new(true),
        })
    }

    /// The manifest this file follows.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory holding the temporary file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `data` as the file's chunk number `index` (0-based). The
    /// caller has checked `data` against the chunk's CID; its length is
    /// checked here. Returns `Ok(false)` when the chunk was already written
    /// or [`PartialFile::finish`] has begun (nothing written).
    ///
    /// # Errors
    /// [`ContentError::ChunkLength`] for a wrong length;
    /// [`ContentError::Write`] when the write fails (the chunk stays
    /// unwritten and `finish` writes it from its source).
    pub fn write_chunk(&self, index: u64, data: &[u8]) -> Result<bool, ContentError> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        if !*open || self.is_written(index) {
            return Ok(false);
        }
        self.check_length(index, data)?;
        self.write_at(index, &[data])?;
        self.mark(index);
        Ok(true)
    }

    /// Writes consecutive chunks `first`, `first + 1`, … from `chunks`
    /// (checked against their CIDs by the caller; lengths checked here) in
    /// writes of up to [`RUN_BYTES`]. Chunks already written are skipped.
    /// Returns how many were written: 0 once [`PartialFile::finish`] has
    /// begun.
    ///
    /// # Errors
    /// As [`PartialFile::write_chunk`]. The chunks of the run that failed
    /// (the write, or a length check) stay unwritten, and those after it
    /// are not tried; `finish` writes them from its source.
    pub fn write_chunks(&self, first: u64, chunks: &[Bytes]) -> Result<u64, ContentError> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        if !*open {
            return Ok(0);
        }
        let mut run = Run::default();
        let mut n = 0;
        for (index, data) in (first..).zip(chunks) {
            if self.is_written(index) {
                n += self.write_run(&mut run)?;
                continue;
            }
            self.check_length(index, data)?;
            n += self.add_to_run(&mut run, index, data.clone())?;
        }
        n += self.write_run(&mut run)?;
        Ok(n)
    }

    /// How many chunks were written so far.
    pub fn written_chunks(&self) -> u64 {
        let ones: u32 = self
            .written
            .iter()
            .map(|w| w.load(Ordering::Acquire).count_ones())
            .sum();
        u64::from(ones)
    }

    /// Completes the file: writes every chunk not written yet, asking
    /// `chunk` for it and checking it as `check` says; fsyncs; moves it to
    /// `dir/<name>` without replacing any entry (the names of
    /// [`write_file_atomically`](super::write_file_atomically)); fsyncs
    /// `dir`. Waits for writes in flight; later [`PartialFile::write_chunk`]
    /// calls write nothing.
    ///
    /// # Errors
    /// As [`write_file_atomically`](super::write_file_atomically); on any
    /// error no new file is left in `dir`. A second call fails with
    /// [`ContentError::Write`] (`"finish"`).
    pub fn finish<E: std::fmt::Display>(
        &self,
        check: ChunkCheck,
        chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<PathBuf, ContentError> {
        let tmp = self.complete(check, chunk)?;
        let path = persist_noclobber(tmp, &self.dir, &self.manifest.name)?;
        if let Err(e) = sync_dir(&self.dir) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(path)
    }

    /// Like [`PartialFile::finish`] up to the fsync: returns the complete,
    /// durable temporary file (still in `dir`) for the caller to move
    /// (folder sync replaces an older version, spec/sync.md).
    ///
    /// # Errors
    /// As [`PartialFile::finish`]; the temporary file is deleted on error.
    pub fn complete<E: std::fmt::Display>(
        &self,
        check: ChunkCheck,
        mut chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
    ) -> Result<NamedTempFile, ContentError> {
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = false;
        let tmp = self.tmp.lock().unwrap_or_else(|e| e.into_inner()).take();
        let tmp = tmp.ok_or_else(|| {
            io("finish")(std::io::Error::other(
                "the partial file was already finished",
            ))
        })?;
        let mut run = Run::default();
        for (index, cid) in (0u64..).zip(&self.manifest.chunks) {
            if self.is_written(index) {
                self.write_run(&mut run)?;
                continue;
            }
            let data = chunk(cid).map_err(|e| ContentError::ChunkUnavailable {
                cid: Box::new(*cid),
                reason: e.to_string(),
            })?;
            check_chunk(&self.manifest, index, cid, &data, check)?;
            self.add_to_run(&mut run, index, data)?;
        }
        self.write_run(&mut run)?;
        tmp.as_file().sync_all().map_err(io("fsync file"))?;
        Ok(tmp)
    }

    /// True when chunk number `index` (0-based) is written and complete.
    pub fn is_written(&self, index: u64) -> bool {
        let (w, bit) = ((index / 64) as usize, index % 64);
        self.written
            .get(w)
            .is_some_and(|x| x.load(Ordering::Acquire) & (1 << bit) != 0)
    }

    fn mark(&self, index: u64) {
        let (w, bit) = ((index / 64) as usize, index % 64);
        if let Some(x) = self.written.get(w) {
            x.fetch_or(1 << bit, Ordering::AcqRel);
        }
    }

    /// Checks `data`'s length against the manifest's chunk `index`.
    fn check_length(&self, index: u64, data: &[u8]) -> Result<(), ContentError> {
        let cid = usize::try_from(index)
            .ok()
            .and_then(|i| self.manifest.chunks.get(i));
        let Some(cid) = cid else {
            return Err(ContentError::ChunkLength {
                index,
                expected_bytes: 0,
                actual_bytes: data.len() as u64,
            });
        };
        check_chunk(&self.manifest, index, cid, data, ChunkCheck::LengthOnly)
    }

    /// Adds chunk `index` (the one after the run's last) to `run`, first
    /// writing the run if the chunk would take it past [`RUN_BYTES`].
    /// Returns how many chunks were written.
    fn add_to_run(&self, run: &mut Run, index: u64, data: Bytes) -> Result<u64, ContentError> {
        let n = if run.bytes + data.len() > RUN_BYTES {
            self.write_run(run)?
        } else {
            0
        };
        run.push(index, data);
        Ok(n)
    }

    /// Writes the chunks gathered in `run` (none: nothing) as one run,
    /// marks them written and empties `run`. Returns how many it wrote.
    fn write_run(&self, run: &mut Run) -> Result<u64, ContentError> {
        let Some(first) = run.first else {
            return Ok(0);
        };
        let parts: Vec<&[u8]> = run.chunks.iter().map(|c| &c[..]).collect();
        self.write_at(first, &parts)?;
        let n = run.chunks.len() as u64;
        for index in first..first + n {
            self.mark(index);
        }
        *run = Run::default();
        Ok(n)
    }

    /// Writes `parts`, consecutive chunks from chunk `index` on, at that
    /// chunk's offset: whole aligned blocks on the direct handle, straight
    /// from the parts when they lie on [`ALIGN`] boundaries in memory (as
    /// the QUIC receiver places chunk payloads) and otherwise from one
    /// aligned copy of them all; the rest (and everything, when a direct
    /// write fails) on the ordinary handle. Every part but the last is a
    /// whole chunk, so with a direct handle (chunk size a multiple of
    /// [`ALIGN`]) only the last part can end off a block boundary.
    fn write_at(&self, index: u64, parts: &[&[u8]]) -> Result<(), ContentError> {
        let offset = index * u64::from(self.manifest.chunk_size);
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let whole = total / ALIGN * ALIGN;
        // Bytes written on the direct handle, from the start.
        let done = match &self.direct {
            Some(d) if whole > 0 => match write_parts_direct(d, parts, offset, whole) {
                0 if write_copy_direct(d, parts, offset, whole) => whole,
                n => n,
            },
            _ => 0,
        };
        // What the direct writes did not cover, part by part.
        let mut at = 0;
        for p in parts {
            let (lo, hi) = (at, at + p.len());
            at = hi;
            if hi <= done {
                continue;
            }
            let skip = done.saturating_sub(lo);
            self.file
                .write_all_at(&p[skip..], offset + (lo + skip) as u64)
                .map_err(io("write"))?;
        }
        Ok(())
    }
}

/// Writes the first `whole` bytes of `parts`, laid end to end, at
/// `offset` of the `O_DIRECT` handle `direct` from one aligned copy of
/// them (this thread's [`SCRATCH`]). True if all were written.
fn write_copy_direct(direct: &File, parts: &[&[u8]], offset: u64, whole: usize) -> bool {
    SCRATCH.with_borrow_mut(|buf| {
        // Grown (and zeroed) only when a larger run comes.
        if buf.len() < whole + ALIGN {
            buf.resize(whole + ALIGN, 0);
        }
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        let mut at = start;
        for p in parts {
            let take = p.len().min(start + whole - at);
            buf[at..at + take].copy_from_slice(&p[..take]);
            at += take;
        }
        direct
            .write_all_at(&buf[start..start + whole], offset)
            .is_ok()
    })
}

/// Consecutive chunks gathered for one write.
#[derive(Default)]
struct Run {
    /// The index of the first chunk; `None` when empty.
    first: Option<u64>,
    chunks: Vec<Bytes>,
    bytes: usize,
}

impl Run {
    /// Adds chunk `index`, which follows the last one (or starts the run).
    fn push(&mut self, index: u64, data: Bytes) {
        self.first.get_or_insert(index);
        debug_assert_eq!(
            self.first.map(|f| f + self.chunks.len() as u64),
            Some(index)
        );
        self.bytes += data.len();
        self.chunks.push(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Chunker, ManifestBuilder};

    /// A manifest and its chunks for `len` bytes in `chunk_size` chunks.
    fn fixture(len: usize, chunk_size: u32) -> (Manifest, Vec<Bytes>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = ManifestBuilder::new(String::from("f.bin"), chunk_size);
        let mut chunks = Vec::new();
        for c in Chunker::new(std::io::Cursor::new(data), chunk_size).unwrap() {
            let c = c.unwrap();
            b.push(&c);
            chunks.push(c.data);
        }
        (b.finish(), chunks)
    }

    fn whole(chunks: &[Bytes]) -> Vec<u8> {
        chunks.concat()
    }

    #[test]
    fn chunks_in_any_order_with_gaps_make_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        // 4096-multiple chunks (direct writes where allowed) and a short tail.
        let (m, chunks) = fixture(5 * 8192 + 1000, 8192);
        let p = PartialFile::create(dir.path(), m.clone()).unwrap();
        for i in [5u64, 2, 0, 2] {
            p.write_chunk(i, &chunks[i as usize]).unwrap();
        }
        assert_eq!(p.written_chunks(), 3);
        // A duplicate writes nothing; a wrong length is refused.
        assert!(!p.write_chunk(0, &chunks[0]).unwrap());
        assert!(matches!(
            p.write_chunk(1, &chunks[5]),
            Err(ContentError::ChunkLength { index: 1, .. })
        ));
        let mut asked = Vec::new();
        let path = p
            .finish(ChunkCheck::Hash, |cid: &Cid| {
                asked.push(*cid);
                let i = m.chunks.iter().position(|c| c == cid).unwrap();
                Ok::<_, String>(chunks[i].clone())
            })
            .unwrap();
        assert_eq!(asked, vec![m.chunks[1], m.chunks[3], m.chunks[4]]);
        assert_eq!(path, dir.path().join("f.bin"));
        assert_eq!(std::fs::read(&path).unwrap(), whole(&chunks));
        // Finished: later writes do nothing, a second finish fails.
        assert!(!p.write_chunk(1, &chunks[1]).unwrap());
        assert!(
            p.finish(ChunkCheck::Hash, |_: &Cid| Err::<Bytes, _>("no"))
                .is_err()
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the finished file remains");
    }

    #[test]
    fn odd_chunk_sizes_and_a_taken_name_still_work() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.bin"), b"someone else's").unwrap();
        let (m, chunks) = fixture(3 * 5000 + 7, 5000);
        let p = PartialFile::create(dir.path(), m.clone()).unwrap();
        for (i, c) in chunks.iter().enumerate().rev() {
            assert!(p.write_chunk(i as u64, c).unwrap());
        }
        let path = p
            .finish(ChunkCheck::Hash, |_: &Cid| Err::<Bytes, _>("not asked"))
            .unwrap();
        assert_eq!(path, dir.path().join("f (1).bin"));
        assert_eq!(std::fs::read(&path).unwrap(), whole(&chunks));
        assert_eq!(
            std::fs::read(dir.path().join("f.bin")).unwrap(),
            b"someone else's"
        );
    }

    #[test]
    fn a_bad_source_chunk_or_a_drop_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (m, chunks) = fixture(3 * 4096, 4096);
        let p = PartialFile::create(dir.path(), m.clone()).unwrap();
        p.write_chunk(0, &chunks[0]).unwrap();
        let e = p
            .finish(ChunkCheck::Hash, |_: &Cid| {
                Ok::<_, String>(chunks[0].clone())
            })
            .unwrap_err();
        assert!(matches!(e, ContentError::CidMismatch { .. }), "{e}");
        drop(p);
        let p = PartialFile::create(dir.path(), m).unwrap();
        p.write_chunk(2, &chunks[2]).unwrap();
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn writers_on_many_threads_meet_one_finish() {
        let dir = tempfile::tempdir().unwrap();
        let (m, chunks) = fixture(64 * 4096, 4096);
        let p = std::sync::Arc::new(PartialFile::create(dir.path(), m.clone()).unwrap());
        std::thread::scope(|s| {
            for t in 0..4 {
                let (p, chunks) = (p.clone(), &chunks);
                s.spawn(move || {
                    for i in (t..chunks.len()).step_by(4) {
                        p.write_chunk(i as u64, &chunks[i]).unwrap();
                    }
                });
            }
        });
        assert_eq!(p.written_chunks(), 64);
        let path = p
            .finish(ChunkCheck::Hash, |_: &Cid| Err::<Bytes, _>("not asked"))
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), whole(&chunks));
    }

    /// Runs of chunks: written together up to [`RUN_BYTES`], around chunks
    /// already written, with a short last chunk, in aligned and in odd
    /// chunk sizes; the file is the same either way.
    #[test]
    fn runs_of_chunks_skip_written_ones_and_split_at_the_run_limit() {
        for chunk_size in [1 << 20, (1 << 20) + 3] {
            let dir = tempfile::tempdir().unwrap();
            let len = 11 * chunk_size as usize + 777;
            let (m, chunks) = fixture(len, chunk_size);
            assert_eq!(chunks.len(), 12);
            let p = PartialFile::create(dir.path(), m.clone()).unwrap();
            assert!(p.write_chunk(2, &chunks[2]).unwrap());
            // 0..=1, then 3..=6 and 7..=9 (four 1 MiB chunks fill a run).
            assert_eq!(p.write_chunks(0, &chunks[..10]).unwrap(), 9);
            assert_eq!(p.written_chunks(), 10);
            assert_eq!(p.write_chunks(4, &chunks[4..6]).unwrap(), 0, "all written");
            // A wrong length is refused, and its run is not written.
            let bad = [chunks[10].clone(), chunks[10].clone()];
            let e = p.write_chunks(10, &bad).unwrap_err();
            assert!(
                matches!(e, ContentError::ChunkLength { index: 11, .. }),
                "{e}"
            );
            assert!(!p.is_written(10) && !p.is_written(11));
            let mut asked = 0;
            let path = p
                .finish(ChunkCheck::Hash, |cid: &Cid| {
                    asked += 1;
                    let i = m.chunks.iter().position(|c| c == cid).unwrap();
                    Ok::<_, String>(chunks[i].clone())
                })
                .unwrap();
            assert_eq!(asked, 2, "chunks 10 and 11 come from the source");
            assert_eq!(std::fs::read(&path).unwrap(), whole(&chunks));
            // Finished: nothing more is written.
            assert_eq!(p.write_chunks(0, &chunks[..1]).unwrap(), 0);
        }
    }
}
