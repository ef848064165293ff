//! Link chaos end to end: a 16 MiB file goes A -> B -> C through two chaos
//! relays (2 % loss, jitter, reordering, duplicates, link flaps every
//! 0.5–5 s) and C's copy verifies by SHA-256, delivered exactly once.

mod common;

use spore::chaos::transfer::{self, TransferConfig};
use spore::chaos::{ChaosConfig, Flaps};
use std::time::Duration;

#[test]
fn a_file_crosses_two_flapping_lossy_links_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = std::env::var("SPORE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    eprintln!("chaos seed {seed} (SPORE_CHAOS_SEED to rerun)");
    let mut link = ChaosConfig::issue7(seed);
    // 2 % loss, 1 % duplicated and 1 % reordered as in the issue, on a
    // shorter link (0.2–0.7 ms, reordered by up to 3 ms): QUIC's congestion
    // control pays for loss per round trip, so a short RTT keeps the test
    // well under 30 s. Flaps every 0.5–5 s as in the issue, short downs.
    link.delay = Duration::from_micros(200);
    link.jitter = Duration::from_micros(500);
    link.reorder_delay = Duration::from_millis(3);
    link.flaps = Some(Flaps {
        up_min: Duration::from_millis(500),
        up_max: Duration::from_secs(5),
        down_min: Duration::from_millis(200),
        down_max: Duration::from_millis(800),
    });
    let cfg = TransferConfig {
        exe: common::exe(),
        root: tmp.path().to_path_buf(),
        size_bytes: 16 << 20,
        seed,
        link,
        timeout: Duration::from_secs(25),
        node_flags: vec![],
    };
    let r = transfer::run(&cfg, true).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(r.verified, "C's copy must hash like the source");
    assert_eq!(r.inbox_files, 1, "delivered exactly once");
    assert_eq!(
        r.bundles,
        64 + 1,
        "16 MiB in 256 KiB chunks plus one manifest"
    );
    for s in [r.relay_ab, r.relay_bc] {
        assert!(s.dropped_random > 0, "the chaos must have bitten: {s:?}");
        assert!(s.duplicated > 0 && s.reordered > 0, "{s:?}");
    }
    assert!(
        r.relay_ab.downs + r.relay_bc.downs > 0,
        "at least one flap during the transfer"
    );
}
