//! Read-only views for `spore status` and `spore peers` (JSON shapes are
//! part of the command-line contract in README.md).

use super::{Agent, AgentError};
use crate::bundle::{BundleId, DtnTime, Eid};
use crate::content;
use crate::store::records::{BundleRecord, FileRecord, HistoryEntry};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One bundle as `spore status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct BundleView {
    /// Bundle ID (`SOURCE#TIME.SEQ`).
    pub id: BundleId,
    /// Destination EID.
    pub destination: Eid,
    /// `stored`, `in_flight`, `custody_transferred`, `delivered`, `expired` or `deleted`.
    pub state: &'static str,
    /// Current custodian, if any.
    pub custodian: Option<Eid>,
    /// Node it came from.
    pub received_from: Option<Eid>,
    /// Payload kind (`plain`, `chunk`, `manifest`, `admin`).
    pub kind: String,
    /// Content CID (base32), for chunks and manifests.
    pub cid: Option<String>,
    /// Encoded size, bytes.
    pub size_bytes: u64,
    /// Expiry, DTN ms.
    pub expiry_ms: u64,
    /// History, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// One file as `spore status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct FileView {
    /// Manifest CID (base32).
    pub cid: String,
    /// File name.
    pub name: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// `source`, `relay` or `destination`.
    pub role: String,
    /// Destination EID.
    pub destination: Eid,
    /// Distinct chunks in the file.
    pub chunks_total: usize,
    /// Chunk counts by bundle state here (`stored`, `in_flight`,
    /// `custody_transferred`, `delivered`, `expired`, `deleted`, `unknown`).
    pub chunks: BTreeMap<&'static str, usize>,
    /// Where it was written (destination), once complete.
    pub path: Option<String>,
}

/// A peer as `spore peers` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerView {
    /// Node ID.
    pub node_id: String,
    /// Last known address.
    pub addr: Option<String>,
    /// In contact now.
    pub connected: bool,
    /// Smoothed RTT, ms.
    pub srtt_ms: Option<f64>,
    /// RTT variation, ms.
    pub rttvar_ms: Option<f64>,
    /// Last contact start, DTN ms.
    pub last_contact_ms: Option<u64>,
    /// Last contact end, DTN ms.
    pub last_seen_ms: Option<u64>,
    /// Contacts so far.
    pub contacts: u64,
    /// Bundles whose custody it accepted from us.
    pub bundles_sent: u64,
    /// Bundles we accepted from it.
    pub bundles_received: u64,
    /// Mean time between contacts, seconds (once two contacts were seen).
    pub mean_inter_contact_s: Option<f64>,
    /// Mean contact duration, seconds (once a contact ended).
    pub mean_contact_s: Option<f64>,
    /// Expected wait until the peer can take a bundle, seconds
    /// (spec/routing.md §3).
    pub expected_wait_s: Option<f64>,
    /// Bundle bytes sent to it (accepted).
    pub bytes_sent: u64,
    /// Bundle bytes received from it.
    pub bytes_received: u64,
}

/// Everything `spore status --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    /// This node.
    pub node_id: Eid,
    /// Bundles (newest last), possibly filtered.
    pub bundles: Vec<BundleView>,
    /// Files, possibly filtered.
    pub files: Vec<FileView>,
    /// Counters (refusals by reason, duplicates, expiries, …).
    pub counters: BTreeMap<String, u64>,
    /// Payload bytes held for forwarding.
    pub held_bytes: u64,
    /// Bytes of blob segment files on disk (chunks of 16 KiB or more,
    /// including dead space not yet reclaimed; spec/store.md §Blob segments).
    pub blob_bytes: u64,
}

impl Agent {
    /// Status, optionally only for one bundle ID or one CID (manifest or chunk).
    /// At most `limit` bundles are listed.
    ///
    /// # Errors
    /// [`AgentError::Store`] if the store cannot be read.
    pub fn status(&self, filter: Option<&str>, limit: usize) -> Result<StatusView, AgentError> {
        let mut bundles = Vec::new();
        let files: Vec<FileRecord> = self.store.files()?;
        let files: Vec<FileRecord> = match filter {
            Some(f) => files
                .into_iter()
                .filter(|r| cid_text(&r.manifest_cid) == f)
                .collect(),
            None => files,
        };
        match filter {
            Some(f) if files.is_empty() => {
                // A bundle ID is one index lookup; a chunk CID goes through
                // the CID index.
                let key = match f.parse::<BundleId>() {
                    Ok(id) => Some(id.to_key()),
                    Err(_) => match content::cid_from_str(f) {
                        Ok(cid) => self.store.chunk_bundle(&cid.to_bytes())?,
                        Err(_) => None,
                    },
                };
                if let Some(rec) = key.map(|k| self.store.record(&k)).transpose()?.flatten() {
                    bundles.push(self.view(rec));
                }
            }
            Some(_) => {
                for f in &files {
                    let mut keys = vec![f.manifest_bundle.to_key()];
                    for c in f.chunks.iter().collect::<BTreeSet<_>>() {
                        keys.extend(self.store.chunk_bundle(c)?);
                    }
                    for k in keys {
                        bundles.extend(self.store.record(&k)?.map(|r| self.view(r)));
                    }
                }
            }
            None => {
                bundles = self
                    .store
                    .records(limit)?
                    .into_iter()
                    .map(|r| self.view(r))
                    .collect()
            }
        }
        bundles.truncate(limit);
        let mut file_views = Vec::new();
        for f in files {
            file_views.push(self.file_view(f)?);
        }
        let mut counters: BTreeMap<String, u64> = self.store.counters()?.into_iter().collect();
        if self.store_errors > 0 {
            counters.insert("store_errors".into(), self.store_errors);
        }
        Ok(StatusView {
            node_id: self.cfg.node_id.clone(),
            bundles,
            files: file_views,
            counters,
            held_bytes: self.held_bytes,
            blob_bytes: self.store.blob_disk_bytes(),
        })
    }

    fn state_of(&self, rec: &BundleRecord) -> &'static str {
        if rec.state.is_held() && self.in_flight.any(&rec.id.to_key()) {
            "in_flight"
        } else {
            rec.state.as_str()
        }
    }

    fn view(&self, rec: BundleRecord) -> BundleView {
        BundleView {
            state: self.state_of(&rec),
            cid: rec.cid.as_deref().map(cid_text),
            kind: format!("{:?}", rec.kind).to_lowercase(),
            id: rec.id,
            destination: rec.destination,
            custodian: rec.custodian,
            received_from: rec.received_from,
            size_bytes: rec.size_bytes,
            expiry_ms: rec.expiry_ms,
            history: rec.history,
        }
    }

    fn file_view(&self, f: FileRecord) -> Result<FileView, AgentError> {
        let distinct: BTreeSet<&Vec<u8>> = f.chunks.iter().collect();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for cid in &distinct {
            let state = match self.store.chunk_bundle(cid)? {
                Some(k) => match self.store.record(&k)? {
                    Some(r) => self.state_of(&r),
                    None => "unknown",
                },
                None => "unknown",
            };
            *counts.entry(state).or_default() += 1;
        }
        Ok(FileView {
            cid: cid_text(&f.manifest_cid),
            name: f.name,
            size_bytes: f.size_bytes,
            role: format!("{:?}", f.role).to_lowercase(),
            destination: f.destination,
            chunks_total: distinct.len(),
            chunks: counts,
            path: f.path,
        })
    }

    /// Peer table with live contact state and RTT estimates.
    ///
    /// # Errors
    /// [`AgentError::Store`] if the store cannot be read.
    pub fn peer_views(&self, now: DtnTime) -> Result<Vec<PeerView>, AgentError> {
        let mut out = Vec::new();
        for p in self.store.peers()? {
            let eid: Option<Eid> = p.node_id.parse().ok();
            let est = eid.as_ref().and_then(|e| self.router.estimate(e));
            let rtt = est.map(|e| e.rtt).filter(|r| r.samples > 0);
            let connected = eid.as_ref().is_some_and(|e| self.contacts.contains_key(e));
            let srtt = rtt.map(|e| e.srtt_us).or(p.srtt_us);
            let now = now.0;
            out.push(PeerView {
                connected,
                srtt_ms: srtt.map(|us| us as f64 / 1000.0),
                rttvar_ms: rtt.map(|e| e.rttvar_us as f64 / 1000.0),
                mean_inter_contact_s: est
                    .and_then(|e| e.mean_inter_contact_ms())
                    .map(|m| m / 1000.0),
                mean_contact_s: est.and_then(|e| e.mean_contact_ms()).map(|m| m / 1000.0),
                expected_wait_s: est
                    .and_then(|e| e.expected_wait_ms(now))
                    .map(|m| m / 1000.0),
                bytes_sent: est.map_or(0, |e| e.bytes_sent),
                bytes_received: est.map_or(0, |e| e.bytes_received),
                node_id: p.node_id,
                addr: p.addr,
                last_contact_ms: est.and_then(|e| e.last_start_ms).or(p.last_contact_ms),
                last_seen_ms: est.and_then(|e| e.last_end_ms).or(p.last_seen_ms),
                contacts: est.map_or(p.contacts, |e| e.contacts),
                bundles_sent: p.bundles_sent,
                bundles_received: p.bundles_received,
            });
        }
        Ok(out)
    }
}

/// A CID's base32 text, or hex if the bytes are not a CID.
pub fn cid_text(bytes: &[u8]) -> String {
    content::cid_from_bytes(bytes).map_or_else(|_| hex::encode(bytes), |c| c.to_string())
}

/// What the routing policy would do now with one held bundle (`spore routes`).
#[derive(Clone, Debug, Serialize)]
pub struct RouteView {
    /// Bundle ID.
    pub bundle: BundleId,
    /// Destination EID.
    pub destination: Eid,
    /// Copies held here; `None` = unlimited.
    pub copies: Option<u32>,
    /// Expiry, DTN ms.
    pub expiry_ms: u64,
    /// Our expected delay to the destination node, seconds (spec/routing.md §4).
    pub delay_estimate_s: Option<f64>,
    /// The decision for each peer in contact.
    pub peers: Vec<RouteDecisionView>,
}

/// The policy's decision for one bundle and one peer in contact.
#[derive(Clone, Debug, Serialize)]
pub struct RouteDecisionView {
    /// Peer node ID.
    pub peer: Eid,
    /// `direct`, `forward` or `hold`.
    pub action: &'static str,
    /// Copies it would hand over (`None` = unlimited or not sending).
    pub give: Option<u32>,
    /// Why not, for `hold` (snake_case reason).
    pub reason: Option<&'static str>,
    /// The peer's advertised delay to the destination, seconds.
    pub peer_delay_s: Option<f64>,
}

impl Agent {
    /// The policy's view of up to `limit` held bundles at `now`: our delay
    /// estimate and the decision for every peer in contact (in-flight and
    /// already-given peers included; the window is not applied).
    ///
    /// # Errors
    /// [`AgentError::Store`] if the store cannot be read.
    pub fn route_views(&self, now: DtnTime, limit: usize) -> Result<Vec<RouteView>, AgentError> {
        use crate::routing::{COPIES_UNLIMITED, Decision};
        let finite = |n: u32| (n != COPIES_UNLIMITED).then_some(n);
        let mut out = Vec::new();
        for key in self.store.held_keys(limit)? {
            let Some(rec) = self.store.record(&key)? else {
                continue;
            };
            let dest = rec.destination.node_id();
            let mut peers = Vec::new();
            for peer in self.contacts.keys() {
                let head = crate::store::records::RecordHead::from(&rec);
                let (action, give, reason) = match self.decision(now, peer, &key, &head) {
                    Decision::Direct => ("direct", finite(rec.copies), None),
                    Decision::Forward { give } => ("forward", finite(give.min(rec.copies)), None),
                    Decision::Hold(r) => ("hold", None, Some(r.as_str())),
                };
                let peer_delay_s = self
                    .router
                    .advertised_delay(peer, &dest)
                    .map(|ms| ms / 1000.0);
                peers.push(RouteDecisionView {
                    peer: peer.clone(),
                    action,
                    give,
                    reason,
                    peer_delay_s,
                });
            }
            out.push(RouteView {
                delay_estimate_s: self.router.delay_to(now.0, &dest).map(|ms| ms / 1000.0),
                bundle: rec.id,
                destination: rec.destination,
                copies: finite(rec.copies),
                expiry_ms: rec.expiry_ms,
                peers,
            });
        }
        Ok(out)
    }
}
