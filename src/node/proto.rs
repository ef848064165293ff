//! Node-level control messages carried on the CL control stream after the
//! CLA's Hello (spec/cl-quic.md §"Control messages").

use crate::agent::FromYou;
use crate::bundle::BundleId;
use crate::routing::Advert;
use serde::{Deserialize, Serialize};

/// A control-stream message between two nodes in contact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlMessage {
    /// Sent first by each side: bundle IDs it holds or delivered (bounded by
    /// the sender's summary limit), so the other side does not send them.
    Summary {
        /// Bundle IDs.
        held: Vec<BundleId>,
        /// Those of `held` the sender received from the receiver of this
        /// message: their custody signals may have been lost, and the
        /// receiver releases them (spec/custody.md).
        #[serde(default)]
        from_you: Vec<BundleId>,
        /// For each of `from_you`, in order: the receiver's number for the
        /// transmission the sender's copy came by (its custody block), or
        /// null (delivered, or no number). Absent from older nodes; a list
        /// of another length than `from_you` is ignored.
        #[serde(default)]
        from_you_transmissions: Vec<Option<u64>>,
        /// The sender's routing advertisement (spec/routing.md §4, §5);
        /// absent from older nodes.
        #[serde(default)]
        advert: Advert,
    },
    /// A fresh routing advertisement, sent when the sender's contacts change.
    Advert {
        /// The advertisement.
        advert: Advert,
    },
    /// The sender's capabilities (spec/jobs.md §5): services, load,
    /// hardware; sent when the contact starts and whenever they change.
    Capabilities {
        /// The advertisement.
        caps: crate::jobs::Capabilities,
    },
    /// A real-time job request (spec/jobs.md §7): a `JobRequest` (CBOR);
    /// answered by [`ControlMessage::JobReply`] with the same `rid`.
    JobRequest {
        /// Request ID, chosen by the requester.
        rid: u64,
        /// Encoded `jobs::JobRequest`.
        #[serde(with = "serde_bytes")]
        request: Vec<u8>,
        /// The requester takes [`ControlMessage::JobPart`]s: output may be
        /// sent as it comes, before the reply. Absent (false) from older
        /// nodes, which must get the whole output in the reply.
        #[serde(default)]
        parts: bool,
    },
    /// A piece of a real-time job's output, sent as it comes (spec/jobs.md
    /// §7.1), only when the request had `parts`; the final
    /// [`ControlMessage::JobReply`] then carries the status and no output.
    JobPart {
        /// The request's ID.
        rid: u64,
        /// 0 for the first part of a job, then 1, 2, ...
        seq: u64,
        /// At most [`MAX_JOB_PART_BYTES`] bytes of output.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// The answer to a real-time job request.
    JobReply {
        /// The request's ID.
        rid: u64,
        /// Encoded `jobs::JobResult`.
        #[serde(with = "serde_bytes")]
        result: Vec<u8>,
    },
    /// A custody signal: the CBOR administrative record
    /// (`bundle::admin::AdministrativeRecord::CustodySignal`), as bytes.
    Custody {
        /// Encoded administrative record.
        #[serde(with = "serde_bytes")]
        record: Vec<u8>,
    },
    /// Sent first, before anything else, by a node joining with an invite
    /// code (spec/trust.md): the code's 16-byte secret.
    Join {
        /// The invite secret.
        #[serde(with = "serde_bytes")]
        secret: Vec<u8>,
    },
    /// The inviter's answer to a valid `Join`: the sender's key is now in
    /// the inviter's trust list. A refused `Join` is answered by closing the
    /// connection with the reason instead.
    JoinAccepted,
    /// Peer exchange: other peers the sender knows (at most
    /// [`MAX_PEER_HINTS`]; spec/cl-quic.md §"Peer exchange",
    /// spec/discovery.md §4). Sent once per contact, after contact up.
    Peers {
        /// The peers, most recently seen first.
        peers: Vec<PeerHint>,
    },
    /// Asset advert (spec/assets.md, spec/cl-quic.md §"Asset adverts"):
    /// files the sender holds complete, and holders it learned of, newest
    /// first. At most [`MAX_ASSET_ENTRIES`]; a longer list is refused whole.
    Assets {
        /// The entries.
        entries: Vec<AssetEntry>,
    },
}

/// Most entries in a [`ControlMessage::Assets`] advert.
pub const MAX_ASSET_ENTRIES: usize = 4096;

/// One entry of a [`ControlMessage::Assets`] advert: `holder` holds the
/// file whose manifest CID is `cid`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetEntry {
    /// Manifest CID, binary CIDv1.
    #[serde(with = "serde_bytes")]
    pub cid: Vec<u8>,
    /// The holder's node ID (`dtn://node/` or `ipn:N.0`).
    pub holder: String,
    /// When the holder last advertised it, DTN ms.
    pub seen_ms: u64,
    /// Advert hops between the holder and the sender (0: the sender holds it).
    pub hops: u8,
    /// Number of chunks of the file (0 if unknown).
    pub chunks: u32,
}

/// Largest [`ControlMessage::JobPart`] payload, bytes (64 KiB).
pub const MAX_JOB_PART_BYTES: usize = 64 << 10;

/// Most entries in a [`ControlMessage::Peers`] list (more are ignored).
pub const MAX_PEER_HINTS: usize = 32;

/// One peer in a [`ControlMessage::Peers`] list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerHint {
    /// Its node ID (`dtn://node/` or `ipn:N.0`).
    pub node_id: String,
    /// Its QUIC address as the sender last knew it (`IP:port`).
    pub addr: String,
    /// When the sender last was in contact with it, DTN ms.
    pub last_seen_ms: u64,
}

/// `from_you` as the summary message carries it: the bundle IDs, and their
/// transmission numbers in a list of the same length.
pub(crate) fn split_from_you(from_you: Vec<FromYou>) -> (Vec<BundleId>, Vec<Option<u64>>) {
    from_you.into_iter().map(|f| (f.id, f.transmission)).unzip()
}

/// The inverse of [`split_from_you`]; transmission numbers of another
/// length than the IDs (a malformed or older summary) are all unknown.
pub(crate) fn join_from_you(ids: Vec<BundleId>, transmissions: Vec<Option<u64>>) -> Vec<FromYou> {
    let numbers = if transmissions.len() == ids.len() {
        transmissions
    } else {
        vec![None; ids.len()]
    };
    ids.into_iter()
        .zip(numbers)
        .map(|(id, transmission)| FromYou { id, transmission })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `JobRequest` as nodes without streaming send it (no `parts`).
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum OldMessage {
        JobRequest {
            rid: u64,
            #[serde(with = "serde_bytes")]
            request: Vec<u8>,
        },
    }

    #[test]
    fn an_old_job_request_asks_for_no_parts() {
        let old = OldMessage::JobRequest {
            rid: 7,
            request: b"r".to_vec(),
        };
        let bytes = serde_cbor::to_vec(&old).expect("encodes");
        let m: ControlMessage = serde_cbor::from_slice(&bytes).expect("decodes");
        let want = ControlMessage::JobRequest {
            rid: 7,
            request: b"r".to_vec(),
            parts: false,
        };
        assert_eq!(m, want);
    }

    #[test]
    fn a_job_part_round_trips_with_its_wire_name() {
        let m = ControlMessage::JobPart {
            rid: 1,
            seq: 2,
            bytes: vec![0xAB; MAX_JOB_PART_BYTES],
        };
        let bytes = serde_cbor::to_vec(&m).expect("encodes");
        let v: serde_cbor::Value = serde_cbor::from_slice(&bytes).expect("CBOR");
        let serde_cbor::Value::Map(outer) = v else {
            panic!("externally tagged: a map");
        };
        let tag = serde_cbor::Value::Text("job_part".into());
        assert!(outer.contains_key(&tag), "{outer:?}");
        let back: ControlMessage = serde_cbor::from_slice(&bytes).expect("decodes");
        assert_eq!(back, m);
    }

    #[test]
    fn summary_transmission_numbers_survive_the_wire_and_older_summaries_have_none() {
        let id = |s: &str| -> BundleId { format!("dtn://a/#{s}").parse().unwrap() };
        let from_you = vec![
            FromYou {
                id: id("846000000000.1"),
                transmission: Some(7),
            },
            FromYou {
                id: id("846000000000.2"),
                transmission: None,
            },
        ];
        let (ids, numbers) = split_from_you(from_you.clone());
        let m = ControlMessage::Summary {
            held: ids.clone(),
            from_you: ids.clone(),
            from_you_transmissions: numbers,
            advert: Default::default(),
        };
        let bytes = serde_cbor::to_vec(&m).expect("encodes");
        let Ok(ControlMessage::Summary {
            from_you: got_ids,
            from_you_transmissions: got_numbers,
            ..
        }) = serde_cbor::from_slice(&bytes)
        else {
            panic!("a summary");
        };
        assert_eq!(join_from_you(got_ids, got_numbers), from_you);
        // An older node's summary has no numbers; a list of the wrong
        // length counts as none.
        let unknown: Vec<FromYou> = ids
            .iter()
            .map(|id| FromYou {
                id: id.clone(),
                transmission: None,
            })
            .collect();
        assert_eq!(join_from_you(ids.clone(), vec![]), unknown);
        assert_eq!(join_from_you(ids.clone(), vec![Some(7)]), unknown);
        #[derive(serde::Serialize)]
        enum Old {
            #[serde(rename = "summary")]
            Summary {
                held: Vec<BundleId>,
                from_you: Vec<BundleId>,
            },
        }
        let old = serde_cbor::to_vec(&Old::Summary {
            held: ids.clone(),
            from_you: ids.clone(),
        })
        .unwrap();
        let Ok(ControlMessage::Summary {
            from_you_transmissions,
            ..
        }) = serde_cbor::from_slice(&old)
        else {
            panic!("an older summary still decodes");
        };
        assert!(from_you_transmissions.is_empty());
    }
}
