//! Routing: which held bundle goes to which peer in contact.
//!
//! Pure functions of state and `now`; no I/O. This first policy is the one of
//! spec/routing.md §1: a bundle goes straight to its destination node when
//! that node is in contact; otherwise it goes epidemically to any peer in
//! contact that does not already hold it, never back to the node it came
//! from. Custody makes this single-copy: the sender releases its copy once
//! the receiver accepts custody.
//!
//! Per-peer estimates ([`Estimates`]) keep the RTT smoothed as RFC 6298 §2
//! smooths it (α = 1/8, β = 1/4).

use crate::bundle::Eid;
use std::collections::BTreeMap;

/// Why a bundle may or may not go to a peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The peer is the destination node: send first.
    Direct,
    /// The peer is a relay; send after direct traffic.
    Relay,
    /// Do not send to this peer now.
    Hold(HoldReason),
}

/// Why a bundle is held back from a peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// The bundle came from this peer.
    CameFromPeer,
    /// The peer already holds (or delivered) it.
    PeerHasIt,
    /// The destination node is in contact through another link: wait for it.
    DestinationElsewhere,
    /// The peer refused it during this contact.
    RefusedByPeer,
}

/// Facts about one bundle and one peer that the policy needs.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// The bundle's destination EID.
    pub destination: &'a Eid,
    /// The node the bundle came from, if any.
    pub received_from: Option<&'a Eid>,
    /// The peer in contact being considered.
    pub peer: &'a Eid,
    /// The peer said it holds this bundle.
    pub peer_has_it: bool,
    /// The peer refused it in this contact.
    pub refused_by_peer: bool,
    /// The destination node is in contact (maybe through this peer).
    pub destination_in_contact: bool,
}

/// The forwarding decision for one bundle and one peer (spec/routing.md §1).
pub fn decide(c: &Candidate<'_>) -> Decision {
    let dest_node = c.destination.node_id();
    if c.peer_has_it {
        return Decision::Hold(HoldReason::PeerHasIt);
    }
    if c.refused_by_peer {
        return Decision::Hold(HoldReason::RefusedByPeer);
    }
    if dest_node == c.peer.node_id() {
        return Decision::Direct;
    }
    if c.received_from
        .is_some_and(|f| f.node_id() == c.peer.node_id())
    {
        return Decision::Hold(HoldReason::CameFromPeer);
    }
    if c.destination_in_contact {
        return Decision::Hold(HoldReason::DestinationElsewhere);
    }
    Decision::Relay
}

/// Smoothed RTT state of one peer (RFC 6298 §2), µs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RttEstimate {
    /// Smoothed RTT, µs.
    pub srtt_us: u64,
    /// RTT variation, µs.
    pub rttvar_us: u64,
    /// Samples taken.
    pub samples: u64,
}

impl RttEstimate {
    /// Folds in one sample: the first sets SRTT = R, RTTVAR = R/2; later ones
    /// use RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, SRTT = 7/8·SRTT + 1/8·R.
    pub fn sample(&mut self, rtt_us: u64) {
        if self.samples == 0 {
            self.srtt_us = rtt_us;
            self.rttvar_us = rtt_us / 2;
        } else {
            let diff = self.srtt_us.abs_diff(rtt_us);
            self.rttvar_us = (3 * self.rttvar_us + diff) / 4;
            self.srtt_us = (7 * self.srtt_us + rtt_us) / 8;
        }
        self.samples += 1;
    }
}

/// Per-peer estimates kept by the agent.
#[derive(Clone, Debug, Default)]
pub struct Estimates {
    rtt: BTreeMap<Eid, RttEstimate>,
}

impl Estimates {
    /// Adds an RTT sample (µs) for `peer`.
    pub fn rtt_sample(&mut self, peer: &Eid, rtt_us: u64) {
        self.rtt.entry(peer.node_id()).or_default().sample(rtt_us);
    }

    /// Seeds `peer`'s estimate from a persisted smoothed RTT.
    pub fn seed(&mut self, peer: &Eid, srtt_us: u64) {
        self.rtt.entry(peer.node_id()).or_insert(RttEstimate {
            srtt_us,
            rttvar_us: srtt_us / 2,
            samples: 1,
        });
    }

    /// The current estimate for `peer`.
    pub fn rtt(&self, peer: &Eid) -> Option<RttEstimate> {
        self.rtt.get(&peer.node_id()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(s: &str) -> Eid {
        s.parse().unwrap()
    }

    #[test]
    fn rtt_smoothing_follows_rfc6298() {
        let mut r = RttEstimate::default();
        r.sample(100_000);
        assert_eq!((r.srtt_us, r.rttvar_us), (100_000, 50_000));
        r.sample(200_000);
        // RTTVAR = 3/4*50000 + 1/4*100000 = 62500; SRTT = 7/8*100000 + 1/8*200000 = 112500
        assert_eq!((r.srtt_us, r.rttvar_us), (112_500, 62_500));
    }

    #[test]
    fn direct_relay_and_holds() {
        let dest = eid("dtn://c/files");
        let (a, b, c) = (eid("dtn://a/"), eid("dtn://b/"), eid("dtn://c/"));
        let base = Candidate {
            destination: &dest,
            received_from: Some(&a),
            peer: &c,
            peer_has_it: false,
            refused_by_peer: false,
            destination_in_contact: true,
        };
        assert_eq!(decide(&base), Decision::Direct);
        let to_b = Candidate {
            peer: &b,
            destination_in_contact: false,
            ..base.clone()
        };
        assert_eq!(decide(&to_b), Decision::Relay);
        let back = Candidate {
            peer: &a,
            destination_in_contact: false,
            ..base.clone()
        };
        assert_eq!(decide(&back), Decision::Hold(HoldReason::CameFromPeer));
        let elsewhere = Candidate {
            peer: &b,
            ..base.clone()
        };
        assert_eq!(
            decide(&elsewhere),
            Decision::Hold(HoldReason::DestinationElsewhere)
        );
        let has = Candidate {
            peer_has_it: true,
            ..base.clone()
        };
        assert_eq!(decide(&has), Decision::Hold(HoldReason::PeerHasIt));
        let refused = Candidate {
            refused_by_peer: true,
            ..base
        };
        assert_eq!(decide(&refused), Decision::Hold(HoldReason::RefusedByPeer));
    }
}
