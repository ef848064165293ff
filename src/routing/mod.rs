//! Routing: which held bundle goes to which peer in contact, and how many
//! copies go with it (spec/routing.md).
//!
//! Sans-IO: a [`Router`] is fed contacts, RTT samples and the peers'
//! advertisements with the time as an argument, and answers [`Router::decide`]
//! for one bundle and one peer. The [`Policy`] picks the rule: direct
//! delivery, epidemic, binary spray-and-wait, PRoPHET (RFC 6693), contact
//! graph routing over a contact plan, or spore's default latency-aware
//! spray-and-focus. Per-peer estimates ([`PeerEstimate`]) keep the RTT
//! smoothed as RFC 6298 §2 smooths it and the contact history.

pub mod cgr;
pub mod estimate;
pub mod plan;
pub mod prophet;
mod router;

pub use estimate::{PeerEstimate, RttEstimate};
pub use router::{Advert, MAX_ADVERT_ENTRIES, MAX_KNOWN_NODES, Router};

use crate::bundle::Eid;
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

/// Default L of `spray-and-wait` (the literature's usual choice).
pub const DEFAULT_SPRAY_COPIES: u32 = 8;
/// Default L of `spore`: 4 meets the issue-3 target (≥ 0.95 of the
/// oracle's deliveries with ≤ 0.25 of epidemic's transmissions) on the
/// Poisson and random-waypoint traces of the README; 8 delivers slightly
/// more for about 1.8× the transmissions.
pub const DEFAULT_SPORE_COPIES: u32 = 4;

impl Default for Policy {
    fn default() -> Policy {
        Policy::Spore {
            copies: DEFAULT_SPORE_COPIES,
        }
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
    /// `spore[:L]` or `cgr`; L defaults to 8 for spray-and-wait and 4 for
    /// spore, and must be in 1..=1024.
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
        Ok(match (name, copies) {
            ("direct", None) => Policy::Direct,
            ("epidemic", None) => Policy::Epidemic,
            ("spray-and-wait", _) => Policy::SprayAndWait {
                copies: copies.unwrap_or(DEFAULT_SPRAY_COPIES),
            },
            ("prophet", None) => Policy::Prophet,
            ("spore", _) => Policy::Spore {
                copies: copies.unwrap_or(DEFAULT_SPORE_COPIES),
            },
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
    /// The peer is the destination node: send first, with every copy.
    Direct,
    /// The peer is a relay: send after direct traffic, handing it `give`
    /// copies ([`COPIES_UNLIMITED`] for epidemic-style replication). When
    /// `give` equals the copies held, custody moves and our copy is released.
    Forward {
        /// Copies handed to the peer.
        give: u32,
    },
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
    /// The peer took custody of it earlier in this contact and it came
    /// back since: offering it again would feed a routing loop.
    HandedOverInContact,
    /// The policy only sends to the destination (direct delivery, or the
    /// wait phase of spray-and-wait with one copy left).
    WaitForDestination,
    /// The peer is no better a carrier than this node (spore, PRoPHET).
    NotBetter,
    /// The contact plan routes the bundle through another node or a later
    /// contact (CGR), or there is no route.
    NotOnRoute,
    /// The link to the peer is metered and the bundle is bulk (larger
    /// than the agent's `metered_bulk_bytes`).
    Metered,
}

impl HoldReason {
    /// A short snake_case name for views and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::CameFromPeer => "came_from_peer",
            HoldReason::PeerHasIt => "peer_has_it",
            HoldReason::DestinationElsewhere => "destination_elsewhere",
            HoldReason::RefusedByPeer => "refused_by_peer",
            HoldReason::HandedOverInContact => "handed_over_in_contact",
            HoldReason::WaitForDestination => "wait_for_destination",
            HoldReason::NotBetter => "not_better",
            HoldReason::NotOnRoute => "not_on_route",
            HoldReason::Metered => "metered",
        }
    }
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
    /// The peer took custody of it earlier in this contact and it came
    /// back to us since (a loop through other nodes).
    pub handed_over_in_contact: bool,
    /// The destination node is in contact (maybe through this peer).
    pub destination_in_contact: bool,
    /// Copies this node holds ([`COPIES_UNLIMITED`] for unlimited).
    pub copies: u32,
    /// Encoded size, bytes (CGR transmission time).
    pub size_bytes: u64,
    /// Expiry, DTN ms (CGR deadline).
    pub expiry_ms: u64,
}

/// The rules every policy shares (spec/routing.md §1): `Some` decides,
/// `None` leaves it to the policy.
pub fn common_rules(c: &Candidate<'_>) -> Option<Decision> {
    if c.peer_has_it {
        return Some(Decision::Hold(HoldReason::PeerHasIt));
    }
    if c.refused_by_peer {
        return Some(Decision::Hold(HoldReason::RefusedByPeer));
    }
    if c.handed_over_in_contact {
        return Some(Decision::Hold(HoldReason::HandedOverInContact));
    }
    // Node parts compared in place (no node ID copies: this runs for every
    // held bundle and peer at each window fill).
    if c.destination.is_on_node(c.peer) {
        return Some(Decision::Direct);
    }
    if c.received_from.is_some_and(|f| f.is_on_node(c.peer)) {
        return Some(Decision::Hold(HoldReason::CameFromPeer));
    }
    if c.destination_in_contact {
        return Some(Decision::Hold(HoldReason::DestinationElsewhere));
    }
    None
}

/// Copies a binary split hands over: half of `copies`, rounded down
/// (binary spray-and-wait, Spyropoulos, Psounis, Raghavendra 2005); all of
/// them when unlimited.
pub fn binary_split(copies: u32) -> u32 {
    if copies == COPIES_UNLIMITED {
        COPIES_UNLIMITED
    } else {
        copies / 2
    }
}
