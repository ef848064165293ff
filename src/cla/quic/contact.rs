//! An established contact: one authenticated QUIC connection to one peer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream};
use rustls::pki_types::CertificateDer;
use tokio::sync::Mutex;

use super::control::{
    ControlReader, ControlWriter, Hello, MAX_HELLO_BYTES, ReadFrameError, decode_payload,
    encode_frame,
};
use super::{ClaConfig, PROTOCOL_VERSION};
use crate::bundle::codec::EncodedBundle;
use crate::cla::cert::{PeerCertificate, parse_peer_certificate};
use crate::cla::error::{ClaError, code, codes};
use crate::content::direct::ALIGN;
use crate::content::{PayloadDigest, PayloadHasher};

/// A live, authenticated link to one peer (RFC 9171 section 7 "convergence layer"
/// contact), carrying bundles and control messages.
///
/// Cheap to clone (an `Arc`): clones share the connection, so one task may send
/// bundles while others accept them or exchange control messages. The connection
/// closes when [`Contact::close`] is called, the peer closes, it idles out, or the
/// last clone is dropped.
#[derive(Clone, Debug)]
pub struct Contact {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    peer: PeerCertificate,
    dialer: bool,
    max_bundle_bytes: usize,
    max_control_frame_bytes: usize,
    writer: Mutex<ControlWriter>,
    reader: Mutex<ControlReader>,
}

/// Runs the opening exchange on a freshly handshaken connection (the caller bounds it
/// in time and closes the connection on error).
pub(super) async fn open(
    conn: Connection,
    hello_node_id: &str,
    config: &ClaConfig,
    dialer: bool,
) -> Result<Contact, ClaError> {
    let peer = certified_peer(&conn)?;
    let ours = Hello {
        version: PROTOCOL_VERSION,
        node_id: hello_node_id.to_string(),
    };
    let frame = encode_frame(&ours, MAX_HELLO_BYTES)?;
    let (mut writer, mut reader) = if dialer {
        let (send, recv) = conn.open_bi().await?;
        let mut writer = ControlWriter::new(send);
        writer.send_frame(frame.clone()).await?;
        (writer, ControlReader::new(recv))
    } else {
        let (send, recv) = conn.accept_bi().await?;
        (ControlWriter::new(send), ControlReader::new(recv))
    };
    let payload = reader
        .recv_frame(MAX_HELLO_BYTES)
        .await
        .map_err(|e| frame_error(e, "hello"))?;
    let theirs: Hello = decode_payload(&payload)?;
    check_hello(&theirs, &peer)?;
    if !dialer {
        writer.send_frame(frame).await?;
    }
    Ok(Contact {
        inner: Arc::new(Inner {
            conn,
            peer,
            dialer,
            max_bundle_bytes: config.max_bundle_bytes,
            max_control_frame_bytes: config.max_control_frame_bytes,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        }),
    })
}

fn certified_peer(conn: &Connection) -> Result<PeerCertificate, ClaError> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| ClaError::BadCertificate("peer presented no certificate".into()))?;
    let first = certs
        .first()
        .ok_or_else(|| ClaError::BadCertificate("empty certificate chain".into()))?;
    parse_peer_certificate(first).map_err(ClaError::BadCertificate)
}

fn check_hello(hello: &Hello, peer: &PeerCertificate) -> Result<(), ClaError> {
    if hello.version != PROTOCOL_VERSION {
        return Err(ClaError::UnsupportedVersion {
            version: hello.version,
        });
    }
    if hello.node_id != peer.node_id {
        return Err(ClaError::PeerIdMismatch {
            claimed: hello.node_id.clone(),
            certified: peer.node_id.clone(),
        });
    }
    Ok(())
}

fn frame_error(e: ReadFrameError, what: &str) -> ClaError {
    match e {
        ReadFrameError::TooLong { len, limit } => {
            ClaError::BadFrame(format!("{what} frame of {len} bytes exceeds {limit}"))
        }
        ReadFrameError::Ended { mid_frame: true } => {
            ClaError::BadFrame(format!("control stream ended inside a {what} frame"))
        }
        ReadFrameError::Ended { mid_frame: false } => ClaError::ConnectionLost(format!(
            "peer finished the control stream (expecting a {what} frame)"
        )),
        ReadFrameError::Stream(e) => e,
    }
}

impl Contact {
    /// The peer's node ID, authenticated: the URI SAN of its certificate, which its
    /// Hello confirmed.
    pub fn peer_node_id(&self) -> &str {
        &self.inner.peer.node_id
    }

    /// The peer's raw 32-byte Ed25519 public key.
    pub fn peer_key(&self) -> [u8; 32] {
        self.inner.peer.public_key
    }

    /// The peer's current UDP address (may change if the peer migrates).
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.conn.remote_address()
    }

    /// Smoothed round-trip time measured by QUIC (RFC 9002 section 5.3).
    pub fn rtt(&self) -> Duration {
        self.inner.conn.rtt()
    }

    /// An identifier of this connection, unique among live connections of the process.
    pub fn stable_id(&self) -> usize {
        self.inner.conn.stable_id()
    }

    /// Whether this node dialed the contact (`false`: it accepted it). Lets two nodes
    /// that dialed each other at once agree on which duplicate to keep.
    pub fn is_dialer(&self) -> bool {
        self.inner.dialer
    }

    /// Sends one bundle on a new unidirectional stream (one stream per bundle, as in
    /// draft-ek-dtn-qubicle), finishes it, and waits until the peer has acknowledged
    /// receipt of every byte at the QUIC level (not that it processed or stored it).
    ///
    /// At most `max_concurrent_bundle_streams` of the *peer's* config run at once; more
    /// calls wait for a stream slot.
    ///
    /// Cancel safety: if the future is dropped before it resolves, the stream is reset
    /// with [`codes::BUNDLE_CANCELLED`] and the peer discards the partial bundle; if all
    /// bytes had already reached the peer it may still deliver it, so a cancelled send
    /// may or may not have delivered the bundle.
    ///
    /// # Errors
    /// [`ClaError::TooLarge`] if `data` exceeds the local `max_bundle_bytes` (nothing is
    /// sent), [`ClaError::BundleRefused`] if the peer stopped the stream (code
    /// [`codes::BUNDLE_TOO_LARGE`] when over its limit), or a connection error
    /// ([`ClaError::ConnectionLost`], [`ClaError::ClosedByPeer`], [`ClaError::Closed`]).
    pub async fn send_bundle(&self, data: impl Into<EncodedBundle>) -> Result<(), ClaError> {
        let data = data.into();
        if data.len() > self.inner.max_bundle_bytes {
            return Err(ClaError::TooLarge {
                limit: self.inner.max_bundle_bytes,
            });
        }
        let mut guard = ResetOnDrop {
            stream: self.inner.conn.open_uni().await?,
            armed: true,
        };
        guard
            .stream
            .write_all_chunks(&mut data.into_parts())
            .await?;
        guard
            .stream
            .finish()
            .map_err(|e| ClaError::ConnectionLost(e.to_string()))?;
        let outcome = guard.stream.stopped().await;
        guard.armed = false;
        match outcome? {
            None => Ok(()),
            Some(code) => Err(ClaError::BundleRefused {
                code: code.into_inner(),
            }),
        }
    }

    /// Waits for the peer's next bundle stream without reading it; see
    /// [`IncomingBundle::read`]. Lets a driver accept in one task and read many
    /// bundles concurrently.
    ///
    /// Cancel safety: cancel-safe.
    ///
    /// # Errors
    /// A connection error ([`ClaError::ConnectionLost`], [`ClaError::ClosedByPeer`],
    /// [`ClaError::Closed`]).
    pub async fn accept_bundle_stream(&self) -> Result<IncomingBundle, ClaError> {
        let stream = self.inner.conn.accept_uni().await?;
        Ok(IncomingBundle {
            stream: Some(stream),
            limit_bytes: self.inner.max_bundle_bytes,
        })
    }

    /// Receives the peer's next bundle: accepts the next unidirectional stream and
    /// reads it to its end, at most `max_bundle_bytes`.
    ///
    /// Cancel safety: not cancel-safe once a stream was accepted: that bundle is
    /// abandoned (stopped with [`codes::BUNDLE_ABANDONED`]).
    ///
    /// # Errors
    /// As [`IncomingBundle::read`] and [`Contact::accept_bundle_stream`]. A bundle
    /// error leaves the contact usable.
    pub async fn accept_bundle(&self) -> Result<Bytes, ClaError> {
        self.accept_bundle_stream().await?.read().await
    }

    /// Sends one control message as a frame (4-byte big-endian length + CBOR).
    ///
    /// Cancel safety: the control stream stays well framed; a cancelled message may
    /// still be delivered (its tail is written by the next call).
    ///
    /// # Errors
    /// [`ClaError::TooLarge`] if the CBOR exceeds `max_control_frame_bytes` (nothing is
    /// sent), [`ClaError::BadFrame`] if `msg` cannot be serialised, or a connection
    /// error.
    pub async fn send_control<T: serde::Serialize>(&self, msg: &T) -> Result<(), ClaError> {
        let frame = encode_frame(msg, self.inner.max_control_frame_bytes)?;
        self.inner.writer.lock().await.send_frame(frame).await
    }

    /// Receives the next control message.
    ///
    /// Cancel safety: cancel-safe; a partly received frame stays buffered.
    ///
    /// # Errors
    /// [`ClaError::BadFrame`] if the frame is not a CBOR `T` (the frame is consumed and
    /// the stream stays usable), or if it announces more than `max_control_frame_bytes`
    /// or is truncated (the connection is then closed with
    /// [`codes::CONTROL_PROTOCOL`], as the stream cannot be resynchronised);
    /// a connection error otherwise.
    pub async fn recv_control<T: serde::de::DeserializeOwned>(&self) -> Result<T, ClaError> {
        let limit = self.inner.max_control_frame_bytes;
        let result = self.inner.reader.lock().await.recv_frame(limit).await;
        match result {
            Ok(payload) => decode_payload(&payload),
            Err(ReadFrameError::Stream(e)) => Err(e),
            Err(e) => {
                let err = frame_error(e, "control");
                self.inner
                    .conn
                    .close(code(codes::CONTROL_PROTOCOL), err.kind().as_bytes());
                Err(err)
            }
        }
    }

    /// Resolves when the connection is gone, with the reason
    /// ([`ClaError::Closed`] if this side closed it).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn closed(&self) -> ClaError {
        self.inner.conn.closed().await.into()
    }

    /// Closes the connection now with code [`codes::NORMAL`] and `reason` (truncated
    /// to fit a packet). Bundles in flight are abandoned.
    pub fn close(&self, reason: &str) {
        let bytes = reason.as_bytes();
        let cut = bytes.len().min(256);
        self.inner.conn.close(code(codes::NORMAL), &bytes[..cut]);
    }
}

/// A bundle stream accepted from the peer and not read yet
/// (see [`Contact::accept_bundle_stream`]).
#[derive(Debug)]
pub struct IncomingBundle {
    /// `None` only after `read` completed (then nothing is stopped on drop).
    stream: Option<RecvStream>,
    limit_bytes: usize,
}

impl IncomingBundle {
    /// Reads the whole bundle, at most `max_bundle_bytes`.
    ///
    /// There is no per-bundle deadline (a peer may trickle a stream while keep-alives
    /// hold the connection open): wrap the call in a timeout if that matters.
    ///
    /// Cancel safety: not cancel-safe: dropping the future (or an unread
    /// `IncomingBundle`) stops the stream with [`codes::BUNDLE_ABANDONED`].
    ///
    /// # Errors
    /// [`ClaError::TooLarge`] if the bundle exceeds `max_bundle_bytes` (the stream is
    /// stopped with [`codes::BUNDLE_TOO_LARGE`], so the sender's `send_bundle` fails),
    /// [`ClaError::BundleReset`] if the sender abandoned it, or a connection error.
    pub async fn read(self) -> Result<Bytes, ClaError> {
        Ok(self.read_inner(false).await?.0)
    }

    /// Like [`IncomingBundle::read`], and hashes the payload while the
    /// bytes arrive ([`PayloadHasher`]): the digest, if the head could be
    /// read, is the SHA-256 of the span of the returned buffer it names.
    ///
    /// # Errors
    /// As [`IncomingBundle::read`].
    pub async fn read_hashed(self) -> Result<(Bytes, Option<PayloadDigest>), ClaError> {
        self.read_inner(true).await
    }

    async fn read_inner(mut self, hash: bool) -> Result<(Bytes, Option<PayloadDigest>), ClaError> {
        let limit = self.limit_bytes;
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClaError::Closed);
        };
        match read_ordered(stream, limit, hash).await {
            Ok(data) => {
                self.stream = None;
                Ok(data)
            }
            Err(quinn::ReadToEndError::TooLong) => {
                let _ = stream.stop(code(codes::BUNDLE_TOO_LARGE));
                self.stream = None;
                Err(ClaError::TooLarge { limit })
            }
            Err(quinn::ReadToEndError::Read(e)) => {
                self.stream = None;
                Err(e.into())
            }
        }
    }
}

/// How far past the bytes received [`read_ordered`] sizes its buffer for
/// the length a bundle's head announces (bytes): one chunk of the largest
/// size.
const RESERVE_AHEAD: usize = crate::content::MAX_CHUNK_SIZE as usize;

/// Reads a stream to its end, at most `limit` bytes, in order; with `hash`,
/// also the payload's digest (see [`PayloadHasher`]).
///
/// Each chunk is copied into the buffer as it comes, while it is still in
/// the CPU's caches, and hashed there; a buffer sized from the bundle's
/// head once that is known. A stream that arrived as one chunk is returned
/// without any copy. With `hash`, the bundle is placed in its buffer so
/// that the payload data starts on an [`ALIGN`] boundary in memory: a
/// chunk's bytes can then be written to a file opened with `O_DIRECT`
/// without an aligned copy (spec/manifest.md §Progressive reassembly).
async fn read_ordered(
    stream: &mut RecvStream,
    limit: usize,
    hash: bool,
) -> Result<(Bytes, Option<PayloadDigest>), quinn::ReadToEndError> {
    let mut first: Option<Bytes> = None;
    let mut buf = Received::default();
    let mut hasher = hash.then(PayloadHasher::new);
    let mut total = 0usize;
    while let Some(chunk) = stream.read_chunk(usize::MAX, true).await? {
        total += chunk.bytes.len();
        if total > limit {
            return Err(quinn::ReadToEndError::TooLong);
        }
        if first.is_none() && buf.is_empty() {
            let f = first.insert(chunk.bytes);
            if let Some(h) = hasher.as_mut() {
                h.update(f);
            }
            continue;
        }
        // Room for the length the head announces, but never more than
        // RESERVE_AHEAD past what has arrived: a head's claim costs nothing.
        let room = |buf: &Received, h: &Option<PayloadHasher>| {
            let want = h.as_ref().and_then(PayloadHasher::expected_len);
            let cap = limit.min(total.saturating_add(RESERVE_AHEAD));
            want.unwrap_or(0).min(cap).saturating_sub(buf.len())
        };
        if let Some(f) = first.take() {
            let align_at = hasher.as_ref().and_then(PayloadHasher::payload_offset);
            buf.start(room(&buf, &hasher).max(total), align_at);
            buf.extend(&f);
        }
        buf.extend(&chunk.bytes);
        if let Some(h) = hasher.as_mut() {
            h.update(buf.bytes());
        }
        buf.reserve(room(&buf, &hasher));
    }
    let digest = hasher.and_then(PayloadHasher::finish);
    Ok((first.unwrap_or_else(|| buf.into_bytes()), digest))
}

/// A bundle's receive buffer: `vec[pad..]` holds the bytes received, `pad`
/// chosen once so that the byte at a given offset of the bundle lies on an
/// [`ALIGN`] boundary (while the vector is not reallocated, which the
/// reservation for the announced length avoids).
#[derive(Default)]
struct Received {
    vec: Vec<u8>,
    pad: usize,
}

impl Received {
    fn is_empty(&self) -> bool {
        self.vec.is_empty()
    }

    /// Bytes received so far.
    fn len(&self) -> usize {
        self.vec.len() - self.pad
    }

    fn bytes(&self) -> &[u8] {
        &self.vec[self.pad..]
    }

    /// Makes room for `bytes`, with the bundle's byte `align_at` (if
    /// given) to fall on an [`ALIGN`] boundary. Call once, before
    /// anything is added.
    fn start(&mut self, bytes: usize, align_at: Option<usize>) {
        let Some(at) = align_at else {
            self.vec.reserve(bytes);
            return;
        };
        self.vec.reserve(bytes.saturating_add(ALIGN));
        let addr = (self.vec.as_ptr() as usize).wrapping_add(at);
        self.pad = (ALIGN - addr % ALIGN) % ALIGN;
        self.vec.resize(self.pad, 0);
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.vec.extend_from_slice(bytes);
    }

    /// Room for `more` bytes past those received.
    fn reserve(&mut self, more: usize) {
        self.vec.reserve(more);
    }

    fn into_bytes(self) -> Bytes {
        let pad = self.pad;
        Bytes::from(self.vec).slice(pad..)
    }
}

impl Drop for IncomingBundle {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            // Err only if the stream is already closed: nothing left to abandon.
            let _ = stream.stop(code(codes::BUNDLE_ABANDONED));
        }
    }
}

/// Resets a bundle send stream with `BUNDLE_CANCELLED` while armed, so that a
/// cancelled `send_bundle` never looks like a complete (truncated) bundle: quinn would
/// otherwise finish the stream on drop.
struct ResetOnDrop {
    stream: SendStream,
    armed: bool,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.armed {
            // Err only if the stream is already closed: nothing left to cancel.
            let _ = self.stream.reset(code(codes::BUNDLE_CANCELLED));
        }
    }
}
