//! Convergence-layer adapters (RFC 9171 section 7): how bundles move between two
//! nodes over an underlying transport.
//!
//! - [`identity`]: the node's Ed25519 key, kept in a file.
//! - [`quic`]: the QUIC convergence layer (`spec/cl-quic.md`): mutual TLS 1.3 with
//!   certificates derived from identities, a control stream, one stream per bundle.
//!
//! The layer moves opaque bytes and control messages; it never decodes bundles.

mod cert;
mod error;
pub mod identity;
pub mod quic;

pub use cert::{
    AcceptAnyPeer, PeerCertificate, PeerTrust, make_certificate, parse_peer_certificate,
};
pub use error::{ClaError, codes};
