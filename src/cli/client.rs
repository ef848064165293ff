//! The CLI side of the local API: finds the node through DATA_DIR/api.json
//! and DATA_DIR/api.token, and prints answers for people or for scripts.

use super::PeersCmd;
use super::show;
use anyhow::{Context, bail};
use serde_json::json;
use spore::bundle::Eid;
use spore::client::Client;
use std::path::Path;
use std::time::Duration;

use spore::client::url_encode as enc;

/// `spore send`.
pub fn send(
    dir: &Path,
    file: &Path,
    to: &Eid,
    lifetime: Option<Duration>,
    chunk_size: Option<u32>,
    name: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let path =
        std::fs::canonicalize(file).with_context(|| format!("cannot open {}", file.display()))?;
    if !path.is_file() {
        bail!("{} is not a regular file", file.display());
    }
    let c = Client::open(dir)?;
    let body = json!({
        "path": path,
        "to": to.to_string(),
        "lifetime_ms": lifetime.map(|d| d.as_millis() as u64),
        "chunk_size": chunk_size,
        "name": name,
    });
    let v = c.post("/api/v1/send", &body)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", v["manifest_cid"].as_str().unwrap_or_default());
    }
    Ok(())
}

/// `spore status`.
pub fn status(dir: &Path, id: Option<String>, as_json: bool, limit: usize) -> anyhow::Result<()> {
    let c = Client::open(dir)?;
    let mut path = format!("/api/v1/status?limit={limit}");
    if let Some(id) = &id {
        path.push_str(&format!("&filter={}", enc(id)));
    }
    let v = c.get(&path)?;
    if id.is_some()
        && v["bundles"].as_array().is_some_and(Vec::is_empty)
        && v["files"].as_array().is_some_and(Vec::is_empty)
    {
        bail!("no bundle or file {:?} known here", id.unwrap_or_default());
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        show::status(&v, id.is_some());
    }
    Ok(())
}

/// `spore peers [add|remove]`.
pub fn peers(dir: &Path, action: Option<PeersCmd>, as_json: bool) -> anyhow::Result<()> {
    let c = Client::open(dir)?;
    let v = match action {
        None => c.get("/api/v1/peers")?,
        Some(PeersCmd::Add { addr }) => {
            c.post("/api/v1/peers", &json!({ "addr": addr.to_string() }))?
        }
        Some(PeersCmd::Limit { node, rate }) => c.post(
            "/api/v1/peers/bandwidth",
            &json!({ "node": node.to_string(), "bytes_per_s": rate }),
        )?,
        Some(PeersCmd::Remove { target }) => {
            let q = if target.parse::<std::net::SocketAddr>().is_ok() {
                format!("addr={}", enc(&target))
            } else {
                let eid: Eid = target
                    .parse()
                    .with_context(|| format!("{target:?} is neither ADDR:PORT nor a node ID"))?;
                format!("node={}", enc(&eid.to_string()))
            };
            c.delete(&format!("/api/v1/peers?{q}"))?
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        show::peers(&v);
    }
    Ok(())
}

/// `spore routes`.
pub fn routes(dir: &Path, limit: usize, as_json: bool) -> anyhow::Result<()> {
    let c = Client::open(dir)?;
    let v = c.get(&format!("/api/v1/routes?limit={limit}"))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        show::routes(&v);
    }
    Ok(())
}
