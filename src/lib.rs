//! spore: a delay-tolerant store-and-forward bundle agent (RFC 9171 BPv7) over QUIC.
//!
//! Layers (see DESIGN in the repository): [`bundle`] (RFC 9171 model and
//! codec), [`store`] (redb), [`content`] (chunks, CIDs, manifests),
//! [`routing`], [`agent`] (the sans-IO core), [`cla`] (QUIC convergence
//! layer), [`node`] (the tokio driver and local API), [`client`] and
//! [`harness`] (talking to and running node processes), [`chaos`] (lossy,
//! flapping loopback links for tests).
#![warn(missing_docs)]

pub mod agent;
pub mod bundle;
pub mod chaos;
pub mod cla;
pub mod client;
pub mod content;
pub mod harness;
pub mod jobs;
pub mod limits;
pub mod node;
pub mod routing;
pub mod store;
pub mod sync;
pub mod thp;
