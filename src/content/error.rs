//! The error type of the content module.

use super::Cid;

/// Everything that can go wrong while chunking, addressing, decoding or
/// reassembling content.
///
/// Every value that comes from the network or the disk and fails a check
/// becomes one of these variants; nothing in [`crate::content`] panics on
/// bad input. [`ContentError::kind`] gives a short, stable label for logs
/// and metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// A CID could not be parsed from bytes or text (bad varint, bad
    /// multibase, truncated multihash, trailing bytes, too long, …).
    #[error("invalid CID: {reason}")]
    InvalidCid {
        /// What was wrong, in words.
        reason: String,
    },
    /// The CID is not CIDv1; spore only addresses content with CIDv1.
    #[error("unsupported CID version {version} (only CIDv1 is accepted)")]
    UnsupportedCidVersion {
        /// The version found (0 for CIDv0).
        version: u64,
    },
    /// The CID's multicodec is not the one expected in this position
    /// (raw `0x55` for chunks, dag-cbor `0x71` for manifests).
    #[error("unsupported CID codec {codec:#x} (expected {expected:#x})")]
    UnsupportedCodec {
        /// The codec found.
        codec: u64,
        /// The codec required here.
        expected: u64,
    },
    /// The multihash is not sha2-256 (code `0x12`) with a 32-byte digest.
    #[error(
        "unsupported multihash code {code:#x} with {digest_len_bytes}-byte digest (expected sha2-256, 32 bytes)"
    )]
    UnsupportedHash {
        /// The multihash code found.
        code: u64,
        /// The digest length found, in bytes.
        digest_len_bytes: u8,
    },
    /// The data does not hash to the CID it was announced under.
    #[error("CID mismatch: expected {expected}, data hashes to {actual}")]
    CidMismatch {
        /// The CID the data was supposed to have.
        expected: Box<Cid>,
        /// The CID the data actually has.
        actual: Box<Cid>,
    },
    /// A chunk size outside [`super::MIN_CHUNK_SIZE`]..=[`super::MAX_CHUNK_SIZE`].
    #[error("chunk size {chunk_size_bytes} bytes outside {min}..={max}")]
    InvalidChunkSize {
        /// The chunk size requested or found, in bytes.
        chunk_size_bytes: u64,
        /// Smallest accepted chunk size, in bytes.
        min: u32,
        /// Largest accepted chunk size, in bytes.
        max: u32,
    },
    /// Reading the source of a file failed.
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
    /// A filesystem operation of [`super::write_file_atomically`] failed.
    #[error("{op} failed: {source}")]
    Write {
        /// Which operation failed (for example `"create dir"`, `"fsync"`).
        op: &'static str,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest bytes are not the canonical DAG-CBOR layout of
    /// `spec/manifest.md`.
    #[error("malformed manifest at byte {offset}: {reason}")]
    MalformedManifest {
        /// Byte offset in the input where the problem was seen.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// The manifest's `version` field is not 1.
    #[error("unsupported manifest version {version} (expected 1)")]
    UnsupportedManifestVersion {
        /// The version found.
        version: u64,
    },
    /// The manifest lists more chunks than the caller allows.
    #[error("manifest lists {count} chunks, limit is {max}")]
    TooManyChunks {
        /// Number of chunks in the manifest (or announced by its array head).
        count: u64,
        /// The caller's limit.
        max: usize,
    },
    /// `size` does not fit the chunk count: the rule is
    /// `(n-1)·chunk_size < size ≤ n·chunk_size`, and `size == 0 ⇔ n == 0`.
    #[error(
        "size {size_bytes} bytes is inconsistent with {chunk_count} chunks of {chunk_size_bytes} bytes"
    )]
    InconsistentSize {
        /// The declared file size, in bytes.
        size_bytes: u64,
        /// The number of chunks.
        chunk_count: u64,
        /// The declared chunk size, in bytes.
        chunk_size_bytes: u32,
    },
    /// A file name was refused by [`super::sanitize_file_name`].
    #[error("unsafe file name: {reason}")]
    InvalidFileName {
        /// Why the name was refused.
        reason: &'static str,
    },
    /// A chunk's length differs from what the manifest implies for its
    /// position (every chunk but the last is exactly `chunk_size` bytes).
    #[error("chunk {index} is {actual_bytes} bytes, expected {expected_bytes}")]
    ChunkLength {
        /// Zero-based position of the chunk in the manifest.
        index: u64,
        /// Length the manifest implies, in bytes.
        expected_bytes: u64,
        /// Length received, in bytes.
        actual_bytes: u64,
    },
    /// The chunk source passed to [`super::write_file_atomically`] could not
    /// provide a chunk.
    #[error("chunk {cid} unavailable: {reason}")]
    ChunkUnavailable {
        /// The chunk asked for.
        cid: Box<Cid>,
        /// The source's error, rendered with `Display`.
        reason: String,
    },
    /// Every candidate name `name`, `stem (1).ext` … was already taken.
    #[error("no free file name for {name:?} after {attempts} attempts")]
    NoFreeName {
        /// The manifest's file name.
        name: String,
        /// How many names were tried.
        attempts: u32,
    },
}

impl ContentError {
    /// A short, stable, snake_case label for this error (for logs, metrics
    /// and status reports).
    pub fn kind(&self) -> &'static str {
        match self {
            ContentError::InvalidCid { .. } => "invalid_cid",
            ContentError::UnsupportedCidVersion { .. } => "unsupported_cid_version",
            ContentError::UnsupportedCodec { .. } => "unsupported_codec",
            ContentError::UnsupportedHash { .. } => "unsupported_hash",
            ContentError::CidMismatch { .. } => "cid_mismatch",
            ContentError::InvalidChunkSize { .. } => "invalid_chunk_size",
            ContentError::Read(_) => "read",
            ContentError::Write { .. } => "write",
            ContentError::MalformedManifest { .. } => "malformed_manifest",
            ContentError::UnsupportedManifestVersion { .. } => "unsupported_manifest_version",
            ContentError::TooManyChunks { .. } => "too_many_chunks",
            ContentError::InconsistentSize { .. } => "inconsistent_size",
            ContentError::InvalidFileName { .. } => "invalid_file_name",
            ContentError::ChunkLength { .. } => "chunk_length",
            ContentError::ChunkUnavailable { .. } => "chunk_unavailable",
            ContentError::NoFreeName { .. } => "no_free_name",
        }
    }
}
