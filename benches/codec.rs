//! Encode and decode throughput of the bundle codec (RFC 9171 CBOR) for
//! 1 KiB and 256 KiB payloads, CRC-32C on every block; `decode` copies the
//! block data out of a byte slice, `decode_shared` slices it from a `Bytes`.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spore::bundle::blocks::HopCount;
use spore::bundle::codec::{DecodeLimits, decode, decode_shared, encode};
use spore::bundle::{Bundle, CreationTimestamp, DtnTime};
use std::hint::black_box;

fn bundle(payload_bytes: usize) -> Bundle {
    let mut b = Bundle::new(
        "dtn://field/".parse().unwrap(),
        "dtn://base/files".parse().unwrap(),
        CreationTimestamp {
            time: DtnTime(800_000_000_000),
            sequence: 1,
        },
        86_400_000,
        Bytes::from(vec![0xa5; payload_bytes]),
    );
    b.set_hop_count(HopCount {
        limit: 32,
        count: 3,
    });
    b.set_bundle_age_ms(1_000);
    b.set_previous_node(&"dtn://relay/".parse().unwrap());
    b
}

fn codec(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    for (label, size) in [("1KiB", 1024), ("256KiB", 256 * 1024)] {
        let b = bundle(size);
        let bytes = encode(&b);
        let mut g = c.benchmark_group(format!("codec_{label}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("encode", |bench| bench.iter(|| encode(black_box(&b))));
        g.bench_function("decode", |bench| {
            bench.iter(|| decode(black_box(&bytes), &limits).unwrap())
        });
        // What a node does with a received bundle: blocks share its buffer.
        let shared = Bytes::from(bytes.clone());
        g.bench_function("decode_shared", |bench| {
            bench.iter(|| decode_shared(black_box(&shared), &limits).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
