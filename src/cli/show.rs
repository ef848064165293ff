//! Human-readable output of `spore status` and `spore peers`.

use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A DTN time (ms since 2000-01-01) as RFC 3339 UTC, e.g. `2026-11-21T13:01:02.345Z`.
fn dtn_time(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => {
            let unix = spore::bundle::DtnTime(ms).to_unix_ms();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix);
            humantime::format_rfc3339_millis(t).to_string()
        }
        None => "-".into(),
    }
}

/// Prints files, then bundles (with history when `detail`).
pub fn status(v: &Value, detail: bool) {
    println!("node {}", s(&v["node_id"]));
    let files = v["files"].as_array().cloned().unwrap_or_default();
    if !files.is_empty() {
        println!("\nFILES");
        for f in &files {
            let counts: Vec<String> = f["chunks"]
                .as_object()
                .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect())
                .unwrap_or_default();
            println!(
                "  {}  {}  {} bytes  {}  -> {}  chunks {}: {}{}",
                s(&f["cid"]),
                s(&f["name"]),
                s(&f["size_bytes"]),
                s(&f["role"]),
                s(&f["destination"]),
                s(&f["chunks_total"]),
                counts.join(", "),
                f["path"]
                    .as_str()
                    .map(|p| format!("  written to {p}"))
                    .unwrap_or_default()
            );
        }
    }
    let bundles = v["bundles"].as_array().cloned().unwrap_or_default();
    println!("\nBUNDLES ({})", bundles.len());
    for b in &bundles {
        println!(
            "  {:<20} {:<10} custodian {:<14} {}  -> {}",
            s(&b["state"]),
            s(&b["kind"]),
            s(&b["custodian"]),
            s(&b["id"]),
            s(&b["destination"])
        );
        if detail {
            for h in b["history"].as_array().into_iter().flatten() {
                println!("      {}  {}", dtn_time(&h["at_ms"]), s(&h["event"]));
            }
        }
    }
    if let Some(c) = v["counters"].as_object() {
        if !c.is_empty() {
            let parts: Vec<String> = c.iter().map(|(k, n)| format!("{k}={n}")).collect();
            println!("\nCOUNTERS {}", parts.join(" "));
        }
    }
}

/// Prints the peer table.
pub fn peers(v: &Value) {
    if let Some(peers) = v["peers"].as_array() {
        println!(
            "{:<24} {:<22} {:<5} {:>9} {:>8} {:>6} {:>6}",
            "NODE", "ADDRESS", "UP", "SRTT_MS", "CONTACTS", "SENT", "RECV"
        );
        for p in peers {
            let srtt = p["srtt_ms"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}"));
            println!(
                "{:<24} {:<22} {:<5} {:>9} {:>8} {:>6} {:>6}",
                s(&p["node_id"]),
                s(&p["addr"]),
                if p["connected"].as_bool() == Some(true) {
                    "up"
                } else {
                    "down"
                },
                srtt,
                s(&p["contacts"]),
                s(&p["bundles_sent"]),
                s(&p["bundles_received"])
            );
        }
    }
    if let Some(d) = v["dial"].as_array() {
        let list: Vec<String> = d.iter().map(s).collect();
        println!(
            "dialing: {}",
            if list.is_empty() {
                "-".into()
            } else {
                list.join(", ")
            }
        );
    }
    if let Some(r) = v.get("removed") {
        println!("removed: {r}");
    }
}
