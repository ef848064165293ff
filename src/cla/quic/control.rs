//! Control-stream framing: each frame is a 4-byte big-endian payload length followed
//! by that many bytes of CBOR (RFC 8949, serde_cbor encoding of the message).
//!
//! Both halves keep their partial state across calls, so an `await` cancelled in the
//! middle of a frame never desynchronises the stream.

use bytes::{Buf, Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use serde::{Deserialize, Serialize};

use crate::cla::error::ClaError;

/// Size of the length prefix, in bytes.
const LEN_PREFIX_BYTES: usize = 4;

/// Largest Hello frame accepted, in bytes (a Hello is a version and a node ID).
pub(super) const MAX_HELLO_BYTES: usize = 4096;

/// The first control frame each side sends (`spec/cl-quic.md`, "Opening exchange").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Hello {
    /// CL protocol version, [`super::PROTOCOL_VERSION`].
    pub version: u32,
    /// The sender's node ID; must equal the URI SAN of its certificate.
    pub node_id: String,
}

/// Encodes `msg` as one frame (prefix + CBOR).
///
/// # Errors
/// [`ClaError::TooLarge`] if the CBOR is longer than `limit_bytes`,
/// [`ClaError::BadFrame`] if `msg` cannot be serialised.
pub(super) fn encode_frame<T: Serialize>(msg: &T, limit_bytes: usize) -> Result<Bytes, ClaError> {
    let mut frame = vec![0u8; LEN_PREFIX_BYTES];
    serde_cbor::to_writer(&mut frame, msg)
        .map_err(|e| ClaError::BadFrame(format!("cannot encode: {e}")))?;
    let len = frame.len() - LEN_PREFIX_BYTES;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|_| len <= limit_bytes)
        .ok_or(ClaError::TooLarge { limit: limit_bytes })?;
    frame[..LEN_PREFIX_BYTES].copy_from_slice(&len32.to_be_bytes());
    Ok(Bytes::from(frame))
}

/// Decodes one CBOR payload (without its prefix) as `T`.
///
/// # Errors
/// [`ClaError::BadFrame`] if the payload is not a CBOR encoding of `T`.
pub(super) fn decode_payload<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<T, ClaError> {
    serde_cbor::from_slice(payload).map_err(|e| ClaError::BadFrame(format!("bad CBOR: {e}")))
}

/// Sending half of the control stream, with the unsent tail of a cancelled frame.
#[derive(Debug)]
pub(super) struct ControlWriter {
    stream: SendStream,
    pending: Bytes,
}

impl ControlWriter {
    pub(super) fn new(stream: SendStream) -> Self {
        ControlWriter {
            stream,
            pending: Bytes::new(),
        }
    }

    /// Writes `frame` after any tail left by a cancelled call. Cancel-safe in the sense
    /// that the stream stays framed: a cancelled frame is completed by the next call.
    pub(super) async fn send_frame(&mut self, frame: Bytes) -> Result<(), ClaError> {
        self.flush().await?;
        self.pending = frame;
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), ClaError> {
        while !self.pending.is_empty() {
            // write_chunks is cancel-safe: `pending` only shrinks by what was written.
            self.stream
                .write_chunks(std::slice::from_mut(&mut self.pending))
                .await?;
        }
        Ok(())
    }
}

/// Receiving half of the control stream, with the bytes of a partly received frame.
#[derive(Debug)]
pub(super) struct ControlReader {
    stream: RecvStream,
    buf: BytesMut,
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(super) enum ReadFrameError {
    /// The announced payload length exceeds the limit; the stream cannot be resynced.
    TooLong { len: usize, limit: usize },
    /// The peer finished the stream (cleanly between frames, or mid-frame).
    Ended { mid_frame: bool },
    /// The stream or the connection failed.
    Stream(ClaError),
}

impl ControlReader {
    pub(super) fn new(stream: RecvStream) -> Self {
        ControlReader {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Reads the next frame payload (at most `limit_bytes`). Cancel-safe: received bytes
    /// stay buffered for the next call.
    pub(super) async fn recv_frame(&mut self, limit_bytes: usize) -> Result<Bytes, ReadFrameError> {
        loop {
            let need = match self.complete_frame_len(limit_bytes)? {
                Ok(total) => {
                    self.buf.advance(LEN_PREFIX_BYTES);
                    return Ok(self.buf.split_to(total - LEN_PREFIX_BYTES).freeze());
                }
                Err(missing) => missing,
            };
            // read_chunk is cancel-safe; nothing is consumed unless it resolves.
            match self.stream.read_chunk(need, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Ok(None) => {
                    return Err(ReadFrameError::Ended {
                        mid_frame: !self.buf.is_empty(),
                    });
                }
                Err(e) => return Err(ReadFrameError::Stream(e.into())),
            }
        }
    }

    /// `Ok(Ok(total))` when a whole frame of `total` bytes (prefix included) is
    /// buffered, `Ok(Err(missing))` with the bytes still missing, or an error if the
    /// announced length is over the limit.
    fn complete_frame_len(
        &self,
        limit_bytes: usize,
    ) -> Result<Result<usize, usize>, ReadFrameError> {
        if self.buf.len() < LEN_PREFIX_BYTES {
            return Ok(Err(LEN_PREFIX_BYTES - self.buf.len()));
        }
        let mut prefix = [0u8; LEN_PREFIX_BYTES];
        prefix.copy_from_slice(&self.buf[..LEN_PREFIX_BYTES]);
        let len = u32::from_be_bytes(prefix) as usize;
        if len > limit_bytes {
            return Err(ReadFrameError::TooLong {
                len,
                limit: limit_bytes,
            });
        }
        let total = LEN_PREFIX_BYTES + len;
        if self.buf.len() >= total {
            Ok(Ok(total))
        } else {
            Ok(Err(total - self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_big_endian_length_prefix() {
        let hello = Hello {
            version: 1,
            node_id: "dtn://a/".into(),
        };
        let frame = encode_frame(&hello, 1024).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        let back: Hello = decode_payload(&frame[4..]).unwrap();
        assert_eq!(back, hello);
    }

    #[test]
    fn oversize_message_is_refused_before_sending() {
        let big = vec![7u8; 100];
        let err = encode_frame(&serde_bytes_like(&big), 50).unwrap_err();
        assert!(matches!(err, ClaError::TooLarge { limit: 50 }));
    }

    #[test]
    fn garbage_payload_is_bad_frame() {
        let err = decode_payload::<Hello>(&[0xff, 0x00, 0x13]).unwrap_err();
        assert!(matches!(err, ClaError::BadFrame(_)));
        let err = decode_payload::<Hello>(&[]).unwrap_err();
        assert!(matches!(err, ClaError::BadFrame(_)));
    }

    fn serde_bytes_like(v: &[u8]) -> Vec<u8> {
        v.to_vec()
    }
}
