//! Chunk input of a job (spec/jobs.md §2, "Chunk input"): the bytes named
//! by the CIDs of a `JobInput::Chunks` request, found on the executing node.
//!
//! Each CID is either a chunk CID (raw, `0x55`) or a manifest CID
//! (dag-cbor, `0x71`) standing for the whole file, chunk after chunk. A
//! chunk's bytes come from the chunk table while its bundle is held or its
//! file is still being assembled; once the file is written to the inbox
//! the chunk table lets go of them, and they are read back from the written
//! file at the chunk's offset and checked against the CID (a file changed
//! since is `input_missing`, never wrong input). Finding the file of a bare
//! chunk CID scans the file records once per job (`files-0`); a manifest CID
//! is a direct lookup, so naming the manifest is the cheap way.

use crate::content::{self, Cid, DAG_CBOR_CODEC, RAW_CODEC};
use crate::jobs::JobErrorKind;
use crate::store::Store;
use crate::store::records::{FileRecord, FileRole};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};

/// Why the input could not be assembled: the error kind and a one-line detail.
pub(crate) type InputError = (JobErrorKind, String);

/// Where a chunk of a delivered file lies: the file's path and the offset
/// and length of the chunk in it, bytes.
struct Located {
    path: String,
    offset: u64,
    len: u64,
}

/// The concatenated bytes of `cids` (binary CIDs), at most `max_bytes`.
///
/// # Errors
/// `bad_request` for a CID that does not parse or has another codec;
/// `input_missing` for a chunk or file not here (or changed since it was
/// written); `over_limits` past `max_bytes`.
pub(crate) fn load_chunks(
    store: &Store,
    cids: &[serde_bytes::ByteBuf],
    max_bytes: usize,
) -> Result<Vec<u8>, InputError> {
    let mut out = Vec::new();
    let mut written: Option<HashMap<Vec<u8>, Located>> = None;
    for raw in cids {
        let cid = content::cid_from_bytes(raw)
            .map_err(|e| (JobErrorKind::BadRequest, format!("input CID: {e}")))?;
        match cid.codec() {
            DAG_CBOR_CODEC => load_file(store, &cid, max_bytes, &mut out)?,
            RAW_CODEC => {
                let bytes = match store.chunk(raw).map_err(missing)? {
                    Some(b) => b,
                    None => {
                        let w = written.get_or_insert_with(|| written_chunks(store, cids));
                        read_located(&cid, w.get(raw.as_slice()))?
                    }
                };
                push(&mut out, &bytes, max_bytes)?;
            }
            other => {
                let d = format!("input CID {cid} has codec {other:#x}, not raw or dag-cbor");
                return Err((JobErrorKind::BadRequest, d));
            }
        }
    }
    Ok(out)
}

fn missing(e: impl std::fmt::Display) -> InputError {
    (JobErrorKind::InputMissing, e.to_string())
}

fn push(out: &mut Vec<u8>, bytes: &[u8], max_bytes: usize) -> Result<(), InputError> {
    if out.len().saturating_add(bytes.len()) > max_bytes {
        let d = format!("input over {max_bytes} bytes");
        return Err((JobErrorKind::OverLimits, d));
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends the whole file of manifest `cid` to `out`.
fn load_file(
    store: &Store,
    cid: &Cid,
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), InputError> {
    let Some(f) = store.file(&cid.to_bytes()).map_err(missing)? else {
        let d = format!(
            "file {cid} is not here (send it first: spore send FILE --to dtn://NODE/files)"
        );
        return Err((JobErrorKind::InputMissing, d));
    };
    if (out.len() as u64).saturating_add(f.size_bytes) > max_bytes as u64 {
        let d = format!(
            "input over {max_bytes} bytes (file {cid} has {} bytes)",
            f.size_bytes
        );
        return Err((JobErrorKind::OverLimits, d));
    }
    let chunk_size = file_chunk_size(&f)?;
    for (i, chunk) in f.chunks.iter().enumerate() {
        let bytes = match store.chunk(chunk).map_err(missing)? {
            Some(b) => b,
            None => {
                let at = locate(&f, chunk_size, i);
                let c = content::cid_from_bytes(chunk).map_err(missing)?;
                read_located(&c, at.as_ref())?
            }
        };
        push(out, &bytes, max_bytes)?;
    }
    Ok(())
}

/// The chunk size of `f`'s manifest, bytes.
fn file_chunk_size(f: &FileRecord) -> Result<u64, InputError> {
    let max = content::DEFAULT_MAX_MANIFEST_ENTRIES.max(f.chunks.len());
    content::Manifest::decode_with_folder(&f.manifest, max)
        .map(|(m, _)| u64::from(m.chunk_size))
        .map_err(|e| missing(format!("manifest of {}: {e}", f.name)))
}

/// Where chunk `index` of delivered file `f` lies, if `f` was written here.
fn locate(f: &FileRecord, chunk_size: u64, index: usize) -> Option<Located> {
    if f.role != FileRole::Destination {
        return None;
    }
    let path = f.path.clone()?;
    let offset = (index as u64).checked_mul(chunk_size)?;
    let len = f.size_bytes.checked_sub(offset)?.min(chunk_size);
    Some(Located { path, offset, len })
}

/// The chunks among `cids` that lie in files written here (one scan of the
/// file records).
fn written_chunks(store: &Store, cids: &[serde_bytes::ByteBuf]) -> HashMap<Vec<u8>, Located> {
    let wanted: HashSet<&[u8]> = cids.iter().map(|c| c.as_slice()).collect();
    let mut out = HashMap::new();
    let files = store.files().unwrap_or_default();
    for f in files.iter().filter(|f| f.path.is_some()) {
        let Ok(size) = file_chunk_size(f) else {
            continue;
        };
        for (i, c) in f.chunks.iter().enumerate() {
            if wanted.contains(c.as_slice()) && !out.contains_key(c) {
                if let Some(at) = locate(f, size, i) {
                    out.insert(c.clone(), at);
                }
            }
        }
    }
    out
}

/// Reads chunk `cid` where it lies and checks its bytes against the CID.
fn read_located(cid: &Cid, at: Option<&Located>) -> Result<Vec<u8>, InputError> {
    let Some(at) = at else {
        return Err(missing(format!("chunk {cid} is not here")));
    };
    let read = || -> std::io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(&at.path)?;
        f.seek(SeekFrom::Start(at.offset))?;
        let mut b = Vec::new();
        f.take(at.len).read_to_end(&mut b)?;
        Ok(b)
    };
    let b = read().map_err(|e| missing(format!("chunk {cid} in {}: {e}", at.path)))?;
    content::verify_chunk(cid, &b).map_err(|_| {
        missing(format!(
            "chunk {cid}: {} changed since it was received",
            at.path
        ))
    })?;
    Ok(b)
}
