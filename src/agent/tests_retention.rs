//! Sans-IO tests of what the store keeps about finished bundles: a delivered
//! bundle's ID until its expiry plus [`AgentConfig::delivered_grace_ms`]
//! (then forgotten, and a late copy is refused as expired, never delivered
//! twice); per-peer forwarding rows only while the bundle is held; finished
//! bundle records until expiry plus [`AgentConfig::record_retention_ms`].

use super::tests::{Net, T0, agent, agent_with, data, eid, submit};
use super::*;
use crate::bundle::admin::CustodyReason;
use crate::bundle::codec;
use crate::bundle::{Bundle, CreationTimestamp};
use crate::store::records::BundleState;

const LIFETIME_MS: u64 = 60_000;
const GRACE_MS: u64 = 3_600_000;

/// A bundle from x to c's app, created at T0, living [`LIFETIME_MS`].
fn copy_from_x() -> Bytes {
    let ts = CreationTimestamp {
        time: T0,
        sequence: 1,
    };
    let mut b = Bundle::new(
        eid("dtn://x/"),
        eid("dtn://c/app"),
        ts,
        LIFETIME_MS,
        Bytes::from_static(b"once"),
    );
    // With a custody block, so that every answer comes as a custody signal.
    b.set_custody(&crate::bundle::blocks::CustodyBlock {
        custodian: eid("dtn://a/"),
        transmission: None,
    });
    Bytes::from(codec::encode(&b))
}

fn offer(c: &mut Agent, now: DtnTime) -> Vec<Action> {
    let item = Received::new(eid("dtn://a/"), copy_from_x());
    c.handle(now, Event::Received(vec![item])).unwrap()
}

fn deliveries(acts: &[Action]) -> usize {
    acts.iter()
        .filter(|a| matches!(a, Action::Deliver { .. }))
        .count()
}

fn refusal(acts: &[Action]) -> Option<CustodyReason> {
    acts.iter().find_map(|a| match a {
        Action::SendCustodySignal { signal, .. } if !signal.accepted => Some(signal.reason),
        _ => None,
    })
}

#[test]
fn a_delivered_id_is_forgotten_after_expiry_and_grace_and_never_redelivered() {
    let mut c = agent("c");
    let key = copy_from_x();
    let key = codec::decode(&key, &Default::default())
        .unwrap()
        .id()
        .to_key();
    assert_eq!(deliveries(&offer(&mut c, T0.plus_ms(10))), 1);
    assert!(c.store().is_delivered(&key).unwrap());
    // A copy within the lifetime: a duplicate.
    let again = offer(&mut c, T0.plus_ms(20));
    assert_eq!(deliveries(&again), 0);
    assert_eq!(refusal(&again), Some(CustodyReason::Duplicate));
    // Remembered through the grace period.
    let last = T0.plus_ms(LIFETIME_MS + GRACE_MS - 1);
    c.handle(last, Event::Tick).unwrap();
    assert!(c.store().is_delivered(&key).unwrap());
    // Then forgotten, and counted.
    c.handle(last.plus_ms(1), Event::Tick).unwrap();
    assert!(!c.store().is_delivered(&key).unwrap());
    let counters: std::collections::BTreeMap<_, _> =
        c.store().counters().unwrap().into_iter().collect();
    assert_eq!(counters.get("delivered_ids_forgotten"), Some(&1));
    // A late copy now: expired, not delivered a second time.
    let late = offer(&mut c, last.plus_ms(2));
    assert_eq!(deliveries(&late), 0);
    assert_eq!(refusal(&late), Some(CustodyReason::Expired));
}

#[test]
fn forwarding_state_lives_only_while_the_bundle_is_held() {
    // Custody handed on: nothing is left to offer, so no per-peer rows.
    let (mut a, mut b) = (agent("a"), agent("b"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"x", None, None)]);
    let key = ids[0].to_key();
    Net::new().contact(T0, &mut [&mut a, &mut b], 0, 1, None);
    let rec = a.store().record(&key).unwrap().unwrap();
    assert_eq!(rec.custodian, Some(eid("dtn://b/")));
    assert!(a.store().forwarded_peers(&key).unwrap().is_empty());
    // Epidemic keeps its copy: the row stays, so B is not offered it again.
    let (mut a, mut b) = (agent_with("a", "epidemic"), agent("b"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"y", None, None)]);
    let key = ids[0].to_key();
    Net::new().contact(T0, &mut [&mut a, &mut b], 0, 1, None);
    assert_eq!(a.store().forwarded_peers(&key).unwrap(), vec!["dtn://b/"]);
}

#[test]
fn a_finished_record_is_dropped_at_expiry_plus_retention_and_a_held_one_stays() {
    let (mut a, mut b) = (agent("a"), agent("b"));
    let retention = AgentConfig::new(eid("dtn://a/")).record_retention_ms;
    let gone = submit(
        &mut a,
        T0,
        vec![data("dtn://c/app", b"x", Some(LIFETIME_MS), None)],
    );
    Net::new().contact(T0, &mut [&mut a, &mut b], 0, 1, None);
    let gone = gone[0].to_key();
    let rec = a.store().record(&gone).unwrap().unwrap();
    assert_eq!(rec.state, BundleState::CustodyTransferred);
    // A bundle with a long lifetime stays held, and its record with it.
    let long = 10 * retention;
    let kept = submit(
        &mut a,
        T0,
        vec![data("dtn://c/app", b"y", Some(long), None)],
    );
    let kept = kept[0].to_key();
    let due = T0.plus_ms(LIFETIME_MS + retention);
    a.handle(DtnTime(due.0 - 1), Event::Tick).unwrap();
    assert!(a.store().record(&gone).unwrap().is_some(), "kept until due");
    a.handle(due, Event::Tick).unwrap();
    assert!(
        a.store().record(&gone).unwrap().is_none(),
        "dropped when due"
    );
    let rec = a.store().record(&kept).unwrap().unwrap();
    assert_eq!(rec.state, BundleState::Stored, "a held record stays");
    let counters: std::collections::BTreeMap<_, _> =
        a.store().counters().unwrap().into_iter().collect();
    assert_eq!(counters.get("records_forgotten"), Some(&1));
}

/// A peer that refuses custody for lack of room is offered the bundle
/// again after the custody timeout; [`Agent::next_wakeup`] names that time
/// (the simulator ticks on `next_wakeup` only), and a tick then puts the
/// bundle back in the peer's window.
#[test]
fn a_refusal_for_lack_of_room_is_retried_at_the_wakeup_it_names() {
    let mut a = agent("a");
    let id = submit(&mut a, T0, vec![data("dtn://z/app", b"x", None, None)]).remove(0);
    let sent = |acts: &[Action]| {
        acts.iter()
            .filter(|x| matches!(x, Action::Transmit { id: i, .. } if *i == id))
            .count()
    };
    let acts = super::tests::meet_empty_peer(&mut a, "dtn://b/");
    assert_eq!(sent(&acts), 1, "the bundle is offered to b");
    let signal = crate::bundle::admin::CustodySignal {
        accepted: false,
        reason: CustodyReason::DepletedStorage,
        bundles: vec![id.clone()],
    };
    let from = eid("dtn://b/");
    let acts = a.handle(T0, Event::CustodySignal { from, signal }).unwrap();
    assert_eq!(sent(&acts), 0, "not offered again at once");
    let timeout = a.cfg.custody_timeout_ms;
    assert_eq!(a.next_wakeup().unwrap(), Some(T0.plus_ms(timeout)));
    let acts = a.handle(T0.plus_ms(timeout - 1), Event::Tick).unwrap();
    assert_eq!(sent(&acts), 0, "still refused before the timeout");
    let acts = a.handle(T0.plus_ms(timeout), Event::Tick).unwrap();
    assert_eq!(sent(&acts), 1, "offered again once the timeout has passed");
    assert_eq!(a.next_wakeup().unwrap(), Some(T0.plus_ms(2 * timeout)));
}
