//! A blocking client of a running node's local API (used by the CLI, the
//! demo and the tests). It finds the node through `DATA_DIR/api.json` and
//! authenticates with `DATA_DIR/api.token`.

use crate::node::ApiInfo;
use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A connection to a running node's API.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// Reads `api.json` and `api.token` from `dir`.
    ///
    /// # Errors
    /// If either file is missing (no node running) or malformed.
    pub fn open(dir: &Path) -> anyhow::Result<Client> {
        let info = dir.join("api.json");
        let raw = std::fs::read(&info).with_context(|| {
            format!(
                "no running node found ({} is missing; start one with `spore node --data-dir {}`)",
                info.display(),
                dir.display()
            )
        })?;
        let info: ApiInfo = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is not valid", info.display()))?;
        let token = std::fs::read_to_string(dir.join("api.token"))
            .with_context(|| format!("cannot read the API token in {}", dir.display()))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(3600)))
            .build()
            .into();
        Ok(Client {
            base: format!("http://{}", info.api),
            token: token.trim().to_owned(),
            agent,
        })
    }

    fn finish(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut r = r.map_err(|e| anyhow!("cannot reach the node API at {}: {e}", self.base))?;
        let status = r.status();
        let v: Value = r
            .body_mut()
            .read_json()
            .map_err(|e| anyhow!("bad answer from the node: {e}"))?;
        if !status.is_success() {
            let msg = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            bail!("{msg} (HTTP {})", status.as_u16());
        }
        Ok(v)
    }

    /// GET `path`.
    ///
    /// # Errors
    /// Connection failures, and the node's `{"error"}` message on a non-2xx answer.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(r)
    }

    /// POST JSON `body` to `path`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body);
        self.finish(r)
    }

    /// POST raw `body` bytes to `path` (`application/octet-stream`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> anyhow::Result<Value> {
        self.finish(self.send_octets(path, body))
    }

    /// Sends `body` as `application/octet-stream` to `path`, with the token.
    fn send_octets(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        self.agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/octet-stream")
            .send(body)
    }

    /// POST raw `body` bytes to `path` and copy the answer's body to `out` as
    /// it arrives (each piece written and flushed at once): for streaming
    /// real-time jobs (`stream=true`, spec/jobs.md §7.1). Returns the bytes
    /// copied.
    ///
    /// # Errors
    /// As [`Client::get`]; and, when the body breaks off (the job failed or
    /// its peer was lost after output began), an error saying how many bytes
    /// came first.
    pub fn post_bytes_streaming(
        &self,
        path: &str,
        body: &[u8],
        out: &mut dyn std::io::Write,
    ) -> anyhow::Result<u64> {
        let r = self.send_octets(path, body);
        let mut r = r.map_err(|e| anyhow!("cannot reach the node API at {}: {e}", self.base))?;
        if !r.status().is_success() {
            return self.finish(Ok(r)).map(|_| 0);
        }
        let mut reader = r.body_mut().as_reader();
        let mut buf = vec![0; 64 << 10];
        let mut copied = 0u64;
        loop {
            let n = match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) => bail!(
                    "the job's output broke off after {copied} bytes: {e} (the job failed or \
                     its peer was lost; the node's log says why)"
                ),
            };
            out.write_all(&buf[..n])?;
            out.flush()?;
            copied += n as u64;
        }
    }

    /// DELETE `path`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(r)
    }
}

/// Percent-encodes `s` for a URL query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
