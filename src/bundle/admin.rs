//! Administrative records (RFC 9171 §6.1): bundle status reports (§6.1.1)
//! and spore's custody signals (modelled on
//! draft-flentge-dtn-bpv7-custody-transfer).
//!
//! An administrative record is the payload of a bundle with the
//! `ADMIN_RECORD` flag: `[record-type-code, record-content]`.
//!
//! ```text
//! status-report  = [[received, forwarded, delivered, deleted], reason,
//!                   source-eid, [time-ms, seq], ? (fragment-offset, payload-length)]
//! assertion      = [false] / [true] / [true, dtn-time]
//! custody-signal = [accepted: bool, reason: uint, [* bundle-id]]
//! bundle-id      = [source-eid, [time-ms, seq], ? fragment-offset]
//! ```

mod report;

pub use report::{ReasonCode, StatusAssertion, StatusKind, StatusReport, status_report_bundle};

use super::codec::{self, DecodeError, Item, put_array, put_bool, put_uint, read_exact};
use super::{BundleId, CreationTimestamp, DtnTime, EidError};

/// Record type code of a bundle status report (RFC 9171 §6.1, §9.4).
pub const RECORD_TYPE_STATUS_REPORT: u64 = 1;
/// Record type code spore uses for a custody signal. The custody transfer
/// draft leaves the code to IANA; 4 is the code the BPv7 custody drafts and
/// the bundle-in-bundle draft (which uses 3 for its own PDU) reserve for
/// custody signals. See `spec/bundle.md`.
pub const RECORD_TYPE_CUSTODY_SIGNAL: u64 = 4;

/// An administrative record (RFC 9171 §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdministrativeRecord {
    /// Bundle status report (record type 1, §6.1.1).
    StatusReport(StatusReport),
    /// Custody signal (record type [`RECORD_TYPE_CUSTODY_SIGNAL`]).
    CustodySignal(CustodySignal),
}

/// Why a custody transfer was accepted or refused; codes follow the custody
/// signal reasons of RFC 5050 §6.1.4 that the custody transfer draft keeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CustodyReason {
    /// Custody accepted / no additional information (code 0).
    Accepted,
    /// Refused: lifetime expired (code 1).
    Expired,
    /// Refused: the bundle was already received (redundant reception, code 3).
    Duplicate,
    /// Refused: not enough storage (code 4).
    DepletedStorage,
    /// Any other code.
    Other(u64),
}

impl CustodyReason {
    /// The wire code.
    pub fn code(self) -> u64 {
        match self {
            CustodyReason::Accepted => 0,
            CustodyReason::Expired => 1,
            CustodyReason::Duplicate => 3,
            CustodyReason::DepletedStorage => 4,
            CustodyReason::Other(c) => c,
        }
    }

    /// The reason for a wire code (unknown codes become [`CustodyReason::Other`]).
    pub fn from_code(c: u64) -> CustodyReason {
        match c {
            0 => CustodyReason::Accepted,
            1 => CustodyReason::Expired,
            3 => CustodyReason::Duplicate,
            4 => CustodyReason::DepletedStorage,
            c => CustodyReason::Other(c),
        }
    }

    /// The reason as the RFC 5050 §6.1.4 table names it, with its code,
    /// e.g. `"depleted storage (4)"`; for history lines and logs.
    pub fn describe(self) -> String {
        let name = match self.code() {
            0 => "no additional information",
            1 => "lifetime expired",
            2 => "forwarded over unidirectional link",
            3 => "redundant reception",
            4 => "depleted storage",
            5 => "destination endpoint ID unintelligible",
            6 => "no known route to destination",
            7 => "no timely contact",
            8 => "block unintelligible",
            _ => "unassigned",
        };
        format!("{name} ({})", self.code())
    }
}

/// A custody signal: one decision about one or more bundles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustodySignal {
    /// True if custody was accepted, false if refused.
    pub accepted: bool,
    /// Why.
    pub reason: CustodyReason,
    /// The bundles the decision applies to.
    pub bundles: Vec<BundleId>,
}

/// Why an administrative record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The payload is not exactly one well-formed CBOR item.
    #[error("administrative record is not valid CBOR: {0}")]
    Cbor(DecodeError),
    /// The record type code is not one we know (1 or 4).
    #[error("unknown administrative record type {0}")]
    UnknownRecordType(u64),
    /// The record does not have the shape its type requires.
    #[error("malformed administrative record: {0}")]
    Malformed(&'static str),
    /// An EID inside the record is invalid.
    #[error("bad endpoint ID in administrative record: {0}")]
    Eid(#[from] EidError),
}

impl AdminError {
    /// A short, stable snake_case label for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AdminError::Cbor(_) => "bad_cbor",
            AdminError::UnknownRecordType(_) => "unknown_record_type",
            AdminError::Malformed(_) => "malformed_record",
            AdminError::Eid(_) => "bad_eid",
        }
    }
}

impl AdministrativeRecord {
    /// The payload bytes: `[record type, content]` (§6.1).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put_array(&mut out, 2);
        match self {
            AdministrativeRecord::StatusReport(r) => {
                put_uint(&mut out, RECORD_TYPE_STATUS_REPORT);
                r.encode_into(&mut out);
            }
            AdministrativeRecord::CustodySignal(s) => {
                put_uint(&mut out, RECORD_TYPE_CUSTODY_SIGNAL);
                put_array(&mut out, 3);
                put_bool(&mut out, s.accepted);
                put_uint(&mut out, s.reason.code());
                put_array(&mut out, s.bundles.len() as u64);
                for id in &s.bundles {
                    put_bundle_id(&mut out, id);
                }
            }
        }
        out
    }

    /// Parses an administrative record payload.
    ///
    /// # Errors
    /// [`AdminError`] naming what is wrong; never panics.
    pub fn decode(payload: &[u8]) -> Result<AdministrativeRecord, AdminError> {
        let item = read_exact(payload).map_err(AdminError::Cbor)?;
        let Some([ty, content]) = item.as_array() else {
            return Err(AdminError::Malformed("record must be [type, content]"));
        };
        match ty.as_uint() {
            Some(RECORD_TYPE_STATUS_REPORT) => Ok(AdministrativeRecord::StatusReport(
                StatusReport::from_item(content)?,
            )),
            Some(RECORD_TYPE_CUSTODY_SIGNAL) => Ok(AdministrativeRecord::CustodySignal(
                custody_from_item(content)?,
            )),
            Some(other) => Err(AdminError::UnknownRecordType(other)),
            None => Err(AdminError::Malformed(
                "record type must be an unsigned integer",
            )),
        }
    }
}

fn custody_from_item(item: &Item) -> Result<CustodySignal, AdminError> {
    let Some([Item::Bool(accepted), Item::Uint(reason), Item::Array(ids)]) = item.as_array() else {
        return Err(AdminError::Malformed(
            "custody signal must be [bool, reason, [ids]]",
        ));
    };
    Ok(CustodySignal {
        accepted: *accepted,
        reason: CustodyReason::from_code(*reason),
        bundles: ids
            .iter()
            .map(bundle_id_from_item)
            .collect::<Result<_, _>>()?,
    })
}

/// Appends `[source, [time, seq], ? offset]`.
fn put_bundle_id(out: &mut Vec<u8>, id: &BundleId) {
    put_array(out, if id.fragment_offset.is_some() { 3 } else { 2 });
    codec::put_eid(out, &id.source);
    put_timestamp(out, &id.timestamp);
    if let Some(off) = id.fragment_offset {
        put_uint(out, off);
    }
}

pub(crate) fn put_timestamp(out: &mut Vec<u8>, ts: &CreationTimestamp) {
    put_array(out, 2);
    put_uint(out, ts.time.0);
    put_uint(out, ts.sequence);
}

pub(crate) fn timestamp_from_item(item: &Item) -> Result<CreationTimestamp, AdminError> {
    match item.as_array() {
        Some([Item::Uint(t), Item::Uint(s)]) => Ok(CreationTimestamp {
            time: DtnTime(*t),
            sequence: *s,
        }),
        _ => Err(AdminError::Malformed(
            "creation timestamp must be [time, seq]",
        )),
    }
}

fn bundle_id_from_item(item: &Item) -> Result<BundleId, AdminError> {
    let (src, ts, off) = match item.as_array() {
        Some([src, ts]) => (src, ts, None),
        Some([src, ts, Item::Uint(off)]) => (src, ts, Some(*off)),
        _ => {
            return Err(AdminError::Malformed(
                "bundle ID must be [source, timestamp, ? offset]",
            ));
        }
    };
    Ok(BundleId {
        source: codec::eid_from_item(src)?,
        timestamp: timestamp_from_item(ts)?,
        fragment_offset: off,
    })
}

#[cfg(test)]
mod tests;
