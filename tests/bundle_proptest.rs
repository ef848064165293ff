//! Property tests of the bundle codec: encode/decode round trips for
//! arbitrary valid bundles; arbitrary and mutated bytes never panic.

use bytes::Bytes;
use proptest::prelude::*;
use spore::bundle::admin::AdministrativeRecord;
use spore::bundle::codec::{DecodeLimits, decode, encode};
use spore::bundle::{
    BlockFlags, Bundle, BundleFlags, CanonicalBlock, CrcType, CreationTimestamp, DtnTime, Eid,
    PrimaryBlock,
};

fn eid() -> impl Strategy<Value = Eid> {
    prop_oneof![
        ("[a-z0-9.-]{1,12}", "[a-z0-9/_~-]{0,16}").prop_map(|(n, d)| Eid::dtn(&n, &d).unwrap()),
        (any::<u64>(), any::<u64>()).prop_map(|(node, service)| Eid::Ipn { node, service }),
    ]
}

fn crc() -> impl Strategy<Value = CrcType> {
    prop_oneof![
        Just(CrcType::None),
        Just(CrcType::Crc16),
        Just(CrcType::Crc32c)
    ]
}

fn ext_block() -> impl Strategy<Value = (u64, u64, CrcType, Vec<u8>)> {
    (
        (2u64..100_000).prop_filter("not payload", |t| *t != 1),
        any::<u64>(),
        crc(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
}

prop_compose! {
    fn bundle()(
        flags in any::<u64>(),
        pcrc in crc(),
        dst in eid(),
        src in eid(),
        rpt in prop_oneof![eid(), Just(Eid::DtnNone)],
        time in any::<u64>(),
        seq in any::<u64>(),
        lifetime in any::<u64>(),
        frag in (any::<u64>(), any::<u64>()),
        exts in proptest::collection::vec(ext_block(), 0..6),
        payload in proptest::collection::vec(any::<u8>(), 1..300),
        payload_crc in crc(),
        payload_flags in any::<u64>(),
    ) -> Bundle {
        let fragment = flags & BundleFlags::IS_FRAGMENT != 0;
        let mut blocks: Vec<CanonicalBlock> = exts
            .into_iter()
            .enumerate()
            .map(|(i, (ty, fl, c, d))| CanonicalBlock {
                block_type: ty,
                number: i as u64 + 2,
                flags: BlockFlags(fl),
                crc_type: c,
                data: Bytes::from(d),
            })
            .collect();
        blocks.push(CanonicalBlock {
            block_type: 1,
            number: 1,
            flags: BlockFlags(payload_flags),
            crc_type: payload_crc,
            data: Bytes::from(payload),
        });
        Bundle {
            primary: PrimaryBlock {
                version: 7,
                flags: BundleFlags(flags),
                crc_type: pcrc,
                destination: dst,
                source: src,
                report_to: rpt,
                creation_timestamp: CreationTimestamp { time: DtnTime(time), sequence: seq },
                lifetime_ms: lifetime,
                fragment_offset: fragment.then_some(frag.0),
                total_adu_length: fragment.then_some(frag.1),
            },
            blocks,
        }
    }
}

/// If `bytes` decode, the result must survive encode/decode unchanged.
fn decode_is_stable(bytes: &[u8]) {
    if let Ok(b) = decode(bytes, &DecodeLimits::default()) {
        let again = decode(&encode(&b), &DecodeLimits::default()).expect("re-encoding must decode");
        assert_eq!(again, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(b in bundle()) {
        let bytes = encode(&b);
        let back = decode(&bytes, &DecodeLimits::default()).unwrap();
        prop_assert_eq!(&back, &b);
        prop_assert_eq!(encode(&back), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_is_stable(&bytes);
        let mut prefixed = vec![0x9f];
        prefixed.extend_from_slice(&bytes);
        decode_is_stable(&prefixed);
        let _ = AdministrativeRecord::decode(&bytes);
    }

    #[test]
    fn mutated_bundles_never_panic(
        b in bundle(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut bytes = encode(&b);
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes[i] ^= 1 << (byte % 8),
                2 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
        }
        decode_is_stable(&bytes);
    }
}
