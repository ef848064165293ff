//! Endpoint IDs (RFC 9171 §4.2.5.1): `dtn:none`, `dtn://node/demux`, `ipn:N.S`.
//!
//! The textual forms are the URIs of RFC 9171 §4.2.5.1.1 (dtn) and
//! RFC 9171 §4.2.5.1.2 / RFC 6260 (ipn). The CBOR form lives in
//! [`crate::bundle::codec`].

use std::fmt;
use std::str::FromStr;

/// Longest textual EID we accept, in bytes (a limit, not an RFC number).
pub const MAX_EID_LEN: usize = 1024;

/// An endpoint ID.
///
/// Invariants (checked by [`Eid::dtn`] and [`FromStr`]): a `dtn` node name
/// is non-empty, printable ASCII without `/`; a demux is printable ASCII
/// (may contain `/`, may be empty). No part contains whitespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Eid {
    /// `dtn:none`, the null endpoint (RFC 9171 §4.2.5.1.1).
    DtnNone,
    /// `dtn://{node}/{demux}`. A node ID has an empty demux.
    Dtn {
        /// Node name, e.g. `c` in `dtn://c/files`.
        node: String,
        /// Demultiplexing token (the service), e.g. `files`; empty for a node ID.
        demux: String,
    },
    /// `ipn:{node}.{service}`; service 0 is the node ID (administrative endpoint).
    Ipn {
        /// Node number.
        node: u64,
        /// Service number.
        service: u64,
    },
}

/// Why a string or CBOR item is not a valid EID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EidError {
    /// The scheme is neither `dtn` nor `ipn` (or the CBOR scheme code is not 1 or 2).
    #[error("unknown EID scheme {0:?} (expected dtn or ipn)")]
    UnknownScheme(String),
    /// The text after the scheme does not follow the scheme's syntax.
    #[error("malformed EID {0:?}: {1}")]
    Malformed(String, &'static str),
    /// The EID is longer than [`MAX_EID_LEN`].
    #[error("EID longer than {MAX_EID_LEN} bytes")]
    TooLong,
}

fn valid_node_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn valid_demux(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

impl Eid {
    /// Builds `dtn://{node}/{demux}`.
    ///
    /// # Errors
    /// [`EidError::Malformed`] if the node name is empty or either part has
    /// characters outside printable ASCII (or `/` in the node name).
    pub fn dtn(node: &str, demux: &str) -> Result<Eid, EidError> {
        if node.len() + demux.len() + 7 > MAX_EID_LEN {
            return Err(EidError::TooLong);
        }
        if !valid_node_name(node) {
            return Err(EidError::Malformed(
                format!("dtn://{node}/{demux}"),
                "node name must be non-empty printable ASCII without '/'",
            ));
        }
        if !valid_demux(demux) {
            return Err(EidError::Malformed(
                format!("dtn://{node}/{demux}"),
                "demux must be printable ASCII",
            ));
        }
        Ok(Eid::Dtn {
            node: node.to_owned(),
            demux: demux.to_owned(),
        })
    }

    /// The node ID of the node this endpoint belongs to: `dtn://node/` or
    /// `ipn:N.0`. `dtn:none` maps to itself.
    pub fn node_id(&self) -> Eid {
        match self {
            Eid::DtnNone => Eid::DtnNone,
            Eid::Dtn { node, .. } => Eid::Dtn {
                node: node.clone(),
                demux: String::new(),
            },
            Eid::Ipn { node, .. } => Eid::Ipn {
                node: *node,
                service: 0,
            },
        }
    }

    /// [`Eid::node_id`] without a copy when this EID already is a node ID
    /// (`dtn:none` too): for map look-ups on hot paths.
    pub fn as_node_id(&self) -> std::borrow::Cow<'_, Eid> {
        if self.is_none() || self.is_node_id() {
            std::borrow::Cow::Borrowed(self)
        } else {
            std::borrow::Cow::Owned(self.node_id())
        }
    }

    /// True if this EID is a node ID (`dtn://node/` or `ipn:N.0`).
    pub fn is_node_id(&self) -> bool {
        match self {
            Eid::DtnNone => false,
            Eid::Dtn { demux, .. } => demux.is_empty(),
            Eid::Ipn { service, .. } => *service == 0,
        }
    }

    /// True for `dtn:none`.
    pub fn is_none(&self) -> bool {
        matches!(self, Eid::DtnNone)
    }

    /// True if this endpoint lives on the node `node_id` (same node part).
    pub fn is_on_node(&self, node_id: &Eid) -> bool {
        match (self, node_id) {
            (Eid::Dtn { node: a, .. }, Eid::Dtn { node: b, .. }) => a == b,
            (Eid::Ipn { node: a, .. }, Eid::Ipn { node: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The service part: the demux of a `dtn` EID, the decimal service number
    /// of an `ipn` EID; `None` for `dtn:none`.
    pub fn service(&self) -> Option<String> {
        match self {
            Eid::DtnNone => None,
            Eid::Dtn { demux, .. } => Some(demux.clone()),
            Eid::Ipn { service, .. } => Some(service.to_string()),
        }
    }
}

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Eid::DtnNone => f.write_str("dtn:none"),
            Eid::Dtn { node, demux } => write!(f, "dtn://{node}/{demux}"),
            Eid::Ipn { node, service } => write!(f, "ipn:{node}.{service}"),
        }
    }
}

impl FromStr for Eid {
    type Err = EidError;

    /// Parses `dtn:none`, `dtn://node/demux` (a bare `dtn://node` is read as
    /// the node ID `dtn://node/`) and `ipn:N.S`.
    fn from_str(s: &str) -> Result<Eid, EidError> {
        if s.len() > MAX_EID_LEN {
            return Err(EidError::TooLong);
        }
        let Some((scheme, ssp)) = s.split_once(':') else {
            return Err(EidError::Malformed(s.to_owned(), "missing scheme"));
        };
        match scheme {
            "dtn" => parse_dtn(s, ssp),
            "ipn" => parse_ipn(s, ssp),
            other => Err(EidError::UnknownScheme(other.to_owned())),
        }
    }
}

fn parse_dtn(s: &str, ssp: &str) -> Result<Eid, EidError> {
    if ssp == "none" {
        return Ok(Eid::DtnNone);
    }
    let Some(rest) = ssp.strip_prefix("//") else {
        return Err(EidError::Malformed(
            s.to_owned(),
            "dtn SSP must be 'none' or start with '//'",
        ));
    };
    let (node, demux) = rest.split_once('/').unwrap_or((rest, ""));
    Eid::dtn(node, demux)
}

fn parse_ipn(s: &str, ssp: &str) -> Result<Eid, EidError> {
    let Some((node, service)) = ssp.split_once('.') else {
        return Err(EidError::Malformed(
            s.to_owned(),
            "ipn SSP must be NODE.SERVICE",
        ));
    };
    let num = |t: &str| -> Result<u64, EidError> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EidError::Malformed(
                s.to_owned(),
                "ipn numbers must be decimal",
            ));
        }
        t.parse()
            .map_err(|_| EidError::Malformed(s.to_owned(), "ipn number out of range"))
    };
    Ok(Eid::Ipn {
        node: num(node)?,
        service: num(service)?,
    })
}

impl serde::Serialize for Eid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Eid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Eid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_form() {
        for s in [
            "dtn:none",
            "dtn://c/files",
            "dtn://node/",
            "dtn://a/x/y",
            "ipn:1.2",
            "ipn:0.0",
        ] {
            let e: Eid = s.parse().unwrap();
            assert_eq!(e.to_string(), s);
        }
        assert_eq!("dtn://c".parse::<Eid>().unwrap().to_string(), "dtn://c/");
    }

    #[test]
    fn rejects_bad_forms_with_reasons() {
        assert!(matches!(
            "http://x".parse::<Eid>(),
            Err(EidError::UnknownScheme(_))
        ));
        assert!(matches!(
            "dtn:x".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
        assert!(matches!(
            "dtn:///svc".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
        assert!(matches!(
            "ipn:1".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
        assert!(matches!(
            "ipn:1.x".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
        assert!(matches!(
            "ipn:99999999999999999999.1".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
        assert!(matches!(
            "nocolon".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
        assert!(matches!(
            "dtn://a b/".parse::<Eid>(),
            Err(EidError::Malformed(..))
        ));
    }

    #[test]
    fn node_ids() {
        let e: Eid = "dtn://c/files".parse().unwrap();
        assert_eq!(e.node_id().to_string(), "dtn://c/");
        assert!(e.is_on_node(&"dtn://c/".parse().unwrap()));
        assert!(!e.is_node_id());
        let i: Eid = "ipn:5.7".parse().unwrap();
        assert_eq!(i.node_id().to_string(), "ipn:5.0");
        assert!(!Eid::DtnNone.is_on_node(&Eid::DtnNone));
        assert!(e.is_on_node(&"dtn://c/other".parse().unwrap()));
        assert!(!e.is_on_node(&"dtn://cc/".parse().unwrap()));
        assert!(!e.is_on_node(&"ipn:5.0".parse().unwrap()));
        assert!(i.is_on_node(&"ipn:5.3".parse().unwrap()));
        assert!(!i.is_on_node(&"ipn:6.7".parse().unwrap()));
        for s in [
            "dtn://c/files",
            "dtn://c/",
            "ipn:5.7",
            "ipn:5.0",
            "dtn:none",
        ] {
            let x: Eid = s.parse().unwrap();
            assert_eq!(*x.as_node_id(), x.node_id(), "{s}");
        }
    }
}
