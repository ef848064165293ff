//! Zero-configuration neighbour discovery (spec/discovery.md): multicast
//! beacons, cached peers dialed at start-up, and transient discovery dials
//! with a back-off per node. Peer exchange is in `pex.rs`.
//!
//! Discovery dials are transient: they are never added to `dial.json`; a
//! contact they open ends like any other and is not redialed, except when
//! a new beacon or peer list names the node again (after its back-off).

use super::Shared;
use super::beacon::Beacon;
use crate::bundle::Eid;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Default multicast group of the beacons.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 42, 99);
/// Default UDP port of the beacons.
pub const DEFAULT_PORT: u16 = 4551;
/// Most peers heard of (beacons, peer lists) but never contacted, kept in
/// memory; the oldest is forgotten first.
pub const MAX_HEARD: usize = 256;
/// First back-off after a failed discovery dial; doubles per failure.
const DIAL_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest back-off between discovery dials of one node.
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Most addresses and most node IDs removed by the operator that discovery
/// keeps away from.
const MAX_SUPPRESSED: usize = 256;
/// Most nodes with a discovery dial in progress or backing off.
pub const MAX_BACKOFF_ENTRIES: usize = 1024;
/// Rounds of dialing cached peers at start-up (the back-off applies between them).
const CACHED_DIAL_ROUNDS: u32 = 4;

/// The `[discovery]` section of the node configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Send and listen for multicast beacons (default true; `--discovery`).
    pub enabled: bool,
    /// IPv4 multicast group (default 239.255.42.99).
    pub group: Ipv4Addr,
    /// UDP port of the beacons (default 4551).
    pub port: u16,
    /// Mean time between beacons, ms (default 5000; each wait is jittered
    /// ±20 %; `--beacon-interval`).
    pub interval_ms: u64,
    /// Multicast TTL (default 1: the local link only).
    pub ttl: u32,
    /// Local IPv4 address of the interface to beacon on (default: the one
    /// the routing table picks for the group).
    pub interface: Option<Ipv4Addr>,
    /// Send and use peer lists on contact (default true; `--peer-exchange`).
    pub peer_exchange: bool,
    /// Dial recently seen peers from the store at start-up (default true;
    /// `--dial-cached`).
    pub dial_cached: bool,
    /// Only cached peers seen within this many seconds are dialed at
    /// start-up (default 604800, 7 days).
    pub cached_max_age_s: u64,
    /// Most cached peers dialed at start-up, most recent first (default 16).
    pub cached_max: usize,
    /// Most discovery dials in progress at once (default 4).
    pub max_dials: usize,
    /// Service names announced in beacons (default none; ≤ 8).
    pub services: Vec<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: true,
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
            interval_ms: 5000,
            ttl: 1,
            interface: None,
            peer_exchange: true,
            dial_cached: true,
            cached_max_age_s: 7 * 24 * 3600,
            cached_max: 16,
            max_dials: 4,
            services: Vec::new(),
        }
    }
}

impl DiscoveryConfig {
    /// Everything off: no beacons, no peer exchange, no cached dials (what
    /// the test harness and the demo use, so their topologies stay as set).
    pub fn off() -> Self {
        DiscoveryConfig {
            enabled: false,
            peer_exchange: false,
            dial_cached: false,
            ..Default::default()
        }
    }
}

/// A peer heard of but not (yet) in the store's peer table.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Heard {
    pub addr: SocketAddr,
    /// DTN ms.
    pub last_seen_ms: u64,
    /// `beacon` or `exchange`.
    pub via: &'static str,
}

struct Backoff {
    next: Instant,
    failures: u32,
    busy: bool,
}

/// Discovery state of a running node (owned by [`Shared`]).
pub(crate) struct Discovery {
    pub cfg: DiscoveryConfig,
    fingerprint: String,
    heard: Mutex<HashMap<Eid, Heard>>,
    backoff: Mutex<HashMap<Eid, Backoff>>,
    dials: Arc<Semaphore>,
    counters: Mutex<BTreeMap<&'static str, u64>>,
    seq: AtomicU64,
    suppressed: Mutex<Suppressed>,
    /// Source IP of our own beacons as they come back (this host).
    own_source: Mutex<Option<std::net::IpAddr>>,
}

/// Peers removed by the operator (`spore peers remove`): discovery does not
/// dial them again (in memory, until restart; an address until it is added
/// back with `spore peers add`).
#[derive(Default)]
struct Suppressed {
    addrs: std::collections::HashSet<SocketAddr>,
    nodes: std::collections::HashSet<Eid>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning only follows a panic elsewhere; the maps stay consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Discovery {
    /// Discovery state for a node whose key fingerprint is `fingerprint`.
    pub fn new(cfg: DiscoveryConfig, fingerprint: String) -> Discovery {
        let dials = Arc::new(Semaphore::new(cfg.max_dials.max(1)));
        Discovery {
            cfg,
            fingerprint,
            heard: Mutex::default(),
            backoff: Mutex::default(),
            dials,
            counters: Mutex::default(),
            seq: AtomicU64::new(0),
            suppressed: Mutex::default(),
            own_source: Mutex::default(),
        }
    }

    /// Keeps discovery from dialing `addr` and/or `node` (removed by the
    /// operator); at most [`MAX_SUPPRESSED`] of each are kept.
    pub fn suppress(&self, addr: Option<SocketAddr>, node: Option<&Eid>) {
        let mut s = lock(&self.suppressed);
        if let Some(a) = addr.filter(|_| s.addrs.len() < MAX_SUPPRESSED) {
            s.addrs.insert(a);
        }
        if let Some(n) = node.filter(|_| s.nodes.len() < MAX_SUPPRESSED) {
            s.nodes.insert(n.node_id());
        }
    }

    /// Lets discovery dial `addr` again (added back by the operator).
    pub fn unsuppress(&self, addr: SocketAddr) {
        lock(&self.suppressed).addrs.remove(&addr);
    }

    /// `addrs` without the suppressed ones; empty if `node` is suppressed.
    fn allowed(&self, node: &Eid, mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let s = lock(&self.suppressed);
        if s.nodes.contains(node) {
            return Vec::new();
        }
        addrs.retain(|a| !s.addrs.contains(a));
        addrs
    }

    /// Adds 1 to counter `name` (shown by `spore peers --json`).
    pub fn count(&self, name: &'static str) {
        *lock(&self.counters).entry(name).or_default() += 1;
    }

    /// Remembers a peer heard of (bounded by [`MAX_HEARD`]).
    pub fn remember(&self, node: &Eid, addr: SocketAddr, last_seen_ms: u64, via: &'static str) {
        let mut h = lock(&self.heard);
        if !h.contains_key(node) && h.len() >= MAX_HEARD {
            let oldest = h
                .iter()
                .min_by_key(|(_, v)| v.last_seen_ms)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                h.remove(&k);
            }
        }
        let e = h.entry(node.clone()).or_insert(Heard {
            addr,
            last_seen_ms,
            via,
        });
        if last_seen_ms >= e.last_seen_ms {
            *e = Heard {
                addr,
                last_seen_ms,
                via,
            };
        }
    }

    /// The JSON view for `GET /api/v1/peers` (`discovery` key).
    pub fn view(&self) -> serde_json::Value {
        let heard: BTreeMap<String, Heard> = lock(&self.heard)
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        serde_json::json!({
            "beacons": self.cfg.enabled,
            "peer_exchange": self.cfg.peer_exchange,
            "counters": *lock(&self.counters),
            "heard": heard,
        })
    }

    /// Reserves a dial of `node`: false while a dial of it runs, its
    /// back-off has not passed, or [`MAX_BACKOFF_ENTRIES`] other nodes are
    /// dialing or backing off (forged beacons cannot grow the table).
    fn begin_dial(&self, node: &Eid) -> bool {
        let mut b = lock(&self.backoff);
        let now = Instant::now();
        if !b.contains_key(node) && b.len() >= MAX_BACKOFF_ENTRIES {
            b.retain(|_, e| e.busy || e.next > now);
            if b.len() >= MAX_BACKOFF_ENTRIES {
                return false;
            }
        }
        let e = b.entry(node.clone()).or_insert(Backoff {
            next: Instant::now(),
            failures: 0,
            busy: false,
        });
        if e.busy || Instant::now() < e.next {
            return false;
        }
        e.busy = true;
        true
    }

    /// Ends a dial: a failure doubles the back-off (jittered ±20 %).
    fn end_dial(&self, node: &Eid, ok: bool) {
        let mut b = lock(&self.backoff);
        if let Some(e) = b.get_mut(node) {
            e.busy = false;
            e.failures = if ok { 0 } else { e.failures.saturating_add(1) };
            let base = if ok {
                DIAL_BACKOFF_MIN
            } else {
                DIAL_BACKOFF_MIN
                    .saturating_mul(1 << e.failures.min(8))
                    .min(DIAL_BACKOFF_MAX)
            };
            e.next = Instant::now() + base.mul_f64(rand::rng().random_range(0.8..1.2));
        }
    }
}

/// Dials `node` once at `addrs` (in order, first success wins) unless it is
/// us, in contact, a static dial target, removed by the operator, dialed
/// already, backing off, or all discovery dial slots are busy. The contact then runs like any other.
/// `why` (`beacon`, `exchange`, `cache`) is logged.
pub(crate) fn try_dial(
    shared: &Arc<Shared>,
    node: &Eid,
    addrs: Vec<SocketAddr>,
    why: &'static str,
) {
    let d = &shared.discovery;
    let statics = shared.contacts.dial_targets();
    if *node == shared.node_id
        || shared.contacts.get(node).is_some()
        || addrs.iter().any(|a| statics.contains(a))
    {
        return;
    }
    let given = addrs.len();
    let addrs = d.allowed(node, addrs);
    if addrs.is_empty() {
        if given > 0 {
            d.count("discovery_dials_suppressed");
        }
        return;
    }
    if !d.begin_dial(node) {
        return;
    }
    let Ok(permit) = d.dials.clone().try_acquire_owned() else {
        d.count("discovery_dials_busy");
        d.end_dial(node, false);
        return;
    };
    d.count("discovery_dials");
    info!(peer = %node, addr = %addrs[0], why, "discovery dial");
    let (shared, node) = (shared.clone(), node.clone());
    tokio::spawn(async move {
        let mut contact = None;
        for a in addrs.iter().take(3) {
            match shared.cla.connect(*a).await {
                Ok(c) => {
                    contact = Some(c);
                    break;
                }
                Err(e) => debug!(peer = %node, addr = %a, error = %e, "discovery dial failed"),
            }
        }
        drop(permit);
        let ok = contact.is_some();
        shared.discovery.end_dial(&node, ok);
        match contact {
            Some(c) => {
                info!(peer = %node, addr = %c.remote_addr(), "discovered peer contacted");
                super::contacts::run_contact(shared.clone(), c, true).await;
            }
            None => shared.discovery.count("discovery_dials_failed"),
        }
    });
}

/// Starts the beacon task and the cached-peer dialer, as configured.
/// Discovery is best effort: a beacon socket that cannot be opened (no
/// multicast route, port in use without reuse) is logged, not fatal.
pub(crate) fn start(shared: &Arc<Shared>, tasks: &mut tokio::task::JoinSet<()>) {
    let cfg = &shared.discovery.cfg;
    if cfg.enabled {
        match beacon_socket(cfg) {
            Ok(sock) => {
                info!(group = %cfg.group, port = cfg.port, "discovery beacons on");
                let sock = Arc::new(sock);
                tasks.spawn(send_beacons(shared.clone(), sock.clone()));
                tasks.spawn(recv_beacons(shared.clone(), sock));
            }
            Err(e) => warn!(error = %e, "cannot open the discovery socket; beacons off"),
        }
    }
    if cfg.dial_cached {
        tasks.spawn(dial_cached(shared.clone()));
    }
}

/// The UDP socket: bound to the beacon port on all addresses (shared with
/// other nodes on this host), member of the group.
fn beacon_socket(cfg: &DiscoveryConfig) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port).into())?;
    let iface = cfg.interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
    s.join_multicast_v4(&cfg.group, &iface)?;
    if let Some(i) = cfg.interface {
        s.set_multicast_if_v4(&i)?;
    }
    s.set_multicast_ttl_v4(cfg.ttl)?;
    s.set_multicast_loop_v4(true)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Free bytes on the file system of the data directory, if it can be read.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

fn our_beacon(shared: &Shared) -> Option<Beacon> {
    let d = &shared.discovery;
    let quic = shared.cla.local_addr().ok()?;
    let addrs = if quic.ip().is_unspecified() {
        Vec::new()
    } else {
        vec![quic]
    };
    Some(Beacon {
        node_id: shared.node_id.clone(),
        quic_port: quic.port(),
        addrs,
        key_fingerprint: d.fingerprint.clone(),
        router: shared.router.to_string().chars().take(64).collect(),
        services: d.cfg.services.iter().take(8).cloned().collect(),
        free_bytes: free_bytes(&shared.data_dir),
        seq: d.seq.fetch_add(1, Ordering::Relaxed),
    })
}

async fn send_beacons(shared: Arc<Shared>, sock: Arc<UdpSocket>) {
    let cfg = &shared.discovery.cfg;
    let to = SocketAddr::from((cfg.group, cfg.port));
    let interval = Duration::from_millis(cfg.interval_ms.max(100));
    loop {
        if let Some(b) = our_beacon(&shared) {
            match b.encode() {
                Ok(bytes) => match sock.send_to(&bytes, to).await {
                    Ok(_) => shared.discovery.count("beacons_sent"),
                    Err(e) => {
                        debug!(error = %e, "cannot send a beacon");
                        shared.discovery.count("beacons_send_failed");
                    }
                },
                Err(e) => warn!(error = %e, "cannot encode our beacon"),
            }
        }
        let jitter = rand::rng().random_range(0.8..1.2);
        tokio::time::sleep(interval.mul_f64(jitter)).await;
    }
}

async fn recv_beacons(shared: Arc<Shared>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "beacon receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        handle_beacon(&shared, &buf[..n], from);
    }
}

/// Validates one datagram and turns a beacon from a node not in contact
/// into a contact attempt (addresses in [`dial_order`]).
fn handle_beacon(shared: &Arc<Shared>, bytes: &[u8], from: SocketAddr) {
    let d = &shared.discovery;
    let b = match Beacon::decode(bytes) {
        Ok(b) => b,
        Err(e) => {
            debug!(from = %from, error = %e, "malformed beacon ignored");
            d.count("beacons_malformed");
            return;
        }
    };
    if b.node_id == shared.node_id {
        // Our own beacon, looped back: its source IP is this host's.
        *lock(&d.own_source) = Some(from.ip());
        d.count("beacons_own");
        return;
    }
    d.count("beacons_received");
    let same_host = from.ip().is_loopback() || *lock(&d.own_source) == Some(from.ip());
    let addrs = dial_order(from, &b, same_host);
    d.remember(&b.node_id, addrs[0], super::dtn_now().0, "beacon");
    if shared.contacts.get(&b.node_id).is_some() {
        return;
    }
    try_dial(shared, &b.node_id, addrs, "beacon");
}

/// Where to dial the sender of beacon `b` received from `from`: the source
/// IP with the beacon's QUIC port, then the explicit addresses; loopback
/// ones only if the sender is on this host (`same_host`), and then first
/// (a node listening on loopback only is not reachable at the source IP).
fn dial_order(from: SocketAddr, b: &Beacon, same_host: bool) -> Vec<SocketAddr> {
    let src = SocketAddr::new(from.ip(), b.quic_port);
    let mut addrs = Vec::with_capacity(b.addrs.len() + 1);
    if same_host {
        addrs.extend(b.addrs.iter().filter(|a| a.ip().is_loopback()));
    }
    addrs.push(src);
    for a in &b.addrs {
        if !addrs.contains(a) && !a.ip().is_loopback() {
            addrs.push(*a);
        }
    }
    addrs
}

/// A peer from the store's peer table with a usable address and when it
/// was last seen (DTN ms).
pub(crate) fn cached_peers(shared: &Shared) -> Vec<(Eid, SocketAddr, u64)> {
    let peers = match shared.store.peers() {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "cannot read the peer table");
            return Vec::new();
        }
    };
    let mut out: Vec<(Eid, SocketAddr, u64)> = peers
        .into_iter()
        .filter_map(|p| {
            let node: Eid = p.node_id.parse().ok()?;
            let addr: SocketAddr = p.addr.as_deref()?.parse().ok()?;
            let seen = p.last_seen_ms.max(p.last_contact_ms)?;
            Some((node, addr, seen))
        })
        .filter(|(n, a, _)| *n != shared.node_id && a.port() != 0 && !a.ip().is_unspecified())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.2));
    out
}

/// Dials the most recently seen cached peers (at most `cached_max`, seen
/// within `cached_max_age_s`) for a few rounds, then gives up.
async fn dial_cached(shared: Arc<Shared>) {
    let cfg = &shared.discovery.cfg;
    let now = super::dtn_now().0;
    let min_seen = now.saturating_sub(cfg.cached_max_age_s.saturating_mul(1000));
    let store_shared = shared.clone();
    let Ok(peers) = tokio::task::spawn_blocking(move || cached_peers(&store_shared)).await else {
        return;
    };
    let recent: Vec<_> = peers
        .into_iter()
        .filter(|p| p.2 >= min_seen)
        .take(cfg.cached_max)
        .collect();
    if recent.is_empty() {
        return;
    }
    info!(peers = recent.len(), "dialing cached peers");
    for round in 0..CACHED_DIAL_ROUNDS {
        for (node, addr, _) in &recent {
            try_dial(&shared, node, vec![*addr], "cache");
        }
        tokio::time::sleep(DIAL_BACKOFF_MIN * (1 << round)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_back_off_per_node_and_the_table_is_bounded() {
        let d = Discovery::new(DiscoveryConfig::default(), String::new());
        let n = |i: usize| -> Eid { format!("dtn://n{i}/").parse().unwrap() };
        assert!(d.begin_dial(&n(0)));
        assert!(!d.begin_dial(&n(0)), "one dial at a time");
        d.end_dial(&n(0), false);
        assert!(!d.begin_dial(&n(0)), "backing off (≥ 1.6 s)");
        for i in 1..MAX_BACKOFF_ENTRIES {
            assert!(d.begin_dial(&n(i)));
        }
        assert!(!d.begin_dial(&n(MAX_BACKOFF_ENTRIES)), "table full");
        assert_eq!(lock(&d.backoff).len(), MAX_BACKOFF_ENTRIES);
    }

    #[test]
    fn config_section_has_defaults_and_refuses_unknown_keys() {
        let c: DiscoveryConfig =
            toml::from_str("enabled = false\ngroup = \"239.1.2.3\"\ninterface = \"10.0.0.2\"")
                .unwrap();
        assert_eq!(c.interface, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(!c.enabled);
        assert_eq!(c.group, Ipv4Addr::new(239, 1, 2, 3));
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.interval_ms, 5000);
        assert!(toml::from_str::<DiscoveryConfig>("enable = true").is_err());
        let back = toml::to_string(&DiscoveryConfig::default()).unwrap();
        assert_eq!(
            toml::from_str::<DiscoveryConfig>(&back).unwrap(),
            DiscoveryConfig::default()
        );
    }

    #[test]
    fn dial_order_prefers_loopback_only_on_the_same_host() {
        let b = Beacon {
            node_id: "dtn://b/".parse().unwrap(),
            quic_port: 4556,
            addrs: vec![
                "127.0.0.1:4000".parse().unwrap(),
                "10.0.0.9:4556".parse().unwrap(),
            ],
            key_fingerprint: "0123456789abcdef".into(),
            router: String::new(),
            services: vec![],
            free_bytes: None,
            seq: 0,
        };
        let from: SocketAddr = "10.0.0.3:4551".parse().unwrap();
        let s = |v: Vec<SocketAddr>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            s(dial_order(from, &b, false)),
            ["10.0.0.3:4556", "10.0.0.9:4556"]
        );
        assert_eq!(
            s(dial_order(from, &b, true)),
            ["127.0.0.1:4000", "10.0.0.3:4556", "10.0.0.9:4556"]
        );
    }
}
