//! Store quota with real processes: A sends a 2 MiB file (32 chunk bundles
//! of 64 KiB and a manifest) to C through relay B, whose quota holds only
//! a few of them. B keeps what it accepted, refuses the rest ("depleted
//! storage", counted in `spore status`), A keeps custody of those; once C
//! is in contact and B has passed its bundles on, A's remaining bundles are
//! accepted and C gets the whole file: nothing is lost.

mod common;

use spore::harness::{NodeProcess, count_states, wait_for};
use std::time::Duration;

const DEST: &str = "dtn://c/files";
const T: Duration = Duration::from_secs(30);
/// B's quota: 10 % local reserve and a 50 % share for one peer leave A
/// 300 000 bytes: four 64 KiB chunk bundles.
const QUOTA_BYTES: u64 = 600_000;

fn n(m: &std::collections::BTreeMap<String, usize>, k: &str) -> usize {
    m.get(k).copied().unwrap_or(0)
}

fn refusals(s: &serde_json::Value) -> u64 {
    [
        "refused_quota",
        "refused_quota_bundles",
        "refused_quota_peer_share",
    ]
    .iter()
    .map(|k| common::counter(s, k))
    .sum()
}

#[test]
fn a_full_store_refuses_keeps_what_it_has_and_takes_the_rest_later() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("payload.bin");
    common::random_file(&src, 2 << 20, 5);
    let exe = common::exe();
    let a_flags = ["--chunk-size", "65536", "--custody-timeout", "1s"];
    let a = NodeProcess::start(&exe, &root.join("a"), "a", &a_flags).unwrap();
    let quota = QUOTA_BYTES.to_string();
    let b_flags = ["--quota-bytes", &quota, "--custody-timeout", "1s"];
    let b = NodeProcess::start(&exe, &root.join("b"), "b", &b_flags).unwrap();
    let c = NodeProcess::start(&exe, &root.join("c"), "c", &[]).unwrap();
    let cid = a.send(&src, DEST).unwrap();
    let total: usize = count_states(&a.status(None).unwrap(), Some(DEST))
        .values()
        .sum();
    assert_eq!(total, 33);

    // Only A-B: B fills up to A's share and refuses the rest.
    b.add_peer(a.quic_addr()).unwrap();
    let first = wait_for("B to refuse for lack of room", T, || {
        let s = b.status(None)?;
        Ok((refusals(&s) >= 1).then_some(s))
    })
    .unwrap();
    eprintln!("B counters {}", first["counters"]);
    // A keeps custody of everything B refused; B holds exactly what it
    // accepted (custody signals may still be on their way: wait for the
    // two views to agree).
    let (stored, sb) = wait_for("A and B to agree on who holds what", T, || {
        let sb = b.status(None)?;
        let at_b = count_states(&sb, Some(DEST));
        let at_a = count_states(&a.status(None)?, Some(DEST));
        let stored = n(&at_b, "stored") + n(&at_b, "in_flight");
        let agree = n(&at_a, "custody_transferred") == stored
            && n(&at_a, "stored") + n(&at_a, "in_flight") == total - stored;
        Ok(agree.then_some((stored, sb)))
    })
    .unwrap();
    eprintln!("B holds {stored} bundles, held_bytes {}", sb["held_bytes"]);
    assert!((1..total).contains(&stored), "B holds {stored} of {total}");
    assert!(sb["held_bytes"].as_u64().unwrap() <= QUOTA_BYTES / 2);
    // Nothing deleted to make room: B still holds them a moment later.
    let again = count_states(&b.status(None).unwrap(), Some(DEST));
    assert_eq!(n(&again, "stored") + n(&again, "in_flight"), stored);

    // C comes: B passes its bundles on, makes room, and takes the rest.
    c.add_peer(b.quic_addr()).unwrap();
    let path = wait_for("C to write the file", T, || {
        let s = c.status(Some(&cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(std::path::PathBuf::from))
    })
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), std::fs::read(&src).unwrap());
    wait_for("A and B to hold nothing", T, || {
        let (sa, sb) = (a.status(None)?, b.status(None)?);
        Ok((sa["held_bytes"] == 0 && sb["held_bytes"] == 0).then_some(()))
    })
    .unwrap();
    let sb = b.status(None).unwrap();
    eprintln!("B counters at the end {}", sb["counters"]);
    assert!(refusals(&sb) >= refusals(&first));
    let at_a = count_states(&a.status(None).unwrap(), Some(DEST));
    assert_eq!(n(&at_a, "custody_transferred"), total, "{at_a:?}");
}
