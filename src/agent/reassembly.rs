//! Incoming files: which chunks each manifest addressed here still waits
//! for, where each chunk goes in its file, and when a file is complete.
//!
//! Every chunk that arrives durably for a known manifest is offered to the
//! driver as [`Action::PrefillChunk`] (its bytes and file offsets), so the
//! driver can write the file as the chunks come; when the last one is here
//! [`Action::AssembleFile`] asks for the rest (spec/manifest.md §5).

use super::{Action, Agent, AgentError};
use crate::bundle::DtnTime;
use crate::content::Manifest;
use crate::store::records::FileRole;
use bytes::Bytes;
use std::collections::BTreeMap;
use tracing::warn;

/// One manifest waiting for one chunk.
#[derive(Clone, Debug)]
pub(super) struct Waiter {
    /// Manifest CID bytes.
    manifest: Vec<u8>,
    /// Where the chunk goes in the file, bytes from its start.
    offsets: Vec<u64>,
    /// The chunk's length the manifest gives at those offsets, bytes.
    len: u64,
}

impl Agent {
    /// A chunk addressed here arrived (durably): each manifest waiting for
    /// it gets [`Action::PrefillChunk`] and has one chunk fewer missing, and
    /// the one that has none left is checked in full
    /// ([`Agent::watch_manifest`]) and assembled.
    pub(super) fn chunk_arrived(
        &mut self,
        cid: &[u8],
        bytes: &Bytes,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let Some(waiters) = self.waiting.remove(cid) else {
            return Ok(());
        };
        for w in waiters {
            // A length the manifest does not give is left to reassembly,
            // which refuses it with a clear error.
            if bytes.len() as u64 == w.len {
                out.push(Action::PrefillChunk {
                    manifest_cid: w.manifest.clone(),
                    offsets: w.offsets,
                    bytes: bytes.clone(),
                });
            }
            let left = self.missing.get_mut(&w.manifest).map(|n| {
                *n = n.saturating_sub(1);
                *n
            });
            if left.unwrap_or(0) == 0 {
                self.watch_manifest(&w.manifest, out)?;
            }
        }
        Ok(())
    }

    /// Emits [`Action::AssembleFile`] if every chunk of manifest `m` is in
    /// the inbox; otherwise waits for the missing ones (one store lookup per
    /// distinct chunk: called when the manifest arrives, at start-up, and
    /// when its last missing chunk arrives).
    pub(super) fn watch_manifest(
        &mut self,
        m: &[u8],
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let Some(f) = self.store.file(m)? else {
            return Ok(());
        };
        if f.path.is_some() || f.role != FileRole::Destination || self.assembling.contains(m) {
            return Ok(());
        }
        let manifest = match Manifest::decode(&f.manifest, self.cfg.max_manifest_entries) {
            Ok(manifest) => manifest,
            Err(e) => {
                warn!(file = %f.name, error = %e, "stored manifest does not decode");
                return Ok(());
            }
        };
        for list in self.waiting.values_mut() {
            list.retain(|w| w.manifest.as_slice() != m);
        }
        self.waiting.retain(|_, l| !l.is_empty());
        self.missing.remove(m);
        let mut missing = Vec::new();
        for (cid, (offsets, len)) in chunk_places(&manifest) {
            if !self.store.inbox_has(&cid)? {
                missing.push((cid, offsets, len));
            }
        }
        if missing.is_empty() {
            self.assembling.insert(m.to_vec());
            out.push(Action::AssembleFile {
                manifest_cid: m.to_vec(),
                manifest,
            });
            return Ok(());
        }
        self.missing.insert(m.to_vec(), missing.len());
        for (cid, offsets, len) in missing {
            let w = Waiter {
                manifest: m.to_vec(),
                offsets,
                len,
            };
            self.waiting.entry(cid).or_default().push(w);
        }
        Ok(())
    }

    /// Rebuilds the wait lists of incomplete incoming files (start-up).
    pub(super) fn load_waiting(&mut self) -> Result<(), AgentError> {
        let mut out = Vec::new();
        for f in self.store.files()? {
            if f.role == FileRole::Destination && f.path.is_none() {
                self.watch_manifest(&f.manifest_cid, &mut out)?;
            }
        }
        self.startup.extend(out);
        Ok(())
    }

    /// Asks again for the files whose write failed [`super::ASSEMBLY_RETRY_MS`]
    /// ago or more (tick).
    pub(super) fn retry_assembly(
        &mut self,
        now: DtnTime,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let due: Vec<Vec<u8>> = self
            .assembly_retry
            .iter()
            .filter(|&(_, &t)| t <= now.0)
            .map(|(m, _)| m.clone())
            .collect();
        for m in due {
            self.assembly_retry.remove(&m);
            self.watch_manifest(&m, out)?;
        }
        Ok(())
    }
}

/// Length that no chunk has: a CID the manifest gives two lengths for is
/// never prefilled (reassembly refuses its file).
const NO_PREFILL: u64 = u64::MAX;

/// Each distinct chunk CID of `m` → (its file offsets in bytes, its length
/// in bytes, or [`NO_PREFILL`] if the manifest gives it two lengths).
fn chunk_places(m: &Manifest) -> BTreeMap<Vec<u8>, (Vec<u64>, u64)> {
    let mut places: BTreeMap<Vec<u8>, (Vec<u64>, u64)> = BTreeMap::new();
    let step = u64::from(m.chunk_size);
    for (index, cid) in (0u64..).zip(&m.chunks) {
        let len = m.chunk_len_bytes(index).unwrap_or(NO_PREFILL);
        let place = places
            .entry(cid.to_bytes())
            .or_insert_with(|| (Vec::new(), len));
        place.0.push(index.saturating_mul(step));
        if place.1 != len {
            place.1 = NO_PREFILL;
        }
    }
    places
}
