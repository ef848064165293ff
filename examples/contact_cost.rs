//! Measures the agent's cost per contact (up, summary exchange, down) between
//! two agents over in-memory stores, with `held` bundles at one side.
//! `cargo run --release --example contact_cost -- [HELD] [CONTACTS]`
use bytes::Bytes;
use spore::agent::{Action, Agent, AgentConfig, Event, Submission};
use spore::bundle::{DtnTime, Eid};
use spore::store::Store;
use std::time::Instant;

fn agent(name: &str) -> Agent {
    let eid: Eid = format!("dtn://{name}/").parse().expect("valid EID");
    let mut cfg = AgentConfig::new(eid);
    cfg.policy = "direct".parse().expect("policy");
    Agent::new(Store::open_in_memory().expect("store"), cfg).expect("agent")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let held: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let contacts: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let (mut a, mut b) = (agent("a"), agent("b"));
    let mut now = 800_000_000_000u64;
    for i in 0..held {
        let items = vec![Submission::Data {
            destination: "dtn://z/sink".parse().expect("EID"),
            payload: Bytes::from(vec![i as u8; 100]),
            lifetime_ms: None,
            flags: 0,
            content_cid: None,
            expires_by_ms: None,
        }];
        a.handle(DtnTime(now), Event::Submit { ticket: 0, items })
            .expect("submit");
    }
    let (ae, be) = (a.node_id().clone(), b.node_id().clone());
    let t = Instant::now();
    for _ in 0..contacts {
        now += 1000;
        let n = DtnTime(now);
        let up = |x: &mut Agent, p: &Eid| {
            x.handle(
                n,
                Event::ContactUp {
                    peer: p.clone(),
                    addr: None,
                    rtt_us: 0,
                },
            )
            .expect("up")
        };
        let (oa, ob) = (up(&mut a, &be), up(&mut b, &ae));
        for (dst, acts, from) in [(&mut b, oa, &ae), (&mut a, ob, &be)] {
            for act in acts {
                if let Action::SendSummary {
                    held,
                    from_you,
                    advert,
                    ..
                } = act
                {
                    let ev = Event::PeerSummary {
                        peer: from.clone(),
                        held,
                        from_you,
                        advert,
                    };
                    dst.handle(n, ev).expect("summary");
                }
            }
        }
        a.handle(n, Event::ContactDown { peer: be.clone() })
            .expect("down");
        b.handle(n, Event::ContactDown { peer: ae.clone() })
            .expect("down");
        a.handle(n, Event::Tick).expect("tick");
        b.handle(n, Event::Tick).expect("tick");
    }
    let el = t.elapsed();
    println!(
        "held {held}: {contacts} contacts in {:.2} s = {:.1} µs per contact (8 agent calls)",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / contacts as f64
    );
}
