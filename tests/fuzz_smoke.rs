//! CI-side stand-in for the cargo-fuzz targets in `fuzz/` (which need a
//! nightly toolchain): every decoder that takes bytes from a peer or the
//! disk is fed (a) random bytes and (b) mutated seeds read at test time
//! from `fuzz/corpus/<target>/`, and must not panic. Whatever a decoder
//! accepts must round-trip, exactly as the fuzz targets check.
//!
//! The seed files themselves are written by the ignored test
//! `write_seed_corpus` from real values:
//! `cargo test --test fuzz_smoke -- --ignored write_seed_corpus`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use spore::bundle::admin::AdministrativeRecord;
use spore::bundle::codec::{
    DecodeLimits, decode, decode_shared, encode, encode_parts, payload_data_span,
};
use spore::bundle::{BundleId, Eid};
use spore::content::{Manifest, chunk_cid};
use spore::node::proto::ControlMessage;

/// Chunk limit for manifest decoding, as in `fuzz/fuzz_targets/manifest_decode.rs`.
const MAX_MANIFEST_ENTRIES: usize = 4096;
/// Proptest cases per decoder and input kind; keeps the whole file well under 10 s.
const CASES: u32 = 2000;
/// Longest random input, in bytes.
const MAX_RANDOM_LEN: usize = 512;

/// One decoder under test: its fuzz target (= corpus directory) name and a
/// check that decodes, round-trips what it accepts, and panics on a bug.
struct Target {
    name: &'static str,
    check: fn(&[u8]),
}

const TARGETS: [Target; 4] = [
    Target {
        name: "bundle_decode",
        check: check_bundle,
    },
    Target {
        name: "admin_decode",
        check: check_admin,
    },
    Target {
        name: "manifest_decode",
        check: check_manifest,
    },
    Target {
        name: "control_message",
        check: check_control,
    },
];

fn check_bundle(data: &[u8]) {
    let limits = DecodeLimits::default();
    if let Ok(b) = decode(data, &limits) {
        let again = decode(&encode(&b), &limits).expect("our own encoding must decode");
        assert_eq!(again, b);
        assert_eq!(
            encode_parts(&b).to_bytes(),
            encode(&b),
            "pieces join to the encoding"
        );
    }
    // The payload span found from the head alone (what a receiver hashes
    // while the bundle arrives) is where the decoder finds the payload.
    let span = payload_data_span(data);
    let shared = Bytes::copy_from_slice(data);
    if let (Some(span), Ok(b)) = (span, decode_shared(&shared, &limits)) {
        let p = b.payload().expect("a decoded bundle has a payload");
        let at = (p.as_ptr() as usize).wrapping_sub(shared.as_ptr() as usize);
        if !p.is_empty() && at < shared.len() {
            assert_eq!(
                span,
                (at, p.len()),
                "span from the head against the decoder"
            );
        }
    }
}

fn check_admin(data: &[u8]) {
    if let Ok(r) = AdministrativeRecord::decode(data) {
        let again = AdministrativeRecord::decode(&r.encode()).expect("own encoding must decode");
        assert_eq!(again, r);
    }
}

fn check_manifest(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data, MAX_MANIFEST_ENTRIES) {
        assert_eq!(m.encode(), data, "accepted a non-canonical encoding");
    }
}

fn check_control(data: &[u8]) {
    if let Ok(msg) = serde_cbor::from_slice::<ControlMessage>(data) {
        let bytes = serde_cbor::to_vec(&msg).expect("a decoded message must encode");
        let again: ControlMessage = serde_cbor::from_slice(&bytes).expect("own encoding decodes");
        assert_eq!(again, msg);
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The seed files of `target`, sorted by name; panics if there are none, so
/// a lost corpus fails the test instead of silently weakening it.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let out: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("seed"))
        .collect();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// One byte-level edit, applied at `pos % len` (so every edit is valid).
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace one byte.
    Set(usize, u8),
    /// XOR one byte with a single bit.
    Flip(usize, u8),
    /// Insert a byte.
    Insert(usize, u8),
    /// Remove up to `n` bytes.
    Remove(usize, usize),
    /// Cut the input.
    Truncate(usize),
    /// Duplicate a short range in place (repeats a CBOR item or header).
    Repeat(usize, usize),
}

/// Bytes that matter to CBOR heads: length escapes, indefinite lengths,
/// break, tags, maxima.
const INTERESTING: [u8; 10] = [0x00, 0x17, 0x18, 0x1b, 0x1f, 0x5f, 0x9f, 0xbf, 0xd8, 0xff];

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(&INTERESTING[..])];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (any::<usize>(), 0u8..8).prop_map(|(p, bit)| Mutation::Flip(p, 1 << bit)),
        (any::<usize>(), byte).prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1usize..9).prop_map(|(p, n)| Mutation::Remove(p, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..17).prop_map(|(p, n)| Mutation::Repeat(p, n)),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        if let Mutation::Insert(_, b) = m {
            data.push(*b);
        }
        return;
    }
    let len = data.len();
    match *m {
        Mutation::Set(p, b) => data[p % len] = b,
        Mutation::Flip(p, mask) => data[p % len] ^= mask,
        Mutation::Insert(p, b) => data.insert(p % (len + 1), b),
        Mutation::Remove(p, n) => {
            let at = p % len;
            data.drain(at..(at + n).min(len));
        }
        Mutation::Truncate(p) => data.truncate(p % len),
        Mutation::Repeat(p, n) => {
            let at = p % len;
            let part = data[at..(at + n).min(len)].to_vec();
            data.splice(at..at, part);
        }
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn decoders_survive_random_bytes() {
    for t in &TARGETS {
        let strategy = proptest::collection::vec(any::<u8>(), 0..MAX_RANDOM_LEN);
        runner()
            .run(&strategy, |data| {
                (t.check)(&data);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
    }
}

#[test]
fn decoders_survive_mutated_seeds() {
    for t in &TARGETS {
        let seeds = seeds(t.name);
        // Every seed as committed must pass the check (and most decode).
        for s in &seeds {
            (t.check)(s);
        }
        let strategy = (
            proptest::sample::select(seeds),
            proptest::collection::vec(mutation(), 1..6),
        );
        runner()
            .run(&strategy, |(mut data, edits)| {
                for m in &edits {
                    apply(&mut data, m);
                }
                (t.check)(&data);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
    }
}

/// The committed seeds are real encodings: at least one seed per target is
/// accepted by its decoder (a corpus of garbage would fuzz only the error
/// paths).
#[test]
fn every_corpus_has_an_accepted_seed() {
    let accepts: [(&str, Accepts); 4] = [
        ("bundle_decode", |d| {
            decode(d, &DecodeLimits::default()).is_ok()
        }),
        ("admin_decode", |d| AdministrativeRecord::decode(d).is_ok()),
        ("manifest_decode", |d| {
            Manifest::decode(d, MAX_MANIFEST_ENTRIES).is_ok()
        }),
        ("control_message", |d| {
            serde_cbor::from_slice::<ControlMessage>(d).is_ok()
        }),
    ];
    for (name, ok) in accepts {
        let n = seeds(name).iter().filter(|s| ok(s)).count();
        assert!(n > 0, "{name}: no seed decodes");
    }
}

/// Whether a decoder accepts an input.
type Accepts = fn(&[u8]) -> bool;

fn bundle_id(text: &str) -> BundleId {
    text.parse().expect("valid bundle ID")
}

fn manifest(name: &str, size: u64, chunk_size: u32, mtime_ms: Option<u64>) -> Manifest {
    let n = size.div_ceil(u64::from(chunk_size));
    Manifest {
        version: spore::content::MANIFEST_VERSION,
        name: name.to_string(),
        size,
        chunk_size,
        chunks: (0..n).map(|i| chunk_cid(&i.to_be_bytes())).collect(),
        mtime_ms,
    }
}

/// Writes the seeds for `manifest_decode` and `control_message` from real
/// values (the bundle and admin seeds predate this file).
#[test]
#[ignore = "regenerates fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    let manifests = [
        ("empty", manifest("empty.txt", 0, 1024, None)),
        (
            "one_chunk_mtime",
            manifest("a.bin", 1000, 1024, Some(1_700_000_000_000)),
        ),
        ("three_chunks", manifest("photo 1.jpg", 2500, 1024, None)),
        (
            "big_chunks_utf8",
            manifest("résumé.pdf", 9_000_000, 4 << 20, Some(0)),
        ),
    ];
    for (name, m) in manifests {
        m.validate(MAX_MANIFEST_ENTRIES)
            .expect("seed manifest valid");
        write("manifest_decode", name, &m.encode());
    }
    let custody = seeds("admin_decode")
        .into_iter()
        .find(|s| matches!(AdministrativeRecord::decode(s), Ok(r) if r.encode() == *s))
        .expect("an admin seed");
    let ipn = format!(
        "{}#0.7+4096",
        Eid::Ipn {
            node: 5,
            service: 0
        }
    );
    let messages = [
        (
            "summary_empty",
            ControlMessage::Summary {
                held: vec![],
                from_you: vec![],
                from_you_transmissions: vec![],
                advert: Default::default(),
            },
        ),
        (
            "summary_ids",
            ControlMessage::Summary {
                held: vec![bundle_id("dtn://a/#846000000000.3"), bundle_id(&ipn)],
                from_you: vec![bundle_id("dtn://a/#846000000000.3")],
                from_you_transmissions: vec![Some(867_000_000_000_000)],
                advert: spore::routing::Advert {
                    delay_ms: vec![("dtn://c/".parse().unwrap(), 1500)],
                    predictability: vec![("dtn://c/".parse().unwrap(), 0.75)],
                },
            },
        ),
        ("custody", ControlMessage::Custody { record: custody }),
    ];
    for (name, msg) in messages {
        write(
            "control_message",
            name,
            &serde_cbor::to_vec(&msg).expect("encode"),
        );
    }
}
