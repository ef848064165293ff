//! `spore::store::check` and `spore doctor`: a store made by a real agent
//! run checks clean; each kind of corruption (injected through `Txn`, or
//! through redb directly where `Txn` keeps the index in step by design) is
//! reported, repaired when safe, and never costs a held bundle its record or
//! bytes. The CLI is run as a real process on a real file.

mod common;

use bytes::Bytes;
use spore::agent::{Agent, AgentConfig, Event, Received, Submission};
use spore::bundle::admin::{CustodyReason, CustodySignal};
use spore::bundle::{Bundle, CreationTimestamp, DtnTime, Eid, codec};
use spore::store::check::{self, Problem};
use spore::store::records::PayloadKind;
use spore::store::{Store, tables};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const T0: u64 = 800_000_000_000;

fn eid(s: &str) -> Eid {
    s.parse().expect("test EID")
}

fn chunk_bundle(src: &str, dst: &str, seq: u64, data: &[u8]) -> Bytes {
    let ts = CreationTimestamp {
        time: DtnTime(T0),
        sequence: seq,
    };
    let mut b = Bundle::new(
        eid(src),
        eid(dst),
        ts,
        3_600_000,
        Bytes::from(data.to_vec()),
    );
    b.set_content_cid(&spore::content::chunk_cid(data).to_bytes());
    Bytes::from(codec::encode(&b))
}

/// Runs a real agent over a store file: plain and chunk submissions (one
/// chunk shared by two bundles), chunks received for the file inbox, a
/// custody transfer, and an expiry. Returns the store path.
fn healthy_store(dir: &Path) -> PathBuf {
    let path = dir.join("store.redb");
    let store = Store::open(&path).expect("open");
    let mut agent = Agent::new(store, AgentConfig::new(eid("dtn://n/"))).expect("agent");
    let data = |destination: &str, payload: &[u8], lifetime_ms: u64, cid: bool| Submission::Data {
        destination: eid(destination),
        payload: Bytes::from(payload.to_vec()),
        lifetime_ms: Some(lifetime_ms),
        flags: 0,
        content_cid: cid.then(|| spore::content::chunk_cid(payload).to_bytes()),
        expires_by_ms: None,
    };
    let items = vec![
        data("dtn://far/app", b"plain one", 3_600_000, false),
        data("dtn://far/app", b"short-lived", 1_000, false),
        data("dtn://far/files", b"chunk A", 3_600_000, true),
        data("dtn://far/files", b"chunk A", 3_600_000, true),
        data("dtn://far/files", b"chunk B", 3_600_000, true),
        data("dtn://far/app", b"plain two", 3_600_000, false),
    ];
    let out = agent
        .handle(DtnTime(T0), Event::Submit { ticket: 1, items })
        .expect("submit");
    let ids = out
        .iter()
        .find_map(|a| match a {
            spore::agent::Action::Submitted { result, .. } => Some(result.clone()),
            _ => None,
        })
        .expect("answer")
        .expect("stored");
    let received = [b"chunk A".as_slice(), b"chunk C"]
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Received::new(
                eid("dtn://p/"),
                chunk_bundle("dtn://p/", "dtn://n/files", i as u64, d),
            )
        })
        .collect();
    agent
        .handle(DtnTime(T0 + 10), Event::Received(received))
        .expect("receive");
    let signal = CustodySignal {
        accepted: true,
        reason: CustodyReason::Accepted,
        bundles: vec![ids[4].clone(), ids[5].clone()],
    };
    let from = eid("dtn://r/");
    agent
        .handle(DtnTime(T0 + 20), Event::CustodySignal { from, signal })
        .expect("signal");
    agent
        .handle(DtnTime(T0 + 5_000), Event::Tick)
        .expect("tick");
    path
}

fn kinds(problems: &[Problem]) -> BTreeSet<&'static str> {
    problems.iter().map(Problem::kind).collect()
}

/// Held bundle keys and their bytes: what repair must never take away.
fn held_snapshot(store: &Store) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let recs = store.records(usize::MAX).expect("records");
    recs.iter()
        .filter(|r| r.state.is_held())
        .map(|r| {
            let k = r.id.to_key();
            let b = store.bundle_bytes(&k).expect("bytes");
            (k, b)
        })
        .collect()
}

/// A held chunk bundle's (key, cid) and a held plain bundle's key.
fn held_examples(store: &Store) -> ((Vec<u8>, Vec<u8>), Vec<u8>) {
    let recs = store.records(usize::MAX).expect("records");
    let held = recs.iter().filter(|r| r.state.is_held());
    let chunk = held
        .clone()
        .find(|r| r.kind == PayloadKind::Chunk)
        .map(|r| (r.id.to_key(), r.cid.clone().expect("cid")))
        .expect("a held chunk bundle");
    let plain = held
        .clone()
        .find(|r| r.kind == PayloadKind::Plain)
        .map(|r| r.id.to_key())
        .expect("a held plain bundle");
    (chunk, plain)
}

#[test]
fn a_real_agent_run_checks_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = healthy_store(dir.path());
    let store = Store::open(&path).expect("reopen");
    let r = check::check(&store).expect("check");
    assert!(r.is_clean(), "problems: {:?}", r.problems);
    // The run exercised what the checks look at.
    assert!(
        r.scanned.held >= 3 && r.scanned.chunks >= 2 && r.scanned.inbox == 2,
        "{r:?}"
    );
    let stats = store.stats().expect("stats");
    assert_eq!(stats.held, r.scanned.held);
    let r = check::repair(&store).expect("repair");
    assert!(r.is_clean() && r.repaired.is_empty(), "{r:?}");
}

/// One corruption: inject, expect `kind`, repair, expect `left` afterwards.
fn case(name: &str, kind: &str, left: &[&str], inject: impl FnOnce(Store, &Path)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = healthy_store(dir.path());
    inject(Store::open(&path).expect("open"), &path);
    let store = Store::open(&path).expect("reopen");
    let held_before = held_snapshot(&store);
    let found = check::check(&store).expect("check");
    assert_eq!(
        kinds(&found.problems),
        BTreeSet::from([kind]),
        "{name}: {:?}",
        found.problems
    );
    let fixed = check::repair(&store).expect("repair");
    let want_left: BTreeSet<&str> = left.iter().copied().collect();
    assert_eq!(
        kinds(&fixed.problems),
        want_left,
        "{name} after repair: {fixed:?}"
    );
    assert_eq!(
        fixed.repaired.is_empty(),
        !left.is_empty(),
        "{name}: {fixed:?}"
    );
    let again = check::check(&store).expect("check");
    assert_eq!(kinds(&again.problems), want_left, "{name} re-check");
    assert_eq!(
        held_snapshot(&store),
        held_before,
        "{name}: repair touched held bundles"
    );
}

/// Raw redb access for what `Txn` cannot express (it keeps `held-0` in step).
fn raw_held(path: &Path, f: impl FnOnce(&mut redb::Table<&[u8], ()>)) {
    let db = redb::Database::create(path).expect("raw open");
    let w = db.begin_write().expect("write");
    f(&mut w.open_table(tables::HELD).expect("held table"));
    w.commit().expect("commit");
}

#[test]
fn each_corruption_is_reported_and_safely_repaired() {
    case("no expiry entry", "held_without_expiry", &[], |s, _| {
        let (_, plain) = held_examples(&s);
        let rec = s.record(&plain).unwrap().unwrap();
        let mut t = s.write().unwrap();
        t.expiry_remove(rec.expiry_ms, &plain).unwrap();
        t.commit().unwrap();
    });
    case("dangling expiry", "expiry_dangling", &[], |s, _| {
        let mut t = s.write().unwrap();
        t.expiry_add(T0 + 9, b"no such bundle").unwrap();
        t.commit().unwrap();
    });
    case("refcount too high", "chunk_refcount", &[], |s, _| {
        let ((_, cid), _) = held_examples(&s);
        let mut t = s.write().unwrap();
        t.chunk_ref(&cid, b"ignored").unwrap();
        t.commit().unwrap();
    });
    case("orphan chunk", "orphan_chunk", &[], |s, _| {
        let cid = spore::content::chunk_cid(b"nobody").to_bytes();
        let mut t = s.write().unwrap();
        t.chunk_ref(&cid, b"nobody").unwrap();
        t.commit().unwrap();
    });
    case("dangling inbox entry", "inbox_dangling", &[], |s, _| {
        let ((_, cid), _) = held_examples(&s);
        let mut t = s.write().unwrap();
        t.inbox_add(&cid, b"no such bundle").unwrap();
        t.commit().unwrap();
    });
    case("held bytes", "held_bytes", &[], |s, _| {
        let v = s.meta_u64("held_bytes").unwrap().unwrap_or(0);
        let mut t = s.write().unwrap();
        t.set_meta_u64("held_bytes", v + 7).unwrap();
        t.commit().unwrap();
    });
    case("dangling held entry", "held_dangling", &[], |s, p| {
        drop(s);
        raw_held(p, |t| {
            t.insert(b"no such bundle".as_slice(), ()).unwrap();
        });
    });
    case("held, not indexed", "held_not_indexed", &[], |s, p| {
        let (_, plain) = held_examples(&s);
        drop(s);
        raw_held(p, |t| {
            t.remove(plain.as_slice()).unwrap();
        });
    });
    // Not repairable: reported, and repair leaves the bundle alone.
    case(
        "bytes lost",
        "held_without_bytes",
        &["held_without_bytes"],
        |s, _| {
            let (_, plain) = held_examples(&s);
            let mut t = s.write().unwrap();
            t.remove_bytes(&plain).unwrap();
            t.commit().unwrap();
        },
    );
    case("chunk lost", "chunk_missing", &["chunk_missing"], |s, _| {
        let ((_, cid), _) = held_examples(&s);
        let mut t = s.write().unwrap();
        while t.chunk_unref(&cid).unwrap() > 0 {}
        t.commit().unwrap();
    });
}

fn doctor(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::exe())
        .arg("doctor")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run spore doctor");
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        s(&out.stdout),
        s(&out.stderr),
    )
}

#[test]
fn doctor_cli_reports_repairs_and_refuses_a_store_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = healthy_store(dir.path());
    let (code, out, _) = doctor(dir.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with("ok"), "{out}");
    {
        let s = Store::open(&path).unwrap();
        let mut t = s.write().unwrap();
        t.expiry_add(T0 + 9, b"no such bundle").unwrap();
        t.set_meta_u64("held_bytes", 1).unwrap();
        t.commit().unwrap();
    }
    let (code, out, err) = doctor(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("problem: ")).count(),
        2,
        "{out}"
    );
    let (code, out, _) = doctor(dir.path(), &["--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(2), "{v}");
    let (code, out, _) = doctor(dir.path(), &["--repair"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("repaired: ")).count(),
        2,
        "{out}"
    );
    assert_eq!(doctor(dir.path(), &[]).0, 0);
    // A running node holds the database: doctor says so instead of waiting.
    let held_open = Store::open(&path).unwrap();
    let (code, _, err) = doctor(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("in use: stop the node first"), "{err}");
    drop(held_open);
    let (code, _, err) = doctor(&dir.path().join("nope"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("no store at"), "{err}");
}
