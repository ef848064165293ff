//! Batch jobs end to end with real processes (spec/jobs.md §3): A submits a
//! job for C's `exec` service while C is offline; relay R takes custody; C
//! comes up, runs it, and the result bundle returns to A. Then C is
//! SIGKILLed during a long job, restarted, re-runs it, and A receives the
//! result exactly once.

mod common;

use serde_json::Value;
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
    let v = serde_json::json!([
        {"name": "wc", "kind": "exec", "command": ["wc", "-c"], "time_limit_ms": 10000},
        {"name": "slow", "kind": "exec", "command": ["sh", "-c", slow], "time_limit_ms": 10000},
    ]);
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
