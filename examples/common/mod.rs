//! Code shared by the examples: the raw-quinn baseline with the convergence
//! layer's exact TLS and transport configuration.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use spore::cla::AcceptAnyPeer;
use spore::cla::identity::Identity;
use spore::cla::quic::{ClaConfig, quinn_configs};

/// Size of each `write_chunk` on the raw stream, bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// MB/s (10^6 bytes per second).
pub fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// Seconds to move `total_bytes` over 127.0.0.1 on one raw quinn
/// unidirectional stream (configured by `spore::cla::quic::quinn_configs`
/// with `ClaConfig::default()`), until the receiver has read the last byte.
///
/// # Errors
/// Endpoint, handshake or stream failures, or a short read.
pub async fn raw_quinn(total_bytes: u64) -> anyhow::Result<f64> {
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
