//! Private networks (spec/trust.md) with real `spore node` processes on
//! 127.0.0.1: an untrusted node is refused in the handshake (counted) and
//! neither gets nor gives a bundle; a trusted node works; removing its key
//! ends its contact; invite/join makes a new node trusted on both sides and
//! a code works once; the local API refuses other OS users.

mod common;

use common::{counter, exe};
use serde_json::{Value, json};
use spore::harness::{NodeProcess, count_states, wait_for};
use spore::node::invite::InviteCode;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn start(tmp: &Path, name: &str, mode: &str) -> NodeProcess {
    NodeProcess::start(&exe(), &tmp.join(name), name, &["--trust", mode]).unwrap()
}

fn own_key(n: &NodeProcess) -> String {
    let v = n.client().unwrap().get("/api/v1/trust").unwrap();
    v["self"]["key"].as_str().unwrap().to_owned()
}

fn trusted_keys(n: &NodeProcess) -> Vec<String> {
    let v = n.client().unwrap().get("/api/v1/trust").unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect()
}

fn trust(n: &NodeProcess, key: &str, name: &str) {
    n.client()
        .unwrap()
        .post("/api/v1/trust", &json!({ "key": key, "name": name }))
        .unwrap();
}

fn status_counter(n: &NodeProcess, name: &str) -> anyhow::Result<u64> {
    Ok(counter(&n.status(None)?, name))
}

/// Waits until `to` has written the file of manifest `cid`.
fn wait_file(to: &NodeProcess, cid: &str) {
    wait_for(&format!("{} to write the file", to.name), WAIT, || {
        let st = to.status(Some(cid))?;
        Ok(st["files"][0]["path"].as_str().map(str::to_owned))
    })
    .unwrap();
}

fn spore(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn private_node_refuses_untrusted_serves_trusted_and_drops_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), "a", "private");
    let b = start(tmp.path(), "b", "private");
    let m = start(tmp.path(), "m", "open");
    trust(&a, &own_key(&b), "b");
    trust(&b, &own_key(&a), "a");
    m.add_peer(a.quic_addr()).unwrap();
    b.add_peer(a.quic_addr()).unwrap();

    // Three different files (the same content would have the same CID).
    let file = |seed: u64| {
        let f = tmp.path().join(format!("f{seed}.bin"));
        common::random_file(&f, 40_000, seed);
        f
    };
    let from_m = m.send(&file(1), "dtn://a/files").unwrap();
    let to_m = a.send(&file(2), "dtn://m/files").unwrap();
    wait_for("a to refuse m", WAIT, || {
        Ok((status_counter(&a, "refused_untrusted")? >= 2).then_some(()))
    })
    .unwrap();
    // The trusted node's file crosses while m keeps being refused.
    let from_b = b.send(&file(3), "dtn://a/files").unwrap();
    wait_file(&a, &from_b);
    assert!(a.connected("dtn://b/").unwrap());
    assert!(!a.connected("dtn://m/").unwrap());
    assert!(!m.connected("dtn://a/").unwrap());
    let at_a = a.status(Some(&from_m)).unwrap();
    assert_eq!(at_a["bundles"].as_array().unwrap().len(), 0, "{at_a}");
    assert!(at_a["files"].as_array().unwrap().is_empty());
    let at_m = m.status(Some(&to_m)).unwrap();
    assert!(at_m["bundles"].as_array().unwrap().is_empty(), "{at_m}");
    let held_by_m = count_states(&m.status(None).unwrap(), Some("dtn://a/files"));
    assert!(
        !held_by_m.contains_key("custody_transferred"),
        "{held_by_m:?}"
    );

    // Removing b's key ends its contact at once; its redials are refused.
    let refused = status_counter(&a, "refused_untrusted").unwrap();
    let out = spore(&a.dir, &["trust", "remove", "b"]);
    assert!(out.status.success(), "{out:?}");
    wait_for("a to drop b", Duration::from_secs(5), || {
        Ok((!a.connected("dtn://b/")?).then_some(()))
    })
    .unwrap();
    wait_for("b's redial to be refused", WAIT, || {
        Ok((status_counter(&a, "refused_untrusted")? > refused).then_some(()))
    })
    .unwrap();
    assert!(!a.connected("dtn://b/").unwrap());
}

#[test]
fn invite_join_trusts_both_ways_and_a_code_works_once() {
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), "a", "private");
    let j = start(tmp.path(), "j", "private");
    let k = start(tmp.path(), "k", "open");
    let code_file = tmp.path().join("invite.txt");
    let code_arg = code_file.to_str().unwrap();
    let out = spore(&a.dir, &["invite", "--ttl", "1m", "--out", code_arg]);
    assert!(out.status.success(), "{out:?}");
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(code.starts_with("SPORE1-") && code.len() < 140, "{code}");

    let out = spore(&j.dir, &["join", &format!("@{code_arg}")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("joined dtn://a/"));
    assert!(trusted_keys(&a).contains(&own_key(&j)));
    assert!(trusted_keys(&j).contains(&own_key(&a)));
    assert_eq!(status_counter(&a, "joined").unwrap(), 1);
    wait_for("j to reconnect to a", WAIT, || {
        Ok(j.connected("dtn://a/")?.then_some(()))
    })
    .unwrap();
    let file = tmp.path().join("g.bin");
    common::random_file(&file, 30_000, 7);
    let cid = j.send(&file, "dtn://a/files").unwrap();
    wait_file(&a, &cid);

    // The same code again: refused, with a clear reason.
    let out = spore(&k.dir, &["join", &code]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already used"), "{err}");
    assert!(!trusted_keys(&a).contains(&own_key(&k)));
    assert!(trusted_keys(&k).is_empty(), "a failed join leaves no key");

    // A damaged code, then a well-formed one with a wrong secret.
    let mut typo = code.clone().into_bytes();
    let i = typo.len() / 2;
    typo[i] = if typo[i] == b'Q' { b'R' } else { b'Q' };
    let out = spore(&k.dir, &["join", &String::from_utf8(typo).unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged"));
    let fresh = a
        .client()
        .unwrap()
        .post("/api/v1/invite", &json!({}))
        .unwrap();
    let mut forged = InviteCode::decode(fresh["code"].as_str().unwrap()).unwrap();
    forged.secret = [0x55; 16];
    let r = k
        .client()
        .unwrap()
        .post("/api/v1/join", &json!({ "code": forged.encode() }));
    let err = format!("{:#}", r.unwrap_err());
    assert!(err.contains("unknown invite code"), "{err}");
    assert!(status_counter(&a, "refused_join").unwrap() >= 1);
    assert!(!trusted_keys(&a).contains(&own_key(&k)));
}

#[cfg(target_os = "linux")]
#[test]
fn api_files_are_private_api_is_loopback_and_other_users_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), "a", "private");
    trust(&a, &"ab".repeat(32), "x");
    for f in ["api.token", "identity.key", "trust.json"] {
        let mode = std::fs::metadata(a.dir.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let out = Command::new(exe())
        .args(["node", "--api", "0.0.0.0:0", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(tmp.path().join("open-api"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));

    let info: Value =
        serde_json::from_slice(&std::fs::read(a.dir.join("api.json")).unwrap()).unwrap();
    let token = std::fs::read_to_string(a.dir.join("api.token")).unwrap();
    let curl = |as_nobody: bool| {
        let mut c = Command::new("curl");
        c.args(["-s", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {}", token.trim()))
            .arg(format!(
                "http://{}/api/v1/trust",
                info["api"].as_str().unwrap()
            ));
        if as_nobody {
            c.uid(65534).gid(65534);
        }
        c.output()
    };
    let Ok(own) = curl(false) else {
        eprintln!("SKIPPED: curl is not installed");
        return;
    };
    assert!(String::from_utf8_lossy(&own.stdout).ends_with("\n200"));
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("SKIPPED other-user check: needs root to run curl as nobody");
        return;
    }
    let other = curl(true).unwrap();
    let text = String::from_utf8_lossy(&other.stdout);
    assert!(text.ends_with("\n403"), "{text}");
    assert!(text.contains("only serves its own OS user"), "{text}");
}

/// A peer admitted on probation (an invite is pending) that does not start
/// with a valid `Join` is closed with the reason, counted, and its bundle
/// is never read.
#[test]
fn probation_peer_without_join_is_closed_and_gives_no_bundle() {
    use bytes::Bytes;
    use spore::bundle::{Bundle, CreationTimestamp, DtnTime, codec};
    use spore::cla::identity::Identity;
    use spore::cla::quic::{ClaConfig, QuicCla};
    use spore::node::proto::ControlMessage;
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), "a", "private");
    a.client()
        .unwrap()
        .post("/api/v1/invite", &json!({ "ttl_s": 60 }))
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reason = rt.block_on(async {
        let id = Identity::generate().unwrap();
        let me = "dtn://mallory/";
        let any = "127.0.0.1:0".parse().unwrap();
        let cla = QuicCla::bind(any, &id, me, ClaConfig::default()).unwrap();
        let c = cla
            .connect(a.quic_addr())
            .await
            .expect("probation passes the handshake");
        let now = DtnTime::from_unix_ms(spore::node::trust::unix_ms());
        let ts = CreationTimestamp {
            time: now,
            sequence: 1,
        };
        let b = Bundle::new(
            me.parse().unwrap(),
            "dtn://a/app".parse().unwrap(),
            ts,
            3_600_000,
            Bytes::from_static(b"not admitted"),
        );
        let send = c.send_bundle(Bytes::from(codec::encode(&b)));
        let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
        let summary = ControlMessage::Summary {
            held: vec![],
            from_you: vec![],
            from_you_transmissions: vec![],
            advert: Default::default(),
        };
        let _ = c.send_control(&summary).await;
        tokio::time::timeout(WAIT, c.closed()).await.unwrap()
    });
    assert!(
        reason.to_string().contains("must send Join first"),
        "{reason}"
    );
    let st = a.status(None).unwrap();
    assert_eq!(counter(&st, "refused_join"), 1, "{st}");
    assert_eq!(counter(&st, "received_total"), 0, "{st}");
    assert!(st["bundles"].as_array().unwrap().is_empty(), "{st}");
    assert!(trusted_keys(&a).is_empty());
}
