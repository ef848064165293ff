//! The folder extension of a manifest (`spec/sync.md`): which synced
//! folder a file belongs to, its relative path there, its version and
//! whether it is a deletion (tombstone).

use super::{ContentError, sanitize_file_name};

/// Longest accepted relative path, in bytes (Linux `PATH_MAX` is 4096;
/// the receiver's own directory prefix needs room too).
pub const MAX_RELATIVE_PATH_BYTES: usize = 1024;

/// Most components (directories + file name) in a relative path.
pub const MAX_PATH_COMPONENTS: usize = 32;

/// The optional folder keys of a manifest: `folder`, `path`, `fversion`,
/// `deleted` (spec/sync.md §Manifest). A manifest without them is a plain
/// single-file manifest (spec/manifest.md) and goes to the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderEntry {
    /// The synced folder's name (one safe path component, see
    /// [`sanitize_file_name`]).
    pub folder: String,
    /// Relative path inside the folder, `/`-separated (see
    /// [`sanitize_relative_path`]); its last component equals the
    /// manifest's `name`.
    pub path: String,
    /// File version, monotonic per (folder, path) at the sender: a
    /// receiver replaces its copy only with a higher version.
    pub fversion: u64,
    /// `true` for a tombstone: the file was deleted at the sender (the
    /// manifest then lists no chunks and has size 0).
    pub deleted: bool,
}

impl FolderEntry {
    /// Checks the folder name, the path, the `name` ↔ last component
    /// agreement, and that a tombstone carries no content.
    ///
    /// # Errors
    /// [`ContentError::InvalidFileName`] (folder, path or mismatch) or
    /// [`ContentError::InconsistentSize`] for a tombstone with content.
    pub fn validate(&self, name: &str, size: u64, chunk_count: u64) -> Result<(), ContentError> {
        sanitize_file_name(&self.folder)?;
        let parts = sanitize_relative_path(&self.path)?;
        if parts.last().map(String::as_str) != Some(name) {
            return Err(ContentError::InvalidFileName {
                reason: "the path's last component differs from the manifest name",
            });
        }
        if self.deleted && (size != 0 || chunk_count != 0) {
            return Err(ContentError::InconsistentSize {
                size_bytes: size,
                chunk_count,
                chunk_size_bytes: 0,
            });
        }
        Ok(())
    }
}

/// Checks a relative path received in a manifest and returns its
/// components.
///
/// Refused (never rewritten): an empty path, a leading `/` (absolute), a
/// trailing `/`, empty, `.` or `..` components, `\`, NUL and other control
/// characters (each component must pass [`sanitize_file_name`]), more than
/// [`MAX_PATH_COMPONENTS`] components, more than
/// [`MAX_RELATIVE_PATH_BYTES`] bytes, and components starting with
/// `.spore-` (reserved for the receiver's temporary files).
///
/// # Errors
/// [`ContentError::InvalidFileName`] with the reason.
pub fn sanitize_relative_path(path: &str) -> Result<Vec<String>, ContentError> {
    let bad = |reason| Err(ContentError::InvalidFileName { reason });
    if path.is_empty() {
        return bad("empty path");
    }
    if path.len() > MAX_RELATIVE_PATH_BYTES {
        return bad("path too long");
    }
    if path.starts_with('/') {
        return bad("absolute path");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        if parts.len() == MAX_PATH_COMPONENTS {
            return bad("too many path components");
        }
        let part = sanitize_file_name(part)?;
        if part.starts_with(".spore-") {
            return bad("path component uses the reserved prefix .spore-");
        }
        parts.push(part);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Chunker, Manifest, ManifestBuilder};

    fn manifest(name: &str, data: &[u8]) -> Manifest {
        let mut b = ManifestBuilder::new(name, 1024).mtime_ms(7);
        for c in Chunker::new(data, 1024).unwrap() {
            b.push(&c.unwrap());
        }
        b.finish()
    }

    #[test]
    fn folder_keys_round_trip_and_plain_manifests_still_decode() {
        let m = manifest("b.txt", &[1u8; 3000]);
        let e = FolderEntry {
            folder: "photos".into(),
            path: "a/b.txt".into(),
            fversion: 1_700_000_000_000,
            deleted: false,
        };
        let bytes = m.encode_with(Some(&e));
        let (back, entry) = Manifest::decode_with_folder(&bytes, 100).unwrap();
        assert_eq!((back, entry), (m.clone(), Some(e.clone())));
        // The plain decoder reads the file part of a folder manifest, and
        // single-file manifests are unchanged.
        assert_eq!(Manifest::decode(&bytes, 100).unwrap(), m);
        assert_eq!(m.encode_with(None), m.encode());
        assert_eq!(
            Manifest::decode_with_folder(&m.encode(), 100).unwrap().1,
            None
        );
        assert_ne!(m.cid_with(Some(&e)), m.cid());
        let tomb = manifest("b.txt", b"");
        let t = FolderEntry { deleted: true, ..e };
        let (_, got) = Manifest::decode_with_folder(&tomb.encode_with(Some(&t)), 100).unwrap();
        assert!(got.unwrap().deleted);
    }

    #[test]
    fn peek_folder_reads_the_folder_keys_and_chunk_size_without_the_chunks() {
        use crate::content::manifest::peek_folder;
        let m = manifest("b.txt", &[2u8; 5000]);
        let e = FolderEntry {
            folder: "photos".into(),
            path: "a/b.txt".into(),
            fversion: 3,
            deleted: false,
        };
        let bytes = m.encode_with(Some(&e));
        assert_eq!(peek_folder(&bytes).unwrap(), Some((e.clone(), 1024)));
        assert_eq!(peek_folder(&m.encode()).unwrap(), None);
        // Truncated inside the chunk list, or a chunk that is not a CID link.
        assert!(peek_folder(&bytes[..bytes.len() / 2]).is_err());
        let mut bad = bytes.clone();
        let at = bad
            .windows(2)
            .position(|w| w == [0xd8, 0x2a])
            .expect("a tag-42 head");
        bad[at] = 0x18; // an unsigned integer where a CID link belongs
        assert_eq!(
            Manifest::decode_with_folder(&bytes, 100).unwrap().1,
            Some(e)
        );
        assert!(peek_folder(&bad).is_err());
    }

    #[test]
    fn hostile_folder_manifests_do_not_decode() {
        let m = manifest("x", b"abc");
        for path in ["../../etc/x", "/etc/x", "a/../x", "y"] {
            let e = FolderEntry {
                folder: "f".into(),
                path: path.into(),
                fversion: 1,
                deleted: false,
            };
            assert!(
                Manifest::decode_with_folder(&m.encode_with(Some(&e)), 100).is_err(),
                "{path}"
            );
        }
        let e = FolderEntry {
            folder: "..".into(),
            path: "x".into(),
            fversion: 1,
            deleted: false,
        };
        assert!(Manifest::decode_with_folder(&m.encode_with(Some(&e)), 100).is_err());
        let mut huge = m.clone();
        huge.size = 10_000_000_000;
        let e = FolderEntry {
            folder: "f".into(),
            ..e
        };
        assert!(Manifest::decode_with_folder(&huge.encode_with(Some(&e)), 100).is_err());
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in [
            "",
            "/etc/passwd",
            "../../etc/x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            ".spore-partial-x",
            "..",
        ] {
            assert!(sanitize_relative_path(p).is_err(), "{p:?} accepted");
        }
        let long = "a/".repeat(40) + "b";
        assert!(sanitize_relative_path(&long).is_err());
    }

    #[test]
    fn ordinary_paths_are_kept() {
        let parts = sanitize_relative_path("docs/été/naïve file.txt").unwrap();
        assert_eq!(parts, ["docs", "été", "naïve file.txt"]);
    }

    #[test]
    fn name_must_match_last_component() {
        let e = FolderEntry {
            folder: "f".into(),
            path: "a/b.txt".into(),
            fversion: 1,
            deleted: false,
        };
        assert!(e.validate("b.txt", 0, 0).is_ok());
        assert!(e.validate("c.txt", 0, 0).is_err());
        let t = FolderEntry { deleted: true, ..e };
        assert!(t.validate("b.txt", 5, 1).is_err());
    }
}
