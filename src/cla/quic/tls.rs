//! rustls (TLS 1.3 only, ring provider) and quinn configuration of a [`super::QuicCla`].

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{ALPN, ClaConfig};
use crate::cla::cert::{PeerTrust, PeerVerifier, make_certificate};
use crate::cla::error::ClaError;
use crate::cla::identity::Identity;

fn config_err(what: &str, e: impl std::fmt::Display) -> ClaError {
    ClaError::Config(format!("{what}: {e}"))
}

/// Builds the quinn server and client configurations: mutual TLS 1.3 with the node's
/// self-signed certificate, the spore verifier, ALPN `spore/1`, no session resumption
/// (every connection runs the full handshake, so the trust policy always runs).
pub(super) fn quinn_configs(
    identity: &Identity,
    node_id: &str,
    config: &ClaConfig,
    trust: Arc<dyn PeerTrust>,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), ClaError> {
    let cert = make_certificate(identity, node_id).map_err(ClaError::Config)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.pkcs8_der().to_vec()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PeerVerifier::new(
        trust,
        provider.signature_verification_algorithms,
    ));

    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_err("tls versions", e))?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(vec![cert.clone()], key.clone_key())
        .map_err(|e| config_err("server certificate", e))?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;

    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_err("tls versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![cert], key)
        .map_err(|e| config_err("client certificate", e))?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    client.resumption = rustls::client::Resumption::disabled();

    let transport = Arc::new(transport_config(config)?);
    let server_crypto =
        QuicServerConfig::try_from(server).map_err(|e| config_err("quic server", e))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
    server_config.transport_config(transport.clone());

    let client_crypto =
        QuicClientConfig::try_from(client).map_err(|e| config_err("quic client", e))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
    client_config.transport_config(transport);
    Ok((server_config, client_config))
}

/// QUIC transport parameters from [`ClaConfig`]: idle timeout, keep-alive, stream
/// limits (one bidirectional control stream, `max_concurrent_bundle_streams`
/// unidirectional ones) and flow-control windows sized for bulk transfer.
pub(super) fn transport_config(config: &ClaConfig) -> Result<TransportConfig, ClaError> {
    let mut t = TransportConfig::default();
    let idle =
        IdleTimeout::try_from(config.idle_timeout).map_err(|e| config_err("idle_timeout", e))?;
    t.max_idle_timeout(Some(idle));
    t.keep_alive_interval((!config.keep_alive.is_zero()).then_some(config.keep_alive));
    t.max_concurrent_uni_streams(VarInt::from_u32(config.max_concurrent_bundle_streams));
    t.max_concurrent_bidi_streams(VarInt::from_u32(1));
    t.stream_receive_window(VarInt::from_u32(config.stream_window_bytes));
    t.receive_window(VarInt::from_u32(config.connection_window_bytes));
    t.send_window(config.send_window_bytes);
    t.datagram_receive_buffer_size(None);
    Ok(t)
}
