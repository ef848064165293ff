//! spore
#![warn(missing_docs)]

pub mod bundle;
pub mod cla;
pub mod content;
