//! Unit tests of [`super`]: hand-made plans, a brute-force cross-check
//! (proptest) and a 10 000-contact plan against a fixed-point reference.

use super::*;
use crate::routing::plan::{PlannedContact, node_eid};
use rand::{Rng, SeedableRng};

fn n(i: u64) -> Eid {
    node_eid(&i.to_string()).unwrap()
}

fn c(
    start_s: u64,
    end_s: u64,
    from: u64,
    to: u64,
    rate: Option<u64>,
    delay_ms: u64,
) -> PlannedContact {
    PlannedContact {
        start_ms: start_s * 1000,
        end_ms: end_s * 1000,
        from: n(from),
        to: n(to),
        rate_bytes_per_s: rate,
        delay_ms,
    }
}

const DAY: u64 = 86_400_000;

#[test]
fn relaying_beats_waiting_for_a_later_direct_contact() {
    // a=1 → c=3 directly only at 1000 s; a → b=2 at 10 s and b → c at 20 s.
    let text = "contact 1000 1100 1 3 unlimited 5\n\
                contact 10 100 1 2 1000 7\n\
                contact 20 100 2 3 unlimited 3\n";
    let plan = ContactPlan::parse(text, 0).unwrap();
    let r = earliest_arrival(&plan, &n(1), &n(3), 0, 500, DAY, &[]).unwrap();
    // Leaves a at 10 s, 500 B at 1000 B/s = 500 ms, +7 ms: at b 10 507 ms;
    // b → c opens at 20 s: arrives 20 000 + 0 + 3 = 20 003 ms.
    assert_eq!(r.arrival_ms, 20_003);
    assert_eq!(r.first_hop, n(2));
    assert_eq!(plan.contacts[r.first_contact].to, n(2));
    assert_eq!(r.hops, 2);
    // Excluding b leaves only the direct contact.
    let r = earliest_arrival(&plan, &n(1), &n(3), 0, 500, DAY, &[n(2)]).unwrap();
    assert_eq!(
        (r.arrival_ms, r.hops, r.first_hop.clone()),
        (1_000_005, 1, n(3))
    );
    // Deadline between the two arrivals: only the relay makes it.
    assert!(earliest_arrival(&plan, &n(1), &n(3), 0, 500, 1_000_004, &[n(2)]).is_none());
    assert!(earliest_arrival(&plan, &n(1), &n(3), 0, 500, 20_003, &[]).is_some());
    assert!(earliest_arrival(&plan, &n(1), &n(3), 0, 500, 20_002, &[]).is_none());
}

#[test]
fn booked_bytes_fill_a_contact_and_push_bundles_to_the_next() {
    // 1 → 2 at 1000 B/s over [10, 20] s carries 10 000 B; a later contact
    // over [100, 200] s is unlimited.
    let text = "contact 10 20 1 2 1000 0\n\
                contact 100 200 1 2 unlimited 0\n";
    let plan = ContactPlan::parse(text, 0).unwrap();
    let mut ix = CgrIndex::new(&plan);
    let first = ix
        .earliest_arrival(&n(1), &n(2), 0, 4000, DAY, &[])
        .unwrap();
    assert_eq!((first.first_contact, first.arrival_ms), (0, 14_000));
    ix.book(0, 4000);
    assert_eq!(ix.booked(0), 4000);
    // Queued behind 4000 B: departs at 14 s, arrives at 18 s.
    let second = ix
        .earliest_arrival(&n(1), &n(2), 0, 4000, DAY, &[])
        .unwrap();
    assert_eq!((second.first_contact, second.arrival_ms), (0, 18_000));
    ix.book(0, 4000);
    // 8000 B booked: another 4000 B would end at 22 s, after the contact.
    let third = ix
        .earliest_arrival(&n(1), &n(2), 0, 4000, DAY, &[])
        .unwrap();
    assert_eq!((third.first_contact, third.arrival_ms), (1, 100_000));
    // A 2000 B bundle still fits exactly (ends at 20 s).
    let small = ix
        .earliest_arrival(&n(1), &n(2), 0, 2000, DAY, &[])
        .unwrap();
    assert_eq!((small.first_contact, small.arrival_ms), (0, 20_000));
    ix.book(99, 1); // unknown contact: ignored
    assert_eq!(ix.booked(99), 0);
}

#[test]
fn transmission_must_end_before_the_contact_does() {
    // 10 s contact at 1000 B/s carries at most 10 000 B.
    let plan = ContactPlan::from_contacts(vec![c(0, 10, 1, 2, Some(1000), 0)]);
    let ix = CgrIndex::new(&plan);
    let r = ix
        .earliest_arrival(&n(1), &n(2), 0, 10_000, DAY, &[])
        .unwrap();
    assert_eq!(r.arrival_ms, 10_000);
    assert!(
        ix.earliest_arrival(&n(1), &n(2), 0, 10_001, DAY, &[])
            .is_none()
    );
    // Arriving at 5 s leaves only 5 s: 5000 B fit, 5001 do not.
    assert_eq!(
        ix.earliest_arrival(&n(1), &n(2), 5000, 5000, DAY, &[])
            .unwrap()
            .arrival_ms,
        10_000
    );
    assert!(
        ix.earliest_arrival(&n(1), &n(2), 5000, 5001, DAY, &[])
            .is_none()
    );
    // A contact that has ended cannot be used.
    assert!(
        ix.earliest_arrival(&n(1), &n(2), 10_000, 0, DAY, &[])
            .is_none()
    );
    // 1 byte at 3 B/s rounds up to 334 ms.
    assert_eq!(tx_ms(1, Some(3)), 334);
    assert_eq!(tx_ms(u64::MAX, Some(1)), u64::MAX);
}

#[test]
fn big_bundle_takes_the_slow_but_long_contact() {
    // Fast short contact 1→2 can't carry 1 MB; a long slow one can.
    let plan = ContactPlan::from_contacts(vec![
        c(0, 1, 1, 2, Some(100_000), 0),
        c(100, 200, 1, 2, Some(20_000), 0),
    ]);
    let r = earliest_arrival(&plan, &n(1), &n(2), 0, 1_000_000, DAY, &[]).unwrap();
    assert_eq!((r.first_contact, r.arrival_ms), (1, 150_000));
    let r = earliest_arrival(&plan, &n(1), &n(2), 0, 100_000, DAY, &[]).unwrap();
    assert_eq!((r.first_contact, r.arrival_ms), (0, 1_000));
}

#[test]
fn unreachable_unknown_and_self() {
    let plan = ContactPlan::from_contacts(vec![c(0, 10, 1, 2, None, 0), c(20, 30, 3, 4, None, 0)]);
    let ix = CgrIndex::new(&plan);
    assert_eq!(ix.node_count(), 4);
    assert!(ix.earliest_arrival(&n(1), &n(4), 0, 1, DAY, &[]).is_none());
    assert!(ix.earliest_arrival(&n(2), &n(1), 0, 1, DAY, &[]).is_none());
    assert!(ix.earliest_arrival(&n(1), &n(9), 0, 1, DAY, &[]).is_none());
    assert!(ix.earliest_arrival(&n(1), &n(1), 0, 1, DAY, &[]).is_none());
    assert!(ix.earliest_arrival(&n(1), &n(2), 11, 1, 10, &[]).is_none());
    // Endpoints are matched by node ID; excluding the destination is ignored.
    let svc: Eid = "dtn://n2/inbox".parse().unwrap();
    assert!(
        ix.earliest_arrival(&n(1), &svc, 0, 1, DAY, &[n(2)])
            .is_some()
    );
}

#[test]
fn fewer_hops_on_equal_arrival() {
    let plan = ContactPlan::from_contacts(vec![
        c(0, 10, 1, 2, None, 0),
        c(0, 10, 2, 3, None, 0),
        c(0, 10, 1, 3, None, 0),
    ]);
    let r = earliest_arrival(&plan, &n(1), &n(3), 0, 1, DAY, &[]).unwrap();
    assert_eq!((r.hops, r.first_hop, r.arrival_ms), (1, n(3), 0));
}

/// A query for the brute-force search.
struct Q<'a> {
    to: &'a Eid,
    size: u64,
    deadline: u64,
    excl: &'a [Eid],
}

/// Exhaustive search over sequences of distinct contacts.
fn brute(plan: &ContactPlan, q: &Q<'_>, at: &Eid, t: u64, used: &mut Vec<bool>) -> Option<u64> {
    if at == q.to {
        return Some(t);
    }
    let mut best: Option<u64> = None;
    for (i, k) in plan.contacts.iter().enumerate() {
        if used[i] || &k.from != at || k.end_ms <= t || (q.excl.contains(&k.to) && &k.to != q.to) {
            continue;
        }
        let depart = t.max(k.start_ms);
        let finish = depart.saturating_add(tx_ms(q.size, k.rate_bytes_per_s));
        let arrive = finish.saturating_add(k.delay_ms);
        if finish > k.end_ms || arrive > q.deadline {
            continue;
        }
        used[i] = true;
        if let Some(a) = brute(plan, q, &k.to, arrive, used) {
            best = Some(best.map_or(a, |b| b.min(a)));
        }
        used[i] = false;
    }
    best
}

fn random_plan(
    rng: &mut rand_chacha::ChaCha8Rng,
    contacts: usize,
    nodes: u64,
    span_s: u64,
) -> ContactPlan {
    let v = (0..contacts)
        .map(|_| {
            let from = rng.random_range(0..nodes);
            let to = (from + rng.random_range(1..nodes)) % nodes;
            let start = rng.random_range(0..span_s);
            let len = rng.random_range(1..600);
            let rate = if rng.random_bool(0.2) {
                None
            } else {
                Some(rng.random_range(100..100_000))
            };
            c(
                start,
                start + len,
                from,
                to,
                rate,
                rng.random_range(0..2000),
            )
        })
        .collect();
    ContactPlan::from_contacts(v)
}

proptest::proptest! {
    #[test]
    fn matches_brute_force_on_small_plans(seed in 0u64..u64::MAX, m in 1usize..8, size in 0u64..200_000, excl in 0u64..6) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let plan = random_plan(&mut rng, m, 4, 3000);
        let ix = CgrIndex::new(&plan);
        let exclude = if excl < 4 { vec![n(excl)] } else { vec![] };
        for (s, d) in [(0, 1), (0, 3), (1, 2), (2, 0), (3, 1)] {
            let now = rng.random_range(0..1_000_000);
            let deadline = now + rng.random_range(0..4_000_000);
            let got = ix.earliest_arrival(&n(s), &n(d), now, size, deadline, &exclude);
            let mut used = vec![false; plan.contacts.len()];
            let excl_src: Vec<Eid> = exclude.iter().filter(|x| **x != n(s)).cloned().collect();
            let want = if ix.id(&n(s)).is_none() || ix.id(&n(d)).is_none() || now > deadline {
                None
            } else {
                brute(&plan, &Q { to: &n(d), size, deadline, excl: &excl_src }, &n(s), now, &mut used)
            };
            proptest::prop_assert_eq!(got.as_ref().map(|r| r.arrival_ms), want, "plan {:?}", plan);
            if let Some(r) = got {
                let k = &plan.contacts[r.first_contact];
                proptest::prop_assert_eq!(&k.from, &n(s));
                proptest::prop_assert_eq!(&k.to, &r.first_hop);
            }
        }
    }
}

/// Fixed-point reference: relax every contact until nothing improves.
fn reference(
    plan: &ContactPlan,
    from: &Eid,
    to: &Eid,
    now: u64,
    size: u64,
    deadline: u64,
) -> Option<u64> {
    let mut best: HashMap<Eid, u64> = HashMap::from([(from.clone(), now)]);
    loop {
        let mut changed = false;
        for k in &plan.contacts {
            let Some(&t) = best.get(&k.from) else {
                continue;
            };
            let depart = t.max(k.start_ms);
            let finish = depart.saturating_add(tx_ms(size, k.rate_bytes_per_s));
            let arrive = finish.saturating_add(k.delay_ms);
            if k.end_ms <= t || finish > k.end_ms || arrive > deadline {
                continue;
            }
            if best.get(&k.to).is_none_or(|&b| arrive < b) {
                best.insert(k.to.clone(), arrive);
                changed = true;
            }
        }
        if !changed {
            return best.get(to).copied();
        }
    }
}

#[test]
fn ten_thousand_contacts_match_the_reference() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6693);
    let plan = random_plan(&mut rng, 10_000, 200, 86_400);
    let ix = CgrIndex::new(&plan);
    let mut queries = Vec::new();
    for _ in 0..200 {
        let (s, d) = (rng.random_range(0..200), rng.random_range(0..200));
        let now = rng.random_range(0..40_000_000);
        queries.push((
            n(s),
            n(d),
            now,
            rng.random_range(0..1_000_000),
            now + rng.random_range(0..DAY),
        ));
    }
    // Speed is measured by `cargo bench --bench routing`, not here.
    let answers: Vec<Option<Route>> = queries
        .iter()
        .map(|(s, d, now, size, dl)| ix.earliest_arrival(s, d, *now, *size, *dl, &[]))
        .collect();
    let mut found = 0;
    for (q, a) in queries.iter().zip(&answers).take(25) {
        let want = if q.0 == q.1 {
            None
        } else {
            reference(&plan, &q.0, &q.1, q.2, q.3, q.4)
        };
        assert_eq!(a.as_ref().map(|r| r.arrival_ms), want, "query {q:?}");
        found += usize::from(a.is_some());
    }
    assert!(
        found > 5,
        "the random plan should connect most pairs ({found}/25)"
    );
}
