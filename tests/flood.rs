//! A flooding peer against a real `spore node` (N): a client on `QuicCla`
//! sends tiny bundles as fast as it can (at most 200 000 or 10 s) while an
//! honest node A sends N a 4 MiB file. N holds the flooder to its rate
//! (`throttled`), disconnects it (`disconnected_flooding`) and refuses its
//! reconnection during the back-off (`refused_flooding_backoff`); the honest
//! file arrives intact (SHA-256), and N's peak RSS stays bounded. Prints the
//! flood rate, the counters, the transfer times with and without the flood
//! and the peak RSS.

mod common;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use spore::bundle::{Bundle, CreationTimestamp, Eid, codec};
use spore::cla::identity::Identity;
use spore::cla::quic::{ClaConfig, QuicCla};
use spore::harness::{NodeProcess, wait_for};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FLOODER: &str = "dtn://flooder/";
const MAX_BUNDLES: u64 = 200_000;
const MAX_FLOOD: Duration = Duration::from_secs(10);
/// N's limit for one peer, bundles/s (burst twice that).
const RATE: &str = "500";
/// Bound on N's peak RSS. Inbound data is bounded by QUIC flow control: 64
/// MiB per connection (two connections), plus at most 32 MiB merged into one
/// group commit, redb's page cache and the runtime: 256 MiB leaves room
/// for all of it and still fails if the flood were buffered without bound
/// (200 000 bundles read ahead at ~1 KiB of bookkeeping each would pass it).
const MAX_RSS_KIB: u64 = 256 * 1024;

/// What the flooder saw.
#[derive(Debug)]
struct Flood {
    sent: u64,
    elapsed: Duration,
    /// The first send error (the node hung up), if any.
    cut_off: Option<String>,
    /// Whether a new contact was refused or closed at once afterwards.
    reconnect_refused: bool,
}

fn tiny(seq: u64) -> Bytes {
    let src: Eid = FLOODER.parse().unwrap();
    let ts = CreationTimestamp {
        time: spore::node::dtn_now(),
        sequence: seq,
    };
    let dst: Eid = "dtn://nowhere/sink".parse().unwrap();
    let b = Bundle::new(src, dst, ts, 3_600_000, Bytes::from_static(b"x"));
    Bytes::from(codec::encode(&b))
}

async fn flood(addr: SocketAddr) -> Flood {
    let id = Identity::generate().unwrap();
    let listen = "127.0.0.1:0".parse().unwrap();
    let cla = QuicCla::bind(listen, &id, FLOODER, ClaConfig::default()).unwrap();
    let c = cla.connect(addr).await.unwrap();
    let t0 = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let mut sent = 0;
    let mut cut_off = None;
    while sent < MAX_BUNDLES && t0.elapsed() < MAX_FLOOD && cut_off.is_none() {
        while sends.len() >= 64 {
            if let Some(Ok(Err(e))) = sends.join_next().await {
                cut_off.get_or_insert(format!("{e}"));
            }
        }
        let (c, b) = (c.clone(), tiny(sent));
        sends.spawn(async move { c.send_bundle(b).await });
        sent += 1;
    }
    sends.abort_all();
    let elapsed = t0.elapsed();
    // During the back-off a new contact is refused (or closed at once).
    let reconnect_refused = match cla.connect(addr).await {
        Err(_) => true,
        Ok(c2) => tokio::time::timeout(Duration::from_secs(3), c2.closed())
            .await
            .is_ok(),
    };
    Flood {
        sent,
        elapsed,
        cut_off,
        reconnect_refused,
    }
}

fn sha256(p: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

/// Sends `src` from A to N and waits for N's file; returns the time taken.
fn transfer(a: &NodeProcess, n: &NodeProcess, src: &Path) -> Duration {
    let t0 = Instant::now();
    let cid = a.send(src, "dtn://n/files").unwrap();
    let path: PathBuf = wait_for("the honest file at N", Duration::from_secs(40), || {
        let s = n.status(Some(&cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(PathBuf::from))
    })
    .unwrap();
    let took = t0.elapsed();
    assert_eq!(sha256(&path), sha256(src), "the file arrives intact");
    took
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_flooder_is_throttled_and_cut_off_while_an_honest_transfer_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let flags = [
        "--peer-bundles-per-s",
        RATE,
        "--flood-wait",
        "2s",
        "--flood-backoff",
        "60s",
    ];
    let n = NodeProcess::start(&exe, &tmp.path().join("n"), "n", &flags).unwrap();
    let a = NodeProcess::start(&exe, &tmp.path().join("a"), "a", &[]).unwrap();
    a.add_peer(n.quic_addr()).unwrap();
    let (f1, f2) = (tmp.path().join("one.bin"), tmp.path().join("two.bin"));
    common::random_file(&f1, 4 << 20, 1);
    common::random_file(&f2, 4 << 20, 2);
    let quiet = transfer(&a, &n, &f1);

    let addr = n.quic_addr();
    let flooder = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(flood(addr))
    });
    std::thread::sleep(Duration::from_millis(300));
    let busy = transfer(&a, &n, &f2);
    let fl = flooder.join().expect("the flooder ran to its end");
    let s = n.status(None).unwrap();
    let k = &s["counters"];
    let rss = peak_rss_kib(n.pid().unwrap()).unwrap();
    let rate = fl.sent as f64 / fl.elapsed.as_secs_f64();
    eprintln!("flood: {fl:?}; {rate:.0} bundles/s offered");
    eprintln!("counters {k}");
    eprintln!("honest 4 MiB transfer: {quiet:?} quiet, {busy:?} during the flood");
    eprintln!("N peak RSS (VmHWM): {rss} KiB");
    let received = common::counter(&s, "received_total");
    eprintln!(
        "bundles N took from the flooder: about {}",
        received.saturating_sub(34)
    );
    assert!(common::counter(&s, "throttled") >= 1, "{k}");
    assert_eq!(common::counter(&s, "disconnected_flooding"), 1, "{k}");
    assert!(fl.cut_off.is_some(), "the flooder was disconnected: {fl:?}");
    assert!(
        fl.reconnect_refused,
        "reconnection refused during the back-off"
    );
    assert!(common::counter(&s, "refused_flooding_backoff") >= 1, "{k}");
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");
}
