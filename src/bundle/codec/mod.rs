//! Byte-exact CBOR encoding and decoding of whole bundles (RFC 9171 §4).
//!
//! Wire shape (RFC 9171 §4.1–§4.3.2, CDDL abridged):
//!
//! ```text
//! bundle          = [_ primary-block, *extension-block, payload-block]   ; 0x9f .. 0xff
//! primary-block   = [7, flags, crc-type, destination, source, report-to,
//!                    [time-ms, seq], lifetime-ms, ? (fragment-offset, total-adu-length),
//!                    ? crc]
//! canonical-block = [type, number, flags, crc-type, bstr data, ? crc]
//! eid             = [1, "//node/demux"] / [1, 0] (dtn:none) / [2, [node, service]]
//! crc             = bstr .size 2 (CRC-16/X.25) / bstr .size 4 (CRC-32C), big-endian
//! ```
//!
//! [`encode`] always writes the shortest integer heads and definite-length
//! inner arrays, puts the payload block last and computes every CRC over the
//! block's encoding with the CRC bytes zeroed (§4.2.1). [`decode`] accepts
//! any well-formed encoding, checks each CRC against the exact bytes
//! received, enforces [`DecodeLimits`] and the semantic rules of §4.2–§4.3.
//! This module tree is the only user of `serde_cbor` in the crate.

mod cbor;
mod decode;
mod error;
mod fast;
mod parts;

pub(crate) use cbor::{Item, put_array, put_bool, put_bytes, put_uint, read_exact};
pub use decode::{decode, decode_shared};
pub use error::DecodeError;
pub use parts::{EncodedBundle, encode_parts, encoded_len};

use super::crc::{crc16_x25_pieces, crc32c_pieces};
use super::{BlockFlags, Bundle, CanonicalBlock, CrcType, Eid, EidError, PrimaryBlock, block_type};

/// Resource limits applied while decoding untrusted bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest encoded bundle accepted, in bytes (default 8 MiB).
    pub max_bundle_bytes: usize,
    /// Most canonical blocks (payload included) accepted in one bundle (default 64).
    pub max_blocks: usize,
}

impl Default for DecodeLimits {
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_bundle_bytes: 8 * 1024 * 1024,
            max_blocks: 64,
        }
    }
}

/// Where the payload block's data lies in an encoded bundle, found from a
/// prefix of it: `Some((offset, len))` in bytes once `prefix` reaches the
/// data's byte string head (the data itself need not have arrived).
/// `None` while the prefix is too short and for encodings outside the
/// subset spore writes (definite blocks, in the shortest form or not).
/// Nothing is validated: [`decode`] still decides whether the bundle is
/// good, and a caller that hashed `prefix[offset..offset + len]` must check
/// that the decoded payload is exactly that span.
pub fn payload_data_span(prefix: &[u8]) -> Option<(usize, usize)> {
    let (offset, len) = fast::payload_span(prefix)?;
    Some((offset, usize::try_from(len).ok()?))
}

/// Encodes a bundle to its RFC 9171 §4 wire form.
///
/// Extension blocks are written in `b.blocks` order, then the payload
/// block(s) last, whatever their position in `b.blocks`. The primary block
/// carries the two fragment fields iff `IS_FRAGMENT` is set (a missing value
/// is written as 0). This function does not validate the bundle: encoding a
/// bundle that [`decode`] would refuse (say, without payload) is possible.
pub fn encode(b: &Bundle) -> Vec<u8> {
    let payload_len = b.payload().map_or(0, |p| p.len());
    let mut out = Vec::with_capacity(payload_len + 128 + 32 * b.blocks.len());
    out.push(0x9f);
    encode_primary(&mut out, &b.primary);
    let is_payload = |c: &&CanonicalBlock| c.block_type == block_type::PAYLOAD;
    for blk in b.blocks.iter().filter(|c| !is_payload(c)) {
        encode_canonical(&mut out, blk);
    }
    for blk in b.blocks.iter().filter(is_payload) {
        encode_canonical(&mut out, blk);
    }
    out.push(0xff);
    out
}

fn encode_primary(out: &mut Vec<u8>, p: &PrimaryBlock) {
    let start = out.len();
    let fragment = p.flags.contains(super::BundleFlags::IS_FRAGMENT);
    let items = 8 + if fragment { 2 } else { 0 } + u64::from(p.crc_type != CrcType::None);
    put_array(out, items);
    put_uint(out, u64::from(p.version));
    put_uint(out, p.flags.0);
    put_uint(out, u64::from(p.crc_type.code()));
    put_eid(out, &p.destination);
    put_eid(out, &p.source);
    put_eid(out, &p.report_to);
    put_array(out, 2);
    put_uint(out, p.creation_timestamp.time.0);
    put_uint(out, p.creation_timestamp.sequence);
    put_uint(out, p.lifetime_ms);
    if fragment {
        put_uint(out, p.fragment_offset.unwrap_or(0));
        put_uint(out, p.total_adu_length.unwrap_or(0));
    }
    finish_crc(out, start, p.crc_type);
}

fn encode_canonical(out: &mut Vec<u8>, c: &CanonicalBlock) {
    let start = out.len();
    put_canonical_head(out, c);
    out.extend_from_slice(&c.data);
    finish_crc(out, start, c.crc_type);
}

/// Appends a canonical block's array head, its four integers and the head
/// of its data byte string: everything before the block data.
fn put_canonical_head(out: &mut Vec<u8>, c: &CanonicalBlock) {
    put_array(out, if c.crc_type == CrcType::None { 5 } else { 6 });
    put_uint(out, c.block_type);
    put_uint(out, c.number);
    put_uint(out, c.flags.0);
    put_uint(out, u64::from(c.crc_type.code()));
    cbor::put_head(out, cbor::major::BYTES, c.data.len() as u64);
}

/// Appends the CRC byte string of the block that starts at `out[start]`
/// (§4.2.1): zeroed first, then filled with the CRC of the whole block
/// (one pass over contiguous bytes).
fn finish_crc(out: &mut Vec<u8>, start: usize, crc: CrcType) {
    out.extend_from_slice(zeroed_crc_field(crc));
    let value = crc_value(crc, [&out[start..]]);
    fill_crc_field(out, &value);
}

/// The CRC byte string of `crc` with its content zeroed: `42 00 00`,
/// `44 00 00 00 00`, or nothing for CRC type 0.
fn zeroed_crc_field(crc: CrcType) -> &'static [u8] {
    match crc {
        CrcType::None => &[],
        CrcType::Crc16 => &[0x42, 0, 0],
        CrcType::Crc32c => &[0x44, 0, 0, 0, 0],
    }
}

/// The CRC of a block whose encoding, CRC string zeroed and last, is the
/// concatenation of `pieces`, big-endian: `value[..len]`, 2 or 4 bytes
/// (none for type 0).
fn crc_value<'a>(crc: CrcType, pieces: impl IntoIterator<Item = &'a [u8]>) -> ([u8; 4], usize) {
    match crc {
        CrcType::None => ([0; 4], 0),
        CrcType::Crc16 => {
            let [a, b] = crc16_x25_pieces(pieces).to_be_bytes();
            ([a, b, 0, 0], 2)
        }
        CrcType::Crc32c => (crc32c_pieces(pieces).to_be_bytes(), 4),
    }
}

/// Writes a [`crc_value`] over the last bytes of `field` (the zeroed CRC
/// string it was computed with).
fn fill_crc_field(field: &mut [u8], (value, len): &([u8; 4], usize)) {
    let n = field.len();
    field[n - len..].copy_from_slice(&value[..*len]);
}

/// Appends the CBOR form of an EID (§4.2.5.1.2).
pub(crate) fn put_eid(out: &mut Vec<u8>, e: &Eid) {
    put_array(out, 2);
    match e {
        Eid::DtnNone => {
            put_uint(out, 1);
            put_uint(out, 0);
        }
        Eid::Dtn { node, demux } => {
            put_uint(out, 1);
            cbor::put_text(out, &format!("//{node}/{demux}"));
        }
        Eid::Ipn { node, service } => {
            put_uint(out, 2);
            put_array(out, 2);
            put_uint(out, *node);
            put_uint(out, *service);
        }
    }
}

/// The CBOR encoding of an EID (RFC 9171 §4.2.5.1.2): `[1, "//node/demux"]`,
/// `[1, 0]` for `dtn:none`, `[2, [node, service]]` for `ipn`.
pub fn eid_to_cbor(e: &Eid) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    put_eid(&mut out, e);
    out
}

/// Parses exactly one CBOR-encoded EID (the inverse of [`eid_to_cbor`]).
///
/// # Errors
/// [`DecodeError::Truncated`] / [`DecodeError::BadCbor`] /
/// [`DecodeError::TrailingBytes`] for bad CBOR, [`DecodeError::Eid`] for a
/// well-formed item that is not a valid EID (unknown scheme code included).
pub fn eid_from_cbor(bytes: &[u8]) -> Result<Eid, DecodeError> {
    Ok(eid_from_item(&read_exact(bytes)?)?)
}

/// Interprets a decoded CBOR item as an EID (§4.2.5.1.2).
pub(crate) fn eid_from_item(item: &Item) -> Result<Eid, EidError> {
    let bad = |why: &'static str| EidError::Malformed(format!("{item:?}"), why);
    let [scheme, ssp] = item
        .as_array()
        .ok_or_else(|| bad("EID must be a CBOR array"))?
    else {
        return Err(bad("EID must be a 2-item array [scheme, ssp]"));
    };
    match scheme.as_uint() {
        Some(1) => match ssp {
            Item::Uint(0) => Ok(Eid::DtnNone),
            Item::Text(s) if s.starts_with("//") => format!("dtn:{s}").parse(),
            _ => Err(bad(
                "dtn SSP must be 0 (none) or a text string starting with //",
            )),
        },
        Some(2) => match ssp.as_array() {
            Some([Item::Uint(node), Item::Uint(service)]) => Ok(Eid::Ipn {
                node: *node,
                service: *service,
            }),
            _ => Err(bad("ipn SSP must be [node, service] unsigned integers")),
        },
        Some(code) => Err(EidError::UnknownScheme(code.to_string())),
        None => Err(bad("EID scheme must be an unsigned integer")),
    }
}

/// Block types this implementation understands (RFC 9171 §4.4 and spore's
/// private blocks, `spec/bundle.md`).
pub const KNOWN_BLOCK_TYPES: [u64; 7] = [
    block_type::PAYLOAD,
    block_type::PREVIOUS_NODE,
    block_type::BUNDLE_AGE,
    block_type::HOP_COUNT,
    block_type::CONTENT,
    block_type::CUSTODY,
    block_type::COPIES,
];

/// What [`process_unknown_blocks`] decided (RFC 9171 §4.2.4, §5.6 step 4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnknownBlockOutcome {
    /// An unknown block had DELETE_BUNDLE_IF_UNPROCESSABLE: delete the bundle
    /// (reason "block unsupported").
    pub delete_bundle: bool,
    /// An unknown block had REPORT_IF_UNPROCESSABLE: send a status report
    /// (reason "block unsupported") if the bundle requests one.
    pub report: bool,
    /// Block numbers of the unknown blocks removed (DISCARD_IF_UNPROCESSABLE).
    pub discarded: Vec<u64>,
}

/// Applies the block processing control flags of every block whose type is
/// not in [`KNOWN_BLOCK_TYPES`] (RFC 9171 §4.2.4 and §5.6 step 4):
/// delete-bundle wins over discard-block; a block with neither flag is kept
/// and forwarded unchanged. When `delete_bundle` is set the bundle is left
/// untouched.
pub fn process_unknown_blocks(b: &mut Bundle) -> UnknownBlockOutcome {
    let mut out = UnknownBlockOutcome::default();
    for blk in b
        .blocks
        .iter()
        .filter(|c| !KNOWN_BLOCK_TYPES.contains(&c.block_type))
    {
        out.report |= blk.flags.contains(BlockFlags::REPORT_IF_UNPROCESSABLE);
        if blk
            .flags
            .contains(BlockFlags::DELETE_BUNDLE_IF_UNPROCESSABLE)
        {
            out.delete_bundle = true;
        } else if blk.flags.contains(BlockFlags::DISCARD_IF_UNPROCESSABLE) {
            out.discarded.push(blk.number);
        }
    }
    if out.delete_bundle {
        out.discarded.clear();
    } else {
        // No unknown block asks for deletion here, so every unknown block
        // with the discard flag goes.
        b.blocks.retain(|c| {
            KNOWN_BLOCK_TYPES.contains(&c.block_type)
                || !c.flags.contains(BlockFlags::DISCARD_IF_UNPROCESSABLE)
        });
    }
    out
}

#[cfg(test)]
mod tests;
