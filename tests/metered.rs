//! Metered links (`spore peers metered`), real processes: with A's link to
//! B metered, a small file crosses while a large file's chunks wait (the
//! routes view says why), also across a restart of A; switching the flag
//! off lets the large file through in the same contact.

mod common;

use serde_json::Value;
use spore::harness::{NodeProcess, wait_for};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn file_path(n: &NodeProcess, cid: &str) -> Option<String> {
    let s = n.status(Some(cid)).ok()?;
    s["files"].get(0)?["path"].as_str().map(str::to_owned)
}

fn peers_cli(n: &NodeProcess, args: &[&str]) -> Value {
    let args: Vec<&str> = ["peers", "--json"].iter().chain(args).copied().collect();
    serde_json::from_str(&common::cli_ok(&n.dir, &args)).unwrap()
}

#[test]
fn bulk_waits_on_a_metered_link_and_small_files_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (big, small) = (root.join("big.bin"), root.join("small.txt"));
    common::random_file(&big, 1 << 20, 7);
    std::fs::write(&small, b"a small report that must not wait").unwrap();
    let exe = common::exe();
    let mut a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let b = NodeProcess::start(&exe, &root.join("b"), "b", &[]).unwrap();
    let set = peers_cli(&a, &["metered", "dtn://b/", "on"]);
    assert_eq!(set["metered"][0], "dtn://b/", "{set}");
    a.stop();
    a.restart().unwrap();
    let big_cid = a.send(&big, "dtn://b/files").unwrap();
    let small_cid = a.send(&small, "dtn://b/files").unwrap();
    a.add_peer(b.quic_addr()).unwrap();
    let got = wait_for("the small file at B", T, || Ok(file_path(&b, &small_cid))).unwrap();
    assert_eq!(std::fs::read(got).unwrap(), std::fs::read(&small).unwrap());
    // The big file's chunks are held at A, and the router says why.
    let routes = a.client().unwrap().get("/api/v1/routes").unwrap();
    let metered = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["peers"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["reason"] == "metered")
        .count();
    assert!(metered >= 4, "four 256 KiB chunks wait: {routes}");
    assert_eq!(file_path(&b, &big_cid), None, "bulk must wait");
    let set = peers_cli(&a, &["metered", "dtn://b/", "off"]);
    assert_eq!(set["metered"], serde_json::json!([]), "{set}");
    let got = wait_for("the big file at B", T, || Ok(file_path(&b, &big_cid))).unwrap();
    assert_eq!(std::fs::read(got).unwrap(), std::fs::read(&big).unwrap());
}
