//! Invite codes (spec/trust.md §"Invite code"): what `spore invite` prints
//! and `spore join` reads.
//!
//! Text form: `SPORE1-` followed by RFC 4648 base32 (no padding) of
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, 1 |
//! | 32 | inviter's Ed25519 public key |
//! | 16 | secret (random 128 bits) |
//! | 8 | expiry, Unix seconds, big-endian |
//! | 1 | address count N (1..=8) |
//! | N × (1 + 4 or 16 + 2) | tag 4 or 6, IP address, UDP port big-endian |
//! | 4 | first 4 bytes of SHA-256 of everything before |

use super::trust::NodeKey;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Text prefix of an invite code.
pub const PREFIX: &str = "SPORE1-";
/// Most addresses in one code.
pub const MAX_ADDRS: usize = 8;
const VERSION: u8 = 1;
const CHECKSUM_BYTES: usize = 4;

/// A decoded invite code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCode {
    /// The inviter's key: the joiner trusts it and checks it in the handshake.
    pub key: NodeKey,
    /// The one-time secret the joiner proves in its `Join` message.
    pub secret: [u8; 16],
    /// Expiry, Unix seconds.
    pub expires_unix_s: u64,
    /// The inviter's QUIC addresses, tried in order (1..=8).
    pub addrs: Vec<SocketAddr>,
}

/// Why a text is not a valid invite code.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteCodeError {
    /// It does not start with `SPORE1-`.
    #[error("not an invite code (it should start with {PREFIX})")]
    NotAnInvite,
    /// Characters outside the base32 alphabet.
    #[error("invite code is damaged (not base32)")]
    BadEncoding,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("invite code is damaged (checksum mismatch: a typo or an incomplete copy?)")]
    BadChecksum,
    /// Fields are missing, or bytes follow the last one.
    #[error("invite code is damaged (wrong length)")]
    BadLength,
    /// Another code version.
    #[error("invite code version {0} is not supported (expected 1)")]
    UnsupportedVersion(u8),
    /// No address, too many, or an unknown address tag.
    #[error("invite code has no usable address")]
    BadAddress,
}

impl InviteCode {
    /// The text form (`SPORE1-…`, uppercase base32).
    ///
    /// # Panics
    /// Never for codes of 1..=8 addresses; more are cut to 8.
    pub fn encode(&self) -> String {
        let mut b = vec![VERSION];
        b.extend_from_slice(&self.key.0);
        b.extend_from_slice(&self.secret);
        b.extend_from_slice(&self.expires_unix_s.to_be_bytes());
        let addrs = &self.addrs[..self.addrs.len().min(MAX_ADDRS)];
        b.push(addrs.len() as u8);
        for a in addrs {
            match a.ip() {
                IpAddr::V4(ip) => {
                    b.push(4);
                    b.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    b.push(6);
                    b.extend_from_slice(&ip.octets());
                }
            }
            b.extend_from_slice(&a.port().to_be_bytes());
        }
        let sum = Sha256::digest(&b);
        b.extend_from_slice(&sum[..CHECKSUM_BYTES]);
        format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&b))
    }

    /// Parses a code; whitespace is ignored and case does not matter.
    ///
    /// # Errors
    /// [`InviteCodeError`]: wrong prefix, damaged text (checksum), bad
    /// length, unsupported version, or no usable address.
    pub fn decode(text: &str) -> Result<InviteCode, InviteCodeError> {
        let t: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let body = t.strip_prefix(PREFIX).ok_or(InviteCodeError::NotAnInvite)?;
        let b = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| InviteCodeError::BadEncoding)?;
        if b.len() < 1 + 32 + 16 + 8 + 1 + CHECKSUM_BYTES {
            return Err(InviteCodeError::BadLength);
        }
        let (data, sum) = b.split_at(b.len() - CHECKSUM_BYTES);
        if Sha256::digest(data)[..CHECKSUM_BYTES] != *sum {
            return Err(InviteCodeError::BadChecksum);
        }
        let mut r = Reader(data);
        let version = r.take::<1>()?[0];
        if version != VERSION {
            return Err(InviteCodeError::UnsupportedVersion(version));
        }
        let key = NodeKey(r.take::<32>()?);
        let secret = r.take::<16>()?;
        let expires_unix_s = u64::from_be_bytes(r.take::<8>()?);
        let n = r.take::<1>()?[0] as usize;
        if n == 0 || n > MAX_ADDRS {
            return Err(InviteCodeError::BadAddress);
        }
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let ip = match r.take::<1>()?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(r.take::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.take::<16>()?)),
                _ => return Err(InviteCodeError::BadAddress),
            };
            addrs.push(SocketAddr::new(ip, u16::from_be_bytes(r.take::<2>()?)));
        }
        if !r.0.is_empty() {
            return Err(InviteCodeError::BadLength);
        }
        Ok(InviteCode {
            key,
            secret,
            expires_unix_s,
            addrs,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], InviteCodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(InviteCodeError::BadLength)?;
        self.0 = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> InviteCode {
        InviteCode {
            key: NodeKey([7; 32]),
            secret: [1; 16],
            expires_unix_s: 1_900_000_000,
            addrs: vec![
                "127.0.0.1:4556".parse().unwrap(),
                "[fe80::1]:9".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn round_trips_and_tolerates_case_and_spaces() {
        let c = code();
        let text = c.encode();
        assert!(text.starts_with(PREFIX));
        assert_eq!(InviteCode::decode(&text).unwrap(), c);
        let loose = format!("  {}\n", text.to_lowercase());
        assert_eq!(InviteCode::decode(&loose).unwrap(), c);
    }

    #[test]
    fn damaged_codes_are_refused_with_a_reason() {
        let text = code().encode();
        let mut typo = text.clone().into_bytes();
        let i = typo.len() - 10;
        typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(InviteCode::decode(&typo), Err(InviteCodeError::BadChecksum));
        assert_eq!(
            InviteCode::decode("hello"),
            Err(InviteCodeError::NotAnInvite)
        );
        assert_eq!(
            InviteCode::decode("SPORE1-!!"),
            Err(InviteCodeError::BadEncoding)
        );
        assert!(InviteCode::decode(&text[..text.len() - 8]).is_err());
        assert_eq!(InviteCode::decode(PREFIX), Err(InviteCodeError::BadLength));
    }
}
