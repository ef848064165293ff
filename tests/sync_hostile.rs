//! Hostile folder manifests against a real node (spec/sync.md §Receiving):
//! `../../etc/x`, an absolute path, a 10 GB claimed size with one chunk
//! are refused at the bundle layer with a clear error; a symlink in the
//! receiving tree (as a directory or as the file name) makes the write
//! refused; nothing is written outside the accepting directory.

mod common;
use common::sync::{accepting_node, post_bundle};

use bytes::Bytes;
use spore::bundle::{Bundle, CreationTimestamp, DtnTime, Eid, codec};
use spore::content::{Chunker, FolderEntry, Manifest, ManifestBuilder};
use spore::harness::{NodeProcess, wait_for};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: Duration = Duration::from_secs(15);

fn bundle(seq: u64, payload: Vec<u8>, cid: Vec<u8>) -> Vec<u8> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ts = CreationTimestamp {
        time: DtnTime::from_unix_ms(now_ms),
        sequence: seq,
    };
    let src: Eid = "dtn://a/".parse().unwrap();
    let dst: Eid = "dtn://c/files".parse().unwrap();
    let mut b = Bundle::new(src, dst, ts, 3_600_000, Bytes::from(payload));
    b.set_content_cid(&cid);
    codec::encode(&b)
}

fn entry(path: &str) -> FolderEntry {
    FolderEntry {
        folder: "data".into(),
        path: path.into(),
        fversion: 1,
        deleted: false,
    }
}

fn manifest_bundle(seq: u64, m: &Manifest, e: &FolderEntry) -> Vec<u8> {
    bundle(seq, m.encode_with(Some(e)), m.cid_with(Some(e)).to_bytes())
}

/// A one-chunk manifest named `name` whose chunk is stored at the node.
fn one_chunk(node: &Path, seq: u64, name: &str) -> Manifest {
    let data = b"attacker bytes".to_vec();
    let mut builder = ManifestBuilder::new(name, 1024);
    for c in Chunker::new(&data[..], 1024).unwrap() {
        let c = c.unwrap();
        builder.push(&c);
        post_bundle(node, bundle(seq, c.data.to_vec(), c.cid.to_bytes())).unwrap();
    }
    builder.finish()
}

fn file_path(c: &NodeProcess, cid: &str) -> anyhow::Result<Option<String>> {
    let s = c.status(Some(cid))?;
    Ok(s["files"]
        .get(0)
        .and_then(|f| f["path"].as_str())
        .map(str::to_owned))
}

#[test]
fn hostile_folder_manifests_are_refused_and_nothing_escapes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (c, recv, outside) = accepting_node(root);

    // Refused at the bundle layer, with the reason.
    let m = one_chunk(&c.dir, 1, "x");
    for (seq, path) in [(10, "../../etc/x"), (11, "/etc/x"), (12, "a/./x")] {
        let err = post_bundle(&c.dir, manifest_bundle(seq, &m, &entry(path))).unwrap_err();
        assert!(err.contains("file name"), "{path}: {err}");
    }
    let mut huge = m.clone();
    huge.size = 10_000_000_000;
    let err = post_bundle(&c.dir, manifest_bundle(13, &huge, &entry("x"))).unwrap_err();
    assert!(err.contains("size") || err.contains("bytes"), "{err}");

    // A symlink directory inside the accept dir pointing outside.
    std::fs::create_dir_all(recv.join("data")).unwrap();
    std::os::unix::fs::symlink(&outside, recv.join("data/link")).unwrap();
    let m = one_chunk(&c.dir, 20, "x.txt");
    let e = entry("link/x.txt");
    post_bundle(&c.dir, manifest_bundle(21, &m, &e)).unwrap();
    let cid = m.cid_with(Some(&e)).to_string();
    let p = wait_for("C to handle the symlink-dir manifest", T, || {
        file_path(&c, &cid)
    })
    .unwrap();
    assert!(p.contains("refused") && p.contains("symlink"), "{p}");

    // A symlink as the file name, pointing at a file outside.
    std::fs::write(outside.join("target"), b"precious").unwrap();
    std::os::unix::fs::symlink(outside.join("target"), recv.join("data/evil.txt")).unwrap();
    let m = one_chunk(&c.dir, 30, "evil.txt");
    let e = entry("evil.txt");
    post_bundle(&c.dir, manifest_bundle(31, &m, &e)).unwrap();
    let cid = m.cid_with(Some(&e)).to_string();
    let p = wait_for("C to handle the symlink-file manifest", T, || {
        file_path(&c, &cid)
    })
    .unwrap();
    assert!(p.contains("refused"), "{p}");

    assert_eq!(std::fs::read(outside.join("target")).unwrap(), b"precious");
    let names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["target"], "nothing new outside the accept dir");

    // A well-formed one still lands, under recv/data/.
    let m = one_chunk(&c.dir, 40, "ok.txt");
    let e = entry("sub/ok.txt");
    post_bundle(&c.dir, manifest_bundle(41, &m, &e)).unwrap();
    let cid = m.cid_with(Some(&e)).to_string();
    let p = wait_for("C to write ok.txt", T, || file_path(&c, &cid)).unwrap();
    assert_eq!(Path::new(&p), recv.join("data/sub/ok.txt"));
    assert_eq!(std::fs::read(&p).unwrap(), b"attacker bytes");
}
