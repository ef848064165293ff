//! Job endpoints of the local API (spec/jobs.md §6).
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | POST | /api/v1/jobs | `?service=S&to=EID&class=batch&deadline_ms=T&lifetime_ms=L&stream=B&input_cids=CID,CID&result_to=EID`, body = input bytes (empty with `input_cids`) | batch: `{job, to}`; realtime: the result (as `jobs/result`) plus `round_trip_ms`, `failed_peers`; 503 naming each candidate when none is eligible; realtime with `stream=true`: the raw output as it comes (`api/stream.rs`) |
//! | POST | /api/v1/inference/request | `{service, input?, input_cids?: [CID], class?, to?, result_to?, stream?}` (input as text; or `?stream=true`) | batch: `{job, to}`; realtime: as `/api/v1/jobs` |
//! | GET | /api/v1/jobs/status | `?id=JOB` | `{job, state, ...}` |
//! | GET | /api/v1/jobs/result | `?id=JOB` | `{job, executor, ok, kind?, detail?, output_hex, run_ms}` |
//!
//! `input_cids` names content already sent to the executing node (`spore
//! send`): manifest CIDs (a whole file) or chunk CIDs, in text form; the
//! input is their bytes in order (spec/jobs.md §2). `result_to` is where
//! the result bundle goes (batch only); a node ID `dtn://b/` means
//! `dtn://b/job-results`. Bad values are 400 with a one-line reason.

use super::{ApiError, Ctx, bad, internal, submit_blocking};
use crate::agent::Submission;
use crate::bundle::{BundleId, Eid};
use crate::jobs::{
    JobClass, JobInput, JobRequest, JobStatus, MAX_INPUT_CHUNKS, MAX_JOB_BYTES, jobs_endpoint,
    results_endpoint, select,
};
use crate::node::job_runner::read_result;
use crate::node::realtime;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
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
        // Job inputs up to the job limit, above the API's default body
        // limit; past it, `too_large` says how to send the input instead.
        .layer(DefaultBodyLimit::max(MAX_JOB_BYTES))
}

/// The 400 answer for a job over [`MAX_JOB_BYTES`] (`len` bytes if known).
fn too_large(len: Option<usize>) -> ApiError {
    let len = len.map_or_else(|| "over".to_owned(), |n| format!("of {n} bytes"));
    bad(format!(
        "job {len} exceeds {MAX_JOB_BYTES} bytes; send the input first (spore send FILE --to \
         dtn://NODE/files) and name it: spore job submit --input-cid MANIFEST_CID (API: input_cids)"
    ))
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
    /// Comma-separated CIDs (text) of content already at the executor.
    input_cids: Option<String>,
    /// Where the result goes (EID).
    result_to: Option<String>,
}

async fn submit_raw(
    State(ctx): State<Ctx>,
    Query(q): Query<SubmitQuery>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(None),
        _ => bad(e.body_text()),
    })?;
    let cids: Vec<String> = q
        .input_cids
        .iter()
        .flat_map(|c| c.split(','))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let mut req = JobRequest::inline(&q.service, Vec::new());
    req.input = job_input(body.to_vec(), &cids)?;
    req.class = q.class;
    req.deadline_ms = q.deadline_ms;
    req.result_to = check_result_to(q.result_to.as_deref())?;
    submit_job(&ctx, req, q.to, q.lifetime_ms, q.stream).await
}

#[derive(Deserialize)]
struct InferenceBody {
    service: String,
    #[serde(default)]
    input: String,
    /// CIDs (text) of content already at the executor, instead of `input`.
    #[serde(default)]
    input_cids: Vec<String>,
    #[serde(default)]
    class: JobClass,
    to: Option<String>,
    /// Where the result goes (EID).
    result_to: Option<String>,
    /// Real time only: answer with the raw output as it comes.
    #[serde(default)]
    stream: bool,
}

/// The input of a job: `inline` bytes, or the content named by `cids`
/// (text CIDs of chunks or manifests, spec/jobs.md §2), never both.
///
/// # Errors
/// 400 for both given, too many CIDs, or a CID that does not parse or is
/// neither a chunk (raw) nor a manifest (dag-cbor) CID.
fn job_input(inline: Vec<u8>, cids: &[String]) -> Result<JobInput, ApiError> {
    if cids.is_empty() {
        return Ok(JobInput::Inline(inline));
    }
    if !inline.is_empty() {
        return Err(bad("give the input inline or as input CIDs, not both"));
    }
    if cids.len() > MAX_INPUT_CHUNKS {
        return Err(bad(format!(
            "{} input CIDs > {MAX_INPUT_CHUNKS}",
            cids.len()
        )));
    }
    let parse = |t: &String| {
        let cid = crate::content::cid_from_str(t.trim())
            .map_err(|e| bad(format!("bad input CID {t:?}: {e}")))?;
        if ![crate::content::RAW_CODEC, crate::content::DAG_CBOR_CODEC].contains(&cid.codec()) {
            let why = "neither a chunk (raw) nor a manifest (dag-cbor) CID";
            return Err(bad(format!("bad input CID {t:?}: {why}")));
        }
        Ok(serde_bytes::ByteBuf::from(cid.to_bytes()))
    };
    Ok(JobInput::Chunks(
        cids.iter().map(parse).collect::<Result<_, _>>()?,
    ))
}

/// Checks a `result_to` EID; a node ID (`dtn://b/`) becomes that node's
/// results endpoint (`dtn://b/job-results`).
///
/// # Errors
/// 400 if it is not an EID or is `dtn:none`.
fn check_result_to(t: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(t) = t else {
        return Ok(None);
    };
    let eid: Eid = t
        .parse()
        .map_err(|e| bad(format!("bad result_to {t:?}: {e}")))?;
    let eid = match eid {
        Eid::DtnNone => return Err(bad("bad result_to: dtn:none would discard the result")),
        Eid::Dtn { ref demux, .. } if demux.is_empty() => results_endpoint(&eid),
        other => other,
    };
    Ok(Some(eid.to_string()))
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
    let mut req = JobRequest::inline(&b.service, Vec::new());
    req.input = job_input(b.input.into_bytes(), &b.input_cids)?;
    req.class = b.class;
    req.result_to = check_result_to(b.result_to.as_deref())?;
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
        if req.result_to.is_some() {
            return Err(bad(
                "result_to is for batch jobs: a real-time result returns to the caller",
            ));
        }
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
    if payload.len() > MAX_JOB_BYTES {
        return Err(too_large(Some(payload.len())));
    }
    let item = Submission::Data {
        destination: destination.clone(),
        payload: payload.into(),
        lifetime_ms,
        flags: crate::bundle::BundleFlags::REPORT_DELIVERY,
        content_cid: None,
        expires_by_ms: None,
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
