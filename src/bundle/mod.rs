//! The Bundle Protocol v7 data model (RFC 9171) and its CBOR codec.
//!
//! This module is pure data: no I/O, no clock. Times are [`DtnTime`] values
//! passed in by the caller.
//!
//! - [`eid`]: endpoint IDs (§4.2.5.1).
//! - [`codec`]: byte-exact CBOR encoding and decoding of whole bundles (§4.1–§4.3).
//! - [`crc`]: CRC-16/X.25 and CRC-32C (§4.2.1).
//! - [`blocks`]: typed views of the extension blocks we understand
//!   (previous node §4.4.1, bundle age §4.4.2, hop count §4.4.3, and
//!   spore's private content and custody blocks, `spec/bundle.md`).
//! - [`admin`]: administrative records (§6.1): status reports and custody signals.
//! - [`inspect`]: a JSON view of a bundle for `spore bundle inspect`.

pub mod admin;
pub mod blocks;
pub mod codec;
pub mod crc;
pub mod eid;
pub mod inspect;

pub use eid::{Eid, EidError};

use bytes::Bytes;
use std::fmt;
use std::str::FromStr;

/// Milliseconds between the Unix epoch and the DTN epoch (2000-01-01T00:00:00Z).
pub const DTN_EPOCH_UNIX_MS: u64 = 946_684_800_000;

/// A DTN time: milliseconds since 2000-01-01T00:00:00Z (RFC 9171 §4.2.6).
/// `DtnTime(0)` means "unknown" in a creation timestamp.
#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct DtnTime(pub u64);

impl DtnTime {
    /// The "clock unknown" time (RFC 9171 §4.2.6: a node without an accurate clock).
    pub const UNKNOWN: DtnTime = DtnTime(0);

    /// Converts Unix milliseconds to DTN time; times before 2000 map to 0.
    pub fn from_unix_ms(unix_ms: u64) -> DtnTime {
        DtnTime(unix_ms.saturating_sub(DTN_EPOCH_UNIX_MS))
    }

    /// Unix milliseconds for this DTN time.
    pub fn to_unix_ms(self) -> u64 {
        self.0.saturating_add(DTN_EPOCH_UNIX_MS)
    }

    /// Milliseconds since the DTN epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, saturating.
    pub fn plus_ms(self, ms: u64) -> DtnTime {
        DtnTime(self.0.saturating_add(ms))
    }

    /// `self - earlier` in ms, or 0 if `earlier` is later.
    pub fn ms_since(self, earlier: DtnTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Creation timestamp (RFC 9171 §4.2.7): creation time plus a sequence number
/// that distinguishes bundles created by one source in the same millisecond.
#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct CreationTimestamp {
    /// Creation time; [`DtnTime::UNKNOWN`] if the source had no clock.
    pub time: DtnTime,
    /// Sequence number.
    pub sequence: u64,
}

/// Bundle processing control flags (RFC 9171 §4.2.3).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BundleFlags(pub u64);

impl BundleFlags {
    /// Bundle is a fragment.
    pub const IS_FRAGMENT: u64 = 0x0000_0001;
    /// Payload is an administrative record.
    pub const ADMIN_RECORD: u64 = 0x0000_0002;
    /// Bundle must not be fragmented.
    pub const MUST_NOT_FRAGMENT: u64 = 0x0000_0004;
    /// User application acknowledgement is requested.
    pub const APP_ACK_REQUESTED: u64 = 0x0000_0020;
    /// Status time is requested in all status reports.
    pub const STATUS_TIME_REQUESTED: u64 = 0x0000_0040;
    /// Request reporting of bundle reception.
    pub const REPORT_RECEPTION: u64 = 0x0000_4000;
    /// Request reporting of bundle forwarding.
    pub const REPORT_FORWARDING: u64 = 0x0001_0000;
    /// Request reporting of bundle delivery.
    pub const REPORT_DELIVERY: u64 = 0x0002_0000;
    /// Request reporting of bundle deletion.
    pub const REPORT_DELETION: u64 = 0x0004_0000;

    /// True if every bit of `flag` is set.
    pub fn contains(self, flag: u64) -> bool {
        self.0 & flag == flag
    }

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: u64, on: bool) {
        if on {
            self.0 |= flag;
        } else {
            self.0 &= !flag;
        }
    }
}

/// Block processing control flags (RFC 9171 §4.2.4).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BlockFlags(pub u64);

impl BlockFlags {
    /// Block must be replicated in every fragment.
    pub const REPLICATE_IN_FRAGMENTS: u64 = 0x01;
    /// Transmit a status report if the block cannot be processed.
    pub const REPORT_IF_UNPROCESSABLE: u64 = 0x02;
    /// Delete the bundle if the block cannot be processed.
    pub const DELETE_BUNDLE_IF_UNPROCESSABLE: u64 = 0x04;
    /// Discard the block if it cannot be processed.
    pub const DISCARD_IF_UNPROCESSABLE: u64 = 0x10;

    /// True if every bit of `flag` is set.
    pub fn contains(self, flag: u64) -> bool {
        self.0 & flag == flag
    }
}

/// CRC type of a block (RFC 9171 §4.2.1).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CrcType {
    /// No CRC (code 0).
    None,
    /// CRC-16/X.25 (code 1), 2 bytes.
    Crc16,
    /// CRC-32C/Castagnoli (code 2), 4 bytes.
    #[default]
    Crc32c,
}

impl CrcType {
    /// The code carried in the block (0, 1 or 2).
    pub fn code(self) -> u8 {
        match self {
            CrcType::None => 0,
            CrcType::Crc16 => 1,
            CrcType::Crc32c => 2,
        }
    }

    /// The CRC type for a code, if the code is defined.
    pub fn from_code(code: u64) -> Option<CrcType> {
        match code {
            0 => Some(CrcType::None),
            1 => Some(CrcType::Crc16),
            2 => Some(CrcType::Crc32c),
            _ => None,
        }
    }
}

/// Block type codes (RFC 9171 §9.1 registry; 192–255 are private use).
pub mod block_type {
    /// Bundle payload block (§4.3.3).
    pub const PAYLOAD: u64 = 1;
    /// Previous node block (§4.4.1).
    pub const PREVIOUS_NODE: u64 = 6;
    /// Bundle age block (§4.4.2).
    pub const BUNDLE_AGE: u64 = 7;
    /// Hop count block (§4.4.3).
    pub const HOP_COUNT: u64 = 10;
    /// spore content block: the CID of the payload (spec/bundle.md).
    pub const CONTENT: u64 = 192;
    /// spore custody block: the current custodian (spec/custody.md).
    pub const CUSTODY: u64 = 193;
    /// spore copy-count block: copies the receiver holds (spec/routing.md §2).
    pub const COPIES: u64 = 194;
}

/// The primary block (RFC 9171 §4.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryBlock {
    /// Protocol version; always 7 for bundles we accept.
    pub version: u8,
    /// Bundle processing control flags.
    pub flags: BundleFlags,
    /// CRC type of the primary block.
    pub crc_type: CrcType,
    /// Destination EID.
    pub destination: Eid,
    /// Source node ID.
    pub source: Eid,
    /// Report-to EID.
    pub report_to: Eid,
    /// Creation timestamp.
    pub creation_timestamp: CreationTimestamp,
    /// Lifetime in milliseconds after creation.
    pub lifetime_ms: u64,
    /// Fragment offset, present iff the IS_FRAGMENT flag is set.
    pub fragment_offset: Option<u64>,
    /// Total application data unit length, present iff IS_FRAGMENT is set.
    pub total_adu_length: Option<u64>,
}

/// A canonical block (RFC 9171 §4.3.2): extension blocks and the payload block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalBlock {
    /// Block type code, see [`block_type`].
    pub block_type: u64,
    /// Block number, unique within the bundle; the payload block is number 1.
    pub number: u64,
    /// Block processing control flags.
    pub flags: BlockFlags,
    /// CRC type of this block.
    pub crc_type: CrcType,
    /// Block-type-specific data (the content of the CBOR byte string).
    pub data: Bytes,
}

/// A bundle: a primary block and canonical blocks, the payload block last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The primary block.
    pub primary: PrimaryBlock,
    /// Canonical blocks in wire order; the payload block (type 1, number 1) is last.
    pub blocks: Vec<CanonicalBlock>,
}

/// The identity of a bundle (RFC 9171 §4.2 "bundle ID"): source node ID,
/// creation timestamp and, for fragments, the fragment offset.
///
/// Text form: `{source}#{time_ms}.{sequence}` with `+{offset}` for a
/// fragment, e.g. `dtn://a/#846000000000.3`. `#` cannot occur in an EID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BundleId {
    /// Source node ID.
    pub source: Eid,
    /// Creation timestamp.
    pub timestamp: CreationTimestamp,
    /// Fragment offset if the bundle is a fragment.
    pub fragment_offset: Option<u64>,
}

/// Why a bundle ID's text or key form could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad bundle ID {0:?}: expected SOURCE#TIME_MS.SEQ[+OFFSET]")]
pub struct BundleIdParseError(pub String);

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{}.{}",
            self.source, self.timestamp.time.0, self.timestamp.sequence
        )?;
        if let Some(off) = self.fragment_offset {
            write!(f, "+{off}")?;
        }
        Ok(())
    }
}

impl FromStr for BundleId {
    type Err = BundleIdParseError;

    fn from_str(s: &str) -> Result<BundleId, BundleIdParseError> {
        let bad = || BundleIdParseError(s.to_owned());
        let (src, rest) = s.rsplit_once('#').ok_or_else(bad)?;
        let (ts, frag) = match rest.split_once('+') {
            Some((ts, f)) => (ts, Some(f.parse().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let (t, seq) = ts.split_once('.').ok_or_else(bad)?;
        Ok(BundleId {
            source: src.parse().map_err(|_| bad())?,
            timestamp: CreationTimestamp {
                time: DtnTime(t.parse().map_err(|_| bad())?),
                sequence: seq.parse().map_err(|_| bad())?,
            },
            fragment_offset: frag,
        })
    }
}

impl BundleId {
    /// A compact, order-preserving byte key for the store: creation time
    /// (8 bytes BE), sequence (8 BE), fragment offset (8 BE, `u64::MAX` for
    /// none), then the source EID's text. Sorting keys sorts by creation time.
    pub fn to_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(24 + 32);
        k.extend_from_slice(&self.timestamp.time.0.to_be_bytes());
        k.extend_from_slice(&self.timestamp.sequence.to_be_bytes());
        k.extend_from_slice(&self.fragment_offset.unwrap_or(u64::MAX).to_be_bytes());
        // The source's text form, as `Display` writes it (keys are made for
        // every summary entry of every contact: no formatter for dtn EIDs).
        match &self.source {
            Eid::Dtn { node, demux } => {
                k.extend_from_slice(b"dtn://");
                k.extend_from_slice(node.as_bytes());
                k.push(b'/');
                k.extend_from_slice(demux.as_bytes());
            }
            other => k.extend_from_slice(other.to_string().as_bytes()),
        }
        k
    }

    /// Parses a key made by [`BundleId::to_key`].
    ///
    /// # Errors
    /// [`BundleIdParseError`] if the key is shorter than 24 bytes or the
    /// source is not a valid EID.
    pub fn from_key(k: &[u8]) -> Result<BundleId, BundleIdParseError> {
        let bad = || BundleIdParseError(hex::encode(k));
        if k.len() < 24 {
            return Err(bad());
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&k[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let src = std::str::from_utf8(&k[24..]).map_err(|_| bad())?;
        let off = word(16);
        Ok(BundleId {
            source: src.parse().map_err(|_| bad())?,
            timestamp: CreationTimestamp {
                time: DtnTime(word(0)),
                sequence: word(8),
            },
            fragment_offset: (off != u64::MAX).then_some(off),
        })
    }
}

impl serde::Serialize for BundleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BundleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<BundleId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Bundle {
    /// Builds a bundle with a payload block (number 1) and nothing else:
    /// report-to = source, no flags, CRC-32C on every block.
    pub fn new(
        source: Eid,
        destination: Eid,
        timestamp: CreationTimestamp,
        lifetime_ms: u64,
        payload: Bytes,
    ) -> Bundle {
        Bundle {
            primary: PrimaryBlock {
                version: 7,
                flags: BundleFlags::default(),
                crc_type: CrcType::Crc32c,
                destination,
                report_to: source.clone(),
                source,
                creation_timestamp: timestamp,
                lifetime_ms,
                fragment_offset: None,
                total_adu_length: None,
            },
            blocks: vec![CanonicalBlock {
                block_type: block_type::PAYLOAD,
                number: 1,
                flags: BlockFlags::default(),
                crc_type: CrcType::Crc32c,
                data: payload,
            }],
        }
    }

    /// The bundle ID.
    pub fn id(&self) -> BundleId {
        BundleId {
            source: self.primary.source.clone(),
            timestamp: self.primary.creation_timestamp,
            fragment_offset: self.primary.fragment_offset,
        }
    }

    /// The first block of type `ty`.
    pub fn block(&self, ty: u64) -> Option<&CanonicalBlock> {
        self.blocks.iter().find(|b| b.block_type == ty)
    }

    /// The payload bytes, if there is a payload block.
    pub fn payload(&self) -> Option<&Bytes> {
        self.block(block_type::PAYLOAD).map(|b| &b.data)
    }

    /// Replaces the payload bytes (adds a payload block if missing).
    pub fn set_payload(&mut self, data: Bytes) {
        match self
            .blocks
            .iter_mut()
            .find(|b| b.block_type == block_type::PAYLOAD)
        {
            Some(b) => b.data = data,
            None => self.blocks.push(CanonicalBlock {
                block_type: block_type::PAYLOAD,
                number: 1,
                flags: BlockFlags::default(),
                crc_type: self.primary.crc_type,
                data,
            }),
        }
    }

    /// True if the payload is an administrative record (§4.2.3).
    pub fn is_admin_record(&self) -> bool {
        self.primary.flags.contains(BundleFlags::ADMIN_RECORD)
    }

    /// Sets (replacing) or inserts an extension block of type `ty` before
    /// the payload block, with a fresh block number; keeps flags and CRC
    /// type of an existing block.
    pub fn upsert_block(&mut self, ty: u64, data: Bytes) {
        if let Some(b) = self.blocks.iter_mut().find(|b| b.block_type == ty) {
            b.data = data;
            return;
        }
        let number = self
            .blocks
            .iter()
            .map(|b| b.number)
            .max()
            .unwrap_or(1)
            .max(1)
            + 1;
        let block = CanonicalBlock {
            block_type: ty,
            number,
            flags: BlockFlags::default(),
            crc_type: self.primary.crc_type,
            data,
        };
        let at = self
            .blocks
            .iter()
            .position(|b| b.block_type == block_type::PAYLOAD)
            .unwrap_or(self.blocks.len());
        self.blocks.insert(at, block);
    }

    /// Removes every block of type `ty`.
    pub fn remove_block(&mut self, ty: u64) {
        self.blocks.retain(|b| b.block_type != ty);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    fn id(source: &str, time: u64, seq: u64, frag: Option<u64>) -> BundleId {
        BundleId {
            source: source.parse().unwrap(),
            timestamp: CreationTimestamp {
                time: DtnTime(time),
                sequence: seq,
            },
            fragment_offset: frag,
        }
    }

    #[test]
    fn store_keys_sort_by_time_then_sequence_and_parse_back() {
        let ids = [
            id("dtn://a/", 5, 0, None),
            id("dtn://a/files", 5, 1, Some(0)),
            id("ipn:7.0", 5, 1, Some(9)),
            id("dtn:none", 6, 0, None),
            id("dtn://zz/x/y", 6, 2, None),
        ];
        for w in ids.windows(2) {
            assert!(w[0].to_key() < w[1].to_key(), "{} !< {}", w[0], w[1]);
        }
        for i in &ids {
            let k = i.to_key();
            // The source's text form follows the 24 bytes of numbers.
            assert_eq!(&k[24..], i.source.to_string().as_bytes());
            assert_eq!(&BundleId::from_key(&k).unwrap(), i);
        }
        assert!(BundleId::from_key(&[0u8; 23]).is_err());
    }
}
