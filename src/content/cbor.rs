//! The few DAG-CBOR primitives the manifest needs (RFC 8949 §3, DAG-CBOR
//! spec): definite-length heads with the shortest argument encoding,
//! unsigned integers, text and byte strings, arrays, maps and tag 42 CIDs.

use super::ContentError;
use ::cid::Cid;

/// Major type 0: unsigned integer.
pub(crate) const MAJOR_UINT: u8 = 0;
/// Major type 2: byte string.
pub(crate) const MAJOR_BYTES: u8 = 2;
/// Major type 3: text string.
pub(crate) const MAJOR_TEXT: u8 = 3;
/// Major type 4: array.
pub(crate) const MAJOR_ARRAY: u8 = 4;
/// Major type 5: map.
pub(crate) const MAJOR_MAP: u8 = 5;
/// Major type 6: tag.
pub(crate) const MAJOR_TAG: u8 = 6;
/// The CBOR tag for a CID link (IANA "CID", used by DAG-CBOR).
pub(crate) const TAG_CID: u64 = 42;

/// Appends a head (major type + argument) in its shortest form.
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Appends a text string.
pub(crate) fn write_text(out: &mut Vec<u8>, text: &str) {
    write_head(out, MAJOR_TEXT, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Appends a CID link: tag 42 over the byte string `0x00 ‖ binary CID`.
pub(crate) fn write_cid(out: &mut Vec<u8>, cid: &Cid) {
    let bytes = cid.to_bytes();
    write_head(out, MAJOR_TAG, TAG_CID);
    write_head(out, MAJOR_BYTES, bytes.len() as u64 + 1);
    out.push(0x00);
    out.extend_from_slice(&bytes);
}

/// The DAG-CBOR map key order: shorter encoded key first, then bytewise.
/// For text keys of ≤ 23 bytes that is length first, then bytewise.
pub(crate) fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// A cursor over CBOR input that only accepts the canonical DAG-CBOR
/// subset: definite lengths and shortest-form arguments.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input, pos: 0 }
    }

    /// Current offset in the input, in bytes.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// An error at the current offset.
    pub(crate) fn err(&self, reason: &'static str) -> ContentError {
        ContentError::MalformedManifest {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ContentError> {
        if n > self.remaining() {
            return Err(self.err("truncated input"));
        }
        let slice = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// Reads a head; returns (major type, argument).
    pub(crate) fn head(&mut self) -> Result<(u8, u64), ContentError> {
        let start = self.pos;
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let (arg, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => (u64::from(u16::from_be_bytes(self.array()?)), 0x100),
            26 => (u64::from(u32::from_be_bytes(self.array()?)), 0x1_0000),
            27 => (u64::from_be_bytes(self.array()?), 0x1_0000_0000),
            31 => return Err(self.err_at(start, "indefinite length is not DAG-CBOR")),
            _ => return Err(self.err_at(start, "reserved additional information")),
        };
        if arg < min {
            return Err(self.err_at(start, "argument not in shortest form"));
        }
        Ok((major, arg))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ContentError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn err_at(&self, offset: usize, reason: &'static str) -> ContentError {
        ContentError::MalformedManifest { offset, reason }
    }

    /// Reads a head and checks its major type; returns the argument.
    pub(crate) fn expect(&mut self, major: u8, what: &'static str) -> Result<u64, ContentError> {
        let start = self.pos;
        let (m, arg) = self.head()?;
        if m != major {
            return Err(self.err_at(start, what));
        }
        Ok(arg)
    }

    /// Reads an unsigned integer.
    pub(crate) fn uint(&mut self) -> Result<u64, ContentError> {
        self.expect(MAJOR_UINT, "expected an unsigned integer")
    }

    /// Reads a UTF-8 text string.
    pub(crate) fn text(&mut self) -> Result<&'a str, ContentError> {
        let len = self.expect(MAJOR_TEXT, "expected a text string")?;
        let start = self.pos;
        let len = usize::try_from(len).map_err(|_| self.err("truncated input"))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| self.err_at(start, "text is not UTF-8"))
    }

    /// Reads a byte string; returns the range of its content in the input.
    pub(crate) fn byte_span(&mut self) -> Result<(usize, usize), ContentError> {
        let len = self.expect(MAJOR_BYTES, "expected a byte string")?;
        let len = usize::try_from(len).map_err(|_| self.err("truncated input"))?;
        let start = self.pos;
        self.take(len)?;
        Ok((start, self.pos))
    }

    /// Reads a tag-42 CID link and parses the CID.
    pub(crate) fn cid(&mut self) -> Result<Cid, ContentError> {
        let start = self.pos;
        if self.expect(MAJOR_TAG, "expected tag 42 (CID)")? != TAG_CID {
            return Err(self.err_at(start, "expected tag 42 (CID)"));
        }
        let len = self.expect(MAJOR_BYTES, "expected a byte string in tag 42")?;
        let len = usize::try_from(len).map_err(|_| self.err("truncated input"))?;
        let body_at = self.pos;
        let bytes = self.take(len)?;
        match bytes.split_first() {
            Some((0x00, cid)) => super::cid_from_bytes(cid)
                .map_err(|_| self.err_at(body_at, "invalid CID in tag 42")),
            _ => Err(self.err_at(body_at, "CID bytes must start with 0x00")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_shortest_and_round_trip() {
        for (arg, len) in [
            (0u64, 1usize),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65_535, 3),
            (65_536, 5),
            (u64::from(u32::MAX), 5),
            (u64::from(u32::MAX) + 1, 9),
            (u64::MAX, 9),
        ] {
            let mut out = Vec::new();
            write_head(&mut out, MAJOR_UINT, arg);
            assert_eq!(out.len(), len, "{arg}");
            assert_eq!(Reader::new(&out).uint().unwrap(), arg);
        }
    }

    #[test]
    fn non_canonical_heads_are_refused() {
        for bad in [
            &[0x18, 0x05][..],               // 5 in one extra byte
            &[0x19, 0x00, 0xff],             // 255 in two bytes
            &[0x1a, 0x00, 0x00, 0xff, 0xff], // 65535 in four bytes
            &[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            &[0x9f],       // indefinite array
            &[0x1c],       // reserved
            &[0x19, 0x01], // truncated
        ] {
            assert!(Reader::new(bad).head().is_err(), "{bad:02x?}");
        }
    }
}
