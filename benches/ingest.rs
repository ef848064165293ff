//! Durable ingest rate of the sans-IO core: 1 KiB custody bundles from a
//! peer, fed to `Agent::handle` as `Event::Received` batches over a real
//! redb file (fsync on every commit).
//!
//! A batch of 64 is one group commit, as the node's agent thread merges
//! them (`MAX_GROUP` in `src/node/actions.rs`); a batch of 1 is one fsync
//! per bundle. Throughput is in bundles per second. Encoding happens in the
//! untimed set-up: the node receives bundles already encoded.
//!
//! Run with `cargo bench --bench ingest`.

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spore::agent::{Agent, AgentConfig, Event, Received};
use spore::bundle::blocks::CustodyBlock;
use spore::bundle::codec::encode;
use spore::bundle::{Bundle, CreationTimestamp, DtnTime, Eid};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAYLOAD_BYTES: usize = 1024;
const LIFETIME_MS: u64 = 24 * 3600 * 1000;

/// Makes encoded custody bundles from `dtn://a/` to `dtn://c/files`, each
/// with a fresh creation sequence number so none is a duplicate.
struct Source {
    peer: Eid,
    destination: Eid,
    created: DtnTime,
    next_seq: u64,
    payload: Bytes,
}

impl Source {
    fn new(created: DtnTime) -> Source {
        Source {
            peer: "dtn://a/".parse().expect("valid EID"),
            destination: "dtn://c/files".parse().expect("valid EID"),
            created,
            next_seq: 0,
            payload: Bytes::from(vec![0x5a; PAYLOAD_BYTES]),
        }
    }

    fn batch(&mut self, n: usize) -> Vec<Received> {
        (0..n)
            .map(|_| {
                let ts = CreationTimestamp {
                    time: self.created,
                    sequence: self.next_seq,
                };
                self.next_seq += 1;
                let mut b = Bundle::new(
                    self.peer.clone(),
                    self.destination.clone(),
                    ts,
                    LIFETIME_MS,
                    self.payload.clone(),
                );
                b.set_custody(&CustodyBlock {
                    custodian: self.peer.clone(),
                });
                Received {
                    from: self.peer.clone(),
                    bytes: Bytes::from(encode(&b)),
                }
            })
            .collect()
    }
}

fn now() -> DtnTime {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    DtnTime::from_unix_ms(ms)
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest_1KiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for batch in [64usize, 1] {
        // A fresh store per batch size, on the real disk (tempdir under $TMPDIR).
        let dir = tempfile::tempdir().expect("tempdir");
        let store = spore::store::Store::open(&dir.path().join("store.redb")).expect("store");
        let cfg = AgentConfig::new("dtn://b/".parse().expect("valid EID"));
        let mut agent = Agent::new(store, cfg).expect("agent");
        let now = now();
        let mut source = Source::new(now);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                || Event::Received(source.batch(batch)),
                |ev| {
                    let actions = agent.handle(now, ev).expect("durable commit");
                    assert!(!actions.is_empty(), "a custody signal per batch");
                    actions
                },
                BatchSize::SmallInput,
            )
        });
        let stats = agent.store().stats().expect("stats");
        eprintln!(
            "batch_{batch}: {} bundles offered; {stats:?}",
            source.next_seq
        );
        assert_eq!(
            stats.held, source.next_seq,
            "every bundle stored, none refused"
        );
    }
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
