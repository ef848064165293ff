//! Batch jobs end to end with real processes (spec/jobs.md §3): A submits a
//! job for C's `exec` service while C is offline; relay R takes custody; C
//! comes up, runs it, and the result bundle returns to A. Then C is
//! SIGKILLed during a long job, restarted, re-runs it, and A receives the
//! result exactly once.

mod common;

use serde_json::{Value, json};
use spore::bundle::BundleId;
use spore::harness::{NodeProcess, wait_for};
use spore::jobs::result_timestamp;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn submit(a: &NodeProcess, service: &str, input: &[u8]) -> String {
    let q = format!("/api/v1/jobs?service={service}&to=dtn%3A%2F%2Fc%2F");
    let v = a.client().unwrap().post_bytes(&q, input).unwrap();
    v["job"].as_str().unwrap().to_owned()
}

fn result(a: &NodeProcess, job: &str) -> anyhow::Result<Option<Value>> {
    let q = format!("/api/v1/jobs/result?id={}", spore::client::url_encode(job));
    Ok(a.client()?.get(&q).ok())
}

fn output(v: &Value) -> String {
    let b = hex::decode(v["output_hex"].as_str().unwrap()).unwrap();
    String::from_utf8(b).unwrap().trim().to_owned()
}

fn state_of(n: &NodeProcess, id: &str) -> Option<String> {
    let s = n.status(Some(id)).ok()?;
    s["bundles"].get(0)?["state"].as_str().map(str::to_owned)
}

fn services(root: &Path, runs: &Path) -> std::path::PathBuf {
    let slow = format!("echo run >> {}; sleep 3; wc -c", runs.display());
    write_services(
        root,
        serde_json::json!([
            {"name": "wc", "kind": "exec", "command": ["wc", "-c"], "time_limit_ms": 10000},
            {"name": "slow", "kind": "exec", "command": ["sh", "-c", slow], "time_limit_ms": 10000},
        ]),
    )
}

/// Writes the services file `v` (a JSON array) under `root`.
fn write_services(root: &Path, v: Value) -> std::path::PathBuf {
    let p = root.join("services.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |s| s.lines().count())
}

#[test]
fn job_crosses_a_relay_to_an_offline_executor_and_survives_its_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let runs = root.join("runs.txt");
    let svc = services(root, &runs);
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let r = NodeProcess::start(&exe, &root.join("r"), "r", &[]).unwrap();
    r.add_peer(a.quic_addr()).unwrap();

    // C is offline: the job waits at the relay, in its custody.
    let t0 = Instant::now();
    let job = submit(&a, "wc", b"hello relay");
    wait_for("the relay to take custody of the job", T, || {
        Ok((state_of(&a, &job).as_deref() == Some("custody_transferred")).then_some(()))
    })
    .unwrap();
    assert!(result(&a, &job).unwrap().is_none(), "no executor yet");

    let svc_arg = svc.to_str().unwrap();
    let mut c = NodeProcess::start(&exe, &root.join("c"), "c", &["--services", svc_arg]).unwrap();
    let t1 = Instant::now();
    r.add_peer(c.quic_addr()).unwrap();
    let v = wait_for("the result at A", T, || result(&a, &job)).unwrap();
    eprintln!(
        "batch job: submit to result {:?} (C started late); R-C link up to result at A {:?}",
        t0.elapsed(),
        t1.elapsed()
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["executor"], "dtn://c/");
    assert_eq!(output(&v), "11");

    // A long job; C is killed while it runs, then restarted.
    let slow = submit(&a, "slow", b"twelve bytes");
    wait_for("C to start the long job", T, || {
        Ok((lines(&runs) == 1).then_some(()))
    })
    .unwrap();
    c.kill();
    c.restart().unwrap();
    let v = wait_for("the long job's result at A", T, || result(&a, &slow)).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(output(&v), "12");
    assert_eq!(
        lines(&runs),
        2,
        "the killed run is run again (at-least-once)"
    );

    // Exactly one result bundle per job reached A, with the deterministic ID.
    let st = a.status(None).unwrap();
    let results: Vec<&Value> = st["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["destination"] == "dtn://a/job-results")
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    for job in [&job, &slow] {
        let id: BundleId = job.parse().unwrap();
        let ts = result_timestamp(&id);
        let want = format!("dtn://c/#{}.{}", ts.time.0, ts.sequence);
        let n = results.iter().filter(|b| b["id"] == want.as_str()).count();
        assert_eq!(n, 1, "result {want} of {job} delivered once: {results:?}");
        assert!(results.iter().all(|b| b["state"] == "delivered"));
    }
    let log = std::fs::read_to_string(root.join("a.log")).unwrap();
    assert_eq!(
        log.matches("job result received").count(),
        2,
        "one delivery per job"
    );
}

#[test]
fn batch_jobs_over_the_per_submitter_rate_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let svc = services(root, &root.join("runs.txt"));
    let exe = common::exe();
    // C accepts one batch job per second per submitter, no burst beyond it.
    let cdir = root.join("c");
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(
        cdir.join("spore.toml"),
        "[limits]\njobs_per_s = 1\njobs_burst = 1\n",
    )
    .unwrap();
    let c_args = ["--services", svc.to_str().unwrap()];
    let c = NodeProcess::start(&exe, &cdir, "c", &c_args).unwrap();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let jobs: Vec<String> = (0..3)
        .map(|i| submit(&a, "wc", &vec![b'x'; i + 1]))
        .collect();
    a.add_peer(c.quic_addr()).unwrap();
    let results: Vec<Value> = jobs
        .iter()
        .map(|j| wait_for("a result", T, || result(&a, j)).unwrap())
        .collect();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|r| {
            r.to_string()
                .contains("rate limit: more than 1 batch jobs/s")
        })
        .collect();
    assert!(!refused.is_empty(), "{results:?}");
    assert!(refused.len() < 3, "the first job runs: {results:?}");
    assert_eq!(refused[0]["kind"], "refused (busy)", "{}", refused[0]);
}

/// Services for the tests below: `wc`, `sha` (sha256sum), `fail` (exit 3),
/// `sleepy` (killed at its 300 ms limit) and `one` (one job at a time, one
/// queued; it writes `s` and `e` to `log` around each run).
fn cli_services(root: &Path, log: &Path) -> std::path::PathBuf {
    let one = format!(
        "echo s >> {0}; sleep 3; echo e >> {0}; wc -c",
        log.display()
    );
    write_services(
        root,
        json!([
            {"name": "wc", "kind": "exec", "command": ["wc", "-c"]},
            {"name": "sha", "kind": "exec", "command": ["sha256sum"]},
            {"name": "fail", "kind": "exec", "command": ["sh", "-c", "cat > /dev/null; exit 3"]},
            {"name": "sleepy", "kind": "exec", "command": ["sleep", "10"], "time_limit_ms": 300},
            {"name": "one", "kind": "exec", "command": ["sh", "-c", one],
             "concurrency": 1, "queue_bound": 1},
        ]),
    )
}

/// Starts node `name` under `root`, offering `cli_services` if `services`.
fn node(root: &Path, name: &str, services: bool) -> NodeProcess {
    let svc = cli_services(root, &root.join("one.log"));
    let args = ["--services", svc.to_str().unwrap()];
    let args: &[&str] = if services { &args } else { &[] };
    NodeProcess::start(&common::exe(), &root.join(name), name, args).unwrap()
}

/// `spore job status ID --json` at `dir`, parsed.
fn cli_status(dir: &Path, job: &str) -> Value {
    serde_json::from_str(&common::cli_ok(dir, &["job", "status", job, "--json"])).unwrap()
}

#[test]
fn cli_batch_job_from_stdin_with_status_result_and_error_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, c) = (node(root, "a", false), node(root, "c", true));
    let adir = root.join("a");
    let args = submit_to_c("wc", &["--input", "-"]);
    let (ok, out, err) = common::cli_stdin(&adir, &args, b"hello stdin");
    assert!(ok, "{err}");
    let job = out.trim().to_owned();
    job.parse::<BundleId>().expect("submit prints the job ID");

    // C is not in contact: the job waits here, and has no result yet.
    let st = cli_status(&adir, &job);
    assert_eq!(st["state"], "waiting for result", "{st}");
    assert_eq!(st["bundle_state"], "Stored", "{st}");
    let human = common::cli_ok(&adir, &["job", "status", &job]);
    assert!(human.contains("state:     waiting for result"), "{human}");
    assert!(human.contains("bundle:    Stored"), "{human}");
    let (ok, _, err) = common::cli(&adir, &["job", "result", &job]);
    assert!(!ok && err.contains("no result for job"), "{err}");

    a.add_peer(c.quic_addr()).unwrap();
    wait_for("the result at A", T, || result(&a, &job)).unwrap();
    let st = cli_status(&adir, &job);
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["executor"], "dtn://c/", "{st}");
    assert_eq!(st["output_bytes"], 3, "{st}");
    let human = common::cli_ok(&adir, &["job", "status", &job]);
    assert!(human.contains("state:     done"), "{human}");
    assert!(human.contains("executor:  dtn://c/"), "{human}");
    assert!(!human.contains("error:"), "{human}");
    assert_eq!(common::cli_ok(&adir, &["job", "result", &job]).trim(), "11");

    // Error results travel back like any result, with their kind.
    let fail = submit(&a, "fail", b"x");
    wait_for("the failed job's result", T, || result(&a, &fail)).unwrap();
    let st = cli_status(&adir, &fail);
    assert_eq!(st["state"], "failed", "{st}");
    assert_eq!(st["status"]["error"]["kind"]["exit_code"], 3, "{st}");
    let (ok, _, err) = common::cli(&adir, &["job", "result", &fail]);
    assert!(!ok, "a failed job's result exits 1");
    assert!(err.contains("job failed on dtn://c/: exit code 3"), "{err}");
    for (service, kind) in [("sleepy", "timeout"), ("nosuch", "unknown service")] {
        let (ok, _, err) = submit_wait(&adir, service, &[]);
        assert!(!ok, "{service} fails");
        let want = format!("job failed on dtn://c/: {kind}");
        assert!(err.contains(&want), "{service}: {err}");
    }
}

/// The line `spore peers` prints for the hardware of `node`, checked.
fn assert_hardware_line(peers: &str, node: &str) {
    let cores = std::thread::available_parallelism().unwrap().get();
    let line = peers
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{node}:")))
        .unwrap_or_else(|| panic!("no capabilities of {node}: {peers}"));
    assert!(line.contains(&format!("{cores} cores, ")), "{line}");
    assert!(line.contains(" GiB, ") && line.ends_with("gpu"), "{line}");
}

#[test]
fn a_service_runs_one_job_at_a_time_refuses_past_its_queue_and_peers_show_its_load() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, c) = (node(root, "a", false), node(root, "c", true));
    // Three jobs arrive together at a service with one slot and one queue place.
    let jobs: Vec<String> = (1..=3).map(|i| submit(&a, "one", &vec![b'x'; i])).collect();
    a.add_peer(c.quic_addr()).unwrap();
    let (adir, cdir) = (root.join("a"), root.join("c"));
    wait_for("C's advert of a busy `one` at A", T, || {
        let p = common::cli_ok(&adir, &["peers"]);
        Ok(p.contains("one (exec): 0 free slots, 1 queued")
            .then_some(p))
    })
    .unwrap();
    let results: Vec<Value> = jobs
        .iter()
        .map(|j| wait_for("a result", T, || result(&a, j)).unwrap())
        .collect();
    let refused: Vec<&Value> = results.iter().filter(|r| r["ok"] == false).collect();
    assert_eq!(refused.len(), 1, "{results:?}");
    assert_eq!(refused[0]["kind"], "refused (busy)", "{}", refused[0]);
    assert_eq!(refused[0]["detail"], "the service's queue is full");
    let log = std::fs::read_to_string(root.join("one.log")).unwrap();
    assert_eq!(log, "s\ne\ns\ne\n", "two runs, never at once");

    // Capabilities both ways: C's services and hardware at A; A offers no
    // service but still advertises its hardware to C.
    let peers = wait_for("C idle again at A", T, || {
        let p = common::cli_ok(&adir, &["peers"]);
        Ok(p.contains("one (exec): 1 free slots, 0 queued")
            .then_some(p))
    })
    .unwrap();
    assert_hardware_line(&peers, "dtn://c/");
    assert!(
        peers.contains("    wc (exec): 1 free slots, 0 queued"),
        "{peers}"
    );
    let peers = common::cli_ok(&cdir, &["peers"]);
    assert_hardware_line(&peers, "dtn://a/");
    assert!(peers.contains("    no services"), "{peers}");
}

/// `job submit --service SERVICE --to dtn://c/ EXTRA...`.
fn submit_to_c<'a>(service: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["job", "submit", "--service", service, "--to", "dtn://c/"];
    all.extend_from_slice(extra);
    all
}

/// `spore job submit --service SERVICE --to dtn://c/ --wait EXTRA...` at
/// `dir`: (success, stdout, stderr).
fn submit_wait(dir: &Path, service: &str, extra: &[&str]) -> (bool, String, String) {
    common::cli(dir, &submit_to_c(service, &[&["--wait"], extra].concat()))
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn jobs_take_input_sent_before_as_chunks_and_send_results_to_another_node() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, b, c) = (
        node(root, "a", false),
        node(root, "b", false),
        node(root, "c", true),
    );
    a.add_peer(c.quic_addr()).unwrap();
    b.add_peer(c.quic_addr()).unwrap();
    let adir = root.join("a");
    let file = root.join("data.bin");
    common::random_file(&file, 5000, 7);
    let bytes = std::fs::read(&file).unwrap();
    let f = file.to_str().unwrap();
    let send = ["send", f, "--to", "dtn://c/files", "--chunk-size", "1024"];
    let manifest = common::cli_ok(&adir, &send).trim().to_owned();
    wait_for("the file written at C", T, || {
        let st = c.status(Some(&manifest))?;
        Ok(st["files"]
            .get(0)
            .and_then(|f| f["path"].as_str().map(str::to_owned)))
    })
    .unwrap();

    // The whole file by its manifest CID.
    let (ok, out, err) = submit_wait(&adir, "sha", &["--input-cid", &manifest]);
    assert!(ok, "{err}");
    assert_eq!(
        out.split_whitespace().next(),
        Some(sha256_hex(&bytes).as_str())
    );
    // Two of its chunks by chunk CID (read back from the written file).
    let (c1, c4) = (&bytes[1024..2048], &bytes[4096..]);
    let cid = |b: &[u8]| spore::content::chunk_cid(b).to_string();
    let (cid1, cid4) = (cid(c1), cid(c4));
    let (ok, out, err) = submit_wait(&adir, "sha", &["--input-cid", &cid1, "--input-cid", &cid4]);
    assert!(ok, "{err}");
    let want = sha256_hex(&[c1, c4].concat());
    assert_eq!(out.split_whitespace().next(), Some(want.as_str()));
    // Content C never received: an error result naming the kind.
    let (ok, _, err) = submit_wait(&adir, "wc", &["--input-cid", &cid(b"never sent")]);
    assert!(
        !ok && err.contains("job failed on dtn://c/: input missing"),
        "{err}"
    );

    // --result-to: the result bundle goes to B, not to the submitter.
    let args = submit_to_c("wc", &["--input", f, "--result-to", "dtn://b/"]);
    let job = common::cli_ok(&adir, &args);
    let job = job.trim();
    let v = wait_for("the result at B", T, || result(&b, job)).unwrap();
    assert_eq!(
        (v["ok"].clone(), output(&v)),
        (json!(true), "5000".to_owned())
    );
    let bdir = root.join("b");
    assert_eq!(
        common::cli_ok(&bdir, &["job", "result", job]).trim(),
        "5000"
    );
    assert!(
        result(&a, job).unwrap().is_none(),
        "A does not get B's result"
    );
    assert_eq!(cli_status(&adir, job)["state"], "waiting for result");
}

#[test]
fn bad_result_to_and_over_limit_inputs_are_refused_with_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let a = node(root, "a", false);
    let adir = root.join("a");
    let api = a.client().unwrap();
    for (to, why) in [("nonsense", "bad result_to"), ("dtn:none", "discard")] {
        let q = format!("/api/v1/jobs?service=wc&to=dtn%3A%2F%2Fc%2F&result_to={to}");
        let e = api.post_bytes(&q, b"x").unwrap_err().to_string();
        assert!(e.contains(why) && e.contains("HTTP 400"), "{to}: {e}");
    }
    let q = "/api/v1/jobs?service=wc&class=realtime&result_to=dtn%3A%2F%2Fb%2F";
    let e = api.post_bytes(q, b"x").unwrap_err().to_string();
    assert!(e.contains("result_to is for batch jobs"), "{e}");
    let q = "/api/v1/jobs?service=wc&to=dtn%3A%2F%2Fc%2F&input_cids=notacid";
    let e = api.post_bytes(q, b"").unwrap_err().to_string();
    assert!(e.contains("bad input CID \"notacid\""), "{e}");
    for bad in [
        &["--result-to", "x"][..],
        &["--result-to", "dtn://b/", "--wait"],
    ] {
        let (ok, _, err) = common::cli(&adir, &submit_to_c("wc", bad));
        assert!(!ok && err.contains("--result-to"), "{bad:?}: {err}");
    }

    // Inputs over the 16 MiB job limit: the error names --input-cid, from
    // the CLI (before reading the file) and from the API.
    let max = spore::jobs::MAX_JOB_BYTES;
    let big = root.join("big.bin");
    std::fs::write(&big, vec![0u8; max + 1]).unwrap();
    let args = submit_to_c("wc", &["--input", big.to_str().unwrap()]);
    let (ok, _, err) = common::cli(&adir, &args);
    assert!(!ok && err.contains("--input-cid"), "{err}");
    for len in [max, max + 1] {
        let q = "/api/v1/jobs?service=wc&to=dtn%3A%2F%2Fc%2F";
        let e = api.post_bytes(q, &vec![0u8; len]).unwrap_err().to_string();
        assert!(
            e.contains("--input-cid") && e.contains("HTTP 400"),
            "{len}: {e}"
        );
    }
}
