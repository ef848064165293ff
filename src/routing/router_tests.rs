//! Tests of the router: shared rules, policies, estimates, adverts.

mod basics {
    use super::super::*;

    pub(super) fn eid(s: &str) -> Eid {
        s.parse().unwrap()
    }

    pub(super) fn cand<'a>(dest: &'a Eid, peer: &'a Eid, copies: u32) -> Candidate<'a> {
        Candidate {
            destination: dest,
            received_from: None,
            peer,
            peer_has_it: false,
            refused_by_peer: false,
            handed_over_in_contact: false,
            destination_in_contact: false,
            copies,
            size_bytes: 1000,
            expiry_ms: 10_000_000,
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for s in [
            "direct",
            "epidemic",
            "prophet",
            "cgr",
            "spore:8",
            "spray-and-wait:4",
        ] {
            let p: Policy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "spray-and-wait".parse::<Policy>().unwrap(),
            Policy::SprayAndWait { copies: 8 }
        );
        for bad in ["", "flood", "spore:0", "spore:x", "direct:3", "spore:5000"] {
            assert!(bad.parse::<Policy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shared_rules_come_first() {
        let r = Router::new(eid("dtn://a/"), Policy::Epidemic);
        let (dest, b, c) = (eid("dtn://c/files"), eid("dtn://b/"), eid("dtn://c/"));
        assert_eq!(r.decide(0, &cand(&dest, &c, 1)), Decision::Direct);
        let from_b = Candidate {
            received_from: Some(&b),
            ..cand(&dest, &b, 1)
        };
        assert_eq!(
            r.decide(0, &from_b),
            Decision::Hold(HoldReason::CameFromPeer)
        );
        let has = Candidate {
            peer_has_it: true,
            ..cand(&dest, &c, 1)
        };
        assert_eq!(r.decide(0, &has), Decision::Hold(HoldReason::PeerHasIt));
        let elsewhere = Candidate {
            destination_in_contact: true,
            ..cand(&dest, &b, 1)
        };
        assert_eq!(
            r.decide(0, &elsewhere),
            Decision::Hold(HoldReason::DestinationElsewhere)
        );
        assert_eq!(
            r.decide(0, &cand(&dest, &b, 1)),
            Decision::Forward {
                give: COPIES_UNLIMITED
            }
        );
    }

    #[test]
    fn direct_and_spray_and_wait() {
        let (dest, b) = (eid("dtn://c/"), eid("dtn://b/"));
        let direct = Router::new(eid("dtn://a/"), Policy::Direct);
        assert_eq!(direct.initial_copies(), 1);
        assert_eq!(
            direct.decide(0, &cand(&dest, &b, 1)),
            Decision::Hold(HoldReason::WaitForDestination)
        );
        let saw = Router::new(eid("dtn://a/"), Policy::SprayAndWait { copies: 8 });
        assert_eq!(saw.initial_copies(), 8);
        assert_eq!(saw.received_copies(100), 8);
        assert_eq!(saw.received_copies(0), 1);
        assert_eq!(
            saw.decide(0, &cand(&dest, &b, 8)),
            Decision::Forward { give: 4 }
        );
        assert_eq!(
            saw.decide(0, &cand(&dest, &b, 3)),
            Decision::Forward { give: 1 }
        );
        assert_eq!(
            saw.decide(0, &cand(&dest, &b, 1)),
            Decision::Hold(HoldReason::WaitForDestination)
        );
    }

    #[test]
    fn delays_combine_waits_and_adverts() {
        let (a, b, c, d) = (
            eid("dtn://a/"),
            eid("dtn://b/"),
            eid("dtn://c/"),
            eid("dtn://d/"),
        );
        let mut r = Router::new(a.clone(), Policy::Spore { copies: 4 });
        // b is met every ~1000 ms, c every ~10 000 ms.
        for k in 0..20u64 {
            r.contact_up(k * 1000, &b, 2000);
            r.contact_down(k * 1000, &b);
            r.contact_up(k * 10_000, &c, 2000);
            r.contact_down(k * 10_000, &c);
        }
        let now = 200_000;
        let wb = r.estimate(&b).unwrap().expected_wait_ms(now).unwrap();
        assert!((wb - 500.0).abs() < 1.0, "{wb}");
        assert_eq!(r.delay_to(now, &d), None);
        r.peer_advert(
            now,
            &c,
            &Advert {
                delay_ms: vec![(d.clone(), 100)],
                predictability: vec![],
            },
        );
        r.peer_advert(
            now,
            &b,
            &Advert {
                delay_ms: vec![(d.clone(), 50_000)],
                predictability: vec![],
            },
        );
        let via_c = r.wait_ms(r.estimate(&c).unwrap(), now).unwrap() + 100.0;
        assert_eq!(r.delay_to(now, &d), Some(via_c));
        let adv = r.advert(now);
        assert_eq!(adv.delay_ms[0], (a.clone(), 0));
        assert!(
            adv.delay_ms
                .iter()
                .any(|(n, ms)| n == &d && *ms == via_c.round() as u64)
        );
        // c is better than us for d, b is not.
        r.contact_up(now, &c, 2000);
        r.contact_up(now, &b, 2000);
        // c is far closer than our best without it: nearly every copy goes.
        assert_eq!(
            r.decide(now, &cand(&d, &c, 4)),
            Decision::Forward { give: 4 }
        );
        assert_eq!(
            r.decide(now, &cand(&d, &c, 1)),
            Decision::Forward { give: 1 }
        );
        assert_eq!(
            r.decide(now, &cand(&d, &b, 4)),
            Decision::Hold(HoldReason::NotBetter)
        );
    }

    #[test]
    fn spore_shares_copies_by_relative_delay() {
        assert_eq!(spore_share(8, 100.0, 100.0), 4);
        assert_eq!(spore_share(8, 300.0, 100.0), 6);
        assert_eq!(spore_share(8, 1.0, 1000.0), 1);
        assert_eq!(spore_share(1, 5.0, 1.0), 1);
        // Nothing known anywhere: the bundle moves on whole (exploration).
        let r = Router::new(eid("dtn://a/"), Policy::Spore { copies: 8 });
        let (d, p) = (eid("dtn://d/"), eid("dtn://p/"));
        assert_eq!(r.decide(0, &cand(&d, &p, 8)), Decision::Forward { give: 8 });
    }

    #[test]
    fn adverts_are_bounded() {
        let mut r = Router::new(eid("dtn://a/"), Policy::default());
        let huge = Advert {
            delay_ms: (0..5000)
                .map(|i| (eid(&format!("dtn://n{i}/")), i))
                .collect(),
            predictability: vec![],
        };
        r.contact_up(0, &eid("dtn://p/"), 1000);
        r.peer_advert(0, &eid("dtn://p/"), &huge);
        assert_eq!(
            r.delays.iter().map(Vec::len).max(),
            Some(MAX_ADVERT_ENTRIES)
        );
        assert!(r.advert(0).delay_ms.len() <= MAX_ADVERT_ENTRIES);
    }

    #[test]
    fn the_prior_always_follows_the_current_estimates() {
        let mut r = Router::new(eid("dtn://a/"), Policy::default());
        let (b, c) = (eid("dtn://b/"), eid("dtn://c/"));
        let fresh = |r: &Router| {
            let w: Vec<f64> = r
                .estimates()
                .filter_map(|(_, e)| e.meed_wait_ms())
                .collect();
            (!w.is_empty()).then(|| w.iter().sum::<f64>() / w.len() as f64)
        };
        let mut t = 0;
        for (k, gap) in [1_000u64, 5_000, 20_000, 3_000, 60_000]
            .into_iter()
            .enumerate()
        {
            let peer = if k % 2 == 0 { &b } else { &c };
            t += gap;
            r.contact_up(t, peer, 1000);
            assert_eq!(r.prior_wait_ms(), fresh(&r), "after contact up {k}");
            t += 500;
            r.contact_down(t, peer);
            assert_eq!(r.prior_wait_ms(), fresh(&r), "after contact down {k}");
        }
        assert!(r.prior_wait_ms().is_some());
    }

    #[test]
    fn an_empty_advert_replaces_the_peers_earlier_delays() {
        let mut r = Router::new(eid("dtn://a/"), Policy::default());
        let (p, d) = (eid("dtn://p/"), eid("dtn://d/"));
        r.contact_up(0, &p, 1000);
        let one = Advert {
            delay_ms: vec![(d.clone(), 700)],
            predictability: vec![],
        };
        r.peer_advert(0, &p, &one);
        assert_eq!(r.advertised_delay(&p, &d), Some(700.0));
        r.peer_advert(10, &p, &Advert::default());
        assert_eq!(r.advertised_delay(&p, &d), None);
    }

    #[test]
    fn peers_met_get_estimates_after_adverts_filled_the_name_table() {
        let mut r = Router::new(eid("dtn://a/"), Policy::default());
        let per_peer = MAX_ADVERT_ENTRIES as u64;
        let mut k = 0u64;
        let mut advertiser = 0;
        while r.names.names.len() < MAX_KNOWN_NODES {
            let peer = eid(&format!("dtn://adv{advertiser}/"));
            advertiser += 1;
            r.contact_up(0, &peer, 1000);
            let advert = Advert {
                delay_ms: (k..k + per_peer)
                    .map(|i| (eid(&format!("dtn://n{i}/")), i))
                    .collect(),
                predictability: vec![],
            };
            k += per_peer;
            r.peer_advert(0, &peer, &advert);
        }
        // Names from adverts stop at the limit...
        let late = eid("dtn://late-name/");
        let advert = Advert {
            delay_ms: vec![(late.clone(), 5)],
            predictability: vec![],
        };
        r.peer_advert(0, &eid("dtn://adv0/"), &advert);
        assert!(r.names.get(&late).is_none());
        // ...but a peer actually met still gets its estimate.
        let newcomer = eid("dtn://newcomer/");
        r.contact_up(100, &newcomer, 3000);
        r.contact_down(200, &newcomer);
        let est = r.estimate(&newcomer).expect("estimate for a peer met");
        assert_eq!((est.contacts, est.rtt.srtt_us), (1, 3000));
        assert_eq!(est.last_end_ms, Some(200));
        assert!(r.estimates().any(|(p, _)| p == &newcomer));
    }
}

mod policies {
    use super::super::*;
    use super::basics::{cand, eid};
    use crate::routing::plan::PlannedContact;

    #[test]
    fn prophet_replicates_to_a_peer_with_higher_predictability() {
        let (a, b, d) = (eid("dtn://a/"), eid("dtn://b/"), eid("dtn://d/"));
        let mut r = Router::new(a, Policy::Prophet);
        assert_eq!(r.initial_copies(), COPIES_UNLIMITED);
        r.contact_up(0, &b, 1000);
        r.peer_advert(
            0,
            &b,
            &Advert {
                delay_ms: vec![],
                predictability: vec![(d.clone(), 0.8)],
            },
        );
        assert!(r.advert(0).predictability.iter().any(|(n, _)| n == &b));
        let c = cand(&d, &b, COPIES_UNLIMITED);
        assert_eq!(
            r.decide(0, &c),
            Decision::Forward {
                give: COPIES_UNLIMITED
            }
        );
        // After meeting d ourselves many times we are the better carrier.
        for k in 1..20 {
            r.contact_up(k * 1000, &d, 1000);
            r.contact_down(k * 1000 + 10, &d);
        }
        r.peer_advert(
            20_000,
            &b,
            &Advert {
                delay_ms: vec![],
                predictability: vec![(d.clone(), 0.3)],
            },
        );
        assert_eq!(r.decide(20_000, &c), Decision::Hold(HoldReason::NotBetter));
    }

    fn contact(s: u64, e: u64, from: &str, to: &str) -> PlannedContact {
        PlannedContact {
            start_ms: s * 1000,
            end_ms: e * 1000,
            from: eid(from),
            to: eid(to),
            rate_bytes_per_s: None,
            delay_ms: 0,
        }
    }

    #[test]
    fn cgr_forwards_only_on_the_earliest_route_when_it_leaves() {
        let plan = ContactPlan::from_contacts(vec![
            contact(0, 100, "dtn://a/", "dtn://b/"),
            contact(200, 300, "dtn://b/", "dtn://c/"),
            contact(1000, 1100, "dtn://a/", "dtn://c/"),
            contact(0, 5000, "dtn://a/", "dtn://x/"),
        ]);
        let r = Router::new(eid("dtn://a/"), Policy::Cgr).with_plan(Arc::new(plan));
        let (b, c, x) = (eid("dtn://b/"), eid("dtn://c/"), eid("dtn://x/"));
        assert_eq!(
            r.decide(50_000, &cand(&c, &b, 1)),
            Decision::Forward { give: 1 }
        );
        assert_eq!(
            r.decide(50_000, &cand(&c, &x, 1)),
            Decision::Hold(HoldReason::NotOnRoute)
        );
        // Past the a→b contact only the direct contact at 1000 s is left.
        assert_eq!(
            r.decide(150_000, &cand(&c, &b, 1)),
            Decision::Hold(HoldReason::NotOnRoute)
        );
        let (route, start) = r.cgr_route(150_000, &cand(&c, &b, 1)).unwrap();
        assert_eq!((route.first_hop, start), (c.clone(), 1_000_000));
        // A bundle that came from b may not go back through b.
        let from_b = Candidate {
            received_from: Some(&b),
            ..cand(&c, &x, 1)
        };
        assert_eq!(r.cgr_route(50_000, &from_b).unwrap().0.first_hop, c);
    }

    #[test]
    fn cgr_books_sent_bundles_and_routes_the_overflow_elsewhere() {
        // a → b carries 2 500 B over [0, 10] s at 250 B/s; a → c direct
        // opens at 1000 s. Two 1000 B bundles fit the first contact, the
        // third does not and waits for the direct contact.
        let mut slow = contact(0, 10, "dtn://a/", "dtn://b/");
        slow.rate_bytes_per_s = Some(250);
        let plan = ContactPlan::from_contacts(vec![
            slow,
            contact(20, 30, "dtn://b/", "dtn://c/"),
            contact(1000, 1100, "dtn://a/", "dtn://c/"),
        ]);
        let mut r = Router::new(eid("dtn://a/"), Policy::Cgr).with_plan(Arc::new(plan));
        let (b, c) = (eid("dtn://b/"), eid("dtn://c/"));
        for _ in 0..2 {
            assert_eq!(r.decide(0, &cand(&c, &b, 1)), Decision::Forward { give: 1 });
            r.sent(0, &cand(&c, &b, 1));
        }
        assert_eq!(
            r.decide(0, &cand(&c, &b, 1)),
            Decision::Hold(HoldReason::NotOnRoute)
        );
        let (route, start) = r.cgr_route(0, &cand(&c, &b, 1)).unwrap();
        assert_eq!((route.first_hop, start), (c.clone(), 1_000_000));
        // Sending to a peer off the route books nothing.
        r.sent(0, &cand(&c, &eid("dtn://x/"), 1));
        assert_eq!(r.cgr_route(0, &cand(&c, &b, 1)).unwrap().0.first_hop, c);
    }
}

/// The delay routes of §4 (built once per instant, best and second best
/// per node) against the definition computed from scratch.
mod delay_routes {
    use super::super::*;
    use proptest::prelude::*;

    fn node(i: u8) -> Eid {
        format!("dtn://n{i}/").parse().unwrap()
    }

    /// D(dest) without routes through `skip`, straight from spec §4: the
    /// wait for dest itself and wait(P) + A_P(dest) for every other peer.
    fn by_definition(r: &Router, now: u64, dest: &Eid, skip: Option<&Eid>) -> Option<f64> {
        if *dest == r.me {
            return Some(0.0);
        }
        let mut best: Option<f64> = None;
        for (peer, est) in r.estimates() {
            if Some(peer) == skip {
                continue;
            }
            let Some(w) = r.wait_ms(est, now) else {
                continue;
            };
            let mut offer = |d: f64| best = Some(best.map_or(d, |b| b.min(d)));
            if peer == dest {
                offer(w);
            }
            if let Some(ms) = r.advertised_delay(peer, dest) {
                offer(w + ms);
            }
        }
        best
    }

    /// (peer, up at, down at or still up, rtt µs)
    type Contact = (u8, u64, Option<u64>, u64);
    /// (peer, entries (node, ms))
    type Adv = (u8, Vec<(u8, u64)>);

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn routes_match_the_definition(
            contacts in prop::collection::vec(
                (1u8..7, 0u64..50_000, prop::option::of(0u64..20_000), 1u64..100_000),
                0..16,
            ),
            adverts in prop::collection::vec(
                (1u8..7, prop::collection::vec((0u8..9, 0u64..100_000), 0..9)),
                0..8,
            ),
            now in 70_000u64..200_000,
        ) {
            let contacts: Vec<Contact> = contacts;
            let adverts: Vec<Adv> = adverts;
            let mut r = Router::new(node(0), Policy::Spore { copies: 4 });
            let mut sorted = contacts.clone();
            sorted.sort_by_key(|c| c.1);
            for (p, up, down, rtt) in sorted {
                r.contact_up(up, &node(p), rtt);
                if let Some(d) = down {
                    r.contact_down(up + d, &node(p));
                }
            }
            // Every name known, then a first look caches the routes: the
            // adverts below must invalidate them.
            let all = Advert {
                delay_ms: (0..9u8).map(|n| (node(n), 1_000_000)).collect(),
                predictability: vec![],
            };
            r.peer_advert(now, &node(6), &all);
            let _ = r.delay_to(now, &node(8));
            let _ = r.advert(now);
            for (p, entries) in &adverts {
                let delay_ms = entries.iter().map(|&(n, ms)| (node(n), ms)).collect();
                let advert = Advert { delay_ms, predictability: vec![] };
                r.peer_advert(now, &node(*p), &advert);
            }
            for d in 0..9u8 {
                for skip in std::iter::once(None).chain((1..7u8).map(Some)) {
                    let skip = skip.map(node);
                    let got = r.delay_excluding(now, &node(d), skip.as_ref());
                    let want = by_definition(&r, now, &node(d), skip.as_ref());
                    prop_assert_eq!(got, want, "dest n{} skip {:?}", d, skip);
                }
            }
            for to in std::iter::once(None).chain((1..7u8).map(Some)) {
                let to = to.map(node);
                let advert = r.advert_for(now, to.as_ref()).delay_ms;
                for (n, ms) in &advert {
                    let want = by_definition(&r, now, n, to.as_ref()).map(|d| d.round() as u64);
                    prop_assert_eq!(Some(*ms), want, "advert to {:?} for {}", to, n);
                }
                let named = (0..9u8)
                    .filter(|&d| by_definition(&r, now, &node(d), to.as_ref()).is_some())
                    .count();
                prop_assert_eq!(advert.len(), named);
            }
        }
    }
}
