//! write_file_atomically on real directories.

use bytes::Bytes;
use spore::content::{
    ChunkCheck, Chunker, Cid, ContentError, Manifest, ManifestBuilder, write_file_atomically,
};
use std::collections::HashMap;
use std::path::Path;

fn chunked(name: &str, data: &[u8]) -> (Manifest, HashMap<Cid, Bytes>) {
    let mut builder = ManifestBuilder::new(name, 1024);
    let mut store = HashMap::new();
    for chunk in Chunker::new(data, 1024).unwrap() {
        let chunk = chunk.unwrap();
        builder.push(&chunk);
        store.insert(chunk.cid, chunk.data);
    }
    (builder.finish(), store)
}

fn from(store: &HashMap<Cid, Bytes>) -> impl FnMut(&Cid) -> Result<Bytes, String> + '_ {
    |cid| {
        store
            .get(cid)
            .cloned()
            .ok_or_else(|| format!("no chunk {cid}"))
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

#[test]
fn writes_bytes_and_never_clobbers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inbox/nested"); // created on demand
    let bytes = data(5000);
    let (m, store) = chunked("report.tar.gz", &bytes);

    let first = write_file_atomically(&dir, &m, ChunkCheck::Hash, from(&store)).unwrap();
    assert_eq!(first, dir.join("report.tar.gz"));
    assert_eq!(std::fs::read(&first).unwrap(), bytes);

    let second = write_file_atomically(&dir, &m, ChunkCheck::Hash, from(&store)).unwrap();
    assert_eq!(second, dir.join("report.tar (1).gz"));
    let third = write_file_atomically(&dir, &m, ChunkCheck::Hash, from(&store)).unwrap();
    assert_eq!(third, dir.join("report.tar (2).gz"));
    assert_eq!(std::fs::read(&third).unwrap(), bytes);
    assert_eq!(std::fs::read(&first).unwrap(), bytes);
    assert_eq!(
        entries(&dir),
        ["report.tar (1).gz", "report.tar (2).gz", "report.tar.gz"]
    );
}

#[test]
fn empty_file_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, store) = chunked("empty", b"");
    assert!(m.chunks.is_empty());
    let path = write_file_atomically(tmp.path(), &m, ChunkCheck::Hash, from(&store)).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"");
}

#[test]
fn corrupt_chunk_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep.txt"), b"old").unwrap();
    let (m, mut store) = chunked("new.bin", &data(3000));
    let victim = m.chunks[1];
    let mut bad = store[&victim].to_vec();
    bad[17] ^= 1;
    store.insert(victim, Bytes::from(bad));

    let err = write_file_atomically(tmp.path(), &m, ChunkCheck::Hash, from(&store)).unwrap_err();
    match &err {
        ContentError::CidMismatch { expected, .. } => assert_eq!(**expected, victim),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(entries(tmp.path()), ["keep.txt"]);
}

#[test]
fn missing_or_short_chunk_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, mut store) = chunked("x.bin", &data(3000));
    store.remove(&m.chunks[2]);
    let err = write_file_atomically(tmp.path(), &m, ChunkCheck::Hash, from(&store)).unwrap_err();
    assert_eq!(err.kind(), "chunk_unavailable");
    assert!(err.to_string().contains("no chunk"), "{err}");

    // A manifest that lies about the size: the last chunk is 952 bytes but
    // the manifest claims 1000. The CID matches, so the length check must
    // catch it.
    let (mut m, store) = chunked("y.bin", &data(3000));
    m.size = 2048 + 1000;
    let err = write_file_atomically(tmp.path(), &m, ChunkCheck::Hash, from(&store)).unwrap_err();
    assert_eq!(err.kind(), "chunk_length");
    assert!(entries(tmp.path()).is_empty());

    // Chunks from a store that checked them: the length is still checked.
    let err =
        write_file_atomically(tmp.path(), &m, ChunkCheck::LengthOnly, from(&store)).unwrap_err();
    assert_eq!(err.kind(), "chunk_length");
    assert!(entries(tmp.path()).is_empty());
}

#[test]
fn traversal_names_are_refused_before_touching_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inbox");
    for name in ["../escape", "..", "/etc/passwd", "a/b", "c\\d", ""] {
        let (m, store) = chunked(name, b"payload");
        let err = write_file_atomically(&dir, &m, ChunkCheck::Hash, from(&store)).unwrap_err();
        assert_eq!(err.kind(), "invalid_file_name", "{name:?}");
    }
    assert!(!dir.exists());
    assert!(entries(tmp.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn existing_symlink_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target.txt");
    std::fs::write(&target, b"precious").unwrap();
    let dir = tmp.path().join("inbox");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("f.txt")).unwrap();
    let (m, store) = chunked("f.txt", b"new contents");
    let path = write_file_atomically(&dir, &m, ChunkCheck::Hash, from(&store)).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(path, dir.join("f (1).txt"));
    assert_eq!(std::fs::read(path).unwrap(), b"new contents");
}
