//! Job bundles (spec/jobs.md): a node asks the mesh to run a job on a node
//! that offers a service, and the result comes back as a bundle.
//!
//! This module is sans-IO: the wire types ([`JobRequest`], [`JobResult`]),
//! their CBOR codec with limits and typed errors ([`JobDecodeError`]), the
//! deterministic result bundle ID ([`result_timestamp`]) and the services
//! configuration ([`ServiceConfig`], [`JobsConfig`]). The executor (a tokio
//! task that runs `exec` services) lives in the node driver.
//!
//! Endpoints: job bundles go to `dtn://NODE/jobs` ([`JOBS_SERVICE`]),
//! results to `dtn://SUBMITTER/job-results` ([`RESULTS_SERVICE`]) unless the
//! request names another `result_to`.

mod caps;
mod config;
pub mod select;

pub use caps::{Capabilities, Hardware, ServiceAdvert};
pub use config::{
    JobsConfig, ServiceConfig, ServiceKind, ServicesFileError, validate as validate_services,
};

use crate::bundle::{BundleId, CreationTimestamp, Eid};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Demux of the service endpoint that receives job bundles (`dtn://NODE/jobs`).
pub const JOBS_SERVICE: &str = "jobs";
/// Demux of the endpoint that receives result bundles (`dtn://NODE/job-results`).
pub const RESULTS_SERVICE: &str = "job-results";
/// Version of the job payload format written by this code.
pub const FORMAT_VERSION: u64 = 1;
/// Largest encoded job request or result accepted, bytes (16 MiB).
pub const MAX_JOB_BYTES: usize = 16 << 20;
/// Longest service name, bytes.
pub const MAX_SERVICE_NAME: usize = 64;
/// Most input chunks (CIDs) one request may name.
pub const MAX_INPUT_CHUNKS: usize = 65_536;
/// Longest error detail text in a result, bytes.
pub const MAX_DETAIL: usize = 4096;

/// Whether a job may wait for contacts (batch) or needs an answer now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum JobClass {
    /// Travels as a bundle, runs when it arrives; may take hours or days.
    #[default]
    Batch,
    /// Interactive: only to peers in contact now with a low smoothed RTT.
    Realtime,
}

/// The input of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobInput {
    /// The bytes themselves (given to the command on stdin).
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Binary CIDs of content already sent to the executing node (`spore
    /// send`): chunk CIDs (raw) or manifest CIDs (dag-cbor, the whole file);
    /// the input is their bytes concatenated in this order (spec/jobs.md §2).
    Chunks(Vec<serde_bytes::ByteBuf>),
}

/// A job request: the payload of a job bundle sent to `dtn://NODE/jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u64,
    /// Service name, 1..=[`MAX_SERVICE_NAME`] bytes of `[A-Za-z0-9._-]`.
    pub service: String,
    /// Input bytes or chunk CIDs.
    pub input: JobInput,
    /// Batch or realtime.
    #[serde(default)]
    pub class: JobClass,
    /// Run only before this DTN time (ms since 2000-01-01); after it the
    /// executor answers [`JobErrorKind::Timeout`] without running.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Where the result goes; default `dtn://SOURCE/job-results`.
    #[serde(default)]
    pub result_to: Option<String>,
}

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobErrorKind {
    /// The executing node does not offer this service.
    UnknownService,
    /// The time limit or the request's deadline passed.
    Timeout,
    /// The command exited with this non-zero code (or was killed: -1).
    ExitCode(i32),
    /// Input or output over the service's limits.
    OverLimits,
    /// The service's queue is full.
    RefusedBusy,
    /// The request does not decode or is invalid.
    BadRequest,
    /// Input chunks are not (yet) in the executor's store.
    InputMissing,
    /// The command could not be started.
    CannotStart,
}

impl std::fmt::Display for JobErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobErrorKind::UnknownService => f.write_str("unknown service"),
            JobErrorKind::Timeout => f.write_str("timeout"),
            JobErrorKind::ExitCode(c) => write!(f, "exit code {c}"),
            JobErrorKind::OverLimits => f.write_str("over limits"),
            JobErrorKind::RefusedBusy => f.write_str("refused (busy)"),
            JobErrorKind::BadRequest => f.write_str("bad request"),
            JobErrorKind::InputMissing => f.write_str("input missing"),
            JobErrorKind::CannotStart => f.write_str("cannot start"),
        }
    }
}

/// The outcome of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// The command exited with code 0.
    Ok,
    /// It failed; `detail` is a one-line explanation (≤ [`MAX_DETAIL`] bytes).
    Error {
        /// What kind of failure.
        kind: JobErrorKind,
        /// Human-readable detail.
        detail: String,
    },
}

/// A job result: the payload of a result bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u64,
    /// The job bundle's ID (text form `SOURCE#TIME.SEQ`).
    pub job: BundleId,
    /// The executing node's ID.
    pub executor: String,
    /// Ok or an error.
    pub status: JobStatus,
    /// Standard output (possibly partial for errors), bytes.
    #[serde(with = "serde_bytes")]
    pub output: Vec<u8>,
    /// Wall-clock run time of the command, ms (0 if it did not run).
    pub run_ms: u64,
}

/// Why a job payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobDecodeError {
    /// Larger than [`MAX_JOB_BYTES`].
    #[error("job payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Payload length, bytes.
        len: usize,
        /// The limit, bytes.
        max: usize,
    },
    /// Not CBOR of the expected shape.
    #[error("job payload is not valid CBOR: {0}")]
    Cbor(String),
    /// A version this code does not read.
    #[error("unsupported job format version {0}")]
    Version(u64),
    /// A field is out of range.
    #[error("invalid job field {field}: {detail}")]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Checks a service name: 1..=64 bytes of `[A-Za-z0-9._-]`.
///
/// # Errors
/// [`JobDecodeError::Field`] naming `service`.
pub fn check_service_name(name: &str) -> Result<(), JobDecodeError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(JobDecodeError::Field {
            field: "service",
            detail: format!("{name:?} is not 1..={MAX_SERVICE_NAME} bytes of [A-Za-z0-9._-]"),
        })
    }
}

fn decode_cbor<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, JobDecodeError> {
    if b.len() > MAX_JOB_BYTES {
        return Err(JobDecodeError::TooLarge {
            len: b.len(),
            max: MAX_JOB_BYTES,
        });
    }
    serde_cbor::from_slice(b).map_err(|e| JobDecodeError::Cbor(e.to_string()))
}

impl JobRequest {
    /// A batch request for `service` with inline input and default routing.
    pub fn inline(service: &str, input: Vec<u8>) -> JobRequest {
        JobRequest {
            v: FORMAT_VERSION,
            service: service.to_owned(),
            input: JobInput::Inline(input),
            class: JobClass::Batch,
            deadline_ms: None,
            result_to: None,
        }
    }

    /// CBOR encoding (a map with the field names above).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs of strings, ints and bytes to a Vec
        // cannot fail.
        serde_cbor::to_vec(self).unwrap_or_default()
    }

    /// Decodes and validates a request.
    ///
    /// # Errors
    /// [`JobDecodeError`]: too large, not CBOR, unknown version, bad service
    /// name, too many chunks or one that is not a binary CID, `result_to`
    /// not an EID.
    pub fn decode(b: &[u8]) -> Result<JobRequest, JobDecodeError> {
        let r: JobRequest = decode_cbor(b)?;
        if r.v != FORMAT_VERSION {
            return Err(JobDecodeError::Version(r.v));
        }
        check_service_name(&r.service)?;
        if let JobInput::Chunks(c) = &r.input {
            if c.len() > MAX_INPUT_CHUNKS {
                return Err(JobDecodeError::Field {
                    field: "input",
                    detail: format!("{} chunks > {MAX_INPUT_CHUNKS}", c.len()),
                });
            }
            for cid in c {
                crate::content::cid_from_bytes(cid).map_err(|e| JobDecodeError::Field {
                    field: "input",
                    detail: e.to_string(),
                })?;
            }
        }
        if let Some(t) = &r.result_to {
            t.parse::<Eid>().map_err(|e| JobDecodeError::Field {
                field: "result_to",
                detail: e.to_string(),
            })?;
        }
        Ok(r)
    }

    /// Where the result of job `job` goes: `result_to`, or
    /// `dtn://SOURCE/job-results` of the job bundle's source.
    pub fn result_destination(&self, job: &BundleId) -> Eid {
        if let Some(eid) = self.result_to.as_ref().and_then(|t| t.parse().ok()) {
            return eid;
        }
        results_endpoint(&job.source)
    }
}

/// `dtn://NODE/job-results` for node `node` (an `ipn:` node keeps its node
/// number with service number 0: results then need `result_to`).
pub fn results_endpoint(node: &Eid) -> Eid {
    match node.node_id() {
        Eid::Dtn { node, .. } => Eid::Dtn {
            node,
            demux: RESULTS_SERVICE.to_owned(),
        },
        other => other,
    }
}

/// `dtn://NODE/jobs` for node `node`.
pub fn jobs_endpoint(node: &Eid) -> Eid {
    match node.node_id() {
        Eid::Dtn { node, .. } => Eid::Dtn {
            node,
            demux: JOBS_SERVICE.to_owned(),
        },
        other => other,
    }
}

impl JobResult {
    /// CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Plain data to a Vec: cannot fail.
        serde_cbor::to_vec(self).unwrap_or_default()
    }

    /// Decodes a result.
    ///
    /// # Errors
    /// [`JobDecodeError`]: too large, not CBOR, unknown version.
    pub fn decode(b: &[u8]) -> Result<JobResult, JobDecodeError> {
        let r: JobResult = decode_cbor(b)?;
        if r.v != FORMAT_VERSION {
            return Err(JobDecodeError::Version(r.v));
        }
        Ok(r)
    }

    /// An error result for `job` (detail cut to [`MAX_DETAIL`] bytes).
    pub fn error(job: &BundleId, executor: &Eid, kind: JobErrorKind, detail: &str) -> JobResult {
        let mut detail = detail.to_owned();
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        JobResult {
            v: FORMAT_VERSION,
            job: job.clone(),
            executor: executor.to_string(),
            status: JobStatus::Error { kind, detail },
            output: Vec::new(),
            run_ms: 0,
        }
    }
}

/// The creation timestamp of the result bundle of job `job` (its source is
/// the executing node): the job's creation time, and a sequence number made
/// of the first 63 bits of SHA-256 over the job's bundle key with the top
/// bit set (so it never meets the node's own counter). Re-running a job
/// after a crash therefore yields the same result bundle ID, which the
/// submitter's delivered-ID table delivers once (spec/jobs.md §3).
pub fn result_timestamp(job: &BundleId) -> CreationTimestamp {
    let h = sha2::Sha256::digest(job.to_key());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    CreationTimestamp {
        time: job.timestamp.time,
        sequence: u64::from_be_bytes(b) | (1 << 63),
    }
}

#[cfg(test)]
mod tests;
