//! Content addressing: files to chunks to CIDs, manifests, reassembly and
//! verification. No network, no clock.
//!
//! A file is cut into fixed-size chunks ([`Chunker`], default
//! [`DEFAULT_CHUNK_SIZE`]); each chunk is named by its CID, CIDv1 raw
//! (`0x55`) sha2-256 ([`chunk_cid`]). A [`Manifest`] lists the chunk CIDs
//! in order with the file's name and size; it is encoded as deterministic
//! DAG-CBOR and named by its own CIDv1 dag-cbor (`0x71`) ([`Manifest::cid`]).
//! A receiver decodes the manifest with a limit ([`Manifest::decode`]),
//! checks each chunk as it arrives ([`verify_chunk`]) and finally writes
//! the file with [`write_file_atomically`]: verified, fsynced, never
//! clobbering an existing file, never leaving a partial one.
//!
//! The formats and rules are specified in `spec/manifest.md`.
//!
//! - [`cid`]: chunk CIDs, verification, parsing.
//! - [`chunker`]: fixed-size chunking of a reader.
//! - [`manifest`]: the manifest, its DAG-CBOR codec and builder.
//! - [`name`]: file-name sanitization.
//! - [`assemble`]: atomic, verified, no-clobber reassembly.
//! - [`direct`]: writing received files past the page cache.
//! - [`folder`]: the optional folder keys of a synced file's manifest
//!   (`spec/sync.md`).
//! - [`pack`]: many small files of a synced folder in one object.

pub mod assemble;
mod cbor;
pub mod chunker;
pub mod cid;
pub mod direct;
mod error;
pub mod folder;
pub mod manifest;
pub mod name;
pub mod pack;
pub mod partial;
pub mod stream_hash;

pub use assemble::{ChunkCheck, MAX_NAME_ATTEMPTS, write_file_atomically};
pub use chunker::{Chunk, Chunker, check_chunk_size};
pub use cid::{
    Cid, check_supported, chunk_cid, cid_from_bytes, cid_from_str, parse_cid, verify_chunk,
    verify_chunk_digest,
};
pub use error::ContentError;
pub use folder::{FolderEntry, sanitize_relative_path};
pub use manifest::{
    DEFAULT_MAX_MANIFEST_ENTRIES, MANIFEST_VERSION, Manifest, ManifestBuilder, file_matches,
};
pub use name::{MAX_FILE_NAME_BYTES, sanitize_file_name};
pub use partial::PartialFile;
pub use stream_hash::{PayloadDigest, PayloadHasher};

/// Multicodec code of raw bytes: the codec of every chunk CID.
pub const RAW_CODEC: u64 = 0x55;

/// Multicodec code of DAG-CBOR: the codec of every manifest CID.
pub const DAG_CBOR_CODEC: u64 = 0x71;

/// Default chunk size: 256 KiB, in bytes.
pub const DEFAULT_CHUNK_SIZE: u32 = 256 * 1024;

/// Smallest accepted chunk size: 1 KiB, in bytes.
pub const MIN_CHUNK_SIZE: u32 = 1024;

/// Largest accepted chunk size: 4 MiB, in bytes. Bounds the memory a
/// single chunk can take on a receiver.
pub const MAX_CHUNK_SIZE: u32 = 4 * 1024 * 1024;
