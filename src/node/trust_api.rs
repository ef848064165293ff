//! Trust routes of the local API (spec/trust.md).
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | /api/v1/trust | | `{mode, self: {key, node_id}, keys: [TrustEntry]}` |
//! | POST | /api/v1/trust | `{key, name?}` | `{added: bool, keys}` |
//! | DELETE | /api/v1/trust | `?target=KEY-or-NAME` | `{removed: [TrustEntry]}` |
//! | POST | /api/v1/invite | `{ttl_s?, addrs?: [addr]}` | `{code, expires_unix_s, addrs}` |
//! | POST | /api/v1/join | `{code}` | `{inviter, key, addr}` |

use super::api::{ApiError, Ctx, bad, internal};
use super::invite::InviteCode;
use super::join::{self, JoinError};
use super::trust::{NodeKey, TrustError, TrustMode};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Longest invite lifetime accepted, seconds (30 days).
const MAX_INVITE_TTL_S: u64 = 30 * 24 * 3600;

/// The trust routes, to be merged before the API's auth layer.
pub(super) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/api/v1/trust", get(list).post(add).delete(remove))
        .route("/api/v1/invite", post(invite))
        .route("/api/v1/join", post(join_route))
}

fn trust_err(e: TrustError) -> ApiError {
    match e {
        TrustError::File { .. } => internal(e.to_string()),
        _ => bad(e.to_string()),
    }
}

async fn list(State(ctx): State<Ctx>) -> Response {
    let t = &ctx.shared.trust;
    Json(json!({
        "mode": t.mode().to_string(),
        "self": { "key": t.own_key(), "node_id": ctx.shared.node_id.to_string() },
        "keys": t.list(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct AddBody {
    key: String,
    name: Option<String>,
}

async fn add(State(ctx): State<Ctx>, Json(b): Json<AddBody>) -> Result<Response, ApiError> {
    let key: NodeKey = b.key.parse().map_err(trust_err)?;
    if key == ctx.shared.trust.own_key() {
        return Err(bad("this is the node's own key"));
    }
    let added = ctx.shared.trust.add(key, b.name, None).map_err(trust_err)?;
    Ok(Json(json!({ "added": added, "keys": ctx.shared.trust.list() })).into_response())
}

#[derive(Deserialize)]
struct RemoveQuery {
    target: String,
}

/// Removes keys; in private mode their live contacts end at once.
async fn remove(
    State(ctx): State<Ctx>,
    Query(q): Query<RemoveQuery>,
) -> Result<Response, ApiError> {
    let removed = ctx.shared.trust.remove(&q.target).map_err(trust_err)?;
    if removed.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no trusted key or name {:?}", q.target),
        ));
    }
    if ctx.shared.trust.mode() == TrustMode::Private {
        for e in &removed {
            ctx.shared
                .contacts
                .close_by_key(&e.key.0, "key removed from the trust list");
        }
    }
    Ok(Json(json!({ "removed": removed })).into_response())
}

#[derive(Deserialize)]
struct InviteBody {
    ttl_s: Option<u64>,
    addrs: Option<Vec<String>>,
}

async fn invite(State(ctx): State<Ctx>, Json(b): Json<InviteBody>) -> Result<Response, ApiError> {
    let ttl_s = b.ttl_s.unwrap_or(ctx.shared.trust.invite_ttl_s);
    if ttl_s == 0 || ttl_s > MAX_INVITE_TTL_S {
        return Err(bad(format!("ttl must be 1 s ..= {MAX_INVITE_TTL_S} s")));
    }
    let addrs = match b.addrs {
        Some(v) if !v.is_empty() => v
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| bad(format!("bad address {a:?}: {e}")))
            })
            .collect::<Result<Vec<SocketAddr>, _>>()?,
        _ => default_addrs(&ctx)?,
    };
    if addrs.len() > super::invite::MAX_ADDRS {
        return Err(bad("at most 8 addresses"));
    }
    let (secret, expires_unix_s) = ctx.shared.trust.create_invite(Duration::from_secs(ttl_s));
    let code = InviteCode {
        key: ctx.shared.trust.own_key(),
        secret,
        expires_unix_s,
        addrs: addrs.clone(),
    };
    Ok(Json(json!({
        "code": code.encode(),
        "expires_unix_s": expires_unix_s,
        "addrs": addrs,
        "mode": ctx.shared.trust.mode().to_string(),
    }))
    .into_response())
}

/// The QUIC address; an unspecified IP (0.0.0.0) becomes the address of
/// the interface of the default route, or loopback if there is none.
fn default_addrs(ctx: &Ctx) -> Result<Vec<SocketAddr>, ApiError> {
    let quic = ctx
        .shared
        .cla
        .local_addr()
        .map_err(|e| internal(e.to_string()))?;
    if !quic.ip().is_unspecified() {
        return Ok(vec![quic]);
    }
    // A connected UDP socket sends nothing; it only picks a source address.
    let primary = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    let ip = primary.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Ok(vec![SocketAddr::new(ip, quic.port())])
}

#[derive(Deserialize)]
struct JoinBody {
    code: String,
}

async fn join_route(State(ctx): State<Ctx>, Json(b): Json<JoinBody>) -> Result<Response, ApiError> {
    match join::join(&ctx.shared, &b.code).await {
        Ok(j) => Ok(Json(j).into_response()),
        Err(e @ (JoinError::Trust(TrustError::File { .. }) | JoinError::Dial(_))) => {
            Err(internal(e.to_string()))
        }
        Err(e @ (JoinError::Unreachable(_) | JoinError::Refused(_) | JoinError::WrongKey(_))) => {
            Err(ApiError(StatusCode::BAD_GATEWAY, e.to_string()))
        }
        Err(e) => Err(bad(e.to_string())),
    }
}
