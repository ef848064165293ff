//! The `ollama` service kind (spec/jobs.md §8): a job's input names an
//! Ollama API endpoint and a request body; the executor posts it to the
//! service's URL and returns the answer (JSON, or JSON lines when the
//! request asked for streaming) as the job's output, or passes streamed
//! JSON lines on as they come (spec/jobs.md §7.1).

use super::exec::{ExecOutcome, PartSink};
use crate::jobs::{JobErrorKind, JobStatus};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Longest wait for an Ollama answer.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Largest answer kept, bytes.
const MAX_ANSWER: u64 = 8 << 20;
/// Endpoints a job may call (under `/api/`).
pub(crate) const ENDPOINTS: [&str; 4] = ["generate", "chat", "embeddings", "embed"];

/// The input of an `ollama` job: `{"endpoint": "generate", "body": {...}}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OllamaInput {
    /// One of [`ENDPOINTS`].
    pub endpoint: String,
    /// The Ollama request body; its `model` must be one the service serves.
    pub body: serde_json::Value,
}

fn failed(kind: JobErrorKind, detail: String, start: Instant) -> ExecOutcome {
    ExecOutcome {
        status: JobStatus::Error { kind, detail },
        output: Vec::new(),
        run_ms: start.elapsed().as_millis() as u64,
    }
}

/// Posts the job to `url` and returns the answer.
///
/// With a `sink`, a streaming `generate`/`chat` request (`"stream"` absent
/// or true, Ollama's default) has its answer passed on line by line as the
/// server sends it (each JSON line a piece of at most 64 KiB; longer lines
/// are split) instead of kept in [`ExecOutcome::output`] (spec/jobs.md §8).
pub(crate) async fn run(
    url: &str,
    models: &[String],
    input: Vec<u8>,
    sink: Option<PartSink>,
) -> ExecOutcome {
    let start = Instant::now();
    let req: OllamaInput = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            let d = format!("input is not {{\"endpoint\", \"body\"}} JSON: {e}");
            return failed(JobErrorKind::BadRequest, d, start);
        }
    };
    if !ENDPOINTS.contains(&req.endpoint.as_str()) {
        let d = format!("endpoint {:?} is not one of {ENDPOINTS:?}", req.endpoint);
        return failed(JobErrorKind::BadRequest, d, start);
    }
    let model = req.body["model"].as_str().unwrap_or_default().to_owned();
    if !models.is_empty() && !models.contains(&model) {
        let d = format!("model {model:?} is not served here (serves {models:?})");
        return failed(JobErrorKind::UnknownService, d, start);
    }
    let target = format!("{}/api/{}", url.trim_end_matches('/'), req.endpoint);
    let streams =
        matches!(req.endpoint.as_str(), "generate" | "chat") && req.body["stream"] != false;
    let sink = sink.filter(|_| streams);
    let body = req.body.to_string();
    let r = tokio::task::spawn_blocking(move || post(&target, &body, sink)).await;
    match r {
        Ok(Ok((200..=299, output))) => ExecOutcome {
            status: JobStatus::Ok,
            output,
            run_ms: start.elapsed().as_millis() as u64,
        },
        Ok(Ok((code, output))) => {
            let text = String::from_utf8_lossy(&output)
                .chars()
                .take(300)
                .collect::<String>();
            let d = format!("Ollama answered HTTP {code}: {text}");
            failed(JobErrorKind::ExitCode(i32::from(code)), d, start)
        }
        Ok(Err(e)) => failed(JobErrorKind::CannotStart, e, start),
        Err(e) => failed(JobErrorKind::CannotStart, e.to_string(), start),
    }
}

/// A blocking POST; returns the status and up to [`MAX_ANSWER`] bytes (with
/// a `sink` and a 2xx status: nothing, the lines went to the sink).
fn post(url: &str, body: &str, sink: Option<PartSink>) -> Result<(u16, Vec<u8>), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut r = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let code = r.status().as_u16();
    if let (Some(sink), 200..=299) = (sink, code) {
        let reader = r.body_mut().with_config().limit(MAX_ANSWER).reader();
        pass_lines(std::io::BufReader::new(reader), &sink)
            .map_err(|e| format!("reading the answer of {url}: {e}"))?;
        return Ok((code, Vec::new()));
    }
    let out = r
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    Ok((code, out))
}

/// Passes each line of `r` (with its newline) to `sink` as soon as it is
/// read; lines over 64 KiB go as several pieces.
///
/// # Errors
/// A read error, or "output reader gone" when the sink's receiver is gone.
fn pass_lines(mut r: impl std::io::BufRead, sink: &PartSink) -> std::io::Result<()> {
    use std::io::{BufRead, Read};
    let max = crate::node::proto::MAX_JOB_PART_BYTES as u64;
    loop {
        let mut line = Vec::new();
        let n = r.by_ref().take(max).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if sink.blocking_send(line).is_err() {
            return Err(std::io::Error::other("output reader gone"));
        }
    }
}
