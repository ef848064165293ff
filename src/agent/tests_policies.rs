//! Sans-IO tests of the routing policies' copy handling in the agent:
//! epidemic and spray-and-wait copy counts, a bundle that comes back, a
//! lost signal from the destination, PRoPHET's table across restarts.

use super::tests::{Net, T0, agent, agent_with, data, eid, state, submit};
use super::*;
use crate::bundle::admin::CustodyReason;
use crate::bundle::codec;
use crate::bundle::{Bundle, CreationTimestamp};
use crate::store::records::BundleState;
fn copies(a: &Agent, id: &BundleId) -> (BundleState, u32) {
    let r = a.store().record(&id.to_key()).unwrap().unwrap();
    (r.state, r.copies)
}

#[test]
fn epidemic_keeps_its_copy_and_every_peer_gets_one() {
    let [mut a, mut b, mut c, mut d] = ["a", "b", "c", "d"].map(|n| agent_with(n, "epidemic"));
    let ids = submit(&mut a, T0, vec![data("dtn://d/app", b"x", None, None)]);
    let id = &ids[0];
    let mut net = Net::new();
    let nodes = &mut [&mut a, &mut b, &mut c, &mut d];
    net.contact(T0, nodes, 0, 1, None);
    net.down(T0, nodes, 0, 1);
    net.contact(T0, nodes, 0, 2, None);
    net.down(T0, nodes, 0, 2);
    let unlimited = crate::routing::COPIES_UNLIMITED;
    assert_eq!(copies(&a, id), (BundleState::Stored, unlimited));
    assert_eq!(copies(&b, id), (BundleState::Stored, unlimited));
    assert_eq!(copies(&c, id), (BundleState::Stored, unlimited));
    // b and c already hold it: no transfer between them.
    let nodes = &mut [&mut a, &mut b, &mut c, &mut d];
    net.contact(T0, nodes, 1, 2, None);
    net.down(T0, nodes, 1, 2);
    net.contact(T0, nodes, 2, 3, None);
    assert!(d.store().is_delivered(&id.to_key()).unwrap());
    assert_eq!(
        copies(&c, id).0,
        BundleState::CustodyTransferred,
        "released after delivery"
    );
    let sent = |x: &Agent| x.store().counters().unwrap();
    assert!(
        sent(&b).iter().all(|(k, _)| k != "copies_given"),
        "{:?}",
        sent(&b)
    );
}

#[test]
fn spray_and_wait_halves_copies_then_waits_for_the_destination() {
    let [mut a, mut b, mut c, mut e, mut d] =
        ["a", "b", "c", "e", "d"].map(|n| agent_with(n, "spray-and-wait:4"));
    let ids = submit(&mut a, T0, vec![data("dtn://d/app", b"x", None, None)]);
    let id = &ids[0];
    assert_eq!(copies(&a, id), (BundleState::Stored, 4));
    let mut net = Net::new();
    let nodes = &mut [&mut a, &mut b, &mut c, &mut e, &mut d];
    net.contact(T0, nodes, 0, 1, None);
    net.down(T0, nodes, 0, 1);
    net.contact(T0, nodes, 0, 2, None);
    net.down(T0, nodes, 0, 2);
    net.contact(T0, nodes, 0, 3, None);
    net.down(T0, nodes, 0, 3);
    assert_eq!(
        copies(&a, id),
        (BundleState::Stored, 1),
        "4 → 2 → 1, then wait"
    );
    assert_eq!(copies(&b, id), (BundleState::Stored, 2));
    assert_eq!(copies(&c, id), (BundleState::Stored, 1));
    assert!(
        e.store().record(&id.to_key()).unwrap().is_none(),
        "wait phase"
    );
    // The last copy goes to the destination itself and is released there.
    let nodes = &mut [&mut a, &mut b, &mut c, &mut e, &mut d];
    net.contact(T0, nodes, 2, 4, None);
    assert_eq!(copies(&c, id).0, BundleState::CustodyTransferred);
    assert!(d.store().is_delivered(&id.to_key()).unwrap());
}

/// Copies left behind by spraying are released when their holder meets
/// the destination and its summary lists the bundle (it came by another
/// path); before, they stayed until expiry. A bundle the destination does
/// not list stays.
#[test]
fn copies_are_released_when_the_destination_already_holds_the_bundle() {
    let [mut a, mut b, mut d] = ["a", "b", "d"].map(|n| agent_with(n, "spray-and-wait:4"));
    let ids = submit(&mut a, T0, vec![data("dtn://d/app", b"x", None, None)]);
    let id = &ids[0];
    let mut net = Net::new();
    let nodes = &mut [&mut a, &mut b, &mut d];
    net.contact(T0, nodes, 0, 1, None); // A keeps 2 copies, B gets 2
    net.down(T0, nodes, 0, 1);
    net.contact(T0, nodes, 1, 2, None); // B delivers to D
    net.down(T0, nodes, 1, 2);
    assert!(d.store().is_delivered(&id.to_key()).unwrap());
    assert_eq!(copies(&a, id), (BundleState::Stored, 2));
    let other = submit(&mut a, T0, vec![data("dtn://x/app", b"y", None, None)]);

    let held_before = a.held_bytes;
    let nodes = &mut [&mut a, &mut b, &mut d];
    net.contact(T0.plus_ms(10), nodes, 0, 2, None);
    let (state, custodian) = state(&a, id);
    assert_eq!(state, BundleState::CustodyTransferred);
    assert_eq!(custodian, Some(eid("dtn://d/")));
    assert!(a.store().bundle_bytes(&id.to_key()).unwrap().is_none());
    let rec = a.store().record(&id.to_key()).unwrap().unwrap();
    assert!(
        rec.history
            .iter()
            .any(|h| h.event.contains("already holds it")),
        "{:?}",
        rec.history
    );
    let counters: BTreeMap<_, _> = a.store().counters().unwrap().into_iter().collect();
    assert_eq!(counters.get("released_held_at_destination"), Some(&1));
    assert_eq!(copies(&a, &other[0]).0, BundleState::Stored, "not D's");
    assert_eq!(a.held_bytes, held_before - rec.size_bytes);
}

/// An epidemic copy is released at the destination too, and the releaser
/// lists the bundle in its summaries from then on, so a peer that still
/// holds a copy does not hand it back.
#[test]
fn a_released_epidemic_copy_is_not_handed_back() {
    let [mut a, mut b, mut c, mut d] = ["a", "b", "c", "d"].map(|n| agent_with(n, "epidemic"));
    let ids = submit(&mut a, T0, vec![data("dtn://d/app", b"x", None, None)]);
    let id = &ids[0];
    let mut net = Net::new();
    let nodes = &mut [&mut a, &mut b, &mut c, &mut d];
    for (x, y) in [(0, 1), (1, 2), (1, 3)] {
        net.contact(T0, nodes, x, y, None); // A → B → C, and B → D
        net.down(T0, nodes, x, y);
    }
    assert!(d.store().is_delivered(&id.to_key()).unwrap());
    assert_eq!(state(&c, id).0, BundleState::Stored, "C keeps its copy");

    let nodes = &mut [&mut a, &mut b, &mut c, &mut d];
    net.contact(T0.plus_ms(10), nodes, 0, 3, None);
    net.down(T0.plus_ms(10), nodes, 0, 3);
    assert_eq!(
        state(&a, id),
        (BundleState::CustodyTransferred, Some(eid("dtn://d/")))
    );
    let received = |a: &Agent| {
        let m: BTreeMap<_, _> = a.store().counters().unwrap().into_iter().collect();
        m.get("received_total").copied().unwrap_or(0)
    };
    let before = received(&a);
    let nodes = &mut [&mut a, &mut b, &mut c, &mut d];
    net.contact(T0.plus_ms(20), nodes, 0, 2, None);
    assert_eq!(received(&a), before, "C did not hand the bundle back to A");
    assert_eq!(state(&a, id).0, BundleState::CustodyTransferred);
}

/// Found by the simulator: a bundle that comes back to a node it passed
/// through used to be answered "duplicate", and the sender released the
/// last copy.
#[test]
fn a_bundle_that_comes_back_is_accepted_again_not_lost() {
    let mut b = agent_with("b", "direct");
    let mut bundle = Bundle::new(
        eid("dtn://a/"),
        eid("dtn://z/app"),
        CreationTimestamp {
            time: T0,
            sequence: 1,
        },
        3_600_000,
        Bytes::from_static(b"x"),
    );
    bundle.set_custody(&crate::bundle::blocks::CustodyBlock {
        custodian: eid("dtn://a/"),
        transmission: None,
    });
    let id = bundle.id();
    let bytes = Bytes::from(codec::encode(&bundle));
    let receive = |b: &mut Agent, from: &str| {
        let items = vec![Received::new(eid(from), bytes.clone())];
        b.handle(T0, Event::Received(items)).unwrap()
    };
    receive(&mut b, "dtn://a/");
    let signal = CustodySignal {
        accepted: true,
        reason: CustodyReason::Accepted,
        bundles: vec![id.clone()],
    };
    let from = eid("dtn://c/");
    b.handle(T0, Event::CustodySignal { from, signal }).unwrap();
    assert_eq!(state(&b, &id).0, BundleState::CustodyTransferred);
    // It comes back from d: accepted, not "duplicate" (d would release it).
    let acts = receive(&mut b, "dtn://d/");
    let accepted = acts
        .iter()
        .any(|a| matches!(a, Action::SendCustodySignal { signal, .. } if signal.accepted));
    assert!(accepted, "{acts:?}");
    let back = b.store().record(&id.to_key()).unwrap().unwrap();
    assert_eq!(back.state, BundleState::Stored, "b holds it again");
    assert!(
        back.history.len() > 2,
        "earlier history kept: {:?}",
        back.history
    );
}

/// The destination delivered the bundle but its custody signal was lost:
/// its next summary names the bundle among those it delivered from us, and
/// we release it (the demo's B–C link drop found this case).
#[test]
fn a_lost_signal_from_the_destination_is_recovered_from_its_summary() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"x", None, None)]);
    let mut net = Net::new();
    net.contact(T0, &mut [&mut a, &mut c], 0, 1, Some(1));
    assert_eq!(net.dropped_signals, 1);
    assert!(c.store().is_delivered(&ids[0].to_key()).unwrap());
    assert_eq!(state(&a, &ids[0]).0, BundleState::Stored);
    net.down(T0, &mut [&mut a, &mut c], 0, 1);
    let mut net = Net::new();
    net.contact(T0.plus_ms(5), &mut [&mut a, &mut c], 0, 1, None);
    assert_eq!(state(&a, &ids[0]).0, BundleState::CustodyTransferred);
}

#[test]
fn prophet_table_survives_a_restart_and_a_corrupt_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let open = || {
        let mut cfg = AgentConfig::new(eid("dtn://a/"));
        cfg.policy = Policy::Prophet;
        Agent::new(Store::open(&path).unwrap(), cfg).unwrap()
    };
    let p_of = |a: &Agent, node: &str| {
        let adv = a.router().advert(T0.0 + 20_000);
        adv.predictability
            .iter()
            .find(|(n, _)| n == &eid(node))
            .map(|(_, p)| *p)
    };
    let before = {
        let mut a = open();
        let up = Event::ContactUp {
            peer: eid("dtn://b/"),
            addr: None,
            rtt_us: 1000,
        };
        a.handle(T0, up).unwrap();
        a.handle(
            T0,
            Event::ContactDown {
                peer: eid("dtn://b/"),
            },
        )
        .unwrap();
        a.handle(DtnTime(T0.0 + PEER_FLUSH_MS + 1), Event::Tick)
            .unwrap();
        let p = p_of(&a, "dtn://b/").unwrap();
        assert!(p > 0.1, "{p}");
        p
    };
    let a = open();
    assert_eq!(p_of(&a, "dtn://b/"), Some(before), "P(a, b) restored");
    let mut txn = a.store().write().unwrap();
    txn.set_meta_bytes(PROPHET_META_KEY, b"\xff not cbor")
        .unwrap();
    txn.commit().unwrap();
    drop(a);
    let a = open();
    assert_eq!(p_of(&a, "dtn://b/"), None, "a corrupt table is dropped");
}
