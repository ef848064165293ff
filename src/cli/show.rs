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

/// When a peer was last in contact: `now` while connected, else the later
/// of the last contact's start and end (RFC 3339 UTC).
fn last_seen(p: &Value) -> String {
    if p["connected"].as_bool() == Some(true) {
        return "now".into();
    }
    let t = [&p["last_seen_ms"], &p["last_contact_ms"]]
        .iter()
        .filter_map(|v| v.as_u64())
        .max();
    dtn_time(&t.map_or(Value::Null, Value::from))
}

/// Prints peers heard of by discovery (beacons, peer lists), whether or not
/// they were contacted since.
fn heard(h: &Value) {
    let Some(m) = h.as_object() else { return };
    if m.is_empty() {
        return;
    }
    println!("heard of (discovery):");
    for (node, e) in m {
        println!(
            "  {:<20} {:<21} via {:<8} last seen {}",
            node,
            s(&e["addr"]),
            s(&e["via"]),
            dtn_time(&e["last_seen_ms"])
        );
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

/// A number with `dec` decimals, or `-`.
fn num(v: &Value, dec: usize) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.dec$}"))
}

/// Prints the peer table: link state, RTT estimates (ms), contact history
/// (s) and traffic.
pub fn peers(v: &Value) {
    if let Some(peers) = v["peers"].as_array() {
        println!(
            "{:<20} {:<21} {:<4} {:>8} {:>8} {:>4} {:>8} {:>8} {:>8} {:>5} {:>5} {:>10} {:>10} {:<24}",
            "NODE",
            "ADDRESS",
            "UP",
            "SRTT_MS",
            "RTTVAR",
            "CONT",
            "INTER_S",
            "MEAN_S",
            "WAIT_S",
            "SENT",
            "RECV",
            "BYTES_OUT",
            "BYTES_IN",
            "LAST_SEEN"
        );
        for p in peers {
            println!(
                "{:<20} {:<21} {:<4} {:>8} {:>8} {:>4} {:>8} {:>8} {:>8} {:>5} {:>5} {:>10} {:>10} {:<24}",
                s(&p["node_id"]),
                s(&p["addr"]),
                if p["connected"].as_bool() == Some(true) {
                    "up"
                } else {
                    "down"
                },
                num(&p["srtt_ms"], 2),
                num(&p["rttvar_ms"], 2),
                s(&p["contacts"]),
                num(&p["mean_inter_contact_s"], 1),
                num(&p["mean_contact_s"], 1),
                num(&p["expected_wait_s"], 3),
                s(&p["bundles_sent"]),
                s(&p["bundles_received"]),
                s(&p["bytes_sent"]),
                s(&p["bytes_received"]),
                last_seen(p)
            );
        }
        println!(
            "(RTTVAR in ms; CONT contacts; INTER_S mean time between contacts, MEAN_S mean contact, WAIT_S expected wait, seconds)"
        );
    }
    heard(&v["discovery"]["heard"]);
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
    super::job_cmd::show_capabilities(v);
    if let Some(r) = v.get("removed") {
        println!("removed: {r}");
    }
}

/// Prints the routes table: per held bundle, its destination, copies held
/// and our delay estimate, then one line per peer in contact.
pub fn routes(v: &Value) {
    println!("router {}", s(&v["router"]));
    let routes = v["routes"].as_array().cloned().unwrap_or_default();
    println!("\nHELD BUNDLES ({})", routes.len());
    for r in &routes {
        let copies = match &r["copies"] {
            Value::Null => "unlimited".to_owned(),
            c => c.to_string(),
        };
        println!(
            "  {}  -> {}  copies {}  our delay {}",
            s(&r["bundle"]),
            s(&r["destination"]),
            copies,
            secs(&r["delay_estimate_s"])
        );
        let peers = r["peers"].as_array().cloned().unwrap_or_default();
        if peers.is_empty() {
            println!("      (no peer in contact)");
        }
        for p in &peers {
            let give = match (&p["give"], p["action"].as_str()) {
                (Value::Null, Some("hold")) => "-".to_owned(),
                (Value::Null, _) => "all".to_owned(),
                (g, _) => g.to_string(),
            };
            println!(
                "      {:<24} {:<8} give {:<5} {:<22} peer delay {}",
                s(&p["peer"]),
                s(&p["action"]),
                give,
                p["reason"].as_str().unwrap_or(""),
                secs(&p["peer_delay_s"])
            );
        }
    }
}

/// Seconds with millisecond precision, or `unknown`.
fn secs(v: &Value) -> String {
    v.as_f64().map_or("unknown".into(), |x| format!("{x:.3} s"))
}
