//! Discovery without multicast, real processes on 127.0.0.1: peer exchange
//! (A knows only B, B knows C; A ends up in contact with C) and cached peers
//! (A restarted with an empty dial list re-dials B from its peer table).

mod common;

use serde_json::Value;
use spore::harness::{NodeProcess, wait_for};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn peers(n: &NodeProcess) -> anyhow::Result<Value> {
    n.client()?.get("/api/v1/peers")
}

fn peer<'a>(v: &'a Value, node: &str) -> Option<&'a Value> {
    v["peers"]
        .as_array()?
        .iter()
        .find(|p| p["node_id"].as_str() == Some(node))
}

fn disc_counter(v: &Value, name: &str) -> u64 {
    v["discovery"]["counters"][name].as_u64().unwrap_or(0)
}

#[test]
fn peer_exchange_connects_a_to_c_through_b() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let flags = ["--peer-exchange", "on"];
    let start = |n: &str| NodeProcess::start(&exe, &tmp.path().join(n), n, &flags).unwrap();
    let (a, b, c) = (start("a"), start("b"), start("c"));

    b.add_peer(c.quic_addr()).unwrap();
    b.wait_connected("dtn://c/", T).unwrap();
    a.add_peer(b.quic_addr()).unwrap();
    a.wait_connected("dtn://c/", T).unwrap(); // told by B

    let v = peers(&a).unwrap();
    assert!(disc_counter(&v, "pex_lists_received") >= 1, "{v}");
    assert!(disc_counter(&v, "discovery_dials") >= 1, "{v}");
    let dial: Vec<String> = serde_json::from_value(v["dial"].clone()).unwrap();
    assert_eq!(
        dial,
        vec![b.quic_addr().to_string()],
        "discovery dials are transient: not dial targets"
    );
    assert_eq!(
        v["discovery"]["heard"]["dtn://c/"]["addr"],
        c.quic_addr().to_string(),
        "{v}"
    );

    // `spore peers remove --node` hangs up on C, and peer exchange does not
    // bring it back: a new A-B contact brings a new list naming C, and the
    // dial it would cause is suppressed.
    let q = spore::client::url_encode("dtn://c/");
    a.client()
        .unwrap()
        .delete(&format!("/api/v1/peers?node={q}"))
        .unwrap();
    wait_for("contact A-C closed", T, || {
        Ok((!a.connected("dtn://c/")?).then_some(()))
    })
    .unwrap();
    a.remove_peer(b.quic_addr()).unwrap();
    a.add_peer(b.quic_addr()).unwrap();
    let v = wait_for("a suppressed dial of C", T, || {
        let v = peers(&a)?;
        Ok((disc_counter(&v, "discovery_dials_suppressed") >= 1).then_some(v))
    })
    .unwrap();
    assert!(disc_counter(&v, "pex_lists_received") >= 2, "{v}");
    assert!(!a.connected("dtn://c/").unwrap(), "{v}");
}

#[test]
fn restarted_node_redials_cached_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let mut a = NodeProcess::start(
        &exe,
        &tmp.path().join("a"),
        "a",
        &["--dial-cached", "on", "--tick", "100ms"],
    )
    .unwrap();
    let b = NodeProcess::start(&exe, &tmp.path().join("b"), "b", &[]).unwrap();

    a.add_peer(b.quic_addr()).unwrap();
    a.wait_connected("dtn://b/", T).unwrap();
    // A sends B a small file: the bundle commit writes the peer table
    // (address and last contact) to A's store without waiting for the
    // periodic flush.
    let file = tmp.path().join("hello.txt");
    std::fs::write(&file, b"hello").unwrap();
    a.send(&file, "dtn://b/files").unwrap();
    wait_for("B's address in A's store", T, || {
        let v = peers(&a)?;
        Ok(peer(&v, "dtn://b/")
            .filter(|p| p["addr"] == b.quic_addr().to_string())
            .filter(|p| p["last_contact_ms"].is_u64())
            .map(|_| ()))
    })
    .unwrap();
    // Not a dial target any more: only the cache can bring B back.
    a.remove_peer(b.quic_addr()).unwrap();
    wait_for("contact A-B closed", T, || {
        Ok((!a.connected("dtn://b/")?).then_some(()))
    })
    .unwrap();

    a.restart().unwrap();
    let dial = std::fs::read_to_string(a.dir.join("dial.json")).unwrap();
    assert_eq!(dial.trim(), "[]", "empty dial list");
    a.wait_connected("dtn://b/", T).unwrap(); // re-dialled from the cache
    let v = peers(&a).unwrap();
    assert!(disc_counter(&v, "discovery_dials") >= 1, "{v}");
    assert_eq!(v["dial"], serde_json::json!([]), "still no dial target");
}
