//! Receiver side of the delta transfer (spec/sync.md §Delta): a new
//! version of a synced file lists chunks the sender did not send again
//! because this node already has them in its copy of the file. This loop
//! finds such incomplete folder manifests and hands the agent those
//! chunks, read from the local copy and checked against their CIDs, as
//! local bundles addressed to this node (so the agent's usual reassembly
//! takes over).

use super::Shared;
use super::sync::Batcher;
use crate::agent::Submission;
use crate::content::{self, Chunker, sanitize_relative_path};
use crate::store::records::{FileHead, FileRole};
use crate::sync::scan::FileStat;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Least time between two looks at the store's delivered count: a busy
/// node changes its store after nearly every event.
const MIN_GAP: Duration = Duration::from_secs(1);
/// How often manifests still missing chunks are looked at again even if
/// nothing was delivered (their local copy may have appeared meanwhile).
const RETRY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Seen {
    /// The store's delivered count at the previous look.
    delivered: Option<u64>,
    /// When the file table was last read.
    looked: Option<Instant>,
    /// Incomplete folder manifests already tried, with the stat of their
    /// local copy then (`None`: no copy): tried again only when it changes.
    tried: HashMap<Vec<u8>, Option<FileStat>>,
    /// What each incomplete destination manifest says, decoded once (a
    /// 4 GiB file's manifest lists 16 384 chunks): its folder entry and
    /// chunk size, `None` if it is not a live folder file.
    entries: HashMap<Vec<u8>, Option<Entry>>,
}

/// The parts of a folder manifest the delta look needs.
struct Entry {
    folder: content::FolderEntry,
    chunk_size: u32,
}

impl Entry {
    /// Read without building the chunk list (the manifest was validated
    /// when it arrived).
    fn of(f: &FileHead) -> Option<Entry> {
        match content::manifest::peek_folder(&f.manifest) {
            Ok(Some((folder, chunk_size))) if !folder.deleted => Some(Entry { folder, chunk_size }),
            _ => None,
        }
    }
}

/// Runs until the node stops. Looks when the store changed (at most once
/// per [`MIN_GAP`]), and every [`RETRY`] while some manifest waits for
/// chunks; sleeps otherwise.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.changes.subscribe();
    let mut seen = Seen::default();
    let mut last = tokio::time::Instant::now();
    let mut first = true; // at once: manifests left waiting by the last run
    loop {
        if !first {
            let waiting = !seen.tried.is_empty();
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                () = tokio::time::sleep(RETRY), if waiting => {}
            }
        }
        first = false;
        tokio::time::sleep_until(last + MIN_GAP).await;
        changes.borrow_and_update();
        last = tokio::time::Instant::now();
        let s = shared.clone();
        match tokio::task::spawn_blocking(move || {
            supply_once(&s, &mut seen);
            seen
        })
        .await
        {
            Ok(back) => seen = back,
            Err(_) => return,
        }
    }
}

fn supply_once(shared: &Shared, seen: &mut Seen) {
    let Ok(st) = shared.store.stats() else {
        return;
    };
    let retry_due = !seen.tried.is_empty() && seen.looked.is_none_or(|t| t.elapsed() >= RETRY);
    if seen.delivered == Some(st.delivered) && !retry_due {
        return;
    }
    seen.delivered = Some(st.delivered);
    seen.looked = Some(Instant::now());
    let Ok(files) = shared.store.file_heads() else {
        return;
    };
    let mut batch = Batcher::new(shared);
    let mut still: HashMap<Vec<u8>, Option<FileStat>> = HashMap::new();
    let mut entries = HashMap::new();
    for f in files {
        if f.role != FileRole::Destination || f.path.is_some() {
            continue;
        }
        let entry = seen
            .entries
            .remove(&f.manifest_cid)
            .unwrap_or_else(|| Entry::of(&f));
        let Some(entry) = entries.entry(f.manifest_cid.clone()).or_insert(entry) else {
            continue;
        };
        let prev = seen.tried.get(&f.manifest_cid).copied();
        match supply_file(shared, &f, entry, prev, &mut batch) {
            Ok(Attempt::Complete) => {}
            Ok(Attempt::Tried { copy, supplied }) => {
                if supplied > 0 {
                    info!(file = %entry.folder.path, chunks = supplied, "chunks taken from the local copy");
                }
                still.insert(f.manifest_cid.clone(), copy);
            }
            Err(e) => warn!(file = %entry.folder.path, error = %e, "cannot read the local copy"),
        }
    }
    seen.tried = still;
    seen.entries = entries;
    if let Err(e) = batch.finish() {
        warn!(error = %e, "cannot store chunks from local copies");
    }
}

/// What [`supply_file`] found.
enum Attempt {
    /// No chunk missing.
    Complete,
    /// Chunks are missing; the local copy's stat (`None`: none) and how
    /// many chunks were taken from it.
    Tried {
        copy: Option<FileStat>,
        supplied: usize,
    },
}

/// Submits the missing chunks of `f` (a live folder file, `entry`) found
/// in the local copy, unless there is no copy or it still has the stat
/// `prev` of the previous attempt. Which chunks are missing is looked up
/// only then: with no new copy to read, a look costs a few system calls,
/// however many chunks the file has.
fn supply_file(
    shared: &Shared,
    f: &FileHead,
    entry: &Entry,
    prev: Option<Option<FileStat>>,
    batch: &mut Batcher<'_>,
) -> anyhow::Result<Attempt> {
    let source = f.manifest_bundle.source.to_string();
    let root = shared
        .sync
        .accept_dir(&source)
        .unwrap_or_else(|| shared.inbox.clone());
    let local = local_copy(&root, &entry.folder.folder, &entry.folder.path);
    let copy = match &local {
        Some(p) => Some(FileStat::of(&std::fs::metadata(p)?)),
        None => None,
    };
    let (Some(local), false) = (local, prev == Some(copy)) else {
        return Ok(Attempt::Tried { copy, supplied: 0 });
    };
    let Some(record) = shared.store.file(&f.manifest_cid)? else {
        return Ok(Attempt::Complete);
    };
    let mut missing = HashSet::new();
    for cid in &record.chunks {
        if !shared.store.inbox_has(cid)? {
            missing.insert(cid.clone());
        }
    }
    if missing.is_empty() {
        return Ok(Attempt::Complete);
    }
    let mut n = 0;
    for chunk in Chunker::new(std::fs::File::open(&local)?, entry.chunk_size)? {
        let chunk = chunk?;
        // The chunker computed the CID from the bytes: a match is verified.
        if missing.remove(&chunk.cid.to_bytes()) {
            n += 1;
            batch.push(Submission::Data {
                destination: f.destination.clone(),
                payload: chunk.data.clone(),
                lifetime_ms: None,
                flags: 0,
                content_cid: Some(chunk.cid.to_bytes()),
                expires_by_ms: None,
            })?;
        }
    }
    Ok(Attempt::Tried { copy, supplied: n })
}

/// `root/folder/path` if every component exists and none is a symlink and
/// the last is a regular file.
fn local_copy(root: &Path, folder: &str, path: &str) -> Option<PathBuf> {
    let parts = sanitize_relative_path(path).ok()?;
    let mut cur = root.join(folder);
    let top = std::fs::symlink_metadata(&cur).ok()?;
    if !top.is_dir() {
        return None;
    }
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        cur.push(p);
        let m = std::fs::symlink_metadata(&cur).ok()?;
        let ok = if i == last { m.is_file() } else { m.is_dir() };
        if !ok {
            return None;
        }
    }
    Some(cur)
}
