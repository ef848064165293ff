//! The Ollama-compatible front and the `ollama` service kind with real
//! processes (spec/jobs.md §8): node B offers an `ollama` service backed by
//! a small Ollama-speaking HTTP adapter started by this test; node A's API
//! answers `/api/tags`, `/api/generate` and `/api/embeddings` by running
//! real-time jobs on B.
//!
//! The adapter answers deterministically (no model weights). To try a real
//! Ollama instead, point `SPORE_OLLAMA_URL` at it and set
//! `SPORE_OLLAMA_MODEL` to a model it serves (not run in CI). With
//! `SPORE_OLLAMA_PYTHON` set to a Python that has the `ollama` package
//! (`python3 -m venv v && v/bin/pip install ollama`), the official client
//! library is also run against node A.

mod common;

use serde_json::{Value, json};
use spore::harness::{NodeProcess, wait_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Answers one HTTP/1.1 request per connection like Ollama would.
fn adapter() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let prompt = req["prompt"].as_str().unwrap_or("");
            let answer = match path.as_str() {
                "/api/generate" => json!({"model": req["model"], "response": format!("echo: {prompt}"), "done": true}),
                "/api/embeddings" => json!({"embedding": [prompt.len() as f64, 0.5, -1.0]}),
                _ => json!({"error": "not found"}),
            }
            .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn ollama_clients_reach_a_peers_model_through_the_front() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let url = std::env::var("SPORE_OLLAMA_URL").unwrap_or_else(|_| adapter());
    let model = std::env::var("SPORE_OLLAMA_MODEL").unwrap_or_else(|_| "tiny-test".into());
    let svc = root.join("services.json");
    let v = json!([{"name": "llm", "kind": "ollama", "url": url, "models": [model]}]);
    std::fs::write(&svc, v.to_string()).unwrap();
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let b = NodeProcess::start(
        &exe,
        &root.join("b"),
        "b",
        &["--services", svc.to_str().unwrap()],
    )
    .unwrap();
    a.add_peer(b.quic_addr()).unwrap();

    let tags = wait_for("the model in A's /api/tags", T, || {
        let v = a.client()?.get("/api/tags")?;
        Ok((v["models"].as_array().is_some_and(|m| !m.is_empty())).then_some(v))
    })
    .unwrap();
    assert_eq!(tags["models"][0]["name"], model.as_str(), "{tags}");
    assert_eq!(tags["models"][0]["spore"]["node"], "dtn://b/");

    let c = a.client().unwrap();
    let g = c
        .post(
            "/api/generate",
            &json!({"model": model, "prompt": "hi there", "stream": false}),
        )
        .unwrap();
    assert_eq!(g["done"], true, "{g}");
    if std::env::var("SPORE_OLLAMA_URL").is_err() {
        assert_eq!(g["response"], "echo: hi there");
        let e = c
            .post(
                "/api/embeddings",
                &json!({"model": model, "prompt": "abcd"}),
            )
            .unwrap();
        assert_eq!(e["embedding"], json!([4.0, 0.5, -1.0]));
    }
    if let Ok(py) = std::env::var("SPORE_OLLAMA_PYTHON") {
        official_client(&py, &a, &model);
    }
    let err = c
        .post("/api/generate", &json!({"model": "absent", "prompt": "x"}))
        .expect_err("unknown model")
        .to_string();
    assert!(
        err.contains("not served by any peer") && err.contains("HTTP 404"),
        "{err}"
    );
}

/// Runs the `ollama` Python client library against `a`'s API.
fn official_client(python: &str, a: &NodeProcess, model: &str) {
    let script = r#"
import json, sys, ollama
d, model = sys.argv[1], sys.argv[2]
info = json.load(open(d + '/api.json')); tok = open(d + '/api.token').read().strip()
c = ollama.Client(host='http://' + info['api'], headers={'Authorization': 'Bearer ' + tok})
assert model in [m.model for m in c.list().models]
r = c.generate(model=model, prompt='hi there', stream=False)
assert r.done, r
e = c.embeddings(model=model, prompt='abcd')
assert len(e.embedding) > 0, e
print('official client ok')
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, a.dir.to_str().unwrap(), model])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
