//! Peer exchange (spec/discovery.md §4): on contact, each side sends a
//! bounded list of other peers it knows; the receiver validates the list,
//! remembers the peers and dials the ones it is not in contact with, so one
//! known peer is enough to join.

use super::Shared;
use super::proto::{ControlMessage, MAX_PEER_HINTS, PeerHint};
use crate::bundle::Eid;
use crate::cla::quic::Contact;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::{debug, warn};

/// Most discovery dials started from one received list.
const MAX_DIALS_PER_LIST: usize = 8;

/// Whether `a` may be advertised to (or accepted from) a peer reached at
/// `remote`: a unicast address with a port; loopback only when the peer is
/// itself on loopback (same host).
fn shareable(a: &SocketAddr, remote: &SocketAddr) -> bool {
    let ip = a.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    a.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && !broadcast
        && (!ip.is_loopback() || remote.ip().is_loopback())
}

/// Sends our peer list to `peer` over contact `c` (if peer exchange is on):
/// live contacts first, then the store's peer table by last seen, without
/// `peer` itself, at most [`MAX_PEER_HINTS`].
pub(crate) fn send_list(shared: &Arc<Shared>, peer: &Eid, c: &Contact) {
    if !shared.discovery.cfg.peer_exchange {
        return;
    }
    let (shared, peer, c) = (shared.clone(), peer.clone(), c.clone());
    tokio::spawn(async move {
        let now = super::dtn_now().0;
        let mut list: Vec<(Eid, SocketAddr, u64)> = shared
            .contacts
            .live_peers()
            .into_iter()
            .map(|(n, a)| (n, a, now))
            .collect();
        let s2 = shared.clone();
        if let Ok(cached) =
            tokio::task::spawn_blocking(move || super::discovery::cached_peers(&s2)).await
        {
            list.extend(cached);
        }
        let remote = c.remote_addr();
        let mut seen = std::collections::HashSet::new();
        let peers: Vec<PeerHint> = list
            .into_iter()
            .filter(|(n, a, _)| *n != peer && *n != shared.node_id && shareable(a, &remote))
            .filter(|(n, _, _)| seen.insert(n.clone()))
            .take(MAX_PEER_HINTS)
            .map(|(n, a, t)| PeerHint {
                node_id: n.to_string(),
                addr: a.to_string(),
                last_seen_ms: t,
            })
            .collect();
        if peers.is_empty() {
            return;
        }
        match c.send_control(&ControlMessage::Peers { peers }).await {
            Ok(()) => shared.discovery.count("pex_lists_sent"),
            Err(e) => warn!(peer = %peer, error = %e, "cannot send the peer list"),
        }
    });
}

/// Validates one entry; `None` (counted) if it is unusable.
fn parse_hint(h: &PeerHint, remote: &SocketAddr) -> Option<(Eid, SocketAddr)> {
    let node: Eid = h.node_id.parse().ok()?;
    if node == Eid::DtnNone || node.node_id() != node {
        return None;
    }
    let addr: SocketAddr = h.addr.parse().ok()?;
    shareable(&addr, remote).then_some((node, addr))
}

/// Handles a peer list from `peer` (reached at `remote`): the first
/// [`MAX_PEER_HINTS`] entries are validated, remembered, and those not in
/// contact are dialed (at most [`MAX_DIALS_PER_LIST`], each under the
/// discovery back-off). Ignored when peer exchange is off.
pub(crate) fn receive(shared: &Arc<Shared>, peer: &Eid, remote: SocketAddr, hints: &[PeerHint]) {
    let d = &shared.discovery;
    if !d.cfg.peer_exchange {
        d.count("pex_lists_ignored");
        return;
    }
    d.count("pex_lists_received");
    if hints.len() > MAX_PEER_HINTS {
        d.count("pex_lists_truncated");
    }
    let now = super::dtn_now().0;
    let mut dials = 0;
    for h in hints.iter().take(MAX_PEER_HINTS) {
        let Some((node, addr)) = parse_hint(h, &remote) else {
            d.count("pex_hints_invalid");
            continue;
        };
        if node == shared.node_id || node == *peer {
            continue;
        }
        d.remember(&node, addr, h.last_seen_ms.min(now), "exchange");
        if dials < MAX_DIALS_PER_LIST && shared.contacts.get(&node).is_none() {
            debug!(from = %peer, node = %node, addr = %addr, "peer exchange: dialing");
            super::discovery::try_dial(shared, &node, vec![addr], "exchange");
            dials += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_shared_only_with_loopback_peers() {
        let lo: SocketAddr = "127.0.0.1:4556".parse().unwrap();
        let lan: SocketAddr = "10.0.0.2:4556".parse().unwrap();
        assert!(shareable(&lo, &lo));
        assert!(!shareable(&lo, &lan));
        assert!(shareable(&lan, &lan));
        for bad in [
            "0.0.0.0:1",
            "10.0.0.2:0",
            "239.1.1.1:5",
            "255.255.255.255:5",
        ] {
            assert!(!shareable(&bad.parse().unwrap(), &lo), "{bad}");
        }
    }

    #[test]
    fn hints_are_validated() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let h = |n: &str, a: &str| PeerHint {
            node_id: n.into(),
            addr: a.into(),
            last_seen_ms: 0,
        };
        assert!(parse_hint(&h("dtn://c/", "127.0.0.1:5"), &lo).is_some());
        assert!(parse_hint(&h("dtn://c/x", "127.0.0.1:5"), &lo).is_none());
        assert!(parse_hint(&h("dtn:none", "127.0.0.1:5"), &lo).is_none());
        assert!(parse_hint(&h("dtn://c/", "nope"), &lo).is_none());
    }
}
