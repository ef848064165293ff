//! Incoming files written as their chunks arrive.
//!
//! The agent offers every chunk of a known incoming file that is durable
//! here as [`crate::agent::Action::PrefillChunk`]. One writer thread
//! (`spore-stage`) writes it into the file's staged temporary file
//! ([`Staged`], `.spore-partial-*` beside the file's final place), so
//! reassembly only fills the chunks that were not staged (those that came
//! before their manifest), fsyncs and renames: the file's bytes are not read
//! back from the store and written in one go after the last chunk.
//!
//! Staging is only a head start. The chunks stay in the store until the
//! file is recorded as written, so a staged file that is dropped (limits,
//! write error, restart: partial files are removed at start) costs a full
//! write from the store, never data.

use super::sync::SyncNode;
use crate::content::pack::Pack;
use crate::content::{Manifest, Staged};
use crate::store::Store;
use crate::sync::receive::file_dir;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Most files staged at once; staging one more drops the one written
/// least recently.
const MAX_STAGED_FILES: usize = 64;
/// A staged file not written to for this long is dropped.
const IDLE_DROP: Duration = Duration::from_secs(600);
/// Most manifests remembered as not to be staged (then forgotten at once).
const MAX_UNSTAGED: usize = 4096;
/// Longest wait of [`Stager::take`] for the writer thread.
const TAKE_TIMEOUT: Duration = Duration::from_secs(120);

enum Job {
    Write {
        manifest: Vec<u8>,
        offsets: Vec<u64>,
        bytes: Bytes,
    },
    Take {
        manifest: Vec<u8>,
        reply: mpsc::SyncSender<Option<Staged>>,
    },
}

/// Handle to the staging writer thread (it stops when the handle drops).
pub(crate) struct Stager {
    tx: mpsc::Sender<Job>,
}

/// Where the files of the node land: what the writer needs to find the
/// directory of a manifest's file.
pub(crate) struct Places {
    pub store: Arc<Store>,
    pub inbox: PathBuf,
    pub sync: Arc<SyncNode>,
}

impl Stager {
    /// Starts the writer thread.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub(crate) fn start(places: Places) -> std::io::Result<Stager> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("spore-stage".into())
            .spawn(move || run(rx, &places))?;
        Ok(Stager { tx })
    }

    /// Queues `bytes` for `offsets` of `manifest`'s staged file (never
    /// blocks).
    pub(crate) fn write(&self, manifest: Vec<u8>, offsets: Vec<u64>, bytes: Bytes) {
        let _ = self.tx.send(Job::Write {
            manifest,
            offsets,
            bytes,
        });
    }

    /// The staged file of `manifest`, after every write queued before this
    /// call; `None` if nothing is staged. Blocks (at most 120 s).
    pub(crate) fn take(&self, manifest: &[u8]) -> Option<Staged> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job::Take {
            manifest: manifest.to_vec(),
            reply,
        };
        self.tx.send(job).ok()?;
        answer.recv_timeout(TAKE_TIMEOUT).ok().flatten()
    }
}

struct Entry {
    staged: Staged,
    last: Instant,
}

fn run(rx: mpsc::Receiver<Job>, places: &Places) {
    let mut files: HashMap<Vec<u8>, Entry> = HashMap::new();
    let mut unstaged: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let job = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                files.retain(|_, e| e.last.elapsed() < IDLE_DROP);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match job {
            Job::Write {
                manifest,
                offsets,
                bytes,
            } => {
                if unstaged.contains(&manifest) {
                    continue;
                }
                if !files.contains_key(&manifest) {
                    let Some(staged) = create(places, &manifest) else {
                        if unstaged.len() >= MAX_UNSTAGED {
                            unstaged.clear();
                        }
                        unstaged.insert(manifest);
                        continue;
                    };
                    make_room(&mut files);
                    let last = Instant::now();
                    files.insert(manifest.clone(), Entry { staged, last });
                }
                write(&mut files, manifest, &offsets, &bytes);
            }
            Job::Take { manifest, reply } => {
                unstaged.remove(&manifest);
                let _ = reply.send(files.remove(&manifest).map(|e| e.staged));
            }
        }
    }
}

/// Writes one chunk; a failed write drops the staged file.
fn write(files: &mut HashMap<Vec<u8>, Entry>, manifest: Vec<u8>, offsets: &[u64], bytes: &[u8]) {
    let Some(e) = files.get_mut(&manifest) else {
        return;
    };
    e.last = Instant::now();
    if let Err(err) = e.staged.write_at(offsets, bytes) {
        warn!(error = %err, "cannot stage a received chunk; the file is written from the store instead");
        files.remove(&manifest);
    }
}

/// Drops the least recently written staged file if the table is full.
fn make_room(files: &mut HashMap<Vec<u8>, Entry>) {
    if files.len() < MAX_STAGED_FILES {
        return;
    }
    let oldest = files
        .iter()
        .min_by_key(|(_, e)| e.last)
        .map(|(m, _)| m.clone());
    if let Some(m) = oldest {
        debug!("too many files staged; dropping the least recently written");
        files.remove(&m);
    }
}

/// A new staged file for `manifest` in its file's directory, holding the
/// chunks of the file already in the store (they came before their
/// manifest); `None` for a file not to stage (unknown, a pack, a path
/// refused, an I/O error).
fn create(places: &Places, manifest: &[u8]) -> Option<Staged> {
    let (dir, m) = staging_dir(places, manifest)?;
    let mut staged = match Staged::create_in(&dir) {
        Ok(s) => s,
        Err(e) => {
            warn!(dir = %dir.display(), error = %e, "cannot stage a received file");
            return None;
        }
    };
    if let Err(e) = catch_up(&places.store, &m, &mut staged) {
        warn!(file = %m.name, error = %e, "cannot stage a received file; it is written from the store instead");
        return None;
    }
    Some(staged)
}

/// Writes into `staged` every chunk of `m` that the store already holds
/// for the inbox, each checked against the manifest's length (the store
/// checked it against its CID on arrival).
fn catch_up(store: &Store, m: &Manifest, staged: &mut Staged) -> anyhow::Result<()> {
    let step = u64::from(m.chunk_size);
    for (index, cid) in (0u64..).zip(&m.chunks) {
        let key = cid.to_bytes();
        if !store.inbox_has(&key)? {
            continue;
        }
        let Some(bytes) = store.chunk(&key)? else {
            continue;
        };
        if Some(bytes.len() as u64) == m.chunk_len_bytes(index) {
            staged.write_at(&[index.saturating_mul(step)], &bytes)?;
        }
    }
    Ok(())
}

/// The directory a manifest's file will be written in (created as needed:
/// the folder file's directory under its accept directory, or the inbox),
/// and the manifest.
fn staging_dir(places: &Places, manifest: &[u8]) -> Option<(PathBuf, Manifest)> {
    let f = places.store.file(manifest).ok()??;
    let (m, entry) = Manifest::decode_with_folder(&f.manifest, usize::MAX).ok()?;
    let Some(entry) = entry else {
        if matches!(Pack::decode(&Bytes::from(f.manifest)), Ok(Some(_))) {
            return None;
        }
        std::fs::create_dir_all(&places.inbox).ok()?;
        return Some((places.inbox.clone(), m));
    };
    let source = f.manifest_bundle.source.to_string();
    let root = places
        .sync
        .accept_dir(&source)
        .unwrap_or_else(|| places.inbox.clone());
    let dir = file_dir(&root, &m, &entry).ok()?;
    Some((dir, m))
}
