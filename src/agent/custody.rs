//! Custody signals, custody timeouts, expiry and file reassembly bookkeeping
//! (spec/custody.md).

use super::ingest::AfterCommit;
use super::{Action, Agent, AgentError};
use crate::bundle::admin::{CustodyReason, CustodySignal, ReasonCode, StatusKind};
use crate::bundle::{BundleFlags, DtnTime, Eid};
use crate::content::Manifest;
use crate::routing::COPIES_UNLIMITED;
use crate::store::Txn;
use crate::store::records::{BundleRecord, BundleState, FileRole, PayloadKind};
use std::collections::BTreeSet;
use tracing::{debug, info, warn};

impl Agent {
    /// A custody signal from `from`: accepted (or "duplicate": the peer
    /// already holds it) releases our copy; a refusal keeps it here and
    /// stops offering it to that peer during this contact.
    pub(super) fn custody_signal(
        &mut self,
        now: DtnTime,
        from: &Eid,
        signal: CustodySignal,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let from = from.node_id();
        let transferred = signal.accepted || matches!(signal.reason, CustodyReason::Duplicate);
        // Lost in a crash, this transaction is redone: the bundles are
        // offered again and the peer answers "duplicate" (spec/custody.md).
        let mut txn = self.store.write_lazy()?;
        let mut after = AfterCommit::default();
        for id in &signal.bundles {
            let key = id.to_key();
            let Some(mut rec) = txn.record(&key)? else {
                continue;
            };
            if !rec.state.is_held() {
                continue; // already released: a repeated signal
            }
            let flight = self.in_flight.remove(&key, &from);
            let sent = flight.map(|f| f.sent_at_ms);
            // Copies we keep: none once the destination has it; else all
            // but those handed over; a signal we no longer track counts as
            // handing over every finite copy.
            let at_destination = rec.destination.is_on_node(&from);
            let keep = match (rec.copies, flight) {
                _ if at_destination => 0, // delivered: no copy is needed any more
                (COPIES_UNLIMITED, _) => COPIES_UNLIMITED,
                (c, Some(f)) => c.saturating_sub(f.give),
                (_, None) => 0,
            };
            if transferred && keep == 0 {
                if let Some(c) = self.contacts.get_mut(&from) {
                    c.handed_over.insert(key.clone());
                }
                self.transfer(
                    &mut txn, now, &key, &mut rec, &from, sent, &signal, &mut after,
                )?;
            } else if transferred {
                self.copy_given(&mut txn, now, &key, &mut rec, &from, keep, &signal)?;
            } else {
                if let Some(c) = self.contacts.get_mut(&from) {
                    if signal.reason == CustodyReason::DepletedStorage {
                        c.depleted.insert(key.clone());
                        c.depleted_at_ms = now.0;
                    } else {
                        c.refused.insert(key.clone());
                    }
                }
                rec.log(
                    now,
                    format!("custody refused by {from}: {}", signal.reason.describe()),
                );
                txn.put_record(&rec)?;
                self.count("custody_refused_by_peer");
                warn!(peer = %from, bundle = %id, reason = ?signal.reason, "custody refused");
            }
        }
        self.commit(txn)?;
        self.fill_needed = true;
        out.extend(after.deliveries);
        Ok(())
    }

    /// The peer took some of our copies (or already had the bundle): we
    /// keep `keep` copies and custody of our own; the bundle is not offered
    /// to that peer again.
    #[allow(clippy::too_many_arguments)]
    fn copy_given(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        key: &[u8],
        rec: &mut BundleRecord,
        to: &Eid,
        keep: u32,
        signal: &CustodySignal,
    ) -> Result<(), AgentError> {
        if signal.accepted {
            rec.copies = keep;
            let left = if keep == COPIES_UNLIMITED {
                "unlimited".to_owned()
            } else {
                keep.to_string()
            };
            rec.log(
                now,
                format!("copy accepted by {to}; {left} copies kept here"),
            );
            self.count("copies_given");
            self.peer_tally.entry(to.node_id()).or_default().0 += 1;
            self.router.moved(to, rec.size_bytes, 0);
            self.dirty_peers.entry(to.node_id()).or_default();
        } else {
            rec.log(now, format!("{to} already holds a copy"));
        }
        txn.put_record(rec)?;
        txn.mark_forwarded(&to.to_string(), key, now.0)?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        key: &[u8],
        rec: &mut BundleRecord,
        to: &Eid,
        sent_at_ms: Option<u64>,
        signal: &CustodySignal,
        after: &mut AfterCommit,
    ) -> Result<(), AgentError> {
        if BundleFlags(rec.flags).contains(BundleFlags::REPORT_FORWARDING) {
            if let Some(b) = self.load_bundle(key, rec)? {
                let code = ReasonCode::NoInformation;
                self.report(txn, now, &b, StatusKind::Forwarded, code, after)?;
            }
        }
        self.release(txn, key, rec)?;
        if rec.destination.is_on_node(to) {
            self.known_delivered.insert(key, rec.expiry_ms);
        }
        if let Some(t) = sent_at_ms {
            rec.log(DtnTime(t), format!("transmitted to {to}"));
        }
        let how = if signal.accepted {
            ""
        } else {
            " (it already held the bundle)"
        };
        rec.log(now, format!("custody transferred to {to}{how}"));
        rec.state = BundleState::CustodyTransferred;
        rec.custodian = Some(to.clone());
        txn.put_record(rec)?;
        // No forwarding row: the bundle is no longer held here (release
        // dropped its rows), and its history names the new custodian.
        self.count("custody_transferred");
        self.peer_tally.entry(to.node_id()).or_default().0 += 1;
        self.router.moved(to, rec.size_bytes, 0);
        // A file's chunks are logged at debug level: one line per file
        // (its manifest) is what an operator reads.
        if rec.kind == PayloadKind::Chunk {
            debug!(bundle = %rec.id, to = %to, "custody transferred");
        } else {
            info!(bundle = %rec.id, to = %to, "custody transferred");
        }
        Ok(())
    }

    /// Releases the bundles in `ids` that we hold and whose destination is
    /// `peer`, whose contact summary lists them (it holds or delivered
    /// them, whatever path they took): our copies can do nothing more, so
    /// their bytes go and the records name the destination as custodian
    /// (spec/custody.md §Copies at the destination). One lazy commit.
    ///
    /// # Errors
    /// [`AgentError::Store`] on engine failure.
    pub(super) fn release_held_at_destination(
        &mut self,
        now: DtnTime,
        peer: &Eid,
        ids: &[crate::bundle::BundleId],
    ) -> Result<(), AgentError> {
        let mut txn = self.store.write_lazy()?;
        let mut n = 0u64;
        for id in ids {
            let key = id.to_key();
            let Some(mut rec) = txn.record(&key)? else {
                continue;
            };
            if !rec.state.is_held() || !rec.destination.is_on_node(peer) {
                continue;
            }
            self.release(&mut txn, &key, &rec)?;
            self.known_delivered.insert(&key, rec.expiry_ms);
            rec.log(
                now,
                format!("{peer} (the destination) already holds it: our copy is released"),
            );
            rec.state = BundleState::CustodyTransferred;
            rec.custodian = Some(peer.clone());
            txn.put_record(&rec)?;
            n += 1;
        }
        if n > 0 {
            *self
                .tally
                .entry("released_held_at_destination".into())
                .or_default() += n;
            info!(peer = %peer, bundles = n, "the destination already holds bundles we held; copies released");
        }
        self.commit(txn)?;
        self.fill_needed = true;
        Ok(())
    }

    /// Custody timeouts and lifetime expiry.
    pub(super) fn tick(&mut self, now: DtnTime, out: &mut Vec<Action>) -> Result<(), AgentError> {
        out.append(&mut self.startup);
        self.retry_assembly(now, out)?;
        // At most one segment per tick; one with 32 MiB dead holds at most
        // 32 MiB live, so every such segment qualifies.
        if let Err(e) = self.store.compact_blobs(32 << 20, now.0) {
            warn!(error = %e, "blob segment compaction failed; tried again later");
        }
        let timeout = self.cfg.custody_timeout_ms;
        for c in self.contacts.values_mut() {
            if !c.depleted.is_empty() && now.0 >= c.depleted_at_ms.saturating_add(timeout) {
                c.depleted.clear();
                self.fill_needed = true;
            }
        }
        for (_, peer) in self.in_flight.take_older(now.0.saturating_sub(timeout)) {
            warn!(peer = %peer, "no custody signal within {timeout} ms; bundle will be offered again");
            self.fill_needed = true;
        }
        let due = self.store.expired(now.0, self.cfg.expiry_batch)?;
        let forget = self.store.delivered_forget_due(now.0)?;
        let forget_records = self.store.record_forget_due(now.0)?;
        if due.is_empty() && !forget && !forget_records {
            return self.flush_peers(now);
        }
        let mut txn = self.store.write()?;
        if forget_records {
            let n = txn.forget_records(now.0, self.cfg.expiry_batch)?;
            *self.tally.entry("records_forgotten".into()).or_default() += n as u64;
        }
        if forget {
            let n = txn.forget_delivered(now.0, self.cfg.expiry_batch)?;
            *self
                .tally
                .entry("delivered_ids_forgotten".into())
                .or_default() += n as u64;
        }
        let mut after = AfterCommit::default();
        for (ms, key) in due {
            txn.expiry_remove(ms, &key)?;
            let Some(rec) = txn.record(&key)? else {
                continue;
            };
            self.expire_one(&mut txn, now, &key, rec, &mut after)?;
        }
        self.commit(txn)?;
        out.extend(after.deliveries);
        Ok(())
    }

    fn expire_one(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        key: &[u8],
        mut rec: BundleRecord,
        after: &mut AfterCommit,
    ) -> Result<(), AgentError> {
        match rec.state {
            BundleState::Stored | BundleState::InFlight => {
                if BundleFlags(rec.flags).contains(BundleFlags::REPORT_DELETION) {
                    if let Some(b) = self.load_bundle(key, &rec)? {
                        let code = ReasonCode::LifetimeExpired;
                        self.report(txn, now, &b, StatusKind::Deleted, code, after)?;
                    }
                }
                self.release(txn, key, &rec)?;
                rec.state = BundleState::Expired;
                rec.custodian = None;
                rec.log(now, "lifetime expired; deleted");
                txn.put_record(&rec)?;
                self.count("expired");
                info!(bundle = %rec.id, "lifetime expired; deleted");
            }
            BundleState::Delivered => {
                txn.remove_bytes(key)?;
                if let (PayloadKind::Chunk, Some(cid)) = (rec.kind, &rec.cid) {
                    if txn.inbox_remove(cid, key)? {
                        txn.chunk_unref(cid)?;
                        rec.log(
                            now,
                            "lifetime ended before its file was complete; chunk released",
                        );
                        txn.put_record(&rec)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The driver wrote the file of `manifest_cid`: record it and release
    /// the inbox chunks it used.
    pub(super) fn file_written(
        &mut self,
        now: DtnTime,
        manifest_cid: &[u8],
        path: String,
    ) -> Result<(), AgentError> {
        self.assembling.remove(manifest_cid);
        self.assembly_retry.remove(manifest_cid);
        let mut txn = self.store.write()?;
        let Some(mut f) = txn.file(manifest_cid)? else {
            return Ok(());
        };
        if f.path.is_some() {
            return Ok(());
        }
        let distinct: BTreeSet<&Vec<u8>> = f.chunks.iter().collect();
        for cid in distinct {
            if let Some(key) = txn.inbox_keys(cid)?.into_iter().next() {
                txn.inbox_remove(cid, &key)?;
                txn.chunk_unref(cid)?;
            }
        }
        info!(file = %f.name, path = %path, "file delivered");
        f.path = Some(path);
        f.completed_ms = Some(now.0);
        txn.put_file(&f)?;
        self.count("files_delivered");
        self.commit(txn)?;
        Ok(())
    }

    /// A chunk addressed here arrived (durably): each manifest waiting for
    /// it has one chunk fewer missing, and the one that has none left is
    /// checked in full ([`Agent::watch_manifest`]) and assembled.
    pub(super) fn chunk_arrived(
        &mut self,
        cid: &[u8],
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let Some(manifests) = self.waiting.remove(cid) else {
            return Ok(());
        };
        for m in manifests {
            let left = self.missing.get_mut(&m).map(|n| {
                *n = n.saturating_sub(1);
                *n
            });
            if left.unwrap_or(0) == 0 {
                self.watch_manifest(&m, out)?;
            }
        }
        Ok(())
    }

    /// Emits [`Action::AssembleFile`] if every chunk of manifest `m` is in
    /// the inbox; otherwise emits [`Action::ExpectFile`] (not for a pack)
    /// and waits for the missing ones (one store lookup per distinct
    /// chunk: called when the manifest arrives, at start-up, and when its
    /// last missing chunk arrives).
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
        let mut missing = Vec::new();
        let distinct: BTreeSet<&Vec<u8>> = f.chunks.iter().collect();
        for cid in distinct {
            if !self.store.inbox_has(cid)? {
                missing.push(cid.clone());
            }
        }
        for list in self.waiting.values_mut() {
            list.retain(|x| x.as_slice() != m);
        }
        self.waiting.retain(|_, l| !l.is_empty());
        self.missing.remove(m);
        if missing.is_empty() {
            match Manifest::decode(&f.manifest, self.cfg.max_manifest_entries) {
                Ok(manifest) => {
                    self.assembling.insert(m.to_vec());
                    out.push(Action::AssembleFile {
                        manifest_cid: m.to_vec(),
                        manifest,
                    });
                }
                Err(e) => warn!(file = %f.name, error = %e, "stored manifest does not decode"),
            }
        } else {
            // A file (not a pack, spec/sync.md §Packs) can be written
            // chunk by chunk as the rest arrives.
            if let Ok((manifest, _, None)) =
                Manifest::decode_parts(&f.manifest, self.cfg.max_manifest_entries)
            {
                out.push(Action::ExpectFile {
                    manifest_cid: m.to_vec(),
                    manifest,
                });
            }
            self.missing.insert(m.to_vec(), missing.len());
            for cid in missing {
                self.waiting.entry(cid).or_default().push(m.to_vec());
            }
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

    /// Asks again for the files whose write failed [`ASSEMBLY_RETRY_MS`]
    /// ago or more (tick).
    fn retry_assembly(&mut self, now: DtnTime, out: &mut Vec<Action>) -> Result<(), AgentError> {
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
