//! Interoperability with the `bp7` crate (dtn7-rs's BPv7 codec): spore
//! decodes what bp7 builds, bp7 decodes and validates what spore builds,
//! and spore re-encodes bp7's canonical bytes byte for byte.

use bp7::EndpointID;
use bp7::flags::BlockControlFlags;
use bytes::Bytes;
use spore::bundle::blocks::HopCount;
use spore::bundle::codec::{DecodeLimits, decode, encode};
use spore::bundle::{Bundle, BundleFlags, CrcType, CreationTimestamp, DtnTime, Eid};
use std::time::Duration;

const FLAGS: u64 = BundleFlags::REPORT_RECEPTION | BundleFlags::STATUS_TIME_REQUESTED;

fn bp7_bundle(crc: u8, dst: EndpointID, src: EndpointID) -> bp7::Bundle {
    let none = BlockControlFlags::empty;
    let primary = bp7::primary::PrimaryBlockBuilder::new()
        .bundle_control_flags(FLAGS)
        .destination(dst)
        .source(src.clone())
        .report_to(src)
        .creation_timestamp(bp7::CreationTimestamp::with_time_and_seq(
            700_000_000_123,
            3,
        ))
        .lifetime(Duration::from_millis(3_600_000))
        .build()
        .unwrap();
    let canonicals = vec![
        bp7::canonical::new_hop_count_block(2, none(), 32),
        bp7::canonical::new_bundle_age_block(3, none(), 1234),
        bp7::canonical::new_previous_node_block(4, none(), EndpointID::with_dtn("prev").unwrap()),
        bp7::canonical::new_payload_block(none(), b"payload from bp7".to_vec()),
    ];
    let mut b = bp7::Bundle::new(primary, canonicals);
    b.set_crc(crc);
    b
}

fn crc_of(code: u8) -> CrcType {
    CrcType::from_code(u64::from(code)).unwrap()
}

fn eid_pairs() -> Vec<(EndpointID, EndpointID, &'static str, &'static str)> {
    vec![
        (
            EndpointID::with_dtn("dst/inbox").unwrap(),
            EndpointID::with_dtn("src").unwrap(),
            "dtn://dst/inbox",
            "dtn://src/",
        ),
        (
            EndpointID::with_ipn(7, 1).unwrap(),
            EndpointID::with_ipn(3, 0).unwrap(),
            "ipn:7.1",
            "ipn:3.0",
        ),
    ]
}

#[test]
fn spore_decodes_bp7_bundles_and_reencodes_identically() {
    for crc in [bp7::crc::CRC_NO, bp7::crc::CRC_16, bp7::crc::CRC_32] {
        for (dst, src, dst_s, src_s) in eid_pairs() {
            let bytes = bp7_bundle(crc, dst, src).to_cbor();
            let b = decode(&bytes, &DecodeLimits::default()).unwrap();
            let p = &b.primary;
            assert_eq!(p.version, 7);
            assert_eq!(p.flags.0, FLAGS);
            assert_eq!(p.crc_type, crc_of(crc));
            assert_eq!(p.destination.to_string(), dst_s);
            assert_eq!(p.source.to_string(), src_s);
            assert_eq!(p.report_to.to_string(), src_s);
            assert_eq!(p.creation_timestamp.time, DtnTime(700_000_000_123));
            assert_eq!(p.creation_timestamp.sequence, 3);
            assert_eq!(p.lifetime_ms, 3_600_000);
            assert_eq!(p.fragment_offset, None);
            assert_eq!(
                b.hop_count().unwrap(),
                Some(HopCount {
                    limit: 32,
                    count: 0
                })
            );
            assert_eq!(b.bundle_age_ms().unwrap(), Some(1234));
            assert_eq!(
                b.previous_node().unwrap().unwrap().to_string(),
                "dtn://prev/"
            );
            assert_eq!(b.payload().unwrap().as_ref(), b"payload from bp7");
            let numbers: Vec<u64> = b.blocks.iter().map(|c| c.number).collect();
            assert_eq!(numbers, [2, 3, 4, 1]);
            assert!(b.blocks.iter().all(|c| c.crc_type == crc_of(crc)));
            assert_eq!(
                encode(&b),
                bytes,
                "re-encoding differs (crc {crc}, {dst_s})"
            );
        }
    }
}

fn spore_bundle(crc: CrcType, src: &str, dst: &str) -> Bundle {
    let mut b = Bundle::new(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        CreationTimestamp {
            time: DtnTime(812_345_678_901),
            sequence: 9,
        },
        86_400_000,
        Bytes::from_static(b"payload from spore"),
    );
    b.primary.flags = BundleFlags(FLAGS);
    b.primary.crc_type = crc;
    b.blocks[0].crc_type = crc;
    b.set_hop_count(HopCount {
        limit: 16,
        count: 2,
    });
    b.set_bundle_age_ms(555);
    b.set_previous_node(&"ipn:4.0".parse::<Eid>().unwrap());
    b
}

#[test]
fn bp7_decodes_and_validates_spore_bundles() {
    for crc in [CrcType::None, CrcType::Crc16, CrcType::Crc32c] {
        for (src, dst) in [("dtn://src/", "dtn://dst/app"), ("ipn:3.0", "ipn:7.1")] {
            let bytes = encode(&spore_bundle(crc, src, dst));
            let mut theirs = bp7::Bundle::try_from(bytes.clone()).unwrap();
            theirs.validate().unwrap();
            assert!(theirs.crc_valid(), "bp7 rejects spore CRC {crc:?}");
            let p = &theirs.primary;
            assert_eq!(p.bundle_control_flags, FLAGS);
            assert_eq!(p.crc.to_code(), crc.code());
            assert_eq!(p.source.to_string(), src);
            assert_eq!(p.destination.to_string(), dst);
            assert_eq!(p.creation_timestamp.dtntime(), 812_345_678_901);
            assert_eq!(p.creation_timestamp.seqno(), 9);
            assert_eq!(p.lifetime, Duration::from_millis(86_400_000));
            assert_eq!(theirs.payload().unwrap(), b"payload from spore");
            let hc = theirs
                .extension_block_by_type(bp7::canonical::HOP_COUNT_BLOCK)
                .unwrap();
            assert_eq!(hc.hop_count_get(), Some((16, 2)));
            let age = theirs
                .extension_block_by_type(bp7::canonical::BUNDLE_AGE_BLOCK)
                .unwrap();
            assert_eq!(age.bundle_age_get(), Some(555));
            assert_eq!(theirs.previous_node().unwrap().to_string(), "ipn:4.0");
            // bp7's own encoding of what it read is what spore wrote.
            assert_eq!(theirs.to_cbor(), bytes);
        }
    }
}

#[test]
fn bp7_detects_a_spore_crc_flip_and_so_does_spore() {
    let mut bytes = encode(&spore_bundle(CrcType::Crc32c, "dtn://a/", "dtn://b/"));
    let n = bytes.len();
    bytes[n - 8] ^= 0x20;
    let err = decode(&bytes, &DecodeLimits::default()).unwrap_err();
    assert_eq!(err.kind(), "bad_crc");
    let mut theirs = bp7::Bundle::try_from(bytes).unwrap();
    assert!(!theirs.crc_valid());
}
