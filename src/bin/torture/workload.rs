//! The workload: a sender thread that writes seeded random files and
//! submits each to node A through its local API, and the ledger of what was
//! attempted and what was acknowledged.
//!
//! A file counts as acknowledged only when `POST /api/v1/send` answered
//! with its manifest CID: the node answers after every bundle of the file
//! is durable. A submission that failed (A killed during the request, or A
//! down) is recorded as unacknowledged: its bundles may or may not exist,
//! so it may arrive at C at most once but need not. A failed name is never
//! retried (a retry would be a second, legitimate submission of the same
//! content and would blur the duplicate check).

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use spore::client::Client;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest file size, bytes (exclusive): 3 MiB.
const MAX_FILE_BYTES: usize = 3 << 20;
/// One file in this many is small (under 4 KiB, possibly empty), so that
/// the single-chunk and empty-file paths are exercised too.
const SMALL_FILE_ONE_IN: u32 = 8;
/// Upper bound of the random pause before each submission, ms
/// (exclusive), so that submissions overlap kills of A.
const MAX_SUBMIT_JITTER_MS: u64 = 1500;
/// Destination of every file.
pub const DEST: &str = "dtn://c/files";

/// One submission attempt.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// Unique file name (`t<seed>-<index>.bin`).
    pub name: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Manifest CID if acknowledged.
    pub manifest_cid: Option<String>,
    /// Why the submission failed, if it did.
    pub error: Option<String>,
}

impl Attempt {
    /// Whether node A acknowledged the file.
    pub fn acked(&self) -> bool {
        self.manifest_cid.is_some()
    }
}

/// State shared between the kill loop and the sender thread.
pub struct Shared {
    /// Kill cycles completed so far.
    pub cycle: AtomicU32,
    /// Set when the run must end now (deadline or error).
    pub stop: AtomicBool,
    /// Every attempt, in submission order.
    pub ledger: Mutex<Vec<Attempt>>,
}

/// What the sender thread needs.
pub struct SenderPlan {
    /// Files to submit in total.
    pub files: u32,
    /// Kill cycles planned (files are spread evenly over them).
    pub cycles: u32,
    /// RNG seed of the workload.
    pub seed: u64,
    /// Seed printed by the run (goes into file names).
    pub run_seed: u64,
    /// Node A's data directory (the API is found through `api.json`).
    pub a_dir: PathBuf,
    /// Where the source files are written.
    pub outbox: PathBuf,
    /// Hard deadline of the run.
    pub deadline: Instant,
}

/// Runs the sender until all files are attempted, `stop` is set, or the
/// deadline passes. File `j` is submitted once `cycle >= j * cycles / files`,
/// after a random pause of up to [`MAX_SUBMIT_JITTER_MS`].
///
/// # Errors
/// Only local I/O errors (writing the source files); API errors are
/// recorded in the ledger.
pub fn run_sender(plan: SenderPlan, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    std::fs::create_dir_all(&plan.outbox)?;
    for j in 0..plan.files {
        let due = (u64::from(j) * u64::from(plan.cycles) / u64::from(plan.files.max(1))) as u32;
        while shared.cycle.load(Ordering::SeqCst) < due {
            if shared.stop.load(Ordering::SeqCst) || Instant::now() > plan.deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let jitter = rng.random_range(0..MAX_SUBMIT_JITTER_MS);
        std::thread::sleep(Duration::from_millis(jitter));
        let (name, content) = make_file(&mut rng, plan.run_seed, j);
        let path = plan.outbox.join(&name);
        std::fs::write(&path, &content)?;
        if !wait_api(&plan.a_dir, &shared, plan.deadline) {
            return Ok(());
        }
        let mut attempt = Attempt {
            name,
            size_bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(&content)),
            manifest_cid: None,
            error: None,
        };
        match submit(&plan.a_dir, &path) {
            Ok(cid) => attempt.manifest_cid = Some(cid),
            Err(e) => attempt.error = Some(format!("{e:#}")),
        }
        // The content is in the ledger (hash); the source file is no longer needed.
        let _ = std::fs::remove_file(&path);
        lock(&shared.ledger).push(attempt);
    }
    Ok(())
}

/// Locks `m`, ignoring poisoning (a panicking thread already failed the run).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file name and seeded random content of random size.
fn make_file(rng: &mut ChaCha8Rng, run_seed: u64, index: u32) -> (String, Vec<u8>) {
    let size = if rng.random_range(0..SMALL_FILE_ONE_IN) == 0 {
        rng.random_range(0..4096)
    } else {
        rng.random_range(0..MAX_FILE_BYTES)
    };
    let mut content = vec![0u8; size];
    rng.fill_bytes(&mut content);
    (format!("t{run_seed}-{index:04}.bin"), content)
}

/// Waits (bounded) until A's API answers a status request; false if the
/// run is stopping.
fn wait_api(a_dir: &Path, shared: &Shared, deadline: Instant) -> bool {
    loop {
        if shared.stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            return false;
        }
        let up = Client::open(a_dir)
            .and_then(|c| c.get("/api/v1/status?limit=0"))
            .is_ok();
        if up {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `POST /api/v1/send` of `path` to [`DEST`]; the manifest CID.
fn submit(a_dir: &Path, path: &Path) -> anyhow::Result<String> {
    let path = std::fs::canonicalize(path)?;
    let v = Client::open(a_dir)?.post("/api/v1/send", &json!({ "path": path, "to": DEST }))?;
    v["manifest_cid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no manifest CID in {v}"))
}
