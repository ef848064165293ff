//! Fixed-size chunking of a byte stream.

use super::{ContentError, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, chunk_cid};
use ::cid::Cid;
use bytes::Bytes;
use std::io::Read;

/// One chunk of a file: its position, its CID and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Zero-based position of the chunk in the file.
    pub index: u64,
    /// Offset of the chunk's first byte in the file, in bytes
    /// (`index · chunk_size`).
    pub offset: u64,
    /// CIDv1 raw sha2-256 of `data` (see [`chunk_cid`]).
    pub cid: Cid,
    /// The bytes: exactly `chunk_size` long, except the last chunk, which
    /// is 1..=`chunk_size` bytes.
    pub data: Bytes,
}

/// Checks a chunk size against [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`].
///
/// # Errors
/// [`ContentError::InvalidChunkSize`] if out of bounds.
pub fn check_chunk_size(chunk_size_bytes: u64) -> Result<u32, ContentError> {
    match u32::try_from(chunk_size_bytes) {
        Ok(size) if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) => Ok(size),
        _ => Err(ContentError::InvalidChunkSize {
            chunk_size_bytes,
            min: MIN_CHUNK_SIZE,
            max: MAX_CHUNK_SIZE,
        }),
    }
}

/// Splits a reader into fixed-size [`Chunk`]s, computing each CID.
///
/// An iterator of `Result<Chunk, ContentError>`. It holds at most one
/// chunk in memory (the one being filled); every chunk is filled
/// completely, however short the reader's reads are, except the last one.
/// An empty input yields no chunks. After an error the iterator is fused
/// (yields `None`).
///
/// ```
/// use spore::content::{Chunker, MIN_CHUNK_SIZE};
/// let data = vec![7u8; 2500];
/// let chunks: Vec<_> = Chunker::new(&data[..], MIN_CHUNK_SIZE)
///     .unwrap()
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(chunks.len(), 3);
/// assert_eq!(chunks[2].offset, 2048);
/// assert_eq!(chunks[2].data.len(), 452);
/// ```
#[derive(Debug)]
pub struct Chunker<R: Read> {
    reader: R,
    chunk_size: usize,
    next_index: u64,
    total_bytes: u64,
    done: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader` with chunks of `chunk_size` bytes.
    ///
    /// # Errors
    /// [`ContentError::InvalidChunkSize`] if `chunk_size` is outside
    /// [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`].
    pub fn new(reader: R, chunk_size: u32) -> Result<Self, ContentError> {
        let size = check_chunk_size(u64::from(chunk_size))?;
        Ok(Chunker {
            reader,
            // u32 → usize is lossless on the 32- and 64-bit targets spore supports.
            chunk_size: size as usize,
            next_index: 0,
            total_bytes: 0,
            done: false,
        })
    }

    /// Bytes yielded so far, in bytes; once the iterator is exhausted, the
    /// size of the whole input.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The chunk size, in bytes.
    pub fn chunk_size(&self) -> u32 {
        // Checked against MAX_CHUNK_SIZE (a u32) in `new`.
        self.chunk_size as u32
    }

    /// Reads the next chunk's bytes: `chunk_size` of them, or fewer at the
    /// end of the input. The buffer is not zeroed first (a `File` reads
    /// straight into it); interrupted reads are retried.
    fn fill(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(self.chunk_size);
        (&mut self.reader)
            .take(self.chunk_size as u64)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = Result<Chunk, ContentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let buf = match self.fill() {
            Ok(buf) => buf,
            Err(e) => {
                self.done = true;
                return Some(Err(ContentError::Read(e)));
            }
        };
        let filled = buf.len();
        if filled < self.chunk_size {
            self.done = true;
        }
        if filled == 0 {
            return None;
        }
        let data = Bytes::from(buf);
        let chunk = Chunk {
            index: self.next_index,
            offset: self.total_bytes,
            cid: chunk_cid(&data),
            data,
        };
        self.next_index += 1;
        self.total_bytes += filled as u64;
        Some(Ok(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FailAfter {
        left: usize,
    }

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.left);
            buf[..n].fill(1);
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_error_is_reported_then_fused() {
        let mut chunker = Chunker::new(FailAfter { left: 1500 }, 1024).unwrap();
        let first = chunker.next().unwrap().unwrap();
        assert_eq!(first.data.len(), 1024);
        let err = chunker.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), "read");
        assert!(chunker.next().is_none());
    }

    /// Hands out at most 1000 bytes per read, and `Interrupted` before every
    /// other read.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        interrupt: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(1000).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn short_and_interrupted_reads_still_make_whole_chunks() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let r = Trickle {
            data: data.clone(),
            at: 0,
            interrupt: false,
        };
        let chunks: Vec<Chunk> = Chunker::new(r, 4096).unwrap().map(Result::unwrap).collect();
        let sizes: Vec<usize> = chunks.iter().map(|c| c.data.len()).collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
        assert_eq!(joined, data);
        assert_eq!(chunks[2].offset, 8192);
    }

    #[test]
    fn exact_multiple_has_no_empty_tail() {
        let data = vec![3u8; 4096];
        let chunks: Vec<Chunk> = Chunker::new(&data[..], 1024)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|c| c.data.len() == 1024));
        assert_eq!(chunks[3].index, 3);
    }

    #[test]
    fn chunk_size_bounds() {
        assert!(check_chunk_size(u64::from(MIN_CHUNK_SIZE)).is_ok());
        assert!(check_chunk_size(u64::from(MAX_CHUNK_SIZE)).is_ok());
        assert!(check_chunk_size(u64::from(MIN_CHUNK_SIZE) - 1).is_err());
        assert!(check_chunk_size(u64::from(MAX_CHUNK_SIZE) + 1).is_err());
        assert!(check_chunk_size(u64::MAX).is_err());
    }
}
