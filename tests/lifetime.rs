//! Lifetime: a bundle with a 2-second lifetime that cannot leave its node in
//! time expires there, leaves the store, and is never forwarded or delivered
//! afterwards, even when the destination comes into contact.

mod common;

use spore::harness::{NodeProcess, count_states, wait_for};
use std::time::Duration;

#[test]
fn expired_bundle_leaves_the_store_and_is_never_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &["--tick", "100ms"]).unwrap();
    let mut c = NodeProcess::start(&exe, &root.join("c"), "c", &[]).unwrap();

    let short = root.join("short.txt");
    std::fs::write(&short, b"this bundle lives two seconds").unwrap();
    let client = a.client().unwrap();
    let path = std::fs::canonicalize(&short).unwrap();
    let v = client
        .post(
            "/api/v1/send",
            &serde_json::json!({"path": path, "to": "dtn://c/files", "lifetime_ms": 2000}),
        )
        .unwrap();
    let cid = v["manifest_cid"].as_str().unwrap().to_owned();
    let held = a.status(None).unwrap()["held_bytes"].as_u64().unwrap();
    assert!(held > 0);

    // No contact: it expires at A.
    wait_for("expiry at A", Duration::from_secs(10), || {
        let p = count_states(&a.status(None)?, Some("dtn://c/files"));
        Ok((p.get("expired") == Some(&2) && p.len() == 1).then_some(()))
    })
    .unwrap();
    let s = a.status(None).unwrap();
    assert_eq!(
        s["held_bytes"].as_u64(),
        Some(0),
        "expired bundles left the store"
    );
    assert_eq!(common::counter(&s, "expired"), 2);
    for b in s["bundles"].as_array().unwrap() {
        let last = b["history"].as_array().unwrap().last().unwrap()["event"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            last.contains("lifetime expired"),
            "history says why: {last}"
        );
        assert!(b["custodian"].is_null());
    }

    // Now C comes into contact: nothing reaches it.
    a.add_peer(c.quic_addr()).unwrap();
    wait_for("contact A-C", Duration::from_secs(10), || {
        let p = a.client()?.get("/api/v1/peers")?;
        let up = p["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["connected"] == true);
        Ok(up.then_some(()))
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let cs = c.status(None).unwrap();
    assert!(
        cs["bundles"].as_array().unwrap().is_empty(),
        "C got nothing: {cs}"
    );
    assert!(
        c.status(Some(&cid)).unwrap()["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !c.dir.join("inbox").exists()
            || std::fs::read_dir(c.dir.join("inbox"))
                .unwrap()
                .next()
                .is_none()
    );
    c.stop();
}

/// A file that takes longer to store than its lifetime is refused with a
/// plain message: its manifest (which expires before its first chunk,
/// spec/manifest.md §Sending) would already be dead.
#[test]
fn a_send_outliving_its_lifetime_fails_with_a_plain_message() {
    let tmp = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(&common::exe(), &tmp.path().join("a"), "a", &[]).unwrap();
    let file = tmp.path().join("f.bin");
    common::random_file(&file, 1 << 20, 3);
    let file = file.to_str().unwrap();
    let args = ["send", file, "--to", "dtn://c/files", "--lifetime", "1ms"];
    let (ok, _, stderr) = common::cli(&a.dir, &args);
    assert!(!ok);
    assert!(stderr.contains("longer than its lifetime"), "{stderr}");
    let args = ["send", file, "--to", "dtn://c/files", "--lifetime", "1h"];
    assert!(common::cli(&a.dir, &args).0, "a long enough lifetime works");
}

/// A folder file that takes longer to read than the folder's bundle
/// lifetime fails alone, with a plain message in the log; the rest of the
/// scan (here a small file, which travels in a pack) is still sent.
#[test]
fn a_folder_file_outliving_its_lifetime_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    // 1 ms: every manifest's expiry bound has passed once its file is read.
    std::fs::write(dir.join("spore.toml"), "[sync]\nlifetime_ms = 1\n").unwrap();
    let a = NodeProcess::start(&common::exe(), &dir, "a", &[]).unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    common::random_file(&src.join("big.bin"), 600 << 10, 4);
    std::fs::write(src.join("small.txt"), b"a small file travels in a pack").unwrap();
    common::sync::add_folder(&a, &src, "dtn://c/files", "f");
    let sent = wait_for("small.txt sent", Duration::from_secs(30), || {
        let v = a.client()?.get("/api/v1/sync/status")?;
        let files = v["folders"][0]["files"].as_array().cloned();
        let files = files.unwrap_or_default();
        let has = |p: &str| files.iter().any(|f| f["path"] == p);
        Ok(has("small.txt").then(|| has("big.bin")))
    })
    .unwrap();
    assert!(!sent, "big.bin has no manifest, so it is not sent");
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(
        log.contains("big.bin") && log.contains("longer than the folder's bundle lifetime"),
        "{log}"
    );
}
