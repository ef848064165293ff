//! The node config file (spec/config.md): a real `spore node` takes its
//! settings from `DATA_DIR/spore.toml` or `--config FILE`; flags win over the
//! file; a typo is a start-up error naming the key and line.

mod common;

use spore::harness::NodeProcess;
use std::process::Command;

fn spore(args: &[&str]) -> std::process::Output {
    Command::new(common::exe()).args(args).output().unwrap()
}

#[test]
fn node_reads_router_and_lifetime_from_spore_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("spore.toml"),
        "# written by the test\n[node]\nrouter = \"spray-and-wait:3\"\nlifetime = \"2h\"\n",
    )
    .unwrap();
    let mut a = NodeProcess::start(&common::exe(), &dir, "a", &[]).unwrap();
    let st = a.status(None).unwrap();
    assert_eq!(st["router"], "spray-and-wait:3", "{st}");
    let f = tmp.path().join("f.bin");
    std::fs::write(&f, b"config file payload").unwrap();
    a.send(&f, "dtn://z/files").unwrap();
    let st = a.status(None).unwrap();
    let b = &st["bundles"][0];
    let left_ms = b["expiry_ms"].as_u64().unwrap() - spore::node::dtn_now().0;
    assert!(
        (7_000_000..=7_200_000).contains(&left_ms),
        "2 h lifetime: {b}"
    );
    a.stop();
}

#[test]
fn flags_win_over_the_file_and_print_config_shows_the_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("other.toml");
    std::fs::write(
        &cfg,
        "[node]\nrouter = \"prophet\"\npeers = [\"10.0.0.2:4556\"]\ncontact_plan = \"plan.txt\"\n",
    )
    .unwrap();
    let d = tmp.path().to_str().unwrap();
    let c = cfg.to_str().unwrap();
    let args = [
        "node",
        "--data-dir",
        d,
        "--config",
        c,
        "--router",
        "epidemic",
        "--peer",
        "10.0.0.3:4556",
        "--print-config",
    ];
    let r = spore(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let out = String::from_utf8(r.stdout).unwrap();
    assert!(out.contains("router = \"epidemic\""), "{out}");
    assert!(
        out.contains("10.0.0.2:4556") && out.contains("10.0.0.3:4556"),
        "{out}"
    );
    let plan = tmp.path().join("plan.txt");
    assert!(
        out.contains(plan.to_str().unwrap()),
        "relative path resolved: {out}"
    );
}

#[test]
fn a_typo_in_the_file_is_a_clear_start_up_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("spore.toml"),
        "[node]\nlisten = \"0.0.0.0:1\"\nrouterr = \"x\"\n",
    )
    .unwrap();
    let r = spore(&["node", "--data-dir", tmp.path().to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("routerr") && err.contains("line 3"), "{err}");
    assert!(
        !tmp.path().join("api.json").exists(),
        "the node must not start"
    );
    std::fs::write(
        tmp.path().join("spore.toml"),
        "[node]\nrouter = \"teleport\"\n",
    )
    .unwrap();
    let r = spore(&["node", "--data-dir", tmp.path().to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("teleport"), "{err}");
}

#[test]
fn an_invalid_service_in_the_file_stops_the_node_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = "[[service]]\nname = \"bad name!\"\nkind = \"exec\"\ncommand = [\"true\"]\n";
    std::fs::write(tmp.path().join("spore.toml"), bad).unwrap();
    let r = spore(&["node", "--data-dir", tmp.path().to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("[[service]]") && err.contains("bad name!"),
        "{err}"
    );
}

#[test]
fn services_declared_in_the_file_are_offered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    std::fs::create_dir_all(&dir).unwrap();
    let svc = "[[service]]\nname = \"count\"\nkind = \"exec\"\ncommand = [\"wc\", \"-c\"]\n";
    std::fs::write(dir.join("spore.toml"), svc).unwrap();
    let mut x = NodeProcess::start(&common::exe(), &dir, "x", &[]).unwrap();
    let peers = x.client().unwrap().get("/api/v1/peers").unwrap();
    assert!(
        peers["ours"].to_string().contains("\"count\""),
        "{}",
        peers["ours"]
    );
    x.stop();
}
