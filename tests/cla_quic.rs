//! Integration tests of the QUIC convergence layer over real sockets on 127.0.0.1.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spore::cla::identity::{Identity, IdentityError};
use spore::cla::quic::{ClaConfig, ClaError, Contact, QuicCla};
use spore::cla::{PeerCertificate, PeerTrust, codes};
use std::sync::{Arc, Mutex};

/// Every test body runs under this bound so a hang fails fast instead of stalling CI.
async fn within_5s<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("test took more than 5 s")
}

fn bind(node_id: &str, config: ClaConfig) -> (QuicCla, Identity) {
    let id = Identity::generate().unwrap();
    let cla = QuicCla::bind("127.0.0.1:0".parse().unwrap(), &id, node_id, config).unwrap();
    (cla, id)
}

/// Connects a fresh node "dtn://a/" (dialer) to a fresh node "dtn://b/" (acceptor).
async fn pair(cfg_a: ClaConfig, cfg_b: ClaConfig) -> (QuicCla, QuicCla, Contact, Contact) {
    let (a, _) = bind("dtn://a/", cfg_a);
    let (b, _) = bind("dtn://b/", cfg_b);
    let addr_b = b.local_addr().unwrap();
    let (to_b, from_a) = tokio::join!(a.connect(addr_b), b.accept());
    (a, b, to_b.unwrap(), from_a.unwrap().unwrap())
}

fn random_bytes(seed: u64, len: usize) -> Bytes {
    let mut buf = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut buf);
    Bytes::from(buf)
}

#[tokio::test]
async fn both_sides_see_authenticated_peer() {
    within_5s(async {
        let (a, id_a) = bind("dtn://a/", ClaConfig::default());
        let (b, id_b) = bind("dtn://b/", ClaConfig::default());
        let (to_b, from_a) = tokio::join!(a.connect(b.local_addr().unwrap()), b.accept());
        let (to_b, from_a) = (to_b.unwrap(), from_a.unwrap().unwrap());
        assert_eq!(to_b.peer_node_id(), "dtn://b/");
        assert_eq!(to_b.peer_key(), id_b.public_key());
        assert_eq!(from_a.peer_node_id(), "dtn://a/");
        assert_eq!(from_a.peer_key(), id_a.public_key());
        assert_eq!(to_b.remote_addr(), b.local_addr().unwrap());
        assert!(to_b.is_dialer() && !from_a.is_dialer());
        assert!(to_b.rtt() > Duration::ZERO && from_a.rtt() > Duration::ZERO);
    })
    .await
}

#[tokio::test]
async fn dialer_lying_in_hello_is_refused() {
    within_5s(async {
        let id = Identity::generate().unwrap();
        let liar = QuicCla::bind_lying_about_node_id_for_tests(
            "127.0.0.1:0".parse().unwrap(),
            &id,
            "dtn://a/",
            "dtn://mallory/",
            ClaConfig::default(),
        )
        .unwrap();
        let (b, _) = bind("dtn://b/", ClaConfig::default());
        let (dial, acc) = tokio::join!(liar.connect(b.local_addr().unwrap()), b.accept());
        match acc.unwrap() {
            Err(ClaError::PeerIdMismatch { claimed, certified }) => {
                assert_eq!(claimed, "dtn://mallory/");
                assert_eq!(certified, "dtn://a/");
            }
            other => panic!("expected PeerIdMismatch, got {other:?}"),
        }
        match dial {
            Err(ClaError::ClosedByPeer { code, .. }) => {
                assert_eq!(code, u64::from(codes::PEER_ID_MISMATCH));
            }
            other => panic!("expected ClosedByPeer, got {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn acceptor_lying_in_hello_is_refused() {
    within_5s(async {
        let (a, _) = bind("dtn://a/", ClaConfig::default());
        let id = Identity::generate().unwrap();
        let liar = QuicCla::bind_lying_about_node_id_for_tests(
            "127.0.0.1:0".parse().unwrap(),
            &id,
            "dtn://b/",
            "dtn://mallory/",
            ClaConfig::default(),
        )
        .unwrap();
        let (dial, acc) = tokio::join!(a.connect(liar.local_addr().unwrap()), liar.accept());
        assert!(
            matches!(dial, Err(ClaError::PeerIdMismatch { .. })),
            "{dial:?}"
        );
        // The liar's side completed its own exchange, then sees the close code.
        let contact = acc.unwrap().unwrap();
        match contact.closed().await {
            ClaError::ClosedByPeer { code, .. } => {
                assert_eq!(code, u64::from(codes::PEER_ID_MISMATCH));
            }
            other => panic!("expected ClosedByPeer, got {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn twenty_concurrent_bundles_arrive_intact() {
    within_5s(async {
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), ClaConfig::default()).await;
        // 0 B, then 1 MiB, 512 KiB, ... down to 4 B.
        let sizes: Vec<usize> = (0..20usize)
            .map(|i| if i == 0 { 0 } else { (1 << 20) >> (i - 1) })
            .collect();
        let bundles: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| random_bytes(i as u64, n))
            .collect();
        let mut expected: Vec<[u8; 32]> =
            bundles.iter().map(|b| Sha256::digest(b).into()).collect();

        let mut senders = tokio::task::JoinSet::new();
        for b in bundles {
            let c = to_b.clone();
            senders.spawn(async move { c.send_bundle(b).await });
        }
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let incoming = from_a.accept_bundle_stream().await.unwrap();
            readers.spawn(incoming.read());
        }
        let mut got = Vec::new();
        while let Some(r) = readers.join_next().await {
            got.push(<[u8; 32]>::from(Sha256::digest(r.unwrap().unwrap())));
        }
        while let Some(r) = senders.join_next().await {
            r.unwrap().unwrap();
        }
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
    })
    .await
}

#[tokio::test]
async fn oversize_bundle_is_refused_and_contact_survives() {
    within_5s(async {
        let small = ClaConfig {
            max_bundle_bytes: 64 * 1024,
            ..ClaConfig::default()
        };
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), small).await;
        let big = random_bytes(1, 200 * 1024);
        let (sent, received) = tokio::join!(to_b.send_bundle(big), from_a.accept_bundle());
        assert!(
            matches!(received, Err(ClaError::TooLarge { limit: 65536 })),
            "{received:?}"
        );
        match sent {
            Err(ClaError::BundleRefused { code }) => {
                assert_eq!(code, u64::from(codes::BUNDLE_TOO_LARGE));
            }
            other => panic!("expected BundleRefused, got {other:?}"),
        }
        let normal = random_bytes(2, 1000);
        let (sent, received) =
            tokio::join!(to_b.send_bundle(normal.clone()), from_a.accept_bundle());
        sent.unwrap();
        assert_eq!(received.unwrap(), normal);
    })
    .await
}

/// A bundle sent in pieces (`encode_parts`) arrives as the same bytes, and
/// `read_hashed` gives the SHA-256 of exactly its payload span; bytes that
/// are no bundle come with no digest.
#[tokio::test]
async fn parts_arrive_whole_and_the_payload_is_hashed_on_arrival() {
    use spore::bundle::codec;
    use spore::bundle::{Bundle, CreationTimestamp, DtnTime};
    within_5s(async {
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), ClaConfig::default()).await;
        let payload = random_bytes(4, 600 * 1024);
        let b = Bundle::new(
            "dtn://a/".parse().unwrap(),
            "dtn://b/files".parse().unwrap(),
            CreationTimestamp {
                time: DtnTime(1),
                sequence: 2,
            },
            60_000,
            payload.clone(),
        );
        let parts = codec::encode_parts(&b);
        let incoming = async { from_a.accept_bundle_stream().await?.read_hashed().await };
        let (sent, received) = tokio::join!(to_b.send_bundle(parts), incoming);
        sent.unwrap();
        let (bytes, digest) = received.unwrap();
        assert_eq!(bytes, codec::encode(&b));
        let digest = digest.expect("a digest");
        let decoded = codec::decode_shared(&bytes, &Default::default()).unwrap();
        assert!(digest.covers(&bytes, decoded.payload().unwrap()));
        assert_eq!(digest.sha256, <[u8; 32]>::from(Sha256::digest(&payload)));
        // Placed for O_DIRECT writes without a copy (spec/manifest.md
        // §Progressive reassembly): the payload data starts on a 4096-byte
        // boundary in memory.
        let at = decoded.payload().unwrap().as_ptr() as usize;
        assert_eq!(at % spore::content::direct::ALIGN, 0, "payload at {at:#x}");

        let junk = random_bytes(5, 100 * 1024);
        let incoming = async { from_a.accept_bundle_stream().await?.read_hashed().await };
        let (sent, received) = tokio::join!(to_b.send_bundle(junk.clone()), incoming);
        sent.unwrap();
        assert_eq!(received.unwrap(), (junk, None));
    })
    .await
}

#[tokio::test]
async fn sender_refuses_bundle_over_its_own_limit() {
    within_5s(async {
        let tiny = ClaConfig {
            max_bundle_bytes: 1000,
            ..ClaConfig::default()
        };
        let (_a, _b, to_b, _from_a) = pair(tiny, ClaConfig::default()).await;
        let err = to_b.send_bundle(random_bytes(3, 1001)).await.unwrap_err();
        assert!(matches!(err, ClaError::TooLarge { limit: 1000 }), "{err:?}");
    })
    .await
}

#[tokio::test]
async fn random_bytes_are_carried_opaquely() {
    within_5s(async {
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), ClaConfig::default()).await;
        let junk = random_bytes(42, 4096);
        let (sent, received) = tokio::join!(to_b.send_bundle(junk.clone()), from_a.accept_bundle());
        sent.unwrap();
        assert_eq!(received.unwrap(), junk);
        // And the other direction, on streams opened by the acceptor.
        let junk = random_bytes(43, 17);
        let (sent, received) = tokio::join!(from_a.send_bundle(junk.clone()), to_b.accept_bundle());
        sent.unwrap();
        assert_eq!(received.unwrap(), junk);
    })
    .await
}

#[tokio::test]
async fn cancelled_send_resets_the_stream() {
    within_5s(async {
        // A small stream window makes the write block until the receiver reads, which
        // it does only after the send was cancelled.
        let narrow = ClaConfig {
            stream_window_bytes: 16 * 1024,
            ..ClaConfig::default()
        };
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), narrow).await;
        let send = to_b.send_bundle(random_bytes(5, 512 * 1024));
        let res = tokio::time::timeout(Duration::from_millis(100), send).await;
        assert!(res.is_err(), "send should still be blocked on flow control");
        let err = from_a.accept_bundle().await.unwrap_err();
        match err {
            ClaError::BundleReset { code } => assert_eq!(code, u64::from(codes::BUNDLE_CANCELLED)),
            other => panic!("expected BundleReset, got {other:?}"),
        }
        let ok = random_bytes(6, 100);
        let (sent, received) = tokio::join!(to_b.send_bundle(ok.clone()), from_a.accept_bundle());
        sent.unwrap();
        assert_eq!(received.unwrap(), ok);
    })
    .await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Offer {
    seq: u64,
    note: String,
    ids: Vec<Vec<u8>>,
}

#[tokio::test]
async fn control_messages_round_trip() {
    within_5s(async {
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), ClaConfig::default()).await;
        let offer = Offer {
            seq: 7,
            note: "bundles for you".into(),
            ids: vec![vec![1, 2, 3], vec![]],
        };
        to_b.send_control(&offer).await.unwrap();
        assert_eq!(from_a.recv_control::<Offer>().await.unwrap(), offer);
        let reply = Offer {
            seq: 8,
            note: String::new(),
            ids: vec![],
        };
        from_a.send_control(&reply).await.unwrap();
        assert_eq!(to_b.recv_control::<Offer>().await.unwrap(), reply);
        // A well-framed message of the wrong shape is BadFrame; the stream stays usable.
        to_b.send_control(&"not an offer").await.unwrap();
        to_b.send_control(&offer).await.unwrap();
        let err = from_a.recv_control::<Offer>().await.unwrap_err();
        assert!(matches!(err, ClaError::BadFrame(_)), "{err:?}");
        assert_eq!(from_a.recv_control::<Offer>().await.unwrap(), offer);
    })
    .await
}

#[tokio::test]
async fn oversize_control_frame_is_bad_frame() {
    within_5s(async {
        let small = ClaConfig {
            max_control_frame_bytes: 1024,
            ..ClaConfig::default()
        };
        let (_a, _b, to_b, from_a) = pair(ClaConfig::default(), small).await;
        let big = Offer {
            seq: 1,
            note: "x".repeat(4096),
            ids: vec![],
        };
        to_b.send_control(&big).await.unwrap();
        let err = from_a.recv_control::<Offer>().await.unwrap_err();
        assert!(matches!(err, ClaError::BadFrame(_)), "{err:?}");
        // The stream cannot be resynchronised: the receiver closed the connection.
        match to_b.closed().await {
            ClaError::ClosedByPeer { code, .. } => {
                assert_eq!(code, u64::from(codes::CONTROL_PROTOCOL));
            }
            other => panic!("expected ClosedByPeer, got {other:?}"),
        }
        // And the sender refuses locally what is over its own limit.
        let err = from_a.send_control(&big).await.unwrap_err();
        assert!(matches!(err, ClaError::TooLarge { limit: 1024 }), "{err:?}");
    })
    .await
}

#[tokio::test]
async fn close_is_seen_by_both_sides() {
    within_5s(async {
        let (_a, b, to_b, from_a) = pair(ClaConfig::default(), ClaConfig::default()).await;
        to_b.close("done for today");
        assert!(matches!(to_b.closed().await, ClaError::Closed));
        match from_a.closed().await {
            ClaError::ClosedByPeer { code, reason } => {
                assert_eq!(code, u64::from(codes::NORMAL));
                assert_eq!(reason, "done for today");
            }
            other => panic!("expected ClosedByPeer, got {other:?}"),
        }
        assert!(from_a.accept_bundle().await.is_err());
        b.close();
        assert!(b.accept().await.is_none());
    })
    .await
}

#[tokio::test]
async fn silent_peer_times_out() {
    within_5s(async {
        let quick = ClaConfig {
            handshake_timeout: Duration::from_millis(300),
            ..ClaConfig::default()
        };
        let (a, _) = bind("dtn://a/", quick);
        // A UDP socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = a.connect(silent.local_addr().unwrap()).await.unwrap_err();
        assert!(matches!(err, ClaError::HandshakeTimeout), "{err:?}");
        assert_eq!(err.kind(), "handshake_timeout");
    })
    .await
}

#[cfg(unix)]
#[test]
fn identity_file_is_private_and_stable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/node.key");
    let id = Identity::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = Identity::load_or_create(&path).unwrap();
    assert_eq!(again.public_key(), id.public_key());
    assert_eq!(again.fingerprint(), id.fingerprint());

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    match Identity::load_or_create(&path) {
        Err(IdentityError::InsecurePermissions { mode, .. }) => assert_eq!(mode, 0o644),
        other => panic!("expected InsecurePermissions, got {other:?}"),
    }

    let junk = dir.path().join("junk.key");
    std::fs::write(&junk, b"definitely not pkcs8").unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Identity::load_or_create(&junk),
        Err(IdentityError::BadKey { .. })
    ));
}

/// Refuses one key and records every peer it was asked about.
#[derive(Debug, Default)]
struct RefuseKey {
    refused: [u8; 32],
    seen: Mutex<Vec<PeerCertificate>>,
}

impl PeerTrust for RefuseKey {
    fn check(&self, peer: &PeerCertificate) -> Result<(), String> {
        self.seen.lock().unwrap().push(peer.clone());
        if peer.public_key == self.refused {
            Err("key on the deny list".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn trust_policy_sees_peers_and_can_refuse_them() {
    within_5s(async {
        let (bad, bad_id) = bind("dtn://bad/", ClaConfig::default());
        let (good, good_id) = bind("dtn://good/", ClaConfig::default());
        let policy = Arc::new(RefuseKey {
            refused: bad_id.public_key(),
            ..RefuseKey::default()
        });
        let b = QuicCla::bind_with_trust(
            "127.0.0.1:0".parse().unwrap(),
            &Identity::generate().unwrap(),
            "dtn://b/",
            ClaConfig::default(),
            policy.clone(),
        )
        .unwrap();
        let addr = b.local_addr().unwrap();
        let (dial, acc) = tokio::join!(bad.connect(addr), b.accept());
        assert!(matches!(dial, Err(ClaError::ConnectionLost(_))), "{dial:?}");
        assert!(acc.unwrap().is_err());
        let (dial, acc) = tokio::join!(good.connect(addr), b.accept());
        dial.unwrap();
        assert_eq!(acc.unwrap().unwrap().peer_key(), good_id.public_key());
        let seen = policy.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].node_id, "dtn://bad/");
        assert_eq!(seen[1].node_id, "dtn://good/");
        assert_eq!(seen[1].public_key, good_id.public_key());
    })
    .await
}

#[tokio::test]
async fn bind_rejects_uncertifiable_node_ids() {
    within_5s(async {
        let id = Identity::generate().unwrap();
        let addr = "127.0.0.1:0".parse().unwrap();
        let err = QuicCla::bind(addr, &id, "dtn://ñ/", ClaConfig::default()).unwrap_err();
        assert!(matches!(err, ClaError::Config(_)), "{err:?}");
        let long = format!("dtn://{}/", "n".repeat(2000));
        let err = QuicCla::bind(addr, &id, &long, ClaConfig::default()).unwrap_err();
        assert!(matches!(err, ClaError::Config(_)), "{err:?}");
    })
    .await
}
