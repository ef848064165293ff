//! Loopback throughput of the QUIC convergence layer.
//!
//! Moves N MiB (first argument, default 256) over 127.0.0.1:
//! (a) on one raw quinn unidirectional stream with the CLA's exact TLS and transport
//!     configuration, and
//! (b) as 256 KiB bundles through `Contact::send_bundle`, K in flight (second
//!     argument, default 16; the node reads at most 32 bundle streams at once),
//! and prints MB/s (10^6 bytes per second) for both: the ceiling of the
//! convergence layer's one-stream-per-bundle transfer without any store. Run
//! with `cargo run --release --example quic_throughput -- 256 32`.

mod common;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use common::{mbps, raw_quinn};
use spore::cla::identity::Identity;
use spore::cla::quic::{ClaConfig, QuicCla};
use tokio::sync::Semaphore;

const BUNDLE_BYTES: usize = 256 * 1024;
/// Bundles in flight unless the second argument says otherwise.
const IN_FLIGHT: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse().context("argument: MiB to move")?,
        None => 256,
    };
    let in_flight: usize = match std::env::args().nth(2) {
        Some(a) => a.parse().context("second argument: bundles in flight")?,
        None => IN_FLIGHT,
    };
    anyhow::ensure!(in_flight > 0, "bundles in flight must be at least 1");
    let total_bytes = mib << 20;
    let raw = raw_quinn(total_bytes).await?;
    println!(
        "raw quinn, one uni stream:       {mib} MiB in {raw:.3} s = {:.0} MB/s",
        mbps(total_bytes, raw)
    );
    let cla = via_contact(total_bytes, in_flight).await?;
    println!(
        "Contact::send_bundle 256 KiB x{in_flight}: {mib} MiB in {cla:.3} s = {:.0} MB/s",
        mbps(total_bytes, cla)
    );
    Ok(())
}

/// (b) Seconds to move `total_bytes` as 256 KiB bundles through `Contact`, 16 sends in
/// flight, until the receiver has read the last bundle.
async fn via_contact(total_bytes: u64, in_flight: usize) -> anyhow::Result<f64> {
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
    let slots = Arc::new(Semaphore::new(in_flight));
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
