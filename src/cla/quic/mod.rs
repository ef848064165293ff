//! QUIC convergence-layer adapter (quinn over rustls, ring provider only).
//!
//! Protocol: `spec/cl-quic.md`. One [`QuicCla`] owns one UDP socket and both dials and
//! accepts. A successful dial or accept yields a [`Contact`]: an authenticated,
//! mutually-TLS'd QUIC connection to one peer whose node ID has been bound to its key,
//! carrying one control stream (CBOR frames) and one unidirectional stream per bundle.
//!
//! The layer is bundle-agnostic: bundles are opaque [`bytes::Bytes`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), spore::cla::ClaError> {
//! use spore::cla::{identity::Identity, quic::{ClaConfig, QuicCla}};
//! let id = Identity::generate().expect("randomness");
//! let cla = QuicCla::bind("127.0.0.1:0".parse().unwrap(), &id, "dtn://a/", ClaConfig::default())?;
//! let contact = cla.connect("127.0.0.1:4556".parse().unwrap()).await?;
//! contact.send_bundle(bytes::Bytes::from_static(b"encoded bundle")).await?;
//! # Ok(()) }
//! ```

mod contact;
mod control;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Endpoint, Incoming};
use tokio::time::{Instant, timeout_at};

pub use self::contact::{Contact, IncomingBundle};
pub use super::cert::{AcceptAnyPeer, PeerCertificate, PeerTrust};
use super::error::code;
pub use super::error::{ClaError, codes};
use super::identity::Identity;

/// The ALPN protocol identifier of this convergence layer.
pub const ALPN: &[u8] = b"spore/1";

/// Version number sent in the opening Hello.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest node ID accepted by [`QuicCla::bind`], in bytes (it must fit a Hello frame).
pub const MAX_NODE_ID_BYTES: usize = 1024;

/// Server name put in the TLS ClientHello. Peers are identified by certificate, not by
/// name, so this is a constant.
const SERVER_NAME: &str = "spore";

/// The exact quinn server and client configurations a [`QuicCla`] bound with these
/// arguments uses (TLS 1.3 mutual authentication, ALPN, transport parameters). For
/// tools and benchmarks that need a raw quinn endpoint comparable to the CLA.
///
/// # Errors
/// [`ClaError::Config`] as in [`QuicCla::bind`].
pub fn quinn_configs(
    identity: &Identity,
    node_id: &str,
    config: &ClaConfig,
    trust: Arc<dyn PeerTrust>,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), ClaError> {
    tls::quinn_configs(identity, node_id, config, trust)
}

/// Limits and timers of the QUIC convergence layer. All fields have defaults
/// ([`ClaConfig::default`]); every limit applies per connection unless stated.
#[derive(Clone, Debug)]
pub struct ClaConfig {
    /// A connection with no traffic for this long is closed (default 10 s). Must be
    /// below 2^62 ms.
    pub idle_timeout: Duration,
    /// Interval of QUIC PING frames keeping an idle connection alive (default 2 s);
    /// zero disables keep-alive.
    pub keep_alive: Duration,
    /// Largest bundle accepted from a peer or sent to one, in bytes (default 8 MiB).
    pub max_bundle_bytes: usize,
    /// How many bundle streams a peer may have open towards us at once (default 32).
    pub max_concurrent_bundle_streams: u32,
    /// Largest control frame payload (CBOR) accepted or sent, in bytes (default 4 MiB).
    pub max_control_frame_bytes: usize,
    /// Deadline for the QUIC/TLS handshake plus the Hello exchange (default 5 s).
    pub handshake_timeout: Duration,
    /// QUIC flow-control window of one stream, in bytes (default 8 MiB).
    pub stream_window_bytes: u32,
    /// QUIC flow-control window of the whole connection, in bytes (default 64 MiB).
    pub connection_window_bytes: u32,
    /// Most unacknowledged bytes in flight per connection, in bytes (default 64 MiB).
    pub send_window_bytes: u64,
}

impl Default for ClaConfig {
    fn default() -> Self {
        ClaConfig {
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            max_bundle_bytes: 8 << 20,
            max_concurrent_bundle_streams: 32,
            max_control_frame_bytes: 4 << 20,
            handshake_timeout: Duration::from_secs(5),
            stream_window_bytes: 8 << 20,
            connection_window_bytes: 64 << 20,
            send_window_bytes: 64 << 20,
        }
    }
}

/// A bound QUIC convergence-layer endpoint: one UDP socket that dials and accepts.
///
/// Cheap to clone (an `Arc`); all clones share the socket.
#[derive(Clone, Debug)]
pub struct QuicCla {
    inner: Arc<ClaInner>,
}

#[derive(Debug)]
struct ClaInner {
    endpoint: Endpoint,
    config: ClaConfig,
    /// Node ID announced in our Hello (equals the certificate's in honest nodes).
    hello_node_id: String,
}

impl QuicCla {
    /// Binds a UDP socket on `listen` and prepares TLS from `identity`, certifying
    /// `node_id` (e.g. `"dtn://a/"`, ASCII) as this node's ID. Peers are accepted by
    /// the default trust policy [`AcceptAnyPeer`].
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ClaError::Io`] if the socket cannot be bound (or no tokio runtime is running),
    /// [`ClaError::Config`] if `node_id` cannot be certified (not ASCII, or longer than
    /// [`MAX_NODE_ID_BYTES`]) or the config is invalid.
    pub fn bind(
        listen: SocketAddr,
        identity: &Identity,
        node_id: &str,
        config: ClaConfig,
    ) -> Result<QuicCla, ClaError> {
        Self::bind_with_trust(listen, identity, node_id, config, Arc::new(AcceptAnyPeer))
    }

    /// As [`QuicCla::bind`], with a custom [`PeerTrust`] policy consulted for every
    /// peer certificate on both dial and accept.
    ///
    /// # Errors
    /// As [`QuicCla::bind`].
    pub fn bind_with_trust(
        listen: SocketAddr,
        identity: &Identity,
        node_id: &str,
        config: ClaConfig,
        trust: Arc<dyn PeerTrust>,
    ) -> Result<QuicCla, ClaError> {
        Self::bind_inner(listen, identity, node_id, node_id, config, trust)
    }

    /// TEST ONLY: binds a node whose certificate says `certified_node_id` but whose
    /// Hello claims `claimed_node_id`, to exercise the node-ID binding check. Never use
    /// this in a node: honest peers refuse it with `PEER_ID_MISMATCH`.
    ///
    /// # Errors
    /// As [`QuicCla::bind`].
    #[doc(hidden)]
    pub fn bind_lying_about_node_id_for_tests(
        listen: SocketAddr,
        identity: &Identity,
        certified_node_id: &str,
        claimed_node_id: &str,
        config: ClaConfig,
    ) -> Result<QuicCla, ClaError> {
        let trust = Arc::new(AcceptAnyPeer);
        Self::bind_inner(
            listen,
            identity,
            certified_node_id,
            claimed_node_id,
            config,
            trust,
        )
    }

    fn bind_inner(
        listen: SocketAddr,
        identity: &Identity,
        cert_node_id: &str,
        hello_node_id: &str,
        config: ClaConfig,
        trust: Arc<dyn PeerTrust>,
    ) -> Result<QuicCla, ClaError> {
        if cert_node_id.len().max(hello_node_id.len()) > MAX_NODE_ID_BYTES {
            return Err(ClaError::Config(format!(
                "node ID longer than {MAX_NODE_ID_BYTES} bytes"
            )));
        }
        let (server, client) = tls::quinn_configs(identity, cert_node_id, &config, trust)?;
        let mut endpoint = Endpoint::server(server, listen)?;
        endpoint.set_default_client_config(client);
        Ok(QuicCla {
            inner: Arc::new(ClaInner {
                endpoint,
                config,
                hello_node_id: hello_node_id.to_string(),
            }),
        })
    }

    /// The local UDP address actually bound (useful after binding port 0).
    ///
    /// # Errors
    /// [`ClaError::Io`] if the socket address cannot be read.
    pub fn local_addr(&self) -> Result<SocketAddr, ClaError> {
        Ok(self.inner.endpoint.local_addr()?)
    }

    /// The configuration this endpoint was bound with.
    pub fn config(&self) -> &ClaConfig {
        &self.inner.config
    }

    /// Dials `addr`, completes the QUIC/TLS 1.3 handshake and the Hello exchange, all
    /// within `handshake_timeout`.
    ///
    /// Cancel safety: dropping the future abandons the attempt; the half-open
    /// connection is closed by quinn.
    ///
    /// # Errors
    /// [`ClaError::Connect`] if dialing cannot start, [`ClaError::HandshakeTimeout`],
    /// [`ClaError::ConnectionLost`] (e.g. TLS refused), [`ClaError::PeerIdMismatch`],
    /// [`ClaError::UnsupportedVersion`], [`ClaError::BadFrame`],
    /// [`ClaError::ClosedByPeer`] (e.g. the peer refused our Hello).
    pub async fn connect(&self, addr: SocketAddr) -> Result<Contact, ClaError> {
        let deadline = Instant::now() + self.inner.config.handshake_timeout;
        let connecting = self
            .inner
            .endpoint
            .connect(addr, SERVER_NAME)
            .map_err(|e| ClaError::Connect(e.to_string()))?;
        let conn = timeout_at(deadline, connecting)
            .await
            .map_err(|_| ClaError::HandshakeTimeout)??;
        self.open_contact(conn, deadline, true).await
    }

    /// Waits for the next incoming connection attempt, without handshaking it.
    ///
    /// Returns `None` once the endpoint is closed. Lets the caller refuse early (e.g.
    /// rate limiting) or run handshakes concurrently with
    /// [`IncomingContact::establish`].
    ///
    /// Cancel safety: cancel-safe (no connection attempt is lost).
    pub async fn accept_incoming(&self) -> Option<IncomingContact> {
        let incoming = self.inner.endpoint.accept().await?;
        Some(IncomingContact {
            incoming,
            cla: self.clone(),
        })
    }

    /// Waits for the next incoming connection and establishes it (handshake plus Hello
    /// exchange, bounded by `handshake_timeout`).
    ///
    /// Returns `None` once the endpoint is closed. Handshakes are serialised: a slow
    /// peer delays the next accept by up to `handshake_timeout`; use
    /// [`QuicCla::accept_incoming`] to establish concurrently.
    ///
    /// Cancel safety: if cancelled during the handshake, that attempt is dropped.
    ///
    /// # Errors
    /// Inside `Some`: as [`IncomingContact::establish`].
    pub async fn accept(&self) -> Option<Result<Contact, ClaError>> {
        let incoming = self.accept_incoming().await?;
        Some(incoming.establish().await)
    }

    /// Closes the endpoint: every connection is closed with code [`codes::NORMAL`] and
    /// pending or future [`QuicCla::accept`] calls return `None`.
    pub fn close(&self) {
        self.inner
            .endpoint
            .close(code(codes::NORMAL), b"endpoint closed");
    }

    async fn open_contact(
        &self,
        conn: quinn::Connection,
        deadline: Instant,
        dialer: bool,
    ) -> Result<Contact, ClaError> {
        let config = &self.inner.config;
        let hello = &self.inner.hello_node_id;
        let exchange = contact::open(conn.clone(), hello, config, dialer);
        match timeout_at(deadline, exchange).await {
            Ok(Ok(contact)) => Ok(contact),
            Ok(Err(e)) => {
                let close_code = match e {
                    ClaError::PeerIdMismatch { .. } => codes::PEER_ID_MISMATCH,
                    _ => codes::HANDSHAKE_FAILED,
                };
                conn.close(code(close_code), e.kind().as_bytes());
                Err(e)
            }
            Err(_) => {
                conn.close(code(codes::HANDSHAKE_FAILED), b"handshake_timeout");
                Err(ClaError::HandshakeTimeout)
            }
        }
    }
}

/// An incoming connection attempt not yet handshaken (see [`QuicCla::accept_incoming`]).
#[derive(Debug)]
pub struct IncomingContact {
    incoming: Incoming,
    cla: QuicCla,
}

impl IncomingContact {
    /// The UDP address the attempt comes from (not yet authenticated).
    pub fn remote_addr(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Refuses the attempt without handshaking (QUIC `CONNECTION_REFUSED`).
    pub fn refuse(self) {
        self.incoming.refuse();
    }

    /// Completes the QUIC/TLS handshake and the Hello exchange within
    /// `handshake_timeout`.
    ///
    /// Cancel safety: dropping the future abandons the attempt.
    ///
    /// # Errors
    /// [`ClaError::HandshakeTimeout`], [`ClaError::ConnectionLost`] (TLS failure),
    /// [`ClaError::PeerIdMismatch`] (the connection is closed with
    /// [`codes::PEER_ID_MISMATCH`]), [`ClaError::UnsupportedVersion`],
    /// [`ClaError::BadFrame`], [`ClaError::BadCertificate`].
    pub async fn establish(self) -> Result<Contact, ClaError> {
        let deadline = Instant::now() + self.cla.inner.config.handshake_timeout;
        let connecting = self.incoming.accept()?;
        let conn = timeout_at(deadline, connecting)
            .await
            .map_err(|_| ClaError::HandshakeTimeout)??;
        self.cla.open_contact(conn, deadline, false).await
    }
}
