//! "Who has this asset?" from asset adverts exchanged on contact
//! (spec/assets.md), with real node processes on 127.0.0.1: a line A–B–C
//! (A knows only B, C knows only B); B sends a file to C; A learns that C
//! holds it via B, still knows after a restart with B down, and a chunk
//! CID is answered through the manifest at C. A raw peer sending oversized
//! and malformed adverts is refused and counted; nothing panics.

mod common;

use common::raw_peer::{RawSession, frame, hello};
use serde_json::Value;
use spore::harness::{NodeProcess, wait_for};
use spore::node::proto::{AssetEntry, ControlMessage, MAX_ASSET_ENTRIES};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
/// Adverts are checked for news every 200 ms in these tests.
const CONFIG: &str = "[assets]\ncheck_ms = 200\n";

fn start(root: &Path, name: &str) -> NodeProcess {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spore.toml"), CONFIG).unwrap();
    NodeProcess::start(&common::exe(), &dir, name, &[]).unwrap()
}

fn query(n: &NodeProcess, cid: &str) -> anyhow::Result<Vec<Value>> {
    let v = n.client()?.get(&format!("/api/v1/query/asset?cid={cid}"))?;
    Ok(v["holders"].as_array().cloned().unwrap_or_default())
}

fn find<'a>(holders: &'a [Value], node: &str, how: &str) -> Option<&'a Value> {
    holders
        .iter()
        .find(|h| h["node"] == node && h["how"] == how)
}

#[test]
fn a_learns_that_c_holds_a_file_via_b_and_remembers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut a = start(root, "a");
    let mut b = start(root, "b");
    let c = start(root, "c");
    a.add_peer(b.quic_addr()).unwrap();
    c.add_peer(b.quic_addr()).unwrap();
    // B must be in contact with C before it sends: a source that knows
    // no way to the destination hands every copy to the first peer it
    // meets (spec/routing.md §4), here A, which never meets C. (A CI run
    // failed this way when C's dial came after B's send.)
    b.wait_connected("dtn://c/", T).unwrap();
    b.wait_connected("dtn://a/", T).unwrap();

    // Three chunks of 256 KiB (the default chunk size) and a tail.
    let src = root.join("report.bin");
    common::random_file(&src, 800 << 10, 11);
    let cid = b.send(&src, "dtn://c/files").unwrap();
    wait_for("the file complete at C", T, || {
        Ok(find(&query(&c, &cid)?, "dtn://c/", "file_here").map(|_| ()))
    })
    .unwrap();

    let h = wait_for("A hears that C holds it", T, || {
        Ok(find(&query(&a, &cid)?, "dtn://c/", "advertised").cloned())
    })
    .unwrap();
    assert_eq!(h["via"], "dtn://b/", "{h}");
    assert_eq!(h["hops"], 2, "{h}");
    assert!(h["age_s"].as_u64().unwrap() < 60, "{h}");
    // B told A about itself (the source) directly.
    let a_view = query(&a, &cid).unwrap();
    let hb = find(&a_view, "dtn://b/", "advertised").expect("B advertised as a holder");
    assert_eq!(
        (hb["via"].as_str(), hb["hops"].as_u64()),
        (Some("dtn://b/"), Some(1))
    );
    assert!(
        find(&a_view, "dtn://a/", "file_here").is_none(),
        "A holds nothing"
    );

    // A chunk CID at C: answered through the manifest C holds.
    let data = std::fs::read(&src).unwrap();
    let chunk = spore::content::chunk_cid(&data[..256 << 10]).to_string();
    let by_chunk = query(&c, &chunk).unwrap();
    let hb = find(&by_chunk, "dtn://b/", "advertised").expect("B holds the chunk's file");
    assert_eq!(hb["manifest"].as_str(), Some(cid.as_str()), "{by_chunk:?}");
    assert!(
        find(&by_chunk, "dtn://c/", "file_here").is_some(),
        "{by_chunk:?}"
    );

    // The knowledge is durable: with B gone (nobody can re-advertise), a
    // restarted A still answers.
    b.stop();
    a.stop();
    a.restart().unwrap();
    let after = query(&a, &cid).unwrap();
    let h = find(&after, "dtn://c/", "advertised").expect("C still known after restart");
    assert_eq!(h["via"], "dtn://b/");

    // The CLI prints the same.
    let text = common::cli_ok(&a.dir, &["query", "asset", &cid]);
    assert!(
        text.contains("dtn://c/") && text.contains("via dtn://b/"),
        "{text}"
    );
}

fn entry(cid: Vec<u8>, holder: &str) -> AssetEntry {
    AssetEntry {
        cid,
        holder: holder.into(),
        seen_ms: u64::MAX,
        hops: 0,
        chunks: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_adverts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), "a");
    let counters = |a: &NodeProcess| a.status(None).map(|s| s["counters"].clone());
    let good = spore::content::chunk_cid(b"a file").to_bytes();
    // `_rx` and `_ep` stay alive: dropping them would stop the node's writes.
    let RawSession {
        conn,
        mut tx,
        rx: _rx,
        ep: _ep,
    } = hello(a.quic_addr(), "dtn://mallory/").await;

    // One entry too many: refused whole.
    let big = vec![entry(good.clone(), "dtn://x/"); MAX_ASSET_ENTRIES + 1];
    tx.write_all(&frame(&ControlMessage::Assets { entries: big }))
        .await
        .unwrap();
    // Bad entries are skipped, the good one is kept.
    let mixed = vec![
        entry(vec![0xff; 40], "dtn://x/"),
        entry(good.clone(), "not a node id"),
        entry(good.clone(), "dtn://x/service"),
        entry(good.clone(), "dtn://y/"),
    ];
    tx.write_all(&frame(&ControlMessage::Assets { entries: mixed }))
        .await
        .unwrap();
    let c = wait_for("the adverts counted", T, || {
        let c = counters(&a)?;
        Ok((c["asset_adverts_received"] == 1).then_some(c))
    })
    .unwrap();
    assert_eq!(c["asset_adverts_refused_oversized"], 1, "{c}");
    assert_eq!(c["asset_entries_invalid"], 3, "{c}");
    let text = spore::content::cid_from_bytes(&good).unwrap().to_string();
    let y = wait_for("dtn://y/ learned", T, || {
        Ok(find(&query(&a, &text)?, "dtn://y/", "advertised").cloned())
    })
    .unwrap();
    assert_eq!(y["via"], "dtn://mallory/");
    // A claimed time in the future is clamped to the receiver's clock.
    assert!(y["age_s"].as_u64().is_some(), "{y}");
    assert!(find(&query(&a, &text).unwrap(), "dtn://x/", "advertised").is_none());

    // Not CBOR of a control message: the contact is closed, the node lives.
    let bad = serde_cbor::Value::Map(
        [(
            serde_cbor::Value::Text("assets".into()),
            serde_cbor::Value::Text("entries".into()),
        )]
        .into_iter()
        .collect(),
    );
    tx.write_all(&frame(&bad)).await.unwrap();
    tokio::time::timeout(T, conn.closed())
        .await
        .expect("the node closes the contact");
    assert!(a.status(None).is_ok(), "the node still answers");
}
