//! The link-chaos campaign of issue 7: a file goes A -> B -> C through two
//! [`ChaosRelay`]s (A–B and B–C), with real `spore node` processes on
//! 127.0.0.1, and C's copy is verified by SHA-256.
//!
//! ```text
//!   A (quic) <- relay1 <- B dials -> relay2 -> C (quic)
//! ```
//! B dials both relays (the links go through the chaos both ways); A and C
//! dial nobody. Test and campaign support (uses `anyhow`), like
//! [`crate::harness`].

use super::{ChaosConfig, ChaosRelay, ChaosStats};
use crate::harness::{NodeProcess, count_states, wait_for};
use anyhow::{Context, bail};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the file is sent (C's file service).
pub const DEST: &str = "dtn://c/files";

/// One campaign run.
#[derive(Clone, Debug)]
pub struct TransferConfig {
    /// The `spore` executable.
    pub exe: PathBuf,
    /// Scratch directory (node data dirs, logs, the source file).
    pub root: PathBuf,
    /// File size, bytes.
    pub size_bytes: u64,
    /// Seed of the file contents; relay `i` uses `link.seed + i`.
    pub seed: u64,
    /// What both relays do (the seed is offset per relay).
    pub link: ChaosConfig,
    /// Give up after this long (from the send).
    pub timeout: Duration,
    /// Extra `spore node` flags for all three nodes.
    pub node_flags: Vec<String>,
}

/// What a run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TransferReport {
    /// File size, bytes.
    pub size_bytes: u64,
    /// Bundles A created (chunks + manifest).
    pub bundles: usize,
    /// Time for `spore send` at A (chunk + store), ms.
    pub send_ms: u128,
    /// From the send's answer to C's verified file, ms.
    pub transfer_ms: u128,
    /// SHA-256 of the source, hex.
    pub sha256: String,
    /// C's copy has the same SHA-256.
    pub verified: bool,
    /// Files in C's inbox at the end (1 = delivered exactly once).
    pub inbox_files: usize,
    /// Relay A–B.
    pub relay_ab: ChaosStats,
    /// Relay B–C.
    pub relay_bc: ChaosStats,
}

/// Writes `len` seeded pseudo-random bytes to `path`, 1 MiB at a time;
/// returns their SHA-256.
///
/// # Errors
/// I/O errors.
pub fn write_random_file(path: &Path, len: u64, seed: u64) -> anyhow::Result<[u8; 32]> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        h.update(&buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(h.finalize().into())
}

/// SHA-256 of a file, streamed.
///
/// # Errors
/// I/O errors.
pub fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

/// Runs the campaign: starts A, B, C and two relays on a private tokio
/// runtime, sends the file from A to [`DEST`], waits (≤ `timeout`) for C to
/// write it, and compares hashes. Progress goes to stderr every 10 s when
/// `verbose`.
///
/// # Errors
/// Start-up failures, a send refused by A, or the timeout (the message
/// says how far the transfer got).
pub fn run(cfg: &TransferConfig, verbose: bool) -> anyhow::Result<TransferReport> {
    std::fs::create_dir_all(&cfg.root)?;
    let src = cfg.root.join("payload.bin");
    let sha = write_random_file(&src, cfg.size_bytes, cfg.seed)?;
    let flags: Vec<&str> = cfg.node_flags.iter().map(String::as_str).collect();
    let start = |n: &str| NodeProcess::start(&cfg.exe, &cfg.root.join(n), n, &flags);
    let (a, b, c) = (start("a")?, start("b")?, start("c")?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let any = "127.0.0.1:0".parse()?;
    let mut l1 = cfg.link.clone();
    l1.seed = cfg.link.seed.wrapping_add(1);
    let mut l2 = cfg.link.clone();
    l2.seed = cfg.link.seed.wrapping_add(2);
    let r1 = rt.block_on(ChaosRelay::start(any, a.quic_addr(), l1))?;
    let r2 = rt.block_on(ChaosRelay::start(any, c.quic_addr(), l2))?;
    let t0 = Instant::now();
    let cid = a.send(&src, DEST).context("send at A")?;
    let send_ms = t0.elapsed().as_millis();
    let bundles = count_states(&a.status(None)?, Some(DEST)).values().sum();
    b.add_peer(r1.local_addr())?;
    b.add_peer(r2.local_addr())?;
    let t1 = Instant::now();
    let mut last_report = Instant::now();
    let found = wait_for("C to write the file", cfg.timeout, || {
        if verbose && last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            progress(&a, &b, &c, &r1, &r2, t1);
        }
        let s = c.status(Some(&cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(PathBuf::from))
    });
    let path = match found {
        Ok(p) => p,
        Err(e) => {
            progress(&a, &b, &c, &r1, &r2, t1);
            bail!("{e:#}");
        }
    };
    let transfer_ms = t1.elapsed().as_millis();
    let verified = sha256_file(&path)? == sha;
    let inbox_files = std::fs::read_dir(c.dir.join("inbox"))?.count();
    Ok(TransferReport {
        size_bytes: cfg.size_bytes,
        bundles,
        send_ms,
        transfer_ms,
        sha256: hex::encode(sha),
        verified,
        inbox_files,
        relay_ab: r1.stats(),
        relay_bc: r2.stats(),
    })
}

fn progress(
    a: &NodeProcess,
    b: &NodeProcess,
    c: &NodeProcess,
    r1: &ChaosRelay,
    r2: &ChaosRelay,
    t: Instant,
) {
    let st = |n: &NodeProcess| {
        n.status(None)
            .map(|s| format!("{:?}", count_states(&s, Some(DEST))))
            .unwrap_or_else(|e| format!("({e})"))
    };
    eprintln!(
        "[{:>5.0} s] A {} | B {} | C {}\n          relay A-B {:?}\n          relay B-C {:?}",
        t.elapsed().as_secs_f64(),
        st(a),
        st(b),
        st(c),
        r1.stats(),
        r2.stats()
    );
}
