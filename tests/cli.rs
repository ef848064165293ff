//! The command-line contract: `spore bundle create/inspect`, and one-line
//! errors with a non-zero exit code.

mod common;

use std::process::Command;

fn spore(args: &[&str]) -> std::process::Output {
    Command::new(common::exe()).args(args).output().unwrap()
}

#[test]
fn bundle_create_then_inspect_json() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = tmp.path().join("p.txt");
    std::fs::write(&payload, b"hello bundle").unwrap();
    let out = tmp.path().join("b.bundle");
    let (p, o) = (payload.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "bundle",
        "create",
        "--src",
        "ipn:1.0",
        "--dst",
        "dtn://c/app",
        "--payload",
        p,
        "--lifetime",
        "2h",
        "--crc",
        "16",
        "-o",
        o,
    ];
    let r = spore(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r = spore(&["bundle", "inspect", o, "--json"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["destination"], "dtn://c/app");
    assert_eq!(v["source"], "ipn:1.0");
    assert_eq!(v["lifetime_ms"], 7_200_000);
    assert_eq!(v["crc_type"], "crc16");
    let blocks = v["blocks"].as_array().unwrap();
    let payload_block = blocks.iter().find(|b| b["type"] == 1).unwrap();
    assert_eq!(payload_block["number"], 1);
    assert_eq!(payload_block["data_len"], 12);
    // The text form prints every block too.
    let r = spore(&["bundle", "inspect", o]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("dtn://c/app"));
    // And bp7 reads what the CLI wrote.
    let bytes = std::fs::read(&out).unwrap();
    let b = bp7::Bundle::try_from(bytes).unwrap();
    assert_eq!(b.primary.destination.to_string(), "dtn://c/app");
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, b"\x9f\x00 not a bundle").unwrap();
    let dir = tmp.path().join("nonode");
    let cases: Vec<Vec<&str>> = vec![
        vec!["bundle", "inspect", junk.to_str().unwrap()],
        vec!["bundle", "inspect", "/nonexistent/file"],
        vec!["status", "--data-dir", dir.to_str().unwrap()],
        vec![
            "send",
            "--data-dir",
            dir.to_str().unwrap(),
            "/nonexistent",
            "--to",
            "dtn://c/files",
        ],
    ];
    for args in cases {
        let r = spore(&args);
        assert!(!r.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
    }
    let r = spore(&["send", "x", "--to", "http://nope"]);
    assert!(!r.status.success(), "bad EID is a usage error");
}
