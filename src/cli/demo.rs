//! `spore demo`: three real nodes on 127.0.0.1 move a file A -> B -> C.
//! B is never connected to A and C at once, its links drop, and it is killed
//! with SIGKILL mid-transfer and restarted. Every custody hand-off is shown
//! and C's copy is checked by SHA-256.

use anyhow::{Context, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use spore::harness::{NodeProcess, count_states, wait_for};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEST: &str = "dtn://c/files";
const STEP: Duration = Duration::from_secs(40);

struct Narrator(Instant);

impl Narrator {
    fn say(&self, msg: impl AsRef<str>) {
        println!(
            "[{:>5.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            msg.as_ref()
        );
    }
}

fn sha256_file(p: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Bundles for C held at `node`, by state.
fn progress(node: &NodeProcess) -> anyhow::Result<std::collections::BTreeMap<String, usize>> {
    Ok(count_states(&node.status(None)?, Some(DEST)))
}

fn n(m: &std::collections::BTreeMap<String, usize>, k: &str) -> usize {
    m.get(k).copied().unwrap_or(0)
}

/// Runs the demo. On failure the data directories and node logs are kept
/// and their location is printed.
pub fn run(file: Option<PathBuf>, keep: bool) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("spore-demo-").tempdir()?;
    let r = scenario(file, tmp.path());
    if r.is_err() || keep {
        let kept = tmp.keep();
        println!(
            "data dirs and node logs (a.log, b.log, c.log) kept in {}",
            kept.display()
        );
    }
    r
}

fn scenario(file: Option<PathBuf>, root: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the spore executable")?;
    let file = file.unwrap_or_else(|| exe.clone());
    let size = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let say = Narrator(Instant::now());
    say.say(format!(
        "moving {} ({size} bytes) from A to C through B; data dirs under {}",
        file.display(),
        root.display()
    ));
    let mut a = NodeProcess::start(&exe, &root.join("a"), "a", &[])?;
    let mut b = NodeProcess::start(&exe, &root.join("b"), "b", &[])?;
    let mut c = NodeProcess::start(&exe, &root.join("c"), "c", &[])?;
    say.say(format!(
        "nodes up: A {}  B {}  C {}",
        a.quic_addr(),
        b.quic_addr(),
        c.quic_addr()
    ));
    let cid = a.send(&file, DEST)?;
    let total = progress(&a)?.values().sum::<usize>();
    say.say(format!(
        "A stored the file durably as {total} bundles (manifest {cid}); custodian: A"
    ));

    hop_a_to_b(&say, &mut a, &mut b, total)?;
    let path = hop_b_to_c(&say, &b, &c, &cid, total)?;
    show_chain(&say, &[&b, &c], &cid)?;
    let (want, got) = (sha256_file(&file)?, sha256_file(&path)?);
    if want != got {
        bail!("SHA-256 mismatch: sent {want}, received {got}");
    }
    say.say(format!("SHA-256 matches: {got}"));
    b.stop();
    c.stop();
    say.say("demo passed");
    Ok(())
}

/// Link A-B only: B is killed mid-transfer and restarted; A goes offline once
/// B holds custody of everything.
fn hop_a_to_b(
    say: &Narrator,
    a: &mut NodeProcess,
    b: &mut NodeProcess,
    total: usize,
) -> anyhow::Result<()> {
    say.say("link A-B comes up (B dials A); C is out of reach");
    b.add_peer(a.quic_addr())?;
    let third = total.div_ceil(3);
    wait_for("a third of the bundles to reach B", STEP, || {
        let p = progress(a)?;
        Ok((n(&p, "custody_transferred") >= third).then_some(()))
    })?;
    let p = progress(a)?;
    say.say(format!(
        "custody A -> B for {}/{total} bundles; killing B with SIGKILL mid-transfer",
        n(&p, "custody_transferred")
    ));
    b.kill();
    std::thread::sleep(Duration::from_millis(500));
    b.restart()?;
    let held = n(&progress(b)?, "stored");
    say.say(format!(
        "B restarted: {held} bundles found intact in its store, still in its custody; it redials A"
    ));
    wait_for("every bundle to be in B's custody", STEP, || {
        let p = progress(a)?;
        Ok((n(&p, "custody_transferred") == total).then_some(()))
    })?;
    say.say(format!(
        "custody A -> B complete: {total}/{total}; A released its copies"
    ));
    a.stop();
    say.say("A goes offline (SIGTERM); link A-B is gone");
    b.remove_peer(a.quic_addr())?;
    Ok(())
}

/// Link B-C only, dropped once mid-transfer; returns where C wrote the file.
fn hop_b_to_c(
    say: &Narrator,
    b: &NodeProcess,
    c: &NodeProcess,
    cid: &str,
    total: usize,
) -> anyhow::Result<PathBuf> {
    let third = total.div_ceil(3);
    say.say("link B-C comes up (B dials C)");
    b.add_peer(c.quic_addr())?;
    wait_for("some bundles to reach C", STEP, || {
        let p = progress(b)?;
        Ok((n(&p, "custody_transferred") >= third).then_some(()))
    })?;
    b.remove_peer(c.quic_addr())?;
    let p = progress(b)?;
    say.say(format!(
        "custody B -> C for {}/{total}; link B-C drops",
        n(&p, "custody_transferred")
    ));
    std::thread::sleep(Duration::from_millis(800));
    say.say("link B-C comes back");
    b.add_peer(c.quic_addr())?;
    let path = wait_for("C to write the file", STEP, || {
        let s = c.status(Some(cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(PathBuf::from))
    })?;
    wait_for("B to hand over every bundle", STEP, || {
        let p = progress(b)?;
        Ok((n(&p, "custody_transferred") == total).then_some(()))
    })?;
    say.say(format!(
        "custody B -> C complete: {total}/{total}; C delivered the file to {}",
        path.display()
    ));
    Ok(path)
}

/// Prints the manifest bundle's history at each node: the custody chain.
fn show_chain(say: &Narrator, nodes: &[&NodeProcess], cid: &str) -> anyhow::Result<()> {
    say.say("custody chain of the manifest bundle:");
    for node in nodes {
        let s: Value = node.status(Some(cid))?;
        let manifest = s["bundles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["kind"] == "manifest");
        if let Some(m) = manifest {
            for h in m["history"].as_array().into_iter().flatten() {
                println!(
                    "          {}: {}",
                    node.name.to_uppercase(),
                    h["event"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
