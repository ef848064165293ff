//! Per-peer bandwidth cap (`spore peers limit`), real processes: with A's
//! link to C capped at 1 MiB/s, a 4 MiB file cannot arrive before the
//! bucket's one-second burst plus 3 s; the cap survives a restart of A.

mod common;

use spore::harness::{NodeProcess, wait_for};
use std::time::{Duration, Instant};

#[test]
fn a_capped_peer_link_runs_at_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("f.bin");
    common::random_file(&src, 4 << 20, 3);
    let exe = common::exe();
    let mut a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let c = NodeProcess::start(&exe, &root.join("c"), "c", &[]).unwrap();
    common::cli_ok(&a.dir, &["peers", "limit", "dtn://c/", "1M"]);
    a.stop();
    a.restart().unwrap();
    let peers = a.client().unwrap().get("/api/v1/peers").unwrap();
    assert_eq!(
        peers["bandwidth"]["dtn://c/"],
        1 << 20,
        "persisted: {peers}"
    );

    let cid = a.send(&src, "dtn://c/files").unwrap();
    let t0 = Instant::now();
    a.add_peer(c.quic_addr()).unwrap();
    wait_for("C to write the file", Duration::from_secs(30), || {
        let s = c.status(Some(&cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(str::to_owned))
    })
    .unwrap();
    let took = t0.elapsed();
    eprintln!("4 MiB at a 1 MiB/s cap took {took:?}");
    assert!(
        took >= Duration::from_millis(2900),
        "the cap must hold: {took:?}"
    );
}
