//! Writing a new file's bytes past the page cache (`O_DIRECT`) where the
//! file system allows it (spec/manifest.md, Reassembly, step 4).
//!
//! A received file is written once and then only fsynced and renamed;
//! copying it through the page cache costs a CPU copy into pages that
//! are never read again and evicts what the node does read (its store). A
//! [`DirectWriter`] gathers the bytes in a 1 MiB buffer aligned to
//! [`ALIGN`] and writes whole aligned blocks on a second, `O_DIRECT` open
//! of the same file; the last partial block goes through the ordinary
//! handle. Where `O_DIRECT` cannot be opened (tmpfs on older kernels, some
//! FUSE and network file systems, non-Linux) or a direct write fails, the
//! writer goes on with ordinary positional writes from the same offset, so
//! the result is the same file either way. Durability is the caller's: it
//! fsyncs the ordinary handle afterwards, which also makes the block
//! allocations of the direct writes durable.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Alignment of the direct writes' buffer address, file offset and
/// length, bytes: the largest logical block size of common disks.
pub const ALIGN: usize = 4096;

/// Bytes gathered before one direct write.
pub const BUF_BYTES: usize = 1 << 20;

/// Writes a file sequentially from offset 0, directly where possible.
///
/// Call [`DirectWriter::write`] with the bytes in order, then
/// [`DirectWriter::finish`]; dropping it without `finish` loses up to
/// [`BUF_BYTES`] of buffered bytes (the caller then discards the file).
pub struct DirectWriter<'a> {
    file: &'a File,
    /// The `O_DIRECT` handle; `None` once direct writes are off.
    direct: Option<File>,
    /// `ALIGN + BUF_BYTES` bytes, of which `buf[start..start + BUF_BYTES]`
    /// is aligned.
    buf: Vec<u8>,
    start: usize,
    /// Bytes gathered in the aligned window.
    filled: usize,
    /// File offset of the window's first byte.
    offset: u64,
}

impl<'a> DirectWriter<'a> {
    /// A writer for `file` (opened for writing, empty), trying an
    /// `O_DIRECT` handle on the same open file (`/proc/self/fd/N`).
    pub fn new(file: &'a File) -> Self {
        Self::with_direct(file, open_direct(file))
    }

    fn with_direct(file: &'a File, direct: Option<File>) -> Self {
        let buf = if direct.is_some() {
            vec![0u8; ALIGN + BUF_BYTES]
        } else {
            Vec::new()
        };
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        DirectWriter {
            file,
            direct,
            buf,
            start,
            filled: 0,
            offset: 0,
        }
    }

    /// True while direct writes are on (tests and logs).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// The ordinary handle's write error (a failed direct write is retried
    /// there, and direct writes stay off for the rest of the file).
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.direct.is_none() {
                self.file.write_all_at(data, self.offset)?;
                self.offset += data.len() as u64;
                return Ok(());
            }
            let n = (BUF_BYTES - self.filled).min(data.len());
            let at = self.start + self.filled;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == BUF_BYTES {
                self.flush_window()?;
            }
        }
        Ok(())
    }

    /// Writes what is still buffered: whole aligned blocks directly, the
    /// rest through the ordinary handle. Does not fsync.
    ///
    /// # Errors
    /// As [`DirectWriter::write`].
    pub fn finish(mut self) -> io::Result<()> {
        self.flush_window()?;
        if self.filled > 0 {
            let tail = &self.buf[self.start..self.start + self.filled];
            self.file.write_all_at(tail, self.offset)?;
            self.offset += self.filled as u64;
            self.filled = 0;
        }
        Ok(())
    }

    /// Writes the aligned prefix of the window and keeps the remainder
    /// (less than [`ALIGN`] bytes) at the window's start.
    fn flush_window(&mut self) -> io::Result<()> {
        let whole = self.filled / ALIGN * ALIGN;
        if whole == 0 {
            return Ok(());
        }
        let block = &self.buf[self.start..self.start + whole];
        let direct_ok = match &self.direct {
            Some(d) => d.write_all_at(block, self.offset).is_ok(),
            None => false,
        };
        if !direct_ok {
            // From here on the ordinary handle; it rewrites this block
            // whole, whatever part the direct write may have written.
            self.direct = None;
            self.file.write_all_at(block, self.offset)?;
        }
        self.offset += whole as u64;
        self.buf
            .copy_within(self.start + whole..self.start + self.filled, self.start);
        self.filled -= whole;
        Ok(())
    }
}

/// A second open file description of `file` with `O_DIRECT`, or `None`.
#[cfg(target_os = "linux")]
pub(super) fn open_direct(file: &File) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn open_direct(_file: &File) -> Option<File> {
    None
}

/// Writes the first `whole` bytes of `parts`, laid end to end, at
/// `offset` of the `O_DIRECT` handle `direct`, straight from the parts'
/// memory (`pwritev`, no aligned copy). Only when everything is aligned:
/// `offset`, `whole` and the address of every part a multiple of
/// [`ALIGN`], and every part but the one holding byte `whole - 1` a
/// multiple of [`ALIGN`] long.
///
/// Returns the bytes written from the start, which the caller writes
/// otherwise from there on: `whole`; 0 when not aligned or the first
/// write fails; or where a write stopped short or failed.
pub(super) fn write_parts_direct(
    direct: &File,
    parts: &[&[u8]],
    offset: u64,
    whole: usize,
) -> usize {
    let mut slices = Vec::with_capacity(parts.len());
    let mut left = whole;
    for p in parts {
        if left == 0 {
            break;
        }
        let take = p.len().min(left);
        if take % ALIGN != 0 || (p.as_ptr() as usize) % ALIGN != 0 {
            return 0;
        }
        slices.push(std::io::IoSlice::new(&p[..take]));
        left -= take;
    }
    if left != 0 || whole == 0 || offset % ALIGN as u64 != 0 {
        return 0;
    }
    let mut done = 0;
    let mut rest = &mut slices[..];
    while done < whole {
        match pwritev(direct, rest, offset + done as u64) {
            Ok(n) if n > 0 => {
                done += n;
                if n % ALIGN != 0 {
                    break;
                }
                std::io::IoSlice::advance_slices(&mut rest, n);
            }
            _ => break,
        }
    }
    done
}

#[cfg(target_os = "linux")]
fn pwritev(file: &File, slices: &[std::io::IoSlice<'_>], offset: u64) -> std::io::Result<usize> {
    let offset = i64::try_from(offset).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    Ok(nix::sys::uio::pwritev(file, slices, offset)?)
}

#[cfg(not(target_os = "linux"))]
fn pwritev(_: &File, _: &[std::io::IoSlice<'_>], _: u64) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn write_in_pieces(f: &File, data: &[u8], piece: usize) -> bool {
        let mut w = DirectWriter::new(f);
        let direct = w.is_direct();
        for p in data.chunks(piece) {
            w.write(p).unwrap();
        }
        w.finish().unwrap();
        direct
    }

    fn read_back(path: &std::path::Path) -> Vec<u8> {
        let mut v = Vec::new();
        File::open(path).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn any_length_in_any_pieces_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        // Lengths around the alignment and the buffer size, pieces smaller
        // and larger than both.
        let lens = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BUF_BYTES, BUF_BYTES + 7];
        for (i, &len) in lens.iter().enumerate() {
            for piece in [1000, ALIGN, 256 * 1024, 3 * BUF_BYTES] {
                let path = dir.path().join(format!("f{i}-{piece}"));
                let f = File::create(&path).unwrap();
                let data = pattern(len + 3 * BUF_BYTES * usize::from(piece == ALIGN));
                write_in_pieces(&f, &data, piece);
                f.sync_all().unwrap();
                assert_eq!(read_back(&path), data, "len {} piece {piece}", data.len());
            }
        }
    }

    #[test]
    fn direct_where_the_file_system_takes_it() {
        // CI's temp dir is on ext4, which takes O_DIRECT: the fast path
        // must be the one exercised there. On a file system that refuses
        // it, set SPORE_TEST_NO_DIRECT=1 (the bytes are still checked).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = File::create(&path).unwrap();
        let data = pattern(3 * BUF_BYTES + 123);
        let direct = write_in_pieces(&f, &data, 256 * 1024);
        assert_eq!(read_back(&path), data);
        if cfg!(target_os = "linux") && std::env::var_os("SPORE_TEST_NO_DIRECT").is_none() {
            assert!(direct, "O_DIRECT refused on {}", dir.path().display());
        }
    }

    /// A copy of `data` at an [`ALIGN`]ed address: the buffer and where
    /// in it the copy starts.
    fn aligned(data: &[u8]) -> (Vec<u8>, usize) {
        let mut backing = vec![0; data.len() + ALIGN];
        let start = backing.as_ptr().align_offset(ALIGN);
        backing[start..start + data.len()].copy_from_slice(data);
        (backing, start)
    }

    #[test]
    fn aligned_parts_are_written_without_a_copy_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = File::create(&path).unwrap();
        let Some(direct) = open_direct(&f) else {
            let no_direct = std::env::var_os("SPORE_TEST_NO_DIRECT").is_some();
            assert!(no_direct || !cfg!(target_os = "linux"), "O_DIRECT refused");
            return;
        };
        let data = pattern(3 * 64 * 1024 + 1000);
        let bufs: Vec<_> = [0..64 * 1024, 64 * 1024..128 * 1024, 128 * 1024..data.len()]
            .into_iter()
            .map(|r| (aligned(&data[r.clone()]), r.len()))
            .collect();
        let parts: Vec<&[u8]> = bufs.iter().map(|((b, s), n)| &b[*s..s + n]).collect();
        let whole = data.len() / ALIGN * ALIGN;
        // At offset 2 * ALIGN: whole blocks only, the tail is the caller's.
        assert_eq!(
            write_parts_direct(&direct, &parts, 2 * ALIGN as u64, whole),
            whole
        );
        f.write_all_at(&data[whole..], (2 * ALIGN + whole) as u64)
            .unwrap();
        f.sync_all().unwrap();
        let back = read_back(&path);
        assert_eq!(&back[..2 * ALIGN], &vec![0; 2 * ALIGN][..]);
        assert_eq!(&back[2 * ALIGN..], &data[..]);

        // Refused (0 written): a part off an aligned address, a middle part
        // of a length off the block size, an unaligned offset or length.
        let ((b0, s0), _) = &bufs[0];
        let odd = &b0[s0 + 1..s0 + 1 + 8 * ALIGN];
        assert_eq!(write_parts_direct(&direct, &[odd], 0, 8 * ALIGN), 0);
        let short = &parts[0][..1000];
        assert_eq!(
            write_parts_direct(&direct, &[short, parts[1]], 0, 8 * ALIGN),
            0
        );
        assert_eq!(write_parts_direct(&direct, &parts, 100, whole), 0);
        assert_eq!(write_parts_direct(&direct, &parts[..1], 0, 100), 0);
        assert_eq!(read_back(&path)[2 * ALIGN..], data[..], "nothing changed");
    }

    #[test]
    fn a_failed_direct_write_falls_back_without_losing_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = File::create(&path).unwrap();
        // A read-only handle in the direct slot: its writes fail like a
        // refused direct write would.
        let mut w = DirectWriter::with_direct(&f, Some(File::open(&path).unwrap()));
        let data = pattern(2 * BUF_BYTES + 5000);
        w.write(&data).unwrap();
        assert!(!w.is_direct());
        w.finish().unwrap();
        assert_eq!(read_back(&path), data);
    }
}
