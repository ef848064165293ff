//! Zero-configuration discovery for real: three nodes, each in its own
//! network namespace, joined by veth pairs to one bridge, find each other
//! by multicast beacons alone (no `--peer`, empty dial lists) and a file
//! goes from A to C.
//!
//! Needs root (it creates namespaces, a bridge and veth pairs with `ip`):
//! `cargo test --test discovery_netns -- --ignored --nocapture`.
//! Names are unique per run (`sd<pid>…`) and everything is deleted on drop.
//! `SPORE_NETNS_BEACON_INTERVAL` sets the beacon interval (default 1s).

mod common;

use anyhow::{Context, bail};
use serde_json::Value;
use spore::harness::wait_for;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// Runs `ip ARGS`; fails with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output().context("run ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A bridge in the root namespace with address `10.77.{subnet}.1/24`
/// (deleted on drop, with its address).
struct Bridge(String, u8);

impl Bridge {
    fn new(name: String, subnet: u8) -> anyhow::Result<Bridge> {
        ip(&[
            "link",
            "add",
            &name,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        let b = Bridge(name, subnet);
        ip(&["addr", "add", &format!("{}/24", b.local()), "dev", &b.0])?;
        ip(&["link", "set", &b.0, "up"])?;
        Ok(b)
    }

    fn local(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(10, 77, self.1, 1)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
    }
}

/// A namespace with one veth to the bridge, address `10.77.{subnet}.{host}/24`
/// and a multicast route (deleted on drop, which deletes the veth pair).
struct Netns {
    name: String,
    addr: String,
}

impl Netns {
    fn new(prefix: &str, tag: &str, host: u8, bridge: &Bridge) -> anyhow::Result<Netns> {
        let subnet = bridge.1;
        let name = format!("{prefix}{tag}");
        ip(&["netns", "add", &name])?;
        let ns = Netns {
            name: name.clone(),
            addr: format!("10.77.{subnet}.{host}"),
        };
        let (outer, inner) = (format!("{name}o"), format!("{name}i"));
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ])?;
        ip(&["link", "set", &inner, "netns", &name])?;
        ip(&["link", "set", &outer, "master", &bridge.0])?;
        ip(&["link", "set", &outer, "up"])?;
        let n = ["-n", name.as_str()];
        let cidr = format!("{}/24", ns.addr);
        ip(&[&n[..], &["addr", "add", &cidr, "dev", &inner]].concat())?;
        ip(&[&n[..], &["link", "set", &inner, "up", "multicast", "on"]].concat())?;
        ip(&[&n[..], &["link", "set", "lo", "up"]].concat())?;
        ip(&[&n[..], &["route", "add", "224.0.0.0/4", "dev", &inner]].concat())?;
        Ok(ns)
    }

    /// `ip netns exec NS exe ARGS`.
    fn command(&self, exe: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(exe).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A `spore node` in a namespace (SIGKILLed on drop).
struct Node {
    name: String,
    dir: PathBuf,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(ns: &Netns, exe: &Path, root: &Path, name: &str, interval: &str) -> Node {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(root.join(format!("{name}.log"))).unwrap();
    let dir_s = dir.to_str().unwrap();
    let child = ns
        .command(exe, &["node", "--data-dir", dir_s])
        .args(["--node-id", &format!("dtn://{name}/")])
        .args(["--listen", "0.0.0.0:4556", "--api", "127.0.0.1:4557"])
        .args(["--discovery", "on", "--beacon-interval", interval])
        .args(["--peer-exchange", "off", "--dial-cached", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Node {
        name: name.into(),
        dir,
        child,
    }
}

/// `spore ARGS --json` run inside the namespace, parsed.
fn cli_json(ns: &Netns, exe: &Path, node: &Node, args: &[&str]) -> anyhow::Result<Value> {
    let out = ns
        .command(exe, args)
        .args(["--json", "--data-dir", node.dir.to_str().unwrap()])
        .output()?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn connected_to(v: &Value, node: &str) -> bool {
    v["peers"].as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p["node_id"] == node && p["connected"] == true)
    })
}

/// Sends three malformed datagrams and one well-formed beacon of a node
/// that does not exist to the beacon group, out of the bridge.
fn send_from_bridge(bridge: &Bridge) {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    sock.bind(&std::net::SocketAddr::from((bridge.local(), 0)).into())
        .unwrap();
    sock.set_multicast_if_v4(&bridge.local()).unwrap();
    let to: std::net::SocketAddr = "239.255.42.99:4551".parse().unwrap();
    let ghost = spore::node::beacon::Beacon {
        node_id: "dtn://ghost/".parse().unwrap(),
        quic_port: 9,
        addrs: vec![],
        key_fingerprint: "0000000000000000".into(),
        router: "none".into(),
        services: vec![],
        free_bytes: None,
        seq: 0,
    };
    let wrong_magic = serde_cbor::to_vec(&serde_json::json!({"m": "x", "v": 1})).unwrap();
    for d in [
        vec![0xff, 0xff, 0x00],
        vec![0u8; 1400],
        wrong_magic,
        ghost.encode().unwrap(),
    ] {
        sock.send_to(&d, &to.into()).unwrap();
    }
}

#[test]
#[ignore = "needs root and network namespaces; run by .ci/run as root"]
fn nodes_in_namespaces_find_each_other_by_beacons() {
    let exe = common::exe();
    let interval = std::env::var("SPORE_NETNS_BEACON_INTERVAL").unwrap_or_else(|_| "1s".to_owned());
    let prefix = format!("sd{}", std::process::id() % 100_000);
    let bridge = Bridge::new(format!("{prefix}br"), (std::process::id() % 250) as u8).unwrap();
    let tags = ["a", "b", "c"];
    let nss: Vec<Netns> = tags
        .iter()
        .zip(2u8..)
        .map(|(t, h)| Netns::new(&prefix, t, h, &bridge).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let spawned = Instant::now();
    let nodes: Vec<Node> = nss
        .iter()
        .zip(tags)
        .map(|(ns, t)| start(ns, &exe, tmp.path(), t, &interval))
        .collect();
    for n in &nodes {
        wait_for(&format!("{} ready", n.name), T, || {
            Ok(n.dir.join("api.json").exists().then_some(()))
        })
        .unwrap();
    }
    let t0 = Instant::now();
    println!(
        "discovery: all nodes ready {:?} after spawning",
        t0 - spawned
    );
    for (i, (ns, n)) in nss.iter().zip(&nodes).enumerate() {
        for other in tags.iter().enumerate().filter(|(j, _)| *j != i) {
            let other_id = format!("dtn://{}/", other.1);
            wait_for(&format!("{} in contact with {other_id}", n.name), T, || {
                let v = cli_json(ns, &exe, n, &["peers"])?;
                Ok(connected_to(&v, &other_id).then_some(()))
            })
            .unwrap();
        }
        println!(
            "discovery: {} in contact with both others {:?} after all nodes were ready, {:?} after spawning (beacon interval {interval})",
            n.name,
            t0.elapsed(),
            spawned.elapsed()
        );
    }
    let v = cli_json(&nss[0], &exe, &nodes[0], &["peers"]).unwrap();
    assert_eq!(
        v["dial"],
        serde_json::json!([]),
        "no --peer, no dial target"
    );
    // No --peer, no peer exchange, no cache: each of the three pairs was
    // joined by at least one discovery dial, caused by a beacon.
    let dials: u64 = nss
        .iter()
        .zip(&nodes)
        .map(|(ns, n)| {
            let v = cli_json(ns, &exe, n, &["peers"]).unwrap();
            v["discovery"]["counters"]["discovery_dials"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert!(dials >= 3, "{dials} discovery dials");
    let addr_c = &v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == "dtn://c/")
        .unwrap()["addr"];
    assert!(
        addr_c.as_str().unwrap().starts_with(&nss[2].addr),
        "C reached at its namespace address: {addr_c}"
    );

    // Garbage and a forged beacon, multicast from the root namespace onto
    // the bridge: the garbage is counted and ignored; the forged beacon is
    // only a (failing) dial; the contacts stay up.
    send_from_bridge(&bridge);
    for (ns, n) in nss.iter().zip(&nodes) {
        wait_for(&format!("{} counts the bad beacons", n.name), T, || {
            let v = cli_json(ns, &exe, n, &["peers"])?;
            let bad = v["discovery"]["counters"]["beacons_malformed"].as_u64();
            let ghost = v["discovery"]["heard"]["dtn://ghost/"]["via"] == "beacon";
            Ok((bad >= Some(3) && ghost).then_some(()))
        })
        .unwrap();
    }

    // A file from A to C over the discovered contact.
    let src = tmp.path().join("field-report.bin");
    common::random_file(&src, 300_000, 11);
    let t1 = Instant::now();
    cli_json(
        &nss[0],
        &exe,
        &nodes[0],
        &["send", src.to_str().unwrap(), "--to", "dtn://c/files"],
    )
    .unwrap();
    let want = std::fs::read(&src).unwrap();
    let inbox = nodes[2].dir.join("inbox");
    wait_for("the file at C", T, || {
        let found = std::fs::read_dir(&inbox)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read(e.path()).is_ok_and(|b| b == want));
        Ok(found.then_some(()))
    })
    .unwrap();
    println!("file A -> C delivered in {:?}", t1.elapsed());
    drop(nodes);
    // Beacon → contact up, from the nodes' own log timestamps.
    for t in tags {
        let log = std::fs::read_to_string(tmp.path().join(format!("{t}.log"))).unwrap();
        for line in log.lines() {
            if line.contains("discovery dial") || line.contains("discovered peer contacted") {
                println!("{t}.log: {line}");
            }
        }
    }
}
