//! Folder-sync packs (spec/sync.md §Packs): many small files of one synced
//! folder, with their bytes inline, in one content-addressed object.
//!
//! On the wire a pack is a manifest (spec/manifest.md) named
//! [`PACK_NAME`] with size 0, no chunks, and one more key, `pack`, whose
//! value is a byte string holding the pack body. So the pack is named by
//! its own CIDv1 dag-cbor like any manifest, every agent stores and
//! forwards it as one, and a destination's file machinery hands it to the
//! driver once (it has no chunks to wait for).
//!
//! The body is a DAG-CBOR map `{"files": [entry…], "folder": text}`; each
//! entry is a map with the keys (in DAG-CBOR order) `cid` (tag-42 CIDv1 raw
//! sha2-256 of the file's bytes, the same CID a one-chunk file has), `data`
//! (bytes), `path` (text), `size` (uint), `deleted` (uint 1, tombstones
//! only), `fversion` (uint), `mtime_ms` (uint).

use super::cbor::{self, MAJOR_ARRAY, MAJOR_MAP, Reader};
use super::{Cid, ContentError, FolderEntry, Manifest, ManifestBuilder, chunk_cid};
use bytes::Bytes;

/// The `name` of a pack's manifest part.
pub const PACK_NAME: &str = "sync-pack";

/// Most entries in one pack body.
pub const MAX_PACK_ENTRIES: usize = 1 << 16;

/// One file (or tombstone) in a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Relative path in the folder, `/`-separated (checked by the
    /// receiver with [`super::sanitize_relative_path`], not on decode, so
    /// that one hostile entry does not void the others).
    pub path: String,
    /// File size in bytes (0 for a tombstone).
    pub size: u64,
    /// Modification time at the sender, ms since the Unix epoch.
    pub mtime_ms: u64,
    /// File version (spec/sync.md §Manifest: `fversion`).
    pub fversion: u64,
    /// A tombstone: the file was deleted at the sender.
    pub deleted: bool,
    /// CIDv1 raw sha2-256 of `data`.
    pub cid: Cid,
    /// The file's bytes.
    pub data: Bytes,
}

impl PackEntry {
    /// An entry for `data` at `path` (computes the CID).
    pub fn new(path: String, mtime_ms: u64, fversion: u64, data: Bytes) -> PackEntry {
        PackEntry {
            path,
            size: data.len() as u64,
            mtime_ms,
            fversion,
            deleted: false,
            cid: chunk_cid(&data),
            data,
        }
    }

    /// A tombstone for `path`.
    pub fn tombstone(path: String, mtime_ms: u64, fversion: u64) -> PackEntry {
        PackEntry {
            deleted: true,
            ..PackEntry::new(path, mtime_ms, fversion, Bytes::new())
        }
    }

    /// The manifest and folder keys this file would have if it travelled
    /// alone with chunks of `chunk_size` bytes: one chunk (`cid`), or none
    /// when empty. Its [`Manifest::cid_with`] is the file's manifest CID.
    /// Not validated; the receiver checks it like any folder manifest.
    pub fn as_manifest(&self, folder: &str, chunk_size: u32) -> (Manifest, FolderEntry) {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        let mut m = ManifestBuilder::new(name, chunk_size)
            .mtime_ms(self.mtime_ms)
            .finish();
        m.size = self.size;
        if self.size > 0 {
            m.chunks.push(self.cid);
        }
        let e = FolderEntry {
            folder: folder.to_owned(),
            path: self.path.clone(),
            fversion: self.fversion,
            deleted: self.deleted,
        };
        (m, e)
    }

    /// Checks that `data` is `size` bytes long and hashes to `cid`.
    ///
    /// # Errors
    /// [`ContentError::ChunkLength`] or the errors of
    /// [`super::verify_chunk`].
    pub fn verify(&self) -> Result<(), ContentError> {
        if self.data.len() as u64 != self.size {
            return Err(ContentError::ChunkLength {
                index: 0,
                expected_bytes: self.size,
                actual_bytes: self.data.len() as u64,
            });
        }
        super::verify_chunk(&self.cid, &self.data)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        cbor::write_head(out, MAJOR_MAP, if self.deleted { 7 } else { 6 });
        cbor::write_text(out, "cid");
        cbor::write_cid(out, &self.cid);
        cbor::write_text(out, "data");
        cbor::write_head(out, cbor::MAJOR_BYTES, self.data.len() as u64);
        out.extend_from_slice(&self.data);
        cbor::write_text(out, "path");
        cbor::write_text(out, &self.path);
        cbor::write_text(out, "size");
        cbor::write_head(out, cbor::MAJOR_UINT, self.size);
        if self.deleted {
            cbor::write_text(out, "deleted");
            cbor::write_head(out, cbor::MAJOR_UINT, 1);
        }
        cbor::write_text(out, "fversion");
        cbor::write_head(out, cbor::MAJOR_UINT, self.fversion);
        cbor::write_text(out, "mtime_ms");
        cbor::write_head(out, cbor::MAJOR_UINT, self.mtime_ms);
    }

    fn decode(r: &mut Reader<'_>, input: &Bytes) -> Result<PackEntry, ContentError> {
        let n = r.expect(MAJOR_MAP, "expected a pack entry map")?;
        if !(6..=7).contains(&n) {
            return Err(r.err("a pack entry has 6 or 7 keys"));
        }
        let mut keys = [
            "cid", "data", "path", "size", "deleted", "fversion", "mtime_ms",
        ]
        .iter();
        let mut e = PackEntry::new(String::new(), 0, 0, Bytes::new());
        for _ in 0..n {
            let at = r.pos();
            let key = r.text()?;
            // Keys in DAG-CBOR order; only `deleted` may be left out.
            let want = match keys.next() {
                Some(&"deleted") if key != "deleted" => keys.next(),
                k => k,
            };
            if want != Some(&key) {
                return Err(ContentError::MalformedManifest {
                    offset: at,
                    reason: "unexpected or unsorted pack entry key",
                });
            }
            match key {
                "cid" => e.cid = r.cid()?,
                "data" => {
                    let (from, to) = r.byte_span()?;
                    e.data = input.slice(from..to);
                }
                "path" => e.path = r.text()?.to_owned(),
                "size" => e.size = r.uint()?,
                "deleted" => {
                    if r.uint()? != 1 {
                        return Err(r.err("`deleted` must be 1 when present"));
                    }
                    e.deleted = true;
                }
                "fversion" => e.fversion = r.uint()?,
                _ => e.mtime_ms = r.uint()?,
            }
        }
        if (n == 7) != e.deleted {
            return Err(r.err("a pack entry lacks a key"));
        }
        Ok(e)
    }
}

/// Small files of one folder travelling together (spec/sync.md §Packs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pack {
    /// The synced folder's name.
    pub folder: String,
    /// The sender's chunk size in bytes: every entry is at most this long
    /// (one chunk), and [`PackEntry::as_manifest`] uses it.
    pub chunk_size: u32,
    /// The files, in the order the sender packed them.
    pub entries: Vec<PackEntry>,
}

impl Pack {
    /// The wire form: a manifest named [`PACK_NAME`] (size 0, no chunks)
    /// with the `pack` key holding the body. Its CID
    /// ([`Pack::cid_of`] these bytes) names the pack.
    pub fn encode(&self) -> Vec<u8> {
        let body_len: usize = self
            .entries
            .iter()
            .map(|e| e.data.len() + e.path.len() + 128)
            .sum();
        let mut body = Vec::with_capacity(body_len + 64);
        cbor::write_head(&mut body, MAJOR_MAP, 2);
        cbor::write_text(&mut body, "files");
        cbor::write_head(&mut body, MAJOR_ARRAY, self.entries.len() as u64);
        for e in &self.entries {
            e.encode(&mut body);
        }
        cbor::write_text(&mut body, "folder");
        cbor::write_text(&mut body, &self.folder);
        ManifestBuilder::new(PACK_NAME, self.chunk_size)
            .finish()
            .encode_parts(None, Some(&body))
    }

    /// The CID naming the wire form `encoded` (CIDv1 dag-cbor sha2-256, as
    /// for any manifest).
    pub fn cid_of(encoded: &[u8]) -> Cid {
        super::cid::dag_cbor_cid(encoded)
    }

    /// Decodes a pack from its wire form. `Ok(None)` if `bytes` is a valid
    /// manifest without the `pack` key (an ordinary file). Entries are
    /// not verified here (see [`PackEntry::verify`]), so one bad file does
    /// not hide the others; the layout is.
    ///
    /// # Errors
    /// Those of [`Manifest::decode`]; [`ContentError::MalformedManifest`]
    /// for a body that is not the layout above, more than
    /// [`MAX_PACK_ENTRIES`] entries, or a manifest part that is not
    /// [`PACK_NAME`] with size 0 and no chunks.
    pub fn decode(bytes: &Bytes) -> Result<Option<Pack>, ContentError> {
        let (m, _, body) = Manifest::decode_parts(bytes, usize::MAX)?;
        let Some(body) = body else {
            return Ok(None);
        };
        let bad = |reason| ContentError::MalformedManifest { offset: 0, reason };
        if m.name != PACK_NAME || m.size != 0 {
            return Err(bad("a pack's manifest part must be an empty sync-pack"));
        }
        let offset = body.as_ptr() as usize - bytes.as_ptr() as usize;
        let input = bytes.slice(offset..offset + body.len());
        let mut r = Reader::new(&input);
        if r.expect(MAJOR_MAP, "expected the pack body map")? != 2 || r.text()? != "files" {
            return Err(bad("a pack body is {files, folder}"));
        }
        let n = r.expect(MAJOR_ARRAY, "expected the pack file array")?;
        if n > MAX_PACK_ENTRIES as u64 {
            return Err(bad("too many files in a pack"));
        }
        let mut entries = Vec::with_capacity((n as usize).min(r.remaining() / 64));
        for _ in 0..n {
            entries.push(PackEntry::decode(&mut r, &input)?);
        }
        if r.text()? != "folder" {
            return Err(bad("a pack body is {files, folder}"));
        }
        let folder = r.text()?.to_owned();
        if r.remaining() != 0 {
            return Err(r.err("trailing bytes after the pack body"));
        }
        Ok(Some(Pack {
            folder,
            chunk_size: m.chunk_size,
            entries,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack() -> Pack {
        Pack {
            folder: "photos".into(),
            chunk_size: 1024,
            entries: vec![
                PackEntry::new("a/b.txt".into(), 7, 9, Bytes::from_static(b"hello")),
                PackEntry::new("empty".into(), 1, 2, Bytes::new()),
                PackEntry::tombstone("gone.txt".into(), 3, 4),
            ],
        }
    }

    #[test]
    fn packs_round_trip_and_are_manifests_with_a_cid() {
        let p = pack();
        let bytes = Bytes::from(p.encode());
        assert_eq!(Pack::decode(&bytes).unwrap(), Some(p.clone()));
        // Every agent reads it as an empty manifest.
        let m = Manifest::decode(&bytes, 10).unwrap();
        assert_eq!((m.name.as_str(), m.size, m.chunks.len()), (PACK_NAME, 0, 0));
        // An ordinary manifest is not a pack.
        let plain = Bytes::from(ManifestBuilder::new("x", 1024).finish().encode());
        assert_eq!(Pack::decode(&plain).unwrap(), None);
        // The equivalent single-file manifest has the file CID as its chunk.
        let (m, e) = p.entries[0].as_manifest("photos", 1024);
        assert_eq!(m.chunks, vec![p.entries[0].cid]);
        assert!(e.validate(&m.name, m.size, 1).is_ok());
        assert!(p.entries.iter().all(|e| e.verify().is_ok()));
    }

    #[test]
    fn damaged_packs_do_not_decode_and_bad_bytes_fail_verify() {
        let mut p = pack();
        p.entries[0].data = Bytes::from_static(b"HELLO");
        let bytes = Bytes::from(p.encode());
        let back = Pack::decode(&bytes).unwrap().unwrap();
        assert!(back.entries[0].verify().is_err());
        let good = pack().encode();
        for cut in [1, good.len() / 2, good.len() - 1] {
            assert!(Pack::decode(&Bytes::from(good[..cut].to_vec())).is_err());
        }
    }
}
