//! Sans-IO tests of the agent: two or three agents with in-memory stores,
//! actions carried between them by hand, time given explicitly.

use super::*;
use crate::bundle::admin::CustodyReason;
use crate::bundle::codec;
use crate::bundle::{Bundle, CreationTimestamp};
use crate::content::{Chunker, ManifestBuilder, chunk_cid};
use crate::store::records::BundleState;

pub(super) const T0: DtnTime = DtnTime(800_000_000_000);

pub(super) fn eid(s: &str) -> Eid {
    s.parse().unwrap()
}

pub(super) fn agent(name: &str) -> Agent {
    let store = Store::open_in_memory().unwrap();
    Agent::new(store, AgentConfig::new(eid(&format!("dtn://{name}/")))).unwrap()
}

pub(super) fn data(
    dest: &str,
    payload: &[u8],
    lifetime_ms: Option<u64>,
    cid: Option<Vec<u8>>,
) -> Submission {
    Submission::Data {
        destination: eid(dest),
        payload: Bytes::copy_from_slice(payload),
        lifetime_ms,
        flags: 0,
        content_cid: cid,
        expires_by_ms: None,
    }
}

pub(super) fn submit(a: &mut Agent, now: DtnTime, items: Vec<Submission>) -> Vec<BundleId> {
    let acts = a.handle(now, Event::Submit { ticket: 1, items }).unwrap();
    for act in acts {
        if let Action::Submitted { result, .. } = act {
            return result.unwrap();
        }
    }
    panic!("no answer to the submission");
}

/// Brings a contact with `peer` (holding nothing) up at `a`, at [`T0`];
/// returns `a`'s actions after the peer's summary (its window fill).
pub(super) fn meet_empty_peer(a: &mut Agent, peer: &str) -> Vec<Action> {
    let peer = eid(peer);
    let up = Event::ContactUp {
        peer: peer.clone(),
        addr: None,
        rtt_us: 1000,
    };
    a.handle(T0, up).unwrap();
    let summary = Event::PeerSummary {
        peer,
        held: vec![],
        from_you: vec![],
        advert: Default::default(),
    };
    a.handle(T0, summary).unwrap()
}

/// A link between agents, carrying actions as events until both are quiet.
/// `drop_signals_from` simulates a node that crashes right after its commit.
pub(super) struct Net {
    pub(super) dropped_signals: usize,
    pub(super) delivered: Vec<Action>,
    /// Carry actions oldest first (a signal overtakes the transmissions
    /// its receiver sent on); newest first by default.
    pub(super) fifo: bool,
}

impl Net {
    pub(super) fn new() -> Net {
        Net {
            dropped_signals: 0,
            delivered: Vec::new(),
            fifo: false,
        }
    }

    pub(super) fn route(
        &mut self,
        now: DtnTime,
        nodes: &mut [&mut Agent],
        from: usize,
        acts: Vec<Action>,
        drop_signals_from: Option<usize>,
    ) {
        let mut queue: Vec<(usize, Action)> = acts.into_iter().map(|a| (from, a)).collect();
        let mut steps = 0;
        while let Some((src, act)) = if self.fifo && !queue.is_empty() {
            Some(queue.remove(0))
        } else {
            queue.pop()
        } {
            steps += 1;
            assert!(steps < 100_000, "the exchange does not settle");
            let src_id = nodes[src].node_id().clone();
            let (peer, ev) = match act {
                Action::Transmit { peer, bytes, .. } => (
                    peer,
                    Event::Received(vec![Received::new(src_id, bytes.to_bytes())]),
                ),
                Action::SendSummary {
                    peer,
                    held,
                    from_you,
                    advert,
                } => (
                    peer,
                    Event::PeerSummary {
                        peer: src_id,
                        held,
                        from_you,
                        advert,
                    },
                ),
                Action::SendAdvert { peer, advert } => (
                    peer,
                    Event::PeerAdvert {
                        peer: src_id,
                        advert,
                    },
                ),
                Action::SendCustodySignal { peer, signal } => {
                    if drop_signals_from == Some(src) {
                        self.dropped_signals += 1;
                        continue;
                    }
                    (
                        peer,
                        Event::CustodySignal {
                            from: src_id,
                            signal,
                        },
                    )
                }
                other => {
                    self.delivered.push(other);
                    continue;
                }
            };
            let Some(dst) = nodes.iter().position(|n| *n.node_id() == peer) else {
                continue;
            };
            let out = nodes[dst].handle(now, ev).unwrap();
            queue.extend(out.into_iter().map(|a| (dst, a)));
        }
    }

    pub(super) fn contact(
        &mut self,
        now: DtnTime,
        nodes: &mut [&mut Agent],
        x: usize,
        y: usize,
        drop_signals_from: Option<usize>,
    ) {
        let (xid, yid) = (nodes[x].node_id().clone(), nodes[y].node_id().clone());
        let ax = nodes[x]
            .handle(
                now,
                Event::ContactUp {
                    peer: yid,
                    addr: None,
                    rtt_us: 1000,
                },
            )
            .unwrap();
        let ay = nodes[y]
            .handle(
                now,
                Event::ContactUp {
                    peer: xid,
                    addr: None,
                    rtt_us: 1000,
                },
            )
            .unwrap();
        self.route(now, nodes, x, ax, drop_signals_from);
        self.route(now, nodes, y, ay, drop_signals_from);
    }

    pub(super) fn down(&mut self, now: DtnTime, nodes: &mut [&mut Agent], x: usize, y: usize) {
        let (xid, yid) = (nodes[x].node_id().clone(), nodes[y].node_id().clone());
        nodes[x]
            .handle(now, Event::ContactDown { peer: yid })
            .unwrap();
        nodes[y]
            .handle(now, Event::ContactDown { peer: xid })
            .unwrap();
    }
}

pub(super) fn state(a: &Agent, id: &BundleId) -> (BundleState, Option<Eid>) {
    let r = a.store().record(&id.to_key()).unwrap().unwrap();
    (r.state, r.custodian)
}

#[test]
fn custody_moves_hop_by_hop_and_the_sender_releases() {
    let (mut a, mut b, mut c) = (agent("a"), agent("b"), agent("c"));
    let items = (0..3)
        .map(|i| data("dtn://c/app", &[i; 100], None, None))
        .collect();
    let ids = submit(&mut a, T0, items);
    assert!(a.held_bytes > 0);
    let mut net = Net::new();
    net.contact(T0, &mut [&mut a, &mut b, &mut c], 0, 1, None);
    for id in &ids {
        assert_eq!(
            state(&a, id),
            (BundleState::CustodyTransferred, Some(eid("dtn://b/")))
        );
        assert_eq!(state(&b, id), (BundleState::Stored, Some(eid("dtn://b/"))));
    }
    assert_eq!(a.held_bytes, 0);
    assert!(a.store().bundle_bytes(&ids[0].to_key()).unwrap().is_none());
    net.down(T0, &mut [&mut a, &mut b, &mut c], 0, 1);
    net.contact(T0.plus_ms(10), &mut [&mut a, &mut b, &mut c], 1, 2, None);
    for id in &ids {
        assert_eq!(
            state(&b, id),
            (BundleState::CustodyTransferred, Some(eid("dtn://c/")))
        );
        assert_eq!(state(&c, id).0, BundleState::Delivered);
    }
    let deliveries = net
        .delivered
        .iter()
        .filter(|a| matches!(a, Action::Deliver { .. }))
        .count();
    assert_eq!(deliveries, 3);
}

#[test]
fn a_lost_custody_signal_is_recovered_from_the_next_summary() {
    let (mut a, mut b) = (agent("a"), agent("b"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"x", None, None)]);
    let mut net = Net::new();
    // B stores the bundle but its signal is lost (B "crashed" after commit).
    net.contact(T0, &mut [&mut a, &mut b], 0, 1, Some(1));
    assert_eq!(net.dropped_signals, 1);
    assert_eq!(state(&a, &ids[0]).0, BundleState::Stored);
    assert_eq!(state(&b, &ids[0]).0, BundleState::Stored);
    net.down(T0, &mut [&mut a, &mut b], 0, 1);
    // At the next contact B's summary says it holds the bundle: that is as
    // good as the lost signal, and A releases its copy without resending.
    let mut net = Net::new();
    net.contact(T0.plus_ms(5), &mut [&mut a, &mut b], 0, 1, None);
    assert_eq!(
        state(&a, &ids[0]),
        (BundleState::CustodyTransferred, Some(eid("dtn://b/")))
    );
    let hist = a.store().record(&ids[0].to_key()).unwrap().unwrap().history;
    assert!(
        hist.last().unwrap().event.contains("already held"),
        "{hist:?}"
    );
    // A's summary lists the bundle too (A held it until it read B's), but B
    // got it from A, so B keeps custody: exactly one custodian remains.
    assert_eq!(
        state(&b, &ids[0]),
        (BundleState::Stored, Some(eid("dtn://b/")))
    );
    assert_eq!(b.store().stats().unwrap().records, 1, "one copy at B");
}

#[test]
fn a_resent_bundle_gets_a_duplicate_signal_and_is_released() {
    let (mut a, mut b) = (agent("a"), agent("b"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"x", None, None)]);
    let rec = a.store().record(&ids[0].to_key()).unwrap().unwrap();
    let bytes = a
        .build_transmit(T0, &ids[0].to_key(), &rec, 1, 1)
        .unwrap()
        .unwrap()
        .to_bytes();
    let from = eid("dtn://a/");
    b.handle(
        T0,
        Event::Received(vec![Received::new(from.clone(), bytes.clone())]),
    )
    .unwrap();
    // The first signal is lost; the resend gets `Duplicate`.
    let out = b
        .handle(T0, Event::Received(vec![Received::new(from, bytes)]))
        .unwrap();
    let Some(Action::SendCustodySignal { signal, .. }) = out.into_iter().next() else {
        panic!()
    };
    assert!(!signal.accepted);
    assert_eq!(signal.reason, CustodyReason::Duplicate);
    a.handle(
        T0,
        Event::CustodySignal {
            from: eid("dtn://b/"),
            signal,
        },
    )
    .unwrap();
    assert_eq!(
        state(&a, &ids[0]),
        (BundleState::CustodyTransferred, Some(eid("dtn://b/")))
    );
    assert_eq!(b.store().stats().unwrap().records, 1, "one copy at B");
}

#[test]
fn expired_bundles_are_deleted_and_never_forwarded() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    let ids = submit(
        &mut a,
        T0,
        vec![data("dtn://c/app", b"short", Some(1000), None)],
    );
    assert_eq!(a.next_wakeup().unwrap(), Some(T0.plus_ms(1000)));
    a.handle(T0.plus_ms(999), Event::Tick).unwrap();
    assert_eq!(state(&a, &ids[0]).0, BundleState::Stored);
    a.handle(T0.plus_ms(1000), Event::Tick).unwrap();
    assert_eq!(state(&a, &ids[0]), (BundleState::Expired, None));
    assert_eq!(a.held_bytes, 0);
    let mut net = Net::new();
    net.contact(T0.plus_ms(2000), &mut [&mut a, &mut c], 0, 1, None);
    assert_eq!(c.store().stats().unwrap().records, 0);
}

#[test]
fn a_bundle_expired_on_arrival_is_refused_with_reason() {
    let (mut a, mut b) = (agent("a"), agent("b"));
    let ts = CreationTimestamp {
        time: T0,
        sequence: 9,
    };
    let old = Bundle::new(
        eid("dtn://x/"),
        eid("dtn://c/app"),
        ts,
        10,
        Bytes::from_static(b"old"),
    );
    let mut old = old;
    old.set_custody(&crate::bundle::blocks::CustodyBlock {
        custodian: eid("dtn://a/"),
        transmission: None,
    });
    let bytes = Bytes::from(codec::encode(&old));
    let out = b
        .handle(
            T0.plus_ms(50),
            Event::Received(vec![Received::new(eid("dtn://a/"), bytes)]),
        )
        .unwrap();
    let Some(Action::SendCustodySignal { signal, .. }) = out.into_iter().next() else {
        panic!()
    };
    assert_eq!(
        (signal.accepted, signal.reason),
        (false, CustodyReason::Expired)
    );
    assert_eq!(
        b.store().counters().unwrap(),
        vec![("received_total".into(), 1), ("refused_expired".into(), 1)]
    );
    let _ = &mut a;
}

#[test]
fn never_back_to_the_previous_hop() {
    let (mut a, mut b) = (agent("a"), agent("b"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"x", None, None)]);
    let mut net = Net::new();
    net.contact(T0, &mut [&mut a, &mut b], 0, 1, None);
    assert_eq!(state(&b, &ids[0]).0, BundleState::Stored);
    // Contact continues and is re-established: B never offers it back to A.
    net.down(T0, &mut [&mut a, &mut b], 0, 1);
    net.contact(T0.plus_ms(1), &mut [&mut a, &mut b], 0, 1, None);
    assert_eq!(state(&b, &ids[0]).0, BundleState::Stored);
    assert_eq!(a.store().stats().unwrap().held, 0);
}

#[test]
fn delivered_at_most_once_even_if_many_copies_arrive() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    let ids = submit(&mut a, T0, vec![data("dtn://c/app", b"hello", None, None)]);
    let rec = a.store().record(&ids[0].to_key()).unwrap().unwrap();
    let bytes = a
        .build_transmit(T0, &ids[0].to_key(), &rec, 1, 1)
        .unwrap()
        .unwrap()
        .to_bytes();
    let from = eid("dtn://a/");
    let mut deliveries = 0;
    for _ in 0..3 {
        let ev = Event::Received(vec![
            Received::new(from.clone(), bytes.clone()),
            Received::new(from.clone(), bytes.clone()),
        ]);
        for act in c.handle(T0, ev).unwrap() {
            deliveries += matches!(act, Action::Deliver { .. }) as usize;
        }
    }
    assert_eq!(deliveries, 1);
    let counters: BTreeMap<_, _> = c.store().counters().unwrap().into_iter().collect();
    assert_eq!(counters.get("duplicates"), Some(&5));
}

#[test]
fn a_file_is_reassembled_once_all_chunks_and_the_manifest_are_in() {
    let (mut a, mut b, mut c) = (agent("a"), agent("b"), agent("c"));
    let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut builder = ManifestBuilder::new("f.bin", 1024);
    let mut items = Vec::new();
    for chunk in Chunker::new(&content[..], 1024).unwrap() {
        let chunk = chunk.unwrap();
        builder.push(&chunk);
        items.push(data(
            "dtn://c/files",
            &chunk.data,
            None,
            Some(chunk.cid.to_bytes()),
        ));
    }
    let m = builder.finish();
    items.push(data(
        "dtn://c/files",
        &m.encode(),
        None,
        Some(m.cid().to_bytes()),
    ));
    submit(&mut a, T0, items);
    let mut net = Net::new();
    net.contact(T0, &mut [&mut a, &mut b, &mut c], 0, 1, None);
    net.down(T0, &mut [&mut a, &mut b, &mut c], 0, 1);
    net.contact(T0, &mut [&mut a, &mut b, &mut c], 1, 2, None);
    let assemble: Vec<_> = net
        .delivered
        .iter()
        .filter_map(|a| match a {
            Action::AssembleFile {
                manifest_cid,
                manifest,
            } => Some((manifest_cid.clone(), manifest.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(assemble.len(), 1);
    let (mcid, manifest) = &assemble[0];
    assert_eq!(manifest, &m);
    let first = chunk_cid(&content[..1024]).to_bytes();
    assert_eq!(
        c.store().chunk(&first).unwrap().as_deref(),
        Some(&content[..1024])
    );
    c.handle(
        T0,
        Event::FileWritten {
            manifest_cid: mcid.clone(),
            path: "/x/f.bin".into(),
        },
    )
    .unwrap();
    assert_eq!(
        c.store().chunk_refs(&first).unwrap(),
        0,
        "inbox chunks released after the write"
    );
    let files = c.store().files().unwrap();
    assert_eq!(files[0].path.as_deref(), Some("/x/f.bin"));
    assert_eq!(
        b.store().stats().unwrap().chunks,
        0,
        "relay released its chunks"
    );
}

#[test]
fn a_delivery_status_report_comes_back_to_the_source() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    let item = Submission::Data {
        destination: eid("dtn://c/app"),
        payload: Bytes::from_static(b"report me"),
        lifetime_ms: None,
        flags: crate::bundle::BundleFlags::REPORT_DELIVERY,
        content_cid: None,
        expires_by_ms: None,
    };
    let ids = submit(&mut a, T0, vec![item]);
    let mut net = Net::new();
    net.contact(T0, &mut [&mut a, &mut c], 0, 1, None);
    let rec = a.store().record(&ids[0].to_key()).unwrap().unwrap();
    let found = rec
        .history
        .iter()
        .any(|h| h.event.contains("status report from dtn://c/") && h.event.contains("delivered"));
    assert!(found, "{:?}", rec.history);
    let counters: BTreeMap<_, _> = c.store().counters().unwrap().into_iter().collect();
    assert_eq!(counters.get("status_reports_sent"), Some(&1));
}

pub(super) fn agent_with(name: &str, policy: &str) -> Agent {
    let store = Store::open_in_memory().unwrap();
    let mut cfg = AgentConfig::new(eid(&format!("dtn://{name}/")));
    cfg.policy = policy.parse().unwrap();
    Agent::new(store, cfg).unwrap()
}

#[test]
fn a_metered_link_holds_bulk_bundles_and_passes_small_ones() {
    let (mut a, mut b) = (agent("a"), agent("b"));
    let big = vec![7u8; 100 << 10];
    let ids = submit(
        &mut a,
        T0,
        vec![
            data("dtn://b/app", &big, None, None),
            data("dtn://b/app", b"small and urgent", None, None),
        ],
    );
    let metered = |m| Event::Metered {
        peer: eid("dtn://b/"),
        metered: m,
    };
    a.handle(T0, metered(true)).unwrap();
    let mut net = Net::new();
    net.contact(T0, &mut [&mut a, &mut b], 0, 1, None);
    assert!(
        b.store().is_delivered(&ids[1].to_key()).unwrap(),
        "small flows"
    );
    assert!(
        !b.store().is_delivered(&ids[0].to_key()).unwrap(),
        "bulk waits"
    );
    let routes = a.route_views(T0, 10).unwrap();
    let reason = routes[0].peers[0].reason;
    assert_eq!(reason, Some("metered"), "{:?}", routes[0]);
    // The flag clears: the bulk bundle goes at once, in the same contact.
    let acts = a.handle(T0, metered(false)).unwrap();
    net.route(T0, &mut [&mut a, &mut b], 0, acts, None);
    assert!(b.store().is_delivered(&ids[0].to_key()).unwrap());
}

#[test]
fn the_window_is_bounded_in_bytes_as_well_as_bundles() {
    for (window_kib, expected) in [(150u64, 1usize), (250, 2), (1000, 3), (50, 1)] {
        let mut cfg = AgentConfig::new(eid("dtn://a/"));
        cfg.window_bytes_per_contact = window_kib << 10;
        let mut a = Agent::new(Store::open_in_memory().unwrap(), cfg).unwrap();
        let items = (0..3u8)
            .map(|i| data("dtn://b/app", &vec![i; 100 << 10], None, None))
            .collect();
        submit(&mut a, T0, items);
        let acts = meet_empty_peer(&mut a, "dtn://b/");
        let sent = acts
            .iter()
            .filter(|x| matches!(x, Action::Transmit { .. }))
            .count();
        // One bundle always goes on an empty window, even a larger one.
        assert_eq!(sent, expected, "window {window_kib} KiB");
    }
}

#[test]
fn a_contact_sends_the_nearest_deadline_first_whatever_the_creation_order() {
    let mut a = agent("a");
    // Created first with the longest lifetime; then two with shorter ones.
    let ids: Vec<BundleId> = [(50_000u64, 1u8), (30_000, 2), (10_000, 3)]
        .into_iter()
        .flat_map(|(life, byte)| {
            submit(
                &mut a,
                T0,
                vec![data("dtn://b/app", &[byte; 10], Some(life), None)],
            )
        })
        .collect();
    let sent: Vec<BundleId> = meet_empty_peer(&mut a, "dtn://b/")
        .into_iter()
        .filter_map(|x| match x {
            Action::Transmit { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]);
}

#[test]
fn a_manifest_that_travels_first_announces_its_file_before_assembly() {
    let (mut a, mut c) = (agent("a"), agent("c"));
    let content: Vec<u8> = (0..5_000u32).map(|i| (i * 3 % 251) as u8).collect();
    let mut builder = ManifestBuilder::new("g.bin", 1024);
    let mut items = Vec::new();
    for chunk in Chunker::new(&content[..], 1024).unwrap() {
        let chunk = chunk.unwrap();
        builder.push(&chunk);
        let cid = Some(chunk.cid.to_bytes());
        items.push(data("dtn://c/files", &chunk.data, Some(60_000), cid));
    }
    let m = builder.finish();
    // The nearest deadline: sent first (spec/routing.md §7).
    let cid = Some(m.cid().to_bytes());
    items.push(data("dtn://c/files", &m.encode(), Some(59_999), cid));
    submit(&mut a, T0, items);
    let mut net = Net::new();
    net.fifo = true;
    net.contact(T0, &mut [&mut a, &mut c], 0, 1, None);
    let kinds: Vec<&str> = net
        .delivered
        .iter()
        .filter_map(|x| match x {
            Action::ExpectFile { manifest, .. } => {
                assert_eq!(manifest, &m);
                Some("expect")
            }
            Action::AssembleFile { manifest, .. } => {
                assert_eq!(manifest, &m);
                Some("assemble")
            }
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["expect", "assemble"]);
}

#[test]
fn expires_by_cuts_the_lifetime_and_a_past_bound_is_refused() {
    let mut a = agent("a");
    let bounded = |by: u64| Submission::Data {
        destination: eid("dtn://b/app"),
        payload: Bytes::from_static(b"m"),
        lifetime_ms: Some(10_000),
        flags: 0,
        content_cid: None,
        expires_by_ms: Some(by),
    };
    let expiry =
        |a: &Agent, id: &BundleId| a.store().record(&id.to_key()).unwrap().unwrap().expiry_ms;
    let ids = submit(
        &mut a,
        T0,
        vec![bounded(T0.0 + 4_000), bounded(T0.0 + 50_000)],
    );
    assert_eq!(expiry(&a, &ids[0]), T0.0 + 4_000, "cut to the bound");
    assert_eq!(
        expiry(&a, &ids[1]),
        T0.0 + 10_000,
        "a later bound changes nothing"
    );
    let acts = a
        .handle(
            T0,
            Event::Submit {
                ticket: 2,
                items: vec![bounded(T0.0)],
            },
        )
        .unwrap();
    let refused = acts.iter().any(|x| {
        matches!(x, Action::Submitted { result: Err(e), .. } if e.contains("not after its creation time"))
    });
    assert!(refused, "{acts:?}");
}
