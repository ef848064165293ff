use super::cbor::{put_text, read_item};
use super::*;
use crate::bundle::{BundleFlags, CreationTimestamp, DtnTime};
use bytes::Bytes;

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

/// The default primary block items (CRC none) as separate encodings.
fn primary_items() -> Vec<Vec<u8>> {
    vec![
        enc(|v| put_uint(v, 7)),
        enc(|v| put_uint(v, 0)),
        enc(|v| put_uint(v, 0)),
        eid_to_cbor(&"dtn://b/in".parse().unwrap()),
        eid_to_cbor(&"dtn://a/".parse().unwrap()),
        eid_to_cbor(&"dtn://a/".parse().unwrap()),
        enc(|v| {
            put_array(v, 2);
            put_uint(v, 100);
            put_uint(v, 0);
        }),
        enc(|v| put_uint(v, 3600)),
    ]
}

fn array_of(items: &[Vec<u8>]) -> Vec<u8> {
    let mut v = enc(|v| put_array(v, items.len() as u64));
    items.iter().for_each(|i| v.extend_from_slice(i));
    v
}

/// A CRC-less canonical block `[ty, num, 0, 0, data]`.
fn block(ty: u64, num: u64, data: &[u8]) -> Vec<u8> {
    enc(|v| {
        put_array(v, 5);
        put_uint(v, ty);
        put_uint(v, num);
        put_uint(v, 0);
        put_uint(v, 0);
        put_bytes(v, data);
    })
}

fn raw_bundle(primary: &[Vec<u8>], blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0x9f];
    v.extend(array_of(primary));
    blocks.iter().for_each(|b| v.extend_from_slice(b));
    v.push(0xff);
    v
}

fn dec(bytes: &[u8]) -> Result<Bundle, DecodeError> {
    decode(bytes, &DecodeLimits::default())
}

fn sample(crc: CrcType) -> Bundle {
    let mut b = Bundle::new(
        "dtn://a/".parse().unwrap(),
        "ipn:9.1".parse().unwrap(),
        CreationTimestamp {
            time: DtnTime(700_000_000_000),
            sequence: 42,
        },
        86_400_000,
        Bytes::from_static(b"hello spore"),
    );
    b.primary.crc_type = crc;
    b.blocks[0].crc_type = crc;
    b.set_bundle_age_ms(17);
    b
}

#[test]
fn round_trips_with_every_crc_type() {
    for crc in [CrcType::None, CrcType::Crc16, CrcType::Crc32c] {
        let b = sample(crc);
        let bytes = encode(&b);
        assert_eq!(bytes[0], 0x9f);
        assert_eq!(*bytes.last().unwrap(), 0xff);
        let back = dec(&bytes).unwrap();
        assert_eq!(back, b);
        assert_eq!(encode(&back), bytes);
    }
}

#[test]
fn crc_is_over_block_with_crc_zeroed() {
    let b = sample(CrcType::Crc16);
    let bytes = encode(&b);
    let (_, end) = read_item(&bytes, 1).unwrap();
    let mut span = bytes[1..end].to_vec();
    let n = span.len();
    assert_eq!(span[n - 3], 0x42);
    let carried = u16::from_be_bytes([span[n - 2], span[n - 1]]);
    span[n - 2] = 0;
    span[n - 1] = 0;
    assert_eq!(crate::bundle::crc::crc16_x25(&span), carried);
}

#[test]
fn fragment_fields_round_trip() {
    let mut b = sample(CrcType::Crc32c);
    b.primary.flags.set(BundleFlags::IS_FRAGMENT, true);
    b.primary.fragment_offset = Some(10);
    b.primary.total_adu_length = Some(1000);
    assert_eq!(dec(&encode(&b)).unwrap(), b);
}

#[test]
fn encode_puts_payload_last() {
    let mut b = sample(CrcType::None);
    b.blocks.reverse();
    let back = dec(&encode(&b)).unwrap();
    assert_eq!(back.blocks.last().unwrap().block_type, block_type::PAYLOAD);
}

#[test]
fn eid_cbor_forms() {
    assert_eq!(eid_to_cbor(&Eid::DtnNone), [0x82, 0x01, 0x00]);
    assert_eq!(
        eid_to_cbor(&"ipn:1.2".parse().unwrap()),
        [0x82, 0x02, 0x82, 0x01, 0x02]
    );
    let d = eid_to_cbor(&"dtn://n/s".parse().unwrap());
    assert_eq!(d, [0x82, 0x01, 0x65, b'/', b'/', b'n', b'/', b's']);
    for s in ["dtn:none", "ipn:5.0", "dtn://node/a/b", "dtn://node/"] {
        let e: Eid = s.parse().unwrap();
        assert_eq!(eid_from_cbor(&eid_to_cbor(&e)).unwrap(), e);
    }
    let unknown = enc(|v| {
        put_array(v, 2);
        put_uint(v, 3);
        put_uint(v, 0);
    });
    let err = eid_from_cbor(&unknown).unwrap_err();
    assert_eq!(err.kind(), "unknown_eid_scheme");
    let bad_text = enc(|v| {
        put_array(v, 2);
        put_uint(v, 1);
        put_text(v, "noslash");
    });
    assert_eq!(eid_from_cbor(&bad_text).unwrap_err().kind(), "bad_eid");
}

fn payload() -> Vec<u8> {
    block(1, 1, b"x")
}

#[test]
fn every_error_variant_from_real_input() {
    let good = raw_bundle(&primary_items(), &[payload()]);
    assert!(dec(&good).is_ok());
    let small = DecodeLimits {
        max_bundle_bytes: 10,
        max_blocks: 64,
    };
    let e = decode(&good, &small).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Oversize {
            len: good.len(),
            max: 10
        }
    );
    assert!(matches!(
        dec(&[0x9f, 0x1c]),
        Err(DecodeError::BadCbor { offset: 1..=2, .. })
    ));
    assert_eq!(dec(&good[1..]), Err(DecodeError::NotIndefiniteArray));
    assert_eq!(dec(&[]), Err(DecodeError::Truncated));
    assert_eq!(dec(&good[..good.len() - 1]), Err(DecodeError::Truncated));
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        dec(&trailing),
        Err(DecodeError::TrailingBytes { offset: good.len() })
    );

    let with = |i: usize, item: Vec<u8>| {
        let mut p = primary_items();
        p[i] = item;
        dec(&raw_bundle(&p, &[payload()]))
    };
    assert_eq!(with(0, vec![0x06]), Err(DecodeError::UnsupportedVersion(6)));
    assert_eq!(with(2, vec![0x03]), Err(DecodeError::UnknownCrcType(3)));
    let ipn3 = enc(|v| {
        put_array(v, 2);
        put_uint(v, 3);
        put_uint(v, 1);
    });
    assert!(matches!(
        with(3, ipn3),
        Err(DecodeError::Eid(EidError::UnknownScheme(_)))
    ));
    assert!(matches!(
        with(6, vec![0x00]),
        Err(DecodeError::BadPrimary(_))
    ));
    // IS_FRAGMENT set without the two fragment fields.
    assert!(matches!(
        with(1, vec![0x01]),
        Err(DecodeError::BadPrimary(_))
    ));

    let mut bad_crc = encode(&sample(CrcType::Crc32c));
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1; // last payload byte, before the 5-byte CRC and 0xff
    assert!(matches!(
        dec(&bad_crc),
        Err(DecodeError::BadCrc {
            block_number: Some(1),
            ..
        })
    ));
    let mut bad_primary_crc = encode(&sample(CrcType::Crc16));
    bad_primary_crc[3] ^= 0x01; // flags 0 -> 1 changes the CRC'd bytes
    assert!(matches!(
        dec(&bad_primary_crc),
        Err(DecodeError::BadCrc {
            block_number: None,
            ..
        })
    ));

    let p = primary_items();
    let text_data = enc(|v| {
        put_array(v, 5);
        for n in [1, 1, 0, 0] {
            put_uint(v, n);
        }
        put_text(v, "x");
    });
    let e = dec(&raw_bundle(&p, &[text_data])).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::BadBlock {
                number: Some(1),
                index: 0,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        dec(&raw_bundle(&p, &[block(7, 2, &[0])])),
        Err(DecodeError::MissingPayload)
    );
    assert_eq!(
        dec(&raw_bundle(&p, &[payload(), block(7, 2, &[0])])),
        Err(DecodeError::PayloadNotLast)
    );
    assert_eq!(
        dec(&raw_bundle(
            &p,
            &[block(7, 2, &[0]), block(10, 2, &[0]), payload()]
        )),
        Err(DecodeError::DuplicateBlockNumber(2))
    );
    let one = DecodeLimits {
        max_bundle_bytes: 1024,
        max_blocks: 1,
    };
    let two = raw_bundle(&p, &[block(7, 2, &[0]), payload()]);
    assert_eq!(
        decode(&two, &one),
        Err(DecodeError::TooManyBlocks { max: 1 })
    );
}

#[test]
fn block_number_rules() {
    let p = primary_items();
    let e = dec(&raw_bundle(&p, &[block(1, 2, b"x")])).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::BadBlock {
                number: Some(2),
                ..
            }
        ),
        "{e}"
    );
    let e = dec(&raw_bundle(&p, &[block(7, 0, &[0]), payload()])).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::BadBlock {
                number: Some(0),
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn anonymous_and_admin_rules() {
    let none = eid_to_cbor(&Eid::DtnNone);
    let mut p = primary_items();
    p[4] = none.clone();
    assert!(matches!(
        dec(&raw_bundle(&p, &[payload()])),
        Err(DecodeError::BadPrimary(_))
    ));
    p[1] = enc(|v| put_uint(v, BundleFlags::MUST_NOT_FRAGMENT));
    let b = dec(&raw_bundle(&p, &[payload()])).unwrap();
    assert!(b.primary.source.is_none());
    let mut p = primary_items();
    p[1] = enc(|v| put_uint(v, BundleFlags::ADMIN_RECORD));
    let e = dec(&raw_bundle(&p, &[block(1, 1, b"")])).unwrap_err();
    assert!(matches!(e, DecodeError::BadPrimary(_)));
}

#[test]
fn error_kinds_are_distinct_snake_case() {
    let errs = [
        DecodeError::Oversize { len: 1, max: 0 },
        DecodeError::BadCbor {
            offset: 0,
            detail: String::new(),
        },
        DecodeError::NotIndefiniteArray,
        DecodeError::Truncated,
        DecodeError::TrailingBytes { offset: 0 },
        DecodeError::UnsupportedVersion(6),
        DecodeError::UnknownCrcType(3),
        DecodeError::BadCrc {
            block_number: None,
            expected: 0,
            found: 1,
        },
        DecodeError::Eid(EidError::TooLong),
        DecodeError::BadPrimary(""),
        DecodeError::BadBlock {
            number: None,
            index: 0,
            reason: "",
        },
        DecodeError::MissingPayload,
        DecodeError::PayloadNotLast,
        DecodeError::DuplicateBlockNumber(2),
        DecodeError::TooManyBlocks { max: 1 },
    ];
    let kinds: std::collections::HashSet<_> = errs.iter().map(DecodeError::kind).collect();
    assert_eq!(kinds.len(), errs.len());
    assert!(
        kinds
            .iter()
            .all(|k| k.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'))
    );
    assert!(errs[7].to_string().contains("primary block"));
}

#[test]
fn unknown_blocks_follow_their_flags() {
    let mut b = sample(CrcType::None);
    let flags = [
        (200, 0),
        (
            201,
            BlockFlags::DISCARD_IF_UNPROCESSABLE | BlockFlags::REPORT_IF_UNPROCESSABLE,
        ),
    ];
    for (ty, f) in flags {
        b.upsert_block(ty, Bytes::from_static(&[0]));
        b.blocks
            .iter_mut()
            .find(|c| c.block_type == ty)
            .unwrap()
            .flags = BlockFlags(f);
    }
    let mut kept = b.clone();
    let out = process_unknown_blocks(&mut kept);
    assert!(out.report && !out.delete_bundle);
    assert_eq!(out.discarded, [4]);
    let types: Vec<u64> = kept.blocks.iter().map(|c| c.block_type).collect();
    assert_eq!(types, [block_type::BUNDLE_AGE, 200, block_type::PAYLOAD]);

    b.upsert_block(202, Bytes::from_static(&[0]));
    b.blocks
        .iter_mut()
        .find(|c| c.block_type == 202)
        .unwrap()
        .flags = BlockFlags(BlockFlags::DELETE_BUNDLE_IF_UNPROCESSABLE);
    let before = b.clone();
    let out = process_unknown_blocks(&mut b);
    assert!(out.delete_bundle && out.discarded.is_empty());
    assert_eq!(b, before);
}
