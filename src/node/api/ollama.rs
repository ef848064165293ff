//! An Ollama-compatible front on the local API (spec/jobs.md §8): Ollama
//! clients call `POST /api/generate`, `/api/chat`, `/api/embeddings`,
//! `/api/embed` and `GET /api/tags` on a spore node (with the API token as a
//! bearer header); requests run as real-time jobs on a peer whose `ollama`
//! service serves the model.

use super::{ApiError, Ctx, bad, internal, stream};
use crate::jobs::{JobClass, JobRequest, JobStatus};
use crate::node::ollama::OllamaInput;
use crate::node::realtime;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The Ollama routes (merged into the API router).
pub(super) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/api/tags", get(tags))
        .route("/api/generate", post(|s, b| call(s, b, "generate")))
        .route("/api/chat", post(|s, b| call(s, b, "chat")))
        .route("/api/embeddings", post(|s, b| call(s, b, "embeddings")))
        .route("/api/embed", post(|s, b| call(s, b, "embed")))
}

/// (model, service name, node) for every model peers advertise.
fn mesh_models(ctx: &Ctx) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (node, caps) in ctx.shared.jobs.peer_caps.all() {
        for s in caps.services.iter().filter(|s| s.kind == "ollama") {
            for m in &s.models {
                out.push((m.clone(), s.name.clone(), node.to_string()));
            }
        }
    }
    out
}

async fn tags(State(ctx): State<Ctx>) -> Response {
    let mut seen = std::collections::BTreeSet::new();
    let models: Vec<Value> = mesh_models(&ctx)
        .into_iter()
        .filter(|(m, _, _)| seen.insert(m.clone()))
        .map(|(m, service, node)| {
            json!({
                "name": m, "model": m, "size": 0, "digest": "",
                "details": {"family": "", "format": ""},
                "spore": {"service": service, "node": node},
            })
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

async fn call(
    State(ctx): State<Ctx>,
    Json(body): Json<Value>,
    endpoint: &str,
) -> Result<Response, ApiError> {
    let model = body["model"]
        .as_str()
        .ok_or_else(|| bad("the request has no \"model\""))?
        .to_owned();
    let service = mesh_models(&ctx)
        .into_iter()
        .find(|(m, _, _)| *m == model)
        .map(|(_, s, _)| s)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("model {model:?} is not served by any peer this node knows"),
            )
        })?;
    let streaming = matches!(endpoint, "generate" | "chat") && body["stream"] != false;
    let input = OllamaInput {
        endpoint: endpoint.to_owned(),
        body,
    };
    let bytes = serde_json::to_vec(&input).map_err(|e| internal(e.to_string()))?;
    let mut req = JobRequest::inline(&service, bytes);
    req.class = JobClass::Realtime;
    if streaming {
        let ndjson = "application/x-ndjson";
        return stream::answer(&ctx, &req, ndjson, stream::OnError::ErrorLine).await;
    }
    let done = realtime::run(&ctx.shared, &req)
        .await
        .map_err(stream::realtime_error)?;
    match done.result.status {
        JobStatus::Ok => {
            let ctype = "application/json";
            Ok(([(header::CONTENT_TYPE, ctype)], done.result.output).into_response())
        }
        JobStatus::Error { kind, detail } => Err(ApiError(
            StatusCode::BAD_GATEWAY,
            format!("{} on {}: {detail}", kind, done.result.executor),
        )),
    }
}
