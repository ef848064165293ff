//! Durable ingest rate of the sans-IO core: 1 KiB custody bundles from a
//! peer, fed to `Agent::handle` as `Event::Received` batches over a real
//! redb file (fsync on every commit).
//!
//! A batch of 64 is one group commit, as the node's agent thread merges
//! them (`MAX_GROUP` in `src/node/actions.rs`); a batch of 1 is one fsync
//! per bundle. Throughput is in bundles per second. Encoding happens in the
//! untimed set-up: the node receives bundles already encoded.
//!
//! A second group measures what the receiving node of a file transfer does
//! per chunk: 256 KiB chunk bundles (distinct payloads, content block with
//! the chunk CID) addressed to this node's file service, in batches of 16
//! (one contact window) and 4 (a typical group in a one-hop transfer):
//! decode, SHA-256 check of the CID, chunk stored, durable commit.
//!
//! Run with `cargo bench --bench ingest`.

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spore::agent::{Agent, AgentConfig, Event, Received};
use spore::bundle::blocks::CustodyBlock;
use spore::bundle::codec::encode;
use spore::bundle::{Bundle, CreationTimestamp, DtnTime, Eid};
use spore::content::chunk_cid;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SMALL_BYTES: usize = 1024;
const CHUNK_BYTES: usize = 256 * 1024;
const LIFETIME_MS: u64 = 24 * 3600 * 1000;

/// Makes encoded custody bundles from `dtn://a/` to `dtn://c/files`, each
/// with a fresh creation sequence number so none is a duplicate.
struct Source {
    peer: Eid,
    destination: Eid,
    created: DtnTime,
    next_seq: u64,
    payload: Bytes,
    /// Set the content block to the payload's chunk CID (payloads then
    /// differ per bundle, so no chunk is deduplicated).
    chunks: bool,
}

impl Source {
    fn new(created: DtnTime, destination: &str, payload_bytes: usize, chunks: bool) -> Source {
        Source {
            peer: "dtn://a/".parse().expect("valid EID"),
            destination: destination.parse().expect("valid EID"),
            created,
            next_seq: 0,
            payload: Bytes::from(vec![0x5a; payload_bytes]),
            chunks,
        }
    }

    fn payload(&self) -> Bytes {
        if !self.chunks {
            return self.payload.clone();
        }
        let mut p = self.payload.to_vec();
        p[..8].copy_from_slice(&self.next_seq.to_be_bytes());
        Bytes::from(p)
    }

    fn batch(&mut self, n: usize) -> Vec<Received> {
        (0..n)
            .map(|_| {
                let payload = self.payload();
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
                    payload.clone(),
                );
                if self.chunks {
                    b.set_content_cid(&chunk_cid(&payload).to_bytes());
                }
                b.set_custody(&CustodyBlock {
                    custodian: self.peer.clone(),
                    transmission: None,
                });
                Received::new(self.peer.clone(), Bytes::from(encode(&b)))
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

/// An agent `dtn://b/` over a fresh redb file in `dir`.
fn agent(dir: &tempfile::TempDir) -> Agent {
    let store = spore::store::Store::open(&dir.path().join("store.redb")).expect("store");
    let mut cfg = AgentConfig::new("dtn://b/".parse().expect("valid EID"));
    // One peer sends everything: its share of the default bundle quota
    // (50 % of 1 000 000) is less than criterion offers on a fast machine.
    cfg.quota_shares.quota_bundles = 10_000_000;
    Agent::new(store, cfg).expect("agent")
}

/// Benchmarks `Event::Received` batches of `batch` bundles from `source`,
/// each batch one durable commit; checks that every bundle was accepted
/// (`kept(stats)` counts them).
fn bench_batches(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    batch: usize,
    mut source: Source,
    kept: fn(&spore::store::StoreStats) -> u64,
) {
    // A fresh store per case, on the real disk (tempdir under $TMPDIR).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent = agent(&dir);
    let now = source.created;
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
        kept(&stats),
        source.next_seq,
        "every bundle kept, none refused"
    );
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest_1KiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for batch in [64usize, 1] {
        let source = Source::new(now(), "dtn://c/files", SMALL_BYTES, false);
        bench_batches(&mut g, batch, source, |s| s.held);
    }
    g.finish();
}

fn ingest_chunks(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest_256KiB_chunk");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for batch in [16usize, 4] {
        let source = Source::new(now(), "dtn://b/files", CHUNK_BYTES, true);
        bench_batches(&mut g, batch, source, |s| s.chunks);
    }
    g.finish();
}

criterion_group!(benches, ingest, ingest_chunks);
criterion_main!(benches);
