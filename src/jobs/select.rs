//! Choosing the node that runs a job (spec/jobs.md §7), from what the
//! routing layer knows of each peer and what each peer advertised.

use super::ServiceAdvert;
use crate::bundle::Eid;
use std::fmt;

/// What is known of one peer, for one service.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Peer node ID.
    pub node: Eid,
    /// A contact with it is up now.
    pub in_contact: bool,
    /// Smoothed RTT (RFC 6298 style, from the CLA), ms; `None` before a sample.
    pub srtt_ms: Option<f64>,
    /// Routing estimate of the wait for the next contact, ms (batch only).
    pub expected_wait_ms: Option<f64>,
    /// Its advertisement of the service, if it offers it.
    pub advert: Option<ServiceAdvert>,
}

/// Why a peer cannot take a real-time job.
#[derive(Clone, Debug, PartialEq)]
pub enum Exclusion {
    /// It does not advertise the service.
    NoService,
    /// No contact with it now.
    NoContact,
    /// No RTT measured yet.
    NoRtt,
    /// Its smoothed RTT is over the threshold.
    RttTooHigh {
        /// Smoothed RTT, ms.
        rtt_ms: f64,
        /// Threshold, ms.
        max_ms: u64,
    },
    /// It advertised no free slot.
    Busy {
        /// Jobs waiting there.
        queue: u32,
    },
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::NoService => f.write_str("does not offer the service"),
            Exclusion::NoContact => f.write_str("no contact"),
            Exclusion::NoRtt => f.write_str("no RTT measured yet"),
            Exclusion::RttTooHigh { rtt_ms, max_ms } => {
                write!(f, "RTT {rtt_ms:.0} ms > {max_ms} ms")
            }
            Exclusion::Busy { queue } => write!(f, "busy (no free slot, {queue} queued)"),
        }
    }
}

/// No peer can take a real-time job now; each candidate with its reason.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("no peer can run {service:?} in real time now: {}", list(.excluded))]
pub struct NoRealtimePeer {
    /// The service asked for.
    pub service: String,
    /// Every known peer offering it (or none) and why it was excluded.
    pub excluded: Vec<(Eid, Exclusion)>,
}

fn list(v: &[(Eid, Exclusion)]) -> String {
    if v.is_empty() {
        return "no known peer offers it".into();
    }
    let parts: Vec<String> = v.iter().map(|(n, e)| format!("{n}: {e}")).collect();
    parts.join("; ")
}

fn exclusion(c: &Candidate, max_rtt_ms: u64) -> Result<f64, Exclusion> {
    let Some(a) = &c.advert else {
        return Err(Exclusion::NoService);
    };
    if !c.in_contact {
        return Err(Exclusion::NoContact);
    }
    let Some(rtt) = c.srtt_ms else {
        return Err(Exclusion::NoRtt);
    };
    if rtt > max_rtt_ms as f64 {
        return Err(Exclusion::RttTooHigh {
            rtt_ms: rtt,
            max_ms: max_rtt_ms,
        });
    }
    if a.free_slots == 0 {
        return Err(Exclusion::Busy { queue: a.queue });
    }
    Ok(rtt.max(0.001) * (f64::from(a.queue) + 1.0))
}

/// Peers eligible for a real-time job, best first (lowest RTT × (queue+1)):
/// in contact, smoothed RTT ≤ `max_rtt_ms`, free slots > 0.
///
/// # Errors
/// [`NoRealtimePeer`] naming each peer that offers the service and why it
/// is excluded (peers that do not offer it are not listed).
pub fn realtime_order(
    service: &str,
    candidates: &[Candidate],
    max_rtt_ms: u64,
) -> Result<Vec<Eid>, NoRealtimePeer> {
    let mut ok = Vec::new();
    let mut excluded = Vec::new();
    for c in candidates {
        match exclusion(c, max_rtt_ms) {
            Ok(score) => ok.push((score, c.node.clone())),
            Err(Exclusion::NoService) => {}
            Err(e) => excluded.push((c.node.clone(), e)),
        }
    }
    if ok.is_empty() {
        return Err(NoRealtimePeer {
            service: service.to_owned(),
            excluded,
        });
    }
    ok.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(ok.into_iter().map(|(_, n)| n).collect())
}

/// The best known node for a batch job: among peers that advertised the
/// service, those in contact first (lowest smoothed RTT), then the others
/// by the routing estimate of the wait for their next contact (unknown
/// waits last). A peer in contact gets the job within one RTT; the wait for
/// an absent one is at best an estimate.
pub fn batch_choice(candidates: &[Candidate]) -> Option<Eid> {
    let delay = |c: &Candidate| -> (bool, f64) {
        if c.in_contact {
            (false, c.srtt_ms.unwrap_or(0.0))
        } else {
            (true, c.expected_wait_ms.unwrap_or(f64::INFINITY))
        }
    };
    candidates
        .iter()
        .filter(|c| c.advert.is_some())
        .min_by(|a, b| {
            let (da, db) = (delay(a), delay(b));
            da.0.cmp(&db.0)
                .then_with(|| da.1.total_cmp(&db.1))
                .then_with(|| a.node.cmp(&b.node))
        })
        .map(|c| c.node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(node: &str, up: bool, rtt: Option<f64>, free: u32, queue: u32) -> Candidate {
        Candidate {
            node: node.parse().expect("EID"),
            in_contact: up,
            srtt_ms: rtt,
            expected_wait_ms: None,
            advert: Some(ServiceAdvert {
                name: "wc".into(),
                kind: "exec".into(),
                models: Vec::new(),
                free_slots: free,
                queue,
            }),
        }
    }

    #[test]
    fn realtime_picks_lowest_rtt_times_queue_and_names_exclusions() {
        let c = vec![
            cand("dtn://slow/", true, Some(320.0), 1, 0),
            cand("dtn://fast/", true, Some(10.0), 1, 3),
            cand("dtn://faster/", true, Some(30.0), 1, 0),
            cand("dtn://gone/", false, Some(1.0), 1, 0),
            cand("dtn://full/", true, Some(1.0), 0, 2),
        ];
        let order = realtime_order("wc", &c, 150).expect("eligible peers");
        let names: Vec<String> = order.iter().map(|e| e.to_string()).collect();
        assert_eq!(names, ["dtn://faster/", "dtn://fast/"]);
        let err = realtime_order("wc", &c[3..], 150).expect_err("none eligible");
        assert_eq!(err.excluded.len(), 2);
        let err = realtime_order("wc", &c[..1], 150).expect_err("too slow");
        assert_eq!(
            err.to_string(),
            "no peer can run \"wc\" in real time now: dtn://slow/: RTT 320 ms > 150 ms"
        );
        let mut none = cand("dtn://x/", true, Some(1.0), 1, 0);
        none.advert = None;
        let err = realtime_order("wc", &[none], 150).expect_err("nobody offers it");
        assert!(
            err.to_string().ends_with("no known peer offers it"),
            "{err}"
        );
    }

    #[test]
    fn batch_prefers_contact_then_shortest_expected_wait() {
        let mut far = cand("dtn://far/", false, None, 1, 0);
        far.expected_wait_ms = Some(60_000.0);
        let mut near = cand("dtn://near/", false, None, 1, 0);
        near.expected_wait_ms = Some(5_000.0);
        let unknown = cand("dtn://unknown/", false, None, 1, 0);
        let pick = |v: &[Candidate]| batch_choice(v).map(|e| e.to_string());
        assert_eq!(
            pick(&[far.clone(), unknown.clone(), near.clone()]).as_deref(),
            Some("dtn://near/")
        );
        let mut soon = cand("dtn://soon/", false, None, 1, 0);
        soon.expected_wait_ms = Some(0.0);
        let up = cand("dtn://up/", true, Some(400.0), 0, 9);
        assert_eq!(
            pick(&[far, near, soon, up, unknown]).as_deref(),
            Some("dtn://up/")
        );
        assert_eq!(pick(&[]), None);
    }
}
