//! A raw spore/1 peer (plain quinn with the CL's TLS setup) for tests that
//! must send what an honest `Contact` never would: spec/cl-quic.md framing
//! (a 4-byte big-endian length, then CBOR) on the control stream.

use spore::cla::identity::Identity;
use spore::cla::quic::{AcceptAnyPeer, ClaConfig, quinn_configs};
use std::sync::Arc;

/// An open session: the connection and its control stream, Hello sent.
/// Keep `rx` and `ep` alive while the session is used: dropping the
/// receiving half stops the node's writes, and the endpoint carries the
/// connection.
pub struct RawSession {
    pub conn: quinn::Connection,
    pub tx: quinn::SendStream,
    pub rx: quinn::RecvStream,
    /// Kept so the endpoint outlives the connection.
    pub ep: quinn::Endpoint,
}

/// Connects to `addr` with a fresh identity claiming node ID `me`, opens the
/// control stream and sends the Hello (the node's Hello is not read).
pub async fn hello(addr: std::net::SocketAddr, me: &str) -> RawSession {
    #[derive(serde::Serialize)]
    struct Hello {
        version: u32,
        node_id: String,
    }
    let id = Identity::generate().unwrap();
    let (_, client) =
        quinn_configs(&id, me, &ClaConfig::default(), Arc::new(AcceptAnyPeer)).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(client);
    let conn = ep.connect(addr, "spore").unwrap().await.unwrap();
    let (mut tx, rx) = conn.open_bi().await.unwrap();
    let hello = Hello {
        version: 1,
        node_id: me.into(),
    };
    tx.write_all(&frame(&hello)).await.unwrap();
    RawSession { conn, tx, rx, ep }
}

/// One control frame: length prefix and CBOR body.
pub fn frame<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let body = serde_cbor::to_vec(msg).unwrap();
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend(body);
    f
}

/// Reads one control frame's body.
pub async fn read_frame(rx: &mut quinn::RecvStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    rx.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    rx.read_exact(&mut body).await.unwrap();
    body
}
