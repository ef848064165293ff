//! Streaming answers for real-time jobs (spec/jobs.md §7.1): the job's
//! output parts become a chunked HTTP body as they arrive.
//!
//! The handler waits for the job's first event: a job that fails before any
//! output is an ordinary HTTP error (503 no eligible peer or every peer
//! failed, 502 the job failed on its executor). Once a part has come the
//! answer is 200 and the body streams; a failure after that ends the body
//! in the body's own way ([`OnError`]).

use super::{ApiError, Ctx, internal};
use crate::jobs::{JobRequest, JobStatus};
use crate::node::job_parts::{self, StreamEvent};
use crate::node::realtime::{Done, RealtimeError};
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tracing::warn;

/// How long an aborting body waits first, so that the output before the
/// failure is written out (hyper discards its write buffer on abort).
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// How a body that already streamed reports a failure.
#[derive(Clone, Copy, Debug)]
pub(super) enum OnError {
    /// Raw output: the body is aborted (the chunked encoding never ends
    /// properly), so no client mistakes the output for a complete one;
    /// the output before it is flushed first ([`FLUSH_GRACE`]).
    Abort,
    /// JSON lines (Ollama): a last line `{"error": "..."}`, as Ollama
    /// itself reports errors mid-stream, then a proper end.
    ErrorLine,
}

/// The HTTP error for a real-time failure before any output.
pub(super) fn realtime_error(e: RealtimeError) -> ApiError {
    match e {
        RealtimeError::Stopping => internal(e.to_string()),
        _ => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Why a finished job failed, if it did.
fn failure(done: &Done) -> Option<String> {
    match &done.result.status {
        JobStatus::Ok => None,
        JobStatus::Error { kind, detail } => {
            Some(format!("{kind} on {}: {detail}", done.result.executor))
        }
    }
}

/// Runs `req` as a streaming real-time job and answers with its output as
/// it comes, with content type `ctype`.
///
/// # Errors
/// As described in the module docs, before any output.
pub(super) async fn answer(
    ctx: &Ctx,
    req: &JobRequest,
    ctype: &'static str,
    on_error: OnError,
) -> Result<Response, ApiError> {
    let mut rx = job_parts::stream(&ctx.shared, req)
        .await
        .map_err(realtime_error)?;
    let state: BodyState = match rx.recv().await {
        None => return Err(internal("the job's task ended without an outcome")),
        Some(StreamEvent::End(Err(e))) => return Err(realtime_error(e)),
        Some(StreamEvent::End(Ok(done))) => match failure(&done) {
            Some(why) => return Err(ApiError(StatusCode::BAD_GATEWAY, why)),
            None => None,
        },
        Some(StreamEvent::Part(b)) => Some((Some(b), rx)),
    };
    let body = futures_util::stream::unfold(state, move |st| next(st, on_error));
    let headers = [
        (header::CONTENT_TYPE, ctype),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, Body::from_stream(body)).into_response())
}

/// The body stream's state: a part not yet yielded, and the job's events
/// (`None` once the body has ended).
type BodyState = Option<(Option<Bytes>, mpsc::Receiver<StreamEvent>)>;

/// The body's next item: a part, the end, or the failure (per `on_error`).
async fn next(
    st: BodyState,
    on_error: OnError,
) -> Option<(Result<Bytes, std::io::Error>, BodyState)> {
    let (pending, mut rx) = st?;
    if let Some(b) = pending {
        return Some((Ok(b), Some((None, rx))));
    }
    let why = match rx.recv().await {
        Some(StreamEvent::Part(b)) => return Some((Ok(b), Some((None, rx)))),
        Some(StreamEvent::End(Ok(done))) => failure(&done)?,
        Some(StreamEvent::End(Err(e))) => e.to_string(),
        None => "the job's task ended without an outcome".to_owned(),
    };
    warn!(error = %why, "streaming real-time job failed after output began");
    let item = match on_error {
        OnError::Abort => {
            // hyper drops what it still buffers when a body fails: give it
            // time to flush the output so far first.
            tokio::time::sleep(FLUSH_GRACE).await;
            Err(std::io::Error::other(why))
        }
        OnError::ErrorLine => {
            let mut line = serde_json::json!({ "error": why }).to_string();
            line.push('\n');
            Ok(Bytes::from(line))
        }
    };
    Some((item, None))
}
