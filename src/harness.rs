//! Real node processes for the demo and the integration tests: start a
//! `spore node` child on 127.0.0.1, talk to its API, SIGKILL or SIGTERM it,
//! restart it on the same QUIC port with the same data directory.

use crate::bundle::Eid;
use crate::client::{Client, url_encode};
use crate::node::ApiInfo;
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `spore node` child process.
pub struct NodeProcess {
    /// Short name (`a`); the node ID is `dtn://{name}/`.
    pub name: String,
    /// Data directory.
    pub dir: PathBuf,
    exe: PathBuf,
    quic: Option<SocketAddr>,
    extra: Vec<String>,
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts `exe node` for node `dtn://{name}/` in `dir`, with QUIC and the
    /// API on free 127.0.0.1 ports, stderr appended to `{dir}.log`, and
    /// waits until `api.json` appears (≤ 20 s). Discovery is off
    /// (`--discovery off --peer-exchange off --dial-cached off`) unless
    /// `extra` names one of those flags (as `--flag VALUE`).
    ///
    /// # Errors
    /// If the process cannot be spawned or is not ready in time.
    pub fn start(
        exe: &Path,
        dir: &Path,
        name: &str,
        extra: &[&str],
    ) -> anyhow::Result<NodeProcess> {
        let mut n = NodeProcess {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            exe: exe.to_path_buf(),
            quic: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        n.spawn()?;
        Ok(n)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let listen = self
            .quic
            .map_or("127.0.0.1:0".to_owned(), |a| a.to_string());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))?;
        let _ = std::fs::remove_file(self.dir.join("api.json"));
        let child = Command::new(&self.exe)
            .args(["node", "--data-dir"])
            .arg(&self.dir)
            .args([
                "--node-id",
                &format!("dtn://{}/", self.name),
                "--listen",
                &listen,
                "--api",
                "127.0.0.1:0",
            ])
            .args(self.discovery_off_args())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        self.child = Some(child);
        let info = self.wait_ready(Duration::from_secs(20))?;
        self.quic = Some(info.quic.parse()?);
        Ok(())
    }

    /// `--discovery off` etc. for each discovery switch not in the extra
    /// arguments: test and demo topologies stay as the caller sets them.
    fn discovery_off_args(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for flag in ["--discovery", "--peer-exchange", "--dial-cached"] {
            if !self.extra.iter().any(|a| a == flag) {
                v.extend([flag, "off"]);
            }
        }
        v
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<ApiInfo> {
        let deadline = Instant::now() + timeout;
        let path = self.dir.join("api.json");
        loop {
            if let Ok(b) = std::fs::read(&path) {
                if let Ok(info) = serde_json::from_slice::<ApiInfo>(&b) {
                    return Ok(info);
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    bail!(
                        "node {} exited during start-up ({st}); see {}",
                        self.name,
                        self.dir.with_extension("log").display()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!("node {} not ready after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The node ID, `dtn://{name}/`.
    pub fn node_id(&self) -> Eid {
        Eid::Dtn {
            node: self.name.clone(),
            demux: String::new(),
        }
    }

    /// The QUIC address (stable across restarts).
    ///
    /// # Panics
    /// Never after a successful [`NodeProcess::start`] (the address is read then).
    pub fn quic_addr(&self) -> SocketAddr {
        self.quic.expect("address known after start")
    }

    /// The process ID, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// An API client.
    ///
    /// # Errors
    /// If the node is not running (no `api.json`).
    pub fn client(&self) -> anyhow::Result<Client> {
        Client::open(&self.dir)
    }

    /// `GET /api/v1/status`, optionally filtered.
    ///
    /// # Errors
    /// API failures.
    pub fn status(&self, filter: Option<&str>) -> anyhow::Result<Value> {
        let q = filter
            .map(|f| format!("&filter={}", url_encode(f)))
            .unwrap_or_default();
        self.client()?
            .get(&format!("/api/v1/status?limit=100000{q}"))
    }

    /// Sends a file to `to`; returns the manifest CID.
    ///
    /// # Errors
    /// API failures.
    pub fn send(&self, file: &Path, to: &str) -> anyhow::Result<String> {
        let path = std::fs::canonicalize(file)?;
        let v = self
            .client()?
            .post("/api/v1/send", &json!({ "path": path, "to": to }))?;
        v["manifest_cid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no manifest CID in {v}"))
    }

    /// Starts dialing `addr`.
    ///
    /// # Errors
    /// API failures.
    pub fn add_peer(&self, addr: SocketAddr) -> anyhow::Result<()> {
        self.client()?
            .post("/api/v1/peers", &json!({ "addr": addr.to_string() }))?;
        Ok(())
    }

    /// Whether this node lists `peer` (a node ID such as `dtn://b/`) as
    /// connected now (`GET /api/v1/peers`).
    ///
    /// # Errors
    /// API failures.
    pub fn connected(&self, peer: &str) -> anyhow::Result<bool> {
        let v = self.client()?.get("/api/v1/peers")?;
        Ok(v["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["node_id"] == peer && p["connected"] == true))
    }

    /// Waits (polling) until this node is in contact with `peer` (a node
    /// ID): a test that sends right after [`NodeProcess::add_peer`] would
    /// otherwise race the dial, and the routing policy decides without
    /// that contact.
    ///
    /// # Errors
    /// On timeout or API failures.
    pub fn wait_connected(&self, peer: &str, timeout: Duration) -> anyhow::Result<()> {
        let what = format!("{} to be in contact with {peer}", self.name);
        wait_for(&what, timeout, || Ok(self.connected(peer)?.then_some(())))
    }

    /// Stops dialing `addr` and hangs up.
    ///
    /// # Errors
    /// API failures.
    pub fn remove_peer(&self, addr: SocketAddr) -> anyhow::Result<()> {
        self.client()?.delete(&format!(
            "/api/v1/peers?addr={}",
            url_encode(&addr.to_string())
        ))?;
        Ok(())
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait up to 10 s (SIGKILL after).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node again (same data dir, same QUIC port).
    ///
    /// # Errors
    /// As [`NodeProcess::start`].
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for NodeProcess {
    /// Kills the node and, when the test is failing (the thread is
    /// panicking), prints the end of the node's log to stderr, so a CI
    /// failure shows what the node saw even though its directory is
    /// deleted.
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.print_log_tail(LOG_TAIL_LINES);
        }
    }
}

/// How many lines of a node's log a failing test prints.
const LOG_TAIL_LINES: usize = 80;

impl NodeProcess {
    fn print_log_tail(&self, lines: usize) {
        let path = self.dir.with_extension("log");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        eprintln!(
            "---- last {} lines of node {} log ({}) ----\n{}",
            tail.len(),
            self.name,
            path.display(),
            tail.join("\n")
        );
    }
}

/// Polls `f` every 50 ms until it returns `Some` or `timeout` passes.
///
/// # Errors
/// On timeout, with `what` in the message; errors of `f` are retried.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            let why = last_err
                .map(|e| format!(" (last error: {e:#})"))
                .unwrap_or_default();
            bail!("timed out after {timeout:?} waiting for {what}{why}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts of bundles by state in a status JSON, for bundles whose
/// destination is `dest` (all if `None`).
pub fn count_states(
    status: &Value,
    dest: Option<&str>,
) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for b in status["bundles"].as_array().into_iter().flatten() {
        if dest.is_none_or(|d| b["destination"].as_str() == Some(d)) {
            *m.entry(b["state"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
    }
    m
}
