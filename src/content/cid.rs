//! Content identifiers: computing, checking and parsing CIDv1s.
//!
//! A chunk is addressed by `CIDv1(raw = 0x55, sha2-256(bytes))`; a manifest
//! by `CIDv1(dag-cbor = 0x71, sha2-256(encoded manifest))` (see
//! `spec/manifest.md`). Binary form: `varint(1) ‖ varint(codec) ‖
//! varint(0x12) ‖ varint(32) ‖ digest` (multiformats CID spec). Text form:
//! multibase base32 lower-case, prefix `b`.

use super::{ContentError, DAG_CBOR_CODEC, RAW_CODEC};
use multihash_codetable::{Code, MultihashDigest};

pub use ::cid::Cid;

/// Multihash code of sha2-256 (multicodec table).
pub const SHA2_256_CODE: u64 = 0x12;

/// Digest length of sha2-256, in bytes.
pub const SHA2_256_DIGEST_BYTES: u8 = 32;

/// Longest binary CID accepted by [`cid_from_bytes`], in bytes. A CIDv1 with
/// a 64-byte digest and large varints stays well below this.
pub const MAX_CID_BYTES: usize = 128;

/// Longest textual CID accepted by [`cid_from_str`], in bytes (room for
/// [`MAX_CID_BYTES`] in base2, the most verbose multibase).
pub const MAX_CID_TEXT_BYTES: usize = 8 * MAX_CID_BYTES + 1;

/// The CID of a chunk: CIDv1, codec raw (`0x55`), multihash sha2-256.
pub fn chunk_cid(data: &[u8]) -> Cid {
    Cid::new_v1(RAW_CODEC, Code::Sha2_256.digest(data))
}

/// The CID of a DAG-CBOR object given its encoded bytes: CIDv1, codec
/// dag-cbor (`0x71`), multihash sha2-256.
pub(crate) fn dag_cbor_cid(encoded: &[u8]) -> Cid {
    Cid::new_v1(DAG_CBOR_CODEC, Code::Sha2_256.digest(encoded))
}

/// Checks that `cid` is one spore can address content with: CIDv1, the
/// given codec, sha2-256 with a 32-byte digest.
///
/// # Errors
/// [`ContentError::UnsupportedCidVersion`], [`ContentError::UnsupportedCodec`]
/// or [`ContentError::UnsupportedHash`].
pub fn check_supported(cid: &Cid, codec: u64) -> Result<(), ContentError> {
    if cid.version() != ::cid::Version::V1 {
        return Err(ContentError::UnsupportedCidVersion {
            version: u64::from(cid.version()),
        });
    }
    if cid.codec() != codec {
        return Err(ContentError::UnsupportedCodec {
            codec: cid.codec(),
            expected: codec,
        });
    }
    let hash = cid.hash();
    if hash.code() != SHA2_256_CODE || hash.size() != SHA2_256_DIGEST_BYTES {
        return Err(ContentError::UnsupportedHash {
            code: hash.code(),
            digest_len_bytes: hash.size(),
        });
    }
    Ok(())
}

/// Verifies that `data` is the chunk named by `cid`.
///
/// # Errors
/// - [`ContentError::UnsupportedCidVersion`] / [`ContentError::UnsupportedCodec`]
///   / [`ContentError::UnsupportedHash`] if `cid` is not CIDv1 raw sha2-256;
/// - [`ContentError::CidMismatch`] if the bytes hash to another CID (both
///   CIDs are shown as base32 strings).
pub fn verify_chunk(cid: &Cid, data: &[u8]) -> Result<(), ContentError> {
    use sha2::Digest;
    verify_chunk_digest(cid, &sha2::Sha256::digest(data).into())
}

/// Verifies that a chunk whose SHA-256 is `sha256` (computed elsewhere,
/// e.g. by a [`super::PayloadHasher`] while it arrived) is the one named
/// by `cid`. Same checks and errors as [`verify_chunk`].
///
/// # Errors
/// As [`verify_chunk`].
pub fn verify_chunk_digest(cid: &Cid, sha256: &[u8; 32]) -> Result<(), ContentError> {
    check_supported(cid, RAW_CODEC)?;
    if cid.hash().digest() != sha256 {
        let actual = multihash_codetable::Multihash::wrap(SHA2_256_CODE, sha256)
            .map_err(|e| invalid(&e.to_string()))?;
        return Err(ContentError::CidMismatch {
            expected: Box::new(*cid),
            actual: Box::new(Cid::new_v1(RAW_CODEC, actual)),
        });
    }
    Ok(())
}

/// Parses a binary CID (`varint version ‖ varint codec ‖ multihash`, or a
/// bare 34-byte CIDv0 multihash). The whole slice must be one CID.
///
/// Parsing does not restrict codec or hash; use [`verify_chunk`] or
/// [`check_supported`] for that.
///
/// # Errors
/// [`ContentError::InvalidCid`] on malformed input, trailing bytes or input
/// longer than [`MAX_CID_BYTES`].
pub fn cid_from_bytes(bytes: &[u8]) -> Result<Cid, ContentError> {
    if bytes.len() > MAX_CID_BYTES {
        return Err(invalid("longer than MAX_CID_BYTES"));
    }
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest).map_err(|e| ContentError::InvalidCid {
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after CID"));
    }
    Ok(cid)
}

/// Parses a textual CID: a multibase string (`b…` base32 for CIDv1) or a
/// base58 `Qm…` CIDv0. Path forms such as `/ipfs/<cid>` are refused.
///
/// # Errors
/// [`ContentError::InvalidCid`] on malformed input or input longer than
/// [`MAX_CID_TEXT_BYTES`].
pub fn cid_from_str(text: &str) -> Result<Cid, ContentError> {
    if text.len() > MAX_CID_TEXT_BYTES {
        return Err(invalid("longer than MAX_CID_TEXT_BYTES"));
    }
    if text.contains('/') {
        return Err(invalid("path forms are not CIDs"));
    }
    let cid: Cid = text
        .parse()
        .map_err(|e: ::cid::Error| ContentError::InvalidCid {
            reason: e.to_string(),
        })?;
    // Round-trip through bytes so that text and binary parsing apply the
    // same checks (trailing bytes, length).
    cid_from_bytes(&cid.to_bytes())
}

/// Parses a CID given either as text or as binary.
///
/// A binary CID starts with a varint version byte (`0x01`, or `0x12` for a
/// CIDv0 multihash), never a printable ASCII character, while every
/// multibase prefix is printable; so input whose first byte is printable
/// ASCII is read as text, anything else as binary.
///
/// # Errors
/// As [`cid_from_str`] or [`cid_from_bytes`]; non-UTF-8 text is
/// [`ContentError::InvalidCid`].
pub fn parse_cid(text_or_bytes: &[u8]) -> Result<Cid, ContentError> {
    match text_or_bytes.first() {
        Some(b) if b.is_ascii_graphic() => {
            let text = std::str::from_utf8(text_or_bytes).map_err(|_| invalid("not UTF-8"))?;
            cid_from_str(text)
        }
        _ => cid_from_bytes(text_or_bytes),
    }
}

fn invalid(reason: &str) -> ContentError {
    ContentError::InvalidCid {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Derived independently with python3:
    //   import hashlib, base64
    //   b = bytes([1, 0x55, 0x12, 32]) + hashlib.sha256(b"hello").digest()
    //   "b" + base64.b32encode(b).decode().lower().rstrip("=")
    const HELLO_CID: &str = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq";

    #[test]
    fn hello_known_answer() {
        let cid = chunk_cid(b"hello");
        assert_eq!(cid.to_string(), HELLO_CID);
        assert_eq!(cid_from_str(HELLO_CID).unwrap(), cid);
        assert_eq!(parse_cid(HELLO_CID.as_bytes()).unwrap(), cid);
        assert_eq!(parse_cid(&cid.to_bytes()).unwrap(), cid);
        verify_chunk(&cid, b"hello").unwrap();
    }

    #[test]
    fn mismatch_is_typed_and_shows_base32() {
        let cid = chunk_cid(b"hello");
        let err = verify_chunk(&cid, b"hellO").unwrap_err();
        assert_eq!(err.kind(), "cid_mismatch");
        let text = err.to_string();
        assert!(text.contains(HELLO_CID), "{text}");
        assert!(text.contains(&chunk_cid(b"hellO").to_string()), "{text}");
    }

    #[test]
    fn unsupported_cids_are_refused() {
        let dag = dag_cbor_cid(b"hello");
        assert_eq!(
            verify_chunk(&dag, b"hello").unwrap_err().kind(),
            "unsupported_codec"
        );
        let v0 = Cid::new_v0(Code::Sha2_256.digest(b"hello")).unwrap();
        assert_eq!(
            verify_chunk(&v0, b"hello").unwrap_err().kind(),
            "unsupported_cid_version"
        );
        let sha512 = Cid::new_v1(RAW_CODEC, Code::Sha2_512.digest(b"hello"));
        assert_eq!(
            verify_chunk(&sha512, b"hello").unwrap_err().kind(),
            "unsupported_hash"
        );
        // sha2-256 code but a truncated 20-byte digest.
        let full = Code::Sha2_256.digest(b"hello");
        let short =
            ::cid::multihash::Multihash::<64>::wrap(SHA2_256_CODE, &full.digest()[..20]).unwrap();
        let truncated = Cid::new_v1(RAW_CODEC, short);
        assert_eq!(
            verify_chunk(&truncated, b"hello").unwrap_err().kind(),
            "unsupported_hash"
        );
    }

    #[test]
    fn bad_cid_inputs_are_errors() {
        let mut bytes = chunk_cid(b"x").to_bytes();
        bytes.push(0);
        assert_eq!(cid_from_bytes(&bytes).unwrap_err().kind(), "invalid_cid");
        bytes.truncate(10);
        assert!(cid_from_bytes(&bytes).is_err());
        assert!(cid_from_bytes(&[]).is_err());
        assert!(cid_from_bytes(&[0xff; 200]).is_err());
        assert!(cid_from_str("").is_err());
        assert!(cid_from_str("b").is_err());
        assert!(cid_from_str(&format!("/ipfs/{HELLO_CID}")).is_err());
        assert!(cid_from_str("bafkrei!!!").is_err());
        assert!(parse_cid(&[b'b', 0xff, 0xfe]).is_err());
    }
}
