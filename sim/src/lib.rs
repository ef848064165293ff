//! spore-sim: a deterministic discrete-event simulator that drives many
//! `spore::agent::Agent`s in one thread with a virtual clock.
//!
//! Inputs are ONE-format connectivity traces and workloads ([`trace`]) or
//! generated ones ([`generator`], [`workload`]); [`world`] runs the agents over
//! the link model ([`link`]); [`oracle`] computes the best possible
//! deliveries; [`report`] summarises a run; [`plot`] draws runs side by
//! side. Same seed and same code give the same result.

#![warn(missing_docs)]

pub mod generator;
pub mod link;
pub mod oracle;
pub mod plot;
pub mod profile;
pub mod report;
pub mod run;
pub mod trace;
pub mod workload;
pub mod world;
