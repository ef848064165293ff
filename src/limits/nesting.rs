//! CBOR nesting depth of untrusted bytes (RFC 8949 §3), checked without
//! recursion and without allocating per item, before a decoder sees them.

/// The first data item nests deeper than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("CBOR nesting deeper than {max} at byte {offset}")]
pub struct NestingError {
    /// The limit.
    pub max: usize,
    /// Offset of the head that would open one level too many.
    pub offset: usize,
}

/// Reads one head at `pos`: (major type, argument or `None` for an
/// indefinite length, offset past the head). `None` if malformed/truncated.
fn head(bytes: &[u8], pos: usize) -> Option<(u8, Option<u64>, usize)> {
    let b = *bytes.get(pos)?;
    let (major, info) = (b >> 5, b & 0x1f);
    let width = match info {
        0..=23 => return Some((major, Some(u64::from(info)), pos + 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 => return Some((major, None, pos + 1)),
        _ => return None,
    };
    let arg = bytes.get(pos + 1..pos + 1 + width)?;
    let v = arg.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    Some((major, Some(v), pos + 1 + width))
}

/// Checks that the first CBOR data item of `bytes` opens at most `max`
/// nested containers (arrays, maps, tags, indefinite strings). Byte and
/// text strings are skipped, not looked into. Malformed or truncated input
/// passes: the decoder that follows reports it precisely.
///
/// # Errors
/// [`NestingError`] at the first head that would go deeper than `max`.
pub fn check_nesting(bytes: &[u8], max: usize) -> Result<(), NestingError> {
    // Items still due in each open container; `None`: indefinite length.
    let mut open: Vec<Option<u64>> = Vec::new();
    let mut pos = 0;
    loop {
        if bytes.get(pos) == Some(&0xff) {
            // "break": closes the innermost indefinite container.
            if open.pop() != Some(None) {
                return Ok(());
            }
            pos += 1;
        } else {
            let Some((major, arg, next)) = head(bytes, pos) else {
                return Ok(());
            };
            let items = match (major, arg) {
                (2 | 3, Some(n)) => {
                    pos = usize::try_from(n)
                        .ok()
                        .and_then(|n| next.checked_add(n))
                        .unwrap_or(usize::MAX);
                    0
                }
                (4, Some(n)) => n,
                (5, Some(n)) => n.saturating_mul(2),
                (6, _) => 1,
                (2..=5, None) => u64::MAX,
                _ => 0,
            };
            if items > 0 {
                if open.len() >= max {
                    return Err(NestingError { max, offset: pos });
                }
                open.push(if arg.is_none() && major != 6 {
                    None
                } else {
                    Some(items)
                });
                pos = next;
                continue;
            }
            if !matches!(major, 2 | 3) {
                pos = next;
            }
        }
        // One item is complete: count it against its container(s).
        loop {
            match open.last_mut() {
                None => return Ok(()),
                Some(None) => break,
                Some(Some(left)) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Bundle, CreationTimestamp, DtnTime, codec};

    #[test]
    fn a_real_bundle_needs_little_depth() {
        let b = Bundle::new(
            "dtn://a/".parse().unwrap(),
            "dtn://b/x".parse().unwrap(),
            CreationTimestamp {
                time: DtnTime(5),
                sequence: 1,
            },
            1000,
            bytes::Bytes::from_static(&[0x9f; 300]),
        );
        let enc = codec::encode(&b);
        assert_eq!(check_nesting(&enc, 4), Ok(()));
        assert!(check_nesting(&enc, 2).is_err());
    }

    #[test]
    fn deep_arrays_maps_tags_and_indefinite_items_are_caught() {
        let deep = |open: &[u8], n: usize| {
            let mut v = Vec::new();
            for _ in 0..n {
                v.extend_from_slice(open);
            }
            v.push(0x00);
            v
        };
        for open in [&[0x81][..], &[0xa1, 0x00], &[0xc6], &[0x9f]] {
            assert_eq!(check_nesting(&deep(open, 16), 16), Ok(()), "{open:x?}");
            let e = check_nesting(&deep(open, 100_000), 16).unwrap_err();
            assert_eq!(e.max, 16);
        }
        // Siblings do not add up: [[0],[0],[0]] is depth 2.
        assert_eq!(check_nesting(&[0x83, 0x81, 0, 0x81, 0, 0x81, 0], 2), Ok(()));
        // Indefinite siblings closed by breaks.
        assert_eq!(
            check_nesting(&[0x9f, 0x9f, 0xff, 0x9f, 0xff, 0xff], 2),
            Ok(())
        );
        assert!(check_nesting(&[0x9f, 0x9f, 0x9f, 0xff, 0xff, 0xff], 2).is_err());
    }

    #[test]
    fn malformed_or_truncated_input_is_left_to_the_decoder() {
        for bad in [
            &[][..],
            &[0x1c],
            &[0x5b, 0xff],
            &[0x9b, 0x40, 0, 0, 0, 0, 0, 0, 0],
            &[0xff],
        ] {
            assert_eq!(check_nesting(bad, 4), Ok(()));
        }
        // A huge length claim neither allocates nor loops.
        let claim = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert_eq!(check_nesting(&claim, 4), Ok(()));
    }
}
