//! Shared helpers for integration tests that run the real `spore` binary.
#![allow(dead_code)]

use rand::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};

/// The `spore` binary built by cargo for this test run.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spore"))
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
