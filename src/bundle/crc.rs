//! The two block CRCs of RFC 9171 §4.2.1: CRC-16/X.25 (CRC type 1) and
//! CRC-32C/Castagnoli (CRC type 2).
//!
//! Both are computed over the whole CBOR encoding of a block with the
//! content of the block's CRC byte string set to zero; the codec feeds the
//! bytes in pieces so that large payload blocks are never copied.

use crc::{CRC_16_IBM_SDLC, Crc, Table};

/// CRC-16/X.25 (the catalogue's `CRC_16_IBM_SDLC`: poly 0x1021, reflected,
/// init and xorout 0xFFFF). Slice-by-16 tables: several times faster than
/// byte-wise on payload-sized inputs (see `benches/codec.rs`).
const X25: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_IBM_SDLC);

/// CRC-16/X.25 of `data` (RFC 9171 §4.2.1 CRC type 1). Check value for
/// `b"123456789"` is `0x906E`.
pub fn crc16_x25(data: &[u8]) -> u16 {
    X25.checksum(data)
}

/// CRC-32C of `data` (RFC 9171 §4.2.1 CRC type 2; poly 0x1EDC6F41,
/// reflected). Check value for `b"123456789"` is `0xE306_9283`. Uses the
/// SSE 4.2 / ARMv8 CRC instructions when the CPU has them (crate `crc32c`),
/// a software table otherwise.
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// CRC-16/X.25 of the concatenation of `pieces`, without joining them.
pub(crate) fn crc16_x25_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> u16 {
    let mut d = X25.digest();
    pieces.into_iter().for_each(|p| d.update(p));
    d.finalize()
}

/// CRC-32C of the concatenation of `pieces`, without joining them.
pub(crate) fn crc32c_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    pieces.into_iter().fold(0, ::crc32c::crc32c_append)
}

/// CRC-16/X.25 of `span` with its last `zeroed_tail` bytes read as zeros.
/// `zeroed_tail` is clamped to `span.len()`.
pub(crate) fn crc16_x25_zeroed_tail(span: &[u8], zeroed_tail: usize) -> u16 {
    let cut = span.len().saturating_sub(zeroed_tail);
    let mut d = X25.digest();
    d.update(&span[..cut]);
    for _ in cut..span.len() {
        d.update(&[0]);
    }
    d.finalize()
}

/// CRC-32C of `span` with its last `zeroed_tail` bytes read as zeros.
/// `zeroed_tail` is clamped to `span.len()`.
pub(crate) fn crc32c_zeroed_tail(span: &[u8], zeroed_tail: usize) -> u32 {
    let cut = span.len().saturating_sub(zeroed_tail);
    let mut crc = ::crc32c::crc32c(&span[..cut]);
    let mut left = span.len() - cut;
    while left > 0 {
        let n = left.min(8);
        crc = ::crc32c::crc32c_append(crc, &[0u8; 8][..n]);
        left -= n;
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        assert_eq!(crc16_x25(b"123456789"), 0x906E);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn zeroed_tail_equals_explicit_zeros() {
        let data = b"abcdefgh\x12\x34";
        let mut z = data.to_vec();
        z[8] = 0;
        z[9] = 0;
        assert_eq!(crc16_x25_zeroed_tail(data, 2), crc16_x25(&z));
        assert_eq!(crc32c_zeroed_tail(data, 2), crc32c(&z));
        assert_eq!(crc32c_zeroed_tail(b"ab", 9), crc32c(&[0, 0]));
    }
}
