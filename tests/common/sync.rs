//! Helpers for the folder-sync tests: tree comparison and raw bundle posts.

use serde_json::Value;
use sha2::{Digest, Sha256};
use spore::harness::NodeProcess;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Relative path → (size, SHA-256) of every regular file under `root`.
pub fn tree(root: &Path) -> BTreeMap<String, (u64, [u8; 32])> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue; // a temporary file renamed meanwhile
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let Ok(bytes) = std::fs::read(&p) else {
                    continue;
                };
                out.insert(rel, (m.len(), Sha256::digest(&bytes).into()));
            }
        }
    }
    out
}

/// POSTs an encoded bundle to `node`; its answer or error text.
pub fn post_bundle(node: &Path, bytes: Vec<u8>) -> Result<Value, String> {
    let info: Value =
        serde_json::from_slice(&std::fs::read(node.join("api.json")).unwrap()).unwrap();
    let token = std::fs::read_to_string(node.join("api.token")).unwrap();
    let url = format!("http://{}/api/v1/bundles", info["api"].as_str().unwrap());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send(&bytes[..])
        .map_err(|e| e.to_string())?;
    let ok = r.status().is_success();
    let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    if ok {
        Ok(v)
    } else {
        Err(v["error"].to_string())
    }
}

/// Node `c` in `root/c`, accepting folders from `dtn://a/` into
/// `root/recv`; also creates `root/outside` (where nothing may appear).
/// Returns the node and both directories.
pub fn accepting_node(root: &Path) -> (NodeProcess, PathBuf, PathBuf) {
    let c = NodeProcess::start(&super::exe(), &root.join("c"), "c", &[]).unwrap();
    let recv = root.join("recv");
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let body = serde_json::json!({"from": "dtn://a/", "into": recv});
    c.client()
        .unwrap()
        .post("/api/v1/sync/accept", &body)
        .unwrap();
    (c, recv, outside)
}

/// Makes `node` accept folder content from node `from` into `into`
/// (`POST /api/v1/sync/accept`).
pub fn accept(node: &NodeProcess, from: &str, into: &Path) {
    let body = serde_json::json!({"from": from, "into": into});
    node.client()
        .unwrap()
        .post("/api/v1/sync/accept", &body)
        .unwrap();
}

/// Registers `dir` at `node` as outgoing folder `name` for `to`
/// (`POST /api/v1/sync/folders`).
pub fn add_folder(node: &NodeProcess, dir: &Path, to: &str, name: &str) {
    let body = serde_json::json!({"dir": dir, "to": to, "name": name});
    node.client()
        .unwrap()
        .post("/api/v1/sync/folders", &body)
        .unwrap();
}
