//! Hot paths of the content module: chunking + hashing, chunk
//! verification, and manifest decoding.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spore::content::{
    Chunker, DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, Manifest, ManifestBuilder, chunk_cid, verify_chunk,
};
use std::hint::black_box;

fn chunking(c: &mut Criterion) {
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut group = c.benchmark_group("content");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("chunk_8MiB_256KiB", |b| {
        b.iter(|| {
            let chunker = Chunker::new(black_box(&data[..]), DEFAULT_CHUNK_SIZE).unwrap();
            chunker.map(|c| c.unwrap().data.len()).sum::<usize>()
        })
    });
    let chunk = &data[..DEFAULT_CHUNK_SIZE as usize];
    let cid = chunk_cid(chunk);
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.bench_function("verify_chunk_256KiB", |b| {
        b.iter(|| verify_chunk(black_box(&cid), black_box(chunk)).unwrap())
    });
    group.finish();
}

fn manifest_decode(c: &mut Criterion) {
    // 4096 chunks of 1 KiB: a 4 MiB file, a ~168 KiB manifest.
    let data: Vec<u8> = (0..4096 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut builder = ManifestBuilder::new("bench.bin", MIN_CHUNK_SIZE);
    for chunk in Chunker::new(&data[..], MIN_CHUNK_SIZE).unwrap() {
        builder.push(&chunk.unwrap());
    }
    let bytes = builder.finish().encode();
    let mut group = c.benchmark_group("content");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("manifest_decode_4096", |b| {
        b.iter(|| Manifest::decode(black_box(&bytes), 4096).unwrap())
    });
    group.finish();
}

criterion_group!(benches, chunking, manifest_decode);
criterion_main!(benches);
