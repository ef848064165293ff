//! Chunker over real files and short-reading readers.

use spore::content::{Chunk, Chunker, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, verify_chunk};
use std::io::{Read, Write};

/// A reader that returns 1..=7 bytes per call (a fixed cycle, so runs repeat).
struct ShortReader<R> {
    inner: R,
    step: usize,
}

impl<R: Read> Read for ShortReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

fn pattern(len: usize) -> Vec<u8> {
    // A non-periodic-at-chunk-size pattern, so equal chunks would be a bug.
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn collect<R: Read>(chunker: Chunker<R>) -> Vec<Chunk> {
    chunker.collect::<Result<_, _>>().unwrap()
}

#[test]
fn ten_mib_file_chunks_verify_and_reassemble() {
    let len = 10 * 1024 * 1024 + 123;
    let data = pattern(len);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&data).unwrap();
    file.flush().unwrap();

    let mut chunker = Chunker::new(
        std::fs::File::open(file.path()).unwrap(),
        DEFAULT_CHUNK_SIZE,
    )
    .unwrap();
    let mut chunks = Vec::new();
    for chunk in chunker.by_ref() {
        chunks.push(chunk.unwrap());
    }
    assert_eq!(chunker.total_bytes(), len as u64);
    assert_eq!(chunks.len(), 41); // 40 full chunks of 256 KiB + 123 bytes
    let mut joined = Vec::with_capacity(len);
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.index, i as u64);
        assert_eq!(chunk.offset, i as u64 * u64::from(DEFAULT_CHUNK_SIZE));
        let expected_len = if i == 40 {
            123
        } else {
            DEFAULT_CHUNK_SIZE as usize
        };
        assert_eq!(chunk.data.len(), expected_len);
        verify_chunk(&chunk.cid, &chunk.data).unwrap();
        joined.extend_from_slice(&chunk.data);
    }
    assert_eq!(joined, data);

    // The same bytes through a reader that returns 1..=7 bytes per read.
    let short = ShortReader {
        inner: std::fs::File::open(file.path()).unwrap(),
        step: 0,
    };
    assert_eq!(
        collect(Chunker::new(short, DEFAULT_CHUNK_SIZE).unwrap()),
        chunks
    );
}

#[test]
fn empty_file_yields_no_chunks() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut chunker = Chunker::new(std::fs::File::open(file.path()).unwrap(), 1024).unwrap();
    assert!(chunker.next().is_none());
    assert!(chunker.next().is_none());
    assert_eq!(chunker.total_bytes(), 0);
}

#[test]
fn bad_chunk_sizes_are_refused() {
    for size in [0, 1, 1023, MAX_CHUNK_SIZE + 1, u32::MAX] {
        let err = Chunker::new(&b"abc"[..], size).unwrap_err();
        assert_eq!(err.kind(), "invalid_chunk_size", "{size}");
    }
    assert!(Chunker::new(&b"abc"[..], MAX_CHUNK_SIZE).is_ok());
}
