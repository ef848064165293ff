//! Error type of the QUIC convergence layer and the application error codes it puts
//! on the wire (see `spec/cl-quic.md`, "Error codes").

use quinn::{ConnectionError, VarInt};

/// QUIC application error codes used by spore in `CONNECTION_CLOSE`, `STOP_SENDING`
/// and `RESET_STREAM` frames (RFC 9000 section 20.2). Values are stable wire protocol.
pub mod codes {
    /// Connection: normal close (`Contact::close`, endpoint shut down).
    pub const NORMAL: u32 = 0x00;
    /// Connection: the peer's Hello node ID differs from the URI SAN of its certificate.
    pub const PEER_ID_MISMATCH: u32 = 0x01;
    /// Connection: the opening exchange failed (bad Hello, unsupported version, timeout).
    pub const HANDSHAKE_FAILED: u32 = 0x02;
    /// Connection: a control frame was longer than the receiver's limit, or the control
    /// stream ended or was reset.
    pub const CONTROL_PROTOCOL: u32 = 0x03;
    /// Stream (`STOP_SENDING`): the bundle exceeds the receiver's `max_bundle_bytes`.
    pub const BUNDLE_TOO_LARGE: u32 = 0x10;
    /// Stream (`RESET_STREAM`): the sender abandoned the bundle (its send was cancelled);
    /// the receiver must discard what it got.
    pub const BUNDLE_CANCELLED: u32 = 0x11;
    /// Stream (`STOP_SENDING`): the receiver abandoned the bundle (its read was cancelled).
    pub const BUNDLE_ABANDONED: u32 = 0x12;
}

/// Builds a [`VarInt`] from a code of [`codes`] (all fit in 32 bits).
pub(crate) fn code(value: u32) -> VarInt {
    VarInt::from_u32(value)
}

/// Errors of the QUIC convergence layer: binding, dialing, accepting, and every
/// operation on a [`Contact`](super::quic::Contact).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaError {
    /// Binding the UDP socket or another local I/O operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS or QUIC configuration could not be built (e.g. a node ID that is not
    /// ASCII cannot be put in a certificate).
    #[error("configuration: {0}")]
    Config(String),
    /// Dialing could not start (quinn `ConnectError`: endpoint stopping, bad address…).
    #[error("connect: {0}")]
    Connect(String),
    /// The connection was lost: TLS handshake failure, idle timeout, transport error, or
    /// the peer closed it without an application code.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The peer closed the connection with an application error code (see [`codes`]).
    #[error("closed by peer with code {code:#x}: {reason}")]
    ClosedByPeer {
        /// The application error code.
        code: u64,
        /// The peer's reason phrase (lossy UTF-8).
        reason: String,
    },
    /// The QUIC handshake plus Hello exchange did not finish within `handshake_timeout`.
    #[error("opening exchange timed out")]
    HandshakeTimeout,
    /// The peer's Hello claims a node ID that differs from its certificate's URI SAN.
    #[error("peer claims node ID {claimed:?} but its certificate says {certified:?}")]
    PeerIdMismatch {
        /// Node ID from the peer's Hello.
        claimed: String,
        /// Node ID (URI SAN) from the peer's certificate.
        certified: String,
    },
    /// The peer's Hello carries a protocol version this node does not speak.
    #[error("unsupported CL protocol version {version}")]
    UnsupportedVersion {
        /// The version the peer announced.
        version: u32,
    },
    /// The peer's certificate is not a well-formed self-signed Ed25519 certificate with a
    /// URI SAN, or the trust policy refused it.
    #[error("bad peer certificate: {0}")]
    BadCertificate(String),
    /// Something is larger than the local limit: a received bundle over
    /// `max_bundle_bytes` (the stream was stopped with `BUNDLE_TOO_LARGE`) or a control
    /// message to send over `max_control_frame_bytes`.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// The peer refused a bundle this node was sending (it sent `STOP_SENDING`; code
    /// [`codes::BUNDLE_TOO_LARGE`] means it was over the peer's limit).
    #[error("peer refused the bundle with code {code:#x}")]
    BundleRefused {
        /// The peer's `STOP_SENDING` error code.
        code: u64,
    },
    /// The peer abandoned a bundle it was sending (`RESET_STREAM`); nothing was delivered.
    #[error("peer reset the bundle stream with code {code:#x}")]
    BundleReset {
        /// The peer's `RESET_STREAM` error code.
        code: u64,
    },
    /// A control frame could not be decoded (too long, truncated, or not the expected
    /// CBOR shape).
    #[error("bad control frame: {0}")]
    BadFrame(String),
    /// This side closed the contact or the endpoint.
    #[error("closed locally")]
    Closed,
}

impl ClaError {
    /// A short stable name of the variant, for logs and metrics (e.g. `"too_large"`).
    pub fn kind(&self) -> &'static str {
        match self {
            ClaError::Io(_) => "io",
            ClaError::Config(_) => "config",
            ClaError::Connect(_) => "connect",
            ClaError::ConnectionLost(_) => "connection_lost",
            ClaError::ClosedByPeer { .. } => "closed_by_peer",
            ClaError::HandshakeTimeout => "handshake_timeout",
            ClaError::PeerIdMismatch { .. } => "peer_id_mismatch",
            ClaError::UnsupportedVersion { .. } => "unsupported_version",
            ClaError::BadCertificate(_) => "bad_certificate",
            ClaError::TooLarge { .. } => "too_large",
            ClaError::BundleRefused { .. } => "bundle_refused",
            ClaError::BundleReset { .. } => "bundle_reset",
            ClaError::BadFrame(_) => "bad_frame",
            ClaError::Closed => "closed",
        }
    }
}

impl From<ConnectionError> for ClaError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::LocallyClosed => ClaError::Closed,
            ConnectionError::ApplicationClosed(close) => ClaError::ClosedByPeer {
                code: close.error_code.into_inner(),
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
            },
            other => ClaError::ConnectionLost(other.to_string()),
        }
    }
}

impl From<quinn::WriteError> for ClaError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::Stopped(code) => ClaError::BundleRefused {
                code: code.into_inner(),
            },
            quinn::WriteError::ConnectionLost(c) => c.into(),
            other => ClaError::ConnectionLost(other.to_string()),
        }
    }
}

impl From<quinn::ReadError> for ClaError {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::Reset(code) => ClaError::BundleReset {
                code: code.into_inner(),
            },
            quinn::ReadError::ConnectionLost(c) => c.into(),
            other => ClaError::ConnectionLost(other.to_string()),
        }
    }
}

impl From<quinn::StoppedError> for ClaError {
    fn from(e: quinn::StoppedError) -> Self {
        match e {
            quinn::StoppedError::ConnectionLost(c) => c.into(),
            other => ClaError::ConnectionLost(other.to_string()),
        }
    }
}
