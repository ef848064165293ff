//! Disk full (ENOSPC) under a real node: N's data directory is a 4 MiB
//! tmpfs mounted by the test (needs root: ignored by default, run by
//! `.ci/run` as root with `--ignored`). A sends N an 8 MiB file addressed
//! elsewhere; N's store commits start failing with ENOSPC. N must refuse
//! (count `store_errors`), keep running and answering, and A must keep
//! custody of what N could not store. When the disk grows again, N
//! re-opens its store and takes the rest: nothing is lost.

mod common;

use spore::harness::{NodeProcess, count_states, wait_for};
use std::process::Command;
use std::time::Duration;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it as root with --ignored"]
fn a_full_disk_is_refused_and_counted_and_the_node_keeps_running() {
    assert!(is_root(), "needs root to mount a small tmpfs");
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot mount a tmpfs on {}", small.display());
    let _m = Mount(small.clone());
    let exe = common::exe();
    let n = NodeProcess::start(&exe, &small.join("n"), "n", &[]).unwrap();
    let a_flags = ["--custody-timeout", "2s"];
    let a = NodeProcess::start(&exe, &tmp.path().join("a"), "a", &a_flags).unwrap();
    let src = tmp.path().join("big.bin");
    common::random_file(&src, 8 << 20, 3);
    a.send(&src, "dtn://elsewhere/files").unwrap();
    a.add_peer(n.quic_addr()).unwrap();
    let s = wait_for("N to hit ENOSPC", Duration::from_secs(30), || {
        let s = n.status(None)?;
        Ok((common::counter(&s, "store_errors") >= 1).then_some(s))
    })
    .unwrap();
    eprintln!("N counters {}", s["counters"]);
    // Still running and answering, a while later.
    std::thread::sleep(Duration::from_secs(3));
    let s = match n.status(None) {
        Ok(s) => s,
        Err(e) => {
            let log = std::fs::read_to_string(small.join("n.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "N does not answer after the disk filled: {e:#}\n{}",
                tail.join("\n")
            );
        }
    };
    drop(s);
    // Every bundle A let go is held by N. The two statuses are read one
    // after the other while N may still fit a bundle now and then, so
    // compare a pair of reads with A's count unchanged around N's.
    let (at_a, held_n) = wait_for(
        "a settled pair of A and N counts",
        Duration::from_secs(20),
        || {
            let before = count_states(&a.status(None)?, None);
            let held_n = count_states(&n.status(None)?, None);
            let after = count_states(&a.status(None)?, None);
            let transferred = after.get("custody_transferred").copied().unwrap_or(0);
            let stored_n = held_n.get("stored").copied().unwrap_or(0)
                + held_n.get("in_flight").copied().unwrap_or(0);
            eprintln!("N holds {held_n:?}; A: {after:?}");
            Ok((before == after && transferred == stored_n).then_some((after, held_n)))
        },
    )
    .unwrap();
    eprintln!("settled: N holds {held_n:?}; A: {at_a:?}");
    // A keeps custody of what N did not store.
    let a_kept =
        at_a.get("stored").copied().unwrap_or(0) + at_a.get("in_flight").copied().unwrap_or(0);
    assert!(a_kept >= 1, "{at_a:?}");
    // The disk grows: N re-opens its store and takes the rest.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    assert!(grown, "cannot grow the tmpfs");
    let total = at_a.values().sum::<usize>();
    wait_for("N to take every bundle", Duration::from_secs(60), || {
        let at_a = count_states(&a.status(None)?, None);
        let at_n = count_states(&n.status(None)?, None);
        let done = at_a.get("custody_transferred").copied().unwrap_or(0) == total
            && at_n.get("stored").copied().unwrap_or(0) == total;
        Ok(done.then_some(()))
    })
    .unwrap();
}
