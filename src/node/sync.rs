//! The tokio side of folder sync (spec/sync.md): the watcher and rescan
//! loop, sending file versions, writing received folder files, and the
//! sync API.

use super::sync_pack::Packer;
use super::{Command, Shared};
use crate::agent::{Event, Submission};
use crate::bundle::{BundleFlags, Eid};
use crate::content::{self, Chunker, FolderEntry, ManifestBuilder};
use crate::store::records::BundleState;
use crate::sync::receive::{self, Applied};
use crate::sync::registry::{Accept, Outgoing, Registry};
use crate::sync::scan::{self, Change, FileStat};
use crate::sync::state::{SentFile, SyncState};
use crate::sync::{SyncConfig, SyncError, next_version};
use notify::Watcher;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};
use tracing::{error, info, warn};

/// Most submissions in one agent event (one store commit).
const BATCH_ITEMS: usize = 64;
/// Most payload bytes in one agent event.
const BATCH_BYTES: usize = 4 << 20;
/// Batches being stored while the next is read (bounds memory).
const PIPELINE: usize = 3;

/// Sync state shared by the node's tasks.
pub(crate) struct SyncNode {
    pub(super) cfg: SyncConfig,
    registry: Mutex<Registry>,
    pub(super) state: SyncState,
    /// Rescan now (file-system event, API refresh, registration).
    wake: Notify,
    /// (when, bytes handed on) of the previous status call: the measured rate.
    last_sample: Mutex<Option<(Instant, u64)>>,
    /// Files in received packs refused (bad path, bytes, symlink in the way).
    pub(super) pack_refused: std::sync::atomic::AtomicU64,
}

impl SyncNode {
    /// Loads `sync.json` and opens `sync.redb` in `data_dir`.
    pub(crate) fn open(data_dir: &Path, cfg: SyncConfig) -> Result<SyncNode, SyncError> {
        Ok(SyncNode {
            cfg,
            registry: Mutex::new(Registry::load(data_dir)?),
            state: SyncState::open(data_dir)?,
            wake: Notify::new(),
            last_sample: Mutex::new(None),
            pack_refused: Default::default(),
        })
    }

    /// The accept directory for content from `source`, if a rule matches.
    pub(super) fn accept_dir(&self, source: &str) -> Option<PathBuf> {
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.accept_dir(source).map(Path::to_path_buf)
    }

    /// Every accept directory (start-up clean-up).
    pub(super) fn accept_dirs(&self) -> Vec<PathBuf> {
        self.registry().accept.into_iter().map(|a| a.into).collect()
    }

    fn registry(&self) -> Registry {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks the sender loop to rescan every folder now.
    pub(crate) fn refresh(&self) {
        self.wake.notify_one();
    }
}

fn now_ms() -> u64 {
    crate::node::dtn_now().to_unix_ms()
}

/// The sender loop: waits for a file-system event, a refresh or the
/// rescan period; lets changes settle; scans and sends.
pub(crate) async fn run(shared: Arc<Shared>) {
    let sync = shared.sync.clone();
    let wake = sync.clone();
    let mut watcher = match notify::recommended_watcher(move |res| {
        if is_change(&res) {
            wake.refresh();
        }
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(error = %e, "no file-system watcher; relying on the periodic rescan");
            None
        }
    };
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let settle = Duration::from_millis(sync.cfg.settle_ms);
    let rescan = Duration::from_secs(sync.cfg.rescan_s.max(1));
    let mut next = Duration::ZERO; // scan once at start-up
    loop {
        let woke = tokio::time::timeout(next, sync.wake.notified())
            .await
            .is_ok();
        if woke {
            // Settle: wait until no event came for the settle time.
            while tokio::time::timeout(settle, sync.wake.notified())
                .await
                .is_ok()
            {}
        }
        let reg = sync.registry();
        if let Some(w) = watcher.as_mut() {
            for o in &reg.outgoing {
                if watched.insert(o.dir.clone()) {
                    if let Err(e) = w.watch(&o.dir, notify::RecursiveMode::Recursive) {
                        warn!(dir = %o.dir.display(), error = %e, "cannot watch folder");
                    }
                }
            }
        }
        let s = shared.clone();
        let unsettled = tokio::task::spawn_blocking(move || scan_all(&s, &reg))
            .await
            .unwrap_or(false);
        next = if unsettled { settle } else { rescan };
    }
}

/// True if a watcher event may mean a file changed. Reads do not: the
/// scan itself opens and lists the folder, and inotify reports that
/// (`IN_OPEN`, `IN_CLOSE_NOWRITE`), so waking on it would rescan an idle
/// folder every settle period forever. A closed writer does; a watcher
/// error is taken as a change (the scan finds out).
fn is_change(res: &notify::Result<notify::Event>) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match res {
        Ok(ev) => match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        Err(_) => true,
    }
}

/// Scans and sends every outgoing folder; true if some file was unsettled.
fn scan_all(shared: &Shared, reg: &Registry) -> bool {
    let mut unsettled = false;
    for o in &reg.outgoing {
        match scan_folder(shared, o) {
            Ok(u) => unsettled |= u,
            Err(e) => warn!(folder = %o.name, error = %e, "folder scan failed"),
        }
    }
    unsettled
}

fn scan_folder(shared: &Shared, o: &Outgoing) -> anyhow::Result<bool> {
    let sync = &shared.sync;
    let to: Eid = o.to.parse()?;
    let on_disk = scan::scan_dir(&o.dir)?;
    let sent: BTreeMap<String, (Option<FileStat>, SentFile)> = sync
        .state
        .sent_in(&o.name)?
        .into_iter()
        .map(|(p, f)| (p, (f.stat, f)))
        .collect();
    let stats = sent.iter().map(|(p, (s, _))| (p.clone(), *s)).collect();
    let changes = scan::diff(&stats, &on_disk, now_ms(), sync.cfg.settle_ms);
    let mut batch = Batcher::new(shared);
    let mut packer = Packer::new(shared, o, to.clone());
    let mut done = Vec::new();
    let mut unsettled = false;
    for c in changes {
        let (path, deleted) = match c {
            Change::Unsettled(_) => {
                unsettled = true;
                continue;
            }
            Change::Deleted(p) if o.propagate_deletes => (p, true),
            Change::Deleted(_) => continue,
            Change::Send(p) => (p, false),
        };
        let prev = sent.get(&path).map(|(_, f)| f);
        let stat = on_disk.get(&path).copied();
        match pack_small(
            &mut packer,
            &path,
            stat,
            prev,
            deleted,
            &mut batch,
            &mut done,
        ) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                warn!(folder = %o.name, path = %path, error = %e, "cannot send file");
                continue;
            }
        }
        let have = prev.map_or_else(HashSet::new, |p| delivered_chunks(shared, p));
        let prev = prev.map(|f| f.fversion);
        match build_version(o, &path, stat, prev, deleted, &to, &have, &mut batch) {
            Ok(f) => done.push((path, f)),
            Err(e) => warn!(folder = %o.name, path = %path, error = %e, "cannot send file"),
        }
    }
    packer.flush(&mut batch, &mut done)?;
    batch.finish()?;
    let n = done.len();
    sync.state.put_sent_all(&o.name, &done)?;
    if n > 0 {
        info!(folder = %o.name, files = n, "folder versions sent");
    }
    Ok(unsettled)
}

/// Puts a small file or a tombstone into the scan's pack (spec/sync.md
/// §Packs); false if it travels alone.
fn pack_small(
    packer: &mut Packer<'_>,
    path: &str,
    stat: Option<FileStat>,
    prev: Option<&SentFile>,
    deleted: bool,
    batch: &mut Batcher<'_>,
    done: &mut Vec<(String, SentFile)>,
) -> anyhow::Result<bool> {
    let prev = prev.map(|f| f.fversion);
    if deleted {
        if !packer.takes(0) {
            return Ok(false);
        }
        packer.add_tombstone(path, prev, now_ms(), batch, done)?;
        return Ok(true);
    }
    match stat {
        Some(s) if packer.takes(s.size) => packer.add_file(path, prev, batch, done),
        _ => Ok(false),
    }
}

/// The chunks of `prev` if the destination confirmed its delivery (a
/// delivery status report about its manifest bundle came back): the
/// receiver has them in its copy of the file, so they need not travel.
fn delivered_chunks(shared: &Shared, prev: &SentFile) -> HashSet<Vec<u8>> {
    let delivered = shared
        .store
        .file(&prev.manifest_cid)
        .ok()
        .flatten()
        .and_then(|f| {
            shared
                .store
                .record(&f.manifest_bundle.to_key())
                .ok()
                .flatten()
        })
        .is_some_and(|r| {
            r.history
                .iter()
                .any(|h| h.event.starts_with("status report from") && h.event.contains("delivered"))
        });
    if delivered {
        prev.chunks.iter().cloned().collect()
    } else {
        HashSet::new()
    }
}

/// Chunks one file (or makes a tombstone) into `batch`, leaving out the
/// chunks in `have` (already at the destination); returns what to record.
#[allow(clippy::too_many_arguments)]
fn build_version(
    o: &Outgoing,
    path: &str,
    stat: Option<FileStat>,
    prev: Option<u64>,
    deleted: bool,
    to: &Eid,
    have: &HashSet<Vec<u8>>,
    batch: &mut Batcher<'_>,
) -> anyhow::Result<SentFile> {
    let mut chunks_sent = 0;
    let name = path.rsplit('/').next().unwrap_or(path).to_owned();
    let chunk_size = batch.shared.chunk_size;
    let mut builder = ManifestBuilder::new(name, chunk_size);
    let mut stat = stat;
    let lifetime_ms = batch.shared.sync.cfg.lifetime_ms;
    let manifest_expires_by = super::manifest_expires_by(batch.shared, lifetime_ms);
    if !deleted {
        let full = o.dir.join(path);
        let file = std::fs::File::open(&full)?;
        // The stat of the bytes actually read (the file may have changed
        // since the scan).
        stat = Some(FileStat::of(&file.metadata()?));
        let mut seen = HashSet::new();
        for chunk in Chunker::new(file, chunk_size)? {
            let chunk = chunk?;
            builder.push(&chunk);
            if seen.insert(chunk.cid) && !have.contains(&chunk.cid.to_bytes()) {
                chunks_sent += 1;
                batch.push(Submission::Data {
                    destination: to.clone(),
                    payload: chunk.data.clone(),
                    lifetime_ms,
                    flags: 0,
                    content_cid: Some(chunk.cid.to_bytes()),
                    expires_by_ms: None,
                })?;
            }
        }
    }
    let mtime_ms = stat.map_or(now_ms(), |s| s.mtime_ms());
    let manifest = builder.mtime_ms(mtime_ms).finish();
    let entry = FolderEntry {
        folder: o.name.clone(),
        path: path.to_owned(),
        fversion: next_version(prev, mtime_ms),
        deleted,
    };
    if super::dtn_now().0 >= manifest_expires_by {
        // The agent would refuse the manifest and fail the whole batch
        // with it (spec/manifest.md §Sending); this file alone fails.
        anyhow::bail!(
            "reading the file took longer than the folder's bundle lifetime (its first chunks have expired); give a longer [sync] lifetime_ms or node lifetime"
        );
    }
    let bytes = manifest.encode_with(Some(&entry));
    // Check as a receiver would before anything leaves.
    content::Manifest::decode_with_folder(&bytes, usize::MAX)?;
    let cid = crate::content::cid::dag_cbor_cid(&bytes);
    // The delivery report only serves the delta of the next version; a
    // file of one chunk has none (any change replaces its only chunk), so
    // it does not cost a status-report bundle.
    let flags = if manifest.chunks.len() > 1 {
        BundleFlags::REPORT_DELIVERY
    } else {
        0
    };
    batch.push(Submission::Data {
        destination: to.clone(),
        payload: bytes.into(),
        lifetime_ms,
        flags,
        content_cid: Some(cid.to_bytes()),
        expires_by_ms: Some(manifest_expires_by),
    })?;
    Ok(SentFile {
        stat: if deleted { None } else { stat },
        fversion: entry.fversion,
        manifest_cid: cid.to_bytes(),
        chunks: manifest.chunks.iter().map(|c| c.to_bytes()).collect(),
        chunks_sent,
        pack_cid: None,
    })
}

type Answer = oneshot::Receiver<super::actions::SubmitResult>;

/// Groups submissions of many files into few agent events (one store
/// commit each), with a bounded pipeline.
pub(super) struct Batcher<'a> {
    shared: &'a Shared,
    items: Vec<Submission>,
    bytes: usize,
    pending: VecDeque<Answer>,
}

impl<'a> Batcher<'a> {
    pub(super) fn new(shared: &'a Shared) -> Self {
        Batcher {
            shared,
            items: Vec::new(),
            bytes: 0,
            pending: VecDeque::new(),
        }
    }

    pub(super) fn push(&mut self, s: Submission) -> anyhow::Result<()> {
        if let Submission::Data { payload, .. } = &s {
            self.bytes += payload.len();
        }
        self.items.push(s);
        if self.items.len() >= BATCH_ITEMS || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        if self.pending.len() >= PIPELINE {
            if let Some(rx) = self.pending.pop_front() {
                wait(rx)?;
            }
        }
        let (ticket, rx) = self.shared.submits.open();
        let items = std::mem::take(&mut self.items);
        self.bytes = 0;
        self.shared
            .cmd
            .blocking_send(Command::Event(Event::Submit { ticket, items }))
            .map_err(|_| anyhow::anyhow!("node is stopping"))?;
        self.pending.push_back(rx);
        Ok(())
    }

    pub(super) fn finish(mut self) -> anyhow::Result<()> {
        self.flush()?;
        while let Some(rx) = self.pending.pop_front() {
            wait(rx)?;
        }
        Ok(())
    }
}

fn wait(rx: Answer) -> anyhow::Result<()> {
    rx.blocking_recv()
        .map_err(|_| anyhow::anyhow!("node is stopping"))?
        .map_err(|e| anyhow::anyhow!("submission refused: {e}"))?;
    Ok(())
}

/// Where folder files from node `source` land: its accept directory, or
/// the inbox.
fn accept_root(shared: &Shared, source: &str) -> PathBuf {
    let reg = shared.sync.registry();
    reg.accept_dir(source)
        .map_or_else(|| shared.inbox.clone(), Path::to_path_buf)
}

/// The directory in which to write the file of manifest `manifest_cid` as
/// its chunks arrive (spec/manifest.md §Progressive reassembly): the
/// inbox for a plain file, the accept root for a folder file (moved to its
/// path when complete); `None` for a pack or an unknown manifest.
pub(crate) fn early_dir(shared: &Shared, manifest_cid: &[u8]) -> Option<PathBuf> {
    let f = shared.store.file(manifest_cid).ok()??;
    match content::Manifest::decode_parts(&f.manifest, usize::MAX).ok()? {
        (_, None, None) => Some(shared.inbox.clone()),
        (_, Some(_), None) => Some(accept_root(shared, &f.manifest_bundle.source.to_string())),
        (_, _, Some(_)) => None,
    }
}

/// Writes a received folder file (called for `AssembleFile`). Returns
/// false if the manifest has no folder keys (an ordinary inbox file).
pub(crate) fn assemble_folder(shared: &Arc<Shared>, manifest_cid: &[u8]) -> bool {
    let Ok(Some(f)) = shared.store.file(manifest_cid) else {
        return false;
    };
    let Ok((manifest, entry)) = content::Manifest::decode_with_folder(&f.manifest, usize::MAX)
    else {
        return false;
    };
    let Some(entry) = entry else {
        return super::sync_pack::assemble_pack(shared, manifest_cid, f);
    };
    let source = f.manifest_bundle.source.to_string();
    let root = accept_root(shared, &source);
    // A partial file elsewhere (the accept dir changed since) is dropped:
    // completing it there and failing to move it would cost a whole write.
    let partial = shared.early.take(manifest_cid).filter(|p| p.dir() == root);
    let early = partial.as_ref().map(|p| p.written_chunks());
    let chunk = |cid: &content::Cid| match shared.store.chunk(&cid.to_bytes()) {
        Ok(Some(d)) => Ok(bytes::Bytes::from(d)),
        Ok(None) => Err(format!("chunk {cid} missing from the store")),
        Err(e) => Err(e.to_string()),
    };
    let r = receive::apply(
        &root,
        &manifest,
        &entry,
        &source,
        now_ms(),
        &shared.sync.state,
        content::ChunkCheck::LengthOnly,
        chunk,
        partial.as_deref(),
    );
    if let (Some(early), Ok(Applied::Written(p) | Applied::WrittenWithConflict(p, _))) = (early, &r)
    {
        let chunks = manifest.chunks.len();
        info!(file = %p.display(), early, chunks, "folder file written as its chunks arrived");
    }
    let path = match r {
        Ok(Applied::Written(p)) | Ok(Applied::Deleted(p)) | Ok(Applied::DeleteSkipped(p)) => {
            p.display().to_string()
        }
        Ok(Applied::WrittenWithConflict(p, c)) => {
            warn!(file = %p.display(), kept = %c.display(), "conflict: the local copy was changed; both kept");
            p.display().to_string()
        }
        Ok(Applied::Stale) => format!("(stale version {} of {})", entry.fversion, entry.path),
        Err(e @ SyncError::Refused { .. }) => {
            error!(folder = %entry.folder, error = %e, "folder file refused; nothing written");
            format!("(refused: {e})")
        }
        Err(e) => {
            error!(folder = %entry.folder, path = %entry.path, error = %e, "cannot write folder file; retried in 30 s");
            super::actions::assembly_failed(shared, manifest_cid);
            return true;
        }
    };
    let ev = Event::FileWritten {
        manifest_cid: manifest_cid.to_vec(),
        path,
    };
    let _ = shared.cmd.blocking_send(Command::Event(ev));
    true
}

/// Registers an outgoing folder (`POST /api/v1/sync/folders`).
pub(crate) fn add_folder(shared: &Shared, o: Outgoing) -> Result<(), String> {
    if !o.dir.is_absolute() || !o.dir.is_dir() {
        return Err(format!(
            "{} is not an absolute path to a directory",
            o.dir.display()
        ));
    }
    content::sanitize_file_name(&o.name).map_err(|e| format!("folder name: {e}"))?;
    let to: Eid = o.to.parse().map_err(|e| format!("bad destination: {e}"))?;
    if to.service().is_none_or(|s| s.is_empty()) {
        return Err("destination needs a service, e.g. dtn://base/files".into());
    }
    update(shared, |r| r.add_outgoing(o))?;
    shared.sync.refresh();
    Ok(())
}

/// Adds an accept rule (`POST /api/v1/sync/accept`).
pub(crate) fn add_accept(shared: &Shared, a: Accept) -> Result<(), String> {
    if !a.into.is_absolute() {
        return Err(format!("{} is not an absolute path", a.into.display()));
    }
    std::fs::create_dir_all(&a.into).map_err(|e| format!("{}: {e}", a.into.display()))?;
    update(shared, |r| r.add_accept(a))
}

fn update(shared: &Shared, f: impl FnOnce(&mut Registry)) -> Result<(), String> {
    let mut reg = shared
        .sync
        .registry
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut next = reg.clone();
    f(&mut next);
    next.save(&shared.data_dir).map_err(|e| e.to_string())?;
    *reg = next;
    Ok(())
}

/// Per-file progress for `GET /api/v1/sync/status`.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct FileProgress {
    path: String,
    /// CID of this version's manifest.
    manifest_cid: String,
    fversion: u64,
    deleted: bool,
    bytes: u64,
    chunks_total: usize,
    /// Custody handed on (next hop or destination accepted it).
    chunks_handed_on: usize,
    /// Held here, stored or in flight.
    chunks_in_flight: usize,
    /// Chunks that travelled for this version (the others were already
    /// at the destination).
    chunks_sent: usize,
}

/// `GET /api/v1/sync/status`: per folder, per file chunk counts, bytes,
/// the rate measured since the previous call and an estimated completion.
pub(crate) fn status(shared: &Shared) -> Result<serde_json::Value, String> {
    let reg = shared.sync.registry();
    let mut folders = Vec::new();
    let (mut left_bytes, mut handed_bytes) = (0u64, 0u64);
    for o in &reg.outgoing {
        let files = shared
            .sync
            .state
            .sent_in(&o.name)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut packs = std::collections::HashMap::new();
        for (path, f) in files {
            let p = file_progress(shared, path, &f, &mut packs);
            let per = (shared.chunk_size as u64).min(p.bytes.max(1));
            left_bytes += p.chunks_in_flight as u64 * per;
            handed_bytes += p.chunks_handed_on as u64 * per;
            out.push(p);
        }
        let total: usize = out.iter().map(|p| p.chunks_total).sum();
        let handed: usize = out.iter().map(|p| p.chunks_handed_on).sum();
        let flight: usize = out.iter().map(|p| p.chunks_in_flight).sum();
        let bytes: u64 = out.iter().map(|p| p.bytes).sum();
        folders.push(serde_json::json!({
            "name": o.name, "dir": o.dir, "to": o.to, "propagate_deletes": o.propagate_deletes,
            "files_total": out.len(), "bytes": bytes, "chunks_total": total,
            "chunks_handed_on": handed, "chunks_in_flight": flight, "files": out,
        }));
    }
    let rate = measured_rate(&shared.sync, handed_bytes);
    let eta_s = match rate {
        Some(r) if r > 0.0 => Some(left_bytes as f64 / r),
        _ if left_bytes == 0 => Some(0.0),
        _ => None,
    };
    Ok(serde_json::json!({
        "folders": folders, "accept": reg.accept,
        "rate_bytes_per_s": rate, "eta_s": eta_s, "bytes_left": left_bytes,
        "pack_files_refused": shared.sync.pack_refused.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

/// `packs` caches the state of each pack's bundle (many files share one).
fn file_progress(
    shared: &Shared,
    path: String,
    f: &SentFile,
    packs: &mut std::collections::HashMap<Vec<u8>, Option<BundleState>>,
) -> FileProgress {
    let mut p = FileProgress {
        path,
        manifest_cid: content::cid_from_bytes(&f.manifest_cid)
            .map(|c| c.to_string())
            .unwrap_or_default(),
        fversion: f.fversion,
        deleted: f.stat.is_none(),
        bytes: f.stat.map_or(0, |s| s.size),
        chunks_total: f.chunks.len(),
        chunks_sent: f.chunks_sent,
        ..Default::default()
    };
    if let Some(pack) = &f.pack_cid {
        let n = f.chunks.len();
        let state = packs
            .entry(pack.clone())
            .or_insert_with(|| super::sync_pack::pack_state(shared, pack));
        match state {
            Some(BundleState::Stored | BundleState::InFlight) => p.chunks_in_flight = n,
            Some(BundleState::CustodyTransferred | BundleState::Delivered) => {
                p.chunks_handed_on = n
            }
            _ => {}
        }
        return p;
    }
    let distinct: HashSet<&Vec<u8>> = f.chunks.iter().collect();
    for cid in distinct {
        let state = shared
            .store
            .chunk_bundle(cid)
            .ok()
            .flatten()
            .and_then(|k| shared.store.record(&k).ok().flatten())
            .map(|r| r.state);
        let n = f.chunks.iter().filter(|c| *c == cid).count();
        match state {
            Some(BundleState::Stored | BundleState::InFlight) => p.chunks_in_flight += n,
            Some(BundleState::CustodyTransferred | BundleState::Delivered) => {
                p.chunks_handed_on += n
            }
            _ => {}
        }
    }
    p
}

/// Bytes per second handed on since the previous status call.
fn measured_rate(sync: &SyncNode, handed_bytes: u64) -> Option<f64> {
    let mut last = sync.last_sample.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let rate = last.and_then(|(t, b)| {
        let dt = now.duration_since(t).as_secs_f64();
        (dt > 0.0 && handed_bytes >= b).then(|| (handed_bytes - b) as f64 / dt)
    });
    *last = Some((now, handed_bytes));
    rate
}

#[cfg(test)]
mod tests {
    use super::is_change;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
    };

    fn event(kind: EventKind) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path("/data/out/f".into()))
    }

    #[test]
    fn reads_do_not_wake_a_scan_and_writes_do() {
        // What the scan's own listing of the folder makes inotify report.
        for kind in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
            AccessKind::Any,
        ] {
            assert!(!is_change(&event(EventKind::Access(kind))), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(is_change(&event(kind)), "{kind:?}");
        }
        assert!(is_change(&Err(notify::Error::generic("queue overflow"))));
    }
}
