//! Sans-IO tests of routing loops. Stale delay adverts (spec/routing.md §4)
//! can send a bundle round a ring of nodes that are all in contact. Two
//! rules keep the bundle and end the loop, whichever arrives first at the
//! node that started the round: the bundle itself (spec/custody.md,
//! "Loops": refused while our copy is being handed on) or the custody
//! signal (spec/routing.md §1 rule 3: not offered again in this contact to
//! a peer that took custody of it).

use super::inflight::InFlight;
use super::tests::{Net, T0, agent_with, eid};
use super::*;
use crate::bundle::admin::CustodyReason;
use crate::routing::Advert;
use crate::store::records::BundleState;

/// `to` learns that `from` reaches node z in 10 ms (and nothing else).
fn advertise_z(now: DtnTime, to: &mut Agent, from: &str) {
    let advert = Advert {
        delay_ms: vec![(eid("dtn://z/"), 10)],
        predictability: Vec::new(),
    };
    let peer = eid(from);
    to.handle(now, Event::PeerAdvert { peer, advert }).unwrap();
}

/// Three spore nodes in contact with each other, each believing the next
/// one (a → b → c → a) closer to z and knowing no route that avoids it;
/// a bundle for z is submitted at a and the exchange runs until it settles
/// (the test's [`Net`] panics if it never does). Returns the agents and
/// the bundle's ID.
fn ring(fifo: bool) -> ([Agent; 3], BundleId) {
    let [mut a, mut b, mut c] = ["a", "b", "c"].map(|n| agent_with(n, "spore"));
    let mut net = Net::new();
    net.fifo = fifo;
    let nodes = &mut [&mut a, &mut b, &mut c];
    net.contact(T0, nodes, 0, 1, None);
    net.contact(T0, nodes, 1, 2, None);
    net.contact(T0, nodes, 2, 0, None);
    advertise_z(T0, nodes[0], "dtn://b/");
    advertise_z(T0, nodes[1], "dtn://c/");
    advertise_z(T0, nodes[2], "dtn://a/");
    let submit = Event::Submit {
        ticket: 1,
        items: vec![Submission::Data {
            destination: eid("dtn://z/app"),
            payload: Bytes::from_static(b"x"),
            lifetime_ms: None,
            flags: 0,
            content_cid: None,
            expires_by_ms: None,
        }],
    };
    let acts = nodes[0].handle(T0, submit).unwrap();
    let id = acts
        .iter()
        .find_map(|a| match a {
            Action::Submitted { result, .. } => Some(result.as_ref().unwrap()[0].clone()),
            _ => None,
        })
        .unwrap();
    net.route(T0, nodes, 0, acts, None);
    ([a, b, c], id)
}

fn state(x: &Agent, id: &BundleId) -> BundleState {
    x.store().record(&id.to_key()).unwrap().unwrap().state
}

fn handed_on(x: &Agent, id: &BundleId) -> usize {
    let rec = x.store().record(&id.to_key()).unwrap().unwrap();
    rec.history
        .iter()
        .filter(|e| e.event.starts_with("custody transferred"))
        .count()
}

/// Found by the simulator (100 nodes, 700 messages, `spore` policy): b's
/// signal reaches a before the bundle comes round, a released its copy and
/// accepted the bundle again, and it went a → b → c → a → … at one
/// instant without end. Now a keeps it after one round.
#[test]
fn a_bundle_that_comes_round_after_its_signal_is_kept_not_sent_round_again() {
    let ([a, b, c], id) = ring(true);
    let states = [&a, &b, &c].map(|x| state(x, &id));
    use BundleState::{CustodyTransferred as Gone, Stored};
    assert_eq!(states, [Stored, Gone, Gone], "one holder: a");
    let rounds = [&a, &b, &c].map(|x| handed_on(x, &id));
    assert_eq!(rounds, [1, 1, 1], "one round");
}

/// The other order: the bundle comes round to a while a's copy is still
/// on its way to b. "Duplicate" would make c release, then b's signal
/// made a release too: nobody held the bundle. Now a refuses it (in
/// transit), c keeps it, and a releases when b's signal comes.
#[test]
fn a_bundle_that_comes_round_before_its_signal_is_refused_and_not_lost() {
    let ([a, b, c], id) = ring(false);
    let states = [&a, &b, &c].map(|x| state(x, &id));
    use BundleState::{CustodyTransferred as Gone, Stored};
    assert_eq!(states, [Gone, Gone, Stored], "one holder: c");
    let counters = a.store().counters().unwrap();
    let refused = counters.iter().find(|(k, _)| k == "refused_in_transit");
    assert_eq!(refused.map(|(_, n)| *n), Some(1), "{counters:?}");
}

/// Found by the simulator (`scripts/sim-chaos.sh 500 20001`, case 20260,
/// spray-and-wait): b and c each held a bundle from a, with copies to
/// spare, and offered it to each other. Each answered "duplicate"; each
/// signal came back to a sender that no longer tracked its transmission
/// (the contact had been replaced), which counts as handing over every
/// copy; both released and nobody held the bundle. Now a node that holds
/// the bundle from another node refuses it ("held elsewhere"), so the
/// sender keeps its copy; from the sender itself it is still "duplicate".
#[test]
fn two_holders_offering_each_other_a_bundle_both_keep_it() {
    let [mut a, mut b, mut c] = ["a", "b", "c"].map(|n| agent_with(n, "spray-and-wait:8"));
    let ids = super::tests::submit(
        &mut a,
        T0,
        vec![super::tests::data("dtn://z/app", b"x", None, None)],
    );
    let id = &ids[0];
    let mut net = super::tests::Net::new();
    let nodes = &mut [&mut a, &mut b, &mut c];
    net.contact(T0, nodes, 0, 1, None);
    net.contact(T0, nodes, 0, 2, None);
    let key = id.to_key();
    let copies = |x: &Agent| x.store().record(&key).unwrap().unwrap().copies;
    assert!(
        copies(&b) >= 2 && copies(&c) >= 2,
        "b and c have copies to give"
    );
    // b's offer to c, as b builds it (2 of its copies).
    let rec = b.store().record(&key).unwrap().unwrap();
    let bytes = b
        .build_transmit(T0, &key, &rec, 2, 1)
        .unwrap()
        .unwrap()
        .to_bytes();
    let out = c
        .handle(
            T0,
            Event::Received(vec![Received::new(eid("dtn://b/"), bytes)]),
        )
        .unwrap();
    let signal = out
        .into_iter()
        .find_map(|x| match x {
            Action::SendCustodySignal { signal, .. } => Some(signal),
            _ => None,
        })
        .expect("a custody signal for b");
    assert!(!signal.accepted);
    assert_ne!(
        signal.reason,
        CustodyReason::Duplicate,
        "c holds it from a, not from b"
    );
    // b no longer tracks the transmission (a replaced contact): the signal
    // must still not make it release.
    b.handle(
        T0,
        Event::CustodySignal {
            from: eid("dtn://c/"),
            signal,
        },
    )
    .unwrap();
    use BundleState::Stored;
    assert_eq!(
        [state(&b, id), state(&c, id)],
        [Stored, Stored],
        "both keep it"
    );
    let counters = c.store().counters().unwrap();
    let refused = counters.iter().find(|(k, _)| k == "refused_held_elsewhere");
    assert_eq!(refused.map(|(_, n)| *n), Some(1), "{counters:?}");
}

/// The custody signal among `actions`.
fn signal_in(actions: Vec<Action>) -> crate::bundle::admin::CustodySignal {
    actions
        .into_iter()
        .find_map(|x| match x {
            Action::SendCustodySignal { signal, .. } => Some(signal),
            _ => None,
        })
        .expect("a custody signal")
}

/// The contact summary among `actions`: held, from you, advert.
fn summary_in(actions: Vec<Action>) -> (Vec<BundleId>, Vec<FromYou>, Advert) {
    actions
        .into_iter()
        .find_map(|x| match x {
            Action::SendSummary {
                held,
                from_you,
                advert,
                ..
            } => Some((held, from_you, advert)),
            _ => None,
        })
        .expect("a summary")
}

/// The bundle `id` as `from` would send it, received by `to` at `now`;
/// returns `to`'s actions.
fn hand(now: DtnTime, from: &mut Agent, to: &mut Agent, id: &BundleId) -> Vec<Action> {
    let key = id.to_key();
    let rec = from.store().record(&key).unwrap().unwrap();
    let bytes = from
        .build_transmit(now, &key, &rec, 1, 1)
        .unwrap()
        .unwrap()
        .to_bytes();
    let sender = from.node_id().clone();
    let ev = Event::Received(vec![Received::new(sender, bytes)]);
    to.handle(now, ev).unwrap()
}

/// A summary is made when its contact begins. b's names the copy a handed
/// b before the bundle came back to a (through c); b has since passed that
/// copy on. Released on that summary, a's copy would leave no holder (the
/// simulator's chaos campaign, case 90364): only a transmission with no
/// signal back lets a summary release (spec/custody.md, "Lost custody signals").
#[test]
fn a_stale_summary_does_not_release_a_copy_that_came_back() {
    let [mut a, mut b, mut c] = ["a", "b", "c"].map(|n| agent_with(n, "spray-and-wait:1"));
    let data = super::tests::data("dtn://z/app", b"x", None, None);
    let id = super::tests::submit(&mut a, T0, vec![data]).remove(0);
    // a hands the bundle to b; b's signal reaches a: custody moved on.
    let signal = signal_in(hand(T0, &mut a, &mut b, &id));
    assert!(signal.accepted);
    let from = eid("dtn://b/");
    a.handle(T0, Event::CustodySignal { from, signal }).unwrap();
    assert_eq!(state(&a, &id), BundleState::CustodyTransferred);
    // b meets a again: its summary says it holds the bundle, from a.
    let t1 = T0.plus_ms(1000);
    let up = |peer: &str| Event::ContactUp {
        peer: eid(peer),
        addr: None,
        rtt_us: 1000,
    };
    let summary = summary_in(b.handle(t1, up("dtn://a/")).unwrap());
    assert!(
        summary.1.iter().any(|f| f.id == id),
        "b's summary names the bundle it got from a"
    );
    // Meanwhile b's copy went to c, and c's back to a.
    hand(t1, &mut b, &mut c, &id);
    hand(t1, &mut c, &mut a, &id);
    assert_eq!(state(&a, &id), BundleState::Stored);
    // The summary reaches a, in contact with b.
    a.handle(t1, up("dtn://b/")).unwrap();
    let (held, from_you, advert) = summary;
    let ev = Event::PeerSummary {
        peer: eid("dtn://b/"),
        held,
        from_you,
        advert,
    };
    a.handle(t1, ev).unwrap();
    assert!(state(&a, &id).is_held(), "a keeps the copy that came back");
}

/// The case the unconfirmed rule alone left open (spec/custody.md, "Lost
/// custody signals"): b got its copy from a in the bundle's *earlier* stay
/// at a, and a's transmission to b of the current stay was lost. b's
/// summary names the transmission its copy came by; a releases only if
/// that is the lost one.
#[test]
fn a_summary_releases_only_for_the_transmission_it_names() {
    let [mut a, mut b, mut c] = ["a", "b", "c"].map(|n| agent_with(n, "spray-and-wait:1"));
    let data = super::tests::data("dtn://z/app", b"x", None, None);
    let id = super::tests::submit(&mut a, T0, vec![data]).remove(0);
    let key = id.to_key();
    let (peer_a, peer_b) = (eid("dtn://a/"), eid("dtn://b/"));
    // Stay 1: a hands the bundle to b (transmission 1); b's signal comes.
    let signal = signal_in(hand(T0, &mut a, &mut b, &id));
    let from = peer_b.clone();
    a.handle(T0, Event::CustodySignal { from, signal }).unwrap();
    let b_rec = b.store().record(&key).unwrap().unwrap();
    assert_eq!(b_rec.received_transmission, Some(1), "b keeps the number");
    // b meets a: its summary names the bundle and transmission 1.
    let t1 = T0.plus_ms(1000);
    let up = |peer: &Eid| Event::ContactUp {
        peer: peer.clone(),
        addr: None,
        rtt_us: 1000,
    };
    let (held, from_you, advert) = summary_in(b.handle(t1, up(&peer_a)).unwrap());
    assert!(from_you.contains(&FromYou {
        id: id.clone(),
        transmission: Some(1)
    }));
    // Meanwhile the bundle goes b -> c -> a (stay 2 at a), and a sends it
    // to b again, a transmission that is lost (no signal comes).
    hand(t1, &mut b, &mut c, &id);
    hand(t1, &mut c, &mut a, &id);
    let lost = a.next_transmission(t1);
    let f = InFlight {
        sent_at_ms: t1.0,
        give: 1,
        bytes: 100,
        transmission: lost,
    };
    a.in_flight.insert(key.clone(), peer_b.clone(), f);
    a.in_flight.fail(&key, &peer_b);
    assert!(a.in_flight.unconfirmed(&key, &peer_b, None));
    // The stale summary reaches a: it names transmission 1, not the lost
    // one, so a keeps the only copy.
    a.handle(t1, up(&peer_b)).unwrap();
    let summary = |from_you| Event::PeerSummary {
        peer: peer_b.clone(),
        held: held.clone(),
        from_you,
        advert: advert.clone(),
    };
    a.handle(t1, summary(from_you)).unwrap();
    assert!(state(&a, &id).is_held(), "a keeps the copy that came back");
    // A summary naming the lost transmission (b got it after all)
    // releases a's copy: lost custody signals are still recovered.
    let named = vec![FromYou {
        id: id.clone(),
        transmission: Some(lost),
    }];
    a.handle(t1, summary(named)).unwrap();
    assert_eq!(state(&a, &id), BundleState::CustodyTransferred);
}
