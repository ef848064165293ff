//! `GET /api/v1/query/asset?cid=`: which known nodes hold a file (by
//! manifest CID) or a chunk, and how this node knows (spec/assets.md):
//! - from its own store: its own copy (`stored_here`, `file_here`), custody
//!   handed to a next hop (`custody_accepted`), delivery reports from
//!   destinations (`delivery_reported`);
//! - from asset adverts exchanged on contact (`advertised`), with the peer
//!   that told us (`via`), when the holder was last known to hold it
//!   (`seen_ms`, `age_s`) and how many advert hops away it is.
//!
//! A chunk CID is answered through the manifests known here that list it:
//! the holders of such a file hold the chunk (`manifest` names the file).

use super::Shared;
use super::asset_advert::held_here;
use crate::content::cid_from_str;
use crate::store::StoreError;
use crate::store::records::{BundleState, FileRecord};
use serde::Serialize;

/// Most manifests through which a chunk CID is answered.
const MAX_MANIFESTS_PER_CHUNK: usize = 16;

/// One holder of an asset and why it is believed to hold it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Node ID.
    node: String,
    /// `stored_here`, `file_here`, `custody_accepted`, `delivery_reported`
    /// or `advertised`.
    how: &'static str,
    /// `advertised`: the peer whose advert told us.
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<String>,
    /// `advertised`: when the holder last was known to hold it, DTN ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    seen_ms: Option<u64>,
    /// `advertised`: seconds since `seen_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    age_s: Option<u64>,
    /// `advertised`: advert hops between the holder and this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    hops: Option<u8>,
    /// For a chunk CID: the manifest CID of the file that lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<String>,
}

impl Holder {
    fn local(node: String, how: &'static str) -> Holder {
        Holder {
            node,
            how,
            via: None,
            seen_ms: None,
            age_s: None,
            hops: None,
            manifest: None,
        }
    }
}

/// The holders of `cid` (text CID) known to this node, as
/// `{cid, holders: [{node, how, via?, seen_ms?, age_s?, hops?, manifest?}]}`.
///
/// # Errors
/// A message if the CID does not parse or the store cannot be read.
pub(crate) fn holders(shared: &Shared, cid: &str) -> Result<serde_json::Value, String> {
    let cid = cid_from_str(cid).map_err(|e| format!("bad CID {cid:?}: {e}"))?;
    let key = cid.to_bytes();
    let err = |e: StoreError| e.to_string();
    let mut out: Vec<Holder> = Vec::new();
    let me = shared.node_id.to_string();
    if shared.store.chunk(&key).map_err(err)?.is_some() {
        out.push(Holder::local(me, "stored_here"));
    }
    let file = shared.store.file(&key).map_err(err)?;
    local_evidence(shared, &key, file.as_ref(), &mut out).map_err(err)?;
    advertised(shared, &key, &mut out).map_err(err)?;
    if file.is_none() {
        for f in manifests_listing(shared, &key).map_err(err)? {
            let m = crate::content::cid_from_bytes(&f.manifest_cid)
                .map(|c| c.to_string())
                .unwrap_or_default();
            let mut via_file = Vec::new();
            local_evidence(shared, &f.manifest_cid, Some(&f), &mut via_file).map_err(err)?;
            advertised(shared, &f.manifest_cid, &mut via_file).map_err(err)?;
            for mut h in via_file {
                h.manifest = Some(m.clone());
                out.push(h);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert((h.node.clone(), h.how, h.manifest.clone())));
    Ok(serde_json::json!({ "cid": cid.to_string(), "holders": out }))
}

/// What this node's own records say about file/chunk `key` (`file`: its
/// file record, if it is a manifest known here).
fn local_evidence(
    shared: &Shared,
    key: &[u8],
    file: Option<&FileRecord>,
    out: &mut Vec<Holder>,
) -> Result<(), StoreError> {
    let store = &shared.store;
    if file.is_some_and(held_here) {
        out.push(Holder::local(shared.node_id.to_string(), "file_here"));
    }
    let bundle_key = match file {
        Some(f) => Some(f.manifest_bundle.to_key()),
        None => store.chunk_bundle(key)?,
    };
    let Some(rec) = bundle_key.and_then(|k| store.record(&k).ok().flatten()) else {
        return Ok(());
    };
    if rec.state == BundleState::CustodyTransferred {
        if let Some(c) = &rec.custodian {
            out.push(Holder::local(c.to_string(), "custody_accepted"));
        }
    }
    for h in &rec.history {
        if let Some(rest) = h.event.strip_prefix("status report from ") {
            if let Some((node, what)) = rest.split_once(": ") {
                if what.contains("delivered") {
                    out.push(Holder::local(node.to_owned(), "delivery_reported"));
                }
            }
        }
    }
    Ok(())
}

/// Holders of manifest `key` learned from asset adverts, within the age
/// limit, most recently seen first.
fn advertised(shared: &Shared, key: &[u8], out: &mut Vec<Holder>) -> Result<(), StoreError> {
    let now = super::dtn_now().0;
    let min_seen = shared.assets.min_seen_ms(now);
    let mut rows = shared.store.asset_holders(key)?;
    rows.retain(|(_, r)| r.seen_ms >= min_seen);
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.seen_ms));
    for (node, r) in rows {
        out.push(Holder {
            node,
            how: "advertised",
            via: Some(r.via),
            seen_ms: Some(r.seen_ms),
            age_s: Some(now.saturating_sub(r.seen_ms) / 1000),
            hops: Some(r.hops),
            manifest: None,
        });
    }
    Ok(())
}

/// File records known here whose manifest lists chunk `key` (at most
/// [`MAX_MANIFESTS_PER_CHUNK`]).
fn manifests_listing(shared: &Shared, key: &[u8]) -> Result<Vec<FileRecord>, StoreError> {
    let mut out: Vec<FileRecord> = shared
        .store
        .files()?
        .into_iter()
        .filter(|f| f.chunks.iter().any(|c| c.as_slice() == key))
        .take(MAX_MANIFESTS_PER_CHUNK)
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.completed_ms));
    Ok(out)
}
