//! Local submissions: bundles built or handed in by this node's clients,
//! stored in one transaction, all or nothing.

use super::ingest::{AfterCommit, ContentCheck, Outcome};
use super::raw::Raw;
use super::{Action, Agent, AgentError, Submission};
use crate::bundle::codec;
use crate::bundle::{Bundle, BundleId, DtnTime};
use crate::content::{self, DAG_CBOR_CODEC, RAW_CODEC};
use crate::store::Txn;
use crate::store::records::PayloadKind;
use bytes::Bytes;

/// The content kind of a locally submitted payload whose CID the caller
/// computed ([`Submission::Data`]); `None` (hash it) for other codecs.
fn submitted_content(cid_bytes: &[u8]) -> Option<ContentCheck> {
    let kind = match content::cid_from_bytes(cid_bytes).ok()?.codec() {
        RAW_CODEC => PayloadKind::Chunk,
        DAG_CBOR_CODEC => PayloadKind::Manifest,
        _ => return None,
    };
    Some(Ok(Some((kind, cid_bytes.to_vec()))))
}

impl Agent {
    /// Handles a local submission: all items in one transaction, all or nothing.
    pub(super) fn submit(
        &mut self,
        now: DtnTime,
        ticket: u64,
        items: Vec<Submission>,
        out: &mut Vec<Action>,
    ) -> Result<(), AgentError> {
        let mut txn = self.store.write()?;
        let mut after = AfterCommit::default();
        // Undone if the submission is refused (the transaction is dropped).
        let before = (self.next_seq, self.held_bytes);
        let peers_before = self.peer_tally.clone();
        let usage_before = self.usage.clone();
        match self.submit_items(&mut txn, now, items, &mut after)? {
            Ok(ids) => {
                self.commit(txn)?;
                out.push(Action::Submitted {
                    ticket,
                    result: Ok(ids),
                });
                self.after_commit(after, out)
            }
            Err(msg) => {
                (self.next_seq, self.held_bytes) = before;
                self.peer_tally = peers_before;
                self.usage = usage_before;
                out.push(Action::Submitted {
                    ticket,
                    result: Err(msg),
                });
                Ok(()) // txn dropped: nothing stored
            }
        }
    }

    /// Builds and accepts every item in `txn`; the stored bundle IDs, or
    /// why the first refused item was refused.
    fn submit_items(
        &mut self,
        txn: &mut Txn,
        now: DtnTime,
        items: Vec<Submission>,
        after: &mut AfterCommit,
    ) -> Result<Result<Vec<BundleId>, String>, AgentError> {
        let mut ids = Vec::new();
        for item in items {
            if let Submission::JobResult { job, .. } = &item {
                txn.job_pending_remove(&job.to_key())?;
            }
            let (bundle, bytes, content) = match self.build_submission(now, item) {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            let id = bundle.id();
            let raw = match &bytes {
                Some(bytes) => Raw::Encoded(bytes),
                None => Raw::Built(codec::encoded_len(&bundle)),
            };
            match self.accept(txn, now, bundle, None, raw, after, content)? {
                Outcome::Stored | Outcome::Delivered | Outcome::Duplicate => ids.push(id),
                Outcome::Refused(r) => {
                    return Ok(Err(format!(
                        "bundle {id} refused ({}): {}",
                        r.label, r.detail
                    )));
                }
            }
        }
        Ok(Ok(ids))
    }

    /// The bundle, its encoding if it was submitted encoded (a bundle
    /// built from [`Submission::Data`] is encoded only if it is stored
    /// whole: [`Raw::Built`]) and, for [`Submission::Data`] with a
    /// content CID, its content kind (the caller computed the CID over the
    /// payload, so it is not hashed again).
    fn build_submission(
        &mut self,
        now: DtnTime,
        item: Submission,
    ) -> Result<(Bundle, Option<Bytes>, Option<ContentCheck>), String> {
        match item {
            Submission::Encoded(bytes) | Submission::JobResult { bundle: bytes, .. } => {
                let b = codec::decode_shared(&bytes, &self.cfg.decode_limits)
                    .map_err(|e| format!("invalid bundle: {e}"))?;
                Ok((b, Some(bytes), None))
            }
            Submission::Data {
                destination,
                payload,
                lifetime_ms,
                flags,
                content_cid,
                expires_by_ms,
            } => {
                let ts = self.next_timestamp(now);
                let mut lifetime = lifetime_ms.unwrap_or(self.cfg.default_lifetime_ms);
                if let Some(by) = expires_by_ms {
                    let left = by.saturating_sub(ts.time.0);
                    if left == 0 {
                        return Err(format!(
                            "expires by {by} ms, not after its creation time {} ms",
                            ts.time.0
                        ));
                    }
                    lifetime = lifetime.min(left);
                }
                let mut b =
                    Bundle::new(self.cfg.node_id.clone(), destination, ts, lifetime, payload);
                b.primary.flags.0 |= flags;
                let known = content_cid.as_deref().and_then(submitted_content);
                if let Some(cid) = content_cid {
                    b.set_content_cid(&cid);
                }
                Ok((b, None, known))
            }
        }
    }
}
