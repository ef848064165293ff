//! The node configuration file (TOML, `spec/config.md`).
//!
//! `spore node --config FILE` reads it; without `--config`, the node reads
//! `DATA_DIR/spore.toml` when that file exists. A flag given on the command
//! line wins over the file, and the file wins over the built-in default.
//! Unknown keys are errors (a typo must not be silently ignored), and every
//! error names the file, the line and the key.
//!
//! Sections: `[node]` (this module). Other subsystems add their own sections
//! next to it, each a struct with `#[serde(default, deny_unknown_fields)]`.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the config file looked for in the data directory.
pub const DEFAULT_FILE_NAME: &str = "spore.toml";

/// Largest config file read, in bytes (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The whole file. Every section and key is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `[node]`: identity, addresses, peers, bundle defaults, routing.
    pub node: NodeSection,
    /// `[limits]`: per-peer rates, flooding, store quota, input sizes.
    pub limits: crate::limits::LimitsConfig,
    /// `[discovery]`: beacons, peer exchange, cached-peer dials
    /// (spec/discovery.md).
    pub discovery: super::discovery::DiscoveryConfig,
    /// `[trust]`: open or private, trusted keys (spec/trust.md).
    pub trust: super::trust::TrustConfig,
    /// `[sync]`: folder sync timing (spec/sync.md).
    pub sync: crate::sync::SyncConfig,
    /// `[[service]]`: services this node offers to jobs (spec/jobs.md).
    pub service: Vec<crate::jobs::ServiceConfig>,
    /// `[jobs]`: real-time threshold, result lifetime, real-time rates.
    pub jobs: crate::jobs::JobsConfig,
    /// `[assets]`: asset adverts exchanged on contact (spec/assets.md).
    pub assets: super::asset_advert::AssetConfig,
}

/// `[node]`: the settings that `spore node` flags also set (same names, with
/// `_` for `-`). Absent keys take the flag's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Node ID, e.g. `"dtn://field/"` (default: `dtn://<key fingerprint>/`).
    pub node_id: Option<String>,
    /// QUIC listen address (default: `0.0.0.0:4556`).
    pub listen: Option<SocketAddr>,
    /// Local API address, loopback only (default: `127.0.0.1:4557`).
    pub api: Option<SocketAddr>,
    /// Peers to dial, `"host:port"` (added to the flags' `--peer`s).
    pub peers: Vec<SocketAddr>,
    /// Where received files land (default: `DATA_DIR/inbox`).
    pub inbox: Option<PathBuf>,
    /// Default bundle lifetime, humantime (`"7days"`, `"2h"`).
    #[serde(with = "humantime_serde")]
    pub lifetime: Option<Duration>,
    /// Custody timeout, humantime (default: `"30s"`).
    #[serde(with = "humantime_serde")]
    pub custody_timeout: Option<Duration>,
    /// Chunk size for files, bytes (default: 262 144).
    pub chunk_size: Option<u32>,
    /// Timer period, humantime (default: `"250ms"`).
    #[serde(with = "humantime_serde")]
    pub tick: Option<Duration>,
    /// Routing policy, as `--router` takes it (`"spore:4"`, `"prophet"`).
    pub router: Option<String>,
    /// Contact plan file for `router = "cgr"`; relative paths are relative
    /// to the config file's directory.
    pub contact_plan: Option<PathBuf>,
    /// Node IDs whose links are metered (bulk waits; `spore peers metered`).
    pub metered_peers: Vec<String>,
    /// On a metered link, bundles larger than this wait, bytes (65 536).
    pub metered_bulk_bytes: Option<u64>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("config file {path} is {size} bytes; the limit is {MAX_CONFIG_BYTES}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, bytes.
        size: u64,
    },
    /// The file is not valid TOML, has an unknown key or a wrong type; the
    /// message names the line, column and key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
}

impl ConfigFile {
    /// Parses TOML text (no file I/O); `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`]: bad TOML, an unknown section or key, or a
    /// value of the wrong type or out of range.
    pub fn parse(text: &str, origin: &Path) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads and parses `path`; relative paths inside are resolved against
    /// the file's directory.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::TooLarge`] or
    /// [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read_err)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let mut cfg = ConfigFile::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(plan) = &mut cfg.node.contact_plan
            && plan.is_relative()
        {
            *plan = base.join(&*plan);
        }
        if let Some(inbox) = &mut cfg.node.inbox
            && inbox.is_relative()
        {
            *inbox = base.join(&*inbox);
        }
        Ok(cfg)
    }

    /// The file to read: `explicit` if given (it must exist), else
    /// `DATA_DIR/spore.toml` if it exists, else none.
    pub fn locate(explicit: Option<&Path>, data_dir: &Path) -> Option<PathBuf> {
        if let Some(p) = explicit {
            return Some(p.to_path_buf());
        }
        let p = data_dir.join(DEFAULT_FILE_NAME);
        p.is_file().then_some(p)
    }

    /// The file as TOML text (what `spore node --print-config` shows).
    ///
    /// # Errors
    /// A message if a value cannot be written as TOML (not expected).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), ConfigFile::default());
    }

    #[test]
    fn node_section_parses_every_key() {
        let c = parse(
            r#"
            [node]
            node_id = "dtn://field/"
            listen = "0.0.0.0:5000"
            api = "127.0.0.1:5001"
            peers = ["10.0.0.2:4556", "[::1]:4556"]
            lifetime = "2h"
            custody_timeout = "45s"
            chunk_size = 65536
            tick = "100ms"
            router = "spray-and-wait:4"
            "#,
        )
        .unwrap();
        let n = &c.node;
        assert_eq!(n.node_id.as_deref(), Some("dtn://field/"));
        assert_eq!(n.listen, Some("0.0.0.0:5000".parse().unwrap()));
        assert_eq!(n.peers.len(), 2);
        assert_eq!(n.lifetime, Some(Duration::from_secs(7200)));
        assert_eq!(n.custody_timeout, Some(Duration::from_secs(45)));
        assert_eq!(n.tick, Some(Duration::from_millis(100)));
        assert_eq!(n.chunk_size, Some(65536));
        assert_eq!(n.router.as_deref(), Some("spray-and-wait:4"));
    }

    #[test]
    fn unknown_key_is_an_error_naming_it_and_the_line() {
        let e = parse("[node]\nlisten = \"0.0.0.0:1\"\nlisten_addr = \"x\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("listen_addr"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn wrong_types_and_bad_durations_are_errors() {
        assert!(parse("[node]\nchunk_size = \"big\"\n").is_err());
        assert!(parse("[node]\nlifetime = \"soon\"\n").is_err());
        assert!(parse("[node]\nlisten = \"nowhere\"\n").is_err());
        assert!(parse("[nodes]\n").is_err());
    }

    #[test]
    fn every_section_parses_and_the_example_of_the_spec_is_valid() {
        let spec = include_str!("../../spec/config.md");
        let start = spec.find("```toml\n").unwrap() + 8;
        let end = start + spec[start..].find("```").unwrap();
        let c = parse(&spec[start..end]).unwrap();
        assert_eq!(c.trust.mode, super::super::trust::TrustMode::Private);
        assert_eq!(c.discovery.interval_ms, 2000);
        assert_eq!(c.limits.peer_share_percent, 40);
        assert_eq!(c.service.len(), 2);
        assert_eq!(c.service[1].name, "embed");
        assert_eq!(c.jobs.realtime_rtt_ms, 100);
        assert_eq!(c.assets.max_hops, 3);
        assert_eq!(c.assets.advert_entries, 4096);
        assert!(parse("[assets]\nhops = 3\n").is_err());
        assert!(parse("[[service]]\nname = \"x\"\nkind = \"teleport\"\n").is_err());
        assert!(parse("[trust]\nmode = \"closed\"\n").is_err());
        assert!(parse("[discovery]\nbeacons = true\n").is_err());
        assert!(parse("[limits]\nquota = 1\n").is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let mut c = ConfigFile::default();
        c.node.lifetime = Some(Duration::from_secs(3600));
        c.node.peers = vec!["127.0.0.1:4556".parse().unwrap()];
        c.node.router = Some("prophet".into());
        let text = c.to_toml().unwrap();
        assert_eq!(parse(&text).unwrap(), c);
    }

    #[test]
    fn load_resolves_relative_paths_and_limits_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spore.toml");
        std::fs::write(&path, "[node]\ncontact_plan = \"plan.txt\"\n").unwrap();
        let c = ConfigFile::load(&path).unwrap();
        assert_eq!(c.node.contact_plan, Some(dir.path().join("plan.txt")));
        assert_eq!(ConfigFile::locate(None, dir.path()), Some(path.clone()));
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        assert!(matches!(
            ConfigFile::load(&big),
            Err(ConfigError::TooLarge { .. })
        ));
        assert!(matches!(
            ConfigFile::load(&dir.path().join("missing.toml")),
            Err(ConfigError::Read { .. })
        ));
    }
}
