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

pub mod cgr;
pub mod plan;
pub mod prophet;

use crate::bundle::Eid;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A copy count meaning "as many copies as contacts allow" (epidemic).
pub const COPIES_UNLIMITED: u32 = u32::MAX;

/// The routing policy of a node (spec/routing.md §2), chosen in config or
/// with `spore node --router NAME`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Direct delivery: a bundle only ever goes to its destination node.
    Direct,
    /// Epidemic: every peer that lacks a bundle gets a copy.
    Epidemic,
    /// Binary spray-and-wait with `copies` (L) copies per bundle.
    SprayAndWait {
        /// L, copies created per bundle (≥ 1).
        copies: u32,
    },
    /// PRoPHET (RFC 6693) delivery predictabilities, GRTR forwarding.
    Prophet,
    /// spore's default: latency-aware spray-and-focus bounded by `copies`.
    Spore {
        /// Copy budget per bundle (≥ 1).
        copies: u32,
    },
    /// Earliest-arrival routing over a contact plan (contact graph routing).
    Cgr,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::Spore { copies: 8 }
    }
}

/// A router name that is not one of `direct`, `epidemic`,
/// `spray-and-wait[:L]`, `prophet`, `spore[:L]`, `cgr`.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown router {0:?}: expected direct, epidemic, spray-and-wait[:L], prophet, spore[:L] or cgr (L = copies, 1..=1024)"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    /// Parses `direct`, `epidemic`, `spray-and-wait[:L]`, `prophet`,
    /// `spore[:L]` or `cgr`; L defaults to 8 and must be in 1..=1024.
    fn from_str(s: &str) -> Result<Policy, UnknownPolicy> {
        let bad = || UnknownPolicy(s.to_owned());
        let (name, copies) = match s.split_once(':') {
            Some((n, l)) => {
                let l: u32 = l.parse().map_err(|_| bad())?;
                if !(1..=1024).contains(&l) {
                    return Err(bad());
                }
                (n, Some(l))
            }
            None => (s, None),
        };
        let l = copies.unwrap_or(8);
        Ok(match (name, copies) {
            ("direct", None) => Policy::Direct,
            ("epidemic", None) => Policy::Epidemic,
            ("spray-and-wait", _) => Policy::SprayAndWait { copies: l },
            ("prophet", None) => Policy::Prophet,
            ("spore", _) => Policy::Spore { copies: l },
            ("cgr", None) => Policy::Cgr,
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Direct => f.write_str("direct"),
            Policy::Epidemic => f.write_str("epidemic"),
            Policy::SprayAndWait { copies } => write!(f, "spray-and-wait:{copies}"),
            Policy::Prophet => f.write_str("prophet"),
            Policy::Spore { copies } => write!(f, "spore:{copies}"),
            Policy::Cgr => f.write_str("cgr"),
        }
    }
}

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
