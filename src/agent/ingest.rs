//! Receiving bundles: validate, store durably, then acknowledge. Local
//! submissions (`submit.rs`) go through the same [`Agent::accept`].

use super::raw::Raw;
use super::{Action, Agent, AgentError, Received};
use crate::bundle::admin::{
    AdministrativeRecord, CustodyReason, CustodySignal, ReasonCode, StatusKind,
    status_report_bundle,
};
use crate::bundle::codec::{self, process_unknown_blocks};
use crate::bundle::{Bundle, BundleId, DtnTime, Eid};
use crate::content::{self, DAG_CBOR_CODEC, Manifest, RAW_CODEC};
use crate::routing::COPIES_UNLIMITED;
use crate::store::Txn;
use crate::store::records::{
    BundleRecord, BundleState, FileRecord, FileRole, MAX_HISTORY, PayloadKind,
};
use bytes::Bytes;
use std::collections::BTreeMap;
use tracing::{debug, info, warn};

/// Custody refusal reason for a bundle that is invalid (bad content block,
/// CID mismatch, no bundle age, hop limit, undecodable manifest): code 8,
/// "block unintelligible" in the RFC 5050 §6.1.4 table the custody draft keeps.
const INVALID: CustodyReason = CustodyReason::Other(8);
/// Custody refusal reason for a bundle addressed to `dtn:none`: code 5,
/// "destination endpoint ID unintelligible".
const NO_DESTINATION: CustodyReason = CustodyReason::Other(5);
/// Custody refusal reason for a bundle held here whose custody is being
/// handed on with every copy (spec/custody.md, "Loops"): code 0, "no
/// additional information", with the disposition "refused".
const IN_TRANSIT: CustodyReason = CustodyReason::Accepted;

/// Why a bundle was not accepted.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    /// Counter suffix and log label, e.g. `expired`.
    pub label: &'static str,
    /// Detail for the log.
    pub detail: String,
    /// Reason carried in the custody signal.
    pub custody: CustodyReason,
    /// Reason code of a "deleted" status report, if one is due.
    pub report: Option<ReasonCode>,
}

/// What happened to one bundle offered to [`Agent::accept`].
#[derive(Clone, Debug)]
pub(super) enum Outcome {
    /// Stored for forwarding, custody accepted.
    Stored,
    /// Delivered here (custody accepted and discharged).
    Delivered,
    /// Already held or delivered here: redundant.
    Duplicate,
    /// Refused.
    Refused(Refusal),
}

/// The content check of one bundle: `Ok(Some((kind, cid)))` when a content
/// block names a CID the payload matches, `Ok(None)` without a content block.
pub(super) type ContentCheck = Result<Option<(PayloadKind, Vec<u8>)>, Refusal>;

/// A received bundle decoded and its content CID checked before it reaches
/// the agent thread (see [`super::Received::prechecked`]). Only the pure,
/// CPU-heavy steps are done here (CBOR decode, CRCs, SHA-256 of the payload);
/// everything that needs the store or the clock (duplicates, expiry, hop
/// limit, quota) still runs on the agent thread when it handles the event.
#[derive(Clone, Debug)]
pub struct Prechecked {
    bundle: Result<Bundle, codec::DecodeError>,
    /// `None` when the bundle did not decode.
    content: Option<ContentCheck>,
}

impl Prechecked {
    /// Decodes `bytes` under `limits` and, if that worked, checks the
    /// payload against the content block's CID.
    pub(super) fn check(
        bytes: &Bytes,
        digest: Option<&content::PayloadDigest>,
        limits: &codec::DecodeLimits,
    ) -> Prechecked {
        let bundle = codec::decode_shared(bytes, limits);
        let content = bundle.as_ref().ok().map(|b| {
            let payload = b.payload().map(|p| p.as_ref()).unwrap_or_default();
            let known = digest.filter(|d| d.covers(bytes, payload));
            check_content_with(b, known.map(|d| &d.sha256))
        });
        Prechecked { bundle, content }
    }

    /// The CID bytes and payload of a chunk bundle whose payload was
    /// found to match its CID; `None` for anything else.
    pub(super) fn verified_chunk(&self) -> Option<(&[u8], &Bytes)> {
        match (&self.bundle, &self.content) {
            (Ok(b), Some(Ok(Some((PayloadKind::Chunk, cid))))) => Some((cid, b.payload()?)),
            _ => None,
        }
    }
}

/// Work to do after the transaction commits.
#[derive(Default)]
pub(super) struct AfterCommit {
    pub deliveries: Vec<Action>,
    pub chunks_arrived: Vec<Vec<u8>>,
    pub manifests_arrived: Vec<Vec<u8>>,
}

fn refusal(label: &'static str, detail: impl Into<String>, custody: CustodyReason) -> Refusal {
    Refusal {
        label,
        detail: detail.into(),
        custody,
        report: None,
    }
}

/// The content CID of a payload, checked: `Ok(Some((kind, cid)))` when a
/// content block names a CID that the payload matches.
fn check_content(b: &Bundle) -> ContentCheck {
    check_content_with(b, None)
}

/// [`check_content`], given the payload's SHA-256 if it is known already.
fn check_content_with(b: &Bundle, sha256: Option<&[u8; 32]>) -> ContentCheck {
    let cid_bytes = match b.content_cid() {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(refusal("bad_content_block", e.to_string(), INVALID));
        }
    };
    let payload = b.payload().map(|p| p.as_ref()).unwrap_or_default();
    let bad = |d: String| refusal("cid_mismatch", d, INVALID);
    let cid = content::cid_from_bytes(&cid_bytes).map_err(|e| bad(e.to_string()))?;
    match cid.codec() {
        RAW_CODEC => {
            match sha256 {
                Some(d) => content::verify_chunk_digest(&cid, d),
                None => content::verify_chunk(&cid, payload),
            }
            .map_err(|e| bad(e.to_string()))?;
            Ok(Some((PayloadKind::Chunk, cid_bytes)))
        }
        DAG_CBOR_CODEC => {
            use sha2::Digest;
            let h = cid.hash();
            let digest = sha256
                .copied()
                .unwrap_or_else(|| sha2::Sha256::digest(payload).into());
            if h.code() != 0x12 || h.digest() != digest {
                return Err(bad(format!("manifest bytes do not hash to {cid}")));
            }
            Ok(Some((PayloadKind::Manifest, cid_bytes)))
        }
        other => Err(bad(format!("unsupported CID codec 0x{other:x}"))),
    }
}

/// Expiry time (DTN ms) per RFC 9171 §4.2.7/§4.4.2: creation time +
/// lifetime, or, for a creation time of 0, now + lifetime − bundle age.
fn expiry_ms(b: &Bundle, now: DtnTime) -> Result<u64, Refusal> {
    let created = b.primary.creation_timestamp.time.0;
    if created != 0 {
        return Ok(created.saturating_add(b.primary.lifetime_ms));
    }
    match b.bundle_age_ms() {
        Ok(Some(age)) => Ok(now
            .0
            .saturating_add(b.primary.lifetime_ms.saturating_sub(age))),
        _ => Err(refusal(
            "no_bundle_age",
            "creation time is 0 and there is no valid bundle age block (RFC 9171 §4.4.2)",
            INVALID,
        )),
    }
}

impl Agent {
    /// Handles bundles from peers: one transaction for the batch, then
    /// custody signals (only after the commit), deliveries and reassembly.
    pub(super) fn receive(
        &mut self,
        now: DtnTime,
        items: Vec<Received>,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let mut txn = self.store.write()?;
        let mut after = AfterCommit::default();
        let mut signals: BTreeMap<(Eid, bool, u64), (CustodyReason, Vec<BundleId>)> =
            BTreeMap::new();
        for r in items {
            self.count("received_total");
            let (decoded, content) = match r.pre {
                Some(p) => (p.bundle, p.content),
                None => (
                    codec::decode_shared(&r.bytes, &self.cfg.decode_limits),
                    None,
                ),
            };
            let bundle = match decoded {
                Ok(b) => b,
                Err(e) => {
                    warn!(peer = %r.from, error = %e, "refused undecodable bundle");
                    self.count(format!("refused_{}", e.kind()));
                    continue;
                }
            };
            let id = bundle.id();
            let wants_signal = matches!(bundle.custody(), Ok(Some(_)));
            let outcome = self.accept(
                &mut txn,
                now,
                bundle,
                Some(&r.from),
                Raw::Encoded(&r.bytes),
                &mut after,
                content,
            )?;
            let (accepted, reason) = match &outcome {
                Outcome::Stored | Outcome::Delivered => (true, CustodyReason::Accepted),
                Outcome::Duplicate => (false, CustodyReason::Duplicate),
                Outcome::Refused(rf) => (false, rf.custody),
            };
            if let Outcome::Refused(rf) = &outcome {
                warn!(peer = %r.from, bundle = %id, reason = rf.label, detail = %rf.detail, "refused bundle");
            }
            if wants_signal {
                let code = reason.code();
                signals
                    .entry((r.from.clone(), accepted, code))
                    .or_insert_with(|| (reason, Vec::new()))
                    .1
                    .push(id);
            }
        }
        self.commit(txn)?;
        for ((peer, accepted, _), (reason, bundles)) in signals {
            out.push(Action::SendCustodySignal {
                peer,
                signal: CustodySignal {
                    accepted,
                    reason,
                    bundles,
                },
            });
        }
        self.after_commit(after, out)
    }

    /// Validates one bundle and records it in `txn` (stored for forwarding,
    /// or delivered here). `raw` is its encoding ([`Raw`]); `content` is
    /// its content check if done already ([`Prechecked`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accept(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        mut bundle: Bundle,
        from: Option<&Eid>,
        raw: Raw<'_>,
        after: &mut AfterCommit,
        content: Option<ContentCheck>,
    ) -> Result<Outcome, AgentError> {
        let checked = match self.validate(txn, now, &mut bundle, from, content)? {
            // Held for forwarding: within the quota (crate::limits::quota).
            Ok(Some(x)) if !bundle.primary.destination.is_on_node(&self.cfg.node_id) => {
                self.quota_check(from, raw.len() as u64).map(|()| Some(x))
            }
            other => other,
        };
        let outcome = match checked {
            Err(r) => Outcome::Refused(r),
            Ok(None) => Outcome::Duplicate,
            Ok(Some((expiry, content))) => {
                let local = bundle.primary.destination.is_on_node(&self.cfg.node_id);
                let mut rec = self.new_record(now, &bundle, from, raw.len(), expiry, content);
                // Held anew: transmissions of an earlier stay prove nothing.
                self.in_flight.remove_all(&rec.id.to_key());
                if let Some(old) = txn.record(&rec.id.to_key())? {
                    // It comes back: keep its earlier history here.
                    let mut history = old.history;
                    history.extend(rec.history);
                    let keep_from = history.len().saturating_sub(MAX_HISTORY);
                    rec.history = history.split_off(keep_from);
                }
                if local {
                    self.deliver_here(txn, now, &bundle, &mut rec, raw, after)?
                } else {
                    self.store_for_forwarding(txn, now, &bundle, &mut rec, raw, after)?
                }
            }
        };
        match &outcome {
            Outcome::Refused(r) => {
                self.count(format!("refused_{}", r.label));
                if let Some(code) = r.report {
                    self.report(txn, now, &bundle, StatusKind::Deleted, code, after)?;
                }
            }
            Outcome::Duplicate => self.count("duplicates"),
            Outcome::Stored => {
                if let Some(f) = from {
                    self.peer_tally.entry(f.node_id()).or_default().1 += 1;
                    self.router.moved(f, 0, raw.len() as u64);
                }
                let code = ReasonCode::NoInformation;
                self.report(txn, now, &bundle, StatusKind::Received, code, after)?;
            }
            Outcome::Delivered => {
                if let Some(f) = from {
                    self.peer_tally.entry(f.node_id()).or_default().1 += 1;
                    self.router.moved(f, 0, raw.len() as u64);
                }
                let code = ReasonCode::NoInformation;
                self.report(txn, now, &bundle, StatusKind::Received, code, after)?;
                self.report(txn, now, &bundle, StatusKind::Delivered, code, after)?;
            }
        }
        Ok(outcome)
    }

    /// Checks a bundle: `Ok(Err(refusal))`, `Ok(Ok(None))` for a duplicate,
    /// or the expiry time and checked content CID.
    #[allow(clippy::type_complexity)]
    fn validate(
        &mut self,
        txn: &Txn,
        now: DtnTime,
        bundle: &mut Bundle,
        from: Option<&Eid>,
        content: Option<ContentCheck>,
    ) -> Result<Result<Option<(u64, Option<(PayloadKind, Vec<u8>)>)>, Refusal>, AgentError> {
        let key = bundle.id().to_key();
        // A duplicate is a bundle held or delivered here. One that passed
        // through earlier (custody moved on, or it was deleted) and comes
        // back is accepted again: answering "duplicate" would make the
        // sender release what may be the last copy.
        let held = txn.record(&key)?.filter(|r| r.state.is_held());
        if let Some(rec) = held {
            // Our copy is on its way out with every copy (a routing loop
            // brought the bundle back first): "duplicate" would make the
            // sender release it, and our own release follows when the
            // peer's signal comes. Refused, the sender keeps it.
            let give = self.in_flight.max_give(&key);
            if give > 0 && rec.copies != COPIES_UNLIMITED && give >= rec.copies {
                return Ok(Err(refusal(
                    "in_transit",
                    "held here but being handed on with every copy",
                    IN_TRANSIT,
                )));
            }
            // Held here with finite copies, but not from the sender: both
            // of us hold a copy (each from a third node, as copy-spraying
            // policies do). The sender may be receiving our offer right
            // now; if each answered "duplicate", each could release and no
            // one would hold it. Refused, the sender keeps its copy
            // (spec/custody.md, "Two holders"). From the sender itself (a
            // lost custody signal, a resend) it is a duplicate as before,
            // and so it is with unlimited copies here: we never release
            // those on a "duplicate", so one copy stays.
            if let Some(f) = from
                && rec.copies != COPIES_UNLIMITED
                && rec.received_from.as_ref() != Some(&f.node_id())
            {
                return Ok(Err(refusal(
                    "held_elsewhere",
                    "held here already, received from another node",
                    IN_TRANSIT,
                )));
            }
            return Ok(Ok(None));
        }
        if txn.is_delivered(&key)? {
            return Ok(Ok(None));
        }
        let expiry = match check_bundle(bundle, now) {
            Ok(e) => e,
            Err(r) => return Ok(Err(r)),
        };
        let content = match content.unwrap_or_else(|| check_content(bundle)) {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        Ok(Ok(Some((expiry, content))))
    }

    fn new_record(
        &self,
        now: DtnTime,
        b: &Bundle,
        from: Option<&Eid>,
        size: usize,
        expiry: u64,
        content: Option<(PayloadKind, Vec<u8>)>,
    ) -> BundleRecord {
        let (kind, cid) = match content {
            Some((k, c)) => (k, Some(c)),
            None if b.is_admin_record() => (PayloadKind::Admin, None),
            None => (PayloadKind::Plain, None),
        };
        let mut rec = BundleRecord {
            id: b.id(),
            destination: b.primary.destination.clone(),
            report_to: b.primary.report_to.clone(),
            state: BundleState::Stored,
            custodian: Some(self.cfg.node_id.clone()),
            received_from: from.map(Eid::node_id),
            received_at_ms: now.0,
            expiry_ms: expiry,
            size_bytes: size as u64,
            kind,
            cid,
            flags: b.primary.flags.0,
            history: Vec::new(),
            copies: match from {
                Some(_) => {
                    let advertised = b.copy_count().ok().flatten().unwrap_or(1);
                    self.router.received_copies(advertised)
                }
                None => self.router.initial_copies(),
            },
            received_transmission: from
                .and(b.custody().ok().flatten())
                .and_then(|c| c.transmission),
        };
        match from {
            Some(f) => rec.log(now, format!("received from {f}; custody accepted")),
            None => rec.log(now, "submitted locally; custody accepted"),
        }
        rec
    }

    fn store_for_forwarding(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        b: &Bundle,
        rec: &mut BundleRecord,
        raw: Raw<'_>,
        after: &mut AfterCommit,
    ) -> Result<Outcome, AgentError> {
        let key = rec.id.to_key();
        self.put_payload(txn, b, rec, &key, raw)?;
        txn.expiry_add(rec.expiry_ms, &key)?;
        if rec.kind == PayloadKind::Manifest {
            let local_source = rec.received_from.is_none();
            let role = if local_source {
                FileRole::Source
            } else {
                FileRole::Relay
            };
            if let Err(r) = self.note_manifest(txn, now, b, rec, role, after)? {
                return Ok(Outcome::Refused(r));
            }
        }
        txn.put_record(rec)?;
        self.add_held_bytes(rec.size_bytes as i64);
        self.usage.add(rec.received_from.as_ref(), rec.size_bytes);
        self.fill_needed = true;
        debug!(bundle = %rec.id, "stored for forwarding");
        Ok(Outcome::Stored)
    }

    /// Stores the bundle's bytes: chunk payloads once per CID, the rest of
    /// the bundle (payload emptied) under its key.
    fn put_payload(
        &mut self,
        txn: &mut Txn,
        b: &Bundle,
        rec: &BundleRecord,
        key: &[u8],
        raw: Raw<'_>,
    ) -> Result<(), AgentError> {
        match (&rec.kind, &rec.cid) {
            (PayloadKind::Chunk, Some(cid)) => {
                let payload = b.payload().cloned().unwrap_or_default();
                txn.chunk_ref(cid, &payload)?;
                txn.set_chunk_bundle(cid, key)?;
                let mut skeleton = b.clone();
                skeleton.set_payload(Bytes::new());
                txn.put_bytes(key, &codec::encode(&skeleton))?;
            }
            _ => txn.put_bytes(key, &raw.bytes(b))?,
        }
        Ok(())
    }

    fn deliver_here(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        b: &Bundle,
        rec: &mut BundleRecord,
        raw: Raw<'_>,
        after: &mut AfterCommit,
    ) -> Result<Outcome, AgentError> {
        let key = rec.id.to_key();
        let service = b.primary.destination.service().unwrap_or_default();
        rec.state = BundleState::Delivered;
        rec.custodian = None;
        // Remembered until a late copy would be refused as expired; a bundle
        // whose expiry came from its age (no clock) is remembered for good.
        let forget_at = (b.primary.creation_timestamp.time.0 != 0)
            .then(|| rec.expiry_ms.saturating_add(self.cfg.delivered_grace_ms));
        txn.mark_delivered(&key, now.0, forget_at)?;
        let files = service == self.cfg.files_service;
        match (rec.kind, files) {
            (PayloadKind::Admin, _) => self.take_admin_record(txn, now, b, rec)?,
            (PayloadKind::Chunk, true) => {
                let cid = rec.cid.clone().unwrap_or_default();
                txn.chunk_ref(&cid, b.payload().map(|p| p.as_ref()).unwrap_or_default())?;
                txn.set_chunk_bundle(&cid, &key)?;
                txn.inbox_add(&cid, &key)?;
                txn.expiry_add(rec.expiry_ms, &key)?;
                rec.log(now, "delivered to the file inbox (waiting for reassembly)");
                after.chunks_arrived.push(cid);
            }
            (PayloadKind::Manifest, true) => {
                if let Err(r) =
                    self.note_manifest(txn, now, b, rec, FileRole::Destination, after)?
                {
                    return Ok(Outcome::Refused(r));
                }
                rec.log(now, "manifest delivered to the file inbox");
            }
            _ => {
                txn.put_bytes(&key, &raw.bytes(b))?;
                txn.expiry_add(rec.expiry_ms, &key)?;
                rec.log(now, format!("delivered to service {service:?}"));
                let payload = b.payload().cloned().unwrap_or_default();
                if service == crate::jobs::JOBS_SERVICE {
                    // Durable before the custody signal (spec/jobs.md §3).
                    txn.job_pending_put(&key, &payload)?;
                }
                after.deliveries.push(Action::Deliver {
                    id: rec.id.clone(),
                    service,
                    payload,
                });
            }
        }
        txn.put_record(rec)?;
        // Chunks at debug level: the file's own line says it arrived.
        if rec.kind == PayloadKind::Chunk {
            debug!(bundle = %rec.id, "delivered");
        } else {
            info!(bundle = %rec.id, "delivered");
        }
        Ok(Outcome::Delivered)
    }

    /// Records a manifest's file (any role). For the destination role, a
    /// manifest that does not decode is refused.
    fn note_manifest(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        b: &Bundle,
        rec: &BundleRecord,
        role: FileRole,
        after: &mut AfterCommit,
    ) -> Result<Result<(), Refusal>, AgentError> {
        let payload = b.payload().map(|p| p.as_ref()).unwrap_or_default();
        let m = match Manifest::decode(payload, self.cfg.max_manifest_entries) {
            Ok(m) => m,
            Err(e) if role == FileRole::Destination => {
                return Ok(Err(refusal("bad_manifest", e.to_string(), INVALID)));
            }
            Err(e) => {
                warn!(bundle = %rec.id, error = %e, "manifest in transit does not decode; forwarding it as opaque");
                return Ok(Ok(()));
            }
        };
        let cid = rec.cid.clone().unwrap_or_default();
        if txn.file(&cid)?.is_none() || role == FileRole::Destination {
            txn.put_file(&FileRecord {
                manifest_cid: cid.clone(),
                manifest_bundle: rec.id.clone(),
                name: m.name.clone(),
                size_bytes: m.size,
                chunks: m.chunks.iter().map(|c| c.to_bytes()).collect(),
                role,
                destination: rec.destination.clone(),
                path: None,
                completed_ms: None,
                manifest: payload.to_vec(),
            })?;
        }
        if role == FileRole::Destination {
            after.manifests_arrived.push(cid);
        }
        let _ = now;
        Ok(Ok(()))
    }

    fn take_admin_record(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        b: &Bundle,
        rec: &mut BundleRecord,
    ) -> Result<(), AgentError> {
        let payload = b.payload().map(|p| p.as_ref()).unwrap_or_default();
        match AdministrativeRecord::decode(payload) {
            Ok(AdministrativeRecord::StatusReport(sr)) => {
                let key = sr.subject.to_key();
                rec.log(now, format!("status report about {}", sr.subject));
                if let Some(mut subject) = txn.record(&key)? {
                    subject.log(
                        now,
                        format!(
                            "status report from {}: {}",
                            b.primary.source,
                            report_summary(&sr)
                        ),
                    );
                    txn.put_record(&subject)?;
                }
            }
            Ok(other) => {
                rec.log(now, format!("administrative record ignored: {other:?}"));
            }
            Err(e) => {
                warn!(bundle = %rec.id, error = %e, "administrative record does not decode");
                self.count("refused_bad_admin_record");
            }
        }
        Ok(())
    }

    /// Creates a status report about `subject` if its flags ask for `kind`,
    /// and accepts it like any locally created bundle.
    pub(super) fn report(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        subject: &Bundle,
        kind: StatusKind,
        reason: ReasonCode,
        after: &mut AfterCommit,
    ) -> Result<(), AgentError> {
        if !subject.primary.flags.contains(kind.request_flag()) {
            return Ok(()); // not asked for: do not spend a sequence number
        }
        let seq = self.next_timestamp(now).sequence;
        let lifetime = self.cfg.status_report_lifetime_ms;
        let node = self.cfg.node_id.clone();
        let Some(report) = status_report_bundle(&node, subject, kind, reason, now, seq, lifetime)
        else {
            return Ok(());
        };
        let raw = codec::encode(&report);
        self.count("status_reports_sent");
        // A status report is never about a status report, so this recursion
        // is one level deep.
        self.accept(txn, now, report, None, Raw::Encoded(&raw), after, None)?;
        Ok(())
    }

    /// Emits deliveries and reassembly requests once the commit is durable.
    pub(super) fn after_commit(
        &mut self,
        after: AfterCommit,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        out.extend(after.deliveries);
        for m in after.manifests_arrived {
            self.watch_manifest(&m, out)?;
        }
        for c in after.chunks_arrived {
            self.chunk_arrived(&c, out)?;
        }
        Ok(())
    }
}

/// The checks of an arriving bundle that need no store: unknown blocks
/// asking for deletion (RFC 9171 §4.2.4), lifetime (§4.3.1, with the
/// bundle age block of §4.4.2 when the creation time is 0), hop limit
/// (§4.4.3) and a
/// destination other than `dtn:none`. Returns the expiry, DTN ms.
///
/// # Errors
/// The [`Refusal`] (with its status-report reason where RFC 9171 has one).
fn check_bundle(bundle: &mut Bundle, now: DtnTime) -> Result<u64, Refusal> {
    let unknown = process_unknown_blocks(bundle);
    if unknown.delete_bundle {
        let mut r = refusal(
            "unintelligible_block",
            "an unknown block asks for deletion",
            INVALID,
        );
        r.report = Some(ReasonCode::BlockUnintelligible);
        return Err(r);
    }
    let expiry = expiry_ms(bundle, now)?;
    if expiry <= now.0 {
        let mut r = refusal(
            "expired",
            format!("lifetime ended at DTN ms {expiry}"),
            CustodyReason::Expired,
        );
        r.report = Some(ReasonCode::LifetimeExpired);
        return Err(r);
    }
    if let Ok(Some(h)) = bundle.hop_count() {
        if h.count > h.limit {
            let mut r = refusal(
                "hop_limit",
                format!("hop count {} > limit {}", h.count, h.limit),
                INVALID,
            );
            r.report = Some(ReasonCode::HopLimitExceeded);
            return Err(r);
        }
    }
    if bundle.primary.destination.is_none() {
        return Err(refusal(
            "no_destination",
            "addressed to dtn:none",
            NO_DESTINATION,
        ));
    }
    Ok(expiry)
}

/// "delivered at 812345 ms; reason NoInformation" style text for a history line.
fn report_summary(sr: &crate::bundle::admin::StatusReport) -> String {
    use crate::bundle::admin::StatusAssertion;
    let mut parts = Vec::new();
    for (name, a) in [
        ("received", sr.received),
        ("forwarded", sr.forwarded),
        ("delivered", sr.delivered),
        ("deleted", sr.deleted),
    ] {
        match a {
            StatusAssertion::No => {}
            StatusAssertion::Yes => parts.push(name.to_owned()),
            StatusAssertion::At(t) => parts.push(format!("{name} at DTN ms {}", t.0)),
        }
    }
    format!("{} (reason {:?})", parts.join(", "), sr.reason)
}
