//! No background wakeups when nothing is pending (issue 4): an idle node's
//! agent thread sleeps until an event brings work, and still wakes on time
//! for timed work (here a 2-second lifetime). Measured on the real process:
//! the context switches of its `spore-agent` thread (`/proc`, Linux).

mod common;

use spore::harness::{NodeProcess, count_states, wait_for};
use std::time::Duration;

/// Voluntary + involuntary context switches of `pid`'s agent thread.
fn agent_switches(pid: u32) -> u64 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "spore-agent" {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        return status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum();
    }
    panic!("no spore-agent thread in process {pid}");
}

#[test]
fn an_idle_node_does_not_wake_its_agent_yet_expires_on_time() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = common::exe();
    // The default tick period (250 ms) would wake the agent 12 times in 3 s.
    let a = NodeProcess::start(&exe, &tmp.path().join("a"), "a", &[]).unwrap();
    let pid = a.pid().unwrap();
    std::thread::sleep(Duration::from_secs(1)); // start-up work settles
    let before = agent_switches(pid);
    std::thread::sleep(Duration::from_secs(3));
    let idle = agent_switches(pid) - before;
    assert!(idle <= 2, "the idle agent thread woke {idle} times in 3 s");

    // Timed work still gets its tick: a bundle with a 2 s lifetime and no
    // contact expires at A.
    let short = tmp.path().join("short.txt");
    std::fs::write(&short, b"this bundle lives two seconds").unwrap();
    let path = std::fs::canonicalize(&short).unwrap();
    a.client()
        .unwrap()
        .post(
            "/api/v1/send",
            &serde_json::json!({"path": path, "to": "dtn://c/files", "lifetime_ms": 2000}),
        )
        .unwrap();
    wait_for("expiry at A", Duration::from_secs(10), || {
        let p = count_states(&a.status(None)?, Some("dtn://c/files"));
        Ok((p.get("expired") == Some(&2) && p.len() == 1).then_some(()))
    })
    .unwrap();
    // And once they are gone, the agent is idle again.
    std::thread::sleep(Duration::from_secs(1));
    let before = agent_switches(pid);
    std::thread::sleep(Duration::from_secs(3));
    let idle = agent_switches(pid) - before;
    assert!(
        idle <= 2,
        "after expiry the agent thread woke {idle} times in 3 s"
    );
}
