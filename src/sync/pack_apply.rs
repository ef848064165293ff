//! Writing a received pack (spec/sync.md §Packs) under an accepting
//! directory: every file gets the checks of a single folder file
//! (`receive::prepare`: path rules, versions, symlinks, conflict
//! copies, tombstones) and is verified against its CID; then all of them
//! share one durability barrier instead of one fsync each.
//!
//! Order: write every file to a temporary name (no fsync) → barrier (the
//! data and the temporary names are durable) → rename each into place
//! (conflict copies first) and carry out tombstones → barrier (the
//! renames are durable) → one commit of the `received-0` rows. A crash
//! anywhere before the end leaves only `.spore-partial-*` files (removed at
//! start-up) or already renamed files whose content equals the pack's, so
//! applying the pack again (the node does after a restart) writes the same
//! tree with no conflict copy.
//!
//! A bad entry (hostile path, bytes that do not match its CID, a symlink
//! in the way) is refused alone, with its reason; the other files land.

use super::SyncError;
use super::receive::{Prepared, Step, prepare, received, sync_dir};
use super::state::{ReceivedFile, SyncState};
use crate::content::assemble::TEMP_FILE_PREFIX;
use crate::content::pack::Pack;
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What [`apply_pack`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PackReport {
    /// Files written (new or replaced).
    pub written: Vec<PathBuf>,
    /// Locally changed copies kept under a conflict name.
    pub conflicts: Vec<PathBuf>,
    /// Tombstones carried out (file removed, or already absent).
    pub deleted: usize,
    /// Tombstones for locally changed files: kept.
    pub delete_skipped: usize,
    /// Versions not newer than the one here.
    pub stale: usize,
    /// Refused entries: (path as sent, reason).
    pub refused: Vec<(String, String)>,
}

impl PackReport {
    /// One line for logs and the file record: counts and the first refusals.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "pack: {} written, {} conflict copies, {} deleted, {} kept, {} stale, {} refused",
            self.written.len(),
            self.conflicts.len(),
            self.deleted,
            self.delete_skipped,
            self.stale,
            self.refused.len()
        );
        for (path, why) in self.refused.iter().take(3) {
            s.push_str(&format!("; {path:?}: {why}"));
        }
        s
    }
}

/// An entry that passed the checks, waiting for the barrier.
struct Pending {
    prep: Prepared,
    /// The temporary file holding the content (`Write` only).
    temp: Option<tempfile::TempPath>,
    row: ReceivedFile,
}

/// Applies `pack` under `root` (the file lands in `root/<folder>/<path>`)
/// for the sender `source` at `now_ms` (conflict names), with one
/// durability barrier for all files; see the module docs.
///
/// # Errors
/// [`SyncError::Io`] or [`SyncError::State`]: the pack is not recorded
/// as applied and may be applied again (temporary files are removed).
/// Refused entries are not errors; they are in [`PackReport::refused`].
pub fn apply_pack(
    root: &Path,
    pack: &Pack,
    source: &str,
    now_ms: u64,
    state: &SyncState,
) -> Result<PackReport, SyncError> {
    let mut report = PackReport::default();
    let mut pending = Vec::new();
    let mut seen = HashSet::new();
    for e in &pack.entries {
        let (m, fe) = e.as_manifest(&pack.folder, pack.chunk_size);
        if !seen.insert(e.path.as_str()) {
            report
                .refused
                .push((e.path.clone(), "path twice in one pack".into()));
            continue;
        }
        if let Err(err) = e.verify() {
            report.refused.push((e.path.clone(), err.to_string()));
            continue;
        }
        let prep = match prepare(root, &m, &fe, source, now_ms, state) {
            Ok(p) => p,
            Err(SyncError::Refused { reason, .. }) => {
                report.refused.push((e.path.clone(), reason));
                continue;
            }
            Err(other) => return Err(other),
        };
        let temp = match &prep.step {
            Step::Stale => {
                report.stale += 1;
                continue;
            }
            Step::Write { .. } => Some(write_temp(&prep.parent, &e.data)?),
            Step::Delete | Step::DeleteSkipped => None,
        };
        let row = received(&fe, None, &m);
        pending.push(Pending { prep, temp, row });
    }
    let temps: Vec<&Path> = pending.iter().filter_map(|p| p.temp.as_deref()).collect();
    barrier(root, &temps)?;
    let mut dirs = BTreeSet::new();
    let mut rows = Vec::with_capacity(pending.len());
    for Pending { prep, temp, row } in pending {
        dirs.insert(prep.parent.clone());
        let key = prep.key.clone();
        rows.push((key, finish(prep, temp, row, &mut report)?));
    }
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    barrier_dirs(root, &dirs)?;
    state.put_received_all(&rows)?;
    Ok(report)
}

/// Renames one entry into place (or carries out its tombstone); returns
/// its `received-0` row.
fn finish(
    prep: Prepared,
    temp: Option<tempfile::TempPath>,
    mut row: ReceivedFile,
    report: &mut PackReport,
) -> Result<ReceivedFile, SyncError> {
    let Prepared {
        target,
        current,
        step,
        ..
    } = prep;
    match (step, temp) {
        (Step::Write { conflict }, Some(temp)) => {
            if let Some(c) = conflict {
                std::fs::rename(&target, &c).map_err(SyncError::io("rename", &target))?;
                report.conflicts.push(c);
            }
            temp.persist(&target)
                .map_err(|e| SyncError::io("rename", &target)(e.error))?;
            let meta =
                std::fs::symlink_metadata(&target).map_err(SyncError::io("stat", &target))?;
            row.stat = Some(super::scan::FileStat::of(&meta));
            report.written.push(target);
        }
        (Step::Delete, _) => {
            if current.is_some() {
                std::fs::remove_file(&target).map_err(SyncError::io("remove", &target))?;
            }
            report.deleted += 1;
        }
        _ => report.delete_skipped += 1,
    }
    Ok(row)
}

/// Writes `data` to a new `.spore-partial-*` file in `dir` (not synced).
fn write_temp(dir: &Path, data: &[u8]) -> Result<tempfile::TempPath, SyncError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_FILE_PREFIX)
        .tempfile_in(dir)
        .map_err(SyncError::io("create temp file in", dir))?;
    tmp.as_file_mut()
        .write_all(data)
        .map_err(SyncError::io("write", tmp.path()))?;
    // Closes the file (a pack can hold thousands) but keeps the name; the
    // file is removed if it is dropped before `persist`.
    Ok(tmp.into_temp_path())
}

/// Makes the data of every file in `files` durable. On Linux one
/// `syncfs(2)` of the file system holding `root` (one journal commit
/// instead of one per file; since Linux 5.8 it reports write-back errors);
/// elsewhere an fsync of each file.
fn barrier(root: &Path, files: &[&Path]) -> Result<(), SyncError> {
    if files.is_empty() {
        return Ok(());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        syncfs(root)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = root;
        for f in files {
            std::fs::File::open(f)
                .and_then(|f| f.sync_all())
                .map_err(SyncError::io("fsync", f))?;
        }
        Ok(())
    }
}

/// Makes the renames in `dirs` durable: `syncfs(2)` on Linux, an fsync of
/// each directory elsewhere.
fn barrier_dirs(root: &Path, dirs: &[&Path]) -> Result<(), SyncError> {
    if dirs.is_empty() {
        return Ok(());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        syncfs(root)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = root;
        dirs.iter().try_for_each(|d| sync_dir(d))
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn syncfs(root: &Path) -> Result<(), SyncError> {
    let dir = std::fs::File::open(root).map_err(SyncError::io("open", root))?;
    nix::unistd::syncfs(&dir)
        .map_err(|e| SyncError::io("syncfs", root)(std::io::Error::from(e)))?;
    // The root itself (its entry for the folder may be new).
    sync_dir(root)
}
