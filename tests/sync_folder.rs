//! Folder sync end to end (spec/sync.md), real processes and files: a
//! mixed folder (nested dirs, a large file, many small files, an empty
//! file, unicode names) syncs A -> C through B while both of B's links
//! flap at random every 0.5–5 s and B is SIGKILLed and restarted once;
//! the trees end identical (names, sizes, SHA-256). Then editing the
//! middle of the large file sends exactly one chunk again.
//!
//! Sizes come from the environment for the soak run (scripts/sync-soak.sh):
//! `SPORE_SYNC_BIG_MIB` (default 8), `SPORE_SYNC_SMALL` (default 200),
//! `SPORE_SYNC_TIMEOUT_S` (default 45).

mod common;
use common::sync::tree;

use serde_json::json;
use spore::chaos::{ChaosConfig, ChaosRelay, Flaps};
use spore::harness::{NodeProcess, wait_for};
use std::path::Path;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nested dirs, a `big_mib` MiB file, `small` files of 1 KiB spread over
/// 10 subdirectories, an empty file and unicode names.
fn make_folder(src: &Path, big_mib: usize, small: usize) {
    std::fs::create_dir_all(src.join("deep/er/still")).unwrap();
    common::random_file(&src.join("deep/big.bin"), big_mib << 20, 1);
    for i in 0..small {
        let dir = src.join(format!("small/d{}", i % 10));
        std::fs::create_dir_all(&dir).unwrap();
        common::random_file(&dir.join(format!("f{i}.dat")), 1024, 100 + i as u64);
    }
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("deep/er/still/naïve – 日本語.txt"), "unicode\n").unwrap();
    std::fs::write(src.join("Ünïcödé dir.md"), "# title\n").unwrap();
}

fn flapping(seed: u64) -> ChaosConfig {
    let mut c = ChaosConfig::clean();
    c.seed = seed;
    c.flaps = Some(Flaps {
        up_min: Duration::from_millis(500),
        up_max: Duration::from_secs(5),
        down_min: Duration::from_millis(200),
        down_max: Duration::from_millis(800),
    });
    c
}

/// A's sync status entry for `path`.
fn file_status(a: &NodeProcess, path: &str) -> anyhow::Result<serde_json::Value> {
    let v = a.client()?.get("/api/v1/sync/status")?;
    let files = v["folders"][0]["files"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    files
        .into_iter()
        .find(|f| f["path"] == path)
        .ok_or_else(|| anyhow::anyhow!("{path} not in sync status"))
}

/// Waits until A's asset query says C reported delivering `cid`; returns
/// the holders.
fn delivery_reported(a: &NodeProcess, cid: &str, timeout: Duration) -> serde_json::Value {
    wait_for("C's delivery report", timeout, || {
        let v = a.client()?.get(&format!("/api/v1/query/asset?cid={cid}"))?;
        let h = v["holders"].clone();
        let c_has = h.as_array().is_some_and(|l| {
            l.iter()
                .any(|x| x["node"] == "dtn://c/" && x["how"] == "delivery_reported")
        });
        Ok(c_has.then_some(h))
    })
    .unwrap()
}

#[test]
fn a_mixed_folder_syncs_through_a_flapping_killed_relay_and_edits_resend_one_chunk() {
    let big_mib = env_or("SPORE_SYNC_BIG_MIB", 8) as usize;
    let small = env_or("SPORE_SYNC_SMALL", 200) as usize;
    let timeout = Duration::from_secs(env_or("SPORE_SYNC_TIMEOUT_S", 45));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    make_folder(&src, big_mib, small);
    let want = tree(&src);
    assert_eq!(want.len(), small + 4);

    let exe = common::exe();
    let flags = ["--sync-settle", "300ms"];
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &flags).unwrap();
    let mut b = NodeProcess::start(&exe, &root.join("b"), "b", &flags).unwrap();
    let c = NodeProcess::start(&exe, &root.join("c"), "c", &flags).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let r1 = rt
        .block_on(ChaosRelay::start(any, a.quic_addr(), flapping(11)))
        .unwrap();
    let r2 = rt
        .block_on(ChaosRelay::start(any, c.quic_addr(), flapping(12)))
        .unwrap();

    let recv = root.join("recv");
    common::sync::accept(&c, "dtn://a/", &recv);
    common::sync::add_folder(&a, &src, "dtn://c/files", "data");
    b.add_peer(r1.local_addr()).unwrap();
    b.add_peer(r2.local_addr()).unwrap();
    let t0 = Instant::now();

    // SIGKILL B once some of the folder is in its custody, then restart it.
    wait_for("some chunks handed on by A", timeout, || {
        let v = a.client()?.get("/api/v1/sync/status")?;
        Ok((v["folders"][0]["chunks_handed_on"].as_u64().unwrap_or(0) >= 10).then_some(()))
    })
    .unwrap();
    b.kill();
    b.restart().unwrap();

    let got_dir = recv.join("data");
    wait_for("C's tree to equal A's", timeout, || {
        Ok((tree(&got_dir) == want).then_some(()))
    })
    .unwrap();
    let sync_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "synced {} files ({} MiB + {small} × 1 KiB) in {sync_s:.1} s; relays {:?} / {:?}",
        want.len(),
        big_mib,
        r1.stats(),
        r2.stats()
    );
    assert!(
        r1.stats().downs + r2.stats().downs > 0,
        "B's links must have dropped"
    );

    // Edit 6 bytes in the middle of the big file: one chunk travels. The
    // sender counts a version's chunks as at C once C's delivery report for
    // it is back (spec/sync.md), so wait for that first.
    let old = file_status(&a, "deep/big.bin").unwrap();
    let old_cid = old["manifest_cid"].as_str().unwrap().to_owned();
    delivery_reported(&a, &old_cid, timeout);
    let big = src.join("deep/big.bin");
    let mid = (big_mib << 20) as u64 / 2 + 1000;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.seek(SeekFrom::Start(mid)).unwrap();
        f.write_all(b"EDITED").unwrap();
    }
    let want = tree(&src);
    a.client()
        .unwrap()
        .post("/api/v1/manifest/refresh", &json!({}))
        .unwrap();
    wait_for("the edit to reach C", timeout, || {
        Ok((tree(&got_dir) == want).then_some(()))
    })
    .unwrap();
    let st = file_status(&a, "deep/big.bin").unwrap();
    assert_eq!(st["chunks_total"], (big_mib * 4) as u64, "{st}");
    assert_eq!(st["chunks_sent"], 1, "only the edited chunk travels: {st}");

    // Who holds the new version: A (the source) and C (its delivery report).
    let cid = st["manifest_cid"].as_str().unwrap().to_owned();
    let holders = delivery_reported(&a, &cid, timeout);
    assert!(
        holders
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["node"] == "dtn://a/"),
        "{holders}"
    );
    drop(rt);
}

/// The DTN case: a file and a folder are stored at A before any contact.
/// At the contact each manifest travels first (it expires first), so C
/// writes each file chunk by chunk as the chunks arrive, then completes
/// it (spec/manifest.md §Progressive reassembly); both land byte-identical.
#[test]
fn files_stored_before_a_contact_are_written_at_c_as_their_chunks_arrive() {
    let timeout = Duration::from_secs(60);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    common::random_file(&src.join("sub/big.bin"), 6 << 20, 5);
    let plain = root.join("plain.bin");
    common::random_file(&plain, 8 << 20, 6);
    let want = tree(&src);

    let exe = common::exe();
    let flags = ["--sync-settle", "300ms"];
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &flags).unwrap();
    let c = NodeProcess::start(&exe, &root.join("c"), "c", &flags).unwrap();
    let recv = root.join("recv");
    common::sync::accept(&c, "dtn://a/", &recv);
    a.send(&plain, "dtn://c/files").unwrap();
    common::sync::add_folder(&a, &src, "dtn://c/files", "data");
    wait_for("the folder file stored at A", timeout, || {
        Ok(file_status(&a, "sub/big.bin").ok().map(|_| ()))
    })
    .unwrap();

    a.add_peer(c.quic_addr()).unwrap();
    let got_dir = recv.join("data");
    wait_for("both files at C", timeout, || {
        let inbox = c.dir.join("inbox/plain.bin");
        Ok((tree(&got_dir) == want && inbox.exists()).then_some(()))
    })
    .unwrap();
    assert_eq!(
        std::fs::read(c.dir.join("inbox/plain.bin")).unwrap(),
        std::fs::read(&plain).unwrap()
    );
    // The folder file's temporary file (in the accept root) was moved.
    let in_root: Vec<_> = std::fs::read_dir(&recv).unwrap().flatten().collect();
    assert_eq!(in_root.len(), 1, "only data/ in {}", recv.display());
    let cs = c.status(None).unwrap();
    // A temporary file starts with the first chunk that arrives after its
    // manifest; on a loaded machine every chunk of one file may overtake
    // its manifest (they travel on parallel streams), and that file is
    // then written at the end only. The other one is written early.
    let files = common::counter(&cs, "early_files");
    assert!((1..=2).contains(&files), "{}", cs["counters"]);
    // 56 chunks of 256 KiB in all.
    let early = common::counter(&cs, "early_chunks_written");
    let backfilled = common::counter(&cs, "early_chunks_backfilled");
    assert!(early > 0 && early + backfilled <= 56, "{}", cs["counters"]);
}
