//! Shared helpers for integration tests that run the real `spore` binary.
#![allow(dead_code)]

pub mod raw_peer;
pub mod sync;

use rand::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};

/// The `spore` binary built by cargo for this test run.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spore"))
}

/// Runs `spore ARGS --data-dir DIR`; returns (success, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    cli_stdin(dir, args, b"")
}

/// As [`cli`], with `input` on the command's stdin.
pub fn cli_stdin(dir: &Path, args: &[&str], input: &[u8]) -> (bool, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new(exe())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A command that does not read stdin may exit first: ignore EPIPE.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `spore ARGS --data-dir DIR`, which must succeed; returns stdout.
pub fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = cli(dir, args);
    assert!(ok, "spore {args:?} failed: {stderr}");
    stdout
}

/// Writes `len` pseudo-random bytes (seeded) to `path`.
pub fn random_file(path: &Path, len: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    std::fs::write(path, &buf).unwrap();
}

/// Counter `name` from a status JSON (0 if absent).
pub fn counter(status: &serde_json::Value, name: &str) -> u64 {
    status["counters"][name].as_u64().unwrap_or(0)
}

/// A UDP relay on 127.0.0.1 that forwards to `target` adding `delay` one
/// way (each direction), and the runtime it runs on (drop both to stop it).
pub fn delaying_relay(
    target: std::net::SocketAddr,
    delay: std::time::Duration,
) -> (tokio::runtime::Runtime, spore::chaos::ChaosRelay) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = spore::chaos::ChaosConfig::clean();
    cfg.delay = delay;
    let listen = "127.0.0.1:0".parse().unwrap();
    let relay = rt
        .block_on(spore::chaos::ChaosRelay::start(listen, target, cfg))
        .unwrap();
    (rt, relay)
}
