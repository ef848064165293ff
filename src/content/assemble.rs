//! Reassembly: writing a verified file from its manifest and chunks,
//! atomically and without clobbering.

use super::name::numbered_name;
use super::{ContentError, Manifest, verify_chunk};
use ::cid::Cid;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// How many names (`name`, `stem (1).ext`, …, `stem (999).ext`) are tried
/// before [`write_file_atomically`] gives up with
/// [`ContentError::NoFreeName`].
pub const MAX_NAME_ATTEMPTS: u32 = 1000;

/// Prefix of the temporary file created in the target directory while a
/// file is assembled (`.spore-partial-XXXXXX`).
pub const TEMP_FILE_PREFIX: &str = ".spore-partial-";

/// How [`write_file_atomically`] checks each chunk it is handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkCheck {
    /// Length and SHA-256 against the chunk's CID: for chunks from anywhere
    /// that did not check them.
    Hash,
    /// Length only: the chunks come from the node's store, which checked
    /// each against its CID before storing it (spec/manifest.md §5) and
    /// keys it by that CID. Saves hashing the whole file a second time.
    LengthOnly,
}

/// Writes the file described by `manifest` into `dir` and returns its path.
///
/// Steps: validate the manifest (name, sizes, CIDs; see
/// [`Manifest::validate`]); create `dir` if missing; write into a temporary
/// file in `dir`, asking `chunk` for each chunk in order and checking each
/// against its expected length (hence the running size) and, with
/// [`ChunkCheck::Hash`], against its CID;
/// fsync the file; move it to `dir/<name>` without replacing any existing
/// entry — if taken, `stem (1).ext`, `stem (2).ext`, … up to
/// [`MAX_NAME_ATTEMPTS`] names; fsync `dir`.
///
/// On any error no new file is left in `dir`: the temporary file is
/// removed, and a file already moved into place is removed again if the
/// directory fsync fails.
///
/// # Errors
/// - the errors of [`Manifest::validate`] (without an entry limit);
/// - [`ContentError::ChunkUnavailable`] if `chunk` fails (its error is
///   rendered with `Display`);
/// - [`ContentError::CidMismatch`] or [`ContentError::ChunkLength`] for a
///   bad chunk;
/// - [`ContentError::NoFreeName`] if every candidate name is taken;
/// - [`ContentError::Write`] for file-system errors.
pub fn write_file_atomically<E: std::fmt::Display>(
    dir: &Path,
    manifest: &Manifest,
    check: ChunkCheck,
    chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
) -> Result<PathBuf, ContentError> {
    write_staged_file_atomically(dir, manifest, check, None, chunk)
}

/// As [`write_file_atomically`], starting from `staged`: the chunks already
/// written there are not asked for again. A staged file that is not in
/// `dir` is dropped (deleted) and the whole file is written.
///
/// # Errors
/// As [`write_file_atomically`]; on error the staged file is removed too.
pub fn write_staged_file_atomically<E: std::fmt::Display>(
    dir: &Path,
    manifest: &Manifest,
    check: ChunkCheck,
    staged: Option<Staged>,
    chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
) -> Result<PathBuf, ContentError> {
    // The entry limit protects decoders; a manifest in hand is checked for
    // everything else.
    manifest.validate(usize::MAX)?;
    std::fs::create_dir_all(dir).map_err(io("create dir"))?;
    let (tmp, written) = Staged::take_or_create(staged, dir).map_err(io("create temp file"))?;
    fill_chunks(tmp.as_file(), manifest, check, &written, chunk)?;
    tmp.as_file().sync_all().map_err(io("fsync file"))?;
    let path = persist_noclobber(tmp, dir, &manifest.name)?;
    if let Err(e) = sync_dir(dir) {
        // Best effort: the caller is told the write failed, so do not
        // leave a file behind that it does not know about.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// A file of a manifest partly written ahead of reassembly, as its chunks
/// arrive: a temporary file (`.spore-partial-*`, removed when dropped) in
/// the directory the file will be moved into, and the offsets whose chunk
/// is written.
#[derive(Debug)]
pub struct Staged {
    file: NamedTempFile,
    written: BTreeSet<u64>,
}

impl Staged {
    /// Creates an empty staged file in `dir` (which must exist).
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create_in(dir: &Path) -> std::io::Result<Staged> {
        let file = tempfile::Builder::new()
            .prefix(TEMP_FILE_PREFIX)
            .tempfile_in(dir)?;
        Ok(Staged {
            file,
            written: BTreeSet::new(),
        })
    }

    /// Writes `bytes` at each of `offsets` (bytes from the start), not
    /// synced. The caller vouches that `bytes` is the manifest's chunk at
    /// those offsets (checked against its CID and length).
    ///
    /// # Errors
    /// The write fails; the offsets are then not marked written.
    pub fn write_at(&mut self, offsets: &[u64], bytes: &[u8]) -> std::io::Result<()> {
        for &offset in offsets {
            if !self.written.contains(&offset) {
                write_all_at(self.file.as_file(), bytes, offset)?;
                self.written.insert(offset);
            }
        }
        Ok(())
    }

    /// The directory the staged file is in.
    pub fn dir(&self) -> Option<&Path> {
        self.file.path().parent()
    }

    /// How many chunks (offsets) are written.
    pub fn chunks_written(&self) -> usize {
        self.written.len()
    }

    /// `staged`'s file and written offsets if it is in `dir`; else a new
    /// empty temporary file in `dir`.
    pub(crate) fn take_or_create(
        staged: Option<Staged>,
        dir: &Path,
    ) -> std::io::Result<(NamedTempFile, BTreeSet<u64>)> {
        match staged {
            Some(s) if s.dir() == Some(dir) => Ok((s.file, s.written)),
            _ => Staged::create_in(dir).map(|s| (s.file, s.written)),
        }
    }
}

/// Writes every chunk of `manifest` whose offset is not in `written` into
/// `out` at its offset, asking `chunk` for it and checking it against its
/// expected length and, with [`ChunkCheck::Hash`], its CID; then checks
/// that `out` is exactly `manifest.size` bytes long.
///
/// # Errors
/// [`ContentError::ChunkUnavailable`], [`ContentError::CidMismatch`],
/// [`ContentError::ChunkLength`], or [`ContentError::Write`] (also for a
/// file whose length differs from the manifest's size).
pub(crate) fn fill_chunks<E: std::fmt::Display>(
    out: &std::fs::File,
    manifest: &Manifest,
    check: ChunkCheck,
    written: &BTreeSet<u64>,
    mut chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
) -> Result<(), ContentError> {
    let step = u64::from(manifest.chunk_size);
    for (index, cid) in (0u64..).zip(&manifest.chunks) {
        let offset = index.saturating_mul(step);
        if written.contains(&offset) {
            continue;
        }
        let data = chunk(cid).map_err(|e| ContentError::ChunkUnavailable {
            cid: Box::new(*cid),
            reason: e.to_string(),
        })?;
        check_chunk(manifest, index, cid, &data, check)?;
        write_all_at(out, &data, offset).map_err(io("write"))?;
    }
    let len = out.metadata().map_err(io("stat"))?.len();
    if len != manifest.size {
        let e = std::io::Error::other(format!(
            "file is {len} bytes, manifest says {}",
            manifest.size
        ));
        return Err(io("length check")(e));
    }
    Ok(())
}

#[cfg(unix)]
fn write_all_at(f: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, bytes, offset)
}

#[cfg(not(unix))]
fn write_all_at(mut f: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)
}

/// Checks one chunk's length and CID against the manifest.
fn check_chunk(
    manifest: &Manifest,
    index: u64,
    cid: &Cid,
    data: &[u8],
    check: ChunkCheck,
) -> Result<(), ContentError> {
    let expected_bytes = manifest.chunk_len_bytes(index).unwrap_or(0);
    if data.len() as u64 != expected_bytes {
        return Err(ContentError::ChunkLength {
            index,
            expected_bytes,
            actual_bytes: data.len() as u64,
        });
    }
    match check {
        ChunkCheck::Hash => verify_chunk(cid, data),
        ChunkCheck::LengthOnly => Ok(()),
    }
}

/// Moves `tmp` to the first free name among `name`, `stem (1).ext`, …
fn persist_noclobber(
    mut tmp: NamedTempFile,
    dir: &Path,
    name: &str,
) -> Result<PathBuf, ContentError> {
    for attempt in 0..MAX_NAME_ATTEMPTS {
        let path = dir.join(numbered_name(name, attempt));
        match tmp.persist_noclobber(&path) {
            Ok(_file) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            // Dropping `e` drops its temp file, which deletes it.
            Err(e) => return Err(io("rename")(e.error)),
        }
    }
    Err(ContentError::NoFreeName {
        name: name.to_owned(),
        attempts: MAX_NAME_ATTEMPTS,
    })
}

/// Makes the directory entry durable (a no-op where directories cannot be
/// opened as files).
fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync dir"))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn io(op: &'static str) -> impl Fn(std::io::Error) -> ContentError {
    move |source| ContentError::Write { op, source }
}
