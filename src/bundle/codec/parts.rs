//! Encoding a bundle for the wire without copying its payload.
//!
//! The payload block comes last in a bundle (RFC 9171 §4.1), so an encoded
//! bundle is a short head (`0x9f`, the primary block, the extension blocks
//! and the payload block up to its data), the payload data itself and a
//! short tail (the payload block's CRC, if any, and the closing `0xff`).
//! [`encode_parts`] returns those three pieces with the payload shared,
//! not copied; a convergence layer writes them one after another
//! ([`crate::cla::quic::Contact::send_bundle`]). The bytes are exactly
//! those of [`super::encode`].

use bytes::Bytes;

use super::{
    crc_value, encode, encode_canonical, encode_primary, fill_crc_field, put_canonical_head,
    zeroed_crc_field,
};
use crate::bundle::{Bundle, CanonicalBlock, block_type};

/// An encoded bundle as consecutive pieces: their concatenation is the
/// RFC 9171 §4 wire form. Built by [`encode_parts`], or from whole bytes.
#[derive(Clone, Debug, Default)]
pub struct EncodedBundle {
    parts: [Bytes; 3],
}

impl EncodedBundle {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// True if there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, in order (some may be empty).
    pub fn into_parts(self) -> [Bytes; 3] {
        self.parts
    }

    /// The whole encoding as one buffer: shared if it is already one piece,
    /// copied otherwise.
    pub fn to_bytes(&self) -> Bytes {
        let mut full = self.parts.iter().filter(|p| !p.is_empty());
        match (full.next(), full.next()) {
            (None, _) => Bytes::new(),
            (Some(only), None) => only.clone(),
            _ => Bytes::from(self.parts.concat()),
        }
    }
}

impl From<Bytes> for EncodedBundle {
    fn from(b: Bytes) -> EncodedBundle {
        EncodedBundle {
            parts: [b, Bytes::new(), Bytes::new()],
        }
    }
}

impl From<Vec<u8>> for EncodedBundle {
    fn from(v: Vec<u8>) -> EncodedBundle {
        EncodedBundle::from(Bytes::from(v))
    }
}

/// Encodes `b` like [`encode`] (same bytes), as head, payload data and
/// tail, sharing the payload's `Bytes` instead of copying it. The payload
/// block's CRC is computed over the pieces in place. A bundle with no
/// payload block or with several (which [`super::decode`] refuses) comes
/// back as one piece from [`encode`].
pub fn encode_parts(b: &Bundle) -> EncodedBundle {
    let Some(payload) = only_payload(b) else {
        return EncodedBundle::from(encode(b));
    };
    let (head, start) = head_of(b, payload);
    let zeroed = zeroed_crc_field(payload.crc_type);
    let value = crc_value(
        payload.crc_type,
        [&head[start..], &payload.data[..], zeroed],
    );
    let mut tail = Vec::with_capacity(zeroed.len() + 1);
    tail.extend_from_slice(zeroed);
    fill_crc_field(&mut tail, &value);
    tail.push(0xff);
    EncodedBundle {
        parts: [Bytes::from(head), payload.data.clone(), Bytes::from(tail)],
    }
}

/// The length in bytes of [`encode`]`(b)`, found without touching the
/// payload data (no copy of it, no CRC over it): for a bundle built only
/// to be stored, whose payload is kept apart (a chunk's, once per CID).
pub fn encoded_len(b: &Bundle) -> usize {
    let Some(payload) = only_payload(b) else {
        return encode(b).len();
    };
    let (head, _) = head_of(b, payload);
    // The tail: the CRC field, then the closing 0xff.
    head.len() + payload.data.len() + zeroed_crc_field(payload.crc_type).len() + 1
}

/// `b`'s payload block if it has exactly one (what [`super::decode`]
/// accepts); `None` for none or several.
fn only_payload(b: &Bundle) -> Option<&CanonicalBlock> {
    let mut payloads = b
        .blocks
        .iter()
        .filter(|c| c.block_type == block_type::PAYLOAD);
    match (payloads.next(), payloads.next()) {
        (Some(payload), None) => Some(payload),
        _ => None,
    }
}

/// The encoding of `b` up to `payload`'s data (the only payload block,
/// which comes last), and where the payload block starts in it.
fn head_of(b: &Bundle, payload: &CanonicalBlock) -> (Vec<u8>, usize) {
    let mut head = Vec::with_capacity(128 + 32 * b.blocks.len());
    head.push(0x9f);
    encode_primary(&mut head, &b.primary);
    for blk in b
        .blocks
        .iter()
        .filter(|c| c.block_type != block_type::PAYLOAD)
    {
        encode_canonical(&mut head, blk);
    }
    let start = head.len();
    put_canonical_head(&mut head, payload);
    (head, start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BlockFlags, CrcType, CreationTimestamp, DtnTime, Eid};

    fn bundle(crc: CrcType, payload: &[u8]) -> Bundle {
        let mut b = Bundle::new(
            "dtn://a/x".parse::<Eid>().unwrap(),
            "dtn://c/files".parse::<Eid>().unwrap(),
            CreationTimestamp {
                time: DtnTime(812_345_678_901),
                sequence: 7,
            },
            3_600_000,
            Bytes::copy_from_slice(payload),
        );
        b.blocks[0].crc_type = crc; // the payload block, before the hop count is added
        b.set_hop_count(crate::bundle::blocks::HopCount {
            limit: 30,
            count: 2,
        });
        b
    }

    #[test]
    fn encoded_len_is_the_encodings_length_across_cbor_length_heads() {
        // Byte-string heads take 1, 2, 3, 5 bytes below 24, 256, 65 536, 2^32.
        for n in [0, 23, 24, 255, 256, 65_535, 65_536, 65_537] {
            for crc in [CrcType::None, CrcType::Crc16, CrcType::Crc32c] {
                let b = bundle(crc, &vec![0xa5; n]);
                assert_eq!(encoded_len(&b), encode(&b).len(), "{crc:?}, {n} bytes");
            }
        }
        // No payload block at all: measured from the encoding itself.
        let mut b = bundle(CrcType::Crc32c, b"x");
        b.blocks.retain(|c| c.block_type != block_type::PAYLOAD);
        assert_eq!(encoded_len(&b), encode(&b).len());
    }

    #[test]
    fn parts_join_to_the_whole_encoding_for_every_crc_type() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for crc in [CrcType::None, CrcType::Crc16, CrcType::Crc32c] {
            for payload in [&b""[..], b"x", &big[..]] {
                let b = bundle(crc, payload);
                let parts = encode_parts(&b);
                let whole = encode(&b);
                assert_eq!(parts.len(), whole.len(), "{crc:?}, {} bytes", payload.len());
                assert_eq!(
                    encoded_len(&b),
                    whole.len(),
                    "{crc:?}, {} bytes",
                    payload.len()
                );
                assert_eq!(parts.to_bytes(), whole, "{crc:?}, {} bytes", payload.len());
                let [_, data, tail] = parts.into_parts();
                assert_eq!(data, payload, "the payload is its own piece");
                assert_eq!(tail.last(), Some(&0xff));
                // Shared, not copied.
                assert_eq!(data.as_ptr(), b.payload().unwrap().as_ptr());
            }
        }
    }

    #[test]
    fn a_bundle_without_one_payload_block_is_encoded_whole() {
        let mut b = bundle(CrcType::Crc32c, b"abc");
        let mut second = b.block(block_type::PAYLOAD).unwrap().clone();
        second.number = 9;
        second.flags = BlockFlags::default();
        b.blocks.push(second);
        let parts = encode_parts(&b);
        assert_eq!(parts.to_bytes(), encode(&b));
        let [whole, data, tail] = parts.into_parts();
        assert!(data.is_empty() && tail.is_empty());
        assert_eq!(whole, encode(&b));
        b.blocks.retain(|c| c.block_type != block_type::PAYLOAD);
        assert_eq!(encode_parts(&b).to_bytes(), encode(&b));
    }

    #[test]
    fn whole_bytes_make_one_piece() {
        let e = EncodedBundle::from(vec![1u8, 2, 3]);
        assert_eq!(e.len(), 3);
        assert!(!e.is_empty());
        assert!(EncodedBundle::default().is_empty());
        assert_eq!(EncodedBundle::default().to_bytes(), Bytes::new());
        let b = Bytes::from_static(b"abc");
        assert_eq!(
            EncodedBundle::from(b.clone()).to_bytes().as_ptr(),
            b.as_ptr()
        );
    }
}
