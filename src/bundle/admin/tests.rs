use super::*;
use crate::bundle::codec::{DecodeLimits, decode, encode};
use crate::bundle::{Bundle, BundleFlags, Eid};
use bytes::Bytes;

fn subject(flags: u64) -> Bundle {
    let mut b = Bundle::new(
        "dtn://src/app".parse().unwrap(),
        "dtn://dst/app".parse().unwrap(),
        CreationTimestamp {
            time: DtnTime(1000),
            sequence: 2,
        },
        60_000,
        Bytes::from_static(b"data"),
    );
    b.primary.report_to = "dtn://watcher/".parse().unwrap();
    b.primary.flags = BundleFlags(flags);
    b
}

#[test]
fn status_report_round_trips() {
    let r = StatusReport {
        received: StatusAssertion::At(DtnTime(5)),
        forwarded: StatusAssertion::Yes,
        delivered: StatusAssertion::No,
        deleted: StatusAssertion::No,
        reason: ReasonCode::Other(200),
        subject: "ipn:1.0#9.9+4".parse().unwrap(),
        payload_length: Some(77),
    };
    let rec = AdministrativeRecord::StatusReport(r);
    assert_eq!(AdministrativeRecord::decode(&rec.encode()), Ok(rec));
}

#[test]
fn custody_signal_round_trips() {
    let s = CustodySignal {
        accepted: false,
        reason: CustodyReason::DepletedStorage,
        bundles: vec![
            "dtn://a/#1.2".parse().unwrap(),
            "ipn:3.0#4.5+6".parse().unwrap(),
        ],
    };
    let rec = AdministrativeRecord::CustodySignal(s);
    let bytes = rec.encode();
    assert_eq!(&bytes[..3], &[0x82, 0x04, 0x83]);
    assert_eq!(AdministrativeRecord::decode(&bytes), Ok(rec));
}

#[test]
fn reason_codes_map_both_ways() {
    for c in 0..=20u64 {
        assert_eq!(ReasonCode::from_code(c).code(), c);
        assert_eq!(CustodyReason::from_code(c).code(), c);
    }
    assert_eq!(ReasonCode::from_code(1), ReasonCode::LifetimeExpired);
    assert_eq!(ReasonCode::from_code(11), ReasonCode::BlockUnsupported);
    assert_eq!(ReasonCode::from_code(17), ReasonCode::Other(17));
}

#[test]
fn bad_records_are_errors() {
    let cases: [(&[u8], &str); 5] = [
        (&[0x82, 0x01], "bad_cbor"),
        (&[0x82, 0x09, 0x80], "unknown_record_type"),
        (&[0x81, 0x01], "malformed_record"),
        (
            &[0x82, 0x01, 0x84, 0x80, 0x00, 0x00, 0x00],
            "malformed_record",
        ),
        (
            &[
                0x82, 0x04, 0x83, 0xf5, 0x00, 0x81, 0x82, 0x82, 0x07, 0x00, 0x82, 0x00, 0x00,
            ],
            "bad_eid",
        ),
    ];
    for (bytes, kind) in cases {
        let e = AdministrativeRecord::decode(bytes).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
    }
}

#[test]
fn report_sent_only_when_requested() {
    let me: Eid = "dtn://me/".parse().unwrap();
    let go = |b: &Bundle, k| {
        status_report_bundle(&me, b, k, ReasonCode::NoInformation, DtnTime(9), 1, 500)
    };
    assert!(go(&subject(0), StatusKind::Received).is_none());
    assert!(go(&subject(BundleFlags::REPORT_DELIVERY), StatusKind::Received).is_none());
    let mut anon = subject(BundleFlags::REPORT_RECEPTION);
    anon.primary.report_to = Eid::DtnNone;
    assert!(go(&anon, StatusKind::Received).is_none());
    let admin = subject(BundleFlags::REPORT_RECEPTION | BundleFlags::ADMIN_RECORD);
    assert!(go(&admin, StatusKind::Received).is_none());

    let flags = BundleFlags::REPORT_DELETION | BundleFlags::STATUS_TIME_REQUESTED;
    let r = status_report_bundle(
        &me,
        &subject(flags),
        StatusKind::Deleted,
        ReasonCode::LifetimeExpired,
        DtnTime(9),
        1,
        500,
    )
    .unwrap();
    assert!(r.is_admin_record());
    assert_eq!(r.primary.destination.to_string(), "dtn://watcher/");
    assert_eq!(r.primary.source, me);
    let r = decode(&encode(&r), &DecodeLimits::default()).unwrap();
    let AdministrativeRecord::StatusReport(rep) =
        AdministrativeRecord::decode(r.payload().unwrap()).unwrap()
    else {
        panic!("not a status report");
    };
    assert_eq!(rep.deleted, StatusAssertion::At(DtnTime(9)));
    assert_eq!(rep.received, StatusAssertion::No);
    assert_eq!(rep.reason, ReasonCode::LifetimeExpired);
    assert_eq!(rep.subject, subject(0).id());

    let r = go(
        &subject(BundleFlags::REPORT_FORWARDING),
        StatusKind::Forwarded,
    )
    .unwrap();
    let AdministrativeRecord::StatusReport(rep) =
        AdministrativeRecord::decode(r.payload().unwrap()).unwrap()
    else {
        panic!("not a status report");
    };
    assert_eq!(rep.forwarded, StatusAssertion::Yes);
}

#[test]
fn fuzz_seed_corpus_decodes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/admin_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let rec = AdministrativeRecord::decode(&bytes).unwrap();
        assert_eq!(rec.encode(), bytes);
        n += 1;
    }
    assert!(n >= 2);
}
