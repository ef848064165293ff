//! Asset adverts on contact (spec/assets.md): each node tells its peers
//! which files it holds complete (manifest CIDs) and which holders it has
//! learned of, newest first and bounded; the receiver keeps what it learns
//! in the store (table `assets-0`), so `GET /api/v1/query/asset` can answer
//! "C holds it (via B, seen 3 min ago)" and still can after a restart.
//!
//! An advert is sent when a contact comes up, and to every contact when
//! what we would advertise gained an entry (a file completed here, or a
//! holder we did not know of). A refreshed `seen_ms` alone does not start
//! a new round, so adverts do not echo around the mesh.

use super::proto::{AssetEntry, ControlMessage, MAX_ASSET_ENTRIES};
use super::{Command, Shared};
use crate::bundle::Eid;
use crate::cla::quic::Contact;
use crate::store::assets::AssetRecord;
use crate::store::records::{FileRecord, FileRole};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, warn};

/// Longest binary CID accepted in an advert, bytes (a CIDv1 with a SHA-256
/// multihash is 36).
const MAX_CID_BYTES: usize = 128;
/// Longest holder node ID accepted in an advert, bytes.
const MAX_HOLDER_BYTES: usize = 256;

/// Settings of asset adverts (config section `[assets]`, spec/config.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssetConfig {
    /// Send and accept asset adverts (default `true`).
    pub adverts: bool,
    /// Most entries sent in one advert (default and ceiling 4096).
    pub advert_entries: usize,
    /// Most advert hops a learned holder is passed on over (default 4):
    /// an entry learned over this many hops is kept but not advertised.
    pub max_hops: u8,
    /// Entries not refreshed for this long are neither advertised nor
    /// reported, s (default 604 800, 7 days).
    pub max_age_s: u64,
    /// Most rows kept in the store table `assets-0` (default 65 536); the
    /// oldest are evicted.
    pub max_rows: u64,
    /// Least time between two checks whether the node holds new files to
    /// advertise, ms (default 2000). A check runs only after the store
    /// changed, and sends nothing unless something new is there.
    pub check_ms: u64,
}

impl Default for AssetConfig {
    fn default() -> Self {
        AssetConfig {
            adverts: true,
            advert_entries: MAX_ASSET_ENTRIES,
            max_hops: 4,
            max_age_s: 7 * 24 * 3600,
            max_rows: 65_536,
            check_ms: 2000,
        }
    }
}

/// Asset advert state of a running node: settings, counters, and a
/// generation number bumped whenever what we would advertise gained an entry.
pub(crate) struct Assets {
    cfg: AssetConfig,
    counters: Mutex<BTreeMap<&'static str, u64>>,
    generation: AtomicU64,
}

impl Assets {
    /// New state with `cfg` (entries clamped to [`MAX_ASSET_ENTRIES`]).
    pub fn new(mut cfg: AssetConfig) -> Assets {
        cfg.advert_entries = cfg.advert_entries.min(MAX_ASSET_ENTRIES);
        Assets {
            cfg,
            counters: Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }

    fn count(&self, name: &'static str, n: u64) {
        // Poisoning only follows a panic elsewhere; the map stays usable.
        let mut m = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(name).or_default() += n;
    }

    /// The counters (`asset_*`), for `spore status`.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let m = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// Oldest `seen_ms` still reported at `now_ms`.
    pub fn min_seen_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.cfg.max_age_s.saturating_mul(1000))
    }
}

/// Whether file `f` is held complete here: received and written, or sent
/// from here.
pub(crate) fn held_here(f: &FileRecord) -> bool {
    f.path.is_some() || f.role == FileRole::Source
}

/// Files held complete here, newest first: (manifest CID, chunks, DTN ms).
fn own_files(shared: &Shared) -> Vec<(Vec<u8>, u32, u64)> {
    let files = match shared.store.files() {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "cannot read file records for the asset advert");
            return Vec::new();
        }
    };
    let mut own: Vec<(Vec<u8>, u32, u64)> = files
        .into_iter()
        .filter(held_here)
        .map(|f| {
            let t = f.completed_ms.unwrap_or(f.manifest_bundle.timestamp.time.0);
            let chunks = u32::try_from(f.chunks.len()).unwrap_or(u32::MAX);
            (f.manifest_cid, chunks, t)
        })
        .collect();
    own.sort_by_key(|f| std::cmp::Reverse(f.2));
    own
}

/// The advert for `peer` at `now_ms`: our own files (hops 0), then learned
/// holders under the hop and age limits, newest first, without entries
/// whose holder is `peer`; at most `advert_entries`.
fn build_advert(shared: &Shared, peer: &Eid, now_ms: u64) -> Vec<AssetEntry> {
    let a = &shared.assets;
    let me = shared.node_id.to_string();
    let peer = peer.to_string();
    let limit = a.cfg.advert_entries;
    let mut out: Vec<AssetEntry> = own_files(shared)
        .into_iter()
        .take(limit)
        .map(|(cid, chunks, _)| AssetEntry {
            cid,
            holder: me.clone(),
            seen_ms: now_ms,
            hops: 0,
            chunks,
        })
        .collect();
    let min_seen = a.min_seen_ms(now_ms);
    let mut learned = shared.store.asset_rows().unwrap_or_else(|e| {
        warn!(error = %e, "cannot read the asset table");
        Vec::new()
    });
    learned.retain(|(_, h, r)| {
        r.hops < a.cfg.max_hops && r.seen_ms >= min_seen && *h != peer && *h != me
    });
    learned.sort_by_key(|r| std::cmp::Reverse(r.2.seen_ms));
    let room = limit.saturating_sub(out.len());
    out.extend(
        learned
            .into_iter()
            .take(room)
            .map(|(cid, holder, r)| AssetEntry {
                cid,
                holder,
                seen_ms: r.seen_ms,
                hops: r.hops,
                chunks: r.chunks,
            }),
    );
    out
}

/// Sends our asset advert to `peer` over contact `c` (if adverts are on
/// and there is anything to say).
pub(crate) fn send_advert(shared: &Arc<Shared>, peer: &Eid, c: &Contact) {
    if !shared.assets.cfg.adverts {
        return;
    }
    let (shared, peer, c) = (shared.clone(), peer.clone(), c.clone());
    tokio::spawn(async move {
        let now = super::dtn_now().0;
        let (s2, p2) = (shared.clone(), peer.clone());
        let Ok(entries) = tokio::task::spawn_blocking(move || build_advert(&s2, &p2, now)).await
        else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        let n = entries.len() as u64;
        match c.send_control(&ControlMessage::Assets { entries }).await {
            Ok(()) => {
                shared.assets.count("asset_adverts_sent", 1);
                debug!(peer = %peer, entries = n, "asset advert sent");
            }
            Err(e) => warn!(peer = %peer, error = %e, "cannot send the asset advert"),
        }
    });
}

/// Checks one entry from `peer`; the record to store for it, or `None`
/// (counted by the caller) if it is unusable, about us, too far or too old.
fn check_entry(
    e: &AssetEntry,
    peer: &str,
    me: &str,
    now_ms: u64,
    cfg_min_seen: u64,
) -> Option<AssetRecord> {
    if e.cid.len() > MAX_CID_BYTES || e.holder.len() > MAX_HOLDER_BYTES {
        return None;
    }
    crate::content::cid_from_bytes(&e.cid).ok()?;
    let holder: Eid = e.holder.parse().ok()?;
    if holder == Eid::DtnNone || holder.node_id() != holder || e.holder == me {
        return None;
    }
    let seen_ms = e.seen_ms.min(now_ms);
    if seen_ms < cfg_min_seen || e.hops == u8::MAX {
        return None;
    }
    Some(AssetRecord {
        via: peer.to_owned(),
        seen_ms,
        hops: e.hops + 1,
        chunks: e.chunks,
    })
}

/// Handles an asset advert from `peer`: a list over [`MAX_ASSET_ENTRIES`]
/// is refused whole (`asset_adverts_refused_oversized`); invalid entries
/// (`asset_entries_invalid`: a CID that does not parse, a holder that is
/// not a node ID, or that is us) are skipped; the rest are merged into the
/// store on the agent thread (the store's only writer), and the table is
/// kept within `max_rows`.
pub(crate) async fn receive(shared: &Arc<Shared>, peer: &Eid, entries: Vec<AssetEntry>) {
    let a = &shared.assets;
    if !a.cfg.adverts {
        a.count("asset_adverts_ignored", 1);
        return;
    }
    if entries.len() > MAX_ASSET_ENTRIES {
        a.count("asset_adverts_refused_oversized", 1);
        warn!(peer = %peer, entries = entries.len(), "refused an oversized asset advert");
        return;
    }
    a.count("asset_adverts_received", 1);
    let now = super::dtn_now().0;
    let (peer_s, me) = (peer.to_string(), shared.node_id.to_string());
    let min_seen = a.min_seen_ms(now);
    let mut valid: Vec<(Vec<u8>, String, AssetRecord)> = Vec::with_capacity(entries.len());
    let mut invalid = 0;
    for e in entries {
        match check_entry(&e, &peer_s, &me, now, min_seen) {
            Some(r) => valid.push((e.cid, e.holder, r)),
            None if e.holder == me => {}
            None => invalid += 1,
        }
    }
    if invalid > 0 {
        a.count("asset_entries_invalid", invalid);
        debug!(peer = %peer, invalid, "asset advert entries skipped");
    }
    if valid.is_empty() {
        return;
    }
    let s = shared.clone();
    let job = Command::Write(Box::new(move |store| merge(&s, store, &valid, min_seen)));
    let _ = shared.cmd.send(job).await;
}

/// Merges learned rows in one transaction (run on the agent thread); bumps
/// the generation if a holder was new to us or is now fewer hops away.
fn merge(
    shared: &Shared,
    store: &crate::store::Store,
    rows: &[(Vec<u8>, String, AssetRecord)],
    min_seen: u64,
) {
    let a = &shared.assets;
    let r = (|| -> Result<(u64, u64, u64), crate::store::StoreError> {
        let mut txn = store.write()?;
        let (mut written, mut fresh) = (0, 0);
        for (cid, holder, rec) in rows {
            let before = txn.asset_get(cid, holder)?;
            if txn.asset_merge(cid, holder, rec)? {
                written += 1;
                if before.is_none_or(|b| rec.hops < b.hops) {
                    fresh += 1;
                }
            }
        }
        let evicted = txn.asset_evict(a.cfg.max_rows, min_seen)?;
        txn.commit()?;
        Ok((written, fresh, evicted))
    })();
    match r {
        Ok((written, fresh, evicted)) => {
            a.count("asset_entries_learned", fresh);
            a.count("asset_entries_refreshed", written - fresh);
            a.count("asset_rows_evicted", evicted);
            if fresh > 0 {
                a.generation.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => warn!(error = %e, "cannot store learned asset holders"),
    }
}

/// Background task: when the store changed (at most once per `check_ms`),
/// looks whether files completed here (cheap: the store's record count and
/// `files_delivered` counter) or new holders were learned, and if so sends
/// a fresh advert to every contact. Sleeps while the store does not change.
pub(crate) async fn run(shared: Arc<Shared>) {
    if !shared.assets.cfg.adverts {
        return;
    }
    let gap = Duration::from_millis(shared.assets.cfg.check_ms.max(100));
    let mut changes = shared.changes.subscribe();
    let mut last_fp: Option<(u64, u64)> = None;
    let mut own: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut sent_gen = 0u64;
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        if let Some(t) = last {
            if changes.changed().await.is_err() {
                return;
            }
            tokio::time::sleep_until(t + gap).await;
        }
        changes.borrow_and_update();
        last = Some(tokio::time::Instant::now());
        let s2 = shared.clone();
        let Ok(fp) = tokio::task::spawn_blocking(move || fingerprint(&s2)).await else {
            return;
        };
        if fp.is_some() && fp != last_fp {
            last_fp = fp;
            let s2 = shared.clone();
            let Ok(now_own) = tokio::task::spawn_blocking(move || own_files(&s2)).await else {
                return;
            };
            let now_own: BTreeSet<Vec<u8>> = now_own.into_iter().map(|(c, _, _)| c).collect();
            if !now_own.is_subset(&own) {
                shared.assets.generation.fetch_add(1, Ordering::Relaxed);
            }
            own = now_own;
        }
        let generation = shared.assets.generation.load(Ordering::Relaxed);
        if generation != sent_gen {
            sent_gen = generation;
            for (peer, _) in shared.contacts.live_peers() {
                if let Some(c) = shared.contacts.get(&peer) {
                    send_advert(&shared, &peer, &c);
                }
            }
        }
    }
}

/// (bundle records, files delivered): changes when a file is sent from or
/// completed here. `None` if the store cannot be read.
fn fingerprint(shared: &Shared) -> Option<(u64, u64)> {
    let records = shared.store.stats().ok()?.records;
    let delivered = shared
        .store
        .counters()
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "files_delivered")
        .map_or(0, |(_, v)| v);
    Some((records, delivered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cid: Vec<u8>, holder: &str, seen_ms: u64, hops: u8) -> AssetEntry {
        AssetEntry {
            cid,
            holder: holder.into(),
            seen_ms,
            hops,
            chunks: 2,
        }
    }

    #[test]
    fn entries_are_checked() {
        let cid = crate::content::chunk_cid(b"x").to_bytes();
        let ok = |e: &AssetEntry| check_entry(e, "dtn://b/", "dtn://a/", 10_000, 1000);
        let r = ok(&entry(cid.clone(), "dtn://c/", 5000, 1)).unwrap();
        assert_eq!((r.hops, r.seen_ms, r.via.as_str()), (2, 5000, "dtn://b/"));
        // A time in the future is clamped to now.
        assert_eq!(
            ok(&entry(cid.clone(), "dtn://c/", 99_999, 0))
                .unwrap()
                .seen_ms,
            10_000
        );
        assert!(ok(&entry(vec![1, 2, 3], "dtn://c/", 5000, 0)).is_none());
        assert!(ok(&entry(cid.clone(), "dtn://c/svc", 5000, 0)).is_none());
        assert!(ok(&entry(cid.clone(), "not an eid", 5000, 0)).is_none());
        assert!(ok(&entry(cid.clone(), "dtn://a/", 5000, 0)).is_none());
        assert!(ok(&entry(cid.clone(), "dtn://c/", 500, 0)).is_none());
        assert!(ok(&entry(cid, "dtn://c/", 5000, u8::MAX)).is_none());
    }
}
