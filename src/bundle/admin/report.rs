//! Bundle status reports (RFC 9171 §6.1.1) and the rule for sending them.

use super::{AdminError, AdministrativeRecord, put_timestamp, timestamp_from_item};
use crate::bundle::codec::{self, Item, put_array, put_bool, put_uint};
use crate::bundle::{Bundle, BundleFlags, BundleId, CreationTimestamp, DtnTime, Eid};
use bytes::Bytes;

/// One status assertion of a report (§6.1.1 "bundle status information").
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum StatusAssertion {
    /// Not asserted: `[false]`.
    #[default]
    No,
    /// Asserted without a time (status time not requested): `[true]`.
    Yes,
    /// Asserted at this DTN time: `[true, time]`.
    At(DtnTime),
}

impl StatusAssertion {
    /// True unless [`StatusAssertion::No`].
    pub fn asserted(self) -> bool {
        self != StatusAssertion::No
    }
}

/// The four kinds of status a report can assert (§6.1.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// Reporting node received the bundle.
    Received,
    /// Reporting node forwarded the bundle.
    Forwarded,
    /// Reporting node delivered the bundle.
    Delivered,
    /// Reporting node deleted the bundle.
    Deleted,
}

impl StatusKind {
    /// The bundle processing flag that requests this kind of report (§4.2.3).
    pub fn request_flag(self) -> u64 {
        match self {
            StatusKind::Received => BundleFlags::REPORT_RECEPTION,
            StatusKind::Forwarded => BundleFlags::REPORT_FORWARDING,
            StatusKind::Delivered => BundleFlags::REPORT_DELIVERY,
            StatusKind::Deleted => BundleFlags::REPORT_DELETION,
        }
    }
}

/// Status report reason codes: RFC 9171 §6.1.1 (0–11) and the BPSec codes
/// RFC 9172 §9.1 adds to the same registry (12–16).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    /// 0: no additional information.
    NoInformation,
    /// 1: lifetime expired.
    LifetimeExpired,
    /// 2: forwarded over a unidirectional link.
    ForwardedOverUnidirectionalLink,
    /// 3: transmission canceled.
    TransmissionCanceled,
    /// 4: depleted storage.
    DepletedStorage,
    /// 5: destination endpoint ID unavailable.
    DestinationEidUnavailable,
    /// 6: no known route to the destination from here.
    NoKnownRoute,
    /// 7: no timely contact with the next node on the route.
    NoTimelyContact,
    /// 8: block unintelligible.
    BlockUnintelligible,
    /// 9: hop limit exceeded.
    HopLimitExceeded,
    /// 10: traffic pared (e.g. status reports).
    TrafficPared,
    /// 11: block unsupported.
    BlockUnsupported,
    /// 12: missing security operation (RFC 9172).
    MissingSecurityOperation,
    /// 13: unknown security operation (RFC 9172).
    UnknownSecurityOperation,
    /// 14: unexpected security operation (RFC 9172).
    UnexpectedSecurityOperation,
    /// 15: failed security operation (RFC 9172).
    FailedSecurityOperation,
    /// 16: conflicting security operation (RFC 9172).
    ConflictingSecurityOperation,
    /// A code not in the table.
    Other(u64),
}

const REASONS: [ReasonCode; 17] = [
    ReasonCode::NoInformation,
    ReasonCode::LifetimeExpired,
    ReasonCode::ForwardedOverUnidirectionalLink,
    ReasonCode::TransmissionCanceled,
    ReasonCode::DepletedStorage,
    ReasonCode::DestinationEidUnavailable,
    ReasonCode::NoKnownRoute,
    ReasonCode::NoTimelyContact,
    ReasonCode::BlockUnintelligible,
    ReasonCode::HopLimitExceeded,
    ReasonCode::TrafficPared,
    ReasonCode::BlockUnsupported,
    ReasonCode::MissingSecurityOperation,
    ReasonCode::UnknownSecurityOperation,
    ReasonCode::UnexpectedSecurityOperation,
    ReasonCode::FailedSecurityOperation,
    ReasonCode::ConflictingSecurityOperation,
];

impl ReasonCode {
    /// The wire code.
    pub fn code(self) -> u64 {
        match self {
            ReasonCode::Other(c) => c,
            known => REASONS.iter().position(|r| *r == known).unwrap_or(0) as u64,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(c: u64) -> ReasonCode {
        usize::try_from(c)
            .ok()
            .and_then(|i| REASONS.get(i).copied())
            .unwrap_or(ReasonCode::Other(c))
    }
}

/// A bundle status report (RFC 9171 §6.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    /// Reporting node received the subject bundle.
    pub received: StatusAssertion,
    /// Reporting node forwarded it.
    pub forwarded: StatusAssertion,
    /// Reporting node delivered it.
    pub delivered: StatusAssertion,
    /// Reporting node deleted it.
    pub deleted: StatusAssertion,
    /// Why (mainly for deletion and forwarding).
    pub reason: ReasonCode,
    /// The subject bundle (fragment offset set iff the subject is a fragment).
    pub subject: BundleId,
    /// Subject's payload length in bytes; present iff the subject is a fragment.
    pub payload_length: Option<u64>,
}

impl StatusReport {
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        let frag = self.subject.fragment_offset.is_some();
        put_array(out, if frag { 6 } else { 4 });
        put_array(out, 4);
        for a in [self.received, self.forwarded, self.delivered, self.deleted] {
            match a {
                StatusAssertion::No | StatusAssertion::Yes => {
                    put_array(out, 1);
                    put_bool(out, a.asserted());
                }
                StatusAssertion::At(t) => {
                    put_array(out, 2);
                    put_bool(out, true);
                    put_uint(out, t.0);
                }
            }
        }
        put_uint(out, self.reason.code());
        codec::put_eid(out, &self.subject.source);
        put_timestamp(out, &self.subject.timestamp);
        if let Some(off) = self.subject.fragment_offset {
            put_uint(out, off);
            put_uint(out, self.payload_length.unwrap_or(0));
        }
    }

    pub(super) fn from_item(item: &Item) -> Result<StatusReport, AdminError> {
        let bad = AdminError::Malformed;
        let items = item
            .as_array()
            .ok_or(bad("status report must be an array"))?;
        let (info, reason, src, ts, frag) = match items {
            [i, r, s, t] => (i, r, s, t, None),
            [i, r, s, t, Item::Uint(o), Item::Uint(l)] => (i, r, s, t, Some((*o, *l))),
            _ => return Err(bad("status report must have 4 or 6 items")),
        };
        let Some([rx, fw, dl, de]) = info.as_array() else {
            return Err(bad("status information must have 4 assertions"));
        };
        let reason = reason
            .as_uint()
            .ok_or(bad("reason code must be an unsigned integer"))?;
        Ok(StatusReport {
            received: assertion(rx)?,
            forwarded: assertion(fw)?,
            delivered: assertion(dl)?,
            deleted: assertion(de)?,
            reason: ReasonCode::from_code(reason),
            subject: BundleId {
                source: codec::eid_from_item(src)?,
                timestamp: timestamp_from_item(ts)?,
                fragment_offset: frag.map(|f| f.0),
            },
            payload_length: frag.map(|f| f.1),
        })
    }
}

fn assertion(item: &Item) -> Result<StatusAssertion, AdminError> {
    match item.as_array() {
        Some([Item::Bool(false)]) => Ok(StatusAssertion::No),
        Some([Item::Bool(true)]) => Ok(StatusAssertion::Yes),
        Some([Item::Bool(true), Item::Uint(t)]) => Ok(StatusAssertion::At(DtnTime(*t))),
        _ => Err(AdminError::Malformed(
            "status assertion must be [false], [true] or [true, time]",
        )),
    }
}

/// Builds the status report bundle `reporter` sends about `subject`
/// (RFC 9171 §5.1, §6.1.1), or `None` when no report is due: the subject
/// does not request `kind`, its report-to is `dtn:none`, it is anonymous
/// (source `dtn:none`), or it is itself an administrative record (no
/// reports about reports, §5.1).
///
/// The report asserts `kind` only, with time `now` iff the subject sets
/// STATUS_TIME_REQUESTED. The returned bundle: source `reporter`,
/// destination the subject's report-to, ADMIN_RECORD set, creation
/// timestamp `(now, seq)`, lifetime `lifetime_ms`, CRC-32C.
pub fn status_report_bundle(
    reporter: &Eid,
    subject: &Bundle,
    kind: StatusKind,
    reason: ReasonCode,
    now: DtnTime,
    seq: u64,
    lifetime_ms: u64,
) -> Option<Bundle> {
    let p = &subject.primary;
    if subject.is_admin_record()
        || !p.flags.contains(kind.request_flag())
        || p.report_to.is_none()
        || p.source.is_none()
    {
        return None;
    }
    let a = if p.flags.contains(BundleFlags::STATUS_TIME_REQUESTED) {
        StatusAssertion::At(now)
    } else {
        StatusAssertion::Yes
    };
    let pick = |k: StatusKind| if k == kind { a } else { StatusAssertion::No };
    let fragment = p.flags.contains(BundleFlags::IS_FRAGMENT);
    let report = StatusReport {
        received: pick(StatusKind::Received),
        forwarded: pick(StatusKind::Forwarded),
        delivered: pick(StatusKind::Delivered),
        deleted: pick(StatusKind::Deleted),
        reason,
        subject: subject.id(),
        payload_length: fragment.then(|| subject.payload().map_or(0, |d| d.len() as u64)),
    };
    let payload = AdministrativeRecord::StatusReport(report).encode();
    let ts = CreationTimestamp {
        time: now,
        sequence: seq,
    };
    let mut b = Bundle::new(
        reporter.clone(),
        p.report_to.clone(),
        ts,
        lifetime_ms,
        Bytes::from(payload),
    );
    b.primary.flags.set(BundleFlags::ADMIN_RECORD, true);
    Some(b)
}
