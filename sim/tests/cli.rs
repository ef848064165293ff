//! The `spore-sim` binary: gen | run | plot, and errors.

use std::path::Path;
use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_spore-sim"))
        .args(args)
        .output()
        .expect("spore-sim runs")
}

fn ok(args: &[&str]) -> String {
    let o = sim(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn gen_run_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).display().to_string();
    let trace = ok(&[
        "gen",
        "poisson",
        "--nodes",
        "5",
        "--rate",
        "0.02",
        "--duration",
        "400",
        "--seed",
        "4",
    ]);
    std::fs::write(d("p.txt"), &trace).unwrap();
    let rwp = ok(&[
        "gen",
        "rwp",
        "--nodes",
        "5",
        "--grid",
        "300",
        "--range",
        "60",
        "--speed",
        "1-3",
        "--pause",
        "5",
        "--duration",
        "300",
        "--step",
        "1",
        "--seed",
        "2",
    ]);
    assert!(rwp.lines().all(|l| l.contains(" CONN ")), "{rwp}");
    let mut reports = Vec::new();
    for (router, copies) in [("epidemic", None), ("spray-and-wait", Some("4"))] {
        let series = d(&format!("{router}.json"));
        let tr = d("p.txt");
        let mut args = vec![
            "run",
            "--trace",
            &tr,
            "--router",
            router,
            "--bandwidth",
            "unlimited",
            "--buffer",
            "unlimited",
            "--messages",
            "40",
            "--msg-size",
            "500-1500",
            "--warmup",
            "10",
            "--seed",
            "3",
            "--json",
            "--series",
            &series,
        ];
        if let Some(l) = copies {
            args.extend(["--copies", l]);
        }
        let out = ok(&args);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        for key in [
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
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {out}");
        }
        assert_eq!(v["seed"], 3);
        assert!(v["created"].as_u64().unwrap() > 0);
        reports.push(v["router"].as_str().unwrap().to_owned());
        assert!(Path::new(&series).exists());
    }
    assert_eq!(reports, ["epidemic", "spray-and-wait:4"]);
    let table = ok(&[
        "run",
        "--trace",
        &d("p.txt"),
        "--router",
        "direct",
        "--messages",
        "5",
    ]);
    assert!(table.contains("delivery_ratio"), "{table}");
    let plots = ok(&[
        "plot",
        "--input",
        &d("epidemic.json"),
        &d("spray-and-wait.json"),
        "--out",
        &d("plots"),
    ]);
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
    let o = sim(&[
        "run",
        "--trace",
        bad.to_str().unwrap(),
        "--router",
        "epidemic",
        "--messages",
        "1",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2"), "{err}");
    let o = sim(&[
        "run",
        "--trace",
        bad.to_str().unwrap(),
        "--router",
        "flood",
        "--messages",
        "1",
    ]);
    assert!(!o.status.success());
    let o = sim(&[
        "run",
        "--trace",
        bad.to_str().unwrap(),
        "--router",
        "epidemic",
        "--copies",
        "3",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--copies"));
}
