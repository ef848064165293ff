//! Routing policies in real `spore node` processes on 127.0.0.1.
//!
//! 1. The default policy (`spore`) picks the lower-latency relay: A is in
//!    contact with B and C, both in contact with D; B reaches D through a
//!    relay that adds 100 ms one way, C reaches D directly. A file sent from
//!    A to D goes through C only: custody moves to C, B never holds it.
//! 2. Under spray-and-wait, A keeps copies of a file it sprayed to B; B
//!    delivers it to D; when A then meets D, D's summary lists the bundles
//!    and A releases its copies (spec/custody.md §Copies at the
//!    destination).
//! 3. `--router direct` holds a bundle for a relay and `spore routes` says
//!    why; the status API names the router; bad router set-ups fail at
//!    start with a clear message.

mod common;

use serde_json::Value;
use spore::harness::{NodeProcess, count_states, wait_for};
use std::time::Duration;

const DEST: &str = "dtn://d/files";
const WAIT: Duration = Duration::from_secs(20);

fn wait_connected(n: &NodeProcess, peer: &str) {
    n.wait_connected(peer, WAIT).unwrap();
}

/// Bundles in `n`'s status whose destination is [`DEST`].
fn bundles_to_dest(n: &NodeProcess) -> Vec<Value> {
    let st = n.status(None).unwrap();
    st["bundles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["destination"] == DEST)
        .cloned()
        .collect()
}

use common::cli;

#[test]
fn the_default_policy_chooses_the_lower_latency_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let start = |n: &str| NodeProcess::start(&exe, &tmp.path().join(n), n, &[]).unwrap();
    let (a, b, c, d) = (start("a"), start("b"), start("c"), start("d"));
    let (_rt, relay) = common::delaying_relay(d.quic_addr(), Duration::from_millis(100));
    b.add_peer(relay.local_addr()).unwrap();
    c.add_peer(d.quic_addr()).unwrap();
    wait_connected(&b, "dtn://d/");
    wait_connected(&c, "dtn://d/");
    a.add_peer(b.quic_addr()).unwrap();
    a.add_peer(c.quic_addr()).unwrap();
    wait_connected(&a, "dtn://b/");
    wait_connected(&a, "dtn://c/");
    // The summaries (with B's and C's adverts for D) follow the handshakes.
    std::thread::sleep(Duration::from_secs(1));

    let file = tmp.path().join("note.txt");
    std::fs::write(&file, b"the short way round").unwrap();
    let cid = a.send(&file, DEST).unwrap();
    wait_for("D to write the file", WAIT, || {
        let st = d.status(Some(&cid))?;
        Ok(st["files"][0]["path"].as_str().map(str::to_owned))
    })
    .unwrap();
    let at_a = bundles_to_dest(&a);
    assert_eq!(at_a.len(), 2, "one chunk and one manifest: {at_a:?}");
    wait_for("A's custody to move on", WAIT, || {
        let states = count_states(&a.status(None)?, Some(DEST));
        Ok((states.get("custody_transferred") == Some(&2)).then_some(()))
    })
    .unwrap();
    for bundle in bundles_to_dest(&a) {
        assert_eq!(
            bundle["custodian"], "dtn://c/",
            "custody went to C: {bundle}"
        );
    }
    for bundle in bundles_to_dest(&d) {
        assert_eq!(bundle["received_from"], "dtn://c/", "came via C: {bundle}");
    }
    assert!(
        bundles_to_dest(&b).is_empty(),
        "B (the slow relay) never held it: {:?}",
        bundles_to_dest(&b)
    );
    let v = a.status(None).unwrap();
    assert_eq!(v["router"], "spore:4", "the default router");
    assert!(relay.stats().sent > 0, "B's link to D did carry traffic");
}

#[test]
fn sprayed_copies_are_released_when_the_source_meets_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let spray = ["--router", "spray-and-wait:4"];
    let start = |n: &str| NodeProcess::start(&exe, &tmp.path().join(n), n, &spray).unwrap();
    let (a, b, d) = (start("a"), start("b"), start("d"));
    a.add_peer(b.quic_addr()).unwrap();
    wait_connected(&a, "dtn://b/");
    let file = tmp.path().join("survey.bin");
    common::random_file(&file, 300 << 10, 9);
    let cid = a.send(&file, DEST).unwrap();
    // Two chunks and a manifest: B gets 2 of A's 4 copies of each.
    wait_for("B to hold copies of all three bundles", WAIT, || {
        Ok((bundles_to_dest(&b).len() == 3).then_some(()))
    })
    .unwrap();
    a.remove_peer(b.quic_addr()).unwrap();
    b.add_peer(d.quic_addr()).unwrap();
    wait_for("D to write the file", WAIT, || {
        let st = d.status(Some(&cid))?;
        Ok(st["files"][0]["path"].as_str().map(str::to_owned))
    })
    .unwrap();
    let states = count_states(&a.status(None).unwrap(), Some(DEST));
    assert_eq!(
        states.get("stored"),
        Some(&3),
        "A kept its copies: {states:?}"
    );

    a.add_peer(d.quic_addr()).unwrap();
    wait_for("A to release its copies", WAIT, || {
        let states = count_states(&a.status(None)?, Some(DEST));
        Ok((states.get("custody_transferred") == Some(&3)).then_some(()))
    })
    .unwrap();
    for bundle in bundles_to_dest(&a) {
        assert_eq!(bundle["custodian"], "dtn://d/", "{bundle}");
    }
    for bundle in bundles_to_dest(&d) {
        assert_eq!(bundle["received_from"], "dtn://b/", "came via B: {bundle}");
    }
    let counters = a.status(None).unwrap()["counters"].clone();
    assert_eq!(counters["released_held_at_destination"], 3, "{counters}");
}

#[test]
fn routes_show_why_a_direct_router_holds_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &tmp.path().join("a"), "a", &["--router", "direct"]).unwrap();
    let b = NodeProcess::start(&exe, &tmp.path().join("b"), "b", &[]).unwrap();
    a.add_peer(b.quic_addr()).unwrap();
    wait_connected(&a, "dtn://b/");
    let file = tmp.path().join("note.txt");
    std::fs::write(&file, b"wait for D").unwrap();
    a.send(&file, DEST).unwrap();

    let (ok, out, err) = cli(&a.dir, &["routes", "--json"]);
    assert!(ok, "spore routes --json failed: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["router"], "direct");
    let routes = v["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2, "chunk and manifest are held: {v}");
    for r in routes {
        assert_eq!(r["destination"], DEST);
        assert_eq!(r["copies"], 1, "direct keeps a single copy: {r}");
        let peers = r["peers"].as_array().unwrap();
        assert_eq!(peers.len(), 1, "{r}");
        assert_eq!(peers[0]["peer"], "dtn://b/");
        assert_eq!(peers[0]["action"], "hold");
        assert_eq!(peers[0]["reason"], "wait_for_destination");
    }
    let (ok, table, err) = cli(&a.dir, &["routes", "--limit", "1"]);
    assert!(ok, "spore routes failed: {err}");
    assert!(table.starts_with("router direct"), "{table}");
    assert!(table.contains("HELD BUNDLES (1)"), "{table}");
    assert!(table.contains("wait_for_destination"), "{table}");
    let (ok, peers, err) = cli(&a.dir, &["peers"]);
    assert!(ok && peers.contains("WAIT_S"), "{peers}{err}");

    assert_eq!(a.status(None).unwrap()["router"], "direct");
    std::thread::sleep(Duration::from_millis(500));
    assert!(bundles_to_dest(&b).is_empty(), "B got nothing");
    let states = count_states(&a.status(None).unwrap(), Some(DEST));
    assert_eq!(states.get("stored"), Some(&2), "{states:?}");
}

#[test]
fn bad_router_setups_fail_at_start_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let dir = tmp.path().join("n");
    let log = dir.with_extension("log");
    let start = |extra: &[&str]| NodeProcess::start(&exe, &dir, "n", extra).map(|_| ());

    assert!(start(&["--router", "cgr"]).is_err());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("router cgr needs a contact plan"), "{text}");

    let plan = tmp.path().join("plan.txt");
    std::fs::write(
        &plan,
        "contact 0 60 dtn://n/ dtn://m/ unlimited\ncontact 5 1 1 2 100\n",
    )
    .unwrap();
    let plan_arg = plan.to_str().unwrap();
    assert!(start(&["--router", "cgr", "--contact-plan", plan_arg]).is_err());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("line 2"), "the bad line is named: {text}");

    let (ok, _, err) = cli(&dir, &["node", "--router", "fastest"]);
    assert!(!ok);
    assert!(
        err.contains("spray-and-wait[:L]"),
        "the names are listed: {err}"
    );

    std::fs::write(&plan, "contact 0 60 dtn://n/ dtn://m/ unlimited 5\n").unwrap();
    let mut n = NodeProcess::start(
        &exe,
        &dir,
        "n",
        &["--router", "cgr", "--contact-plan", plan_arg],
    )
    .unwrap();
    assert_eq!(n.status(None).unwrap()["router"], "cgr");
    n.stop();
}
