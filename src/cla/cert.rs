//! Certificates derived from node identities, and the rustls verifiers that accept
//! them (see `spec/cl-quic.md`, "Identity and certificates").
//!
//! A spore certificate is an X.509 v3 certificate self-signed with the node's Ed25519
//! key (RFC 8410), carrying exactly one URI subject alternative name: the node ID
//! (e.g. `dtn://b/`). The verifiers accept any well-formed certificate of that shape
//! and then ask a pluggable [`PeerTrust`] policy; the default policy,
//! [`AcceptAnyPeer`], trusts every key (trust lists come later).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_SIG_ED25519;

use super::identity::Identity;

/// The authenticated facts taken from a peer's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The peer's raw 32-byte Ed25519 public key.
    pub public_key: [u8; 32],
    /// The peer's node ID: the certificate's single URI SAN.
    pub node_id: String,
}

/// A trust policy consulted for every peer certificate after its shape and
/// self-signature have been checked, on both the dialing and the accepting side.
///
/// Implementations must be cheap and must not block: they run inside the TLS handshake.
pub trait PeerTrust: Send + Sync + fmt::Debug {
    /// Returns `Ok(())` to accept the peer, or a reason to refuse it (the handshake then
    /// fails with a TLS `bad_certificate` alert).
    ///
    /// # Errors
    /// The reason the peer is not trusted.
    fn check(&self, peer: &PeerCertificate) -> Result<(), String>;
}

/// The default [`PeerTrust`]: accepts every well-formed self-signed Ed25519 certificate.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAnyPeer;

impl PeerTrust for AcceptAnyPeer {
    fn check(&self, _peer: &PeerCertificate) -> Result<(), String> {
        Ok(())
    }
}

/// Builds the DER certificate for `identity` with `node_id` as its URI SAN.
///
/// Validity runs from 1975 to 4096: DTN nodes often have no reliable clock, and the
/// identity is the key, not the certificate's lifetime.
///
/// # Errors
/// A description if `node_id` is not a valid IA5 (ASCII) string or signing fails.
pub fn make_certificate(
    identity: &Identity,
    node_id: &str,
) -> Result<CertificateDer<'static>, String> {
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(identity.pkcs8_der());
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(|e| e.to_string())?;
    let uri = rcgen::string::Ia5String::try_from(node_id.to_string())
        .map_err(|e| format!("node ID {node_id:?} cannot be a URI SAN: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("spore {}", identity.fingerprint()),
    );
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(cert.der().clone())
}

/// Parses and checks a peer certificate: DER without trailing bytes, Ed25519 subject
/// key and signature algorithm, issuer equal to subject, a valid self-signature, and
/// exactly one URI SAN.
///
/// Validity dates are deliberately not checked (see [`make_certificate`]).
///
/// # Errors
/// A description of the first check that failed.
pub fn parse_peer_certificate(der: &[u8]) -> Result<PeerCertificate, String> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not X.509 DER: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return Err("subject key is not Ed25519".into());
    }
    let public_key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| "Ed25519 key is not 32 bytes".to_string())?;
    if cert.signature_algorithm.algorithm != OID_SIG_ED25519
        || cert.tbs_certificate.signature.algorithm != OID_SIG_ED25519
    {
        return Err("certificate is not signed with Ed25519".into());
    }
    if cert.issuer().as_raw() != cert.subject().as_raw() {
        return Err("certificate is not self-issued".into());
    }
    let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
    verifier
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| "self-signature does not verify".to_string())?;
    let node_id = single_uri_san(&cert)?;
    Ok(PeerCertificate {
        public_key,
        node_id,
    })
}

fn single_uri_san(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<String, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?
        .ok_or_else(|| "no subjectAltName".to_string())?;
    let mut uris = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    });
    match (uris.next(), uris.next()) {
        (Some(uri), None) => Ok(uri.to_string()),
        (None, _) => Err("no URI subjectAltName".into()),
        (Some(_), Some(_)) => Err("more than one URI subjectAltName".into()),
    }
}

/// The reason a certificate was refused, carried inside a rustls error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

fn refuse(reason: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused(
        reason,
    )))))
}

/// rustls verifier (both server and client side) for spore certificates: shape and
/// self-signature checks of [`parse_peer_certificate`], then the [`PeerTrust`] policy;
/// TLS 1.3 handshake signatures are verified with the ring provider's algorithms.
#[derive(Debug)]
pub(crate) struct PeerVerifier {
    trust: Arc<dyn PeerTrust>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    pub(crate) fn new(trust: Arc<dyn PeerTrust>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        PeerVerifier { trust, algorithms }
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(refuse("unexpected intermediate certificates".into()));
        }
        let peer = parse_peer_certificate(end_entity).map_err(refuse)?;
        self.trust
            .check(&peer)
            .map_err(|r| refuse(format!("peer not trusted: {r}")))
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_certificate_parses_back() {
        let id = Identity::generate().unwrap();
        let der = make_certificate(&id, "dtn://b/").unwrap();
        let peer = parse_peer_certificate(&der).unwrap();
        assert_eq!(peer.public_key, id.public_key());
        assert_eq!(peer.node_id, "dtn://b/");
    }

    #[test]
    fn tampered_certificate_is_refused() {
        let id = Identity::generate().unwrap();
        let der = make_certificate(&id, "dtn://b/").unwrap();
        let mut bad = der.to_vec();
        // Flip a byte of the URI SAN inside the signed part.
        let pos = bad.windows(8).position(|w| w == b"dtn://b/").unwrap();
        bad[pos + 6] = b'c';
        let err = parse_peer_certificate(&bad).unwrap_err();
        assert!(err.contains("self-signature"), "{err}");
        assert!(parse_peer_certificate(&der[..der.len() - 3]).is_err());
        assert!(parse_peer_certificate(b"").is_err());
    }

    #[test]
    fn non_ascii_node_id_cannot_be_certified() {
        let id = Identity::generate().unwrap();
        assert!(make_certificate(&id, "dtn://ñ/").is_err());
    }

    #[test]
    fn non_ed25519_certificate_is_refused() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = parse_peer_certificate(cert.der()).unwrap_err();
        assert!(err.contains("Ed25519"), "{err}");
    }
}
