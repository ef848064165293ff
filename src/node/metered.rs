//! Metered links (`spore peers metered NODE on|off`): on a metered link
//! bulk bundles (larger than `AgentConfig::metered_bulk_bytes`, 64 KiB by
//! default: file chunks) wait, while small or urgent ones (small files,
//! manifests, status reports, jobs) still flow. The agent applies it
//! ([`crate::agent::Event::Metered`]); this module keeps the set, persisted
//! in `DATA_DIR/metered.json` (a JSON list of node IDs), and serves it on
//! the local API.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | POST | /api/v1/peers/metered | `{node, metered: bool}` | `{metered: [node]}` |

use super::api::{ApiError, Ctx, bad, internal};
use super::{Command, Shared};
use crate::agent::Event;
use crate::bundle::Eid;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// File name of the persisted set in the data directory.
pub const METERED_FILE: &str = "metered.json";

/// Most metered peers remembered.
pub const MAX_METERED_PEERS: usize = 4096;

/// The metered peers of a running node (node IDs as text).
pub(crate) struct Metered {
    file: PathBuf,
    set: Mutex<BTreeSet<String>>,
}

impl Metered {
    /// Loads `dir/metered.json` (missing: none; unreadable: logged, none)
    /// and adds `configured` (the config file's `[node] metered_peers`).
    pub(crate) fn load(dir: &Path, configured: &[Eid]) -> Metered {
        let file = dir.join(METERED_FILE);
        let mut set: BTreeSet<String> = std::fs::read(&file)
            .ok()
            .and_then(|b| match serde_json::from_slice(&b) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring unreadable metered list");
                    None
                }
            })
            .unwrap_or_default();
        set.extend(configured.iter().map(|e| e.node_id().to_string()));
        Metered {
            file,
            set: Mutex::new(set),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every metered peer.
    pub(crate) fn list(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Marks `peer` metered or not and saves the file; returns the set.
    ///
    /// # Errors
    /// If the set is full or the file cannot be written.
    pub(crate) fn set(&self, peer: &Eid, metered: bool) -> anyhow::Result<Vec<String>> {
        let mut s = self.lock();
        let key = peer.node_id().to_string();
        if metered {
            anyhow::ensure!(
                s.len() < MAX_METERED_PEERS || s.contains(&key),
                "at most {MAX_METERED_PEERS} metered peers"
            );
            s.insert(key);
        } else {
            s.remove(&key);
        }
        let list: Vec<String> = s.iter().cloned().collect();
        super::write_atomically(&self.file, &serde_json::to_vec_pretty(&list)?)?;
        Ok(list)
    }
}

/// Tells the agent about every metered peer (at start-up).
pub(crate) async fn announce(shared: &Shared) {
    for node in shared.metered.list() {
        if let Ok(peer) = node.parse::<Eid>() {
            let ev = Event::Metered {
                peer,
                metered: true,
            };
            let _ = shared.cmd.send(Command::Event(ev)).await;
        }
    }
}

/// The metered-link route, to be merged before the API's auth layer.
pub(super) fn routes() -> Router<Ctx> {
    Router::new().route("/api/v1/peers/metered", post(set_metered))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MeteredBody {
    node: String,
    metered: bool,
}

async fn set_metered(
    State(ctx): State<Ctx>,
    Json(b): Json<MeteredBody>,
) -> Result<Response, ApiError> {
    let peer: Eid = b
        .node
        .parse()
        .map_err(|e| bad(format!("bad node ID {:?}: {e}", b.node)))?;
    let list = ctx
        .shared
        .metered
        .set(&peer, b.metered)
        .map_err(|e| internal(e.to_string()))?;
    let ev = Event::Metered {
        peer,
        metered: b.metered,
    };
    ctx.shared
        .cmd
        .send(Command::Event(ev))
        .await
        .map_err(|_| internal("node is stopping"))?;
    Ok(Json(json!({ "metered": list })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_persists_and_merges_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let b: Eid = "dtn://b/files".parse().unwrap();
        let m = Metered::load(dir.path(), &[]);
        assert_eq!(m.set(&b, true).unwrap(), vec!["dtn://b/".to_string()]);
        let c: Eid = "dtn://c/".parse().unwrap();
        let m = Metered::load(dir.path(), std::slice::from_ref(&c));
        assert_eq!(m.list(), vec!["dtn://b/".to_string(), "dtn://c/".into()]);
        assert_eq!(m.set(&b, false).unwrap(), vec!["dtn://c/".to_string()]);
        std::fs::write(dir.path().join(METERED_FILE), b"{not json").unwrap();
        assert!(Metered::load(dir.path(), &[]).list().is_empty());
    }
}
