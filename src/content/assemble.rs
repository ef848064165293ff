//! Reassembly: writing a verified file from its manifest and chunks,
//! atomically and without clobbering.

use super::direct::DirectWriter;
use super::name::numbered_name;
use super::{ContentError, Manifest, verify_chunk};
use ::cid::Cid;
use bytes::Bytes;
use std::fs::File;
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
    let tmp = start_temp_file(dir, manifest)?;
    write_chunks(tmp.as_file(), manifest, check, chunk)?;
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

/// Validates `manifest` (no entry limit: the limit protects decoders, a
/// manifest in hand is checked for everything else), creates `dir` if
/// missing and a temporary file in it.
pub(super) fn start_temp_file(
    dir: &Path,
    manifest: &Manifest,
) -> Result<NamedTempFile, ContentError> {
    manifest.validate(usize::MAX)?;
    std::fs::create_dir_all(dir).map_err(io("create dir"))?;
    tempfile::Builder::new()
        .prefix(TEMP_FILE_PREFIX)
        .tempfile_in(dir)
        .map_err(io("create temp file"))
}

/// Writes the chunks of `manifest` in order into `file` (new and empty),
/// asking `chunk` for each and checking it as [`write_file_atomically`]
/// does; past the page cache where the file system allows
/// ([`DirectWriter`]). Does not fsync.
///
/// # Errors
/// [`ContentError::ChunkUnavailable`], [`ContentError::CidMismatch`],
/// [`ContentError::ChunkLength`], or [`ContentError::Write`] (op
/// `"write"`).
pub(crate) fn write_chunks<E: std::fmt::Display>(
    file: &File,
    manifest: &Manifest,
    check: ChunkCheck,
    mut chunk: impl FnMut(&Cid) -> Result<Bytes, E>,
) -> Result<(), ContentError> {
    let mut out = DirectWriter::new(file);
    for (index, cid) in (0u64..).zip(&manifest.chunks) {
        let data = chunk(cid).map_err(|e| ContentError::ChunkUnavailable {
            cid: Box::new(*cid),
            reason: e.to_string(),
        })?;
        check_chunk(manifest, index, cid, &data, check)?;
        out.write(&data).map_err(io("write"))?;
    }
    out.finish().map_err(io("write"))
}

/// Checks one chunk's length and CID against the manifest.
pub(super) fn check_chunk(
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
pub(super) fn persist_noclobber(
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
pub(super) fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync dir"))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

pub(super) fn io(op: &'static str) -> impl Fn(std::io::Error) -> ContentError {
    move |source| ContentError::Write { op, source }
}
