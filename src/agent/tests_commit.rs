//! Sans-IO tests of the bookkeeping every commit carries: the creation
//! sequence counter and held bytes (written only when they changed) and the
//! per-peer totals (updated from the agent's copy of the peer table, not
//! read back from the store).

use super::tests::{Net, T0, data, eid, submit};
use super::*;

fn file_agent(path: &std::path::Path, name: &str) -> Agent {
    let cfg = AgentConfig::new(eid(&format!("dtn://{name}/")));
    Agent::new(Store::open(path).unwrap(), cfg).unwrap()
}

fn totals(a: &Agent, peer: &str) -> (u64, u64) {
    let p = a.store().peer(peer).unwrap().expect("a peer record");
    (p.bundles_sent, p.bundles_received)
}

#[test]
fn peer_totals_add_up_over_commits_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pc) = (dir.path().join("a.redb"), dir.path().join("c.redb"));
    let (mut a, mut c) = (file_agent(&pa, "a"), file_agent(&pc, "c"));
    submit(&mut a, T0, vec![data("dtn://c/app", b"one", None, None)]);
    submit(&mut a, T0, vec![data("dtn://c/app", b"two", None, None)]);
    Net::new().contact(T0, &mut [&mut a, &mut c], 0, 1, None);
    assert_eq!(totals(&a, "dtn://c/"), (2, 0));
    assert_eq!(totals(&c, "dtn://a/"), (0, 2));
    Net::new().down(T0, &mut [&mut a, &mut c], 0, 1);
    drop((a, c));
    // After a restart the totals go on from what was stored.
    let (mut a, mut c) = (file_agent(&pa, "a"), file_agent(&pc, "c"));
    submit(&mut a, T0, vec![data("dtn://c/app", b"three", None, None)]);
    Net::new().contact(T0.plus_ms(10), &mut [&mut a, &mut c], 0, 1, None);
    assert_eq!(totals(&a, "dtn://c/"), (3, 0));
    assert_eq!(totals(&c, "dtn://a/"), (0, 3));
    let est = a.store().peer("dtn://c/").unwrap().unwrap().estimate;
    assert_eq!(
        est.map(|e| e.contacts),
        Some(2),
        "the estimate is written too"
    );
}

#[test]
fn sequence_and_held_bytes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pc) = (dir.path().join("a.redb"), dir.path().join("c.redb"));
    let mut a = file_agent(&pa, "a");
    let first = submit(&mut a, T0, vec![data("dtn://c/app", b"12345", None, None)]);
    assert_eq!(first[0].timestamp.sequence, 0);
    let held = a.held_bytes();
    assert!(held > 5, "{held}: the bundle, payload and blocks");
    drop(a);
    let mut a = file_agent(&pa, "a");
    assert_eq!(a.held_bytes(), held, "held bytes restored");
    let second = submit(&mut a, T0, vec![data("dtn://c/app", b"678", None, None)]);
    assert_eq!(second[0].timestamp.sequence, 1, "the sequence goes on");
    // Custody goes to c: held bytes fall to 0 while the sequence stays.
    let mut c = file_agent(&pc, "c");
    Net::new().contact(T0, &mut [&mut a, &mut c], 0, 1, None);
    assert_eq!(a.held_bytes(), 0);
    drop(a);
    let mut a = file_agent(&pa, "a");
    assert_eq!(a.held_bytes(), 0, "the release was written");
    let third = submit(&mut a, T0, vec![data("dtn://c/app", b"9", None, None)]);
    assert_eq!(third[0].timestamp.sequence, 2);
}

/// A submission with one refused item stores none of its items and leaves
/// no trace: held bytes, sequence numbers and the store are as before.
#[test]
fn a_refused_submission_is_undone_whole() {
    let mut a = super::tests::agent("a");
    let first = submit(&mut a, T0, vec![data("dtn://c/app", b"12345", None, None)]);
    let held = a.held_bytes();
    let items = vec![
        data("dtn://c/app", b"kept back", None, None),
        data("dtn:none", b"refused", None, None),
    ];
    let acts = a.handle(T0, Event::Submit { ticket: 7, items }).unwrap();
    let answer = acts.iter().find_map(|act| match act {
        Action::Submitted { ticket: 7, result } => Some(result.clone()),
        _ => None,
    });
    let err = answer.expect("an answer").expect_err("refused");
    assert!(err.contains("refused"), "{err}");
    assert_eq!(a.held_bytes(), held, "held bytes undone");
    let next = submit(&mut a, T0, vec![data("dtn://c/app", b"678", None, None)]);
    let seq = |ids: &[crate::bundle::BundleId]| ids[0].timestamp.sequence;
    assert_eq!(seq(&next), seq(&first) + 1, "sequence number undone");
    assert!(
        a.handle(T0, Event::Tick).is_ok(),
        "the agent goes on after the refusal"
    );
}
