//! Packs of small files (spec/sync.md §Packs), the tokio-free node side:
//! the sender groups the small files of one scan into pack bundles, the
//! receiver applies a pack with one durability barrier
//! ([`crate::sync::pack_apply`]) and reports per-file progress.

use super::sync::Batcher;
use super::{Command, Shared};
use crate::agent::{Event, Submission};
use crate::bundle::Eid;
use crate::content::cid::dag_cbor_cid;
use crate::content::pack::{Pack, PackEntry};
use crate::store::records::{BundleState, FileRecord};
use crate::sync::registry::Outgoing;
use crate::sync::scan::FileStat;
use crate::sync::state::SentFile;
use crate::sync::{SyncError, next_version, pack_apply};
use bytes::Bytes;
use std::io::Read;
use std::sync::atomic::Ordering;
use tracing::{error, info, warn};

/// Collects the small files of one scan into packs and submits each pack
/// as one bundle through the scan's [`Batcher`].
pub(super) struct Packer<'a> {
    o: &'a Outgoing,
    to: Eid,
    /// Largest packed file, bytes; 0: packing is off.
    max_file: u64,
    max_bytes: u64,
    chunk_size: u32,
    lifetime_ms: Option<u64>,
    entries: Vec<PackEntry>,
    /// Rows of the entries, their `pack_cid` set when the pack is sent.
    rows: Vec<(String, SentFile)>,
    bytes: u64,
}

impl<'a> Packer<'a> {
    /// A packer for folder `o` sending to `to`, with the node's `[sync]`
    /// pack settings (the file limit is capped by the chunk size, so a
    /// packed file is one chunk).
    pub(super) fn new(shared: &Shared, o: &'a Outgoing, to: Eid) -> Self {
        let cfg = &shared.sync.cfg;
        Packer {
            o,
            to,
            max_file: cfg.pack_max_file_bytes.min(u64::from(shared.chunk_size)),
            max_bytes: cfg.pack_max_bytes.max(1),
            chunk_size: shared.chunk_size,
            lifetime_ms: cfg.lifetime_ms,
            entries: Vec::new(),
            rows: Vec::new(),
            bytes: 0,
        }
    }

    /// True if a file of `size` bytes (as scanned) goes into a pack.
    pub(super) fn takes(&self, size: u64) -> bool {
        self.max_file > 0 && size <= self.max_file
    }

    /// Reads the small file `path` and adds it (version after `prev`).
    /// `Ok(false)` if it has grown past the limit since the scan: the
    /// caller sends it alone.
    ///
    /// # Errors
    /// Reading the file; submitting a full pack.
    pub(super) fn add_file(
        &mut self,
        path: &str,
        prev: Option<u64>,
        batch: &mut Batcher<'_>,
        done: &mut Vec<(String, SentFile)>,
    ) -> anyhow::Result<bool> {
        let file = std::fs::File::open(self.o.dir.join(path))?;
        // The stat of the bytes actually read.
        let stat = FileStat::of(&file.metadata()?);
        let mut data = Vec::with_capacity(stat.size.min(self.max_file) as usize);
        file.take(self.max_file + 1).read_to_end(&mut data)?;
        if stat.size > self.max_file || data.len() as u64 > self.max_file {
            return Ok(false);
        }
        let mtime_ms = stat.mtime_ms();
        let e = PackEntry::new(
            path.to_owned(),
            mtime_ms,
            next_version(prev, mtime_ms),
            data.into(),
        );
        self.push(e, Some(stat), batch, done)?;
        Ok(true)
    }

    /// Adds a tombstone for `path` (version after `prev`).
    ///
    /// # Errors
    /// Submitting a full pack.
    pub(super) fn add_tombstone(
        &mut self,
        path: &str,
        prev: Option<u64>,
        now_ms: u64,
        batch: &mut Batcher<'_>,
        done: &mut Vec<(String, SentFile)>,
    ) -> anyhow::Result<()> {
        let e = PackEntry::tombstone(path.to_owned(), now_ms, next_version(prev, now_ms));
        self.push(e, None, batch, done)
    }

    fn push(
        &mut self,
        e: PackEntry,
        stat: Option<FileStat>,
        batch: &mut Batcher<'_>,
        done: &mut Vec<(String, SentFile)>,
    ) -> anyhow::Result<()> {
        let (m, fe) = e.as_manifest(&self.o.name, self.chunk_size);
        // Check as a receiver would before anything leaves.
        fe.validate(&m.name, m.size, m.chunks.len() as u64)?;
        m.validate(usize::MAX)?;
        let chunks: Vec<Vec<u8>> = m.chunks.iter().map(|c| c.to_bytes()).collect();
        let row = SentFile {
            stat,
            fversion: fe.fversion,
            manifest_cid: m.cid_with(Some(&fe)).to_bytes(),
            chunks_sent: chunks.len(),
            chunks,
            pack_cid: None,
        };
        self.bytes += e.size + e.path.len() as u64;
        self.rows.push((e.path.clone(), row));
        self.entries.push(e);
        if self.bytes >= self.max_bytes {
            self.flush(batch, done)?;
        }
        Ok(())
    }

    /// Submits the pack collected so far (if any) and moves its rows to
    /// `done`.
    ///
    /// # Errors
    /// The node is stopping or refused the submission.
    pub(super) fn flush(
        &mut self,
        batch: &mut Batcher<'_>,
        done: &mut Vec<(String, SentFile)>,
    ) -> anyhow::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let pack = Pack {
            folder: self.o.name.clone(),
            chunk_size: self.chunk_size,
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = pack.encode();
        let cid = dag_cbor_cid(&bytes).to_bytes();
        batch.push(Submission::Data {
            destination: self.to.clone(),
            payload: bytes.into(),
            lifetime_ms: self.lifetime_ms,
            flags: 0,
            content_cid: Some(cid.clone()),
            expires_by_ms: None,
        })?;
        for (path, mut row) in self.rows.drain(..) {
            row.pack_cid = Some(cid.clone());
            done.push((path, row));
        }
        self.bytes = 0;
        Ok(())
    }
}

/// Applies a received pack (called for `AssembleFile` of a manifest
/// without folder keys). Returns false if `f` is not a pack (an ordinary
/// inbox file). The agent is told `FileWritten` with the summary once the
/// pack's files are durable, or `(refused: …)` for a pack that does not
/// decode; after an I/O or state error it is told `AssemblyFailed`, so the
/// pack is applied again 30 s later (or at the next start).
pub(super) fn assemble_pack(shared: &Shared, manifest_cid: &[u8], f: FileRecord) -> bool {
    let bytes = Bytes::from(f.manifest);
    let pack = match Pack::decode(&bytes) {
        Ok(Some(p)) => p,
        Ok(None) => return false,
        Err(e) => {
            error!(error = %e, "pack refused; nothing written");
            written(shared, manifest_cid, format!("(refused: pack: {e})"));
            return true;
        }
    };
    let source = f.manifest_bundle.source.to_string();
    let root = shared
        .sync
        .accept_dir(&source)
        .unwrap_or_else(|| shared.inbox.clone());
    let now = crate::node::dtn_now().to_unix_ms();
    match pack_apply::apply_pack(&root, &pack, &source, now, &shared.sync.state) {
        Ok(r) => {
            let refused = r.refused.len() as u64;
            shared
                .sync
                .pack_refused
                .fetch_add(refused, Ordering::Relaxed);
            for (path, why) in &r.refused {
                error!(folder = %pack.folder, path = %path, reason = %why, "file in pack refused; nothing written for it");
            }
            for c in &r.conflicts {
                warn!(kept = %c.display(), "conflict: the local copy was changed; both kept");
            }
            info!(folder = %pack.folder, files = r.written.len(), refused, "pack applied");
            written(shared, manifest_cid, r.summary());
        }
        Err(e @ SyncError::Refused { .. }) => {
            written(shared, manifest_cid, format!("(refused: {e})"));
        }
        Err(e) => {
            error!(folder = %pack.folder, error = %e, "cannot apply pack; retried in 30 s");
            super::actions::assembly_failed(shared, manifest_cid);
        }
    }
    true
}

fn written(shared: &Shared, manifest_cid: &[u8], path: String) {
    let ev = Event::FileWritten {
        manifest_cid: manifest_cid.to_vec(),
        path,
    };
    let _ = shared.cmd.blocking_send(Command::Event(ev));
}

/// The state of the bundle that carries pack `pack_cid` at this node
/// (per-file status of packed files).
pub(super) fn pack_state(shared: &Shared, pack_cid: &[u8]) -> Option<BundleState> {
    let f = shared.store.file(pack_cid).ok()??;
    let r = shared.store.record(&f.manifest_bundle.to_key()).ok()??;
    Some(r.state)
}
