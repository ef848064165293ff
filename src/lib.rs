//! spore: a delay-tolerant store-and-forward bundle agent (RFC 9171 BPv7) over QUIC.
#![warn(missing_docs)]

pub mod bundle;
pub mod cla;
