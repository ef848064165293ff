//! Chunk bytes kept beside the database, in append-only segment files
//! (spec/store.md §Blob segments).
//!
//! A chunk of [`BLOB_MIN_BYTES`] or more is appended to the active segment
//! file `<store>.blobs/<id>.seg` instead of being copied into a redb
//! page; the database keeps only its place ([`super::tables::CHUNK_BLOBS`])
//! and each segment's live byte count ([`super::tables::BLOB_SEGMENTS`]).
//! The transaction that references new bytes makes the segment durable
//! (`fdatasync`) before redb's commit, so a committed reference never
//! points at bytes a crash could lose. Bytes written by a transaction that
//! then aborts are dead space, reclaimed with their segment.
//!
//! A segment is deleted after the commit that drops its last live chunk
//! (never while it is the one being appended to); at start-up every
//! segment file with no live bytes is removed and appends go to a new one.
//! A segment holds at most [`SEGMENT_MAX_BYTES`] (plus one chunk).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Chunks at least this long (bytes) go to segment files; smaller ones
/// stay inline in `chunks-0`.
pub const BLOB_MIN_BYTES: usize = 16 * 1024;

/// Appended bytes handed to the kernel's writeback at a time (bytes): see
/// [`start_writeback`].
const WRITEBACK_BYTES: u64 = 1 << 20;

/// A segment stops taking appends once it is this long (bytes).
pub const SEGMENT_MAX_BYTES: u64 = 64 << 20;

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    id: u64,
    file: Arc<File>,
    len: u64,
    /// Written since the last [`Blobs::sync`].
    dirty: bool,
    /// Bytes before this offset have been handed to [`start_writeback`].
    writeback_from: u64,
}

/// The segment files of one store.
#[derive(Debug)]
pub(super) struct Blobs {
    dir: PathBuf,
    /// The next segment id to create.
    next_id: Mutex<u64>,
    active: Mutex<Option<Active>>,
    /// Segments no longer appended to whose last bytes are not synced yet
    /// (the next [`Blobs::sync`] syncs them).
    unsynced: Mutex<Vec<Arc<File>>>,
    /// When bytes of each segment were last released, as far as
    /// compaction has looked (see [`Blobs::quiet_segments`]).
    releases: Mutex<Releases>,
    /// Segments emptied by lazy commits, deleted after the next durable
    /// one ([`Blobs::delete_now_durable`]).
    deferred: Mutex<Vec<u64>>,
    /// Read handles of segments, opened on first read.
    readers: Mutex<HashMap<u64, Arc<File>>>,
}

/// Releases of segment bytes, for compaction's quiet rule.
#[derive(Debug, Default)]
struct Releases {
    /// Segments released by transactions committed since the last
    /// [`Blobs::quiet_segments`].
    pending: Vec<u64>,
    /// Segment -> when its bytes were last released (ms, the caller's
    /// clock); `None` for "long ago".
    last_ms: HashMap<u64, Option<u64>>,
}

/// Where [`Blobs::append`] put the bytes.
pub(super) struct Placed {
    pub segment: u64,
    pub offset: u64,
    /// The previous active segment, sealed by this append (its live count
    /// may already be 0: then it can go).
    pub sealed: Option<u64>,
}

fn path_of(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.seg"))
}

/// Segment ids of the `*.seg` files in `dir`.
fn listed(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name
            .strip_suffix(".seg")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        {
            out.push(id);
        }
    }
    Ok(out)
}

impl Blobs {
    /// Opens the segment directory `dir` (created if missing) and removes
    /// every segment file that `live` does not list with live bytes.
    /// Returns the handle and the ids removed.
    pub(super) fn open(dir: &Path, live: &HashMap<u64, u64>) -> std::io::Result<(Blobs, Vec<u64>)> {
        std::fs::create_dir_all(dir)?;
        let mut removed = Vec::new();
        let mut max = 0;
        for id in listed(dir)? {
            max = max.max(id + 1);
            if live.get(&id).copied().unwrap_or(0) == 0 {
                std::fs::remove_file(path_of(dir, id))?;
                removed.push(id);
            }
        }
        let max = live.keys().map(|id| id + 1).fold(max, u64::max);
        if !removed.is_empty() {
            File::open(dir)?.sync_all()?;
        }
        let blobs = Blobs {
            dir: dir.to_path_buf(),
            next_id: Mutex::new(max),
            active: Mutex::new(None),
            unsynced: Mutex::new(Vec::new()),
            releases: Mutex::new(Releases {
                pending: Vec::new(),
                // Each segment left from an earlier run is looked at once.
                last_ms: live.keys().map(|&id| (id, None)).collect(),
            }),
            deferred: Mutex::new(Vec::new()),
            readers: Mutex::new(HashMap::new()),
        };
        Ok((blobs, removed))
    }

    /// The id of the segment being appended to, if any.
    pub(super) fn active_id(&self) -> Option<u64> {
        lock(&self.active).as_ref().map(|a| a.id)
    }

    /// Appends `data` to the active segment (a new one if there is none or
    /// it is full). Not durable until [`Blobs::sync`].
    ///
    /// # Errors
    /// The I/O error of creating, syncing (a sealed segment) or writing.
    pub(super) fn append(&self, data: &[u8]) -> std::io::Result<Placed> {
        let mut g = lock(&self.active);
        let mut sealed = None;
        if g.as_ref().is_none_or(|a| a.len >= SEGMENT_MAX_BYTES) {
            if let Some(old) = g.take() {
                self.seal(&old);
                sealed = Some(old.id);
            }
            *g = Some(self.create()?);
        }
        let a = g.as_mut().expect("an active segment was just set");
        let offset = a.len;
        if let Err(e) = (&*a.file).write_all(data) {
            // Part of `data` may be in the file: its length is no longer
            // known, so appends go to a new segment.
            a.dirty = true;
            if let Some(old) = g.take() {
                self.seal(&old);
            }
            return Err(e);
        }
        a.len += data.len() as u64;
        a.dirty = true;
        if a.len - a.writeback_from >= WRITEBACK_BYTES {
            start_writeback(&a.file, a.writeback_from, a.len - a.writeback_from);
            a.writeback_from = a.len;
        }
        Ok(Placed {
            segment: a.id,
            offset,
            sealed,
        })
    }

    /// Stops appending to `old`; its unsynced bytes are synced by the next
    /// [`Blobs::sync`] (they may belong to the open transaction).
    fn seal(&self, old: &Active) {
        if old.dirty {
            lock(&self.unsynced).push(old.file.clone());
        }
        // Bytes released while it was active may now make it worth
        // compacting: looked at once it is quiet.
        lock(&self.releases).pending.push(old.id);
    }

    fn create(&self) -> std::io::Result<Active> {
        let mut next = lock(&self.next_id);
        let id = *next;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path_of(&self.dir, id))?;
        File::open(&self.dir)?.sync_all()?;
        *next += 1;
        Ok(Active {
            id,
            file: Arc::new(file),
            len: 0,
            dirty: false,
            writeback_from: 0,
        })
    }

    /// Makes every appended byte durable (`fdatasync` of the active segment
    /// and of segments sealed since the last sync).
    ///
    /// # Errors
    /// The I/O error of the sync.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        for f in std::mem::take(&mut *lock(&self.unsynced)) {
            f.sync_data()?;
        }
        let mut g = lock(&self.active);
        if let Some(a) = g.as_mut().filter(|a| a.dirty) {
            a.file.sync_data()?;
            a.dirty = false;
        }
        Ok(())
    }

    /// Notes that a committed transaction released bytes of `segments`.
    pub(super) fn mark_released(&self, segments: &[u64]) {
        lock(&self.releases).pending.extend_from_slice(segments);
    }

    /// The segments whose last release is at least `quiet_ms` before
    /// `now_ms` (a clock that went back counts as quiet), among those
    /// released since they were last returned. Releases noted since the
    /// last call are stamped `now_ms` first. Each returned segment is
    /// forgotten until bytes of it are released again, except those the
    /// caller [`Blobs::keep_quiet`]s.
    pub(super) fn quiet_segments(&self, now_ms: u64, quiet_ms: u64) -> Vec<u64> {
        let mut g = lock(&self.releases);
        let Releases { pending, last_ms } = &mut *g;
        for id in pending.drain(..) {
            last_ms.insert(id, Some(now_ms));
        }
        let quiet = |t: Option<u64>| t.is_none_or(|t| now_ms < t || now_ms - t >= quiet_ms);
        let out: Vec<u64> = last_ms
            .iter()
            .filter(|&(_, &t)| quiet(t))
            .map(|(&id, _)| id)
            .collect();
        for id in &out {
            last_ms.remove(id);
        }
        out
    }

    /// When [`Blobs::quiet_segments`] may next return a segment (ms on the
    /// caller's clock; 0: at the next call), `None` if no segment waits.
    pub(super) fn next_quiet_ms(&self, quiet_ms: u64) -> Option<u64> {
        let g = lock(&self.releases);
        if !g.pending.is_empty() {
            return Some(0); // to be stamped
        }
        g.last_ms
            .values()
            .map(|t| t.map_or(0, |t| t.saturating_add(quiet_ms)))
            .min()
    }

    /// Puts `segments` (from [`Blobs::quiet_segments`], still worth
    /// compacting) back, so the next call returns them again.
    pub(super) fn keep_quiet(&self, segments: &[u64]) {
        let mut g = lock(&self.releases);
        for &id in segments {
            g.last_ms.entry(id).or_insert(None);
        }
    }

    /// Reads `len` bytes at `offset` of segment `id`.
    ///
    /// # Errors
    /// The I/O error of opening or reading (e.g. `UnexpectedEof` if the
    /// segment is shorter than the reference says).
    pub(super) fn read(&self, id: u64, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let file = {
            let mut r = lock(&self.readers);
            match r.get(&id) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(path_of(&self.dir, id))?);
                    r.insert(id, f.clone());
                    f
                }
            }
        };
        let len = usize::try_from(len).map_err(std::io::Error::other)?;
        read_exact_at_uninit(&file, len, offset)
    }

    /// Notes segments emptied by a commit that a crash may undo (a lazy
    /// one): they are deleted after the next durable commit.
    pub(super) fn delete_after_durable(&self, ids: Vec<u64>) {
        lock(&self.deferred).extend(ids);
    }

    /// After a durable commit: deletes the segments it emptied and those
    /// emptied by lazy commits before it.
    pub(super) fn delete_now_durable(&self, ids: Vec<u64>) {
        let earlier = std::mem::take(&mut *lock(&self.deferred));
        for id in earlier.into_iter().chain(ids) {
            self.delete(id);
        }
    }

    /// Removes segment `id` (its last live chunk was released by a
    /// committed transaction). Never the active one.
    pub(super) fn delete(&self, id: u64) {
        if self.active_id() == Some(id) {
            return;
        }
        lock(&self.readers).remove(&id);
        if let Err(e) = std::fs::remove_file(path_of(&self.dir, id)) {
            tracing::warn!(segment = id, error = %e, "cannot remove an empty blob segment; removed at the next start");
        }
    }

    /// The length of segment `id`'s file (`None` if it does not exist).
    pub(super) fn segment_len(&self, id: u64) -> Option<u64> {
        std::fs::metadata(path_of(&self.dir, id))
            .ok()
            .map(|m| m.len())
    }

    /// Total bytes of segment files on disk.
    pub(super) fn disk_bytes(&self) -> u64 {
        listed(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| std::fs::metadata(path_of(&self.dir, id)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// `len` bytes of `file` at `offset`, read into a buffer that is not
/// zeroed first (a chunk is read for every transmission: zeroing 256 KiB
/// each time cost as much as the read).
///
/// # Errors
/// The read's error; `UnexpectedEof` if the file ends first.
fn read_exact_at_uninit(file: &File, len: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset
            .checked_add(buf.len() as u64)
            .and_then(|o| i64::try_from(o).ok())
            .ok_or_else(|| std::io::Error::other("read offset out of range"))?;
        let want = len - buf.len();
        let spare = &mut buf.spare_capacity_mut()[..want];
        // SAFETY: `spare` is writable memory of `spare.len()` bytes owned
        // by `buf`; pread writes at most that many bytes into it and
        // returns how many it wrote, and only those are marked initialized.
        let n =
            unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
        match n {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // SAFETY: pread initialized the first `n` (≤ spare.len())
            // bytes past the current length.
            n => unsafe { buf.set_len(buf.len() + n as usize) },
        }
    }
    Ok(buf)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to
/// the disk now (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, Linux), without
/// waiting for them; appends call it for every [`WRITEBACK_BYTES`]. The [`Blobs::sync`] before the commit then finds most
/// of a group's bytes already written, so the disk works while the node
/// goes on receiving, instead of all at once behind the commit. A hint
/// only: durability still comes from `fdatasync`, and a failure is ignored
/// (that `fdatasync` reports any write error).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed;
    // the call reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_rotate_and_read_back_and_start_up_removes_dead_segments() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("s.blobs");
        let (b, removed) = Blobs::open(&dir, &HashMap::new()).unwrap();
        assert!(removed.is_empty());
        let big = vec![7u8; SEGMENT_MAX_BYTES as usize];
        let p1 = b.append(&big).unwrap();
        let p2 = b.append(b"second").unwrap();
        assert_eq!((p1.segment, p1.offset, p1.sealed), (0, 0, None));
        assert_eq!((p2.segment, p2.offset, p2.sealed), (1, 0, Some(0)));
        b.sync().unwrap();
        assert_eq!(b.read(1, 0, 6).unwrap(), b"second");
        assert_eq!(b.read(0, SEGMENT_MAX_BYTES - 2, 2).unwrap(), [7, 7]);
        let e = b.read(1, 2, 10).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "past the end");
        assert_eq!(b.read(1, 2, 0).unwrap(), b"", "an empty read");
        drop(b);
        // Only segment 1 is live: segment 0 goes, appends start at 2.
        let live = HashMap::from([(1, 6)]);
        let (b, removed) = Blobs::open(&dir, &live).unwrap();
        assert_eq!(removed, vec![0]);
        assert_eq!(b.read(1, 0, 6).unwrap(), b"second");
        assert_eq!(b.append(b"x").unwrap().segment, 2);
        b.delete(1);
        assert!(b.read(1, 0, 6).is_err());
    }
}
