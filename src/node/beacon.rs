//! The discovery beacon: a small CBOR map sent on UDP multicast
//! (spec/discovery.md §2). IPND-style (draft-irtf-dtnrg-ipnd) in purpose,
//! spore's own format on the wire.
//!
//! Every field is validated on decode; a beacon larger than
//! [`MAX_BEACON_BYTES`] is refused before it is parsed.

use crate::bundle::Eid;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The magic text in every beacon (`m`).
pub const BEACON_MAGIC: &str = "spore-beacon";
/// The beacon format version (`v`).
pub const BEACON_VERSION: u8 = 1;
/// Largest encoded beacon, bytes.
pub const MAX_BEACON_BYTES: usize = 1024;
/// Most explicit addresses in a beacon.
pub const MAX_BEACON_ADDRS: usize = 4;
/// Most service names in a beacon.
pub const MAX_BEACON_SERVICES: usize = 8;
/// Longest text field (node ID, address, service, router name), bytes.
pub const MAX_BEACON_TEXT: usize = 200;

/// A decoded, validated discovery beacon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beacon {
    /// The sender's node ID (`dtn://node/` or `ipn:N.0`).
    pub node_id: Eid,
    /// The sender's QUIC port; the receiver dials the beacon's source IP
    /// with this port.
    pub quic_port: u16,
    /// Explicit QUIC addresses of the sender (≤ [`MAX_BEACON_ADDRS`]),
    /// tried after the source address.
    pub addrs: Vec<SocketAddr>,
    /// The sender's key fingerprint (16 lowercase hex digits, the first 8
    /// bytes of SHA-256 of its Ed25519 public key; `cla::identity`).
    pub key_fingerprint: String,
    /// Capability summary: the routing policy name (`spore`, `epidemic`…).
    pub router: String,
    /// Capability summary: service names offered (placeholder, may be empty;
    /// ≤ [`MAX_BEACON_SERVICES`]).
    pub services: Vec<String>,
    /// Capability summary: free bytes where the sender's store lives, if known.
    pub free_bytes: Option<u64>,
    /// Sequence number, +1 per beacon sent since the sender started.
    pub seq: u64,
}

/// Why a beacon was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeaconError {
    /// The datagram (or the encoding) exceeds [`MAX_BEACON_BYTES`].
    #[error("beacon of {0} bytes exceeds {MAX_BEACON_BYTES}")]
    TooLarge(usize),
    /// Not a CBOR map of the beacon's shape.
    #[error("beacon is not valid CBOR: {0}")]
    Cbor(String),
    /// The magic text is not [`BEACON_MAGIC`].
    #[error("not a spore beacon")]
    BadMagic,
    /// A version other than [`BEACON_VERSION`].
    #[error("unsupported beacon version {0}")]
    UnsupportedVersion(u8),
    /// A field is out of range or malformed.
    #[error("bad beacon field {field}: {why}")]
    BadField {
        /// Wire name of the field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// The wire shape: a CBOR map with short text keys (spec/discovery.md §2).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    m: String,
    v: u8,
    node: String,
    port: u16,
    #[serde(default)]
    addrs: Vec<String>,
    fp: String,
    #[serde(default)]
    router: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    free: Option<u64>,
    seq: u64,
}

fn bad(field: &'static str, why: &'static str) -> BeaconError {
    BeaconError::BadField { field, why }
}

fn check_text(field: &'static str, s: &str) -> Result<(), BeaconError> {
    if s.len() > MAX_BEACON_TEXT {
        return Err(bad(field, "too long"));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(field, "control character"));
    }
    Ok(())
}

impl Beacon {
    /// Encodes the beacon as CBOR.
    ///
    /// # Errors
    /// [`BeaconError::TooLarge`] if it would exceed [`MAX_BEACON_BYTES`];
    /// [`BeaconError::BadField`] if a field would not pass [`Beacon::decode`].
    pub fn encode(&self) -> Result<Vec<u8>, BeaconError> {
        let wire = Wire {
            m: BEACON_MAGIC.to_owned(),
            v: BEACON_VERSION,
            node: self.node_id.to_string(),
            port: self.quic_port,
            addrs: self.addrs.iter().map(ToString::to_string).collect(),
            fp: self.key_fingerprint.clone(),
            router: self.router.clone(),
            services: self.services.clone(),
            free: self.free_bytes,
            seq: self.seq,
        };
        validate(&wire)?;
        let bytes = serde_cbor::to_vec(&wire).map_err(|e| BeaconError::Cbor(e.to_string()))?;
        if bytes.len() > MAX_BEACON_BYTES {
            return Err(BeaconError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes and validates a received datagram.
    ///
    /// # Errors
    /// [`BeaconError`]: too large, not CBOR of the right shape (unknown keys
    /// are refused), wrong magic or version, or a bad field: node ID not a
    /// node ID (`dtn://node/`, `ipn:N.0`), port 0, more than [`MAX_BEACON_ADDRS`]
    /// addresses or an unparsable one, fingerprint not 16 hex digits, more
    /// than [`MAX_BEACON_SERVICES`] services, text longer than
    /// [`MAX_BEACON_TEXT`] or with control characters.
    pub fn decode(bytes: &[u8]) -> Result<Beacon, BeaconError> {
        if bytes.len() > MAX_BEACON_BYTES {
            return Err(BeaconError::TooLarge(bytes.len()));
        }
        let wire: Wire =
            serde_cbor::from_slice(bytes).map_err(|e| BeaconError::Cbor(e.to_string()))?;
        let (node_id, addrs) = validate(&wire)?;
        Ok(Beacon {
            node_id,
            quic_port: wire.port,
            addrs,
            key_fingerprint: wire.fp,
            router: wire.router,
            services: wire.services,
            free_bytes: wire.free,
            seq: wire.seq,
        })
    }
}

/// Checks every field; returns the parsed node ID and addresses.
fn validate(w: &Wire) -> Result<(Eid, Vec<SocketAddr>), BeaconError> {
    if w.m != BEACON_MAGIC {
        return Err(BeaconError::BadMagic);
    }
    if w.v != BEACON_VERSION {
        return Err(BeaconError::UnsupportedVersion(w.v));
    }
    check_text("node", &w.node)?;
    let node_id: Eid = w.node.parse().map_err(|_| bad("node", "not an EID"))?;
    if node_id == Eid::DtnNone || node_id.node_id() != node_id {
        return Err(bad("node", "not a node ID"));
    }
    if w.port == 0 {
        return Err(bad("port", "zero"));
    }
    if w.addrs.len() > MAX_BEACON_ADDRS {
        return Err(bad("addrs", "too many"));
    }
    let mut addrs = Vec::with_capacity(w.addrs.len());
    for a in &w.addrs {
        check_text("addrs", a)?;
        let a: SocketAddr = a.parse().map_err(|_| bad("addrs", "not an address"))?;
        if a.port() == 0 || a.ip().is_unspecified() || a.ip().is_multicast() {
            return Err(bad("addrs", "not a unicast address"));
        }
        addrs.push(a);
    }
    if w.fp.len() != 16 || !w.fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("fp", "not 16 hex digits"));
    }
    check_text("router", &w.router)?;
    if w.services.len() > MAX_BEACON_SERVICES {
        return Err(bad("services", "too many"));
    }
    for s in &w.services {
        check_text("services", s)?;
    }
    Ok((node_id, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Beacon {
        Beacon {
            node_id: "dtn://a/".parse().unwrap(),
            quic_port: 4556,
            addrs: vec!["10.0.0.2:4556".parse().unwrap()],
            key_fingerprint: "0123456789abcdef".into(),
            router: "spore".into(),
            services: vec!["files".into()],
            free_bytes: Some(1 << 30),
            seq: 7,
        }
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let bytes = b.encode().unwrap();
        assert!(bytes.len() < 200, "{} bytes", bytes.len());
        assert_eq!(Beacon::decode(&bytes).unwrap(), b);
    }

    #[test]
    fn malformed_beacons_are_refused() {
        assert!(matches!(
            Beacon::decode(&[0xff; 10]),
            Err(BeaconError::Cbor(_))
        ));
        assert_eq!(
            Beacon::decode(&vec![0u8; MAX_BEACON_BYTES + 1]),
            Err(BeaconError::TooLarge(MAX_BEACON_BYTES + 1))
        );
        let good = sample().encode().unwrap();
        for cut in 0..good.len() {
            assert!(Beacon::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let wire = |f: &dyn Fn(&mut Wire)| {
            let b = sample();
            let mut w = Wire {
                m: BEACON_MAGIC.into(),
                v: 1,
                node: b.node_id.to_string(),
                port: 4556,
                addrs: vec![],
                fp: b.key_fingerprint,
                router: b.router,
                services: vec![],
                free: None,
                seq: 1,
            };
            f(&mut w);
            Beacon::decode(&serde_cbor::to_vec(&w).unwrap())
        };
        assert!(wire(&|_| {}).is_ok());
        assert_eq!(wire(&|w| w.m = "x".into()), Err(BeaconError::BadMagic));
        assert_eq!(wire(&|w| w.v = 2), Err(BeaconError::UnsupportedVersion(2)));
        for (f, field) in [
            (
                &(|w: &mut Wire| w.node = "dtn://a/svc".into()) as &dyn Fn(&mut Wire),
                "node",
            ),
            (&|w: &mut Wire| w.node = "ipn:1.5".into(), "node"),
            (&|w: &mut Wire| w.node = "garbage".into(), "node"),
            (&|w: &mut Wire| w.port = 0, "port"),
            (&|w: &mut Wire| w.addrs = vec!["x".into()], "addrs"),
            (&|w: &mut Wire| w.addrs = vec!["0.0.0.0:1".into()], "addrs"),
            (
                &|w: &mut Wire| w.addrs = vec!["1.2.3.4:5".into(); 5],
                "addrs",
            ),
            (&|w: &mut Wire| w.fp = "zz".into(), "fp"),
            (&|w: &mut Wire| w.router = "r\n".into(), "router"),
            (&|w: &mut Wire| w.services = vec!["s".into(); 9], "services"),
            (
                &|w: &mut Wire| w.services = vec!["s".repeat(201)],
                "services",
            ),
        ] {
            match wire(f) {
                Err(BeaconError::BadField { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn oversize_beacon_is_not_encoded() {
        let mut b = sample();
        b.addrs = vec![
            "[1111:2222:3333:4444:5555:6666:7777:8888]:65535"
                .parse()
                .unwrap();
            4
        ];
        b.services = vec!["s".repeat(150); 8];
        assert!(matches!(b.encode(), Err(BeaconError::TooLarge(_))));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("m", serde_cbor::Value::Text(BEACON_MAGIC.into()));
        m.insert("zz", serde_cbor::Value::Integer(1));
        let bytes = serde_cbor::to_vec(&m).unwrap();
        assert!(matches!(Beacon::decode(&bytes), Err(BeaconError::Cbor(_))));
    }
}
