//! Job endpoints of the local API (spec/jobs.md §6).
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | POST | /api/v1/jobs | `?service=S&to=EID&class=batch&deadline_ms=T&lifetime_ms=L&stream=B`, body = input bytes | batch: `{job, to}`; realtime: the result (as `jobs/result`) plus `round_trip_ms`, `failed_peers`; 503 naming each candidate when none is eligible; realtime with `stream=true`: the raw output as it comes (`api/stream.rs`) |
//! | POST | /api/v1/inference/request | `{service, input, class?, to?, stream?}` (input as text; or `?stream=true`) | batch: `{job, to}`; realtime: as `/api/v1/jobs` |
//! | GET | /api/v1/jobs/status | `?id=JOB` | `{job, state, ...}` |
//! | GET | /api/v1/jobs/result | `?id=JOB` | `{job, executor, ok, kind?, detail?, output_hex, run_ms}` |

use super::{ApiError, Ctx, bad, internal, submit_blocking};
use crate::agent::Submission;
use crate::bundle::{BundleId, Eid};
use crate::jobs::{JobClass, JobRequest, JobStatus, jobs_endpoint, select};
use crate::node::job_runner::read_result;
use crate::node::realtime;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// The job routes (merged into the API router).
pub(super) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/api/v1/jobs", post(submit_raw))
        .route("/api/v1/inference/request", post(inference_request))
        .route("/api/v1/jobs/status", get(status))
        .route("/api/v1/jobs/result", get(result))
}

#[derive(Deserialize)]
struct SubmitQuery {
    service: String,
    to: Option<String>,
    #[serde(default)]
    class: JobClass,
    deadline_ms: Option<u64>,
    lifetime_ms: Option<u64>,
    /// Real time only: answer with the raw output as it comes.
    #[serde(default)]
    stream: bool,
}

async fn submit_raw(
    State(ctx): State<Ctx>,
    Query(q): Query<SubmitQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut req = JobRequest::inline(&q.service, body.to_vec());
    req.class = q.class;
    req.deadline_ms = q.deadline_ms;
    submit_job(&ctx, req, q.to, q.lifetime_ms, q.stream).await
}

#[derive(Deserialize)]
struct InferenceBody {
    service: String,
    input: String,
    #[serde(default)]
    class: JobClass,
    to: Option<String>,
    /// Real time only: answer with the raw output as it comes.
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct StreamQuery {
    #[serde(default)]
    stream: bool,
}

async fn inference_request(
    State(ctx): State<Ctx>,
    Query(q): Query<StreamQuery>,
    Json(b): Json<InferenceBody>,
) -> Result<Response, ApiError> {
    let mut req = JobRequest::inline(&b.service, b.input.into_bytes());
    req.class = b.class;
    submit_job(&ctx, req, b.to, None, q.stream || b.stream).await
}

/// Validates, picks the executing node and stores the job bundle.
async fn submit_job(
    ctx: &Ctx,
    req: JobRequest,
    to: Option<String>,
    lifetime_ms: Option<u64>,
    stream: bool,
) -> Result<Response, ApiError> {
    crate::jobs::check_service_name(&req.service).map_err(|e| bad(e.to_string()))?;
    if req.class == JobClass::Realtime {
        if req.encode().len() > realtime::MAX_REALTIME_BYTES {
            return Err(bad("real-time input too large; submit as batch"));
        }
        if stream {
            let raw = "application/octet-stream";
            return super::stream::answer(ctx, &req, raw, super::stream::OnError::Abort).await;
        }
        return realtime(ctx, &req).await;
    }
    let to: Eid = match to {
        Some(t) => t.parse().map_err(|e| bad(format!("bad --to: {e}")))?,
        None => best_node(ctx, &req.service).await?,
    };
    let destination = jobs_endpoint(&to);
    let payload = req.encode();
    if payload.len() > crate::jobs::MAX_JOB_BYTES {
        return Err(bad(format!(
            "job of {} bytes exceeds {} bytes; send the input as a file and name its chunks",
            payload.len(),
            crate::jobs::MAX_JOB_BYTES
        )));
    }
    let item = Submission::Data {
        destination: destination.clone(),
        payload: payload.into(),
        lifetime_ms,
        flags: crate::bundle::BundleFlags::REPORT_DELIVERY,
        content_cid: None,
    };
    let shared = ctx.shared.clone();
    let ids = tokio::task::spawn_blocking(move || submit_blocking(&shared, vec![item]))
        .await
        .map_err(|e| internal(e.to_string()))??;
    let job = ids
        .into_iter()
        .next()
        .ok_or_else(|| internal("job not stored"))?;
    Ok(Json(json!({ "job": job, "to": destination.to_string() })).into_response())
}

/// The best known node offering `service` (spec/jobs.md §7).
async fn best_node(ctx: &Ctx, service: &str) -> Result<Eid, ApiError> {
    let cands = realtime::batch_candidates(&ctx.shared, service)
        .await
        .map_err(|e| internal(e.to_string()))?;
    select::batch_choice(&cands).ok_or_else(|| {
        bad(format!(
            "no known node offers service {service:?} (none advertised it): pass to=dtn://NODE/"
        ))
    })
}

/// Runs a real-time job now and answers with its result.
async fn realtime(ctx: &Ctx, req: &JobRequest) -> Result<Response, ApiError> {
    let done = realtime::run(&ctx.shared, req)
        .await
        .map_err(super::stream::realtime_error)?;
    let mut v = result_json(&done.result);
    v["round_trip_ms"] = json!(done.round_trip_ms);
    let failed: Vec<String> = done
        .failed
        .iter()
        .map(|(p, e)| format!("{p}: {e}"))
        .collect();
    v["failed_peers"] = json!(failed);
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
struct IdQuery {
    id: String,
}

fn parse_id(q: &IdQuery) -> Result<BundleId, ApiError> {
    q.id.parse().map_err(|e| bad(format!("{e}")))
}

async fn status(State(ctx): State<Ctx>, Query(q): Query<IdQuery>) -> Result<Response, ApiError> {
    let id = parse_id(&q)?;
    if let Some(r) = read_result(&ctx.shared.data_dir, &id) {
        let state = if r.status == JobStatus::Ok {
            "done"
        } else {
            "failed"
        };
        return Ok(Json(json!({
            "job": id, "state": state, "executor": r.executor, "status": r.status,
            "run_ms": r.run_ms, "output_bytes": r.output.len(),
        }))
        .into_response());
    }
    let rec = ctx
        .shared
        .store
        .record(&id.to_key())
        .map_err(|e| internal(e.to_string()))?;
    let Some(rec) = rec else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no job {id} here")));
    };
    Ok(Json(json!({
        "job": id, "state": "waiting for result", "bundle_state": format!("{:?}", rec.state),
        "custodian": rec.custodian.map(|c| c.to_string()),
    }))
    .into_response())
}

async fn result(State(ctx): State<Ctx>, Query(q): Query<IdQuery>) -> Result<Response, ApiError> {
    let id = parse_id(&q)?;
    let Some(r) = read_result(&ctx.shared.data_dir, &id) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no result for job {id} yet"),
        ));
    };
    Ok(Json(result_json(&r)).into_response())
}

fn result_json(r: &crate::jobs::JobResult) -> serde_json::Value {
    let (ok, kind, detail) = match &r.status {
        JobStatus::Ok => (true, None, None),
        JobStatus::Error { kind, detail } => (false, Some(kind.to_string()), Some(detail.clone())),
    };
    json!({
        "job": r.job, "executor": r.executor, "ok": ok, "kind": kind, "detail": detail,
        "output_hex": hex::encode(&r.output), "run_ms": r.run_ms,
    })
}
