//! Real-time gating with real processes (spec/jobs.md §7): two peers offer
//! the service, one behind a ChaosRelay that adds delay above the 150 ms
//! threshold. Every real-time job goes to the fast one; when it is gone,
//! real-time jobs are refused at once naming the slow peer's RTT, and
//! batch jobs still flow (to the slow one).

mod common;

use serde_json::Value;
use spore::harness::{NodeProcess, wait_for};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// The smoothed RTT (ms) of `n`'s live contact with `peer`, once `peer`
/// advertised `service`.
fn advertised_rtt(n: &NodeProcess, peer: &str, service: &str) -> anyhow::Result<Option<f64>> {
    let v = n.client()?.get("/api/v1/peers")?;
    let offers = v["capabilities"][peer]["services"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["name"] == service);
    let rtt = v["in_contact"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["node_id"] == peer)
        .and_then(|p| p["rtt_ms"].as_f64());
    Ok(rtt.filter(|_| offers))
}

fn realtime(a: &NodeProcess, input: &[u8]) -> anyhow::Result<Value> {
    a.client()?
        .post_bytes("/api/v1/jobs?service=wc&class=realtime", input)
}

#[test]
fn realtime_jobs_go_only_to_the_fast_peer_and_are_refused_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let svc = root.join("services.json");
    std::fs::write(
        &svc,
        r#"[{"name":"wc","kind":"exec","command":["wc","-c"],"concurrency":2}]"#,
    )
    .unwrap();
    let exe = common::exe();
    let svc_args = ["--services", svc.to_str().unwrap()];
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let mut f = NodeProcess::start(&exe, &root.join("f"), "f", &svc_args).unwrap();
    let s = NodeProcess::start(&exe, &root.join("s"), "s", &svc_args).unwrap();
    let (_rt, relay) = common::delaying_relay(s.quic_addr(), Duration::from_millis(120));
    a.add_peer(f.quic_addr()).unwrap();
    a.add_peer(relay.local_addr()).unwrap();
    wait_for("F's advert", T, || advertised_rtt(&a, "dtn://f/", "wc")).unwrap();
    let s_rtt = wait_for("S's advert with an RTT over 150 ms", T, || {
        Ok(advertised_rtt(&a, "dtn://s/", "wc")?.filter(|r| *r > 150.0))
    })
    .unwrap();

    let mut trips = Vec::new();
    for i in 0..5 {
        let input = vec![b'x'; 10 + i];
        let v = realtime(&a, &input).unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(
            v["executor"], "dtn://f/",
            "job {i} went to the fast peer: {v}"
        );
        let out = hex::decode(v["output_hex"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim(), (10 + i).to_string());
        trips.push(v["round_trip_ms"].as_u64().unwrap());
    }
    eprintln!("realtime round trips on loopback (ms): {trips:?}; slow peer srtt {s_rtt:.0} ms");

    // The fast peer goes away: refused at once, naming the slow peer's RTT.
    // A hangs up on F (F does not dial A), then F stops.
    a.remove_peer(f.quic_addr()).unwrap();
    f.stop();
    wait_for("A to notice F is gone", T, || {
        Ok(advertised_rtt(&a, "dtn://f/", "wc")?
            .is_none()
            .then_some(()))
    })
    .unwrap();
    let t0 = Instant::now();
    let err = realtime(&a, b"abc")
        .expect_err("no eligible peer")
        .to_string();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "refused at once, not after {took:?}"
    );
    assert!(err.contains("HTTP 503"), "{err}");
    assert!(err.contains("dtn://f/: no contact"), "{err}");
    let slow_reason = regex_free_find(&err, "dtn://s/: RTT ");
    assert!(slow_reason.ends_with("> 150 ms"), "{err}");
    eprintln!("refusal after {took:?}: {err}");

    // Batch jobs still flow: with no node named, the best known one is S.
    let v = a
        .client()
        .unwrap()
        .post_bytes("/api/v1/jobs?service=wc", b"batch!")
        .unwrap();
    assert_eq!(v["to"], "dtn://s/jobs", "{v}");
    let job = v["job"].as_str().unwrap().to_owned();
    let q = format!("/api/v1/jobs/result?id={}", spore::client::url_encode(&job));
    let r = wait_for("the batch result from S", T, || {
        Ok(a.client()?.get(&q).ok())
    })
    .unwrap();
    assert_eq!(r["executor"], "dtn://s/", "{r}");
    assert_eq!(r["ok"], true, "{r}");
    drop(relay);
}

/// The text from `start` to the end of its `;`-separated item.
fn regex_free_find(s: &str, start: &str) -> String {
    let i = s
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in {s:?}"));
    let rest = &s[i..];
    let end = rest.find(';').unwrap_or(rest.len());
    rest[..end].trim_end_matches(" (HTTP 503)").to_owned()
}

#[test]
fn a_realtime_job_is_retried_once_on_the_next_peer_when_the_chosen_one_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let mut peers = Vec::new();
    for name in ["p", "q"] {
        let runs = root.join(format!("{name}.runs"));
        let cmd = format!("echo run >> {}; sleep 2; wc -c", runs.display());
        let svc = root.join(format!("{name}.json"));
        let v = serde_json::json!([{"name": "wc", "kind": "exec", "command": ["sh", "-c", cmd]}]);
        std::fs::write(&svc, v.to_string()).unwrap();
        let n = NodeProcess::start(
            &exe,
            &root.join(name),
            name,
            &["--services", svc.to_str().unwrap()],
        )
        .unwrap();
        a.add_peer(n.quic_addr()).unwrap();
        wait_for("the peer's advert", T, || {
            advertised_rtt(&a, &format!("dtn://{name}/"), "wc")
        })
        .unwrap();
        peers.push((n, runs));
    }
    let t0 = Instant::now();
    let dir = a.dir.clone();
    let job = std::thread::spawn(move || {
        spore::client::Client::open(&dir)?
            .post_bytes("/api/v1/jobs?service=wc&class=realtime", b"retry")
    });
    let first = wait_for("one peer to start the job", T, || {
        Ok(peers.iter().position(|(_, runs)| runs.exists()))
    })
    .unwrap();
    // A loses the contact with the chosen peer mid-job.
    a.remove_peer(peers[first].0.quic_addr()).unwrap();
    eprintln!("chosen peer started after {:?}", t0.elapsed());
    let v = job.join().unwrap().unwrap();
    eprintln!("answered by the next peer after {:?}", t0.elapsed());
    let (chosen, other) = (&peers[first].0.name, &peers[1 - first].0.name);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["executor"], format!("dtn://{other}/"), "{v}");
    let failed = v["failed_peers"][0].as_str().unwrap_or_default();
    assert!(
        failed.starts_with(&format!("dtn://{chosen}/: contact lost")),
        "{v}"
    );
    let out = hex::decode(v["output_hex"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(out).unwrap().trim(), "5");
}
