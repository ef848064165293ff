//! Folder scanning and the diff between what is on disk and what was
//! last sent.

use super::SyncError;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Most files one scan lists (beyond, the rest waits for the next scan).
pub const MAX_SCAN_FILES: usize = 1_000_000;

/// Size and modification time of a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    /// Size, bytes.
    pub size: u64,
    /// Modification time, ns since the Unix epoch.
    pub mtime_ns: u128,
}

impl FileStat {
    /// The stat of `meta`.
    pub fn of(meta: &std::fs::Metadata) -> FileStat {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        FileStat {
            size: meta.len(),
            mtime_ns,
        }
    }

    /// Modification time, ms since the Unix epoch.
    pub fn mtime_ms(&self) -> u64 {
        (self.mtime_ns / 1_000_000) as u64
    }
}

/// Lists the regular files under `root` by `/`-separated relative path.
/// Symbolic links are not followed (and not listed), nor are files whose
/// path is not UTF-8 or that start with `.spore-` (temporary files).
///
/// # Errors
/// [`SyncError::Io`] if `root` cannot be read; unreadable subdirectories
/// are skipped.
pub fn scan_dir(root: &Path) -> Result<BTreeMap<String, FileStat>, SyncError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let top = std::fs::read_dir(root).map_err(SyncError::io("read dir", root))?;
    drop(top);
    while let Some((dir, prefix)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with(".spore-") {
                continue;
            }
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push((e.path(), rel));
            } else if meta.is_file() && out.len() < MAX_SCAN_FILES {
                out.insert(rel, FileStat::of(&meta));
            }
        }
    }
    Ok(out)
}

/// What a scan asks the sender to do for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// New or changed and stable: send a new version.
    Send(String),
    /// Changed too recently: look again after the settle time.
    Unsettled(String),
    /// Gone from disk since it was sent.
    Deleted(String),
}

/// Compares a scan with the last sent stat of each path. A file is
/// settled when its modification time is at least `settle_ms` before
/// `now_ms` (ms since the Unix epoch). `Deleted` is reported only for
/// paths in `sent` that are not tombstones already (`None` stat).
pub fn diff(
    sent: &BTreeMap<String, Option<FileStat>>,
    now: &BTreeMap<String, FileStat>,
    now_ms: u64,
    settle_ms: u64,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (path, st) in now {
        if sent.get(path).and_then(|s| s.as_ref()) == Some(st) {
            continue;
        }
        if st.mtime_ms().saturating_add(settle_ms) > now_ms {
            out.push(Change::Unsettled(path.clone()));
        } else {
            out.push(Change::Send(path.clone()));
        }
    }
    for (path, st) in sent {
        if st.is_some() && !now.contains_key(path) {
            out.push(Change::Deleted(path.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(size: u64, ms: u64) -> FileStat {
        FileStat {
            size,
            mtime_ns: u128::from(ms) * 1_000_000,
        }
    }

    #[test]
    fn diff_finds_new_changed_unsettled_and_deleted() {
        let sent = BTreeMap::from([
            ("same".to_owned(), Some(st(1, 100))),
            ("changed".to_owned(), Some(st(1, 100))),
            ("gone".to_owned(), Some(st(1, 100))),
            ("tomb".to_owned(), None),
        ]);
        let now = BTreeMap::from([
            ("same".to_owned(), st(1, 100)),
            ("changed".to_owned(), st(2, 200)),
            ("new".to_owned(), st(3, 9_500)),
        ]);
        let d = diff(&sent, &now, 10_000, 2_000);
        assert_eq!(
            d,
            vec![
                Change::Send("changed".into()),
                Change::Unsettled("new".into()),
                Change::Deleted("gone".into()),
            ]
        );
    }

    #[test]
    fn scan_skips_symlinks_and_temp_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/x.txt"), b"x").unwrap();
        std::fs::write(d.path().join(".spore-partial-1"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let s = scan_dir(d.path()).unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["a/b/x.txt"]);
    }
}
