//! Writing a received folder file under an accepting directory: path
//! checks, no symlink followed, verified content, atomic replacement,
//! versions and conflict copies (spec/sync.md §Receiving).

use super::scan::FileStat;
use super::state::{ReceivedFile, SyncState, key};
use super::{SyncError, conflict_name};
use crate::content::assemble::{TEMP_FILE_PREFIX, write_chunks};
use crate::content::{
    ChunkCheck, Cid, ContentError, FolderEntry, Manifest, PartialFile, sanitize_relative_path,
};
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The file was written at this path.
    Written(PathBuf),
    /// Written, and the locally changed copy kept under the second path.
    WrittenWithConflict(PathBuf, PathBuf),
    /// A tombstone removed the file (or it was already absent).
    Deleted(PathBuf),
    /// A tombstone for a locally changed file: the file is kept.
    DeleteSkipped(PathBuf),
    /// A version not newer than the one already here: nothing done.
    Stale,
}

/// Applies one received folder manifest under `root` (the accept
/// directory; the file lands in `root/<folder>/<path>`), reading chunks
/// through `chunk` and checking each as `check` says (`LengthOnly` for
/// chunks from the node's store, checked against their CIDs when they
/// arrived). `source` is the manifest bundle's source node ID, `now_ms`
/// the time for conflict names. `partial`: the file already written in
/// part as its chunks arrived ([`PartialFile`], created under `root`, on
/// the same file system); only its missing chunks are fetched, and it is
/// moved into place (on another file system, or for a tombstone or stale
/// version, it is dropped and the file written as without it).
///
/// # Errors
/// [`SyncError::Refused`] for a hostile path or a symlink/non-directory in
/// the way; [`SyncError::Content`] for a missing or bad chunk;
/// [`SyncError::Io`], [`SyncError::State`]. Nothing is written outside
/// `root` and no partial file is left.
#[allow(clippy::too_many_arguments)] // each is a distinct input of one receive step
pub fn apply<E: std::fmt::Display>(
    root: &Path,
    manifest: &Manifest,
    entry: &FolderEntry,
    source: &str,
    now_ms: u64,
    state: &SyncState,
    check: ChunkCheck,
    chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
    partial: Option<&PartialFile>,
) -> Result<Applied, SyncError> {
    let p = prepare(root, manifest, entry, source, now_ms, state)?;
    match p.step {
        Step::Stale => Ok(Applied::Stale),
        Step::DeleteSkipped => {
            state.put_received(&p.key, &received(entry, None, manifest))?;
            Ok(Applied::DeleteSkipped(p.target))
        }
        Step::Delete => {
            if p.current.is_some() {
                std::fs::remove_file(&p.target).map_err(SyncError::io("remove", &p.target))?;
                sync_dir(&p.parent)?;
            }
            state.put_received(&p.key, &received(entry, None, manifest))?;
            Ok(Applied::Deleted(p.target))
        }
        Step::Write { conflict } => {
            if let Some(c) = &conflict {
                std::fs::rename(&p.target, c).map_err(SyncError::io("rename", &p.target))?;
            }
            let stat = write_verified(&p.parent, &p.target, manifest, check, chunk, partial)?;
            state.put_received(&p.key, &received(entry, Some(stat), manifest))?;
            Ok(match conflict {
                Some(c) => Applied::WrittenWithConflict(p.target, c),
                None => Applied::Written(p.target),
            })
        }
    }
}

/// What receiving one folder manifest needs, decided before any write.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The `received-0` key.
    pub(crate) key: String,
    /// The file's directory (exists, no symlink on the way).
    pub(crate) parent: PathBuf,
    /// `parent/name` (for [`Step::Stale`], `parent` and `target` are the
    /// root and unused).
    pub(crate) target: PathBuf,
    /// Stat of the file at `target` now, if any.
    pub(crate) current: Option<FileStat>,
    /// What to do.
    pub(crate) step: Step,
}

/// The step [`prepare`] chose.
#[derive(Debug)]
pub(crate) enum Step {
    /// Not newer than the version written here.
    Stale,
    /// A tombstone for a locally changed file: keep it, record the version.
    DeleteSkipped,
    /// A tombstone: remove `target` if present.
    Delete,
    /// Write the content; first rename the locally changed copy to
    /// `conflict` if given.
    Write {
        /// Where the locally changed copy goes.
        conflict: Option<PathBuf>,
    },
}

/// Checks a folder manifest (path rules, version, symlinks, local
/// changes) and creates its directories: everything [`apply`] does before
/// writing content. Shared with pack receiving ([`super::pack_apply`]).
pub(crate) fn prepare(
    root: &Path,
    manifest: &Manifest,
    entry: &FolderEntry,
    source: &str,
    now_ms: u64,
    state: &SyncState,
) -> Result<Prepared, SyncError> {
    let refused = |reason: String| SyncError::Refused {
        path: entry.path.clone(),
        reason,
    };
    entry
        .validate(&manifest.name, manifest.size, manifest.chunks.len() as u64)
        .map_err(|e| refused(e.to_string()))?;
    manifest
        .validate(usize::MAX)
        .map_err(|e| refused(e.to_string()))?;
    let parts = sanitize_relative_path(&entry.path).map_err(|e| refused(e.to_string()))?;
    let key = key(&[source, &entry.folder, &entry.path]);
    let prev = state.received(&key)?;
    if prev.as_ref().is_some_and(|p| p.fversion >= entry.fversion) {
        // Nothing is touched for a stale version (the paths are unused).
        return Ok(Prepared {
            key,
            parent: root.to_path_buf(),
            target: root.to_path_buf(),
            current: None,
            step: Step::Stale,
        });
    }
    std::fs::create_dir_all(root).map_err(SyncError::io("create dir", root))?;
    let dirs = [
        std::slice::from_ref(&entry.folder),
        &parts[..parts.len() - 1],
    ]
    .concat();
    let parent = open_parent(root, &dirs).map_err(|e| match e {
        SyncError::Refused { reason, .. } => refused(reason),
        other => other,
    })?;
    let target = parent.join(&manifest.name);
    let mut p = Prepared {
        key,
        current: None,
        step: Step::Stale,
        target,
        parent,
    };
    p.current = match std::fs::symlink_metadata(&p.target) {
        Ok(m) if m.is_file() => Some(FileStat::of(&m)),
        Ok(_) => return Err(refused("a symlink or directory is in the way".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(SyncError::io("stat", &p.target)(e)),
    };
    let recorded = prev.as_ref().and_then(|p| p.stat);
    let changed_here = p.current.is_some()
        && p.current != recorded
        && !crate::content::file_matches(&p.target, manifest);
    p.step = match (entry.deleted, changed_here) {
        (true, true) => Step::DeleteSkipped,
        (true, false) => Step::Delete,
        (false, true) => Step::Write {
            conflict: Some(p.parent.join(conflict_name(&manifest.name, source, now_ms))),
        },
        (false, false) => Step::Write { conflict: None },
    };
    Ok(p)
}

/// The `received-0` row for a version written (or deleted) here.
pub(crate) fn received(
    entry: &FolderEntry,
    stat: Option<FileStat>,
    manifest: &Manifest,
) -> ReceivedFile {
    ReceivedFile {
        fversion: entry.fversion,
        stat,
        manifest_cid: manifest.cid_with(Some(entry)).to_bytes(),
    }
}

/// Walks (creating as needed) the directories `parts` under `root`,
/// refusing symlinks and non-directories; returns the last directory.
pub(crate) fn open_parent(root: &Path, parts: &[String]) -> Result<PathBuf, SyncError> {
    let mut cur = root.to_path_buf();
    for p in parts {
        cur.push(p);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(SyncError::Refused {
                    path: cur.display().to_string(),
                    reason: "a directory in the path is a symlink".into(),
                });
            }
            Ok(_) => {
                return Err(SyncError::Refused {
                    path: cur.display().to_string(),
                    reason: "a directory in the path is a file".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(SyncError::io("create dir", &cur)(e)),
            },
            Err(e) => return Err(SyncError::io("stat", &cur)(e)),
        }
    }
    Ok(cur)
}

/// Writes the verified content into a temporary file in `dir`, fsyncs it,
/// renames it over `target` and fsyncs `dir`; returns the final stat.
fn write_verified<E: std::fmt::Display>(
    dir: &Path,
    target: &Path,
    manifest: &Manifest,
    check: ChunkCheck,
    mut chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
    partial: Option<&PartialFile>,
) -> Result<FileStat, SyncError> {
    let io = |op| SyncError::io(op, target);
    let content_err = |e| match e {
        ContentError::Write { op, source } => io(op)(source),
        e => e.into(),
    };
    if let Some(part) = partial {
        let tmp = part.complete(check, &mut chunk).map_err(content_err)?;
        match tmp.persist(target) {
            Ok(file) => {
                let stat = FileStat::of(&file.metadata().map_err(io("stat"))?);
                sync_dir(dir)?;
                return Ok(stat);
            }
            // Another file system under `root`: written below instead
            // (dropping the error deletes the temporary file).
            Err(e) if e.error.raw_os_error() == Some(libc::EXDEV) => {}
            Err(e) => return Err(io("rename")(e.error)),
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_FILE_PREFIX)
        .tempfile_in(dir)
        .map_err(io("create temp file in"))?;
    write_chunks(tmp.as_file(), manifest, check, chunk).map_err(content_err)?;
    tmp.as_file().sync_all().map_err(io("fsync"))?;
    let file = tmp.persist(target).map_err(|e| io("rename")(e.error))?;
    let stat = FileStat::of(&file.metadata().map_err(io("stat"))?);
    sync_dir(dir)?;
    Ok(stat)
}

/// Removes `.spore-partial-*` files left under `root` by a crash during a
/// write (symlinks are not followed); returns how many.
pub fn remove_partial_files(root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file()
                && e.file_name()
                    .to_string_lossy()
                    .starts_with(TEMP_FILE_PREFIX)
                && std::fs::remove_file(e.path()).is_ok()
            {
                n += 1;
            }
        }
    }
    n
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), SyncError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SyncError::io("fsync dir", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Chunker, ManifestBuilder};
    use std::collections::HashMap;

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        state: SyncState,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("recv");
        let state = SyncState::open(tmp.path()).unwrap();
        Fixture {
            root,
            state,
            _tmp: tmp,
        }
    }

    fn version(path: &str, v: u64, data: &[u8]) -> (Manifest, FolderEntry, HashMap<Cid, Bytes>) {
        let name = path.rsplit('/').next().unwrap();
        let mut b = ManifestBuilder::new(name, 1024);
        let mut chunks = HashMap::new();
        for c in Chunker::new(data, 1024).unwrap() {
            let c = c.unwrap();
            b.push(&c);
            chunks.insert(c.cid, c.data);
        }
        let e = FolderEntry {
            folder: "f".into(),
            path: path.into(),
            fversion: v,
            deleted: false,
        };
        (b.finish(), e, chunks)
    }

    fn put(fx: &Fixture, path: &str, v: u64, data: &[u8]) -> Result<Applied, SyncError> {
        let (m, e, chunks) = version(path, v, data);
        apply(
            &fx.root,
            &m,
            &e,
            "dtn://a/",
            99,
            &fx.state,
            ChunkCheck::Hash,
            |c: &Cid| chunks.get(c).cloned().ok_or("missing"),
            None,
        )
    }

    #[test]
    fn newer_replaces_older_is_ignored_and_local_edits_are_kept() {
        let fx = fixture();
        let p = fx.root.join("f/d/x.txt");
        assert_eq!(
            put(&fx, "d/x.txt", 5, b"one").unwrap(),
            Applied::Written(p.clone())
        );
        put(&fx, "d/x.txt", 6, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(put(&fx, "d/x.txt", 4, b"old").unwrap(), Applied::Stale);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        std::fs::write(&p, b"local edit").unwrap();
        let c = fx.root.join("f/d/x.conflict-a-99.txt");
        assert_eq!(
            put(&fx, "d/x.txt", 7, b"three").unwrap(),
            Applied::WrittenWithConflict(p.clone(), c.clone())
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        assert_eq!(std::fs::read(&c).unwrap(), b"local edit");
    }

    #[test]
    fn tombstones_delete_only_unchanged_files() {
        let fx = fixture();
        put(&fx, "a.txt", 1, b"a").unwrap();
        put(&fx, "b.txt", 1, b"b").unwrap();
        std::fs::write(fx.root.join("f/b.txt"), b"changed here").unwrap();
        for (path, want) in [("a.txt", false), ("b.txt", true)] {
            let (m, mut e, _) = version(path, 2, b"");
            e.deleted = true;
            let none = |_: &Cid| Err::<Bytes, _>("none");
            apply(
                &fx.root,
                &m,
                &e,
                "dtn://a/",
                99,
                &fx.state,
                ChunkCheck::Hash,
                none,
                None,
            )
            .unwrap();
            assert_eq!(fx.root.join("f").join(path).exists(), want, "{path}");
        }
    }

    #[test]
    fn bad_chunks_and_symlinks_leave_nothing() {
        let fx = fixture();
        let (m, e, _) = version("x.bin", 1, &[7u8; 3000]);
        let wrong = |_: &Cid| Ok::<_, String>(Bytes::from(vec![0u8; 1024]));
        let r = apply(
            &fx.root,
            &m,
            &e,
            "dtn://a/",
            1,
            &fx.state,
            ChunkCheck::Hash,
            wrong,
            None,
        );
        assert!(matches!(r, Err(SyncError::Content(_))), "{r:?}");
        let left: Vec<_> = std::fs::read_dir(fx.root.join("f")).unwrap().collect();
        assert!(left.is_empty(), "no partial file: {left:?}");
        let outside = fx._tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, fx.root.join("f/l")).unwrap();
            let r = put(&fx, "l/y.txt", 1, b"y");
            assert!(matches!(r, Err(SyncError::Refused { .. })), "{r:?}");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_partly_written_file_is_completed_moved_into_place_or_dropped() {
        let fx = fixture();
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 241) as u8).collect();
        let (m, e, chunks) = version("d/big.bin", 1, &data);
        let part = PartialFile::create(&fx.root, m.clone()).unwrap();
        assert!(part.write_chunk(1, &chunks[&m.chunks[1]]).unwrap());
        let mut asked = Vec::new();
        let r = apply(
            &fx.root,
            &m,
            &e,
            "dtn://a/",
            1,
            &fx.state,
            ChunkCheck::Hash,
            |c: &Cid| {
                asked.push(*c);
                chunks.get(c).cloned().ok_or("missing")
            },
            Some(&part),
        )
        .unwrap();
        let target = fx.root.join("f/d/big.bin");
        assert_eq!(r, Applied::Written(target.clone()));
        assert_eq!(std::fs::read(&target).unwrap(), data);
        assert!(!asked.contains(&m.chunks[1]), "chunk 1 came early");
        assert_eq!(asked.len(), m.chunks.len() - 1);
        let temps = std::fs::read_dir(&fx.root).unwrap().flatten();
        let temps = temps.filter(|d| {
            d.file_name()
                .to_string_lossy()
                .starts_with(TEMP_FILE_PREFIX)
        });
        assert_eq!(temps.count(), 0);

        // A stale version's partial file is dropped, nothing else changes.
        let (m0, e0, chunks0) = version("d/big.bin", 0, b"older");
        let part = PartialFile::create(&fx.root, m0.clone()).unwrap();
        part.write_chunk(0, &chunks0[&m0.chunks[0]]).unwrap();
        let r = apply(
            &fx.root,
            &m0,
            &e0,
            "dtn://a/",
            2,
            &fx.state,
            ChunkCheck::Hash,
            |c: &Cid| chunks0.get(c).cloned().ok_or("missing"),
            Some(&part),
        );
        assert_eq!(r.unwrap(), Applied::Stale);
        drop(part);
        assert_eq!(remove_partial_files(&fx.root), 0, "no temporary file left");
        assert_eq!(std::fs::read(&target).unwrap(), data);
    }
}
