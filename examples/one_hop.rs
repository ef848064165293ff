//! One-hop file transfer through two real spore nodes versus raw quinn.
//!
//! Moves N MiB (first argument, default 256) over 127.0.0.1:
//! (a) on one raw quinn unidirectional stream with the convergence layer's
//!     exact TLS and transport configuration (`examples/common`), and
//! (b) as a file from node A to node C: two `spore node` processes, A dials
//!     C; the clock runs from the start of `POST /api/v1/send` at A until
//!     C's status shows the file's inbox path. That span includes chunking
//!     and hashing the file and durably storing every chunk bundle at A
//!     (the `send` call returns only then), the transfer with custody, and
//!     reassembly at C. The received file's SHA-256 is checked.
//!
//! It prints MB/s (10^6 bytes per second) for both and the ratio, the CPU
//! seconds of the contact transfer against raw quinn's, and, to
//! show where the time goes: the phases, the rate of custody transfers
//! (A's `bundles_sent` for C, sampled every 100 ms), and, on Linux, each
//! node's threads' time on a CPU and waiting for one (`/proc/PID/task/*/schedstat`)
//! during the transfer.
//!
//! Extra `spore node` flags for both nodes may be given in `$SPORE_NODE_ARGS`
//! (whitespace-separated, e.g. `--chunk-size 1048576`).
//!
//! Build the node first; it is found next to the examples directory
//! (`$CARGO_TARGET_DIR/release/spore`) or at `$SPORE_EXE`:
//! `cargo build --release --bin spore && cargo run --release --example one_hop -- 256`.

mod common;

use anyhow::{Context, bail, ensure};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use spore::harness::{NodeProcess, wait_for};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest wait for the file to arrive, per MiB (plus 30 s).
const TIMEOUT_PER_MIB: Duration = Duration::from_secs(2);
/// Period of the progress sampler and of the arrival poll.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

fn main() -> anyhow::Result<()> {
    let mib: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse().context("argument: MiB to move")?,
        None => 256,
    };
    let total_bytes = mib << 20;
    let rt = tokio::runtime::Runtime::new()?;
    let me = std::process::id();
    let before = thread_times(Some(me));
    let raw = rt.block_on(common::raw_quinn(total_bytes))?;
    let raw_cpu = before_after(&before, &thread_times(Some(me)));
    drop(rt);
    let raw_mbps = common::mbps(total_bytes, raw);
    println!("raw quinn, one uni stream: {mib} MiB in {raw:.3} s = {raw_mbps:.1} MB/s");
    println!(
        "  {}",
        thread_report("raw quinn (both ends)", &raw_cpu, raw)
    );
    let t = via_nodes(&spore_exe()?, total_bytes)?;
    let spore_mbps = common::mbps(total_bytes, t.total_s);
    println!(
        "spore one hop A->C:        {mib} MiB in {:.3} s = {spore_mbps:.1} MB/s",
        t.total_s
    );
    println!(
        "  phases: send at A (chunk + hash + durable store) {:.3} s; \
         first custody transfer at {:.3} s; last at {:.3} s (±0.1 s); file in C inbox at {:.3} s; \
         status path at {:.3} s",
        t.send_s, t.first_transfer_s, t.last_transfer_s, t.file_s, t.total_s
    );
    println!(
        "  custody transfers: {} bundles, {:.0}/s while A was storing, {:.0}/s after",
        t.bundles, t.rate_during_send, t.rate_after_send
    );
    for line in &t.threads {
        println!("  {line}");
    }
    let (contact_s, contact_cpu) = contact_transfer(&spore_exe()?, total_bytes)?;
    let raw_cpu_s = cpu_seconds(&raw_cpu);
    let contact_mbps = common::mbps(total_bytes, contact_s);
    println!(
        "spore contact transfer (file already stored at A, timed from contact up to the file at C): \
         {mib} MiB in {contact_s:.3} s = {contact_mbps:.1} MB/s"
    );
    println!(
        "RESULT mib={mib} raw_mbps={raw_mbps:.1} spore_mbps={spore_mbps:.1} ratio={:.3} \
         contact_mbps={contact_mbps:.1} contact_ratio={:.3} raw_cpu_s={raw_cpu_s:.3} \
         contact_cpu_s={contact_cpu:.3} contact_cpu_per_raw={:.2}",
        spore_mbps / raw_mbps,
        contact_mbps / raw_mbps,
        contact_cpu / raw_cpu_s
    );
    Ok(())
}

/// The DTN case: the file is already durable at A when the contact with C
/// comes up. Returns the seconds from `add_peer` until the file is in C's
/// inbox (SHA-256 checked), and the CPU seconds both nodes used meanwhile.
///
/// The CPU seconds vary less than the wall time on a shared machine, so
/// `contact_cpu_per_raw` (against raw quinn's, both ends) shows whether a
/// change made the transfer cheaper even when the wall time is noise.
fn contact_transfer(exe: &Path, total_bytes: u64) -> anyhow::Result<(f64, f64)> {
    let tmp = tempfile::tempdir()?;
    let a = NodeProcess::start(exe, &tmp.path().join("a"), "a", &[])?;
    let c = NodeProcess::start(exe, &tmp.path().join("c"), "c", &[])?;
    let file = tmp.path().join("payload.bin");
    let digest = write_random_file(&file, total_bytes)?;
    a.send(&file, "dtn://c/files")?;
    let inbox_file = c.dir.join("inbox").join("payload.bin");
    let timeout = TIMEOUT_PER_MIB * (total_bytes >> 20) as u32 + Duration::from_secs(30);
    let nodes = [(&a, "A"), (&c, "C")];
    let before: Vec<_> = nodes.iter().map(|(n, _)| thread_times(n.pid())).collect();
    let start = Instant::now();
    a.add_peer(c.quic_addr())?;
    while !inbox_file.exists() {
        ensure!(start.elapsed() < timeout, "file not at C after {timeout:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = start.elapsed().as_secs_f64();
    let mut cpu = 0.0;
    for ((n, label), before) in nodes.iter().zip(&before) {
        let by_name = before_after(before, &thread_times(n.pid()));
        cpu += cpu_seconds(&by_name);
        println!(
            "  contact: {}",
            thread_report(&format!("node {label}"), &by_name, secs)
        );
    }
    ensure!(sha256_of(&inbox_file)? == digest, "SHA-256 differs at C");
    Ok((secs, cpu))
}

/// Seconds on a CPU of all threads in a [`before_after`] result.
fn cpu_seconds(by_name: &BTreeMap<String, (usize, f64, f64)>) -> f64 {
    by_name.values().map(|(_, cpu, _)| cpu).sum()
}

/// The node binary: `$SPORE_EXE`, or `spore` in the profile directory that
/// holds `examples/one_hop`.
fn spore_exe() -> anyhow::Result<PathBuf> {
    let exe = match std::env::var_os("SPORE_EXE") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("example is not in <target>/<profile>/examples")?
            .join("spore"),
    };
    if !exe.is_file() {
        bail!(
            "{} not found: run `cargo build --release --bin spore` first (or set SPORE_EXE)",
            exe.display()
        );
    }
    Ok(exe)
}

/// Timings of one transfer, seconds from the start of `send`.
struct Timings {
    send_s: f64,
    first_transfer_s: f64,
    /// First sample that saw the final count (sampled every 100 ms).
    last_transfer_s: f64,
    file_s: f64,
    total_s: f64,
    bundles: u64,
    rate_during_send: f64,
    rate_after_send: f64,
    /// Per-node thread time lines.
    threads: Vec<String>,
}

/// (b) Two node processes in a tempdir; A sends an N MiB random file to C.
fn via_nodes(exe: &Path, total_bytes: u64) -> anyhow::Result<Timings> {
    let tmp = tempfile::tempdir()?;
    let extra = std::env::var("SPORE_NODE_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let a = NodeProcess::start(exe, &tmp.path().join("a"), "a", &extra)?;
    let c = NodeProcess::start(exe, &tmp.path().join("c"), "c", &extra)?;
    a.add_peer(c.quic_addr())?;
    wait_for("A in contact with C", Duration::from_secs(20), || {
        Ok(peer(&a, "dtn://c/")?.filter(|p| p["connected"] == true))
    })?;
    let file = tmp.path().join("payload.bin");
    let digest = write_random_file(&file, total_bytes)?;
    let done = AtomicBool::new(false);
    let timeout = TIMEOUT_PER_MIB * (total_bytes >> 20) as u32 + Duration::from_secs(30);
    let nodes = [(&a, "A"), (&c, "C")];
    let before: Vec<_> = nodes.iter().map(|(n, _)| thread_times(n.pid())).collect();
    let start = Instant::now();
    let (progress, result) = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample_progress(&a, start, &done));
        let r = send_and_wait(&a, &c, &file, start, timeout);
        done.store(true, Ordering::Relaxed);
        (sampler.join(), r)
    });
    let progress = progress.map_err(|_| anyhow::anyhow!("progress sampler panicked"))?;
    let (send_s, file_s, total_s, path) = result?;
    let mut threads = Vec::new();
    for ((n, label), before) in nodes.iter().zip(&before) {
        threads.push(thread_report(
            &format!("node {label}"),
            &before_after(before, &thread_times(n.pid())),
            total_s,
        ));
    }
    ensure!(
        sha256_of(Path::new(&path))? == digest,
        "SHA-256 of {path} differs from the sent file"
    );
    let mut t = summarize(&progress, send_s, file_s, total_s);
    t.threads = threads;
    Ok(t)
}

/// Sends `file` from A to `dtn://c/files` and waits for it at C. Returns the
/// send time, inbox time and status time (seconds from `start`) and the path.
fn send_and_wait(
    a: &NodeProcess,
    c: &NodeProcess,
    file: &Path,
    start: Instant,
    timeout: Duration,
) -> anyhow::Result<(f64, f64, f64, String)> {
    let cid = a.send(file, "dtn://c/files")?;
    let send_s = start.elapsed().as_secs_f64();
    // Watch the inbox directory first: it costs the node nothing, whereas a
    // status query before the manifest arrives scans every record on C's
    // agent thread.
    let name = file.file_name().context("file name")?;
    let inbox_file = c.dir.join("inbox").join(name);
    let deadline = start + timeout;
    while !inbox_file.exists() {
        ensure!(Instant::now() < deadline, "file not at C after {timeout:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let file_s = start.elapsed().as_secs_f64();
    let path = wait_for("path in C's status", Duration::from_secs(30), || {
        let st = c.status(Some(&cid))?;
        Ok(st["files"][0]["path"].as_str().map(str::to_owned))
    })?;
    Ok((send_s, file_s, start.elapsed().as_secs_f64(), path))
}

/// A's peer entry for `node_id`, if any.
fn peer(a: &NodeProcess, node_id: &str) -> anyhow::Result<Option<Value>> {
    let v = a.client()?.get("/api/v1/peers")?;
    Ok(v["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["node_id"] == node_id)
        .cloned())
}

/// Samples A's custody transfers to C (`bundles_sent`) until `done`:
/// (seconds from `start`, count). A's peer table is small, so this costs
/// A's agent thread little.
fn sample_progress(a: &NodeProcess, start: Instant, done: &AtomicBool) -> Vec<(f64, u64)> {
    let mut out = Vec::new();
    while !done.load(Ordering::Relaxed) {
        if let Ok(Some(p)) = peer(a, "dtn://c/") {
            let n = p["bundles_sent"].as_u64().unwrap_or(0);
            out.push((start.elapsed().as_secs_f64(), n));
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    out
}

fn summarize(progress: &[(f64, u64)], send_s: f64, file_s: f64, total_s: f64) -> Timings {
    let first_transfer_s = progress
        .iter()
        .find(|(_, n)| *n > 0)
        .map_or(f64::NAN, |(t, _)| *t);
    let at = |limit: f64| {
        progress
            .iter()
            .take_while(|(t, _)| *t <= limit)
            .last()
            .copied()
            .unwrap_or((0.0, 0))
    };
    let (t_send, n_send) = at(send_s);
    let (t_end, n_end) = at(total_s);
    let last_transfer_s = progress
        .iter()
        .find(|(_, n)| *n >= n_end)
        .map_or(f64::NAN, |(t, _)| *t);
    let rate = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Timings {
        send_s,
        first_transfer_s,
        last_transfer_s,
        file_s,
        total_s,
        bundles: n_end,
        rate_during_send: rate(n_send, t_send),
        rate_after_send: rate(n_end - n_send, t_end - t_send),
        threads: Vec::new(),
    }
}

/// Writes `bytes` random bytes to `path`; returns their SHA-256.
fn write_random_file(path: &Path, bytes: u64) -> anyhow::Result<[u8; 32]> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = rand::rng();
    let mut buf = vec![0u8; 1 << 20];
    let mut hash = Sha256::new();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        hash.update(&buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(hash.finalize().into())
}

fn sha256_of(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut hash = Sha256::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}

/// Thread ID → (name, ns on a CPU, ns runnable but waiting for a CPU) of
/// process `pid`, from `/proc/PID/task/*/{comm,schedstat}`; empty where that
/// is not available.
fn thread_times(pid: Option<u32>) -> BTreeMap<u32, (String, u64, u64)> {
    let mut out = BTreeMap::new();
    let Some(pid) = pid else { return out };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let mut f = stat
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        let (cpu, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        out.insert(tid, (comm.trim().to_owned(), cpu, wait));
    }
    out
}

/// Per thread name: (threads, s on a CPU, s waiting for one) between two
/// snapshots; threads born in between count from zero, threads that ended
/// are missing.
fn before_after(
    before: &BTreeMap<u32, (String, u64, u64)>,
    after: &BTreeMap<u32, (String, u64, u64)>,
) -> BTreeMap<String, (usize, f64, f64)> {
    let mut out: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for (tid, (comm, cpu, wait)) in after {
        let (cpu0, wait0) = before.get(tid).map_or((0, 0), |b| (b.1, b.2));
        let e = out.entry(comm.clone()).or_default();
        e.0 += 1;
        e.1 += cpu.saturating_sub(cpu0) as f64 / 1e9;
        e.2 += wait.saturating_sub(wait0) as f64 / 1e9;
    }
    out
}

fn thread_report(
    label: &str,
    by_name: &BTreeMap<String, (usize, f64, f64)>,
    wall_s: f64,
) -> String {
    let mut line = format!("{label} threads over {wall_s:.3} s (on CPU / waiting for CPU):");
    for (name, (n, cpu, wait)) in by_name {
        if *cpu >= 0.005 {
            line.push_str(&format!(" {name} x{n} {cpu:.3}/{wait:.3} s;"));
        }
    }
    line
}
