//! Unit tests of [`super`]: hand-computed values with the default
//! parameters (δ 0.01, P_encounter_max 0.7, P_encounter_first 0.5,
//! β 0.9, γ 0.999, I_typ 30 min, unit 30 s).

use super::*;

fn eid(s: &str) -> Eid {
    s.parse().unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

const S: u64 = 1000;

#[test]
fn defaults_are_the_rfc_values() {
    let p = ProphetParams::default();
    assert_eq!(
        (p.p_encounter_max, p.p_encounter_first, p.p_first_threshold),
        (0.7, 0.5, 0.1)
    );
    assert_eq!((p.delta, p.beta, p.gamma), (0.01, 0.9, 0.999));
    assert_eq!((p.i_typ_ms, p.time_unit_ms), (1_800_000, 30_000));
}

#[test]
fn encounter_first_then_interval_scaled() {
    let mut t = ProphetTable::new(ProphetParams::default());
    let b = eid("dtn://b/");
    assert_eq!(t.predictability(&b), 0.0);
    t.encounter(0, &eid("dtn://b/inbox"));
    close(t.predictability(&b), 0.5);
    // 900 s later: aged by 30 units (0.5·0.999^30 = 0.4852154836315429),
    // then P_enc = 0.7 · 900/1800 = 0.35:
    // 0.48521548… + (0.99 − 0.48521548…)·0.35 = 0.6618900643605028.
    t.encounter(900 * S, &b);
    close(t.predictability(&b), 0.661_890_064_360_502_8);
    // Meeting again at the same instant adds nothing (intvl 0).
    t.encounter(900 * S, &b);
    close(t.predictability(&b), 0.661_890_064_360_502_8);
}

#[test]
fn long_gap_uses_p_encounter_max() {
    let mut t = ProphetTable::new(ProphetParams::default());
    let b = eid("ipn:2.0");
    t.encounter(0, &b);
    // 1 h later: aged 120 units, then P_enc = 0.7 (intvl ≥ I_typ):
    // 0.5·0.999^120 + (0.99 − that)·0.7 = 0.8260300781379095.
    t.encounter(3600 * S, &eid("ipn:2.9"));
    close(t.predictability(&b), 0.826_030_078_137_909_5);
}

#[test]
fn aging_in_steps_equals_aging_once() {
    let mut a = ProphetTable::new(ProphetParams::default());
    let b = eid("dtn://b/");
    a.encounter(0, &b);
    let mut once = a.clone();
    for t in [10, 45, 59, 200, 299, 300] {
        a.age(t * S);
    }
    once.age(300 * S);
    // 10 whole units either way: 0.5·0.999^10.
    close(a.predictability(&b), 0.495_022_440_104_874_1);
    close(once.predictability(&b), 0.495_022_440_104_874_1);
    // Time going backwards changes nothing.
    a.age(0);
    close(a.predictability(&b), 0.495_022_440_104_874_1);
}

#[test]
fn aged_entries_below_threshold_are_dropped_and_restart_at_first() {
    let mut t = ProphetTable::new(ProphetParams::default());
    let b = eid("dtn://b/");
    t.encounter(0, &b);
    // 0.5·0.999^K < 0.1 once K ≥ 1609 units (≈ 13.4 h).
    t.age(1608 * 30 * S);
    assert!(t.predictability(&b) > 0.1);
    t.age(1609 * 30 * S);
    assert_eq!(t.predictability(&b), 0.0);
    assert!(t.is_empty());
    t.encounter(1610 * 30 * S, &b);
    close(t.predictability(&b), 0.5);
}

#[test]
fn transitivity_is_the_max_form() {
    let mut t = ProphetTable::new(ProphetParams::default()).with_local(&eid("dtn://a/"));
    let (b, c, d, e) = (
        eid("dtn://b/"),
        eid("dtn://c/"),
        eid("dtn://d/"),
        eid("dtn://e/"),
    );
    t.encounter(0, &d);
    t.encounter(0, &b);
    let advert = vec![
        (c.clone(), 0.8),            // 0.5·0.8·0.9 = 0.36, new
        (d.clone(), 0.6),            // 0.27 < P(a,d) = 0.5: unchanged
        (e.clone(), 0.2),            // 0.09 < threshold: not stored
        (eid("dtn://a/"), 0.99),     // ourselves: ignored
        (b.clone(), 0.99),           // the peer itself: ignored
        (eid("dtn://f/"), f64::NAN), // garbage: ignored
        (eid("dtn://g/x"), 7.0),     // clamped to 1: 0.45
    ];
    t.transitive(0, &b, &advert);
    close(t.predictability(&c), 0.36);
    close(t.predictability(&d), 0.5);
    assert_eq!(t.predictability(&e), 0.0);
    close(t.predictability(&eid("dtn://g/")), 0.45);
    close(t.predictability(&b), 0.5);
    assert_eq!(t.predictability(&eid("dtn://a/svc")), 1.0);
    assert_eq!(t.predictability(&eid("dtn://f/")), 0.0);
    // A peer we never met gives nothing transitively.
    t.transitive(0, &eid("dtn://z/"), &[(eid("dtn://y/"), 0.9)]);
    assert_eq!(t.predictability(&eid("dtn://y/")), 0.0);
}

#[test]
fn advert_is_sorted_truncated_and_thresholded() {
    let mut t = ProphetTable::new(ProphetParams::default());
    let b = eid("dtn://b/");
    t.encounter(0, &b);
    let adv: Vec<(Eid, f64)> = (0..50)
        .map(|i| (eid(&format!("dtn://n{i}/")), f64::from(i) / 50.0))
        .collect();
    t.transitive(0, &b, &adv);
    let all = t.advert(usize::MAX);
    assert!(all.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(all.iter().all(|(_, p)| *p >= 0.1));
    assert_eq!(all[0], (b.clone(), 0.5));
    let top = t.advert(3);
    assert_eq!(top.len(), 3);
    assert_eq!(top[..], all[..3]);
    assert!(t.advert(0).is_empty());
}

#[test]
fn table_is_bounded() {
    let mut t = ProphetTable::new(ProphetParams::default());
    let b = eid("dtn://b/");
    t.encounter(0, &b);
    for round in 0..11 {
        let adv: Vec<(Eid, f64)> = (0..MAX_ADVERT_ENTRIES_IN + 5)
            .map(|i| (eid(&format!("dtn://r{round}x{i}/")), 0.5))
            .collect();
        t.transitive(0, &b, &adv);
    }
    assert_eq!(t.len(), MAX_PROPHET_ENTRIES);
    // The peer we met (0.5) outranks the 0.225 transitive entries.
    close(t.predictability(&b), 0.5);
}

#[test]
fn grtr_forwards_only_to_better_peers() {
    assert!(grtr(0.2, 0.3));
    assert!(!grtr(0.3, 0.3));
    assert!(!grtr(0.3, 0.2));
    assert!(!grtr(0.3, f64::NAN));
}

#[test]
fn serde_round_trip() {
    let mut t = ProphetTable::new(ProphetParams::default());
    t.encounter(5, &eid("ipn:7.0"));
    let json = serde_json::to_string(&t).unwrap();
    let back: ProphetTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back.advert(10), t.advert(10));
}

proptest::proptest! {
    /// Any sequence of encounters, agings and adverts keeps every value in
    /// [0, 1 − δ], and an encounter never lowers the peer's predictability
    /// below its aged value.
    #[test]
    fn values_stay_in_range_and_encounters_never_lower(
        ops in proptest::collection::vec(
            (0u8..3, 0u64..6, 0u64..7_200_000, proptest::collection::vec((0u64..6, -1.0f64..2.0), 0..6)),
            1..60),
    ) {
        let mut t = ProphetTable::new(ProphetParams::default());
        let mut now = 0u64;
        let node = |i: u64| eid(&format!("dtn://n{i}/"));
        for (op, peer, dt, adv) in ops {
            now += dt;
            let peer = node(peer);
            match op {
                0 => {
                    let mut aged = t.clone();
                    aged.age(now);
                    let before = aged.predictability(&peer);
                    t.encounter(now, &peer);
                    proptest::prop_assert!(t.predictability(&peer) >= before);
                }
                1 => t.age(now),
                _ => {
                    let adv: Vec<(Eid, f64)> = adv.into_iter().map(|(i, p)| (node(i), p)).collect();
                    t.transitive(now, &peer, &adv);
                }
            }
            for (_, p) in t.advert(usize::MAX) {
                proptest::prop_assert!((0.0..=0.99).contains(&p), "{}", p);
            }
        }
    }
}
