//! `GET /api/v1/query/asset?cid=`: which known nodes hold a chunk or a
//! file (by manifest CID), from what this node's store recorded: its own
//! copy, custody handed to a next hop, delivery reports from destinations.
//! Nodes this one never exchanged the CID with are not known.

use super::Shared;
use crate::content::cid_from_str;
use crate::store::records::{BundleState, FileRole};
use serde::Serialize;
use std::collections::BTreeMap;

/// One holder of an asset and why it is believed to hold it.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Holder {
    /// Node ID.
    node: String,
    /// `stored_here`, `file_here`, `custody_accepted` or `delivery_reported`.
    how: &'static str,
}

/// The holders of `cid` (text CID) known to this node.
pub(crate) fn holders(shared: &Shared, cid: &str) -> Result<serde_json::Value, String> {
    let cid = cid_from_str(cid).map_err(|e| format!("bad CID {cid:?}: {e}"))?;
    let key = cid.to_bytes();
    let store = &shared.store;
    let me = shared.node_id.to_string();
    let mut out: BTreeMap<String, &'static str> = BTreeMap::new();
    let err = |e: crate::store::StoreError| e.to_string();
    if store.chunk(&key).map_err(err)?.is_some() {
        out.insert(me.clone(), "stored_here");
    }
    let file = store.file(&key).map_err(err)?;
    if let Some(f) = &file {
        if f.path.is_some() || f.role == FileRole::Source {
            out.insert(me.clone(), "file_here");
        }
    }
    let bundle_key = match &file {
        Some(f) => Some(f.manifest_bundle.to_key()),
        None => store.chunk_bundle(&key).map_err(err)?,
    };
    if let Some(rec) = bundle_key.and_then(|k| store.record(&k).ok().flatten()) {
        if rec.state == BundleState::CustodyTransferred {
            if let Some(c) = &rec.custodian {
                out.entry(c.to_string()).or_insert("custody_accepted");
            }
        }
        for h in &rec.history {
            if let Some(rest) = h.event.strip_prefix("status report from ") {
                if let Some((node, what)) = rest.split_once(": ") {
                    if what.contains("delivered") {
                        out.insert(node.to_owned(), "delivery_reported");
                    }
                }
            }
        }
    }
    let holders: Vec<Holder> = out
        .into_iter()
        .map(|(node, how)| Holder { node, how })
        .collect();
    Ok(serde_json::json!({ "cid": cid.to_string(), "holders": holders }))
}
