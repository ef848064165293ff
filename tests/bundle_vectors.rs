//! Checks every vector of `spec/vectors/bundles.json`: valid ones decode to
//! the expected fields and re-encode byte for byte; invalid ones fail with
//! the expected `DecodeError::kind()`.

use serde_json::Value;
use spore::bundle::codec::{DecodeLimits, decode, encode};
use spore::bundle::inspect::to_json;

const FIELDS: [&str; 10] = [
    "source",
    "destination",
    "report_to",
    "flags",
    "crc_type",
    "creation_time_ms",
    "sequence",
    "lifetime_ms",
    "fragment_offset",
    "total_adu_length",
];

#[test]
fn all_vectors_hold() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/vectors/bundles.json");
    let vectors: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(vectors.len() >= 8);
    let (mut valid, mut invalid) = (0, 0);
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let got = decode(&bytes, &DecodeLimits::default());
        if v["valid"].as_bool().unwrap() {
            valid += 1;
            let b = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            let j = to_json(&b);
            let exp = &v["expect"];
            for f in FIELDS {
                assert_eq!(j[f], exp[f], "{name}: field {f}");
            }
            let types: Vec<Value> = j["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["type"].clone())
                .collect();
            assert_eq!(
                Value::from(types),
                exp["block_types"],
                "{name}: block types"
            );
            assert_eq!(
                hex::encode(b.payload().unwrap()),
                exp["payload_hex"],
                "{name}: payload"
            );
            assert_eq!(encode(&b), bytes, "{name}: re-encoding differs");
        } else {
            invalid += 1;
            let e = got
                .err()
                .unwrap_or_else(|| panic!("{name}: decoded but should not"));
            assert_eq!(e.kind(), v["error_kind"], "{name}: {e}");
        }
    }
    assert!(valid >= 3 && invalid >= 5);
}
