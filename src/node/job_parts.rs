//! Streaming output of real-time jobs (spec/jobs.md §7.1).
//!
//! The executing node sends a job's output as [`ControlMessage::JobPart`]s
//! on the contact's control stream as the service produces it (at most
//! [`MAX_JOB_PART_BYTES`] each, [`MAX_REALTIME_BYTES`] in all), then the
//! [`ControlMessage::JobReply`] with the status and no repeated bytes. It
//! does so only when the request said `parts: true`; older requesters get
//! the whole output in the reply, and older executors' whole replies are
//! passed on as parts here.
//!
//! Every hop is a bounded channel: a slow reader of the HTTP answer stalls
//! the requester's job task, then the contact's control reader (at most
//! [`super::realtime`]'s reader stall), then QUIC flow control, then the
//! executor's part sender, then the service (a child blocks on its stdout
//! pipe). Nothing buffers without limit.

use super::Shared;
use super::exec::PartSink;
use super::proto::{ControlMessage, MAX_JOB_PART_BYTES};
use super::realtime::{self, Done, MAX_REALTIME_BYTES, RealtimeError};
use crate::cla::quic::Contact;
use crate::jobs::{JobErrorKind, JobRequest, JobResult};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events queued between a streaming job and its reader.
const STREAM_QUEUE: usize = 8;
/// Pieces queued between a running service and the part sender.
const SINK_QUEUE: usize = 4;

/// What the reader of a streaming real-time job receives, in order: any
/// number of `Part`s, then one `End`.
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// Output bytes as they came (at most 64 KiB).
    Part(Bytes),
    /// The job's outcome: its result (status; output already passed on as
    /// parts), or why it failed.
    End(Result<Done, RealtimeError>),
}

/// Starts `req` on the best eligible peer (retrying on the next only while
/// no output was passed on) and returns its output as it comes.
///
/// # Errors
/// [`RealtimeError::NoPeer`] (at once) when no peer is eligible; later
/// failures come as [`StreamEvent::End`].
pub(crate) async fn stream(
    shared: &Arc<Shared>,
    req: &JobRequest,
) -> Result<mpsc::Receiver<StreamEvent>, RealtimeError> {
    let order = realtime::eligible(shared, req).await?;
    let payload = req.encode();
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut r = realtime::attempts(&shared, order, &payload, Some(&tx)).await;
        if let Ok(done) = &mut r {
            // An older executor: its whole output came in the reply.
            let whole = std::mem::take(&mut done.result.output);
            for piece in whole.chunks(MAX_JOB_PART_BYTES) {
                let part = StreamEvent::Part(Bytes::copy_from_slice(piece));
                if tx.send(part).await.is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(StreamEvent::End(r)).await;
    });
    Ok(rx)
}

/// What the executor's part sender did.
#[derive(Debug, Default)]
pub(crate) struct PartsSent {
    /// Output bytes sent as parts.
    pub bytes: u64,
    /// It stopped because the output went over [`MAX_REALTIME_BYTES`].
    pub over_limit: bool,
    /// It stopped because the contact failed.
    pub failed: Option<String>,
}

/// A sink for a service's output that sends it to the requester on `c` as
/// `JobPart`s of request `rid`, in order. The task ends when the sink is
/// dropped (all parts sent) or early (over the limit, contact failed; the
/// sink then reports its receiver gone and the service stops).
pub(crate) fn forward_parts(c: Contact, rid: u64) -> (PartSink, JoinHandle<PartsSent>) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(SINK_QUEUE);
    let task = tokio::spawn(async move {
        let mut sent = PartsSent::default();
        let mut seq = 0;
        while let Some(piece) = rx.recv().await {
            for chunk in piece.chunks(MAX_JOB_PART_BYTES) {
                if sent.bytes + chunk.len() as u64 > MAX_REALTIME_BYTES as u64 {
                    sent.over_limit = true;
                    return sent;
                }
                let msg = ControlMessage::JobPart {
                    rid,
                    seq,
                    bytes: chunk.to_vec(),
                };
                if let Err(e) = c.send_control(&msg).await {
                    sent.failed = Some(e.to_string());
                    return sent;
                }
                seq += 1;
                sent.bytes += chunk.len() as u64;
            }
        }
        sent
    });
    (tx, task)
}

/// The reply's result once the part sender is done: `result` (its output is
/// what was not sent as parts), or an error when the sender stopped early.
/// `err` builds an error result for this job.
pub(crate) fn after_parts(
    result: JobResult,
    sent: Result<PartsSent, tokio::task::JoinError>,
    err: impl Fn(JobErrorKind, &str) -> JobResult,
) -> JobResult {
    match sent {
        Ok(s) if s.over_limit => {
            let d = format!("output over {MAX_REALTIME_BYTES} bytes for a real-time job");
            err(JobErrorKind::OverLimits, &d)
        }
        Ok(PartsSent {
            failed: Some(e), ..
        }) => err(
            JobErrorKind::CannotStart,
            &format!("cannot send output: {e}"),
        ),
        Ok(_) => result,
        Err(e) => err(JobErrorKind::CannotStart, &format!("part sender: {e}")),
    }
}
