//! A direct reader for the CBOR subset that well-formed bundles use
//! (RFC 8949 §3: unsigned integers, definite byte and text strings,
//! definite and indefinite arrays, `true`/`false`, `null`).
//!
//! It exists for speed: a byte string is returned as a slice of the
//! caller's [`Bytes`] when one is given, so a bundle's payload is never
//! copied while decoding (`serde_cbor` would copy it into a fresh `Vec`).
//! It never decides an error: on anything outside the subset, and on any
//! malformed or truncated input, it answers `None` and the caller hands the
//! item to `serde_cbor`, whose verdict (value or error) then stands. For
//! every input it accepts, it gives the same [`Item`] and end offset as the
//! `serde_cbor` path (a property test checks this).

use super::cbor::Item;
use bytes::Bytes;

/// Nesting depth past which the item is left to `serde_cbor` (which
/// refuses items nested deeper than 128).
const MAX_DEPTH: usize = 64;

/// Reads one item at `bytes[pos]` if it is in the subset; `src`, when
/// given, must hold exactly `bytes` (byte strings are then sliced from it).
/// Returns the item and the offset just past it.
pub(super) fn read(bytes: &[u8], src: Option<&Bytes>, pos: usize) -> Option<(Item, usize)> {
    let mut r = Reader { bytes, src, pos };
    let item = r.item(0)?;
    Some((item, r.pos))
}

/// Where the payload block's data starts in an encoded bundle and how long
/// it is, from a prefix of the encoding: `Some((offset, len))` once the
/// prefix reaches the data's byte string head. `None` while the prefix is
/// too short, and for anything this reader does not follow (then the
/// caller simply does not know the span; nothing is decided here).
pub(super) fn payload_span(prefix: &[u8]) -> Option<(usize, u64)> {
    let mut r = Reader {
        bytes: prefix,
        src: None,
        pos: 0,
    };
    if r.byte()? != 0x9f {
        return None;
    }
    r.item(0)?; // the primary block
    loop {
        // A canonical block: [type, number, flags, crc-type, data, ? crc].
        let head = r.byte()?;
        let (major, info) = (head >> 5, head & 0x1f);
        let items = if major == 4 { r.argument(info)? } else { 0 };
        if !(5..=6).contains(&items) {
            return None;
        }
        let mut ints = [0u64; 4];
        for n in &mut ints {
            let Item::Uint(v) = r.item(1)? else {
                return None;
            };
            *n = v;
        }
        let head = r.byte()?;
        if head >> 5 != 2 {
            return None;
        }
        let len = r.argument(head & 0x1f)?;
        if ints[0] == crate::bundle::block_type::PAYLOAD {
            return Some((r.pos, len));
        }
        r.span(len)?;
        if items == 6 {
            r.item(1)?;
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    src: Option<&'a Bytes>,
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The argument of a head whose additional information is `info`
    /// (RFC 8949 §3); `None` for the reserved values and indefinite length.
    fn argument(&mut self, info: u8) -> Option<u64> {
        let n = match info {
            0..=23 => return Some(u64::from(info)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None,
        };
        let raw = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// The next `len` bytes, advancing past them.
    fn span(&mut self, len: u64) -> Option<(usize, usize)> {
        let start = self.pos;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > self.bytes.len() {
            return None;
        }
        self.pos = end;
        Some((start, end))
    }

    fn item(&mut self, depth: usize) -> Option<Item> {
        if depth > MAX_DEPTH {
            return None;
        }
        let head = self.byte()?;
        let (major, info) = (head >> 5, head & 0x1f);
        match major {
            0 => self.argument(info).map(Item::Uint),
            2 => {
                let len = self.argument(info)?;
                let (start, end) = self.span(len)?;
                Some(Item::Bytes(match self.src {
                    Some(src) => src.slice(start..end),
                    None => Bytes::copy_from_slice(&self.bytes[start..end]),
                }))
            }
            3 => {
                let len = self.argument(info)?;
                let (start, end) = self.span(len)?;
                let text = std::str::from_utf8(&self.bytes[start..end]).ok()?;
                Some(Item::Text(text.to_owned()))
            }
            4 if info == 31 => {
                let mut items = Vec::new();
                loop {
                    if *self.bytes.get(self.pos)? == 0xff {
                        self.pos += 1;
                        return Some(Item::Array(items));
                    }
                    items.push(self.item(depth + 1)?);
                }
            }
            4 => {
                let len = self.argument(info)?;
                // Every item takes at least one byte: a count past the end
                // of the input is truncated (left to serde_cbor).
                if len > (self.bytes.len() - self.pos) as u64 {
                    return None;
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.item(depth + 1)?);
                }
                Some(Item::Array(items))
            }
            7 => match info {
                20 => Some(Item::Bool(false)),
                21 => Some(Item::Bool(true)),
                22 => Some(Item::Other("null")),
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cbor::read_item_serde;
    use super::*;
    use proptest::prelude::*;

    /// Random CBOR items built mostly from the subset, with some items
    /// outside it (negative integers, maps, tags, floats, indefinite strings).
    fn item() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            any::<u64>().prop_map(|n| {
                let mut v = Vec::new();
                super::super::cbor::put_uint(&mut v, n);
                v
            }),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
                let mut v = Vec::new();
                super::super::cbor::put_bytes(&mut v, &b);
                v
            }),
            "[a-zé]{0,8}".prop_map(|s| {
                let mut v = Vec::new();
                super::super::cbor::put_text(&mut v, &s);
                v
            }),
            Just(vec![0xf4]),
            Just(vec![0xf5]),
            Just(vec![0xf6]),
            Just(vec![0x20]),
            Just(vec![0x18, 0x05]), // non-shortest unsigned integer
            Just(vec![0xa1, 0x01, 0x02]),
            Just(vec![0xc1, 0x01]),
            Just(vec![0xfb, 0, 0, 0, 0, 0, 0, 0, 0]),
            Just(vec![0x5f, 0x41, 0x01, 0xff]),
            Just(vec![0x62, 0xc3, 0x28]), // invalid UTF-8
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            (proptest::collection::vec(inner, 0..6), any::<bool>()).prop_map(|(items, indef)| {
                let mut v = Vec::new();
                if indef {
                    v.push(0x9f);
                } else {
                    super::super::cbor::put_array(&mut v, items.len() as u64);
                }
                items.iter().for_each(|i| v.extend_from_slice(i));
                if indef {
                    v.push(0xff);
                }
                v
            })
        })
    }

    /// The fast reader either declines or agrees with `serde_cbor`.
    fn agrees(bytes: &[u8]) {
        let src = Bytes::copy_from_slice(bytes);
        for s in [None, Some(&src)] {
            if let Some((item, end)) = read(bytes, s, 0) {
                assert_eq!(read_item_serde(bytes, 0), Ok((item, end)), "{bytes:02x?}");
            }
        }
    }

    proptest! {
        #[test]
        fn fast_reader_agrees_with_serde_cbor(bytes in item(), cut in any::<prop::sample::Index>()) {
            agrees(&bytes);
            // Truncated and bit-flipped inputs too.
            agrees(&bytes[..cut.index(bytes.len() + 1)]);
            let mut flipped = bytes.clone();
            let at = cut.index(flipped.len());
            flipped[at] ^= 0x55;
            agrees(&flipped);
        }

        #[test]
        fn fast_reader_agrees_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            agrees(&bytes);
        }

        #[test]
        fn a_payload_span_found_in_any_input_starts_inside_it(
            tail in proptest::collection::vec(any::<u8>(), 0..96),
            head in any::<bool>(),
        ) {
            // Half the inputs start like a bundle, so the block loop is reached.
            let mut bytes = if head { b"\x9f\x80".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&tail);
            if let Some((offset, _)) = payload_span(&bytes) {
                prop_assert!(offset <= bytes.len());
            }
        }
    }

    #[test]
    fn the_payload_span_is_found_in_a_prefix_and_matches_the_decoder() {
        use crate::bundle::{Bundle, CrcType, CreationTimestamp, DtnTime};
        for crc in [CrcType::None, CrcType::Crc16, CrcType::Crc32c] {
            let mut b = Bundle::new(
                "ipn:1.2".parse().unwrap(),
                "dtn://c/files".parse().unwrap(),
                CreationTimestamp {
                    time: DtnTime(1),
                    sequence: 0,
                },
                1000,
                Bytes::from(vec![7u8; 70_000]),
            );
            b.blocks[0].crc_type = crc;
            b.set_previous_node(&"dtn://b/".parse().unwrap());
            b.set_bundle_age_ms(5);
            let enc = Bytes::from(super::super::encode(&b));
            let decoded = super::super::decode_shared(&enc, &Default::default()).unwrap();
            let data = decoded.payload().unwrap();
            let offset = data.as_ptr() as usize - enc.as_ptr() as usize;
            let want = Some((offset, data.len() as u64));
            assert_eq!(payload_span(&enc), want, "{crc:?}");
            // Every prefix that reaches the data head gives the span; shorter
            // ones give nothing.
            for cut in 0..=offset + 10 {
                let got = payload_span(&enc[..cut]);
                assert_eq!(got, if cut >= offset { want } else { None }, "cut {cut}");
            }
        }
    }

    #[test]
    fn no_payload_span_in_what_is_not_a_bundle() {
        for bytes in [
            &b""[..],
            b"\x9f",
            b"\x80",
            b"\x9f\x80\x85\x01",
            b"\xff\xff\xff",
        ] {
            assert_eq!(payload_span(bytes), None);
        }
        // A block array of the wrong size is not followed.
        assert_eq!(payload_span(b"\x9f\x80\x83\x01\x01\x00"), None);
    }

    #[test]
    fn well_formed_items_take_the_fast_path_and_share_the_input() {
        // [1, h'0102', "a", true, [_ 5]] then one more byte.
        let bytes = Bytes::from_static(&[
            0x85, 0x01, 0x42, 0x01, 0x02, 0x61, b'a', 0xf5, 0x9f, 0x05, 0xff, 0x00,
        ]);
        let (item, end) = read(&bytes, Some(&bytes), 0).expect("in the subset");
        assert_eq!(end, bytes.len() - 1);
        let Item::Array(items) = &item else {
            panic!("{item:?}")
        };
        let Item::Bytes(b) = &items[1] else {
            panic!("{item:?}")
        };
        assert_eq!(b.as_ptr(), bytes[3..].as_ptr(), "sliced, not copied");
        assert_eq!(read_item_serde(&bytes, 0), Ok((item, end)));
        // Outside the subset or malformed: declined.
        assert_eq!(read(&[0x20], None, 0), None);
        assert_eq!(read(&[0x42, 0x01], None, 0), None);
        assert_eq!(read(&[0x9f, 0x01], None, 0), None);
        assert_eq!(read(&[0x1c], None, 0), None);
    }
}
