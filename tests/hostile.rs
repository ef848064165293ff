//! Hostile input over a real QUIC contact: random bytes, a wrong CRC, a chunk
//! that does not match its CID and an oversize stream are refused and
//! counted, and the node keeps serving (a good bundle sent afterwards on the
//! same contact is accepted with a custody signal and delivered).

mod common;

use bytes::Bytes;
use spore::bundle::admin::{AdministrativeRecord, CustodyReason};
use spore::bundle::blocks::CustodyBlock;
use spore::bundle::codec;
use spore::bundle::{Bundle, CreationTimestamp, Eid};
use spore::cla::identity::Identity;
use spore::cla::quic::{ClaConfig, QuicCla};
use spore::content::chunk_cid;
use spore::harness::{NodeProcess, wait_for};
use spore::node::proto::ControlMessage;
use std::time::Duration;

fn bundle(seq: u64, dest: &str, payload: &'static [u8]) -> Bundle {
    let src: Eid = "dtn://mallory/".parse().unwrap();
    let ts = CreationTimestamp {
        time: spore::node::dtn_now(),
        sequence: seq,
    };
    let mut b = Bundle::new(
        src.clone(),
        dest.parse().unwrap(),
        ts,
        3_600_000,
        Bytes::from_static(payload),
    );
    b.set_custody(&CustodyBlock {
        custodian: src,
        transmission: None,
    });
    b
}

#[test]
fn garbage_is_refused_and_counted_while_the_node_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&common::exe(), &tmp.path().join("c"), "c", &[]).unwrap();
    let addr = node.quic_addr();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let good = bundle(4, "dtn://c/app", b"a good bundle after the bad ones");
    let good_id = good.id();
    let good_key = good_id.clone();
    let (refusal, signal) = rt.block_on(async move {
        let id = Identity::generate().unwrap();
        // A client whose own limit is larger than the node's, so that the
        // oversize stream below really reaches the node and is refused there.
        let client_cfg = ClaConfig {
            max_bundle_bytes: 64 << 20,
            ..ClaConfig::default()
        };
        let cla = QuicCla::bind(
            "127.0.0.1:0".parse().unwrap(),
            &id,
            "dtn://mallory/",
            client_cfg,
        )
        .unwrap();
        let c = cla.connect(addr).await.unwrap();
        c.send_control(&ControlMessage::Summary {
            held: vec![],
            from_you: vec![],
            from_you_transmissions: vec![],
            advert: Default::default(),
        })
        .await
        .unwrap();
        // 1. random bytes
        c.send_bundle(Bytes::from(vec![0x5a; 4000])).await.unwrap();
        // 2. a wrong CRC: flip one payload byte of a CRC-32C protected bundle
        let mut bytes = codec::encode(&bundle(2, "dtn://c/app", b"payload with a crc"));
        let at = bytes.len() - 12;
        bytes[at] ^= 0xff;
        c.send_bundle(Bytes::from(bytes)).await.unwrap();
        // 3. a chunk whose bytes do not hash to its CID
        let mut chunk = bundle(3, "dtn://c/files", b"not the bytes the CID names");
        chunk.set_content_cid(&chunk_cid(b"other bytes").to_bytes());
        c.send_bundle(Bytes::from(codec::encode(&chunk)))
            .await
            .unwrap();
        // 4. an oversize stream: the node stops reading at its 8 MiB limit
        // and counts it (asserted below); the contact survives. The sender
        // may see an error or, if QUIC acknowledged every byte before the
        // node's reader hit the limit, success: only custody signals
        // acknowledge bundles, so both are fine here.
        let _ = c.send_bundle(Bytes::from(vec![0u8; 9 << 20])).await;
        // 5. a good bundle: custody accepted
        c.send_bundle(Bytes::from(codec::encode(&good)))
            .await
            .unwrap();
        let mut signals = Vec::new();
        loop {
            let m: ControlMessage = tokio::time::timeout(Duration::from_secs(20), c.recv_control())
                .await
                .unwrap()
                .unwrap();
            if let ControlMessage::Custody { record } = m {
                match AdministrativeRecord::decode(&record).unwrap() {
                    AdministrativeRecord::CustodySignal(s) => signals.push(s),
                    other => panic!("unexpected record {other:?}"),
                }
            }
            if signals.iter().any(|s| s.bundles.contains(&good_key)) {
                let good = signals.pop().unwrap();
                return (signals, good);
            }
        }
    });
    // The CID mismatch was identifiable, so it got a refusal with a reason;
    // the undecodable ones got nothing (there is no bundle ID to refuse).
    assert_eq!(refusal.len(), 1, "{refusal:?}");
    assert!(!refusal[0].accepted);
    assert_eq!(refusal[0].reason, CustodyReason::Other(8));
    assert!(signal.accepted);
    assert_eq!(signal.reason, CustodyReason::Accepted);
    assert_eq!(signal.bundles, vec![good_id.clone()]);
    let s = wait_for("refusals to be counted", Duration::from_secs(10), || {
        let s = node.status(None)?;
        Ok((common::counter(&s, "refused_cid_mismatch") == 1).then_some(s))
    })
    .unwrap();
    assert_eq!(
        common::counter(&s, "refused_bad_crc"),
        1,
        "{}",
        s["counters"]
    );
    let refused: u64 = s["counters"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("refused_"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        common::counter(&s, "refused_stream_too_large"),
        1,
        "the oversize stream is counted: {}",
        s["counters"]
    );
    assert_eq!(
        refused, 4,
        "random bytes, bad CRC, CID mismatch, oversize stream: {}",
        s["counters"]
    );
    let delivered = node.status(Some(&good_id.to_string())).unwrap();
    assert_eq!(delivered["bundles"][0]["state"], "delivered");
}
