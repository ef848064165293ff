//! The local HTTP API (loopback only, bearer token required).
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | /api/v1/status | `?filter=ID-or-CID&limit=N` | `StatusView` and `router` |
//! | GET | /api/v1/peers | | `{peers: [PeerView], dial: [addr], discovery: {…}, bandwidth: {node: bytes_per_s}, metered: [node], capabilities: {node: caps}, ours: caps, in_contact: [{node_id, rtt_ms}]}` |
//! | GET | /api/v1/routes | `?limit=N` (default 100, at most 10 000) | `{router, routes: [RouteView]}` |
//! | POST | /api/v1/peers | `{addr}` | `{dial: [addr]}` |
//! | DELETE | /api/v1/peers | `?addr=A` or `?node=EID` | `{removed: bool}` |
//! | POST | /api/v1/send | `{path, to, lifetime_ms?, chunk_size?, name?}` | `{manifest_cid, ...}` |
//! | POST | /api/v1/bundles | encoded bundle | `{ids}` |
//! | | /api/v1/jobs… | | job endpoints: see `api/jobs.rs` |
//! | | /api/generate, /api/chat, /api/embeddings, /api/embed, /api/tags | | Ollama-compatible front: see `api/ollama.rs` |
//! | POST | /api/v1/sync/folders | `{dir, to, name?, propagate_deletes?}` | `{ok}` |
//! | POST | /api/v1/sync/accept | `{from, into}` | `{ok}` |
//! | GET | /api/v1/sync/status | | folders, files, chunk counts, rate, ETA |
//! | POST | /api/v1/manifest/refresh | | `{ok}` (rescan sync folders now) |
//! | POST | /api/v1/peers/metered | `{node, metered}` | `{metered: [node]}` (metered.rs) |
//! | POST | /api/v1/peers/bandwidth | `{node, bytes_per_s}` (0 removes) | `{bandwidth: {node: bytes_per_s}}` |
//! | GET | /api/v1/query/asset | `?cid=CID` | `{cid, holders: [{node, how, via?, seen_ms?, age_s?, hops?, manifest?}]}` (spec/assets.md) |
//!
//! and the trust routes of `trust_api.rs` (trust list, invite, join).
//! Errors are `{"error": "..."}` with a 4xx/5xx status. On Linux a
//! connection opened by another OS user than the node's is refused with 403
//! before the token is checked (`peer_uid.rs`).

mod jobs;
mod ollama;
mod stream;

use super::contacts::{add_dialer, remove_dialer, save_dial_file};
use super::{Command, Shared};
use crate::agent::{Event, Submission};
use crate::bundle::{BundleFlags, BundleId, Eid};
use crate::content::{self, Chunker, ManifestBuilder};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Chunk bundles submitted per transaction by `send`.
const SEND_BATCH: usize = 16;
/// Batches of `send` being stored at once (bounds memory: 3 × 16 × chunk size).
const SEND_PIPELINE: usize = 3;
/// Largest encoded bundle accepted by `POST /api/v1/bundles`.
const MAX_BUNDLE_BODY: usize = 8 << 20;

/// An API error: HTTP status and a one-line message.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(super) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

pub(super) fn internal(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

#[derive(Clone)]
pub(super) struct Ctx {
    pub shared: Arc<Shared>,
    token: Arc<String>,
}

/// Creates `api.token` (0600) with a fresh random token and returns it.
///
/// # Errors
/// If the file cannot be written.
pub(crate) fn write_token(dir: &Path) -> anyhow::Result<String> {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let token = hex::encode(b);
    let path = dir.join("api.token");
    let _ = std::fs::remove_file(&path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(&path)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    Ok(token)
}

/// Serves the API until the task is aborted.
pub(crate) async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener, token: String) {
    let ctx = Ctx {
        shared,
        token: Arc::new(token),
    };
    let app = Router::new()
        .route("/api/v1/status", get(status))
        .route(
            "/api/v1/peers",
            get(peers).post(add_peer).delete(remove_peer),
        )
        .route("/api/v1/routes", get(routes))
        .route("/api/v1/send", post(send))
        .route("/api/v1/bundles", post(submit_bundle))
        .merge(jobs::routes())
        .merge(ollama::routes())
        .route("/api/v1/sync/folders", post(sync_add))
        .route("/api/v1/sync/accept", post(sync_accept))
        .route("/api/v1/sync/status", get(sync_status))
        .route("/api/v1/manifest/refresh", post(sync_refresh))
        .route("/api/v1/query/asset", get(query_asset))
        .route("/api/v1/peers/bandwidth", post(peer_bandwidth))
        .merge(super::trust_api::routes())
        .merge(super::metered::routes())
        .layer(DefaultBodyLimit::max(MAX_BUNDLE_BODY))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), auth))
        .with_state(ctx);
    let app = app.into_make_service_with_connect_info::<super::peer_uid::ConnectionUser>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "API server stopped");
    }
}

async fn auth(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    #[cfg(target_os = "linux")]
    if let Err(e) = same_user(&req) {
        return ApiError(StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        g.len() == ctx.token.len()
            && g.bytes()
                .zip(ctx.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !ok {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (see api.token in the data dir)".into(),
        )
        .into_response();
    }
    next.run(req).await
}

/// Refuses connections of other OS users (fails closed when unknown); the
/// owner was looked up once, when the connection was accepted.
#[cfg(target_os = "linux")]
fn same_user(req: &axum::extract::Request) -> Result<(), super::peer_uid::PeerUidError> {
    use super::peer_uid::{ConnectionUser, PeerUidError};
    match req
        .extensions()
        .get::<axum::extract::ConnectInfo<ConnectionUser>>()
    {
        Some(c) => c.0.0.clone(),
        None => Err(PeerUidError::Unknown("no connection addresses".into())),
    }
}

async fn ask<T>(
    ctx: &Ctx,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    ctx.shared
        .cmd
        .send(make(tx))
        .await
        .map_err(|_| internal("node is stopping"))?;
    rx.await
        .map_err(|_| internal("node is stopping"))?
        .map_err(internal)
}

#[derive(Deserialize)]
struct StatusQuery {
    filter: Option<String>,
    limit: Option<usize>,
}

async fn status(
    State(ctx): State<Ctx>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(10_000).min(100_000);
    let mut v = ask(&ctx, |reply| Command::Status {
        filter: q.filter,
        limit,
        reply,
    })
    .await?;
    // CL-level refusals (streams that never became a bundle) are counted
    // by the driver, not in the store.
    let cl = ctx
        .shared
        .stream_refusals
        .lock()
        .map(|m| m.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    v.counters.extend(cl);
    v.counters.extend(ctx.shared.guards.counters());
    v.counters.extend(ctx.shared.trust.counters());
    v.counters.extend(ctx.shared.assets.counters());
    v.counters.extend(ctx.shared.early.counters());
    let mut v = serde_json::to_value(v).map_err(|e| internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("router".into(), json!(ctx.shared.router.to_string()));
    }
    Ok(Json(v).into_response())
}

/// Routes listed by `GET /api/v1/routes` without `limit`.
const ROUTES_DEFAULT_LIMIT: usize = 100;
/// Most routes one `GET /api/v1/routes` lists.
const ROUTES_MAX_LIMIT: usize = 10_000;

#[derive(Deserialize)]
struct RoutesQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/routes`: the router's name and what it would do now with
/// each held bundle (up to `limit`), per peer in contact.
async fn routes(
    State(ctx): State<Ctx>,
    Query(q): Query<RoutesQuery>,
) -> Result<Response, ApiError> {
    let limit = q
        .limit
        .unwrap_or(ROUTES_DEFAULT_LIMIT)
        .min(ROUTES_MAX_LIMIT);
    let v = ask(&ctx, |reply| Command::Routes { limit, reply }).await?;
    let router = ctx.shared.router.to_string();
    Ok(Json(json!({ "router": router, "routes": v })).into_response())
}

async fn peers(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let v = ask(&ctx, |reply| Command::Peers { reply }).await?;
    let dial = ctx.shared.contacts.dial_targets();
    let discovery = ctx.shared.discovery.view();
    let bandwidth = ctx.shared.bandwidth.caps();
    let metered = ctx.shared.metered.list();
    let caps = ctx.shared.jobs.peer_caps.all();
    let ours = super::caps::ours(&ctx.shared);
    let live: Vec<serde_json::Value> = ctx
        .shared
        .contacts
        .all()
        .iter()
        .map(|c| json!({ "node_id": c.peer_node_id(), "rtt_ms": c.rtt().as_secs_f64() * 1000.0 }))
        .collect();
    Ok(Json(json!({
        "peers": v, "dial": dial, "discovery": discovery, "bandwidth": bandwidth, "metered": metered,
        "capabilities": caps, "ours": ours, "in_contact": live,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct PeerBody {
    addr: String,
}

async fn add_peer(State(ctx): State<Ctx>, Json(b): Json<PeerBody>) -> Result<Response, ApiError> {
    let addr: SocketAddr = b
        .addr
        .parse()
        .map_err(|e| bad(format!("bad address {:?}: {e}", b.addr)))?;
    add_dialer(&ctx.shared, addr).map_err(|e| bad(e.to_string()))?;
    save_dial_file(&ctx.shared).map_err(|e| internal(e.to_string()))?;
    Ok(Json(json!({ "dial": ctx.shared.contacts.dial_targets() })).into_response())
}

#[derive(Deserialize)]
struct RemoveQuery {
    addr: Option<String>,
    node: Option<String>,
}

async fn remove_peer(
    State(ctx): State<Ctx>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    let mut removed = false;
    if let Some(a) = q.addr {
        let addr: SocketAddr = a
            .parse()
            .map_err(|e| bad(format!("bad address {a:?}: {e}")))?;
        removed |= remove_dialer(&ctx.shared, addr);
    }
    if let Some(n) = q.node {
        let eid: Eid = n
            .parse()
            .map_err(|e| bad(format!("bad node ID {n:?}: {e}")))?;
        removed = true;
        ctx.shared.discovery.suppress(None, Some(&eid));
        ctx.shared.contacts.close_matching(None, Some(&eid));
    }
    save_dial_file(&ctx.shared).map_err(|e| internal(e.to_string()))?;
    Ok(Json(json!({ "removed": removed })).into_response())
}

/// `POST /api/v1/send` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SendRequest {
    path: PathBuf,
    to: String,
    lifetime_ms: Option<u64>,
    chunk_size: Option<u32>,
    name: Option<String>,
}

/// `POST /api/v1/send` answer.
#[derive(Debug, Serialize)]
pub(crate) struct SendResponse {
    manifest_cid: String,
    manifest_bundle: BundleId,
    name: String,
    size_bytes: u64,
    chunks: usize,
    bundles: usize,
}

async fn send(State(ctx): State<Ctx>, Json(req): Json<SendRequest>) -> Result<Response, ApiError> {
    let shared = ctx.shared.clone();
    let r = tokio::task::spawn_blocking(move || send_file(&shared, req))
        .await
        .map_err(|e| internal(e.to_string()))??;
    Ok(Json(r).into_response())
}

/// Sends a submission to the agent; the receiver yields its answer.
fn submit_start(
    shared: &Shared,
    items: Vec<Submission>,
) -> Result<oneshot::Receiver<super::actions::SubmitResult>, ApiError> {
    let (ticket, rx) = shared.submits.open();
    shared
        .cmd
        .blocking_send(Command::Event(Event::Submit { ticket, items }))
        .map_err(|_| internal("node is stopping"))?;
    Ok(rx)
}

/// Waits for a submission's answer.
fn submit_wait(
    rx: oneshot::Receiver<super::actions::SubmitResult>,
) -> Result<Vec<BundleId>, ApiError> {
    rx.blocking_recv()
        .map_err(|_| internal("node is stopping"))?
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))
}

fn submit_blocking(shared: &Shared, items: Vec<Submission>) -> Result<Vec<BundleId>, ApiError> {
    submit_wait(submit_start(shared, items)?)
}

/// Chunks the file (one chunk in memory per batch slot), stores each
/// distinct chunk as a bundle, then the manifest bundle; answers once all
/// are durable.
fn send_file(shared: &Shared, req: SendRequest) -> Result<SendResponse, ApiError> {
    let to: Eid = req
        .to
        .parse()
        .map_err(|e| bad(format!("bad destination: {e}")))?;
    if !req.path.is_absolute() {
        return Err(bad("path must be absolute"));
    }
    let name = match req.name {
        Some(n) => n,
        None => req
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("file name is not UTF-8"))?
            .to_owned(),
    };
    let name = content::sanitize_file_name(&name).map_err(|e| bad(e.to_string()))?;
    let chunk_size = req.chunk_size.unwrap_or(shared.chunk_size);
    let file = std::fs::File::open(&req.path)
        .map_err(|e| bad(format!("cannot open {}: {e}", req.path.display())))?;
    let chunker = Chunker::new(file, chunk_size).map_err(|e| bad(e.to_string()))?;
    let mut builder = ManifestBuilder::new(name.clone(), chunk_size);
    let mut seen = HashSet::new();
    let mut batch = Vec::new();
    // Up to SEND_PIPELINE batches are being stored while the next is read
    // and hashed; each answer is checked in order.
    let mut pending = std::collections::VecDeque::new();
    let mut bundles = 0;
    let manifest_expires_by = super::manifest_expires_by(shared, req.lifetime_ms);
    for chunk in chunker {
        let chunk = chunk.map_err(|e| bad(format!("cannot read {}: {e}", req.path.display())))?;
        builder.push(&chunk);
        if seen.insert(chunk.cid) {
            batch.push(Submission::Data {
                destination: to.clone(),
                payload: chunk.data.clone(),
                lifetime_ms: req.lifetime_ms,
                flags: 0,
                content_cid: Some(chunk.cid.to_bytes()),
                expires_by_ms: None,
            });
        }
        if batch.len() >= SEND_BATCH {
            if pending.len() >= SEND_PIPELINE {
                bundles += submit_wait(pending.pop_front().expect("pipeline is non-empty"))?.len();
            }
            pending.push_back(submit_start(shared, std::mem::take(&mut batch))?);
        }
    }
    if !batch.is_empty() {
        pending.push_back(submit_start(shared, batch)?);
    }
    for rx in pending {
        bundles += submit_wait(rx)?.len();
    }
    let manifest = builder.finish();
    if super::dtn_now().0 >= manifest_expires_by {
        return Err(bad(
            "storing the file took longer than its lifetime (its first chunks have expired); give a longer lifetime",
        ));
    }
    let (cid, manifest_bundle) =
        submit_manifest(shared, &manifest, to, req.lifetime_ms, manifest_expires_by)?;
    Ok(SendResponse {
        manifest_cid: cid.to_string(),
        manifest_bundle,
        name,
        size_bytes: manifest.size,
        chunks: manifest.chunks.len(),
        bundles: bundles + 1,
    })
}

/// Stores the manifest bundle (asking for a delivery report); returns its
/// CID and bundle ID.
fn submit_manifest(
    shared: &Shared,
    manifest: &content::Manifest,
    to: Eid,
    lifetime_ms: Option<u64>,
    expires_by_ms: u64,
) -> Result<(content::Cid, BundleId), ApiError> {
    manifest
        .validate(usize::MAX)
        .map_err(|e| bad(format!("cannot describe this file: {e}")))?;
    let cid = manifest.cid();
    let item = Submission::Data {
        destination: to,
        payload: manifest.encode().into(),
        lifetime_ms,
        flags: BundleFlags::REPORT_DELIVERY,
        content_cid: Some(cid.to_bytes()),
        expires_by_ms: Some(expires_by_ms),
    };
    let id = submit_blocking(shared, vec![item])?
        .into_iter()
        .next()
        .ok_or_else(|| internal("manifest not stored"))?;
    Ok((cid, id))
}

async fn submit_bundle(
    State(ctx): State<Ctx>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let shared = ctx.shared.clone();
    let ids = tokio::task::spawn_blocking(move || {
        submit_blocking(
            &shared,
            vec![Submission::Encoded(bytes::Bytes::from(body.to_vec()))],
        )
    })
    .await
    .map_err(|e| internal(e.to_string()))??;
    Ok(Json(json!({ "ids": ids })).into_response())
}

/// `POST /api/v1/sync/folders` body (`spore sync add`).
#[derive(Deserialize)]
struct SyncAddBody {
    dir: PathBuf,
    to: String,
    name: Option<String>,
    #[serde(default)]
    propagate_deletes: bool,
}

async fn sync_add(
    State(ctx): State<Ctx>,
    Json(b): Json<SyncAddBody>,
) -> Result<Response, ApiError> {
    let name = match b.name {
        Some(n) => n,
        None => b
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("folder has no UTF-8 name; pass name"))?
            .to_owned(),
    };
    let o = crate::sync::registry::Outgoing {
        name,
        dir: b.dir,
        to: b.to,
        propagate_deletes: b.propagate_deletes,
    };
    super::sync::add_folder(&ctx.shared, o).map_err(bad)?;
    Ok(Json(json!({ "ok": true })).into_response())
}

async fn sync_accept(
    State(ctx): State<Ctx>,
    Json(a): Json<crate::sync::registry::Accept>,
) -> Result<Response, ApiError> {
    super::sync::add_accept(&ctx.shared, a).map_err(bad)?;
    Ok(Json(json!({ "ok": true })).into_response())
}

async fn sync_status(State(ctx): State<Ctx>) -> Result<Response, ApiError> {
    let shared = ctx.shared.clone();
    let v = tokio::task::spawn_blocking(move || super::sync::status(&shared))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(internal)?;
    Ok(Json(v).into_response())
}

async fn sync_refresh(State(ctx): State<Ctx>) -> Response {
    ctx.shared.sync.refresh();
    Json(json!({ "ok": true })).into_response()
}

#[derive(Deserialize)]
struct AssetQuery {
    cid: String,
}

async fn query_asset(
    State(ctx): State<Ctx>,
    Query(q): Query<AssetQuery>,
) -> Result<Response, ApiError> {
    let shared = ctx.shared.clone();
    let v = tokio::task::spawn_blocking(move || super::asset::holders(&shared, &q.cid))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(bad)?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
struct LimitBody {
    node: String,
    bytes_per_s: u64,
}

async fn peer_bandwidth(
    State(ctx): State<Ctx>,
    Json(b): Json<LimitBody>,
) -> Result<Response, ApiError> {
    let eid: Eid = b
        .node
        .parse()
        .map_err(|e| bad(format!("bad node ID {:?}: {e}", b.node)))?;
    let caps = ctx
        .shared
        .bandwidth
        .set(&eid, b.bytes_per_s)
        .map_err(|e| internal(e.to_string()))?;
    Ok(Json(json!({ "bandwidth": caps })).into_response())
}
