//! Manifest codec: the worked example of spec/manifest.md, round trips,
//! refusals, and decoding of arbitrary bytes.

use proptest::prelude::*;
use spore::content::{
    Chunker, ContentError, DEFAULT_MAX_MANIFEST_ENTRIES, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, Manifest,
    ManifestBuilder, chunk_cid, cid_from_str,
};

// The worked example of spec/manifest.md, derived independently with a
// python3 script (hashlib.sha256, base64.b32encode and a hand-written CBOR
// head encoder, keys sorted with `sorted(key=lambda k: (len(k), k))`):
// 2500 bytes `i % 251`, chunk size 1024, name "example.bin",
// mtime_ms 1700000000000.
const EXAMPLE_CHUNKS: [&str; 3] = [
    "bafkreiblzyn2mkdsazsl4s473v32vydhrzpq6pyc7rx7mqpmq6ijj5veaq",
    "bafkreicq35mk44h6idz32aru4gvin6k57k5b4emnjw272s3ifsrlmeae2u",
    "bafkreids7bfbldtysqyyt45oziwbuxb3aph4kkeh6oidlrp7b7l5tyyoba",
];
const EXAMPLE_HEX: &str = "a6646e616d656b6578616d706c652e62696e6473697a651909c4666368756e6b7383\
d82a582500015512202bce1ba628720664be4b9fdd77aae0678e5f0f3f02fc6ff641ec879094f6a404\
d82a5825000155122050df58ae70fe40f3bd0234e1aa86f95dfaba1e118d4db5fd4b682ca2b61004d5\
d82a5825000155122072f84a158e78943189f3aeca2c1a5c3b03cfc52887f39035c5ff0fd7d9e30e08\
6776657273696f6e01686d74696d655f6d731b0000018bcfe568006a6368756e6b5f73697a65190400";
const EXAMPLE_CID: &str = "bafyreig5awcnutv6cdy7iziggd6nkne5aogqqokvgblpzdst2lf6nghfta";

fn example_manifest() -> Manifest {
    let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let mut builder = ManifestBuilder::new("example.bin", 1024).mtime_ms(1_700_000_000_000);
    for chunk in Chunker::new(&data[..], 1024).unwrap() {
        builder.push(&chunk.unwrap());
    }
    builder.finish()
}

#[test]
fn worked_example_matches_independent_encoding() {
    let m = example_manifest();
    let chunks: Vec<String> = m.chunks.iter().map(|c| c.to_string()).collect();
    assert_eq!(chunks, EXAMPLE_CHUNKS);
    assert_eq!(hex::encode(m.encode()), EXAMPLE_HEX);
    assert_eq!(m.cid().to_string(), EXAMPLE_CID);
    let decoded = Manifest::decode(&hex::decode(EXAMPLE_HEX).unwrap(), 3).unwrap();
    assert_eq!(decoded, m);
}

fn manifest(size: u64, chunk_size: u32, n: usize) -> Manifest {
    Manifest {
        version: 1,
        name: "f.bin".into(),
        size,
        chunk_size,
        chunks: (0..n).map(|i| chunk_cid(&i.to_le_bytes())).collect(),
        mtime_ms: None,
    }
}

fn refusal(m: &Manifest, max_entries: usize) -> &'static str {
    Manifest::decode(&m.encode(), max_entries)
        .unwrap_err()
        .kind()
}

#[test]
fn size_inconsistent_manifests_are_refused() {
    assert!(Manifest::decode(&manifest(0, 1024, 0).encode(), 10).is_ok());
    assert!(Manifest::decode(&manifest(1025, 1024, 2).encode(), 10).is_ok());
    assert!(Manifest::decode(&manifest(2048, 1024, 2).encode(), 10).is_ok());
    for (size, n) in [(1, 0), (0, 1), (1024, 2), (2049, 2), (u64::MAX, 3)] {
        assert_eq!(
            refusal(&manifest(size, 1024, n), 10),
            "inconsistent_size",
            "{size} {n}"
        );
    }
}

#[test]
fn bad_fields_are_refused() {
    let mut m = manifest(10, 1024, 1);
    for bad in ["../x", "", "a/b", "..", "a\0b"] {
        m.name = bad.into();
        assert_eq!(refusal(&m, 10), "invalid_file_name", "{bad:?}");
    }
    assert_eq!(refusal(&manifest(3000, 1024, 3), 2), "too_many_chunks");
    assert_eq!(
        refusal(&manifest(10, MIN_CHUNK_SIZE - 1, 1), 10),
        "invalid_chunk_size"
    );
    assert_eq!(
        refusal(&manifest(10, MAX_CHUNK_SIZE + 1, 1), 10),
        "invalid_chunk_size"
    );
    let mut v2 = manifest(10, 1024, 1);
    v2.version = 2;
    assert_eq!(refusal(&v2, 10), "unsupported_manifest_version");
    let mut dag = manifest(10, 1024, 1);
    dag.chunks[0] = dag.cid(); // a dag-cbor CID where a raw one belongs
    assert_eq!(refusal(&dag, 10), "unsupported_codec");
}

#[test]
fn non_canonical_layouts_are_refused() {
    let good = manifest(10, 1024, 1).encode();
    let mut trailing = good.clone();
    trailing.push(0);
    let mut more_entries = good.clone();
    more_entries[0] = 0xa6; // announces 6 entries, holds 5
    let mut indefinite = good.clone();
    indefinite[0] = 0xbf;
    for bad in [
        trailing,
        more_entries,
        indefinite,
        good[..good.len() - 1].to_vec(),
    ] {
        let err = Manifest::decode(&bad, 10).unwrap_err();
        assert_eq!(err.kind(), "malformed_manifest", "{err}");
    }
    // Swapping "name" and "size" (both 4 bytes) breaks the key order.
    let text = hex::encode(&good);
    let swapped = text
        .replacen("646e616d65", "XX", 1)
        .replacen("6473697a65", "646e616d65", 1);
    let swapped = hex::decode(swapped.replacen("XX", "6473697a65", 1)).unwrap();
    assert!(matches!(
        Manifest::decode(&swapped, 10),
        Err(ContentError::MalformedManifest { .. })
    ));
}

#[test]
fn huge_announced_array_is_refused_without_allocating() {
    // {"chunks": array head announcing 2^64-1 entries} and nothing else.
    let mut bytes = vec![0xa1, 0x66];
    bytes.extend_from_slice(b"chunks");
    bytes.extend_from_slice(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let err = Manifest::decode(&bytes, DEFAULT_MAX_MANIFEST_ENTRIES).unwrap_err();
    assert_eq!(err.kind(), "too_many_chunks");
    // Within the limit but far beyond the input: a clean truncation error.
    let mut bytes = vec![0xa1, 0x66];
    bytes.extend_from_slice(b"chunks");
    bytes.extend_from_slice(&[0x1a + 0x80, 0x00, 0x0f, 0xff, 0xff]);
    let err = Manifest::decode(&bytes, DEFAULT_MAX_MANIFEST_ENTRIES).unwrap_err();
    assert_eq!(err.kind(), "malformed_manifest");
}

fn arb_manifest() -> impl Strategy<Value = Manifest> {
    (
        MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE,
        0usize..40,
        "[a-zA-Z0-9 ._ü-]{1,40}",
        proptest::option::of(any::<u64>()),
        any::<u64>(),
    )
        .prop_filter("not . or ..", |(_, _, name, _, _)| {
            name != "." && name != ".."
        })
        .prop_map(|(chunk_size, n, name, mtime_ms, tail)| {
            let c = u64::from(chunk_size);
            let size = if n == 0 {
                0
            } else {
                (n as u64 - 1) * c + 1 + tail % c
            };
            Manifest {
                version: 1,
                name,
                size,
                chunk_size,
                chunks: (0..n)
                    .map(|i| chunk_cid(&(i as u64 ^ tail).to_le_bytes()))
                    .collect(),
                mtime_ms,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(m in arb_manifest()) {
        let bytes = m.encode();
        let back = Manifest::decode(&bytes, 64).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.encode(), bytes.clone());
        prop_assert_eq!(back.cid(), m.cid());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::decode(&bytes, 64);
    }

    #[test]
    fn mutated_manifests_never_panic(m in arb_manifest(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = m.encode();
        let i = at % bytes.len();
        bytes[i] = byte;
        if let Ok(back) = Manifest::decode(&bytes, 64) {
            // Whatever is accepted is canonical.
            prop_assert_eq!(back.encode(), bytes.clone());
        }
        bytes.truncate(i);
        prop_assert!(Manifest::decode(&bytes, 64).is_err());
    }
}

#[test]
fn cid_text_round_trips_for_the_example() {
    for text in EXAMPLE_CHUNKS {
        assert_eq!(cid_from_str(text).unwrap().to_string(), text);
    }
}

/// The same manifest as the worked example, encoded by a generic CBOR
/// library: python3 `cbor2.dumps(m, canonical=True)` produced exactly
/// EXAMPLE_HEX, and plain `cbor2.dumps(m)` (keys in insertion order
/// version, chunk_size, name, size, mtime_ms, chunks) produced this.
const EXAMPLE_UNSORTED_HEX: &str = "a66776657273696f6e016a6368756e6b5f73697a65190400646e616d65\
6b6578616d706c652e62696e6473697a651909c4686d74696d655f6d731b0000018bcfe56800666368756e6b7383\
d82a582500015512202bce1ba628720664be4b9fdd77aae0678e5f0f3f02fc6ff641ec879094f6a404\
d82a5825000155122050df58ae70fe40f3bd0234e1aa86f95dfaba1e118d4db5fd4b682ca2b61004d5\
d82a5825000155122072f84a158e78943189f3aeca2c1a5c3b03cfc52887f39035c5ff0fd7d9e30e08";

#[test]
fn generic_encoder_output_unsorted_keys_are_refused() {
    let bytes = hex::decode(EXAMPLE_UNSORTED_HEX).unwrap();
    assert_eq!(bytes.len(), 198);
    let err = Manifest::decode(&bytes, 3).unwrap_err();
    // "version" (7 bytes) then "chunk_size" (10) is fine; "name" (4) at
    // byte 24 comes after a longer key.
    assert!(
        matches!(err, ContentError::MalformedManifest { offset: 24, .. }),
        "{err}"
    );
}
