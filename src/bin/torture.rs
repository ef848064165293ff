//! `spore-torture`: crash torture for the spore node (issue 7, crash safety).
//!
//! Runs three real `spore node` processes on 127.0.0.1 in a line A -> B -> C
//! (A dials B, B dials C; B is the relay). A sender thread submits seeded
//! random files (0..3 MiB) to A for `dtn://c/files` while the main thread
//! runs kill cycles: pick a random node, wait 0..1.5 s, SIGKILL it, wait
//! 0..0.5 s, restart it on the same data directory and QUIC port. At the
//! end it stops killing, lets the network drain (bounded), and checks the
//! promise: every acknowledged file is in C's inbox exactly once with the
//! right SHA-256, C's status shows each manifest delivered once, no extra
//! files, no node panicked, and every `store.redb` opens cleanly after the
//! final stop.
//!
//! The seed is printed first. It fixes every random decision (file sizes
//! and contents, victims, delays); the interleaving with the nodes' own
//! timing is not reproducible, so a failing seed is re-run a few times.
//!
//! Exit status: 0 if the promise held, 1 on loss, duplicate, extra file,
//! timeout, panic, or a store that does not open; 2 on a setup error.

#[path = "torture/check.rs"]
mod check;
#[path = "torture/workload.rs"]
mod workload;

use anyhow::Context;
use clap::Parser;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use spore::harness::{NodeProcess, wait_for};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workload::{Attempt, SenderPlan, Shared, lock};

/// Upper bound of the delay before a kill, ms (exclusive).
const MAX_KILL_DELAY_MS: u64 = 1500;
/// Upper bound of the time a killed node stays down, ms (exclusive).
const MAX_DOWN_MS: u64 = 500;
/// How long the run waits, after everything arrived, for the relays to
/// release custody and for late duplicates to show up.
const SETTLE: Duration = Duration::from_secs(3);
/// Node names, in line order.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Crash torture: SIGKILL random spore nodes of an A -> B -> C line while
/// files flow, then check that nothing acknowledged was lost or duplicated.
#[derive(Parser, Debug)]
#[command(name = "spore-torture", version)]
struct Args {
    /// RNG seed (default: random). Always printed first.
    #[arg(long)]
    seed: Option<u64>,
    /// Kill cycles.
    #[arg(long, default_value_t = 20)]
    cycles: u32,
    /// Hard bound on the whole run, seconds.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Files to submit (default: one per cycle, at least 1).
    #[arg(long)]
    files: Option<u32>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Work directory (default: a fresh temporary directory, removed on
    /// success and kept on failure).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the work directory even on success.
    #[arg(long)]
    keep: bool,
}

/// What the run prints at the end.
#[derive(Debug, Serialize)]
struct Summary {
    seed: u64,
    cycles_planned: u32,
    cycles_done: u32,
    kills: [u32; 3],
    files_attempted: usize,
    files_acknowledged: usize,
    files_delivered: usize,
    unacked_delivered: usize,
    lost: usize,
    duplicated: usize,
    verdict: check::Verdict,
    held_bytes_end: [Option<u64>; 3],
    stores: Vec<String>,
    panics: Vec<String>,
    timeout: Option<String>,
    elapsed_s: f64,
    work_dir: String,
    ok: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| rand::rng().next_u64());
    println!("seed: {seed}");
    match run(&args, seed) {
        Ok(s) => {
            print_summary(&s, args.json);
            if s.ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("spore-torture FAILED (seed {seed}); logs in {}", s.work_dir);
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("spore-torture setup error (seed {seed}): {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The `spore` binary next to this one.
fn spore_exe() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let exe = me.with_file_name(format!("spore{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(exe.exists(), "{} not found (build it)", exe.display());
    Ok(exe)
}

fn run(args: &Args, seed: u64) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let (tmp, root) = work_root(args.dir.as_deref())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nodes = start_line(&root)?;
    let shared = Arc::new(Shared {
        cycle: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        ledger: Mutex::new(Vec::new()),
    });
    let plan = SenderPlan {
        files: args.files.unwrap_or(args.cycles).max(1),
        cycles: args.cycles,
        seed: rng.next_u64(),
        run_seed: seed,
        a_dir: nodes[0].dir.clone(),
        outbox: root.join("outbox"),
        deadline,
    };
    let sender = {
        let shared = shared.clone();
        std::thread::spawn(move || workload::run_sender(plan, shared))
    };

    let (kills, cycles_done, mut timeout) =
        kill_phase(&mut nodes, &mut rng, args.cycles, &shared, sender, deadline);
    let ledger: Vec<Attempt> = lock(&shared.ledger).clone();
    if timeout.is_none() {
        if let Err(e) = drain(&nodes, &ledger, deadline) {
            timeout = Some(format!("{e:#}"));
        }
    }
    let statuses: Vec<_> = nodes
        .iter()
        .map(|n| n.status(None).unwrap_or_default())
        .collect();
    let held = held_bytes(&nodes);
    for n in &mut nodes {
        n.stop();
    }
    let stores = open_stores(&root);
    let panics = find_panics(&root);
    let (inbox, partials) = check::read_inbox(&root.join("c").join("inbox"))?;
    let verdict = check::verify(&ledger, &inbox, partials, &statuses[2], &statuses[..2]);
    let ok = verdict.ok()
        && timeout.is_none()
        && panics.is_empty()
        && stores.iter().all(|s| !s.contains("ERROR"));
    let work_dir = match tmp {
        Some(t) if !ok || args.keep => t.keep().display().to_string(),
        Some(t) => format!("{} (removed)", t.path().display()), // removed on drop
        None => root.display().to_string(),
    };
    Ok(Summary {
        seed,
        cycles_planned: args.cycles,
        cycles_done,
        kills,
        files_attempted: ledger.len(),
        files_acknowledged: ledger.iter().filter(|a| a.acked()).count(),
        files_delivered: verdict.delivered,
        unacked_delivered: verdict.unacked_delivered,
        lost: verdict.lost.len(),
        duplicated: verdict.duplicated.len(),
        verdict,
        held_bytes_end: held,
        stores,
        panics,
        timeout,
        elapsed_s: started.elapsed().as_secs_f64(),
        work_dir,
        ok,
    })
}

/// The work directory: `dir`, or a fresh temporary one (returned so that
/// the caller decides whether to keep it).
fn work_root(dir: Option<&Path>) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Ok((None, d.to_path_buf()))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("spore-torture-")
                .tempdir()?;
            let p = t.path().to_path_buf();
            Ok((Some(t), p))
        }
    }
}

/// Starts A, B and C in `root/{a,b,c}`; A dials B, B dials C.
fn start_line(root: &Path) -> anyhow::Result<Vec<NodeProcess>> {
    let exe = spore_exe()?;
    let mut nodes = Vec::new();
    for n in NAMES {
        nodes.push(NodeProcess::start(&exe, &root.join(n), n, &[])?);
    }
    nodes[0].add_peer(nodes[1].quic_addr())?;
    nodes[1].add_peer(nodes[2].quic_addr())?;
    Ok(nodes)
}

/// Runs the kill cycles, then lets the sender finish; returns kills per
/// node, cycles completed and the first error (deadline, failed restart,
/// sender trouble).
fn kill_phase(
    nodes: &mut [NodeProcess],
    rng: &mut ChaCha8Rng,
    cycles: u32,
    shared: &Shared,
    sender: std::thread::JoinHandle<anyhow::Result<()>>,
    deadline: Instant,
) -> ([u32; 3], u32, Option<String>) {
    let mut kills = [0u32; 3];
    let mut error = None;
    if let Err(e) = kill_cycles(nodes, rng, cycles, shared, deadline, &mut kills) {
        error = Some(format!("kill cycles: {e:#}"));
    }
    let done = shared.cycle.load(Ordering::SeqCst);
    // Release every remaining file of the sender.
    shared.cycle.store(u32::MAX, Ordering::SeqCst);
    if let Err(e) = join_sender(sender, shared, deadline) {
        error.get_or_insert(format!("sender: {e:#}"));
    }
    (kills, done, error)
}

/// Runs the kill cycles, counting kills per node in `kills` and completed
/// cycles in `shared.cycle`.
///
/// # Errors
/// If the deadline passes or a killed node does not come back (which is
/// itself a finding: its store or start-up failed after a crash).
fn kill_cycles(
    nodes: &mut [NodeProcess],
    rng: &mut ChaCha8Rng,
    cycles: u32,
    shared: &Shared,
    deadline: Instant,
    kills: &mut [u32; 3],
) -> anyhow::Result<()> {
    for i in 0..cycles {
        anyhow::ensure!(
            Instant::now() < deadline,
            "deadline passed after {i} cycles"
        );
        let delay = rng.random_range(0..MAX_KILL_DELAY_MS);
        let victim = rng.random_range(0..nodes.len());
        let down = rng.random_range(0..MAX_DOWN_MS);
        std::thread::sleep(Duration::from_millis(delay));
        nodes[victim].kill();
        kills[victim] += 1;
        std::thread::sleep(Duration::from_millis(down));
        nodes[victim]
            .restart()
            .with_context(|| format!("restart of {} in cycle {i}", NAMES[victim]))?;
        shared.cycle.store(i + 1, Ordering::SeqCst);
        if (i + 1) % 10 == 0 {
            let acked = lock(&shared.ledger).iter().filter(|a| a.acked()).count();
            eprintln!(
                "cycle {}/{cycles}: kills {kills:?}, acknowledged {acked}",
                i + 1
            );
        }
    }
    Ok(())
}

/// Waits for the sender thread until the deadline.
fn join_sender(
    sender: std::thread::JoinHandle<anyhow::Result<()>>,
    shared: &Shared,
    deadline: Instant,
) -> anyhow::Result<()> {
    while !sender.is_finished() {
        if Instant::now() > deadline {
            shared.stop.store(true, Ordering::SeqCst);
            anyhow::bail!("sender still busy at the deadline");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender thread panicked"))?
}

/// Waits until every acknowledged file is written at C, then for A and B
/// to hold nothing (bounded by [`SETTLE`] beyond that), then [`SETTLE`]
/// more for late duplicates.
///
/// # Errors
/// If the acknowledged files are not all written by the deadline.
fn drain(nodes: &[NodeProcess], ledger: &[Attempt], deadline: Instant) -> anyhow::Result<()> {
    let want: Vec<&str> = ledger
        .iter()
        .filter_map(|a| a.manifest_cid.as_deref())
        .collect();
    let left = deadline.saturating_duration_since(Instant::now());
    wait_for("every acknowledged file written at C", left, || {
        let s = nodes[2].status(None)?;
        let written: std::collections::BTreeSet<&str> = s["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["path"].is_string())
            .filter_map(|f| f["cid"].as_str())
            .collect();
        Ok(want.iter().all(|c| written.contains(c)).then_some(()))
    })?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .min(SETTLE * 5);
    let _ = wait_for("A and B to release custody", left, || {
        Ok(held_bytes::<2>(&nodes[..2])
            .iter()
            .all(|h| *h == Some(0))
            .then_some(()))
    });
    std::thread::sleep(SETTLE.min(deadline.saturating_duration_since(Instant::now())));
    Ok(())
}

/// `held_bytes` of each node (None if its API does not answer).
fn held_bytes<const N: usize>(nodes: &[NodeProcess]) -> [Option<u64>; N] {
    let mut out = [None; N];
    for (o, n) in out.iter_mut().zip(nodes) {
        *o = n
            .client()
            .and_then(|c| c.get("/api/v1/status?limit=0"))
            .ok()
            .and_then(|s| s["held_bytes"].as_u64());
    }
    out
}

/// Opens every stopped node's `store.redb` directly, reads its stats and
/// checks its invariants (`spore doctor`); one line per node, containing
/// `ERROR` if it does not open or a problem is found.
fn open_stores(root: &Path) -> Vec<String> {
    NAMES
        .iter()
        .map(|n| {
            let path = root.join(n).join("store.redb");
            let checked = spore::store::Store::open(&path)
                .and_then(|s| Ok((s.stats()?, spore::store::check::check(&s)?)));
            match checked {
                Ok((st, report)) => {
                    let kinds: Vec<&str> = report.problems.iter().map(|p| p.kind()).collect();
                    let verdict = if kinds.is_empty() { "" } else { " ERROR problems" };
                    format!(
                        "{n}: opens; records {} held {} chunks {} delivered {}; doctor: {kinds:?}{verdict}",
                        st.records, st.held, st.chunks, st.delivered
                    )
                }
                Err(e) => format!("{n}: ERROR {e}"),
            }
        })
        .collect()
}

/// Lines mentioning a panic in the node logs (`<dir>.log`).
fn find_panics(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for n in NAMES {
        let log = root.join(format!("{n}.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        out.extend(
            text.lines()
                .filter(|l| l.contains("panicked"))
                .map(|l| format!("{n}: {l}")),
        );
    }
    out
}

fn print_summary(s: &Summary, json: bool) {
    if json {
        match serde_json::to_string_pretty(s) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("cannot render the summary: {e}"),
        }
        return;
    }
    println!(
        "cycles {}/{}  kills a={} b={} c={}",
        s.cycles_done, s.cycles_planned, s.kills[0], s.kills[1], s.kills[2]
    );
    println!(
        "files attempted {}  acknowledged {}  delivered {}  (unacknowledged but delivered {})",
        s.files_attempted, s.files_acknowledged, s.files_delivered, s.unacked_delivered
    );
    println!(
        "lost {}  duplicated {}  corrupt {}  extra {}  still held at A/B {}  stale partial files {}",
        s.lost,
        s.duplicated,
        s.verdict.corrupt.len(),
        s.verdict.extra.len(),
        s.verdict.undelivered_held.len(),
        s.verdict.stale_partials
    );
    println!("held bytes at the end (a, b, c): {:?}", s.held_bytes_end);
    for line in s
        .stores
        .iter()
        .chain(&s.panics)
        .chain(&s.verdict.status_problems)
    {
        println!("{line}");
    }
    for (what, list) in [("lost", &s.verdict.lost), ("extra", &s.verdict.extra)] {
        for name in list {
            println!("{what}: {name}");
        }
    }
    if let Some(t) = &s.timeout {
        println!("timeout: {t}");
    }
    println!("work dir: {}", s.work_dir);
    println!(
        "elapsed {:.1} s  seed {}  {}",
        s.elapsed_s,
        s.seed,
        if s.ok { "OK" } else { "FAILED" }
    );
}
