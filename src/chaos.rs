//! Link chaos for tests and campaigns: a UDP relay on loopback that drops,
//! delays, reorders and duplicates datagrams and takes the link down for
//! random periods.
//!
//! A [`ChaosRelay`] listens on one address and forwards every datagram from a
//! client to a fixed target, and the target's answers back to that client.
//! Each client address gets its own upstream socket (a tiny NAT), so the
//! target sees one stable peer address per client. Point a dialer at
//! [`ChaosRelay::local_addr`] instead of the target's address and its link
//! goes through the chaos.
//!
//! What happens to a datagram (both directions, one shared link state):
//! 1. link down (a flap period or [`ChaosRelay::set_down`]): dropped;
//! 2. with probability `drop`: dropped;
//! 3. otherwise scheduled after `delay + U(0, jitter)`, but never before a
//!    datagram that came earlier in the same direction (jitter alone keeps
//!    the order, as a queue would); with probability `reorder` it is instead
//!    held an extra `U(reorder_delay/2, reorder_delay)` outside that order,
//!    so it arrives after datagrams sent later; with probability `duplicate`
//!    a second copy is scheduled the same way;
//! 4. at its time it is sent, unless the link is down by then (lost in
//!    flight) or the queue was full when it came (`queue_limit`).
//!
//! Randomness comes from one seeded ChaCha8 generator per relay; timing is
//! the real clock, so a seed fixes the random choices but not the run.
//! Memory is bounded: at most `queue_limit` datagrams wait (each ≤ 64 KiB)
//! and at most [`MAX_CLIENTS`] clients are tracked. Dropping the relay stops
//! its tasks and closes its sockets.

pub mod transfer;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Most client addresses one relay tracks; datagrams from more are dropped.
pub const MAX_CLIENTS: usize = 64;
/// Largest datagram relayed, bytes (the UDP maximum).
const MAX_DATAGRAM: usize = 65_535;

/// Errors of [`ChaosRelay::start`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// The listening socket could not be bound.
    #[error("cannot bind the relay on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration is unusable (a probability outside 0..=1, an empty
    /// flap range, a zero queue limit).
    #[error("bad chaos config: {0}")]
    Config(String),
}

/// Random link flaps: the link stays up for `U(up_min, up_max)`, then down
/// for `U(down_min, down_max)`, and so on.
#[derive(Clone, Debug)]
pub struct Flaps {
    /// Shortest up period.
    pub up_min: Duration,
    /// Longest up period.
    pub up_max: Duration,
    /// Shortest down period.
    pub down_min: Duration,
    /// Longest down period.
    pub down_max: Duration,
}

impl Flaps {
    /// The issue-7 campaign: the link changes state every 0.5–5 s (up
    /// 0.5–5 s, down 0.5–2 s; down periods stay below the QUIC idle timeout
    /// of 10 s only by chance of the range, not by design of the relay).
    pub fn every_half_to_five_s() -> Flaps {
        Flaps {
            up_min: Duration::from_millis(500),
            up_max: Duration::from_secs(5),
            down_min: Duration::from_millis(500),
            down_max: Duration::from_secs(2),
        }
    }
}

/// What a relay does to datagrams. Probabilities are in `0.0..=1.0`.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// Seed of the relay's random choices.
    pub seed: u64,
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra one-way delay, uniform in `0..jitter`.
    pub jitter: Duration,
    /// Probability that a datagram is held back by up to `reorder_delay`.
    pub reorder: f64,
    /// Longest extra hold of a reordered datagram.
    pub reorder_delay: Duration,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Link flaps; `None`: the link is up unless [`ChaosRelay::set_down`].
    pub flaps: Option<Flaps>,
    /// Most datagrams waiting for their time (both directions together).
    pub queue_limit: usize,
}

impl ChaosConfig {
    /// A clean link: no loss, no delay, no flaps (seed 0, queue 4096).
    pub fn clean() -> ChaosConfig {
        ChaosConfig {
            seed: 0,
            drop: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            flaps: None,
            queue_limit: 4096,
        }
    }

    /// The issue-7 link: 2 % loss, 1 ms + U(0, 2 ms) delay, 1 % reordered by
    /// up to 10 ms, 1 % duplicated, flaps every 0.5–5 s.
    pub fn issue7(seed: u64) -> ChaosConfig {
        ChaosConfig {
            seed,
            drop: 0.02,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
            reorder: 0.01,
            reorder_delay: Duration::from_millis(10),
            duplicate: 0.01,
            flaps: Some(Flaps::every_half_to_five_s()),
            queue_limit: 8192,
        }
    }

    fn check(&self) -> Result<(), ChaosError> {
        for (name, p) in [
            ("drop", self.drop),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ChaosError::Config(format!("{name} = {p} is not in 0..=1")));
            }
        }
        if let Some(f) = &self.flaps {
            if f.up_min > f.up_max || f.down_min > f.down_max || f.up_max.is_zero() {
                return Err(ChaosError::Config(format!("empty flap range {f:?}")));
            }
        }
        if self.queue_limit == 0 {
            return Err(ChaosError::Config("queue_limit is 0".into()));
        }
        Ok(())
    }
}

/// Counters of one relay (datagrams unless named otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChaosStats {
    /// Received from either side.
    pub received: u64,
    /// Sent on (copies included).
    pub sent: u64,
    /// Bytes sent on.
    pub sent_bytes: u64,
    /// Dropped at random.
    pub dropped_random: u64,
    /// Dropped because the link was down (on arrival or in flight).
    pub dropped_down: u64,
    /// Dropped because the queue was full or there were too many clients.
    pub dropped_overflow: u64,
    /// Held back to arrive out of order.
    pub reordered: u64,
    /// Extra copies scheduled.
    pub duplicated: u64,
    /// Times the link went down (flaps and `set_down`).
    pub downs: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    dropped_random: AtomicU64,
    dropped_down: AtomicU64,
    dropped_overflow: AtomicU64,
    reordered: AtomicU64,
    duplicated: AtomicU64,
    downs: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The shared link state: random choices and the flap schedule.
struct Link {
    cfg: ChaosConfig,
    rng: Mutex<LinkRng>,
    forced_down: AtomicBool,
    n: Counters,
}

struct LinkRng {
    rng: ChaCha8Rng,
    up: bool,
    until: Instant,
}

/// One datagram waiting for its time.
struct Pending {
    at: Instant,
    seq: u64,
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    data: bytes::Bytes,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl Link {
    fn rng(&self) -> MutexGuard<'_, LinkRng> {
        // Poisoning only follows a panic elsewhere; the generator stays usable.
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the link is up at `now`, advancing the flap schedule.
    fn up(&self, now: Instant) -> bool {
        if self.forced_down.load(Ordering::Relaxed) {
            return false;
        }
        let Some(f) = &self.cfg.flaps else {
            return true;
        };
        let mut g = self.rng();
        while now >= g.until {
            g.up = !g.up;
            let (lo, hi) = if g.up {
                (f.up_min, f.up_max)
            } else {
                inc(&self.n.downs);
                (f.down_min, f.down_max)
            };
            let d = if hi > lo {
                g.rng.random_range(lo..hi)
            } else {
                lo
            };
            // A zero down period still ends the loop: `until` moves forward.
            g.until += d.max(Duration::from_micros(1));
        }
        g.up
    }

    /// The send times of one arriving datagram: none if dropped, two if
    /// duplicated. `fifo` is the latest in-order send time of the datagram's
    /// direction: jitter never reorders by itself (a link is a queue), only
    /// the `reorder` draw does.
    fn schedule(&self, now: Instant, fifo: &mut Instant) -> Vec<Instant> {
        if !self.up(now) {
            inc(&self.n.dropped_down);
            return Vec::new();
        }
        let c = &self.cfg;
        let mut g = self.rng();
        if g.rng.random_bool(c.drop) {
            inc(&self.n.dropped_random);
            return Vec::new();
        }
        let copies = if g.rng.random_bool(c.duplicate) {
            inc(&self.n.duplicated);
            2
        } else {
            1
        };
        let mut out = Vec::with_capacity(copies);
        for _ in 0..copies {
            let at = now + c.delay + c.jitter.mul_f64(g.rng.random::<f64>());
            if g.rng.random_bool(c.reorder) {
                inc(&self.n.reordered);
                out.push(at + c.reorder_delay.mul_f64(0.5 + g.rng.random::<f64>() / 2.0));
            } else {
                *fifo = at.max(*fifo);
                out.push(*fifo);
            }
        }
        out
    }
}

/// A running chaos relay; stops when dropped.
pub struct ChaosRelay {
    local: SocketAddr,
    link: Arc<Link>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for ChaosRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosRelay")
            .field("local", &self.local)
            .field("cfg", &self.link.cfg)
            .finish()
    }
}

impl ChaosRelay {
    /// Binds `listen` (port 0 for any) and relays to `target` with `cfg`.
    /// Must be called inside a tokio runtime; the relay's tasks run on it.
    ///
    /// # Errors
    /// [`ChaosError::Config`] for a bad config, [`ChaosError::Bind`] if the
    /// socket cannot be bound.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        cfg: ChaosConfig,
    ) -> Result<ChaosRelay, ChaosError> {
        cfg.check()?;
        let front = UdpSocket::bind(listen)
            .await
            .map_err(|source| ChaosError::Bind {
                addr: listen,
                source,
            })?;
        let local = front.local_addr().map_err(|source| ChaosError::Bind {
            addr: listen,
            source,
        })?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let first_up = match &cfg.flaps {
            Some(f) if f.up_max > f.up_min => rng.random_range(f.up_min..f.up_max),
            Some(f) => f.up_min,
            None => Duration::ZERO,
        };
        let link = Arc::new(Link {
            rng: Mutex::new(LinkRng {
                rng,
                up: true,
                until: Instant::now() + first_up,
            }),
            forced_down: AtomicBool::new(false),
            n: Counters::default(),
            cfg,
        });
        let (tx, rx) = mpsc::channel(link.cfg.queue_limit);
        let mut tasks = JoinSet::new();
        tasks.spawn(emit(link.clone(), rx));
        let fwd = Forwarder {
            link: link.clone(),
            front: Arc::new(front),
            target,
            tx,
            seq: Arc::new(AtomicU64::new(0)),
            fifo: Instant::now(),
        };
        tasks.spawn(fwd.run_front());
        Ok(ChaosRelay { local, link, tasks })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Takes the link down (`true`: everything is dropped, including
    /// datagrams in flight) or lets the flap schedule decide again (`false`).
    pub fn set_down(&self, down: bool) {
        let was = self.link.forced_down.swap(down, Ordering::Relaxed);
        if down && !was {
            inc(&self.link.n.downs);
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ChaosStats {
        let n = &self.link.n;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ChaosStats {
            received: g(&n.received),
            sent: g(&n.sent),
            sent_bytes: g(&n.sent_bytes),
            dropped_random: g(&n.dropped_random),
            dropped_down: g(&n.dropped_down),
            dropped_overflow: g(&n.dropped_overflow),
            reordered: g(&n.reordered),
            duplicated: g(&n.duplicated),
            downs: g(&n.downs),
        }
    }
}

impl Drop for ChaosRelay {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Reads datagrams and hands them, with their send times, to the emitter.
#[derive(Clone)]
struct Forwarder {
    link: Arc<Link>,
    front: Arc<UdpSocket>,
    target: SocketAddr,
    tx: mpsc::Sender<Pending>,
    seq: Arc<AtomicU64>,
    /// Latest in-order send time in this forwarder's direction.
    fifo: Instant,
}

impl Forwarder {
    fn offer(&mut self, socket: &Arc<UdpSocket>, to: Option<SocketAddr>, data: &[u8]) {
        inc(&self.link.n.received);
        let data = bytes::Bytes::copy_from_slice(data);
        for at in self.link.schedule(Instant::now(), &mut self.fifo) {
            let p = Pending {
                at,
                seq: self.seq.fetch_add(1, Ordering::Relaxed),
                socket: socket.clone(),
                to,
                data: data.clone(),
            };
            if self.tx.try_send(p).is_err() {
                inc(&self.link.n.dropped_overflow);
            }
        }
    }

    /// Client -> target. Each new client gets an upstream socket connected
    /// to the target and a task carrying the target's answers back.
    async fn run_front(mut self) {
        let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut backs = JoinSet::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let Ok((n, from)) = self.front.recv_from(&mut buf).await else {
                // ICMP errors surface here on some systems; keep relaying.
                continue;
            };
            let up = match clients.get(&from) {
                Some(s) => s.clone(),
                None if clients.len() >= MAX_CLIENTS => {
                    inc(&self.link.n.dropped_overflow);
                    continue;
                }
                None => match self.upstream().await {
                    Some(s) => {
                        backs.spawn(self.clone().run_back(s.clone(), from));
                        clients.insert(from, s.clone());
                        s
                    }
                    None => continue,
                },
            };
            self.offer(&up, None, &buf[..n]);
        }
    }

    async fn upstream(&self) -> Option<Arc<UdpSocket>> {
        let any: SocketAddr = if self.target.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let s = UdpSocket::bind(any).await.ok()?;
        s.connect(self.target).await.ok()?;
        Some(Arc::new(s))
    }

    /// Target -> client `to`.
    async fn run_back(mut self, up: Arc<UdpSocket>, to: SocketAddr) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match up.recv(&mut buf).await {
                Ok(n) => {
                    let front = self.front.clone();
                    self.offer(&front, Some(to), &buf[..n]);
                }
                // ECONNREFUSED while the target restarts: keep listening.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

/// Sends queued datagrams at their times (earliest first), dropping those
/// whose link is down by then.
async fn emit(link: Arc<Link>, mut rx: mpsc::Receiver<Pending>) {
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    loop {
        let next = heap.peek().map(|Reverse(p)| p.at);
        tokio::select! {
            p = rx.recv() => match p {
                Some(p) if heap.len() < link.cfg.queue_limit => heap.push(Reverse(p)),
                Some(_) => inc(&link.n.dropped_overflow),
                None => return,
            },
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse(p)| p.at <= now) {
                    let Some(Reverse(p)) = heap.pop() else { break };
                    send_one(&link, now, p).await;
                }
            }
        }
    }
}

async fn send_one(link: &Link, now: Instant, p: Pending) {
    if !link.up(now) {
        inc(&link.n.dropped_down);
        return;
    }
    let r = match p.to {
        Some(to) => p.socket.send_to(&p.data, to).await,
        None => p.socket.send(&p.data).await,
    };
    if r.is_ok() {
        inc(&link.n.sent);
        link.n
            .sent_bytes
            .fetch_add(p.data.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = s.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let mut b = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut b).await {
                let _ = s.send_to(&b[..n], from).await;
            }
        });
        (a, h)
    }

    async fn ping(relay: SocketAddr, n: u32) -> (UdpSocket, Vec<u32>) {
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..n {
            c.send_to(&i.to_be_bytes(), relay).await.unwrap();
        }
        let mut got = Vec::new();
        let mut b = [0u8; 16];
        while let Ok(Ok(k)) = tokio::time::timeout(Duration::from_millis(300), c.recv(&mut b)).await
        {
            if k == 4 {
                got.push(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            }
        }
        (c, got)
    }

    #[tokio::test]
    async fn a_clean_link_relays_both_ways_in_order() {
        let (target, _h) = echo().await;
        let r = ChaosRelay::start("127.0.0.1:0".parse().unwrap(), target, ChaosConfig::clean())
            .await
            .unwrap();
        let (_c, got) = ping(r.local_addr(), 200).await;
        assert_eq!(got, (0..200).collect::<Vec<_>>());
        let s = r.stats();
        assert_eq!((s.received, s.sent), (400, 400), "{s:?}");
    }

    #[tokio::test]
    async fn loss_duplicates_and_reordering_happen_at_about_their_rates() {
        let (target, _h) = echo().await;
        let mut cfg = ChaosConfig::clean();
        cfg.seed = 7;
        cfg.drop = 0.1;
        cfg.duplicate = 0.1;
        cfg.reorder = 0.2;
        cfg.reorder_delay = Duration::from_millis(20);
        let r = ChaosRelay::start("127.0.0.1:0".parse().unwrap(), target, cfg)
            .await
            .unwrap();
        let (_c, got) = ping(r.local_addr(), 1000).await;
        let s = r.stats();
        // Two passes through the relay (there and back).
        assert!((100..300).contains(&s.dropped_random), "{s:?}");
        assert!(s.duplicated > 100, "{s:?}");
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_ne!(got, sorted, "some arrive out of order");
        sorted.dedup();
        assert!(sorted.len() < got.len(), "some arrive twice");
        assert!(
            (650..950).contains(&sorted.len()),
            "{} distinct",
            sorted.len()
        );
    }

    #[tokio::test]
    async fn a_down_link_drops_everything_and_comes_back() {
        let (target, _h) = echo().await;
        let r = ChaosRelay::start("127.0.0.1:0".parse().unwrap(), target, ChaosConfig::clean())
            .await
            .unwrap();
        r.set_down(true);
        let (_c, got) = ping(r.local_addr(), 50).await;
        assert!(got.is_empty());
        assert_eq!(r.stats().dropped_down, 50);
        r.set_down(false);
        let (_c, got) = ping(r.local_addr(), 50).await;
        assert_eq!(got.len(), 50);
    }

    #[tokio::test]
    async fn flaps_alternate_up_and_down() {
        let (target, _h) = echo().await;
        let mut cfg = ChaosConfig::clean();
        cfg.flaps = Some(Flaps {
            up_min: Duration::from_millis(20),
            up_max: Duration::from_millis(40),
            down_min: Duration::from_millis(20),
            down_max: Duration::from_millis(40),
        });
        let r = ChaosRelay::start("127.0.0.1:0".parse().unwrap(), target, cfg)
            .await
            .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0u32..100 {
            c.send_to(&i.to_be_bytes(), r.local_addr()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let s = r.stats();
        assert!(s.downs >= 3, "{s:?}");
        assert!(s.dropped_down > 10 && s.sent > 10, "{s:?}");
    }

    #[tokio::test]
    async fn a_dropped_relay_releases_its_port() {
        let (target, _h) = echo().await;
        let r = ChaosRelay::start("127.0.0.1:0".parse().unwrap(), target, ChaosConfig::clean())
            .await
            .unwrap();
        let a = r.local_addr();
        drop(r);
        tokio::time::sleep(Duration::from_millis(50)).await;
        UdpSocket::bind(a).await.expect("port free again");
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = ChaosConfig::clean();
        c.drop = 1.5;
        assert!(matches!(c.check(), Err(ChaosError::Config(_))));
        let mut c = ChaosConfig::clean();
        c.queue_limit = 0;
        assert!(c.check().is_err());
    }
}
