//! Hashing a bundle's payload while the bundle is still arriving.
//!
//! A receiver checks every chunk against its CID (spec/manifest.md
//! §Chunks). Doing that after the whole bundle is in means one more pass
//! over 256 KiB that has left the CPU's caches, on a thread handed over
//! for it. A [`PayloadHasher`] is fed the bytes received so far, finds
//! where the payload data lies once the head has arrived
//! ([`crate::bundle::codec::payload_data_span`]) and hashes each piece as
//! it comes. Its [`PayloadDigest`] names the span it covers; the check
//! uses it only if the decoded payload is exactly that span of the same
//! buffer ([`PayloadDigest::covers`]), and hashes the payload itself
//! otherwise. So nothing about the bundle is trusted from the hasher.

use sha2::{Digest, Sha256};

use crate::bundle::codec::payload_data_span;

/// A head (everything before the payload data) longer than this, in
/// bytes, is not looked into: the payload is then hashed after decoding.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The SHA-256 of `bytes[offset..offset + len]` of one received buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadDigest {
    /// Start of the hashed span in the buffer, in bytes.
    pub offset: usize,
    /// Length of the span, in bytes.
    pub len: usize,
    /// SHA-256 of the span.
    pub sha256: [u8; 32],
}

impl PayloadDigest {
    /// True if `payload` lies exactly on the hashed span of `buffer`
    /// (the same memory, not merely equal bytes). `buffer` must be the one
    /// the digest was computed over; then the digest is `payload`'s hash.
    pub fn covers(&self, buffer: &[u8], payload: &[u8]) -> bool {
        let start = buffer.as_ptr() as usize;
        payload.len() == self.len
            && self
                .offset
                .checked_add(self.len)
                .is_some_and(|end| end <= buffer.len())
            && payload.as_ptr() as usize == start.wrapping_add(self.offset)
    }
}

/// Hashes the payload of a bundle as its bytes arrive; see the module
/// documentation.
#[derive(Clone, Debug, Default)]
pub struct PayloadHasher {
    state: State,
}

#[derive(Clone, Debug, Default)]
enum State {
    /// The head has not arrived yet.
    #[default]
    Looking,
    /// Hashing `offset..offset + len`; bytes before `done` are hashed.
    Hashing {
        sha: Sha256,
        offset: usize,
        len: usize,
        done: usize,
    },
    /// The head was too long or not understood: no digest.
    GaveUp,
}

impl PayloadHasher {
    /// A hasher that has seen nothing yet.
    pub fn new() -> PayloadHasher {
        PayloadHasher::default()
    }

    /// Takes note of `received`: every byte of the bundle received so far,
    /// the same buffer grown since the last call (or a copy with the same
    /// leading bytes).
    pub fn update(&mut self, received: &[u8]) {
        if matches!(self.state, State::Looking) {
            self.state = match payload_data_span(received) {
                Some((offset, len)) => State::Hashing {
                    sha: Sha256::new(),
                    offset,
                    len,
                    done: offset,
                },
                None if received.len() > MAX_HEAD_BYTES => State::GaveUp,
                None => return,
            };
        }
        if let State::Hashing {
            sha,
            offset,
            len,
            done,
        } = &mut self.state
        {
            let end = offset.saturating_add(*len).min(received.len());
            if end > *done {
                sha.update(&received[*done..end]);
                *done = end;
            }
        }
    }

    /// Where the payload data starts in the bundle, in bytes from its
    /// first byte, once the head has arrived.
    pub fn payload_offset(&self) -> Option<usize> {
        match &self.state {
            State::Hashing { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// The whole bundle's length in bytes as far as the head tells (the
    /// payload's end plus the longest tail: a 4-byte CRC string and the
    /// closing `0xff`), once the head has arrived: for sizing a buffer.
    pub fn expected_len(&self) -> Option<usize> {
        match &self.state {
            State::Hashing { offset, len, .. } => offset.checked_add(*len)?.checked_add(6),
            _ => None,
        }
    }

    /// The digest, if the whole payload span was fed.
    pub fn finish(self) -> Option<PayloadDigest> {
        match self.state {
            State::Hashing {
                sha,
                offset,
                len,
                done,
            } if offset.checked_add(len) == Some(done) => Some(PayloadDigest {
                offset,
                len,
                sha256: sha.finalize().into(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::codec::{decode_shared, encode};
    use crate::bundle::{Bundle, CreationTimestamp, DtnTime};
    use bytes::Bytes;

    fn encoded(payload: Vec<u8>) -> Bytes {
        let b = Bundle::new(
            "dtn://a/".parse().unwrap(),
            "dtn://c/files".parse().unwrap(),
            CreationTimestamp {
                time: DtnTime(9),
                sequence: 1,
            },
            60_000,
            Bytes::from(payload),
        );
        Bytes::from(encode(&b))
    }

    #[test]
    fn pieces_of_any_size_give_the_payload_hash_of_the_same_buffer() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let enc = encoded(payload.clone());
        for piece in [1, 7, 1200, 65_536, enc.len()] {
            let mut h = PayloadHasher::new();
            let mut upto = 0;
            while upto < enc.len() {
                upto = (upto + piece).min(enc.len());
                h.update(&enc[..upto]);
            }
            assert!(h.expected_len().unwrap() >= enc.len());
            let d = h.finish().expect("a digest");
            assert_eq!(d.sha256, <[u8; 32]>::from(Sha256::digest(&payload)));
            let b = decode_shared(&enc, &Default::default()).unwrap();
            assert!(d.covers(&enc, b.payload().unwrap()), "piece {piece}");
            // The same bytes elsewhere are not covered.
            assert!(!d.covers(&enc, &payload));
            assert!(!d.covers(&enc[..10], b.payload().unwrap()));
        }
    }

    #[test]
    fn no_digest_for_a_cut_bundle_or_an_unreadable_head() {
        let enc = encoded(vec![1u8; 5000]);
        let mut h = PayloadHasher::new();
        h.update(&enc[..enc.len() - 100]);
        assert_eq!(h.finish(), None, "the payload did not all arrive");
        let mut h = PayloadHasher::new();
        let junk = vec![0xa5u8; MAX_HEAD_BYTES + 1];
        h.update(&junk[..100]);
        assert_eq!(h.expected_len(), None);
        h.update(&junk);
        assert_eq!(h.finish(), None, "gave up on a head it cannot read");
    }
}
