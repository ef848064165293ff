//! The main job end to end, with real processes, real QUIC on 127.0.0.1 and
//! real redb files: a 24 MiB file goes A -> B -> C; B is SIGKILLed mid-
//! transfer and restarted; A is stopped once B holds custody of everything;
//! C's copy is byte-identical and delivered exactly once, and C wrote it
//! chunk by chunk as the chunks arrived.

mod common;

use spore::harness::{NodeProcess, count_states, wait_for};
use std::time::Duration;

const DEST: &str = "dtn://c/files";
const T: Duration = Duration::from_secs(90);

fn n(m: &std::collections::BTreeMap<String, usize>, k: &str) -> usize {
    m.get(k).copied().unwrap_or(0)
}

#[test]
fn file_crosses_a_relay_that_is_killed_mid_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("payload.bin");
    common::random_file(&src, 24 << 20, 7);
    let exe = common::exe();
    let mut a = NodeProcess::start(&exe, &root.join("a"), "a", &[]).unwrap();
    let mut b = NodeProcess::start(&exe, &root.join("b"), "b", &[]).unwrap();
    let mut c = NodeProcess::start(&exe, &root.join("c"), "c", &[]).unwrap();

    let cid = a.send(&src, DEST).unwrap();
    let total = count_states(&a.status(None).unwrap(), Some(DEST))
        .values()
        .sum::<usize>();
    assert_eq!(total, 96 + 1, "24 MiB in 256 KiB chunks plus one manifest");

    // Contact A-B only, capped at 8 MiB/s (≈ 3 s for the file) so that
    // the kill lands mid-transfer however fast the machine is. Kill B once
    // a third of the bundles are in its custody.
    common::cli_ok(&a.dir, &["peers", "limit", "dtn://b/", "8M"]);
    b.add_peer(a.quic_addr()).unwrap();
    wait_for("a third of the bundles at B", T, || {
        let p = count_states(&a.status(None)?, Some(DEST));
        Ok((n(&p, "custody_transferred") >= total / 3).then_some(()))
    })
    .unwrap();
    let before_kill = count_states(&a.status(None).unwrap(), Some(DEST));
    assert!(
        n(&before_kill, "custody_transferred") < total,
        "the kill must be mid-transfer"
    );
    b.kill();
    b.restart().unwrap();
    // Everything B had accepted before the kill is still there.
    let b_after = count_states(&b.status(None).unwrap(), Some(DEST));
    assert!(n(&b_after, "stored") >= n(&before_kill, "custody_transferred"));

    wait_for("all bundles in B's custody", T, || {
        let p = count_states(&a.status(None)?, Some(DEST));
        Ok((n(&p, "custody_transferred") == total).then_some(()))
    })
    .unwrap();
    // A's copies are released: nothing held there any more.
    let a_status = a.status(None).unwrap();
    assert_eq!(a_status["held_bytes"].as_u64(), Some(0));
    for bundle in a_status["bundles"].as_array().unwrap() {
        if bundle["destination"] == DEST {
            assert_eq!(bundle["custodian"], "dtn://b/", "custody is at B: {bundle}");
        }
    }
    a.stop();
    b.remove_peer(a.quic_addr()).unwrap();

    // Contact B-C only.
    b.add_peer(c.quic_addr()).unwrap();
    let path = wait_for("C to write the file", T, || {
        let s = c.status(Some(&cid))?;
        Ok(s["files"]
            .get(0)
            .and_then(|f| f["path"].as_str())
            .map(std::path::PathBuf::from))
    })
    .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&src).unwrap(),
        "byte-identical"
    );

    // Delivered exactly once: one file in the inbox, each bundle delivered once.
    let inbox: Vec<_> = std::fs::read_dir(c.dir.join("inbox")).unwrap().collect();
    assert_eq!(inbox.len(), 1, "exactly one file in C's inbox");
    let cs = c.status(None).unwrap();
    assert_eq!(common::counter(&cs, "files_delivered"), 1);
    // The manifest travelled first (it expires first), so C wrote chunks
    // into place as they came (spec/manifest.md §Progressive reassembly).
    assert_eq!(common::counter(&cs, "early_files"), 1);
    assert!(common::counter(&cs, "early_chunks_written") > 0, "{cs}");
    let delivered = count_states(&cs, Some(DEST));
    assert_eq!(n(&delivered, "delivered"), total, "{delivered:?}");
    wait_for("B to release everything", T, || {
        let p = count_states(&b.status(None)?, Some(DEST));
        Ok((n(&p, "custody_transferred") == total).then_some(()))
    })
    .unwrap();
    b.stop();
    c.stop();
}
