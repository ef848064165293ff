//! [`DecodeError`]: why bytes are not an acceptable bundle.

use crate::bundle::EidError;

/// Why [`decode`](super::decode) (or another decoder of this module)
/// refused its input. Every message says what was wrong and where
/// (byte offset or block number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than [`DecodeLimits::max_bundle_bytes`](super::DecodeLimits).
    #[error("bundle is {len} bytes, more than the limit of {max} bytes")]
    Oversize {
        /// Input length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The bytes are not well-formed CBOR (or use a construct CBOR forbids).
    #[error("malformed CBOR at byte {offset}: {detail}")]
    BadCbor {
        /// Byte offset of the problem in the input.
        offset: usize,
        /// What the CBOR parser reported.
        detail: String,
    },
    /// The bundle does not start with an indefinite-length array head (0x9f), §4.1.
    #[error("bundle must be an indefinite-length CBOR array (first byte 0x9f)")]
    NotIndefiniteArray,
    /// The input ends before the bundle does.
    #[error("input ends before the end of the bundle")]
    Truncated,
    /// Bytes follow the end of the bundle (or of a single-item encoding).
    #[error("unexpected bytes after the end of the item, at byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
    },
    /// The primary block's version is not 7 (§4.3.1).
    #[error("unsupported bundle protocol version {0} (only 7 is supported)")]
    UnsupportedVersion(u64),
    /// A block's CRC type is not 0, 1 or 2 (§4.2.1).
    #[error("unknown CRC type {0} (expected 0, 1 or 2)")]
    UnknownCrcType(u64),
    /// A block's CRC does not match its content (§4.2.1).
    #[error("CRC mismatch in {}: computed {expected:#x}, bundle carries {found:#x}",
        block_number.map_or("the primary block".to_string(), |n| format!("block {n}")))]
    BadCrc {
        /// Block number of the failing block; `None` for the primary block.
        block_number: Option<u64>,
        /// The CRC computed over the received bytes.
        expected: u32,
        /// The CRC carried in the block.
        found: u32,
    },
    /// An EID is malformed or uses an unknown scheme (§4.2.5.1).
    #[error("bad endpoint ID: {0}")]
    Eid(#[from] EidError),
    /// The primary block is malformed or violates a rule of §4.3.1 / §4.2.3.
    #[error("bad primary block: {0}")]
    BadPrimary(&'static str),
    /// A canonical block is malformed or violates a rule of §4.3.2.
    #[error("bad canonical block {} (at index {index}): {reason}",
        number.map_or("?".to_string(), |n| n.to_string()))]
    BadBlock {
        /// Block number, if it could be read.
        number: Option<u64>,
        /// Position of the block among the canonical blocks (0 = first after the primary).
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The bundle has no payload block (§4.1).
    #[error("bundle has no payload block")]
    MissingPayload,
    /// The payload block is not the last block (§4.1).
    #[error("payload block is not the last block")]
    PayloadNotLast,
    /// Two canonical blocks have the same block number (§4.3.2).
    #[error("block number {0} used by more than one block")]
    DuplicateBlockNumber(u64),
    /// More canonical blocks than [`DecodeLimits::max_blocks`](super::DecodeLimits).
    #[error("bundle has more than {max} canonical blocks")]
    TooManyBlocks {
        /// The limit.
        max: usize,
    },
}

impl DecodeError {
    /// A short, stable snake_case label for counters and logs
    /// (e.g. `"bad_crc"`); never changes for a given variant.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Oversize { .. } => "oversize",
            DecodeError::BadCbor { .. } => "bad_cbor",
            DecodeError::NotIndefiniteArray => "not_indefinite_array",
            DecodeError::Truncated => "truncated",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::UnsupportedVersion(_) => "unsupported_version",
            DecodeError::UnknownCrcType(_) => "unknown_crc_type",
            DecodeError::BadCrc { .. } => "bad_crc",
            DecodeError::Eid(EidError::UnknownScheme(_)) => "unknown_eid_scheme",
            DecodeError::Eid(_) => "bad_eid",
            DecodeError::BadPrimary(_) => "bad_primary",
            DecodeError::BadBlock { .. } => "bad_block",
            DecodeError::MissingPayload => "missing_payload",
            DecodeError::PayloadNotLast => "payload_not_last",
            DecodeError::DuplicateBlockNumber(_) => "duplicate_block_number",
            DecodeError::TooManyBlocks { .. } => "too_many_blocks",
        }
    }
}
