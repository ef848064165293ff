//! Routing hot paths: CGR earliest-arrival over a 10 000-contact plan
//! (index build and one query) and the spore advertisement of a node that
//! knows 100 peers, each advertising 100 nodes (computed once per contact).
//! `cargo bench --bench routing`

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use spore::bundle::Eid;
use spore::routing::cgr::CgrIndex;
use spore::routing::plan::{ContactPlan, PlannedContact, node_eid};
use spore::routing::{Advert, Policy, Router};
use std::hint::black_box;

fn n(i: u64) -> Eid {
    node_eid(&i.to_string()).expect("integer node names are valid")
}

/// `contacts` random one-way contacts among `nodes` nodes over a day.
fn random_plan(contacts: usize, nodes: u64) -> ContactPlan {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6693);
    let v = (0..contacts)
        .map(|_| {
            let from = rng.random_range(0..nodes);
            let to = (from + rng.random_range(1..nodes)) % nodes;
            let start_ms = rng.random_range(0..86_400_000);
            PlannedContact {
                start_ms,
                end_ms: start_ms + rng.random_range(1_000..600_000),
                from: n(from),
                to: n(to),
                rate_bytes_per_s: Some(rng.random_range(10_000..10_000_000)),
                delay_ms: rng.random_range(0..500),
            }
        })
        .collect();
    ContactPlan::from_contacts(v)
}

fn cgr(c: &mut Criterion) {
    let plan = random_plan(10_000, 200);
    c.bench_function("cgr index 10k contacts", |b| {
        b.iter(|| CgrIndex::new(black_box(&plan)))
    });
    let ix = CgrIndex::new(&plan);
    let (from, to) = (n(3), n(150));
    c.bench_function("cgr earliest arrival 10k contacts", |b| {
        b.iter(|| ix.earliest_arrival(&from, &to, 1_000_000, 50_000, u64::MAX, &[]))
    });
}

fn advert(c: &mut Criterion) {
    let mut r = Router::new(n(0), Policy::default());
    for p in 1..=100u64 {
        r.contact_up(0, &n(p), 2_000);
        r.contact_down(1_000 * p, &n(p));
        r.contact_up(3_000 * p, &n(p), 2_000);
        r.contact_down(3_000 * p + 500, &n(p));
        let adv = Advert {
            delay_ms: (1..=100u64).map(|d| (n(d + 100), d * 1_000 + p)).collect(),
            predictability: Vec::new(),
        };
        r.peer_advert(400_000, &n(p), &adv);
    }
    let to = n(1);
    c.bench_function("spore advert, 100 peers x 100 nodes", |b| {
        b.iter(|| r.advert_for(500_000, Some(black_box(&to))))
    });
}

criterion_group!(benches, cgr, advert);
criterion_main!(benches);
