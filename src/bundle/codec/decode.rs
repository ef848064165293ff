//! [`decode`]: bytes to [`Bundle`], with CRC and semantic checks.

use super::cbor::{Item, read_item_in};
use super::{DecodeError, DecodeLimits, eid_from_item};
use crate::bundle::crc::{crc16_x25_zeroed_tail, crc32c_zeroed_tail};
use crate::bundle::{
    BlockFlags, Bundle, BundleFlags, CanonicalBlock, CrcType, CreationTimestamp, DtnTime, Eid,
    PrimaryBlock, block_type,
};
use bytes::Bytes;
use std::collections::HashSet;

/// Where a CRC failure or malformed CRC field is reported.
#[derive(Clone, Copy)]
enum Site {
    Primary,
    Block { number: u64, index: usize },
}

impl Site {
    fn malformed(self, reason: &'static str) -> DecodeError {
        match self {
            Site::Primary => DecodeError::BadPrimary(reason),
            Site::Block { number, index } => DecodeError::BadBlock {
                number: Some(number),
                index,
                reason,
            },
        }
    }
}

/// Decodes one bundle from `bytes` (RFC 9171 §4), checking CRCs against the
/// received bytes and the rules of §4.1–§4.3.2.
///
/// Checks: size and block-count limits; outer indefinite array; version 7;
/// fragment fields present iff `IS_FRAGMENT`; CRC types and values; EIDs;
/// exactly one payload block, numbered 1 and last; other block numbers > 1
/// and unique; an administrative record has a non-empty payload; a bundle
/// from `dtn:none` (anonymous, §4.2.3) must not be a fragment, must set
/// MUST_NOT_FRAGMENT and request no status reports. Unknown extension
/// blocks are kept (see [`process_unknown_blocks`](super::process_unknown_blocks)).
///
/// # Errors
/// A [`DecodeError`] naming the first problem found; never panics.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Bundle, DecodeError> {
    decode_in(bytes, None, limits)
}

/// As [`decode`], without copying: every block's data (the payload
/// included) is a slice of `bytes`, which it keeps alive.
///
/// # Errors
/// As [`decode`].
pub fn decode_shared(bytes: &Bytes, limits: &DecodeLimits) -> Result<Bundle, DecodeError> {
    decode_in(bytes, Some(bytes), limits)
}

fn decode_in(
    bytes: &[u8],
    src: Option<&Bytes>,
    limits: &DecodeLimits,
) -> Result<Bundle, DecodeError> {
    if bytes.len() > limits.max_bundle_bytes {
        return Err(DecodeError::Oversize {
            len: bytes.len(),
            max: limits.max_bundle_bytes,
        });
    }
    match bytes.first() {
        None => return Err(DecodeError::Truncated),
        Some(0x9f) => {}
        Some(_) => return Err(DecodeError::NotIndefiniteArray),
    }
    let (item, mut pos) = read_item_in(bytes, src, 1)?;
    check_crc(&bytes[1..pos], &item, Site::Primary)?;
    let primary = parse_primary(&item)?;
    let mut blocks = Vec::new();
    let mut numbers = HashSet::new();
    loop {
        match bytes.get(pos) {
            None => return Err(DecodeError::Truncated),
            Some(0xff) => break,
            Some(_) => {}
        }
        if blocks.len() >= limits.max_blocks {
            return Err(DecodeError::TooManyBlocks {
                max: limits.max_blocks,
            });
        }
        let (item, end) = read_item_in(bytes, src, pos)?;
        let block = parse_canonical(&item, blocks.len())?;
        let site = Site::Block {
            number: block.number,
            index: blocks.len(),
        };
        check_crc(&bytes[pos..end], &item, site)?;
        if !numbers.insert(block.number) {
            return Err(DecodeError::DuplicateBlockNumber(block.number));
        }
        blocks.push(block);
        pos = end;
    }
    pos += 1;
    if pos != bytes.len() {
        return Err(DecodeError::TrailingBytes { offset: pos });
    }
    let bundle = Bundle { primary, blocks };
    check_blocks(&bundle)?;
    check_primary_rules(&bundle)?;
    Ok(bundle)
}

/// Verifies the CRC of one block whose exact encoding is `span` and whose
/// decoded form is `item` (an array whose last element is the CRC, §4.2.1).
fn check_crc(span: &[u8], item: &Item, site: Site) -> Result<(), DecodeError> {
    let Some(items) = item.as_array() else {
        return Err(site.malformed("block must be a CBOR array"));
    };
    let crc_type = match site {
        Site::Primary => items.get(2),
        Site::Block { .. } => items.get(3),
    };
    let Some(code) = crc_type.and_then(Item::as_uint) else {
        return Err(site.malformed("CRC type must be an unsigned integer"));
    };
    let crc_type = CrcType::from_code(code).ok_or(DecodeError::UnknownCrcType(code))?;
    let (len, head) = match crc_type {
        CrcType::None => return Ok(()),
        CrcType::Crc16 => (2usize, 0x42u8),
        CrcType::Crc32c => (4, 0x44),
    };
    match items.last() {
        Some(Item::Bytes(b)) if b.len() == len => {}
        _ => return Err(site.malformed("CRC field must be a byte string of the CRC's size")),
    }
    // The CRC string is the block's last item, so its encoding is the last
    // 1 + len bytes of the span; a longer head (non-shortest) is refused.
    if span.len() < len + 1 || span[span.len() - len - 1] != head {
        return Err(site.malformed("CRC byte string must use a one-byte head"));
    }
    let tail = &span[span.len() - len..];
    let (expected, found) = if len == 2 {
        let found = u16::from_be_bytes([tail[0], tail[1]]);
        (u32::from(crc16_x25_zeroed_tail(span, 2)), u32::from(found))
    } else {
        let found = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        (crc32c_zeroed_tail(span, 4), found)
    };
    if expected != found {
        let block_number = match site {
            Site::Primary => None,
            Site::Block { number, .. } => Some(number),
        };
        return Err(DecodeError::BadCrc {
            block_number,
            expected,
            found,
        });
    }
    Ok(())
}

fn uint(item: Option<&Item>, what: &'static str) -> Result<u64, DecodeError> {
    item.and_then(Item::as_uint)
        .ok_or(DecodeError::BadPrimary(what))
}

fn parse_primary(item: &Item) -> Result<PrimaryBlock, DecodeError> {
    let items = item.as_array().ok_or(DecodeError::BadPrimary(
        "primary block must be a CBOR array",
    ))?;
    let version = uint(items.first(), "version must be an unsigned integer")?;
    if version != 7 {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let flags = BundleFlags(uint(items.get(1), "flags must be an unsigned integer")?);
    let code = uint(items.get(2), "CRC type must be an unsigned integer")?;
    let crc_type = CrcType::from_code(code).ok_or(DecodeError::UnknownCrcType(code))?;
    let fragment = flags.contains(BundleFlags::IS_FRAGMENT);
    let want = 8 + if fragment { 2 } else { 0 } + usize::from(crc_type != CrcType::None);
    if items.len() != want {
        return Err(DecodeError::BadPrimary(
            "wrong number of items (fragment fields must be present iff IS_FRAGMENT, CRC iff CRC type is not 0)",
        ));
    }
    let eid = |i: usize| eid_from_item(&items[i]);
    let ts = items[6]
        .as_array()
        .and_then(|a| match a {
            [Item::Uint(t), Item::Uint(s)] => Some(CreationTimestamp {
                time: DtnTime(*t),
                sequence: *s,
            }),
            _ => None,
        })
        .ok_or(DecodeError::BadPrimary(
            "creation timestamp must be [time, sequence] unsigned integers",
        ))?;
    let (fragment_offset, total_adu_length) = if fragment {
        let off = uint(items.get(8), "fragment offset must be an unsigned integer")?;
        let total = uint(items.get(9), "total ADU length must be an unsigned integer")?;
        (Some(off), Some(total))
    } else {
        (None, None)
    };
    Ok(PrimaryBlock {
        version: 7,
        flags,
        crc_type,
        destination: eid(3)?,
        source: eid(4)?,
        report_to: eid(5)?,
        creation_timestamp: ts,
        lifetime_ms: uint(items.get(7), "lifetime must be an unsigned integer")?,
        fragment_offset,
        total_adu_length,
    })
}

fn parse_canonical(item: &Item, index: usize) -> Result<CanonicalBlock, DecodeError> {
    let bad = |number: Option<u64>, reason| DecodeError::BadBlock {
        number,
        index,
        reason,
    };
    let items = item
        .as_array()
        .ok_or_else(|| bad(None, "block must be a CBOR array"))?;
    let number = items.get(1).and_then(Item::as_uint);
    let field = |i: usize, reason| {
        items
            .get(i)
            .and_then(Item::as_uint)
            .ok_or_else(|| bad(number, reason))
    };
    let ty = field(0, "block type must be an unsigned integer")?;
    let number = field(1, "block number must be an unsigned integer")?;
    let flags = field(2, "block flags must be an unsigned integer")?;
    let code = field(3, "CRC type must be an unsigned integer")?;
    let crc_type = CrcType::from_code(code).ok_or(DecodeError::UnknownCrcType(code))?;
    let want = if crc_type == CrcType::None { 5 } else { 6 };
    if items.len() != want {
        return Err(bad(
            Some(number),
            "wrong number of items (5 without CRC, 6 with CRC)",
        ));
    }
    let Item::Bytes(data) = &items[4] else {
        return Err(bad(Some(number), "block data must be a byte string"));
    };
    Ok(CanonicalBlock {
        block_type: ty,
        number,
        flags: BlockFlags(flags),
        crc_type,
        data: data.clone(),
    })
}

/// Payload block rules (§4.1, §4.3.2, §4.3.3).
fn check_blocks(b: &Bundle) -> Result<(), DecodeError> {
    let payloads = b
        .blocks
        .iter()
        .filter(|c| c.block_type == block_type::PAYLOAD)
        .count();
    if payloads == 0 {
        return Err(DecodeError::MissingPayload);
    }
    for (index, c) in b.blocks.iter().enumerate() {
        let bad = |reason| DecodeError::BadBlock {
            number: Some(c.number),
            index,
            reason,
        };
        if c.block_type == block_type::PAYLOAD {
            if index + 1 != b.blocks.len() {
                return Err(DecodeError::PayloadNotLast);
            }
            if c.number != 1 {
                return Err(bad("payload block number must be 1"));
            }
        } else if c.number <= 1 {
            return Err(bad("extension block number must be greater than 1"));
        }
    }
    Ok(())
}

/// Primary block rules that involve flags and EIDs (§4.2.3).
fn check_primary_rules(b: &Bundle) -> Result<(), DecodeError> {
    let p = &b.primary;
    if b.is_admin_record() && b.payload().is_none_or(|d| d.is_empty()) {
        return Err(DecodeError::BadPrimary(
            "administrative record bundle has an empty payload",
        ));
    }
    if p.source == Eid::DtnNone {
        let reports = BundleFlags::REPORT_RECEPTION
            | BundleFlags::REPORT_FORWARDING
            | BundleFlags::REPORT_DELIVERY
            | BundleFlags::REPORT_DELETION;
        let f = p.flags;
        if f.0 & reports != 0
            || f.contains(BundleFlags::IS_FRAGMENT)
            || !f.contains(BundleFlags::MUST_NOT_FRAGMENT)
        {
            return Err(DecodeError::BadPrimary(
                "anonymous bundle (source dtn:none) must set must-not-fragment, not be a fragment and request no status reports",
            ));
        }
    }
    Ok(())
}
