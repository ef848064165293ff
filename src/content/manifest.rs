//! The manifest: the root object that names a file and lists its chunks,
//! encoded as deterministic DAG-CBOR (`spec/manifest.md`).

use super::cbor::{self, MAJOR_ARRAY, MAJOR_MAP, Reader};
use super::folder::FolderEntry;
use super::{
    Chunk, ContentError, RAW_CODEC, check_chunk_size, check_supported, sanitize_file_name,
};
use ::cid::Cid;

/// The manifest format version this code writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Default limit on the number of chunks in a decoded manifest:
/// 1 048 576 entries, i.e. 256 GiB at the default 256 KiB chunk size
/// (and about 43 MiB of encoded manifest, 41 bytes per entry).
pub const DEFAULT_MAX_MANIFEST_ENTRIES: usize = 1 << 20;

/// Map keys in DAG-CBOR order (length first, then bytewise).
const KEY_NAME: &str = "name";
const KEY_SIZE: &str = "size";
const KEY_CHUNKS: &str = "chunks";
const KEY_VERSION: &str = "version";
const KEY_MTIME: &str = "mtime_ms";
const KEY_CHUNK_SIZE: &str = "chunk_size";
const KEY_FOLDER: &str = "folder";
const KEY_PATH: &str = "path";
const KEY_FVERSION: &str = "fversion";
const KEY_DELETED: &str = "deleted";
/// The body of a folder-sync pack (spec/sync.md §Packs), a byte string.
const KEY_PACK: &str = "pack";

/// A decoded manifest, its folder keys and its pack body, if any.
pub(crate) type Decoded<'a> = (Manifest, Option<FolderEntry>, Option<&'a [u8]>);

/// Smallest possible encoding of one CID link, in bytes (tag, byte-string
/// head, `0x00`, and a 5-byte CID); bounds pre-allocation when decoding.
const MIN_CID_LINK_BYTES: usize = 8;

/// A file's manifest: its name, size, chunk size and chunk CIDs in order.
///
/// The manifest is itself content-addressed: [`Manifest::cid`] is the
/// CIDv1 dag-cbor sha2-256 of [`Manifest::encode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Format version; always [`MANIFEST_VERSION`] (1).
    pub version: u32,
    /// Base name of the file (see [`sanitize_file_name`]).
    pub name: String,
    /// File size, in bytes.
    pub size: u64,
    /// Size of every chunk but the last, in bytes.
    pub chunk_size: u32,
    /// Chunk CIDs (CIDv1 raw sha2-256), in file order.
    pub chunks: Vec<Cid>,
    /// Modification time, ms since the Unix epoch, if the sender gave one.
    pub mtime_ms: Option<u64>,
}

impl Manifest {
    /// The canonical DAG-CBOR encoding: a definite-length map whose keys
    /// are sorted length-first then bytewise, shortest-form integers, and
    /// chunk CIDs as tag 42 over `0x00 ‖ binary CID`. `mtime_ms` is left
    /// out when `None`. Equal manifests give equal bytes.
    ///
    /// Encoding does not validate; see [`Manifest::validate`].
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(None)
    }

    /// The canonical encoding with the optional folder keys of `folder`
    /// (`folder`, `path`, `fversion`, `deleted`; spec/sync.md) merged into
    /// the map in DAG-CBOR key order. `deleted` is written only when true
    /// (as the unsigned integer 1). `encode_with(None) == encode()`.
    pub fn encode_with(&self, folder: Option<&FolderEntry>) -> Vec<u8> {
        self.encode_parts(folder, None)
    }

    /// [`Manifest::encode_with`] plus, if `pack` is given, the `pack` key
    /// holding that byte string (a folder-sync pack body, spec/sync.md
    /// §Packs; see [`super::pack`]).
    pub(crate) fn encode_parts(
        &self,
        folder: Option<&FolderEntry>,
        pack: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut pairs: Vec<(&str, Vec<u8>)> = Vec::with_capacity(11);
        let uint = |v: u64| {
            let mut b = Vec::new();
            cbor::write_head(&mut b, cbor::MAJOR_UINT, v);
            b
        };
        let text = |t: &str| {
            let mut b = Vec::new();
            cbor::write_text(&mut b, t);
            b
        };
        let mut chunks = Vec::with_capacity(9 + 41 * self.chunks.len());
        cbor::write_head(&mut chunks, MAJOR_ARRAY, self.chunks.len() as u64);
        for cid in &self.chunks {
            cbor::write_cid(&mut chunks, cid);
        }
        pairs.push((KEY_NAME, text(&self.name)));
        pairs.push((KEY_SIZE, uint(self.size)));
        pairs.push((KEY_CHUNKS, chunks));
        pairs.push((KEY_VERSION, uint(u64::from(self.version))));
        if let Some(mtime_ms) = self.mtime_ms {
            pairs.push((KEY_MTIME, uint(mtime_ms)));
        }
        pairs.push((KEY_CHUNK_SIZE, uint(u64::from(self.chunk_size))));
        if let Some(f) = folder {
            pairs.push((KEY_FOLDER, text(&f.folder)));
            pairs.push((KEY_PATH, text(&f.path)));
            pairs.push((KEY_FVERSION, uint(f.fversion)));
            if f.deleted {
                pairs.push((KEY_DELETED, uint(1)));
            }
        }
        if let Some(body) = pack {
            let mut b = Vec::with_capacity(body.len() + 9);
            cbor::write_head(&mut b, cbor::MAJOR_BYTES, body.len() as u64);
            b.extend_from_slice(body);
            pairs.push((KEY_PACK, b));
        }
        pairs.sort_by(|a, b| cbor::key_order(a.0, b.0));
        let len: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut out = Vec::with_capacity(len + 2);
        cbor::write_head(&mut out, MAJOR_MAP, pairs.len() as u64);
        for (k, v) in pairs {
            cbor::write_text(&mut out, k);
            out.extend_from_slice(&v);
        }
        out
    }

    /// The manifest's CID: CIDv1, codec dag-cbor (`0x71`), sha2-256 of
    /// [`Manifest::encode`].
    pub fn cid(&self) -> Cid {
        super::cid::dag_cbor_cid(&self.encode())
    }

    /// The CID of [`Manifest::encode_with`] `folder` (the manifest CID of a
    /// synced file).
    pub fn cid_with(&self, folder: Option<&FolderEntry>) -> Cid {
        super::cid::dag_cbor_cid(&self.encode_with(folder))
    }

    /// Decodes and validates a manifest received from the network or read
    /// from disk. Never panics; allocates at most in proportion to the
    /// input length.
    ///
    /// Only the canonical encoding is accepted (so that one manifest has
    /// exactly one byte string and one CID): definite lengths,
    /// shortest-form integers, keys in DAG-CBOR order without duplicates,
    /// no unknown keys, no trailing bytes. Then [`Manifest::validate`]
    /// applies.
    ///
    /// # Errors
    /// [`ContentError::MalformedManifest`] for layout errors,
    /// [`ContentError::TooManyChunks`] as soon as the array head announces
    /// more than `max_entries`, and every error of [`Manifest::validate`].
    pub fn decode(bytes: &[u8], max_entries: usize) -> Result<Manifest, ContentError> {
        Self::decode_with_folder(bytes, max_entries).map(|(m, _)| m)
    }

    /// Like [`Manifest::decode`], and also returns the folder keys
    /// (spec/sync.md) if present, checked with [`FolderEntry::validate`].
    ///
    /// # Errors
    /// Those of [`Manifest::decode`]; [`ContentError::MalformedManifest`]
    /// if only some of `folder`, `path`, `fversion` are present or
    /// `deleted` is not 1; those of [`FolderEntry::validate`].
    pub fn decode_with_folder(
        bytes: &[u8],
        max_entries: usize,
    ) -> Result<(Manifest, Option<FolderEntry>), ContentError> {
        Self::decode_parts(bytes, max_entries).map(|(m, f, _)| (m, f))
    }

    /// Like [`Manifest::decode_with_folder`], and also returns the body of
    /// the `pack` key if present (a folder-sync pack, spec/sync.md §Packs;
    /// never together with the folder keys).
    pub(crate) fn decode_parts(
        bytes: &[u8],
        max_entries: usize,
    ) -> Result<Decoded<'_>, ContentError> {
        let mut r = Reader::new(bytes);
        let entries = r.expect(MAJOR_MAP, "expected a map")?;
        if entries > 11 {
            return Err(r.err("too many map entries"));
        }
        let mut fields = Fields::default();
        let mut prev: Option<&str> = None;
        for _ in 0..entries {
            let key_at = r.pos();
            let key = r.text()?;
            if prev.is_some_and(|p| cbor::key_order(p, key).is_ge()) {
                return Err(malformed(key_at, "map keys unsorted or duplicated"));
            }
            prev = Some(key);
            if key == KEY_PACK {
                let (from, to) = r.byte_span()?;
                fields.pack = Some((from, to));
                continue;
            }
            fields.read_value(key, key_at, &mut r, max_entries)?;
        }
        if r.remaining() != 0 {
            return Err(r.err("trailing bytes after the manifest"));
        }
        let folder = fields.folder_entry()?;
        let pack = fields.pack.take().map(|(from, to)| &bytes[from..to]);
        if pack.is_some() && folder.is_some() {
            return Err(malformed(0, "a pack carries no folder keys"));
        }
        let manifest = fields.into_manifest()?;
        manifest.validate(max_entries)?;
        if let Some(f) = &folder {
            f.validate(&manifest.name, manifest.size, manifest.chunks.len() as u64)?;
        }
        if manifest.encode_parts(folder.as_ref(), pack) != bytes {
            // Unreachable if the checks above are complete; kept so that
            // canonicity is a guarantee, not a hope.
            return Err(malformed(0, "not the canonical encoding"));
        }
        Ok((manifest, folder, pack))
    }

    /// Checks the rules every manifest obeys: version 1, chunk size within
    /// [`super::MIN_CHUNK_SIZE`]..=[`super::MAX_CHUNK_SIZE`], at most
    /// `max_entries` chunks, `size` consistent with the chunk count
    /// (`(n-1)·chunk_size < size ≤ n·chunk_size`, `size == 0 ⇔ n == 0`),
    /// a name accepted by [`sanitize_file_name`], every chunk CID a CIDv1
    /// raw sha2-256.
    ///
    /// # Errors
    /// [`ContentError::UnsupportedManifestVersion`],
    /// [`ContentError::InvalidChunkSize`], [`ContentError::TooManyChunks`],
    /// [`ContentError::InconsistentSize`], [`ContentError::InvalidFileName`],
    /// or the errors of [`check_supported`].
    pub fn validate(&self, max_entries: usize) -> Result<(), ContentError> {
        if self.version != MANIFEST_VERSION {
            return Err(ContentError::UnsupportedManifestVersion {
                version: u64::from(self.version),
            });
        }
        check_chunk_size(u64::from(self.chunk_size))?;
        if self.chunks.len() > max_entries {
            return Err(ContentError::TooManyChunks {
                count: self.chunks.len() as u64,
                max: max_entries,
            });
        }
        check_size(self.size, self.chunks.len() as u64, self.chunk_size)?;
        sanitize_file_name(&self.name)?;
        for cid in &self.chunks {
            check_supported(cid, RAW_CODEC)?;
        }
        Ok(())
    }

    /// Length of chunk `index`, in bytes: `chunk_size` for every chunk but
    /// the last, the remainder for the last; `None` past the end. Assumes a
    /// size-consistent manifest (see [`Manifest::validate`]).
    pub fn chunk_len_bytes(&self, index: u64) -> Option<u64> {
        if index >= self.chunks.len() as u64 {
            return None;
        }
        let offset = index.checked_mul(u64::from(self.chunk_size))?;
        Some(
            self.size
                .saturating_sub(offset)
                .min(u64::from(self.chunk_size)),
        )
    }
}

/// Checks `(n-1)·chunk_size < size ≤ n·chunk_size` and `size == 0 ⇔ n == 0`.
fn check_size(size: u64, n: u64, chunk_size: u32) -> Result<(), ContentError> {
    let (s, n128, c) = (u128::from(size), u128::from(n), u128::from(chunk_size));
    let ok = if n == 0 {
        size == 0
    } else {
        (n128 - 1) * c < s && s <= n128 * c
    };
    if ok {
        Ok(())
    } else {
        Err(ContentError::InconsistentSize {
            size_bytes: size,
            chunk_count: n,
            chunk_size_bytes: chunk_size,
        })
    }
}

fn malformed(offset: usize, reason: &'static str) -> ContentError {
    ContentError::MalformedManifest { offset, reason }
}

/// Fields seen while decoding, before validation.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    size: Option<u64>,
    chunks: Option<Vec<Cid>>,
    version: Option<u64>,
    mtime_ms: Option<u64>,
    chunk_size: Option<u64>,
    folder: Option<String>,
    path: Option<String>,
    fversion: Option<u64>,
    deleted: Option<u64>,
    /// Byte range of the `pack` value's content in the input.
    pack: Option<(usize, usize)>,
    /// Step over the chunk list instead of building it ([`peek_folder`]).
    skip_chunks: bool,
}

impl Fields {
    fn read_value(
        &mut self,
        key: &str,
        key_at: usize,
        r: &mut Reader<'_>,
        max_entries: usize,
    ) -> Result<(), ContentError> {
        match key {
            KEY_NAME => self.name = Some(r.text()?.to_owned()),
            KEY_SIZE => self.size = Some(r.uint()?),
            KEY_CHUNKS if self.skip_chunks => skip_chunks(r)?,
            KEY_CHUNKS => self.chunks = Some(read_chunks(r, max_entries)?),
            KEY_VERSION => self.version = Some(r.uint()?),
            KEY_MTIME => self.mtime_ms = Some(r.uint()?),
            KEY_CHUNK_SIZE => self.chunk_size = Some(r.uint()?),
            KEY_FOLDER => self.folder = Some(r.text()?.to_owned()),
            KEY_PATH => self.path = Some(r.text()?.to_owned()),
            KEY_FVERSION => self.fversion = Some(r.uint()?),
            KEY_DELETED => self.deleted = Some(r.uint()?),
            _ => return Err(malformed(key_at, "unknown map key")),
        }
        Ok(())
    }

    /// The folder keys: all of `folder`, `path`, `fversion` or none
    /// (then no `deleted` either).
    fn folder_entry(&mut self) -> Result<Option<FolderEntry>, ContentError> {
        let deleted = match self.deleted.take() {
            None => false,
            Some(1) => true,
            Some(_) => return Err(malformed(0, "`deleted` must be 1 when present")),
        };
        match (self.folder.take(), self.path.take(), self.fversion.take()) {
            (None, None, None) if !deleted => Ok(None),
            (Some(folder), Some(path), Some(fversion)) => Ok(Some(FolderEntry {
                folder,
                path,
                fversion,
                deleted,
            })),
            _ => Err(malformed(0, "incomplete folder keys")),
        }
    }

    fn into_manifest(self) -> Result<Manifest, ContentError> {
        let version = self.version.ok_or(malformed(0, "missing `version`"))?;
        let version = match u32::try_from(version) {
            Ok(v) if v == MANIFEST_VERSION => v,
            _ => return Err(ContentError::UnsupportedManifestVersion { version }),
        };
        let chunk_size = check_chunk_size(
            self.chunk_size
                .ok_or(malformed(0, "missing `chunk_size`"))?,
        )?;
        Ok(Manifest {
            version,
            name: self.name.ok_or(malformed(0, "missing `name`"))?,
            size: self.size.ok_or(malformed(0, "missing `size`"))?,
            chunk_size,
            chunks: self.chunks.ok_or(malformed(0, "missing `chunks`"))?,
            mtime_ms: self.mtime_ms,
        })
    }
}

fn read_chunks(r: &mut Reader<'_>, max_entries: usize) -> Result<Vec<Cid>, ContentError> {
    let count = r.expect(MAJOR_ARRAY, "expected an array of CIDs")?;
    if count > max_entries as u64 {
        return Err(ContentError::TooManyChunks {
            count,
            max: max_entries,
        });
    }
    // `count` ≤ max_entries fits in usize; cap the allocation by what the
    // remaining input could possibly hold.
    let capacity = (count as usize).min(r.remaining() / MIN_CID_LINK_BYTES);
    let mut chunks = Vec::with_capacity(capacity);
    for _ in 0..count {
        chunks.push(r.cid()?);
    }
    Ok(chunks)
}

/// Steps over the chunk array: each item must still be a tag-42 byte
/// string, but no CID is parsed or kept.
fn skip_chunks(r: &mut Reader<'_>) -> Result<(), ContentError> {
    let count = r.expect(MAJOR_ARRAY, "expected an array of CIDs")?;
    for _ in 0..count {
        r.expect(cbor::MAJOR_TAG, "expected tag 42 (CID)")?;
        r.byte_span()?;
    }
    Ok(())
}

/// The folder keys (spec/sync.md) and chunk size of an encoded manifest,
/// read without building its chunk list: for a manifest that was decoded
/// and validated when it arrived, where a 4 GiB file's 16 384 CIDs would
/// only be allocated to be dropped. `None`: no folder keys (a plain file).
///
/// # Errors
/// [`ContentError::MalformedManifest`] if the map cannot be read or the
/// folder keys are incomplete; [`ContentError::InvalidChunkSize`].
pub(crate) fn peek_folder(bytes: &[u8]) -> Result<Option<(FolderEntry, u32)>, ContentError> {
    let mut r = Reader::new(bytes);
    let entries = r.expect(MAJOR_MAP, "expected a map")?;
    if entries > 11 {
        return Err(r.err("too many map entries"));
    }
    let mut fields = Fields {
        skip_chunks: true,
        ..Fields::default()
    };
    for _ in 0..entries {
        let key_at = r.pos();
        let key = r.text()?;
        if key == KEY_PACK {
            r.byte_span()?;
            continue;
        }
        fields.read_value(key, key_at, &mut r, usize::MAX)?;
    }
    let folder = fields.folder_entry()?;
    let chunk_size = fields
        .chunk_size
        .ok_or(malformed(0, "missing `chunk_size`"))?;
    let chunk_size = check_chunk_size(chunk_size)?;
    Ok(folder.map(|f| (f, chunk_size)))
}

/// Builds a [`Manifest`] while a file is chunked, so a sender reads the
/// file once.
///
/// ```
/// use spore::content::{Chunker, ManifestBuilder, DEFAULT_CHUNK_SIZE};
/// let data = b"some file contents";
/// let mut builder = ManifestBuilder::new("notes.txt", DEFAULT_CHUNK_SIZE);
/// for chunk in Chunker::new(&data[..], DEFAULT_CHUNK_SIZE).unwrap() {
///     builder.push(&chunk.unwrap());
/// }
/// let manifest = builder.finish();
/// assert_eq!(manifest.size, 18);
/// assert_eq!(manifest.chunks.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct ManifestBuilder {
    manifest: Manifest,
}

impl ManifestBuilder {
    /// Starts a manifest for a file called `name` chunked at `chunk_size`
    /// bytes (the same value given to [`super::Chunker::new`]).
    pub fn new(name: impl Into<String>, chunk_size: u32) -> Self {
        ManifestBuilder {
            manifest: Manifest {
                version: MANIFEST_VERSION,
                name: name.into(),
                size: 0,
                chunk_size,
                chunks: Vec::new(),
                mtime_ms: None,
            },
        }
    }

    /// Sets the modification time, in ms since the Unix epoch.
    pub fn mtime_ms(mut self, mtime_ms: u64) -> Self {
        self.manifest.mtime_ms = Some(mtime_ms);
        self
    }

    /// Appends a chunk; chunks must be pushed in file order.
    pub fn push(&mut self, chunk: &Chunk) {
        self.manifest.chunks.push(chunk.cid);
        self.manifest.size = self.manifest.size.saturating_add(chunk.data.len() as u64);
    }

    /// The finished manifest. It is not validated here (the name, for
    /// one, is the caller's); call [`Manifest::validate`] before sending.
    pub fn finish(self) -> Manifest {
        self.manifest
    }
}

/// True if the file at `path` has exactly the chunks of `m`, in order
/// (same CIDs, same count); false if it cannot be read.
pub fn file_matches(path: &std::path::Path, m: &Manifest) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(chunker) = super::Chunker::new(f, m.chunk_size) else {
        return false;
    };
    let mut n = 0;
    for (i, c) in chunker.enumerate() {
        match c {
            Ok(c) if m.chunks.get(i) == Some(&c.cid) => n += 1,
            _ => return false,
        }
    }
    n == m.chunks.len()
}
