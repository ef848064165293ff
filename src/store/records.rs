//! Values kept in the store's tables (CBOR-encoded with serde).

use crate::bundle::{BundleId, DtnTime, Eid};
use serde::{Deserialize, Serialize};

/// Most history entries kept per bundle; older ones are dropped (the first
/// entry is always kept).
pub const MAX_HISTORY: usize = 64;

/// Where a bundle is in its life here (spec/custody.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleState {
    /// Held durably, in our custody, waiting for a contact.
    Stored,
    /// Transmitted to a peer, custody signal not yet received.
    InFlight,
    /// Another node accepted custody; our copy is released.
    CustodyTransferred,
    /// Delivered to a local application (or the file inbox) at this node.
    Delivered,
    /// Lifetime ran out; deleted.
    Expired,
    /// Deleted for another recorded reason.
    Deleted,
}

impl BundleState {
    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleState::Stored => "stored",
            BundleState::InFlight => "in_flight",
            BundleState::CustodyTransferred => "custody_transferred",
            BundleState::Delivered => "delivered",
            BundleState::Expired => "expired",
            BundleState::Deleted => "deleted",
        }
    }

    /// True while this node still holds the bundle's bytes for forwarding.
    pub fn is_held(self) -> bool {
        matches!(self, BundleState::Stored | BundleState::InFlight)
    }
}

/// What a bundle's payload is, as far as spore cares.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// Opaque application data.
    Plain,
    /// A file chunk named by a raw CID (content block present).
    Chunk,
    /// A file manifest named by a dag-cbor CID.
    Manifest,
    /// An administrative record (status report).
    Admin,
}

/// One line of a bundle's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When, in DTN ms.
    pub at_ms: u64,
    /// What happened, e.g. `custody transferred to dtn://c/`.
    pub event: String,
}

/// Everything we know about one bundle (table `bundles-0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRecord {
    /// Bundle ID.
    pub id: BundleId,
    /// Destination EID.
    pub destination: Eid,
    /// Report-to EID.
    pub report_to: Eid,
    /// Current state.
    pub state: BundleState,
    /// Who holds custody: this node while held, the next custodian after a
    /// transfer, none once delivered/expired/deleted.
    pub custodian: Option<Eid>,
    /// Node the bundle came from (None for a local submission).
    pub received_from: Option<Eid>,
    /// When this node first stored it, DTN ms.
    pub received_at_ms: u64,
    /// Expiry, DTN ms.
    pub expiry_ms: u64,
    /// Encoded size in bytes (with payload).
    pub size_bytes: u64,
    /// Payload kind.
    pub kind: PayloadKind,
    /// Content CID bytes (chunk or manifest), if any.
    pub cid: Option<Vec<u8>>,
    /// RFC 9171 bundle processing flags (for status reports after the bytes are gone).
    pub flags: u64,
    /// History, oldest first, at most [`MAX_HISTORY`] entries.
    pub history: Vec<HistoryEntry>,
    /// Copies of the bundle this node holds while it is held (spec/routing.md
    /// §2); `u32::MAX` = unlimited. Records written before copies existed read as 1.
    #[serde(default = "one_copy")]
    pub copies: u32,
    /// The previous custodian's number for the transmission this copy came
    /// by (its custody block), echoed in our contact summary to that node
    /// (spec/custody.md, "Lost custody signals"). `None` for a local
    /// submission, a block without one, and records written before.
    #[serde(default)]
    pub received_transmission: Option<u64>,
}

fn one_copy() -> u32 {
    1
}

impl BundleRecord {
    /// Appends a history line, keeping the first and the latest entries.
    pub fn log(&mut self, now: DtnTime, event: impl Into<String>) {
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(1);
        }
        self.history.push(HistoryEntry {
            at_ms: now.0,
            event: event.into(),
        });
    }
}

/// The routing-relevant part of a [`BundleRecord`], decoded without the
/// history and EIDs routing does not need (cheap per-contact scans).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RecordHead {
    /// Destination EID.
    pub destination: Eid,
    /// Current state.
    pub state: BundleState,
    /// Node the bundle came from (None for a local submission).
    pub received_from: Option<Eid>,
    /// Expiry, DTN ms.
    pub expiry_ms: u64,
    /// Encoded size in bytes.
    pub size_bytes: u64,
    /// Copies held here.
    #[serde(default = "one_copy")]
    pub copies: u32,
    /// See [`BundleRecord::received_transmission`].
    #[serde(default)]
    pub received_transmission: Option<u64>,
}

impl From<&BundleRecord> for RecordHead {
    fn from(r: &BundleRecord) -> RecordHead {
        RecordHead {
            destination: r.destination.clone(),
            state: r.state,
            received_from: r.received_from.clone(),
            expiry_ms: r.expiry_ms,
            size_bytes: r.size_bytes,
            copies: r.copies,
            received_transmission: r.received_transmission,
        }
    }
}

/// What this node knows about a peer (table `peers-0`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Peer node ID.
    pub node_id: String,
    /// Last known QUIC address.
    pub addr: Option<String>,
    /// True if this node dials the peer (static peer from config, `--peer`
    /// or `spore peers add`).
    pub dial: bool,
    /// Smoothed RTT in µs (RFC 6298 style, from QUIC).
    pub srtt_us: Option<u64>,
    /// Last contact start, DTN ms.
    pub last_contact_ms: Option<u64>,
    /// Last contact end, DTN ms.
    pub last_seen_ms: Option<u64>,
    /// Number of contacts so far.
    pub contacts: u64,
    /// Bundles sent to this peer whose custody it accepted.
    pub bundles_sent: u64,
    /// Bundles received from this peer and accepted.
    pub bundles_received: u64,
    /// Routing estimates (RTT, contact history, bytes moved), updated on
    /// every contact (spec/routing.md §3).
    #[serde(default)]
    pub estimate: Option<crate::routing::PeerEstimate>,
}

/// A file's role at this node.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// Submitted here with `spore send`.
    Source,
    /// Passing through.
    Relay,
    /// Addressed to this node's `files` service.
    Destination,
}

/// A file known by its manifest (table `files-0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Manifest CID bytes.
    pub manifest_cid: Vec<u8>,
    /// The manifest bundle's ID.
    pub manifest_bundle: BundleId,
    /// File name (sanitized base name).
    pub name: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Chunk CIDs in order (binary).
    pub chunks: Vec<Vec<u8>>,
    /// Role here.
    pub role: FileRole,
    /// Destination EID.
    pub destination: Eid,
    /// Where the file was written (destination only), once complete.
    pub path: Option<String>,
    /// When it was written, DTN ms.
    pub completed_ms: Option<u64>,
    /// The manifest's encoding (spec/manifest.md), kept to resume reassembly.
    /// Written as a CBOR byte string; records written before that (an
    /// array of integers, several times larger and slower to read) still
    /// decode.
    #[serde(with = "serde_bytes")]
    pub manifest: Vec<u8>,
}

/// A [`FileRecord`] without its chunk list (read from the same rows; the
/// `chunks` field is stepped over, not allocated): for loops that look at
/// every file often and need a file's chunks only now and then.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FileHead {
    /// Manifest CID bytes.
    pub manifest_cid: Vec<u8>,
    /// The manifest bundle's ID.
    pub manifest_bundle: BundleId,
    /// Role here.
    pub role: FileRole,
    /// Destination EID.
    pub destination: Eid,
    /// Where the file was written (destination only), once complete.
    pub path: Option<String>,
    /// The manifest's encoding (see [`FileRecord::manifest`]).
    #[serde(with = "serde_bytes")]
    pub manifest: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record as it was written before `manifest` became a byte string.
    #[derive(Serialize)]
    struct OldFileRecord<'a> {
        manifest_cid: Vec<u8>,
        manifest_bundle: &'a BundleId,
        name: String,
        size_bytes: u64,
        chunks: Vec<Vec<u8>>,
        role: FileRole,
        destination: Eid,
        path: Option<String>,
        completed_ms: Option<u64>,
        manifest: Vec<u8>,
    }

    #[test]
    fn file_record_manifest_is_a_byte_string_and_old_records_still_decode() {
        let id = BundleId {
            source: "dtn://a/".parse().unwrap(),
            timestamp: crate::bundle::CreationTimestamp {
                time: crate::bundle::DtnTime(1),
                sequence: 2,
            },
            fragment_offset: None,
        };
        let manifest: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let old = OldFileRecord {
            manifest_cid: vec![1, 0x71],
            manifest_bundle: &id,
            name: "f".into(),
            size_bytes: 9,
            chunks: vec![vec![7; 36]],
            role: FileRole::Destination,
            destination: "dtn://c/files".parse().unwrap(),
            path: None,
            completed_ms: None,
            manifest: manifest.clone(),
        };
        let old_bytes = serde_cbor::to_vec(&old).unwrap();
        let rec: FileRecord = serde_cbor::from_slice(&old_bytes).unwrap();
        assert_eq!(rec.manifest, manifest);
        let new_bytes = serde_cbor::to_vec(&rec).unwrap();
        assert!(
            new_bytes.len() < old_bytes.len() - 2000,
            "byte string: {} bytes, was {}",
            new_bytes.len(),
            old_bytes.len()
        );
        let back: FileRecord = serde_cbor::from_slice(&new_bytes).unwrap();
        assert_eq!(back, rec);
    }
}
