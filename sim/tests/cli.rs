//! The `spore-sim` binary: gen | run | plot, and errors.

use std::path::Path;
use std::process::{Command, Output};

fn sim(cmdline: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spore-sim"))
        .args(cmdline.split_whitespace())
        .output()
        .expect("spore-sim runs")
}

fn ok(cmdline: &str) -> String {
    let o = sim(cmdline);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{cmdline}: {err}");
    String::from_utf8(o.stdout).unwrap()
}

/// Keys scripts depend on (issue 3).
const KEYS: [&str; 18] = [
    "created",
    "delivered",
    "delivery_ratio",
    "latency_mean",
    "latency_median",
    "latency_p95",
    "hop_count_mean",
    "relayed",
    "overhead_ratio",
    "drops",
    "buffer_occupancy",
    "oracle_delivered",
    "oracle_latency_mean",
    "oracle_fraction",
    "events",
    "events_per_s",
    "seed",
    "router",
];

/// `run --json --series` of `trace` with `router` (and `extra` options).
fn run_json(trace: &str, router: &str, series: &str, extra: &str) -> serde_json::Value {
    let out = ok(&format!(
        "run --trace {trace} --router {router} --bandwidth unlimited --buffer unlimited \
         --messages 40 --msg-size 500-1500 --warmup 10 --seed 3 --json --series {series} {extra}"
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in KEYS {
        assert!(v.get(key).is_some(), "missing {key} in {out}");
    }
    assert_eq!(v["seed"], 3);
    assert!(v["created"].as_u64().unwrap() > 0);
    assert!(Path::new(series).exists());
    v
}

#[test]
fn gen_run_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).display().to_string();
    let trace = ok("gen poisson --nodes 5 --rate 0.02 --duration 400 --seed 4");
    std::fs::write(d("p.txt"), &trace).unwrap();
    let rwp = ok(
        "gen rwp --nodes 5 --grid 300 --range 60 --speed 1-3 --pause 5 \
                  --duration 300 --step 1 --seed 2",
    );
    assert!(rwp.lines().all(|l| l.contains(" CONN ")), "{rwp}");
    let e = run_json(&d("p.txt"), "epidemic", &d("e.json"), "");
    assert_eq!(e["router"], "epidemic");
    let s = run_json(&d("p.txt"), "spray-and-wait", &d("s.json"), "--copies 4");
    assert_eq!(s["router"], "spray-and-wait:4");
    let table = ok(&format!(
        "run --trace {} --router direct --messages 5",
        d("p.txt")
    ));
    assert!(table.contains("delivery_ratio"), "{table}");
    let plots = ok(&format!(
        "plot --input {} {} --out {}",
        d("e.json"),
        d("s.json"),
        d("plots")
    ));
    for f in [
        "delivery_ratio.svg",
        "delivery_ratio.png",
        "latency_cdf.svg",
        "latency_cdf.png",
    ] {
        let p = dir.path().join("plots").join(f);
        assert!(std::fs::metadata(&p).unwrap().len() > 100, "{f}: {plots}");
    }
    let svg = std::fs::read_to_string(dir.path().join("plots/latency_cdf.svg")).unwrap();
    assert!(svg.contains("spray-and-wait:4"), "legend names the policy");
}

#[test]
fn errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1 CONN 0 1 up\n2 CONN 0 1 maybe\n").unwrap();
    let bad = bad.display();
    let o = sim(&format!("run --trace {bad} --router epidemic --messages 1"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2"), "{err}");
    let o = sim(&format!("run --trace {bad} --router flood --messages 1"));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown router"));
    let o = sim(&format!("run --trace {bad} --router epidemic --copies 3"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--copies"));
    let o = sim("gen poisson --nodes 1 --rate 1 --duration 10");
    assert!(!o.status.success());
}
