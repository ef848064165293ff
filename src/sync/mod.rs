//! Background folder sync over intermittent links (spec/sync.md).
//!
//! A registered outgoing folder is scanned (on file-system events and
//! periodically); every new or changed file, once stable for the settle
//! time, travels as ordinary chunk bundles plus a manifest carrying the
//! folder keys ([`crate::content::FolderEntry`]). A receiver writes it
//! under the accepting directory, verified and atomically, refusing
//! hostile paths and keeping both copies on conflict.
//!
//! This module holds the parts that need no sockets and no tokio:
//! - [`scan`]: folder scanning and the scan-to-scan diff (what to send);
//! - [`registry`]: the persisted folder registrations (`sync.json`);
//! - [`state`]: per-file sender and receiver state (`sync.redb`);
//! - [`receive`]: safe, verified, atomic writes into a directory tree;
//! - [`pack_apply`]: many small files of a pack with one durability
//!   barrier.
//!
//! The tokio side (watcher, sending, API) is `crate::node::sync`.

pub mod pack_apply;
pub mod receive;
pub mod registry;
pub mod scan;
pub mod state;

use serde::{Deserialize, Serialize};

/// Sync settings (config section `[sync]`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Time a changed file must stay unchanged before it is sent, ms
    /// (default 2000).
    pub settle_ms: u64,
    /// Period of the safety-net rescan of every outgoing folder, s
    /// (default 60).
    pub rescan_s: u64,
    /// Lifetime of sync bundles, ms (default: `None`, the node default).
    pub lifetime_ms: Option<u64>,
    /// Files of at most this many bytes travel in packs (spec/sync.md
    /// §Packs), bytes (default 65 536; capped by the node's chunk size;
    /// 0 turns packing off, e.g. for receivers built before packs).
    pub pack_max_file_bytes: u64,
    /// Most file bytes in one pack bundle, bytes (default 4 MiB; keep it
    /// under `[limits] max_bundle_bytes`).
    pub pack_max_bytes: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            settle_ms: 2000,
            rescan_s: 60,
            lifetime_ms: None,
            pack_max_file_bytes: 64 << 10,
            pack_max_bytes: 4 << 20,
        }
    }
}

/// Why a sync operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A received manifest is refused (hostile or malformed path, symlink
    /// in the way, inconsistent content).
    #[error("refused manifest for {path:?}: {reason}")]
    Refused {
        /// The relative path it names.
        path: String,
        /// Why.
        reason: String,
    },
    /// The sync state database failed.
    #[error("sync state: {0}")]
    State(String),
    /// A chunk is missing or does not verify.
    #[error("content: {0}")]
    Content(#[from] crate::content::ContentError),
}

impl SyncError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path) -> impl Fn(std::io::Error) -> Self {
        let path = path.display().to_string();
        move |source| SyncError::Io {
            op,
            path: path.clone(),
            source,
        }
    }
}

/// The conflict-copy name for `name` (a base name): `stem.conflict-<source>-<time>.ext`,
/// where `source` is the sender's node name made file-name safe and `time`
/// is `time_ms` (ms since the Unix epoch).
///
/// ```
/// use spore::sync::conflict_name;
/// assert_eq!(conflict_name("a.txt", "dtn://field/", 42), "a.conflict-field-42.txt");
/// assert_eq!(conflict_name("Makefile", "dtn://x/", 1), "Makefile.conflict-x-1");
/// ```
pub fn conflict_name(name: &str, source: &str, time_ms: u64) -> String {
    let src: String = source
        .trim_start_matches("dtn://")
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.conflict-{src}-{time_ms}.{ext}"),
        _ => format!("{name}.conflict-{src}-{time_ms}"),
    }
}

/// The next version of a file: greater than `prev` and at least its
/// modification time (ms), so versions stay monotonic per path even if
/// the clock goes back.
pub fn next_version(prev: Option<u64>, mtime_ms: u64) -> u64 {
    match prev {
        Some(p) => mtime_ms.max(p.saturating_add(1)),
        None => mtime_ms.max(1),
    }
}
