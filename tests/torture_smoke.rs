//! Smoke run of the crash-torture program: three real nodes, three SIGKILL
//! cycles, four files; it must end with nothing lost or duplicated.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn torture_smoke_three_cycles() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_spore-torture"))
        .args(["--cycles", "3", "--files", "4", "--seed", "1"])
        .args(["--max-seconds", "60", "--json"])
        .output()
        .expect("spore-torture runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "spore-torture failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.starts_with("seed: 1\n"),
        "seed printed first: {stdout}"
    );
    let json = stdout.split_once('\n').map(|(_, j)| j).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON summary");
    assert_eq!(v["cycles_done"], 3);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["duplicated"], 0);
    assert_eq!(v["files_attempted"], 4);
    let kills: u64 = (0..3).map(|i| v["kills"][i].as_u64().unwrap()).sum();
    assert_eq!(kills, 3, "one kill per cycle");
    assert!(v["files_acknowledged"].as_u64().unwrap() >= 1, "{v}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
