//! Packs of small files (spec/sync.md §Packs) with real nodes and files:
//! 2 000 small files and a few big ones sync A -> C, C is SIGKILLed once
//! packs have started to land and restarted, and the trees end identical
//! (names, sizes, SHA-256; so no duplicate or conflict copy); A's status
//! lists every packed file with its progress. A hostile pack (`../x`, an
//! absolute path, bytes that do not match their CID) writes only its good
//! file, nothing outside the accepting directory, and says why.

mod common;
use common::sync::{accepting_node, post_bundle, tree};

use bytes::Bytes;
use spore::bundle::{Bundle, CreationTimestamp, DtnTime, Eid, codec};
use spore::content::pack::{Pack, PackEntry};
use spore::harness::{NodeProcess, wait_for};
use std::path::Path;

type Tree = std::collections::BTreeMap<String, (u64, [u8; 32])>;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: Duration = Duration::from_secs(60);

/// A node whose `[sync]` packs hold at most 128 KiB (so 2 000 files make
/// about 16 packs).
fn start(root: &Path, name: &str) -> NodeProcess {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spore.toml"), "[sync]\npack_max_bytes = 131072\n").unwrap();
    NodeProcess::start(&common::exe(), &dir, name, &["--sync-settle", "200ms"]).unwrap()
}

#[test]
fn small_files_travel_in_packs_and_survive_a_receiver_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    for i in 0..2000usize {
        let dir = src.join(format!("d{}", i % 20));
        std::fs::create_dir_all(&dir).unwrap();
        common::random_file(&dir.join(format!("f{i}.dat")), 1024, 7 + i as u64);
    }
    std::fs::create_dir_all(src.join("big")).unwrap();
    common::random_file(&src.join("big/one.bin"), 3 << 20, 1);
    common::random_file(&src.join("big/two.bin"), (1 << 20) + 5, 2);
    common::random_file(&src.join("edge.bin"), 65536, 3); // exactly the limit
    std::fs::write(src.join("empty"), b"").unwrap();
    let want = tree(&src);
    assert_eq!(want.len(), 2004);
    let t0 = std::time::Instant::now();

    let a = start(root, "a");
    let mut c = start(root, "c");
    let recv = root.join("recv");
    common::sync::accept(&c, "dtn://a/", &recv);
    a.add_peer(c.quic_addr()).unwrap();
    common::sync::add_folder(&a, &src, "dtn://c/files", "data");

    // SIGKILL C as soon as the first pack's files appear: the packs that
    // arrived but are not applied yet are applied again after the restart.
    let got = recv.join("data");
    wait_for("the first files at C", T, || {
        Ok((!tree(&got).is_empty()).then_some(()))
    })
    .unwrap();
    c.kill();
    let partial = tree(&got).len();
    c.restart().unwrap();
    // C dials A as well: A's redial back-off after the failed dials during
    // the restart can otherwise run past the timeout on a loaded machine.
    c.add_peer(a.quic_addr()).unwrap();
    // Longer than T: under a loaded full-suite run this phase once took
    // over 60 s (cause not found yet; see the issue note).
    let synced = wait_for("C's tree to equal A's", 2 * T, || {
        Ok((tree(&got) == want).then_some(()))
    });
    if let Err(e) = synced {
        explain(&tmp.keep(), &want, &tree(&got), &a, &c);
        panic!("{e:#}");
    }
    eprintln!(
        "C killed with {partial} of 2004 files written; synced at {:?}",
        t0.elapsed()
    );

    // Per-file progress of packed files at A.
    let st = wait_for("every file handed on", T, || {
        let v = a.client()?.get("/api/v1/sync/status")?;
        let f = &v["folders"][0];
        let done = f["files_total"] == 2004 && f["chunks_handed_on"] == f["chunks_total"];
        Ok(done.then_some(v))
    })
    .unwrap();
    eprintln!("all handed on at {:?}", t0.elapsed());
    let files = st["folders"][0]["files"].as_array().unwrap();
    let small = files.iter().find(|f| f["path"] == "d3/f3.dat").unwrap();
    assert_eq!(small["chunks_total"], 1, "{small}");
    assert_eq!(small["chunks_handed_on"], 1, "{small}");
    assert_eq!(small["bytes"], 1024, "{small}");
    let big = files.iter().find(|f| f["path"] == "big/one.bin").unwrap();
    assert_eq!(
        big["chunks_total"], 12,
        "big files still travel as chunks: {big}"
    );
    // 2 002 packed files (small, edge, empty) in few bundles: A's store
    // holds far fewer bundles than files.
    let bundles = a.status(None).unwrap()["bundles"].as_array().unwrap().len();
    assert!(bundles < 100, "{bundles} bundles for 2 004 files");
}

/// What a failed sync left behind: the files missing, extra or different
/// at C, both nodes' sync state, and the kept directory with the logs.
fn explain(root: &Path, want: &Tree, got: &Tree, a: &NodeProcess, c: &NodeProcess) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .collect();
    eprintln!("kept {} (node logs a.log, c.log)", root.display());
    eprintln!(
        "missing {}: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    eprintln!("extra {}: {:?}", extra.len(), &extra[..extra.len().min(20)]);
    eprintln!(
        "differ {}: {:?}",
        differ.len(),
        &differ[..differ.len().min(20)]
    );
    for (name, n) in [("a", a), ("c", c)] {
        let st = n.client().and_then(|cl| cl.get("/api/v1/sync/status"));
        let st = st.map(|v| v.to_string()).unwrap_or_else(|e| e.to_string());
        eprintln!("{name} sync status: {}", &st[..st.len().min(4000)]);
        let b = n
            .status(None)
            .map(|v| spore::harness::count_states(&v, None));
        eprintln!("{name} bundles by state: {b:?}");
    }
}

#[test]
fn a_hostile_pack_lands_only_its_good_file_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (c, recv, outside) = accepting_node(root);

    let good = PackEntry::new("ok/good.txt".into(), 1, 1, Bytes::from_static(b"good"));
    let mut forged = PackEntry::new("forged.txt".into(), 1, 1, Bytes::from_static(b"one"));
    forged.data = Bytes::from_static(b"two"); // same length, other bytes
    let escape = format!("../../{}/x", outside.file_name().unwrap().to_str().unwrap());
    let pack = Pack {
        folder: "data".into(),
        chunk_size: 1024,
        entries: vec![
            PackEntry::new(escape, 1, 1, Bytes::from_static(b"x")),
            PackEntry::new(format!("{}/abs", outside.display()), 1, 1, "y".into()),
            forged,
            good,
        ],
    };
    let bytes = pack.encode();
    let cid = Pack::cid_of(&bytes);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let ts = CreationTimestamp {
        time: DtnTime::from_unix_ms(now.as_millis() as u64),
        sequence: 1,
    };
    let src: Eid = "dtn://a/".parse().unwrap();
    let dst: Eid = "dtn://c/files".parse().unwrap();
    let mut b = Bundle::new(src, dst, ts, 3_600_000, Bytes::from(bytes));
    b.set_content_cid(&cid.to_bytes());
    post_bundle(&c.dir, codec::encode(&b)).unwrap();

    let summary = wait_for("the pack applied", Duration::from_secs(15), || {
        let s = c.status(Some(&cid.to_string()))?;
        Ok(s["files"][0]["path"].as_str().map(str::to_owned))
    })
    .unwrap();
    assert!(
        summary.contains("1 written") && summary.contains("3 refused"),
        "{summary}"
    );
    assert!(
        summary.contains("absolute path") || summary.contains(".."),
        "{summary}"
    );
    let got = tree(&recv);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["data/ok/good.txt"],
        "{got:?}"
    );
    assert_eq!(
        std::fs::read(recv.join("data/ok/good.txt")).unwrap(),
        b"good"
    );
    assert!(tree(&outside).is_empty(), "nothing outside the accept dir");
    let st = c.client().unwrap().get("/api/v1/sync/status").unwrap();
    assert_eq!(st["pack_files_refused"], 3, "{st}");
}
