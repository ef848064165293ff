//! A bundle's encoding as the ingest path ([`super::Agent`]'s `accept`)
//! needs it.

use std::borrow::Cow;

use crate::bundle::{Bundle, codec};

/// The RFC 9171 encoding of the bundle being accepted.
///
/// A bundle that arrived (or was submitted encoded) has its bytes. One
/// built here from submitted data has only its length until the bytes are
/// needed, which for a chunk bundle is never: its payload is stored once
/// per CID and the rest of it as a skeleton (`ingest::put_payload`), so
/// encoding it whole, a copy of the payload and a CRC over it, was wasted
/// (≈ 15 % of the agent thread's CPU in `spore send`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Raw<'a> {
    /// The bytes as received or submitted.
    Encoded(&'a [u8]),
    /// A bundle built here: its encoded length in bytes
    /// ([`codec::encoded_len`]).
    Built(usize),
}

impl<'a> Raw<'a> {
    /// The encoding's length in bytes.
    pub(super) fn len(self) -> usize {
        match self {
            Raw::Encoded(bytes) => bytes.len(),
            Raw::Built(len) => len,
        }
    }

    /// The encoding of `b`, the bundle this is the encoding of: the bytes
    /// at hand, or encoded now.
    pub(super) fn bytes(self, b: &Bundle) -> Cow<'a, [u8]> {
        match self {
            Raw::Encoded(bytes) => Cow::Borrowed(bytes),
            Raw::Built(_) => Cow::Owned(codec::encode(b)),
        }
    }
}
