//! Streaming output of real-time jobs with real processes (spec/jobs.md
//! §7.1, §8): node B runs a command (or an Ollama-speaking server) that
//! prints a first piece, then blocks until the test creates a file. The
//! first piece must reach the client through node A's API (and the CLI)
//! while the command is still blocked; the rest comes once the file
//! exists. A peer killed mid-stream gives the parts so far and an error.

mod common;

use serde_json::{Value, json};
use spore::harness::{NodeProcess, wait_for};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// Prints `first`, waits for the file named on stdin (at most ~20 s, so a
/// killed node leaves no command behind for long), prints `second`.
const GATED: &str = r#"read g; echo first; i=0
while [ ! -e "$g" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo second"#;

/// What the reader of a streaming answer saw.
#[derive(Debug)]
enum Ev {
    Status(u16),
    Data(Vec<u8>),
    End,
    Err(String),
}

/// POSTs JSON `body` to `path` on `n`'s API from another thread and reports
/// the answer's status, each piece of its body as read, and how it ended.
fn post_streaming(n: &NodeProcess, path: &str, body: Value) -> Receiver<Ev> {
    let info: Value =
        serde_json::from_slice(&std::fs::read(n.dir.join("api.json")).unwrap()).expect("api.json");
    let token = std::fs::read_to_string(n.dir.join("api.token")).unwrap();
    let url = format!("http://{}{path}", info["api"].as_str().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", token.trim()))
            .send_json(&body);
        let mut r = match r {
            Ok(r) => r,
            Err(e) => return tx.send(Ev::Err(e.to_string())).unwrap_or(()),
        };
        let _ = tx.send(Ev::Status(r.status().as_u16()));
        let mut reader = r.body_mut().as_reader();
        let mut buf = vec![0; 1 << 16];
        loop {
            let ev = match reader.read(&mut buf) {
                Ok(0) => Ev::End,
                Ok(k) => Ev::Data(buf[..k].to_vec()),
                Err(e) => Ev::Err(e.to_string()),
            };
            let last = !matches!(ev, Ev::Data(_));
            if tx.send(ev).is_err() || last {
                return;
            }
        }
    });
    rx
}

/// Collects body bytes into `got` until they contain `needle`.
fn read_until(rx: &Receiver<Ev>, got: &mut Vec<u8>, needle: &str) {
    let until = Instant::now() + T;
    while !String::from_utf8_lossy(got).contains(needle) {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Ev::Status(s)) => assert_eq!(s, 200, "status"),
            Ok(Ev::Data(d)) => got.extend(d),
            Ok(e) => panic!(
                "{e:?} before {needle:?}; got {:?}",
                String::from_utf8_lossy(got)
            ),
            Err(e) => panic!("{e} waiting for {needle:?}; got {got:?}"),
        }
    }
}

/// Collects the rest of the body; returns how it ended (`End` or `Err`).
fn read_to_end(rx: &Receiver<Ev>, got: &mut Vec<u8>) -> Ev {
    let until = Instant::now() + T;
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Ev::Data(d)) => got.extend(d),
            Ok(Ev::Status(s)) => assert_eq!(s, 200, "status"),
            Ok(e) => return e,
            Err(RecvTimeoutError::Timeout) => panic!("the answer hangs; got {got:?}"),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Nodes A and B (B offers `services`, JSON), connected, once A has B's advert.
fn two_nodes(root: &Path, services: Value) -> (NodeProcess, NodeProcess) {
    let svc = root.join("services.json");
    std::fs::write(&svc, services.to_string()).unwrap();
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let args = ["--services", svc.to_str().unwrap()];
    let b = NodeProcess::start(&exe, &root.join("b"), "b", &args).unwrap();
    a.add_peer(b.quic_addr()).unwrap();
    wait_for("B's advert at A", T, || {
        let v = a.client()?.get("/api/v1/peers")?;
        let advertised = v["capabilities"]["dtn://b/"]["services"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let in_contact = v["in_contact"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["node_id"] == "dtn://b/" && p["rtt_ms"].is_number());
        Ok((advertised && in_contact).then_some(()))
    })
    .unwrap();
    (a, b)
}

fn gated_service() -> Value {
    json!([{"name": "gated", "kind": "exec", "command": ["sh", "-c", GATED]},
           {"name": "huge", "kind": "exec", "command": ["head", "-c", "5000000", "/dev/zero"],
            "max_output_bytes": 8_000_000}])
}

#[test]
fn exec_output_streams_through_the_api_and_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, _b) = two_nodes(root, gated_service());

    // The local API: raw bytes, chunked, as they come.
    let gate = root.join("gate1");
    let t0 = Instant::now();
    let body = json!({"service": "gated", "class": "realtime",
                      "input": format!("{}\n", gate.display())});
    let rx = post_streaming(&a, "/api/v1/inference/request?stream=true", body);
    let mut got = Vec::new();
    read_until(&rx, &mut got, "first\n");
    eprintln!("first part after {:?}", t0.elapsed());
    assert_eq!(
        got, b"first\n",
        "only the first part: the command is blocked"
    );
    std::fs::write(&gate, b"").unwrap();
    let end = read_to_end(&rx, &mut got);
    assert!(matches!(end, Ev::End), "{end:?}");
    assert_eq!(got, b"first\nsecond\n");

    // The CLI prints parts as they arrive.
    let gate = root.join("gate2");
    let input = root.join("input2");
    std::fs::write(&input, format!("{}\n", gate.display())).unwrap();
    let mut cli = Command::new(common::exe())
        .args([
            "job",
            "submit",
            "--service",
            "gated",
            "--realtime",
            "--wait",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--data-dir")
        .arg(&a.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(cli.stdout.take().unwrap());
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).is_ok_and(|n| n > 0) {
            let _ = tx.send(std::mem::take(&mut line));
        }
    });
    let first = lines
        .recv_timeout(T)
        .expect("the CLI printed the first part");
    assert_eq!(first, "first\n");
    assert!(cli.try_wait().unwrap().is_none(), "the CLI still waits");
    std::fs::write(&gate, b"").unwrap();
    let second = lines.recv_timeout(T).expect("then the second");
    assert_eq!(second, "second\n");
    let st = wait_for("the CLI to exit", T, || Ok(cli.try_wait()?)).unwrap();
    assert!(st.success(), "{st}");

    // Over the 3 MiB real-time cap: the output up to it, then an abort.
    let body = json!({"service": "huge", "class": "realtime", "input": "", "stream": true});
    let rx = post_streaming(&a, "/api/v1/inference/request", body);
    let mut got = Vec::new();
    let end = read_to_end(&rx, &mut got);
    assert!(matches!(end, Ev::Err(_)), "{end:?}");
    let cap = 3 << 20;
    assert!(
        got.len() <= cap && got.len() > cap - (64 << 10),
        "{}",
        got.len()
    );
}

/// Starts tests/ollama/gated_server.py with gates in `dir`; its URL.
fn gated_ollama(dir: &Path) -> (std::process::Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ollama/gated_server.py");
    let mut p = Command::new("python3")
        .arg(script)
        .arg("--gate-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (standard library only) runs the test's Ollama server");
    let mut line = String::new();
    BufReader::new(p.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).expect("{\"port\": N}");
    (p, format!("http://127.0.0.1:{}", v["port"]))
}

/// The JSON lines in `got`.
fn json_lines(got: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(got)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn ollama_json_lines_stream_through_the_front() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (mut server, url) = gated_ollama(root);
    let svc = json!([{"name": "llm", "kind": "ollama", "url": url, "models": ["gated"]}]);
    let (a, _b) = two_nodes(root, svc);

    // generate: streaming is Ollama's default.
    let rx = post_streaming(
        &a,
        "/api/generate",
        json!({"model": "gated", "prompt": "g1 second"}),
    );
    let mut got = Vec::new();
    read_until(&rx, &mut got, "\n");
    let first = json_lines(&got);
    assert_eq!(first.len(), 1, "one line while the server is paused");
    assert_eq!(first[0]["response"], "g1");
    assert_eq!(first[0]["done"], false);
    std::fs::write(root.join("g1"), b"").unwrap();
    let end = read_to_end(&rx, &mut got);
    assert!(matches!(end, Ev::End), "{end:?}");
    let all = json_lines(&got);
    let text: String = all.iter().filter_map(|l| l["response"].as_str()).collect();
    assert_eq!(text, "g1 second");
    assert_eq!(all.last().unwrap()["done"], true);

    // chat, the same way.
    let msg = json!({"model": "gated", "messages": [{"role": "user", "content": "g2 more"}]});
    let rx = post_streaming(&a, "/api/chat", msg);
    let mut got = Vec::new();
    read_until(&rx, &mut got, "\n");
    assert_eq!(json_lines(&got)[0]["message"]["content"], "g2");
    std::fs::write(root.join("g2"), b"").unwrap();
    let end = read_to_end(&rx, &mut got);
    assert!(matches!(end, Ev::End), "{end:?}");
    assert_eq!(json_lines(&got).last().unwrap()["done"], true);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_peer_killed_mid_stream_gives_the_parts_so_far_and_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, mut b) = two_nodes(root, gated_service());
    let never = root.join("never");
    let body = json!({"service": "gated", "class": "realtime", "stream": true,
                      "input": format!("{}\n", never.display())});
    let rx = post_streaming(&a, "/api/v1/inference/request", body);
    let mut got = Vec::new();
    read_until(&rx, &mut got, "first\n");
    b.kill();
    let t0 = Instant::now();
    let end = read_to_end(&rx, &mut got);
    let Ev::Err(why) = end else {
        panic!("an error, not a clean end: {end:?}");
    };
    eprintln!("stream broke off {:?} after the kill: {why}", t0.elapsed());
    assert_eq!(got, b"first\n", "the parts so far");
}
