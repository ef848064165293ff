//! Sans-IO tests of the content check on receipt: a chunk that does not
//! match its CID is refused whoever checks it (the agent, or the receiving
//! task before it), and a payload digest computed while the bundle arrived
//! ([`crate::content::PayloadHasher`]) counts only for the exact span of
//! the buffer it covers.

use super::tests::{T0, agent, eid};
use super::*;
use crate::bundle::codec;
use crate::bundle::{Bundle, CreationTimestamp};
use crate::content::{PayloadDigest, PayloadHasher, chunk_cid};

/// An encoded chunk bundle for `dtn://c/files` carrying `payload` and
/// naming the CID of `named` in its content block.
fn chunk_bundle(payload: &'static [u8], named: &[u8]) -> Bytes {
    let ts = CreationTimestamp {
        time: T0,
        sequence: 1,
    };
    let mut b = Bundle::new(
        eid("dtn://a/"),
        eid("dtn://c/files"),
        ts,
        60_000,
        Bytes::from_static(payload),
    );
    b.set_content_cid(&chunk_cid(named).to_bytes());
    Bytes::from(codec::encode(&b))
}

/// The digest a receiving task would compute for `bytes`.
fn hashed(bytes: &[u8]) -> PayloadDigest {
    let mut h = PayloadHasher::new();
    h.update(bytes);
    h.finish().expect("the whole bundle was fed")
}

/// Hands `item` to a fresh receiver; returns (mismatches counted, records held).
fn receive(item: Received) -> (Option<u64>, u64) {
    let mut c = agent("c");
    c.handle(T0, Event::Received(vec![item])).unwrap();
    let counters: BTreeMap<_, _> = c.store().counters().unwrap().into_iter().collect();
    let records = c.store().stats().unwrap().records;
    (counters.get("refused_cid_mismatch").copied(), records)
}

fn prechecked(bytes: Bytes, digest: Option<&PayloadDigest>) -> Received {
    Received::prechecked(
        eid("dtn://a/"),
        bytes,
        digest,
        &codec::DecodeLimits::default(),
    )
}

#[test]
fn a_chunk_that_does_not_match_its_cid_is_refused() {
    let bad = chunk_bundle(b"evil", b"good");
    let own_digest = hashed(&bad);
    for (how, item) in [
        ("by the agent", Received::new(eid("dtn://a/"), bad.clone())),
        ("prechecked", prechecked(bad.clone(), None)),
        (
            "prechecked with its digest",
            prechecked(bad.clone(), Some(&own_digest)),
        ),
    ] {
        assert_eq!(receive(item), (Some(1), 0), "{how}");
    }
}

#[test]
fn a_matching_chunk_is_accepted_with_the_digest_of_its_arrival() {
    let good = chunk_bundle(b"good", b"good");
    let d = hashed(&good);
    assert_eq!(receive(prechecked(good, Some(&d))), (None, 1));
}

#[test]
fn a_digest_counts_only_for_the_span_of_the_buffer_it_covers() {
    // A bad chunk paired with digests that would make it pass if they were
    // believed: the right hash for its CID, but not of its payload span.
    let bad = chunk_bundle(b"evil", b"good");
    let good = chunk_bundle(b"good", b"good");
    let claim = hashed(&good).sha256;
    let span = hashed(&bad);
    let shifted = PayloadDigest {
        offset: span.offset + 1,
        sha256: claim,
        ..span.clone()
    };
    let shorter = PayloadDigest {
        len: span.len - 1,
        sha256: claim,
        ..span.clone()
    };
    for (how, d) in [("shifted", shifted), ("shorter", shorter)] {
        assert_eq!(
            receive(prechecked(bad.clone(), Some(&d))),
            (Some(1), 0),
            "{how}"
        );
    }
}
