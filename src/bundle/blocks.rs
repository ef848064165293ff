//! Typed views of the extension blocks spore understands.
//!
//! | type | block | data (CBOR) | spec |
//! |------|-------|-------------|------|
//! | 6 | previous node | EID | RFC 9171 §4.4.1 |
//! | 7 | bundle age | uint, ms | RFC 9171 §4.4.2 |
//! | 10 | hop count | `[limit, count]` | RFC 9171 §4.4.3 |
//! | 192 | content | bstr: binary CIDv1 of the payload | `spec/bundle.md` |
//! | 193 | custody | `[custodian EID]` | `spec/bundle.md` |
//!
//! Getters return `Ok(None)` when the block is absent and an error when it
//! is present but its data does not parse; setters replace the data of an
//! existing block (keeping its number, flags and CRC type) or insert a new
//! block before the payload ([`Bundle::upsert_block`]).

use super::codec::{self, DecodeError, Item, put_array, put_bytes, put_uint, read_exact};
use super::{Bundle, CanonicalBlock, Eid, block_type};
use bytes::Bytes;

/// Hop count block content (RFC 9171 §4.4.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct HopCount {
    /// Hop limit, 1..=255 by the RFC (not enforced here).
    pub limit: u64,
    /// Hops traversed so far.
    pub count: u64,
}

impl HopCount {
    /// True if the bundle has travelled more hops than its limit allows.
    pub fn exceeded(&self) -> bool {
        self.count > self.limit
    }
}

/// spore custody block content (type 193): who currently holds custody,
/// and which of its transmissions this copy came by.
///
/// Modelled on the Custody Transfer Extension Block of
/// draft-flentge-dtn-bpv7-custody-transfer, reduced to the custodian EID
/// and a transmission number; see `spec/bundle.md` for the differences.
/// CBOR: `[custodian EID]` or `[custodian EID, transmission uint]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustodyBlock {
    /// The node that currently has custody (a node ID).
    pub custodian: Eid,
    /// The custodian's number for the transmission that carries this copy
    /// (unique among its transmissions); the receiver echoes it in its
    /// contact summary, so a lost custody signal is recovered for that
    /// transmission only (spec/custody.md, "Lost custody signals").
    /// `None` from nodes that predate it.
    pub transmission: Option<u64>,
}

fn block_err(blk: &CanonicalBlock, index: usize, reason: &'static str) -> DecodeError {
    DecodeError::BadBlock {
        number: Some(blk.number),
        index,
        reason,
    }
}

impl Bundle {
    /// The first block of type `ty` with its index, and its data parsed as one CBOR item.
    fn block_item(&self, ty: u64) -> Result<Option<(usize, &CanonicalBlock, Item)>, DecodeError> {
        let Some((index, blk)) = self
            .blocks
            .iter()
            .enumerate()
            .find(|(_, b)| b.block_type == ty)
        else {
            return Ok(None);
        };
        let item = read_exact(&blk.data)
            .map_err(|_| block_err(blk, index, "block data is not one CBOR item"))?;
        Ok(Some((index, blk, item)))
    }

    /// The previous node (RFC 9171 §4.4.1), if the block is present.
    ///
    /// # Errors
    /// [`DecodeError::BadBlock`] if the block data is not a CBOR EID.
    pub fn previous_node(&self) -> Result<Option<Eid>, DecodeError> {
        let Some((index, blk, item)) = self.block_item(block_type::PREVIOUS_NODE)? else {
            return Ok(None);
        };
        codec::eid_from_item(&item)
            .map(Some)
            .map_err(|_| block_err(blk, index, "previous node data must be a CBOR EID"))
    }

    /// Sets the previous node block (§4.4.1) to `node`.
    pub fn set_previous_node(&mut self, node: &Eid) {
        self.upsert_block(
            block_type::PREVIOUS_NODE,
            Bytes::from(codec::eid_to_cbor(node)),
        );
    }

    /// The bundle age in ms (RFC 9171 §4.4.2), if the block is present.
    ///
    /// # Errors
    /// [`DecodeError::BadBlock`] if the data is not a CBOR unsigned integer.
    pub fn bundle_age_ms(&self) -> Result<Option<u64>, DecodeError> {
        let Some((index, blk, item)) = self.block_item(block_type::BUNDLE_AGE)? else {
            return Ok(None);
        };
        item.as_uint()
            .map(Some)
            .ok_or_else(|| block_err(blk, index, "bundle age must be an unsigned integer"))
    }

    /// Sets the bundle age block (§4.4.2) to `age_ms` milliseconds.
    pub fn set_bundle_age_ms(&mut self, age_ms: u64) {
        let mut d = Vec::with_capacity(9);
        put_uint(&mut d, age_ms);
        self.upsert_block(block_type::BUNDLE_AGE, Bytes::from(d));
    }

    /// The hop count (RFC 9171 §4.4.3), if the block is present.
    ///
    /// # Errors
    /// [`DecodeError::BadBlock`] if the data is not `[limit, count]`.
    pub fn hop_count(&self) -> Result<Option<HopCount>, DecodeError> {
        let Some((index, blk, item)) = self.block_item(block_type::HOP_COUNT)? else {
            return Ok(None);
        };
        match item.as_array() {
            Some([Item::Uint(limit), Item::Uint(count)]) => Ok(Some(HopCount {
                limit: *limit,
                count: *count,
            })),
            _ => Err(block_err(blk, index, "hop count must be [limit, count]")),
        }
    }

    /// Sets the hop count block (§4.4.3).
    pub fn set_hop_count(&mut self, hc: HopCount) {
        let mut d = Vec::with_capacity(19);
        put_array(&mut d, 2);
        put_uint(&mut d, hc.limit);
        put_uint(&mut d, hc.count);
        self.upsert_block(block_type::HOP_COUNT, Bytes::from(d));
    }

    /// The binary CIDv1 carried by the spore content block (type 192), if present.
    ///
    /// # Errors
    /// [`DecodeError::BadBlock`] if the data is not a CBOR byte string.
    pub fn content_cid(&self) -> Result<Option<Vec<u8>>, DecodeError> {
        let Some((index, blk, item)) = self.block_item(block_type::CONTENT)? else {
            return Ok(None);
        };
        match item {
            Item::Bytes(b) => Ok(Some(b.to_vec())),
            _ => Err(block_err(
                blk,
                index,
                "content block data must be a byte string",
            )),
        }
    }

    /// Sets the spore content block (type 192) to the binary CIDv1 `cid_bytes`.
    pub fn set_content_cid(&mut self, cid_bytes: &[u8]) {
        let mut d = Vec::with_capacity(cid_bytes.len() + 3);
        put_bytes(&mut d, cid_bytes);
        self.upsert_block(block_type::CONTENT, Bytes::from(d));
    }

    /// The spore custody block (type 193), if present.
    ///
    /// # Errors
    /// [`DecodeError::BadBlock`] if the data is not `[custodian EID]`.
    pub fn custody(&self) -> Result<Option<CustodyBlock>, DecodeError> {
        let Some((index, blk, item)) = self.block_item(block_type::CUSTODY)? else {
            return Ok(None);
        };
        let (eid, transmission) = match item.as_array() {
            Some([eid]) => (eid, None),
            Some([eid, n]) => match n.as_uint() {
                Some(n) => (eid, Some(n)),
                None => {
                    return Err(block_err(
                        blk,
                        index,
                        "custody transmission number must be an unsigned integer",
                    ));
                }
            },
            _ => {
                return Err(block_err(
                    blk,
                    index,
                    "custody block data must be [custodian] or [custodian, transmission]",
                ));
            }
        };
        codec::eid_from_item(eid)
            .map(|custodian| {
                Some(CustodyBlock {
                    custodian,
                    transmission,
                })
            })
            .map_err(|_| block_err(blk, index, "custodian must be a CBOR EID"))
    }

    /// The spore copy-count block (type 194): how many copies of this
    /// bundle the receiving node holds (spec/routing.md §2), if present.
    ///
    /// # Errors
    /// [`DecodeError::BadBlock`] if the data is not an unsigned integer
    /// that fits in 32 bits.
    pub fn copy_count(&self) -> Result<Option<u32>, DecodeError> {
        let Some((index, blk, item)) = self.block_item(block_type::COPIES)? else {
            return Ok(None);
        };
        item.as_uint()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| block_err(blk, index, "copy count must be a 32-bit unsigned integer"))
    }

    /// Sets the spore copy-count block (type 194) to `copies`.
    pub fn set_copy_count(&mut self, copies: u32) {
        let mut d = Vec::with_capacity(5);
        put_uint(&mut d, u64::from(copies));
        self.upsert_block(block_type::COPIES, Bytes::from(d));
    }

    /// Sets the spore custody block (type 193).
    pub fn set_custody(&mut self, c: &CustodyBlock) {
        let mut d = Vec::with_capacity(48);
        put_array(&mut d, 1 + u64::from(c.transmission.is_some()));
        codec::put_eid(&mut d, &c.custodian);
        if let Some(n) = c.transmission {
            put_uint(&mut d, n);
        }
        self.upsert_block(block_type::CUSTODY, Bytes::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::codec::{DecodeLimits, decode, encode};
    use crate::bundle::{CreationTimestamp, DtnTime};

    fn sample() -> Bundle {
        Bundle::new(
            "dtn://a/".parse().unwrap(),
            "dtn://b/inbox".parse().unwrap(),
            CreationTimestamp {
                time: DtnTime(5),
                sequence: 1,
            },
            60_000,
            Bytes::from_static(b"hi"),
        )
    }

    #[test]
    fn copy_count_round_trips_and_rejects_junk() {
        let mut b = sample();
        b.set_copy_count(u32::MAX);
        let back = decode(&encode(&b), &DecodeLimits::default()).unwrap();
        assert_eq!(back.copy_count(), Ok(Some(u32::MAX)));
        let too_big = [0x1b, 0, 0, 0, 1, 0, 0, 0, 0];
        b.upsert_block(block_type::COPIES, Bytes::copy_from_slice(&too_big));
        assert!(b.copy_count().is_err(), "2^32 does not fit");
    }

    #[test]
    fn absent_blocks_read_as_none() {
        let b = sample();
        assert_eq!(b.previous_node(), Ok(None));
        assert_eq!(b.bundle_age_ms(), Ok(None));
        assert_eq!(b.hop_count(), Ok(None));
        assert_eq!(b.content_cid(), Ok(None));
        assert_eq!(b.custody(), Ok(None));
        assert_eq!(b.copy_count(), Ok(None));
    }

    #[test]
    fn set_then_get_survives_the_wire() {
        let mut b = sample();
        b.set_previous_node(&"ipn:3.0".parse().unwrap());
        b.set_bundle_age_ms(1234);
        b.set_hop_count(HopCount {
            limit: 30,
            count: 2,
        });
        b.set_content_cid(&[1, 0x55, 0x12, 0x20, 9]);
        b.set_custody(&CustodyBlock {
            custodian: "dtn://c/".parse().unwrap(),
            transmission: Some(u64::MAX - 7),
        });
        b.set_bundle_age_ms(2000);
        let b = decode(&encode(&b), &DecodeLimits::default()).unwrap();
        assert_eq!(b.blocks.len(), 6);
        assert_eq!(b.previous_node().unwrap().unwrap().to_string(), "ipn:3.0");
        assert_eq!(b.bundle_age_ms(), Ok(Some(2000)));
        assert_eq!(
            b.hop_count(),
            Ok(Some(HopCount {
                limit: 30,
                count: 2
            }))
        );
        assert_eq!(b.content_cid(), Ok(Some(vec![1, 0x55, 0x12, 0x20, 9])));
        let custody = b.custody().unwrap().unwrap();
        assert_eq!(custody.custodian.to_string(), "dtn://c/");
        assert_eq!(custody.transmission, Some(u64::MAX - 7));
        let numbers: Vec<u64> = b.blocks.iter().map(|c| c.number).collect();
        assert_eq!(numbers, [2, 3, 4, 5, 6, 1]);
    }

    #[test]
    fn a_custody_block_without_a_transmission_number_still_reads() {
        let mut b = sample();
        let c = CustodyBlock {
            custodian: "dtn://old/".parse().unwrap(),
            transmission: None,
        };
        b.set_custody(&c);
        // [custodian] only, as nodes before transmission numbers wrote it.
        let data = &b
            .blocks
            .iter()
            .find(|x| x.block_type == block_type::CUSTODY)
            .unwrap()
            .data;
        assert_eq!(data[0], 0x81, "a one-element array");
        let b = decode(&encode(&b), &DecodeLimits::default()).unwrap();
        assert_eq!(b.custody(), Ok(Some(c)));
        // A transmission number that is not an unsigned integer is refused.
        let mut bad = Vec::new();
        put_array(&mut bad, 2);
        codec::put_eid(&mut bad, &"dtn://old/".parse().unwrap());
        bad.extend_from_slice(&[0x61, b'x']);
        let mut b = b;
        b.upsert_block(block_type::CUSTODY, Bytes::from(bad));
        assert!(matches!(b.custody(), Err(DecodeError::BadBlock { .. })));
    }

    #[test]
    fn malformed_block_data_is_an_error() {
        let mut b = sample();
        for ty in [
            block_type::PREVIOUS_NODE,
            block_type::BUNDLE_AGE,
            block_type::HOP_COUNT,
            block_type::CONTENT,
            block_type::CUSTODY,
        ] {
            b.upsert_block(ty, Bytes::from_static(&[0x63, b'x']));
        }
        assert!(matches!(
            b.previous_node(),
            Err(DecodeError::BadBlock { .. })
        ));
        b.blocks.iter_mut().for_each(|c| {
            if c.block_type != block_type::PAYLOAD {
                c.data = Bytes::from_static(&[0x61, b'x']);
            }
        });
        assert!(matches!(
            b.previous_node(),
            Err(DecodeError::BadBlock {
                number: Some(2),
                ..
            })
        ));
        assert!(matches!(
            b.bundle_age_ms(),
            Err(DecodeError::BadBlock { .. })
        ));
        assert!(matches!(b.hop_count(), Err(DecodeError::BadBlock { .. })));
        assert!(matches!(b.content_cid(), Err(DecodeError::BadBlock { .. })));
        assert!(matches!(b.custody(), Err(DecodeError::BadBlock { .. })));
        assert!(!HopCount { limit: 2, count: 2 }.exceeded());
        assert!(HopCount { limit: 2, count: 3 }.exceeded());
    }
}
