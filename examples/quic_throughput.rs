//! Loopback throughput of the QUIC convergence layer.
//!
//! Moves N MiB (first argument, default 256) over 127.0.0.1:
//! (a) on one raw quinn unidirectional stream with the CLA's exact TLS and transport
//!     configuration, and
//! (b) as 256 KiB bundles through `Contact::send_bundle`, 16 in flight,
//! and prints MB/s (10^6 bytes per second) for both. Run with
//! `cargo run --release --example quic_throughput -- 256`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use spore::cla::AcceptAnyPeer;
use spore::cla::identity::Identity;
use spore::cla::quic::{ClaConfig, QuicCla, quinn_configs};
use tokio::sync::Semaphore;

const BUNDLE_BYTES: usize = 256 * 1024;
const IN_FLIGHT: usize = 16;
const CHUNK_BYTES: usize = 1 << 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse().context("argument: MiB to move")?,
        None => 256,
    };
    let total_bytes = mib << 20;
    let raw = raw_quinn(total_bytes).await?;
    println!(
        "raw quinn, one uni stream:       {mib} MiB in {raw:.3} s = {:.0} MB/s",
        mbps(total_bytes, raw)
    );
    let cla = via_contact(total_bytes).await?;
    println!(
        "Contact::send_bundle 256 KiB x16: {mib} MiB in {cla:.3} s = {:.0} MB/s",
        mbps(total_bytes, cla)
    );
    Ok(())
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// (a) Seconds to move `total_bytes` on one raw quinn stream, until the receiver has
/// read the last byte.
async fn raw_quinn(total_bytes: u64) -> anyhow::Result<f64> {
    let config = ClaConfig::default();
    let (id_a, id_b) = (Identity::generate()?, Identity::generate()?);
    let (_, client) = quinn_configs(&id_a, "dtn://a/", &config, Arc::new(AcceptAnyPeer))?;
    let (server, _) = quinn_configs(&id_b, "dtn://b/", &config, Arc::new(AcceptAnyPeer))?;
    let b = quinn::Endpoint::server(server, "127.0.0.1:0".parse()?)?;
    let mut a = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    a.set_default_client_config(client);
    let addr_b = b.local_addr()?;
    let receiver = tokio::spawn(async move {
        let conn = b.accept().await.context("no incoming")?.await?;
        let mut stream = conn.accept_uni().await?;
        let mut got = 0u64;
        while let Some(chunk) = stream.read_chunk(usize::MAX, false).await? {
            got += chunk.bytes.len() as u64;
        }
        anyhow::Ok(got)
    });
    let conn = a.connect(addr_b, "spore")?.await?;
    let chunk = Bytes::from(vec![0xa5u8; CHUNK_BYTES]);
    let start = Instant::now();
    let mut stream = conn.open_uni().await?;
    let mut sent = 0u64;
    while sent < total_bytes {
        let n = (total_bytes - sent).min(CHUNK_BYTES as u64) as usize;
        stream.write_chunk(chunk.slice(..n)).await?;
        sent += n as u64;
    }
    stream.finish()?;
    let got = receiver.await??;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(got == total_bytes, "received {got} of {total_bytes} bytes");
    conn.close(0u32.into(), b"done");
    Ok(secs)
}

/// (b) Seconds to move `total_bytes` as 256 KiB bundles through `Contact`, 16 sends in
/// flight, until the receiver has read the last bundle.
async fn via_contact(total_bytes: u64) -> anyhow::Result<f64> {
    let (id_a, id_b) = (Identity::generate()?, Identity::generate()?);
    let a = QuicCla::bind(
        "127.0.0.1:0".parse()?,
        &id_a,
        "dtn://a/",
        ClaConfig::default(),
    )?;
    let b = QuicCla::bind(
        "127.0.0.1:0".parse()?,
        &id_b,
        "dtn://b/",
        ClaConfig::default(),
    )?;
    let (to_b, from_a) = tokio::join!(a.connect(b.local_addr()?), b.accept());
    let (to_b, from_a) = (to_b?, from_a.context("endpoint closed")??);
    let count = total_bytes.div_ceil(BUNDLE_BYTES as u64);
    let receiver = tokio::spawn(async move {
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..count {
            reads.spawn(from_a.accept_bundle_stream().await?.read());
        }
        let mut got = 0u64;
        while let Some(r) = reads.join_next().await {
            got += r??.len() as u64;
        }
        anyhow::Ok(got)
    });
    let bundle = Bytes::from(vec![0x5au8; BUNDLE_BYTES]);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let start = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let mut left = total_bytes;
    while left > 0 {
        let n = left.min(BUNDLE_BYTES as u64) as usize;
        left -= n as u64;
        let permit = slots.clone().acquire_owned().await?;
        let (c, data) = (to_b.clone(), bundle.slice(..n));
        sends.spawn(async move {
            let r = c.send_bundle(data).await;
            drop(permit);
            r
        });
    }
    while let Some(r) = sends.join_next().await {
        r??;
    }
    let got = receiver.await??;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(got == total_bytes, "received {got} of {total_bytes} bytes");
    to_b.close("done");
    Ok(secs)
}
