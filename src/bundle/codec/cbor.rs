//! The small CBOR toolkit the bundle codec is built on (RFC 8949).
//!
//! Writing is done by hand so that every head has its shortest form
//! (RFC 8949 §4.2.1 "preferred serialization", required by RFC 9171 §4.1).
//! Reading takes one data item at a time: the subset well-formed bundles
//! use is read directly (see `fast`, which slices byte strings out of the
//! input without copying); anything else, and every error, goes through
//! `serde_cbor`, and the item is converted to [`Item`], so no other module
//! depends on `serde_cbor`.

use super::DecodeError;
use bytes::Bytes;
use serde::Deserialize;

/// CBOR major types used by the bundle protocol.
pub(crate) mod major {
    /// Unsigned integer.
    pub const UINT: u8 = 0;
    /// Byte string.
    pub const BYTES: u8 = 2;
    /// Text string.
    pub const TEXT: u8 = 3;
    /// Array.
    pub const ARRAY: u8 = 4;
}

/// Appends a CBOR head (major type + argument) in its shortest form.
pub(crate) fn put_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an unsigned integer.
pub(crate) fn put_uint(out: &mut Vec<u8>, n: u64) {
    put_head(out, major::UINT, n);
}

/// Appends a definite-length array head of `len` items.
pub(crate) fn put_array(out: &mut Vec<u8>, len: u64) {
    put_head(out, major::ARRAY, len);
}

/// Appends a definite-length byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, data: &[u8]) {
    put_head(out, major::BYTES, data.len() as u64);
    out.extend_from_slice(data);
}

/// Appends a definite-length text string.
pub(crate) fn put_text(out: &mut Vec<u8>, s: &str) {
    put_head(out, major::TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends `true` or `false`.
pub(crate) fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xf5 } else { 0xf4 });
}

/// One decoded CBOR data item, reduced to what BPv7 uses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    /// Unsigned integer (major type 0).
    Uint(u64),
    /// Byte string.
    Bytes(Bytes),
    /// UTF-8 text string.
    Text(String),
    /// Array (definite or indefinite on the wire).
    Array(Vec<Item>),
    /// `true` / `false`.
    Bool(bool),
    /// Anything else (negative integer, map, tag, float, null, undefined):
    /// the name of what it was.
    Other(&'static str),
}

impl Item {
    /// The value if this is an unsigned integer.
    pub(crate) fn as_uint(&self) -> Option<u64> {
        match self {
            Item::Uint(n) => Some(*n),
            _ => None,
        }
    }

    /// The items if this is an array.
    pub(crate) fn as_array(&self) -> Option<&[Item]> {
        match self {
            Item::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl From<serde_cbor::Value> for Item {
    fn from(v: serde_cbor::Value) -> Item {
        use serde_cbor::Value as V;
        match v {
            V::Integer(i) => match u64::try_from(i) {
                Ok(n) => Item::Uint(n),
                Err(_) => Item::Other("negative integer"),
            },
            V::Bytes(b) => Item::Bytes(Bytes::from(b)),
            V::Text(s) => Item::Text(s),
            V::Array(a) => Item::Array(a.into_iter().map(Item::from).collect()),
            V::Bool(b) => Item::Bool(b),
            V::Null => Item::Other("null"),
            V::Float(_) => Item::Other("float"),
            V::Map(_) => Item::Other("map"),
            V::Tag(..) => Item::Other("tag"),
            _ => Item::Other("simple value"),
        }
    }
}

/// Reads one data item starting at `bytes[pos]`; returns it and the offset
/// just past it.
///
/// # Errors
/// [`DecodeError::Truncated`] if the input ends inside the item,
/// [`DecodeError::BadCbor`] (with the absolute offset) for anything else
/// `serde_cbor` refuses (bad heads, invalid UTF-8, nesting deeper than 128).
pub(crate) fn read_item(bytes: &[u8], pos: usize) -> Result<(Item, usize), DecodeError> {
    read_item_in(bytes, None, pos)
}

/// As [`read_item`]; when `src` is given (it must hold exactly `bytes`),
/// byte strings in the item are slices of it rather than copies.
///
/// # Errors
/// As [`read_item`].
pub(crate) fn read_item_in(
    bytes: &[u8],
    src: Option<&Bytes>,
    pos: usize,
) -> Result<(Item, usize), DecodeError> {
    match super::fast::read(bytes, src, pos) {
        Some(found) => Ok(found),
        None => read_item_serde(bytes, pos),
    }
}

/// [`read_item`] through `serde_cbor`: the reference reader, and the one
/// that words every error.
pub(super) fn read_item_serde(bytes: &[u8], pos: usize) -> Result<(Item, usize), DecodeError> {
    let rest = bytes.get(pos..).ok_or(DecodeError::Truncated)?;
    if rest.is_empty() {
        return Err(DecodeError::Truncated);
    }
    let mut de = serde_cbor::Deserializer::from_slice(rest);
    match serde_cbor::Value::deserialize(&mut de) {
        Ok(v) => Ok((Item::from(v), pos + de.byte_offset())),
        Err(e) if e.is_eof() => Err(DecodeError::Truncated),
        Err(e) => Err(DecodeError::BadCbor {
            offset: pos + e.offset() as usize,
            detail: e.to_string(),
        }),
    }
}

/// Reads `bytes` as exactly one data item (nothing may follow it).
///
/// # Errors
/// As [`read_item`], plus [`DecodeError::TrailingBytes`].
pub(crate) fn read_exact(bytes: &[u8]) -> Result<Item, DecodeError> {
    let (item, end) = read_item(bytes, 0)?;
    if end != bytes.len() {
        return Err(DecodeError::TrailingBytes { offset: end });
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_shortest() {
        let enc = |n: u64| {
            let mut v = Vec::new();
            put_uint(&mut v, n);
            v
        };
        assert_eq!(enc(23), [0x17]);
        assert_eq!(enc(24), [0x18, 24]);
        assert_eq!(enc(255), [0x18, 0xff]);
        assert_eq!(enc(256), [0x19, 1, 0]);
        assert_eq!(enc(65_536), [0x1a, 0, 1, 0, 0]);
        assert_eq!(
            enc(u64::MAX),
            [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn reads_items_with_offsets() {
        let mut v = Vec::new();
        put_array(&mut v, 2);
        put_text(&mut v, "ab");
        put_bool(&mut v, true);
        put_bytes(&mut v, &[1, 2]);
        let (item, end) = read_item(&v, 0).unwrap();
        assert_eq!(
            item,
            Item::Array(vec![Item::Text("ab".into()), Item::Bool(true)])
        );
        assert_eq!(end, 5);
        let (item, end) = read_item(&v, end).unwrap();
        assert_eq!(item, Item::Bytes(Bytes::from_static(&[1, 2])));
        assert_eq!(end, v.len());
        assert_eq!(read_item(&v, end), Err(DecodeError::Truncated));
        assert!(matches!(
            read_exact(&[0x01, 0x02]),
            Err(DecodeError::TrailingBytes { offset: 1 })
        ));
        assert_eq!(
            read_exact(&[0x20]).unwrap(),
            Item::Other("negative integer")
        );
        let e = read_exact(&[0x1c]);
        assert!(matches!(e, Err(DecodeError::BadCbor { .. })), "{e:?}");
        assert_eq!(read_exact(&[0x42, 0]), Err(DecodeError::Truncated));
    }
}
