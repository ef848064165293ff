//! Human and machine views of a bundle, for `spore bundle inspect`.
//!
//! [`to_json`] gives one JSON object per bundle; [`to_text`] prints the
//! same fields one per line. Known extension blocks are decoded; a block
//! whose data does not parse shows its error instead of a value.

use super::admin::AdministrativeRecord;
use super::{Bundle, CanonicalBlock, CrcType, block_type};
use serde_json::{Value, json};

fn crc_name(c: CrcType) -> &'static str {
    match c {
        CrcType::None => "none",
        CrcType::Crc16 => "crc16",
        CrcType::Crc32c => "crc32c",
    }
}

/// The registry name of a block type (RFC 9171 §9.1, spore private types).
pub fn block_type_name(ty: u64) -> &'static str {
    match ty {
        block_type::PAYLOAD => "payload",
        block_type::PREVIOUS_NODE => "previous_node",
        block_type::BUNDLE_AGE => "bundle_age",
        block_type::HOP_COUNT => "hop_count",
        block_type::CONTENT => "spore_content",
        block_type::CUSTODY => "spore_custody",
        11 => "block_integrity",
        12 => "block_confidentiality",
        _ => "unknown",
    }
}

fn err_json(e: impl std::fmt::Display) -> Value {
    json!({ "error": e.to_string() })
}

fn block_value(b: &Bundle, c: &CanonicalBlock) -> Value {
    let r = match c.block_type {
        block_type::PREVIOUS_NODE => b.previous_node().map(|v| json!(v.map(|e| e.to_string()))),
        block_type::BUNDLE_AGE => b.bundle_age_ms().map(|v| json!(v)),
        block_type::HOP_COUNT => b
            .hop_count()
            .map(|v| v.map_or(Value::Null, |h| json!({"limit": h.limit, "count": h.count}))),
        block_type::CONTENT => b.content_cid().map(|v| json!(v.map(hex::encode))),
        block_type::CUSTODY => b.custody().map(|v| {
            v.map_or(
                Value::Null,
                |c| json!({"custodian": c.custodian.to_string(), "transmission": c.transmission}),
            )
        }),
        block_type::PAYLOAD if b.is_admin_record() => {
            return match AdministrativeRecord::decode(&c.data) {
                Ok(rec) => admin_json(&rec),
                Err(e) => err_json(e),
            };
        }
        _ => return Value::Null,
    };
    r.unwrap_or_else(err_json)
}

fn admin_json(rec: &AdministrativeRecord) -> Value {
    match rec {
        AdministrativeRecord::StatusReport(r) => json!({
            "record": "status_report",
            "received": format!("{:?}", r.received),
            "forwarded": format!("{:?}", r.forwarded),
            "delivered": format!("{:?}", r.delivered),
            "deleted": format!("{:?}", r.deleted),
            "reason": format!("{:?}", r.reason),
            "reason_code": r.reason.code(),
            "subject": r.subject.to_string(),
            "payload_length": r.payload_length,
        }),
        AdministrativeRecord::CustodySignal(s) => json!({
            "record": "custody_signal",
            "accepted": s.accepted,
            "reason": format!("{:?}", s.reason),
            "reason_code": s.reason.code(),
            "bundles": s.bundles.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        }),
    }
}

/// A JSON object describing `b`: `id`, `version`, `flags`, `crc_type`
/// (`"none"|"crc16"|"crc32c"`), `destination`, `source`, `report_to`,
/// `creation_time_ms`, `sequence`, `lifetime_ms`, `fragment_offset`,
/// `total_adu_length` (null unless a fragment) and `blocks`: an array of
/// `{type, type_name, number, flags, crc_type, data_len, value}` where
/// `value` is the decoded content of a known block (EID text, age in ms,
/// `{limit, count}`, CID hex, `{custodian, transmission}` (the number
/// `null` from older nodes), admin record object), `null` for
/// other blocks, or `{"error": ..}` if the data does not parse.
pub fn to_json(b: &Bundle) -> Value {
    let p = &b.primary;
    let blocks: Vec<Value> = b
        .blocks
        .iter()
        .map(|c| {
            json!({
                "type": c.block_type,
                "type_name": block_type_name(c.block_type),
                "number": c.number,
                "flags": c.flags.0,
                "crc_type": crc_name(c.crc_type),
                "data_len": c.data.len(),
                "value": block_value(b, c),
            })
        })
        .collect();
    json!({
        "id": b.id().to_string(),
        "version": p.version,
        "flags": p.flags.0,
        "crc_type": crc_name(p.crc_type),
        "destination": p.destination.to_string(),
        "source": p.source.to_string(),
        "report_to": p.report_to.to_string(),
        "creation_time_ms": p.creation_timestamp.time.0,
        "sequence": p.creation_timestamp.sequence,
        "lifetime_ms": p.lifetime_ms,
        "fragment_offset": p.fragment_offset,
        "total_adu_length": p.total_adu_length,
        "blocks": blocks,
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// The fields of [`to_json`] for humans: one `name: value` line per
/// primary-block field, then one line per block.
pub fn to_text(b: &Bundle) -> String {
    let j = to_json(b);
    let mut out = String::new();
    let keys = [
        "id",
        "version",
        "flags",
        "crc_type",
        "destination",
        "source",
        "report_to",
        "creation_time_ms",
        "sequence",
        "lifetime_ms",
        "fragment_offset",
        "total_adu_length",
    ];
    for k in keys {
        out.push_str(&format!("{k}: {}\n", scalar(&j[k])));
    }
    if let Some(blocks) = j["blocks"].as_array() {
        for c in blocks {
            out.push_str(&format!(
                "block {} type {} ({}) flags {:#x} crc {} data {} bytes value {}\n",
                c["number"],
                c["type"],
                scalar(&c["type_name"]),
                c["flags"].as_u64().unwrap_or(0),
                scalar(&c["crc_type"]),
                c["data_len"],
                scalar(&c["value"]),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::blocks::HopCount;
    use crate::bundle::{CreationTimestamp, DtnTime};
    use bytes::Bytes;

    /// ipn:1.0 → ipn:2.1, created at 7 ms (seq 3), lifetime 1 s, payload "abc".
    fn sample() -> Bundle {
        Bundle::new(
            "ipn:1.0".parse().unwrap(),
            "ipn:2.1".parse().unwrap(),
            CreationTimestamp {
                time: DtnTime(7),
                sequence: 3,
            },
            1000,
            Bytes::from_static(b"abc"),
        )
    }

    #[test]
    fn json_has_every_field_and_decoded_blocks() {
        let mut b = sample();
        b.set_hop_count(HopCount { limit: 9, count: 1 });
        b.set_content_cid(&[0xab, 0xcd]);
        b.upsert_block(200, Bytes::from_static(&[0x01]));
        let j = to_json(&b);
        assert_eq!(j["id"], "ipn:1.0#7.3");
        assert_eq!(j["crc_type"], "crc32c");
        assert_eq!(j["destination"], "ipn:2.1");
        assert_eq!(j["lifetime_ms"], 1000);
        assert_eq!(j["fragment_offset"], Value::Null);
        let blocks = j["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["value"], json!({"limit": 9, "count": 1}));
        assert_eq!(blocks[1]["value"], "abcd");
        assert_eq!(blocks[2]["type_name"], "unknown");
        assert_eq!(blocks[3]["data_len"], 3);
        let t = to_text(&b);
        assert!(t.contains("source: ipn:1.0\n"), "{t}");
        assert!(t.contains("block 1 type 1 (payload)"), "{t}");
        assert_eq!(t.lines().count(), 12 + 4);
    }

    #[test]
    fn the_custody_block_shows_its_custodian_and_transmission() {
        let mut b = sample();
        b.set_custody(&crate::bundle::blocks::CustodyBlock {
            custodian: "dtn://b/".parse().unwrap(),
            transmission: Some(42),
        });
        let j = to_json(&b);
        let custody = &j["blocks"][0];
        assert_eq!(custody["type_name"], "spore_custody");
        assert_eq!(
            custody["value"],
            json!({"custodian": "dtn://b/", "transmission": 42})
        );
    }
}
