//! A hostile peer that speaks the spore/1 CL (raw quinn, so it can do what
//! an honest `Contact` never does): truncated streams, huge length claims
//! inside CBOR, a never-ending stream, 10 000 blocks, an expired bundle, a
//! bundle to `dtn:none`, and a duplicate bundle ID with another payload.
//! Each is refused with a reason and counted in the status `counters`, the
//! API answers throughout, and a parallel transfer from an honest peer
//! completes. Prints the node's peak RSS (VmHWM).

mod common;

use bytes::Bytes;
use common::raw_peer::{RawSession, frame, hello, read_frame};
use spore::bundle::admin::{AdministrativeRecord, CustodyReason, CustodySignal};
use spore::bundle::blocks::CustodyBlock;
use spore::bundle::{Bundle, CreationTimestamp, DtnTime, Eid, codec};
use spore::harness::{NodeProcess, wait_for};
use spore::node::proto::ControlMessage;
use std::time::{Duration, Instant};

const ME: &str = "dtn://mallory/";

/// A raw spore/1 session: the control stream after the Hello exchange.
struct Raw {
    conn: quinn::Connection,
    ctl_tx: quinn::SendStream,
    ctl_rx: quinn::RecvStream,
    _ep: quinn::Endpoint,
}

impl Raw {
    async fn connect(addr: std::net::SocketAddr) -> Raw {
        let RawSession {
            conn,
            tx: mut ctl_tx,
            rx: mut ctl_rx,
            ep,
        } = hello(addr, ME).await;
        read_frame(&mut ctl_rx).await; // the node's Hello
        let summary = ControlMessage::Summary {
            held: vec![],
            from_you: vec![],
            from_you_transmissions: vec![],
            advert: Default::default(),
        };
        ctl_tx.write_all(&frame(&summary)).await.unwrap();
        Raw {
            conn,
            ctl_tx,
            ctl_rx,
            _ep: ep,
        }
    }

    /// One whole stream.
    async fn send(&self, bytes: &[u8]) {
        let mut s = self.conn.open_uni().await.unwrap();
        s.write_all(bytes).await.unwrap();
        s.finish().unwrap();
    }

    /// The first half of `bytes`, then a reset (a peer that gave up).
    async fn send_and_reset(&self, bytes: &[u8]) {
        let mut s = self.conn.open_uni().await.unwrap();
        s.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.reset(quinn::VarInt::from_u32(0x77)).unwrap();
    }

    /// Reads custody signals into `out` until `done(out)` holds. Streams
    /// are read concurrently, so signals may come in any order.
    async fn signals_until(
        &mut self,
        out: &mut Vec<CustodySignal>,
        done: impl Fn(&[CustodySignal]) -> bool,
    ) {
        while !done(out) {
            let body = tokio::time::timeout(Duration::from_secs(15), read_frame(&mut self.ctl_rx))
                .await
                .expect("custody signal in time");
            if let Ok(ControlMessage::Custody { record }) = serde_cbor::from_slice(&body) {
                if let Ok(AdministrativeRecord::CustodySignal(s)) =
                    AdministrativeRecord::decode(&record)
                {
                    out.push(s);
                }
            }
        }
    }
}

fn bundle(seq: u64, dest: &str, time: DtnTime, lifetime_ms: u64, payload: &[u8]) -> Bundle {
    let src: Eid = ME.parse().unwrap();
    let ts = CreationTimestamp {
        time,
        sequence: seq,
    };
    let dest = if dest == "dtn:none" {
        Eid::DtnNone
    } else {
        dest.parse().unwrap()
    };
    let mut b = Bundle::new(
        src.clone(),
        dest,
        ts,
        lifetime_ms,
        Bytes::copy_from_slice(payload),
    );
    b.set_custody(&CustodyBlock {
        custodian: src,
        transmission: None,
    });
    b
}

fn fresh(now: DtnTime, seq: u64, dest: &str, payload: &[u8]) -> Bundle {
    bundle(seq, dest, now, 3_600_000, payload)
}

/// A valid encoding with `n` extra 1-byte-data blocks before the payload block.
fn with_many_blocks(now: DtnTime, n: u16) -> Vec<u8> {
    let enc = codec::encode(&fresh(now, 90, "dtn://c/app", b"xxxxxxxx"));
    // The payload block is last: [type 1, number 1, flags, CRC type,
    // h'7878787878787878', h'<CRC-32C>'] (3 + 2 + 9 + 5 bytes), then the
    // end of the outer array (0xff).
    let at = enc.len() - 20;
    assert_eq!(enc[at..at + 3], [0x86, 0x01, 0x01], "payload block header");
    let mut out = enc[..at].to_vec();
    for i in 0..n {
        // [type 192, number 10 + i, flags 0, CRC type 0, h'00']
        out.extend([0x85, 0x18, 0xc0, 0x19]);
        out.extend((10 + i).to_be_bytes());
        out.extend([0x00, 0x00, 0x41, 0x00]);
    }
    out.extend(&enc[at..]);
    out
}

/// Peak resident set of a process, KiB (Linux `VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The hostile barrage; returns the custody signals it got.
async fn barrage(addr: std::net::SocketAddr) -> Vec<CustodySignal> {
    let mut m = Raw::connect(addr).await;
    // A never-ending stream: one byte every 100 ms, until the node stops it.
    let trickle = {
        let mut s = m.conn.open_uni().await.unwrap();
        tokio::spawn(async move {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if s.write_all(&[0x9f]).await.is_err() {
                    return Some(t0.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        })
    };
    let now = spore::node::dtn_now();
    let good = codec::encode(&fresh(now, 1, "dtn://c/app", b"first payload"));
    // Truncated: half then reset; half then a clean end of stream.
    m.send_and_reset(&good).await;
    m.send(&good[..good.len() / 2]).await;
    // Huge length claims: a byte string of 2^64-1 bytes; an array of 2^62 items.
    m.send(&[0x9f, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        .await;
    m.send(&[0x9f, 0x9b, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x01]).await;
    m.send(&with_many_blocks(now, 10_000)).await;
    let old = DtnTime(now.0 - 7_200_000);
    let expired = bundle(2, "dtn://c/app", old, 3_600_000, b"too old");
    m.send(&codec::encode(&expired)).await;
    m.send(&codec::encode(&fresh(now, 3, "dtn:none", b"to nobody")))
        .await;
    // The good bundle, then the same ID with another payload.
    m.send(&good).await;
    let good_id = fresh(now, 1, "dtn://c/app", b"").id();
    let names = |g: &CustodySignal, reason| g.reason == reason && g.bundles.contains(&good_id);
    let mut sigs = Vec::new();
    m.signals_until(&mut sigs, |v| {
        v.iter().any(|g| names(g, CustodyReason::Accepted))
    })
    .await;
    let mut twin = codec::decode(&good, &Default::default()).unwrap();
    twin.set_payload(Bytes::from_static(b"second, different payload"));
    m.send(&codec::encode(&twin)).await;
    // The twin's answer, and the two refusals (whose streams may finish
    // after the good bundle's).
    let refused = |v: &[CustodySignal], r| v.iter().any(|g| !g.accepted && g.reason == r);
    m.signals_until(&mut sigs, |v| {
        v.iter().any(|g| names(g, CustodyReason::Duplicate))
            && refused(v, CustodyReason::Expired)
            && refused(v, CustodyReason::Other(5))
    })
    .await;
    let abandoned = trickle.await.unwrap();
    assert!(
        abandoned.is_some_and(|t| t < Duration::from_secs(6)),
        "the node stops a never-ending stream after its deadline: {abandoned:?}"
    );
    m.ctl_tx.finish().ok();
    sigs
}

fn n(s: &serde_json::Value, k: &str) -> u64 {
    common::counter(s, k)
}

#[test]
fn a_hostile_peer_is_refused_and_counted_while_an_honest_transfer_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    let flags = ["--bundle-read-deadline", "2s"];
    let c = NodeProcess::start(&exe, &tmp.path().join("c"), "c", &flags).unwrap();
    let a = NodeProcess::start(&exe, &tmp.path().join("a"), "a", &[]).unwrap();
    let src = tmp.path().join("honest.bin");
    common::random_file(&src, 4 << 20, 11);
    let cid = a.send(&src, "dtn://c/files").unwrap();
    a.add_peer(c.quic_addr()).unwrap();
    let addr = c.quic_addr();
    let hostile = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(barrage(addr))
    });
    // The API stays responsive while both peers are at it.
    let mut slowest = Duration::ZERO;
    while !hostile.is_finished() {
        let t = Instant::now();
        c.status(None).expect("the API answers during the barrage");
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let signals = hostile.join().expect("hostile peer ran to the end");
    let path = wait_for("the honest file at C", Duration::from_secs(20), || {
        let s = c.status(Some(&cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(std::path::PathBuf::from))
    })
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), std::fs::read(&src).unwrap());
    let s = c.status(None).unwrap();
    let k = &s["counters"];
    eprintln!("counters {k}");
    eprintln!("slowest status answer during the barrage: {slowest:?}");
    eprintln!(
        "node peak RSS (VmHWM): {:?} KiB",
        peak_rss_kib(c.pid().unwrap())
    );
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    // Stream-level refusals (no bundle ever existed).
    assert_eq!(n(&s, "refused_stream_bundle_reset"), 1, "{k}");
    assert_eq!(n(&s, "refused_stream_deadline"), 1, "{k}");
    // Decoder refusals: the truncated stream and the two length claims
    // (truncated or bad CBOR, never an allocation of the claimed size), and
    // 10 000 blocks (over the 64-block limit).
    let undecodable: u64 = ["refused_truncated", "refused_bad_cbor", "refused_oversize"]
        .iter()
        .map(|c| n(&s, c))
        .sum();
    assert_eq!(undecodable, 3, "{k}");
    assert_eq!(n(&s, "refused_too_many_blocks"), 1, "{k}");
    // Semantic refusals carry a custody signal with the reason.
    assert_eq!(n(&s, "refused_expired"), 1, "{k}");
    assert_eq!(n(&s, "refused_no_destination"), 1, "{k}");
    assert_eq!(n(&s, "duplicates"), 1, "{k}");
    let reasons: Vec<_> = signals.iter().map(|g| (g.accepted, g.reason)).collect();
    for want in [
        (false, CustodyReason::Expired),
        (false, CustodyReason::Other(5)),
        (true, CustodyReason::Accepted),
        (false, CustodyReason::Duplicate),
    ] {
        assert!(reasons.contains(&want), "{want:?} missing from {reasons:?}");
    }
    // The first payload won; the twin with the same ID was not delivered.
    let delivered: Vec<Vec<u8>> = std::fs::read_dir(c.dir.join("delivered"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(delivered, vec![b"first payload".to_vec()]);
    // And the node is still serving.
    assert_eq!(n(&s, "files_delivered"), 1, "{k}");
}
